/*
 * main.c: mitogen-agent, the stock program a child context runs.  It is
 * built statically with musl so that it runs on any Linux of its
 * architecture, and is small enough to send at every connect.  It answers
 * the parent's handshake on stdin/stdout, then serves as a context on the
 * same fds until its parent goes away or asks it to stop.  It never writes
 * to stdout: that is the channel.
 */
#include "connect/connect.h"

int main(void)
{
	struct mg_boot boot;

	/* The handshake explains a refusal on stderr, which the parent
	 * reports as the connect's error. */
	if (mg__connect_child_boot(0, 1, &boot) != 0)
		return 2;
	return mg__child_serve(0, 1, &boot);
}
