/*
 * ship_self.c: a program that runs a copy of itself as a context and calls
 * one of its own functions there.
 *
 * Every program linked with libmitogen can be a context: it calls
 * mg_child_main() first thing, which returns at once in the program the
 * user started and never returns in a copy started as a context.  With
 * ship_self the child runs this executable instead of the stock agent, so
 * greet(), exported below, is callable in it by name.
 *
 *   $ ./ship_self
 *   child said: hello master, from pid 4242
 *   master pid 4241, child pid 4242
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mitogen.h"

MG_EXPORT(greet)
static int greet(struct mg_call *call)
{
	const char *who;
	char text[256];

	if (mg_call_args(call, "s", &who) != 0)
		return -1;
	snprintf(text, sizeof(text), "hello %s, from pid %d", who, (int)getpid());
	return mg_call_return(call, "(si)", text, (int64_t)getpid());
}

static int fail(const char *what, int rc)
{
	fprintf(stderr, "ship_self: %s: %s (%s)\n", what, mg_strerror(rc), mg_errdetail());
	return 1;
}

int main(int argc, char **argv)
{
	struct mg_connect_opts opts;
	struct mg_router *router;
	struct mg_context *child;
	struct mg_msg *reply;
	const char *text;
	int64_t pid;
	int rc;

	/* In the copy started as a context this serves calls and exits. */
	mg_child_main(argc, argv);

	if ((rc = mg_router_new(NULL, &router)) != 0)
		return fail("mg_router_new", rc);
	mg_connect_opts_init(&opts, MG_METHOD_LOCAL);
	opts.name = "self";
	opts.ship_self = true;
	if ((rc = mg_connect(router, &opts, &child)) != 0)
		return fail("mg_connect", rc);
	if ((rc = mg_call(child, "greet", &reply, "s", "master")) != 0)
		return fail("mg_call greet", rc);
	if ((rc = mg_msg_read(reply, "(si)", &text, &pid)) != 0)
		return fail("reading the reply", rc);
	printf("child said: %s\n", text);
	printf("master pid %d, child pid %lld\n", (int)getpid(), (long long)pid);
	mg_msg_free(reply);
	mg_context_shutdown(child, 5000);
	mg_context_free(child);
	mg_router_free(router);
	return 0;
}
