/*
 * log.c: the library's one logging function.  Two loggers: "mitogen" for
 * events and "mitogen.io" for every message (off unless asked for).  The
 * threshold starts from MITOGEN_LOG and the handler can be replaced.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t *const lock = &mg__fork_locks[MG_FORK_LOCK_LOG];
static atomic_int level_main = MG_LOG_WARNING;
static atomic_int level_io = MG_LOG_OFF;
static mg_log_cb handler;
static void *handler_arg;
static char context_name[128] = "master";

static int parse_level(const char *s, bool *io)
{
	*io = false;
	if (s == NULL || *s == '\0')
		return MG_LOG_WARNING;
	if (strcasecmp(s, "io") == 0 || strcasecmp(s, "debug") == 0) {
		*io = true;
		return MG_LOG_DEBUG;
	}
	if (strcasecmp(s, "info") == 0)
		return MG_LOG_INFO;
	if (strcasecmp(s, "error") == 0)
		return MG_LOG_ERROR;
	if (strcasecmp(s, "off") == 0 || strcasecmp(s, "none") == 0)
		return MG_LOG_OFF;
	return MG_LOG_WARNING;
}

static bool env_wants_io(void)
{
	bool io;

	parse_level(getenv("MITOGEN_LOG"), &io);
	return io;
}

static void init_from_env(void)
{
	bool io;
	int lvl = parse_level(getenv("MITOGEN_LOG"), &io);

	atomic_store(&level_main, lvl);
	atomic_store(&level_io, io ? MG_LOG_DEBUG : MG_LOG_OFF);
}

static const char *level_name(int level)
{
	if (level >= MG_LOG_ERROR)
		return "ERROR";
	if (level >= MG_LOG_WARNING)
		return "WARNING";
	if (level >= MG_LOG_INFO)
		return "INFO";
	return "DEBUG";
}

static void default_handler(const struct mg_log_record *rec)
{
	char line[1200];
	int n = snprintf(line, sizeof(line), "%s %s [%s] %s\n", rec->logger, level_name(rec->level),
	                 rec->context, rec->message);

	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	/* One write so concurrent records do not interleave mid-line. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

static void emit(const struct mg_log_record *rec)
{
	mg_log_cb cb;
	void *arg;

	pthread_mutex_lock(lock);
	cb = handler;
	arg = handler_arg;
	pthread_mutex_unlock(lock);
	if (cb != NULL)
		cb(arg, rec);
	else
		default_handler(rec);
}

void mg_log_set_handler(mg_log_cb cb, void *arg, int level)
{
	pthread_once(&once, init_from_env);
	pthread_mutex_lock(lock);
	handler = cb;
	handler_arg = arg;
	pthread_mutex_unlock(lock);
	atomic_store(&level_main, level);
	atomic_store(&level_io,
	             level <= MG_LOG_DEBUG && env_wants_io() ? MG_LOG_DEBUG : MG_LOG_OFF);
}

int mg_log_level(const char *logger)
{
	pthread_once(&once, init_from_env);
	if (logger != NULL && strcmp(logger, "mitogen.io") == 0)
		return atomic_load(&level_io);
	return atomic_load(&level_main);
}

bool mg__log_enabled(int level, bool io)
{
	pthread_once(&once, init_from_env);
	return level >= atomic_load_explicit(io ? &level_io : &level_main, memory_order_relaxed);
}

void mg__log_set_context_name(const char *name)
{
	pthread_mutex_lock(lock);
	snprintf(context_name, sizeof(context_name), "%s", name);
	pthread_mutex_unlock(lock);
}

static void vlog(int level, const char *logger, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

static void vlog(int level, const char *logger, const char *fmt, va_list ap)
{
	char msg[1024], ctx[128];
	struct mg_log_record rec;
	struct timespec ts;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	pthread_mutex_lock(lock);
	memcpy(ctx, context_name, sizeof(ctx));
	pthread_mutex_unlock(lock);
	clock_gettime(CLOCK_REALTIME, &ts);
	rec.level = level;
	rec.logger = logger;
	rec.context = ctx;
	rec.message = msg;
	rec.time_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	emit(&rec);
}

void mg_log(int level, const char *logger, const char *fmt, ...)
{
	va_list ap;
	bool io = logger != NULL && strcmp(logger, "mitogen.io") == 0;

	if (!mg__log_enabled(level, io))
		return;
	va_start(ap, fmt);
	vlog(level, logger ? logger : "mitogen", fmt, ap);
	va_end(ap);
}

void mg__log(int level, const char *fmt, ...)
{
	va_list ap;

	if (!mg__log_enabled(level, false))
		return;
	va_start(ap, fmt);
	vlog(level, "mitogen", fmt, ap);
	va_end(ap);
}

void mg__log_io(const char *fmt, ...)
{
	va_list ap;

	if (!mg__log_enabled(MG_LOG_DEBUG, true))
		return;
	va_start(ap, fmt);
	vlog(MG_LOG_DEBUG, "mitogen.io", fmt, ap);
	va_end(ap);
}

void mg__log_forward(int level, const char *logger, const char *context, const char *message,
                     int64_t time_ns)
{
	struct mg_log_record rec = {level, logger, context, message, time_ns};

	emit(&rec);
}
