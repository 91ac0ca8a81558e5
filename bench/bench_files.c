/*
 * bench_files.c: a 1 GiB file through a local context, beside `cat`
 * through a pipe, in the same run.
 *
 *   cat pipe      sh -c 'cat SRC | cat > DST': the floor, two processes
 *                 and a pipe, no checksum, no fsync.
 *   push, pull    mg_file_push / mg_file_pull through a local context (this
 *                 program started again as a context, "ship self"):
 *                 windowed, XXH64-checked, fsynced, renamed.
 *   exec cat      mg.exec of `cat SRC` in the context, the output streamed
 *                 back and dropped, beside `cat SRC | cat > /dev/null`.
 *
 * Files live in a tmpfs (/dev/shm by default) so the disk is not what is
 * measured.  Rounds alternate floor and figure; the best of each is kept.
 * Prints a table and one JSON object; never asserts a time.
 *
 * Usage: bench_files [-s mib] [-k rounds] [-d dir]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mitogen.h"

extern const char *const mg__exec_services[];
extern const char *const mg__files_services[];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int make_file(const char *path, size_t mib)
{
	size_t words = 1024 * 1024 / 8, i, m;
	uint64_t *buf = malloc(1024 * 1024), x = 88172645463325252ULL;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), rc = 0;

	if (fd < 0 || buf == NULL)
		return -1;
	for (m = 0; m < mib && rc == 0; m++) {
		for (i = 0; i < words; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = x;
		}
		if (write(fd, buf, 1024 * 1024) != 1024 * 1024)
			rc = -1;
	}
	close(fd);
	free(buf);
	return rc;
}

static double run_sh(const char *cmd)
{
	double t0 = now();

	if (system(cmd) != 0)
		return -1;
	return now() - t0;
}

static double exec_cat(struct mg_context *c, const char *src, uint64_t expect)
{
	struct mg_exec_event ev;
	struct mg_exec_opts o;
	struct mg_exec *job;
	const char *argv[] = {"cat", src, NULL};
	uint64_t got = 0;
	double t0 = now();

	mg_exec_opts_init(&o);
	o.argv = argv;
	if (mg_exec_start(c, &o, &job, NULL, 0) != 0)
		return -1;
	while (mg_exec_next(job, -1, &ev) == 0 && ev.type != MG_EXEC_EXIT)
		got += ev.len;
	mg_exec_free(job);
	return got == expect ? now() - t0 : -1;
}

static void best(double *b, double t)
{
	if (t > 0 && (*b <= 0 || t < *b))
		*b = t;
}

int main(int argc, char **argv)
{
	const char *dir = "/dev/shm";
	size_t mib = 1024;
	int rounds = 3, opt, k;
	double pipe_t = 0, push_t = 0, pull_t = 0, exec_t = 0, pipe_null_t = 0;
	char src[600], dst[600], cmd[2048], cmd_null[1200], base[512];
	struct mg_connect_opts co;
	struct mg_router_opts ro;
	struct mg_router *r;
	struct mg_context *c;
	struct mg_file_result res;
	double bytes;

	mg_child_main(argc, argv);
	(void)mg__exec_services;
	(void)mg__files_services;
	while ((opt = getopt(argc, argv, "s:k:d:")) != -1) {
		if (opt == 's')
			mib = (size_t)atol(optarg);
		else if (opt == 'k')
			rounds = atoi(optarg);
		else if (opt == 'd')
			dir = optarg;
		else
			return 2;
	}
	bytes = (double)mib * 1024 * 1024;
	snprintf(base, sizeof(base), "%s/mg-bench-files-%ld", dir, (long)getpid());
	if (mkdir(base, 0700) != 0) {
		perror(base);
		return 1;
	}
	snprintf(src, sizeof(src), "%s/src", base);
	snprintf(dst, sizeof(dst), "%s/dst", base);
	snprintf(cmd, sizeof(cmd), "cat '%s' | cat > '%s'", src, dst);
	snprintf(cmd_null, sizeof(cmd_null), "cat '%s' | cat > /dev/null", src);
	if (make_file(src, mib) != 0) {
		perror("making the source");
		return 1;
	}
	mg_router_opts_init(&ro);
	mg_router_new(&ro, &r);
	mg_connect_opts_init(&co, MG_METHOD_LOCAL);
	co.ship_self = true;
	co.name = "bench";
	if (mg_local(r, &co, &c) != 0) {
		fprintf(stderr, "local context: %s\n", mg_errdetail());
		return 1;
	}
	for (k = 0; k < rounds; k++) {
		double t0;

		best(&pipe_t, run_sh(cmd));
		unlink(dst);
		t0 = now();
		if (mg_file_push(c, src, dst, NULL, &res) == 0)
			best(&push_t, now() - t0);
		else
			fprintf(stderr, "push: %s\n", res.error);
		unlink(dst);
		t0 = now();
		if (mg_file_pull(c, src, dst, NULL, &res) == 0)
			best(&pull_t, now() - t0);
		else
			fprintf(stderr, "pull: %s\n", res.error);
		unlink(dst);
		best(&pipe_null_t, run_sh(cmd_null));
		best(&exec_t, exec_cat(c, src, (uint64_t)bytes));
	}
	mg_context_free(c);
	mg_router_free(r);
	unlink(src);
	rmdir(base);

#define MIBS(t) ((t) > 0 ? bytes / (1024.0 * 1024.0) / (t) : 0.0)
	printf("bench_files: %zu MiB, %d rounds, best of each, files in %s\n\n", mib, rounds, dir);
	printf("%-36s %10s %10s\n", "what", "MiB/s", "/ floor");
	printf("%-36s %10.0f %9.2fx\n", "cat | cat > file (floor)", MIBS(pipe_t), 1.0);
	printf("%-36s %10.0f %9.2fx\n", "mg_file_push, local context", MIBS(push_t),
	       MIBS(push_t) / MIBS(pipe_t));
	printf("%-36s %10.0f %9.2fx\n", "mg_file_pull, local context", MIBS(pull_t),
	       MIBS(pull_t) / MIBS(pipe_t));
	printf("%-36s %10.0f %9.2fx\n", "cat | cat > /dev/null (floor)", MIBS(pipe_null_t), 1.0);
	printf("%-36s %10.0f %9.2fx\n", "mg.exec cat, output streamed back", MIBS(exec_t),
	       MIBS(exec_t) / MIBS(pipe_null_t));
	printf("\n{\"bench\":\"files\",\"mib\":%zu,\"rounds\":%d,\"cat_pipe_mib_s\":%.1f,"
	       "\"push_local_mib_s\":%.1f,\"pull_local_mib_s\":%.1f,\"cat_pipe_null_mib_s\":%.1f,"
	       "\"exec_cat_mib_s\":%.1f,\"push_ratio\":%.3f,\"pull_ratio\":%.3f,"
	       "\"exec_ratio\":%.3f,\"version\":\"%s\"}\n",
	       mib, rounds, MIBS(pipe_t), MIBS(push_t), MIBS(pull_t), MIBS(pipe_null_t),
	       MIBS(exec_t), MIBS(push_t) / MIBS(pipe_t), MIBS(pull_t) / MIBS(pipe_t),
	       MIBS(exec_t) / MIBS(pipe_null_t), MG_VERSION_STRING);
	return 0;
}
