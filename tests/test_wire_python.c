/*
 * test_wire_python.c: conformance with Debian's msgpack-python, both ways,
 * through tests/conformance/check_python.py and the wire_vectors helper
 * (see that script).  Debian's /usr/bin/python3 is used on purpose: a
 * python3 earlier on PATH may lack python3-msgpack.
 *
 * A missing /usr/bin/python3 skips, loudly; a python3 without msgpack
 * fails.
 */
#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner.h"

#define PYTHON "/usr/bin/python3"

#ifndef MG_WIRE_VECTORS
#error "tests/extra.cmake defines MG_WIRE_VECTORS, the path of the wire_vectors helper"
#endif

static int run(const char *script)
{
	int status;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* The script's report goes to the suite's output. */
		dup2(2, 1);
		execl(PYTHON, PYTHON, script, MG_WIRE_VECTORS, (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", PYTHON, strerror(errno));
		_exit(127);
	}
	CHECK(waitpid(pid, &status, 0) == pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST_T(python_msgpack_both_ways, 300)
{
	const char *src = getenv("MG_SOURCE_DIR");
	char script[4096];
	int r;

	if (access(PYTHON, X_OK) != 0)
		mg_test_skip("!!! %s not found: msgpack-python conformance NOT checked !!!",
		             PYTHON);
	if (src == NULL || *src == '\0')
		mg_test_fail(__FILE__, __LINE__, "MG_SOURCE_DIR is not set (ctest sets it)");
	CHECK(access(MG_WIRE_VECTORS, X_OK) == 0);
	snprintf(script, sizeof(script), "%s/tests/conformance/check_python.py", src);
	r = run(script);
	if (r == 2)
		mg_test_fail(__FILE__, __LINE__, "python3-msgpack is missing for %s", PYTHON);
	CHECK_EQ(r, 0);
}
