/*
 * hello_contexts.c: starts several local contexts at once (each runs the
 * stock agent embedded in libmitogen), waits for them with a select as
 * they become ready, calls mg.ping and mg.sysinfo in each, and prints what
 * came back.
 *
 *   $ ./hello_contexts 3
 *   local.1: ping true, pid 4243, user alice on host (Linux x86_64 6.1.0), wsl no
 *   ...
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "mitogen.h"

#define MAX_CONTEXTS 1000

static int fail(const char *what, int rc)
{
	fprintf(stderr, "hello_contexts: %s: %s (%s)\n", what, mg_strerror(rc), mg_errdetail());
	return 1;
}

/* Calls mg.ping and mg.sysinfo in c and prints one line. */
static int greet(struct mg_context *c)
{
	const char *k[8], *user, *host, *os, *arch, *kernel;
	int64_t pid, uid;
	struct mg_msg *reply;
	bool pong, wsl;
	int rc;

	if ((rc = mg_call(c, "mg.ping", &reply, "")) != 0)
		return fail("mg.ping", rc);
	rc = mg_msg_read(reply, "b", &pong);
	mg_msg_free(reply);
	if (rc != 0)
		return fail("reading mg.ping's reply", rc);
	if ((rc = mg_call(c, "mg.sysinfo", &reply, "")) != 0)
		return fail("mg.sysinfo", rc);
	rc = mg_msg_read(reply, "{si si ss ss ss ss ss sb}", &k[0], &pid, &k[1], &uid, &k[2], &user,
	                 &k[3], &host, &k[4], &os, &k[5], &arch, &k[6], &kernel, &k[7], &wsl);
	if (rc == 0)
		printf("%s: ping %s, pid %lld, user %s (uid %lld) on %s (%s %s %s), wsl %s\n",
		       mg_context_name(c), pong ? "true" : "false", (long long)pid, user,
		       (long long)uid, host, os, arch, kernel, wsl ? "yes" : "no");
	mg_msg_free(reply);
	return rc != 0 ? fail("reading mg.sysinfo's reply", rc) : 0;
}

int main(int argc, char **argv)
{
	struct mg_context *ctx[MAX_CONTEXTS];
	struct mg_connect_opts opts;
	struct mg_router *router;
	struct mg_select *sel;
	struct rlimit rl;
	int n = argc > 1 ? atoi(argv[1]) : 3, i, ready, rc, status = 0;

	if (n < 1 || n > MAX_CONTEXTS) {
		fprintf(stderr, "usage: hello_contexts [1..%d]\n", MAX_CONTEXTS);
		return 2;
	}
	/* Each context holds a few fds here until it is ready, one after;
	 * a thousand need more than the usual soft limit of 1024. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if ((rc = mg_router_new(NULL, &router)) != 0 || (rc = mg_select_new(&sel)) != 0)
		return fail("setting up", rc);
	/* Every connect starts at once; none waits for another. */
	mg_connect_opts_init(&opts, MG_METHOD_LOCAL);
	for (i = 0; i < n; i++) {
		if ((rc = mg_connect_start(router, &opts, &ctx[i])) != 0)
			return fail("mg_connect_start", rc);
		mg_select_add(sel, mg_context_ready_receiver(ctx[i]));
	}
	/* Collect them in the order they become ready. */
	for (ready = 0; ready < n; ready++) {
		struct mg_receiver *rx;
		struct mg_msg *m = NULL;

		rc = mg_select_get(sel, 60000, &rx, &m);
		mg_msg_free(m);
		if (rc != 0) {
			fail("a context did not start", rc);
			status = 1;
		}
	}
	for (i = 0; i < n; i++) {
		if (mg_context_wait_ready(ctx[i], 0) == 0 && greet(ctx[i]) != 0)
			status = 1;
	}
	for (i = 0; i < n; i++) {
		mg_select_remove(sel, mg_context_ready_receiver(ctx[i]));
		mg_context_shutdown(ctx[i], 5000);
		mg_context_free(ctx[i]);
	}
	mg_select_free(sel);
	mg_router_free(router);
	return status;
}
