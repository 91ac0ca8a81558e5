/*
 * testsupport.c: exported functions whose only job is to exercise the call
 * machinery from the outside: a slow call, a crashing call, a failing call
 * and a call that streams values back through a Sender.  They are built into
 * every agent (a few hundred bytes) so the test suites and the benchmarks
 * can drive a stock agent without shipping a program of their own.
 */
#include <errno.h>
#include <signal.h>
#include <time.h>

#include "services/services.h"

/* An hour: past that a "sleep" is a caller's bug, not a test. */
#define SLEEP_MAX_MS (3600 * 1000)

const char *const mg__test_services[] = {"mg.sleep", "mg.crash", "mg.fail", "mg.stream", NULL};

MG_EXPORT_AS("mg.sleep", test_sleep)
static int test_sleep(struct mg_call *call)
{
	struct timespec ts;
	int64_t ms;

	if (mg_call_args(call, "i", &ms) != 0)
		return -1;
	if (ms < 0 || ms > SLEEP_MAX_MS)
		return mg_call_fail(call, "ValueError", "sleep of %lld ms: the range is 0..%d",
		                    (long long)ms, SLEEP_MAX_MS);
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	/* Signals the library uses internally must not cut the sleep short:
	 * tests rely on a sleeping call taking at least its time. */
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	return mg_call_return(call, "b", 1);
}

MG_EXPORT_AS("mg.crash", test_crash)
static int test_crash(struct mg_call *call)
{
	if (mg_call_args(call, "") != 0)
		return -1;
	/* raise() targets this thread, as a real fault in the function would;
	 * a NULL store could be compiled into a trap (SIGILL) instead. */
	raise(SIGSEGV);
	/* Reached only when SIGSEGV is blocked or ignored on this thread. */
	return mg_call_fail(call, "RuntimeError", "SIGSEGV was raised but did not end the call");
}

MG_EXPORT_AS("mg.fail", test_fail)
static int test_fail(struct mg_call *call)
{
	const char *type, *message;

	if (mg_call_args(call, "ss", &type, &message) != 0)
		return -1;
	if (type == NULL || type[0] == '\0')
		return mg_call_fail(call, "ValueError", "mg.fail needs an error type");
	return mg_call_fail(call, type, "%s", message != NULL ? message : "");
}

MG_EXPORT_AS("mg.stream", test_stream)
static int test_stream(struct mg_call *call)
{
	struct mg_sender *s;
	int64_t n, i;
	int rc = 0;

	if (mg_call_args(call, "hi", &s, &n) != 0)
		return -1;
	if (n < 0) {
		mg_sender_free(s);
		return mg_call_fail(call, "ValueError", "mg.stream of %lld values", (long long)n);
	}
	/* Each send may block on backpressure: that is the point, a stream
	 * larger than the high-water mark must neither fail nor queue without
	 * bound. */
	for (i = 0; i < n && rc == 0; i++)
		rc = mg_sender_sendf(s, "i", i);
	if (rc == 0)
		rc = mg_sender_close(s);
	mg_sender_free(s);
	if (rc != 0)
		return mg_call_fail(call, "mitogen.ChannelError",
		                    "mg.stream: send %lld of %lld: %s", (long long)i, (long long)n,
		                    mg_strerror(rc));
	return mg_call_return(call, "i", n);
}
