/*
 * error.c: names for every code the library returns, and the per-thread
 * detail text behind mg_errdetail().
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wire/wire.h"

static const char *const names[] = {
        [-(MG_ENOROUTE - MG_EFIRST)] = "no route to context",
        [-(MG_ECLOSED - MG_EFIRST)] = "handle closed",
        [-(MG_EREFUSED - MG_EFIRST)] = "refused by policy",
        [-(MG_ETOOBIG - MG_EFIRST)] = "message too large",
        [-(MG_EDISCONNECT - MG_EFIRST)] = "disconnected",
        [-(MG_EDECODE - MG_EFIRST)] = "payload does not match",
        [-(MG_EFORMAT - MG_EFIRST)] = "bad format string",
        [-(MG_EPROTOCOL - MG_EFIRST)] = "protocol error",
        [-(MG_EREMOTE - MG_EFIRST)] = "remote call failed",
        [-(MG_ESHUTDOWN - MG_EFIRST)] = "router shutting down",
        [-(MG_ELIMIT - MG_EFIRST)] = "limit reached",
        [-(MG_ENOFUNC - MG_EFIRST)] = "no such function",
        [-(MG_EARGS - MG_EFIRST)] = "arguments do not match",
        [-(MG_ECRASH - MG_EFIRST)] = "remote function crashed",
        [-(MG_ECONNECT - MG_EFIRST)] = "connection failed",
};

const char *mg_strerror(int code)
{
	if (code == 0)
		return "success";
	if (code <= MG_EFIRST && code >= MG_ELAST) {
		const char *n = names[-(code - MG_EFIRST)];
		return n ? n : "unknown error";
	}
	if (code < 0 && code > -4096)
		return strerror(-code);
	return "unknown error";
}

static _Thread_local char detail[512];

const char *mg_errdetail(void)
{
	return detail;
}

void mg__set_errdetail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
}
