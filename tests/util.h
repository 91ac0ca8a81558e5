/*
 * util.h: helpers shared by the router and stress suites: routers joined
 * by socketpairs, and reading this process's resident memory.
 */
#ifndef MG_TEST_UTIL_H
#define MG_TEST_UTIL_H

#include <sys/socket.h>
#include <unistd.h>

#include "mitogen.h"
#include "runner.h"

static inline struct mg_router *util_router(uint32_t id, const char *name, size_t max,
                                            size_t high_water, bool unidirectional)
{
	struct mg_router_opts o;
	struct mg_router *r;

	mg_router_opts_init(&o);
	o.context_id = id;
	o.name = name;
	if (max)
		o.max_message_size = max;
	if (high_water)
		o.high_water = high_water;
	o.unidirectional = unidirectional;
	CHECK_OK(mg_router_new(&o, &r));
	return r;
}

/* Joins parent and child with a socketpair: the child sees the parent as
 * MG_STREAM_PARENT. */
static inline void util_join(struct mg_router *parent, struct mg_router *child)
{
	int sv[2];

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	CHECK_OK(mg_router_attach(parent, sv[0], sv[0], mg_router_id(child), 0));
	CHECK_OK(mg_router_attach(child, sv[1], sv[1], mg_router_id(parent), MG_STREAM_PARENT));
}

/* Resident set size of this process in KiB. */
static inline long util_rss_kib(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = -1;
	fclose(f);
	return rss < 0 ? -1 : rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Waits up to ms for cond to become true, polling; for conditions that
 * change on another thread (route propagation). */
#define UTIL_WAIT_FOR(cond, ms)                                         \
	do {                                                            \
		int util_i_;                                            \
		for (util_i_ = 0; util_i_ < (ms) && !(cond); util_i_++) \
			usleep(1000);                                   \
	} while (0)

#endif
