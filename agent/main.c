/*
 * main.c: mitogen-agent, the stock program a child context runs.  It is
 * built statically with musl so that it runs on any Linux of its
 * architecture, and is small enough to send at every connect.  It answers
 * the parent's handshake on stdin/stdout, then serves as a context on the
 * same fds until its parent goes away or asks it to stop.  It never writes
 * to stdout: that is the channel.
 */
#include <string.h>
#include <unistd.h>

#include "connect/connect.h"

/* Started by the first stage (src/connect/bootstrap.c) from a private
 * file mktemp made: remove it before anything else, so nothing is left
 * on the target's disk whatever happens next.  The running image stays
 * reachable through /proc/self/exe for booting children. */
static void remove_own_file(const char *path)
{
	unlink(path);
}

int main(int argc, char **argv)
{
	struct mg_boot boot;

	if (argc == 2 && strcmp(argv[1], MG_BOOTSTRAP_RM_FLAG) == 0 && argv[0][0] == '/')
		remove_own_file(argv[0]);

	/* The handshake explains a refusal on stderr, which the parent
	 * reports as the connect's error. */
	if (mg__connect_child_boot(0, 1, &boot) != 0)
		return 2;
	return mg__child_serve(0, 1, &boot);
}
