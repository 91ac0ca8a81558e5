/*
 * files_util.c: small helpers the exec and files services share: detached
 * threads, OSError-style errors that survive the trip back to the caller,
 * and reading spec maps.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "services/svc.h"

int mg__svc_thread(void *(*fn)(void *), void *arg)
{
	pthread_attr_t a;
	pthread_t t;
	int rc;

	if ((rc = pthread_attr_init(&a)) != 0)
		return -rc;
	/* Service threads only move bytes: a small stack keeps a context with
	 * many transfers cheap. */
	pthread_attr_setstacksize(&a, 256 * 1024);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &a, fn, arg);
	pthread_attr_destroy(&a);
	return -rc;
}

const char *mg__svc_errno_type(int err)
{
	switch (err) {
	case ENOENT:
		return "FileNotFoundError";
	case EACCES:
	case EPERM:
		return "PermissionError";
	case EISDIR:
		return "IsADirectoryError";
	case ENOTDIR:
		return "NotADirectoryError";
	case EEXIST:
		return "FileExistsError";
	case ETIMEDOUT:
		return "TimeoutError";
	default:
		return "OSError";
	}
}

int mg__svc_fail_errno(struct mg_call *call, int err, const char *what)
{
	return mg_call_fail(call, mg__svc_errno_type(err), "[Errno %d] %s: '%s'", err,
	                    strerror(err), what);
}

int mg__open_regular(const char *path, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), err;

	if (fd < 0)
		return -errno;
	if (fstat(fd, st) != 0)
		err = errno;
	else if (!S_ISREG(st->st_mode))
		err = S_ISDIR(st->st_mode) ? EISDIR : EINVAL;
	else if (fcntl(fd, F_SETFL, 0) != 0) /* reads block as usual */
		err = errno;
	else
		return fd;
	close(fd);
	return -err;
}

int mg__svc_errno_of(const char *message)
{
	const char *p = strstr(message, "[Errno ");
	int n = 0;

	if (p == NULL)
		return 0;
	/* Digits by hand, not strtol: in the static agent that would bring
	 * musl's whole integer scanner (~2 KB) for this one use. */
	for (p += 7; *p >= '0' && *p <= '9' && n < 4096; p++)
		n = n * 10 + (*p - '0');
	return n > 0 && n < 4096 ? n : 0;
}

int mg__svc_call_error(int rc, char *err, size_t size)
{
	const struct mg_error *e = mg_last_error();
	int n;

	if (rc == MG_EREMOTE && (n = mg__svc_errno_of(e->message)) != 0) {
		if (err != NULL)
			snprintf(err, size, "%s: %s", e->context, e->message);
		return -n;
	}
	if (err != NULL) {
		if (rc == MG_EREMOTE || rc == MG_ENOFUNC || rc == MG_EARGS || rc == MG_ECRASH)
			snprintf(err, size, "%s: %s: %s", e->context, e->type, e->message);
		else
			snprintf(err, size, "%s", mg_strerror(rc));
	}
	return rc;
}

int mg__svc_key(struct mg_msg *m, char *key, size_t size)
{
	const char *k;
	size_t n;
	int rc;

	if ((rc = mg_msg_read(m, "S", &k, &n)) != 0)
		return rc;
	if (n >= size)
		n = size - 1;
	memcpy(key, k, n);
	key[n] = '\0';
	return 0;
}

uint64_t mg__svc_window(uint64_t w)
{
	if (w == 0)
		return SVC_WINDOW_DEFAULT;
	if (w < SVC_WINDOW_MIN)
		return SVC_WINDOW_MIN;
	return w > SVC_WINDOW_MAX ? SVC_WINDOW_MAX : w;
}
