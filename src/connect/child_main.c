/*
 * child_main.c: the entry a "ship self" program calls first thing in
 * main().  A program started as a context finds MITOGEN_CONTEXT=1 in its
 * environment (the parent put it there); it then answers the handshake on
 * stdin/stdout and serves as a context until told to stop.
 */
#include <stdlib.h>
#include <unistd.h>

#include "connect/connect.h"

int mg_child_main(int argc, char **argv)
{
	struct mg_boot boot;
	const char *flag = getenv("MITOGEN_CONTEXT");

	if (flag == NULL || flag[0] != '1')
		return 0;
	/* Its own children must not mistake themselves for contexts. */
	unsetenv("MITOGEN_CONTEXT");
	if (mg__connect_child_boot(0, 1, &boot) != 0)
		_exit(2);
	_exit(mg__child_serve(0, 1, &boot));
}
