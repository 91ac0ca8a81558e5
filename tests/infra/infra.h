/*
 * infra/infra.h: the ssh/sudo/su/doas test infrastructure, from a suite.
 * mg_test_infra_up() runs `bash tests/infra/env.sh up` (idempotent) and
 * reads back $MG_INFRA_DIR/infra.env: the sshd's port, the ssh_config, key
 * and known_hosts paths, the users and their passwords.  See README.md in
 * this folder.  Header-only, like util.h: include it from one suite file.
 *
 * The source tree is found through MG_SOURCE_DIR (ctest sets it), else
 * through this header's own path.
 *
 * Several checkouts on one machine share the infra (users, /etc files, the
 * sshd).  A case holds MG_TEST_INFRA_LOCK shared from mg_test_infra_up() to
 * mg_test_infra_put(), so env.sh down (and test_infra, which cycles it)
 * waits until no case is using it.
 */
#ifndef MG_TEST_INFRA_H
#define MG_TEST_INFRA_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner.h"

#define MG_TEST_INFRA_MAX 48
#define MG_TEST_INFRA_LOCK "/run/lock/mitogen-test.lock"

/* The settings from infra.env, as KEY=VALUE pairs. */
struct mg_test_infra {
	int port;    /* MG_INFRA_PORT */
	int naddrs;  /* sshd listens on 127.0.0.1 .. 127.0.0.<naddrs> */
	int lock_fd; /* MG_TEST_INFRA_LOCK, held shared; -1 when not held */
	int n;
	char key[MG_TEST_INFRA_MAX][40];
	char val[MG_TEST_INFRA_MAX][200];
};

/* The runtime directory: $MG_INFRA_DIR or env.sh's default. */
static inline const char *mg_test_infra_dir(void)
{
	const char *d = getenv("MG_INFRA_DIR");

	return d != NULL && *d != '\0' ? d : "/run/mitogen-test";
}

/* Writes the path of tests/infra/<file> into buf; fails the case when the
 * source tree cannot be found. */
static inline void mg_test_infra_path(const char *file, char *buf, size_t len)
{
	const char *src = getenv("MG_SOURCE_DIR"), *me = __FILE__, *tail = "/tests/infra/infra.h";
	size_t n = strlen(me), t = strlen(tail);

	if (src != NULL && *src != '\0')
		snprintf(buf, len, "%s/tests/infra/%s", src, file);
	else if (me[0] == '/' && n > t && strcmp(me + n - t, tail) == 0)
		snprintf(buf, len, "%.*s/tests/infra/%s", (int)(n - t), me, file);
	else
		mg_test_fail(__FILE__, __LINE__, "set MG_SOURCE_DIR to the source tree");
	if (access(buf, R_OK) != 0)
		mg_test_fail(__FILE__, __LINE__, "%s: %s", buf, strerror(errno));
}

/* Runs `bash tests/infra/<script> [arg]`, its output on our stderr; returns
 * its exit status (or 128 + the signal that killed it). */
static inline int mg_test_infra_run(const char *script, const char *arg)
{
	char path[1024];
	int status;
	pid_t pid;

	mg_test_infra_path(script, path, sizeof(path));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		mg_test_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(2, 1);
		execl("/bin/bash", "bash", path, arg, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			mg_test_fail(__FILE__, __LINE__, "waitpid: %s", strerror(errno));
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Value of KEY in the infra, or NULL. */
static inline const char *mg_test_infra_get(const struct mg_test_infra *inf, const char *key)
{
	int i;

	for (i = 0; i < inf->n; i++)
		if (strcmp(inf->key[i], key) == 0)
			return inf->val[i];
	return NULL;
}

/* Reads $MG_INFRA_DIR/infra.env into inf (all but lock_fd); returns 0, or
 * -errno when the file is missing (the infra is down). */
static inline int mg_test_infra_load(struct mg_test_infra *inf)
{
	char path[512], line[256], *eq;
	const char *v;
	FILE *f;
	size_t l;

	inf->n = inf->port = inf->naddrs = 0;
	snprintf(path, sizeof(path), "%s/infra.env", mg_test_infra_dir());
	if ((f = fopen(path, "re")) == NULL)
		return -errno;
	while (inf->n < MG_TEST_INFRA_MAX && fgets(line, sizeof(line), f) != NULL) {
		l = strcspn(line, "\n");
		line[l] = '\0';
		if ((eq = strchr(line, '=')) == NULL || eq - line >= 40)
			continue;
		*eq = '\0';
		snprintf(inf->key[inf->n], sizeof(inf->key[0]), "%.39s", line);
		snprintf(inf->val[inf->n], sizeof(inf->val[0]), "%.199s", eq + 1);
		inf->n++;
	}
	fclose(f);
	inf->port = (v = mg_test_infra_get(inf, "MG_INFRA_PORT")) ? atoi(v) : 0;
	inf->naddrs = (v = mg_test_infra_get(inf, "MG_INFRA_ADDRS")) ? atoi(v) : 0;
	return inf->port > 0 ? 0 : -EINVAL;
}

/* Brings the infra up (or finds it up), takes the lock shared and loads
 * it.  Skips the case when not root; fails it when up fails.  The caller
 * calls mg_test_infra_put() before the case ends (the runner's fd check
 * reminds it).  The infra stays up for the next case: .ci/run (or a ctest
 * fixture) runs `env.sh down` when the run is over. */
static inline void mg_test_infra_up(struct mg_test_infra *inf)
{
	int attempt, r, fd;

	if (geteuid() != 0)
		mg_test_skip("needs root: the test infra adds users, sudo/doas rules and an sshd");
	for (attempt = 0; attempt < 3; attempt++) {
		if ((r = mg_test_infra_run("env.sh", "up")) != 0)
			mg_test_fail(__FILE__, __LINE__, "tests/infra/env.sh up exited %d", r);
		fd = open(MG_TEST_INFRA_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			mg_test_fail(__FILE__, __LINE__, "%s: %s", MG_TEST_INFRA_LOCK,
			             strerror(errno));
		while (flock(fd, LOCK_SH) != 0)
			if (errno != EINTR)
				mg_test_fail(__FILE__, __LINE__, "flock: %s", strerror(errno));
		/* Someone may have taken it down between up and the lock. */
		inf->lock_fd = -1;
		if (mg_test_infra_load(inf) == 0) {
			inf->lock_fd = fd;
			return;
		}
		close(fd);
	}
	mg_test_fail(__FILE__, __LINE__, "%s/infra.env: not ready after up", mg_test_infra_dir());
}

/* Releases the shared hold taken by mg_test_infra_up(). */
static inline void mg_test_infra_put(struct mg_test_infra *inf)
{
	if (inf->lock_fd >= 0)
		close(inf->lock_fd);
	inf->lock_fd = -1;
}

/* Stops the sshd and removes everything up made (waiting for cases that
 * hold the lock; so put yours first); fails the case if down fails. */
static inline void mg_test_infra_down(void)
{
	int r;

	if ((r = mg_test_infra_run("env.sh", "down")) != 0)
		mg_test_fail(__FILE__, __LINE__, "tests/infra/env.sh down exited %d", r);
}

#endif
