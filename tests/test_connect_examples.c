/*
 * test_connect_examples.c: the programs in examples/ are built and run
 * here as a user would run them, and their output checked.
 */
#include <errno.h>
#include <sys/wait.h>

#include "connect_util.h"

/* Runs examples/<name> with args and returns its whole stdout. */
static char *run_example(const char *name, const char *args, int *statusp)
{
	char cmd[4400];
	static char out[65536];
	size_t have = 0, n;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "%s/examples/%s %s", cu_build_dir(), name, args);
	CHECK((p = popen(cmd, "r")) != NULL);
	while ((n = fread(out + have, 1, sizeof(out) - 1 - have, p)) > 0)
		have += n;
	out[have] = '\0';
	*statusp = pclose(p);
	printf("    $ %s\n%s", cmd, out);
	return out;
}

TEST(example_ship_self)
{
	long master = 0, child = 0, said = 0;
	int status;
	char *out = run_example("ship_self", "", &status);
	const char *line;

	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK((line = strstr(out, "child said: hello master, from pid ")) != NULL);
	CHECK_EQ(sscanf(line, "child said: hello master, from pid %ld", &said), 1);
	CHECK((line = strstr(out, "master pid ")) != NULL);
	CHECK_EQ(sscanf(line, "master pid %ld, child pid %ld", &master, &child), 2);
	/* The function ran in the other process, a child of the first. */
	CHECK(master != child);
	CHECK_EQ(said, child);
	CHECK_EQ(cu_wait_no_children(2000), 0);
}

TEST(example_hello_contexts)
{
	int status, lines = 0;
	char *out = run_example("hello_contexts", "5", &status), *p;

	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	for (p = out; (p = strstr(p, ": ping true, pid ")) != NULL; p++)
		lines++;
	CHECK_EQ(lines, 5);
	CHECK(strstr(out, "(Linux ") != NULL);
	CHECK(strstr(out, "wsl ") != NULL);
	CHECK_EQ(cu_wait_no_children(2000), 0);
}
