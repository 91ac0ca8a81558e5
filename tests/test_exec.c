/*
 * test_exec.c: "mg.exec" against real child contexts (mg_fork of this very
 * test program, so the service under test is this build's) running real
 * processes: argv and shell, environment, folders, stdin in every form,
 * output streamed as produced, timeouts that kill the whole group, ptys,
 * and 1 GiB of output through bounded memory at both ends.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "services/svc.h"
#include "util.h"

static struct mg_router *r;

static struct mg_context *child(void)
{
	struct mg_context *c;

	/* Keeps the services' objects linked into this program (and so into
	 * its forks) however the static library is ordered. */
	CHECK(mg__exec_services[0] != NULL);
	r = util_router(0, "master", 0, 0, false);
	CHECK_OK(mg_fork(r, NULL, &c));
	return c;
}

static void done(struct mg_context *c)
{
	mg_context_free(c);
	mg_router_free(r);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int sh(struct mg_context *c, const char *cmd, struct mg_exec_result *res)
{
	struct mg_exec_opts o;

	mg_exec_opts_init(&o);
	o.command = cmd;
	return mg_exec_run(c, &o, 1 << 20, res);
}

/* A /proc/<pid>/status field in KiB ("VmRSS", "VmHWM"). */
static long status_kib(long pid, const char *field)
{
	char path[64], line[256];
	size_t n = strlen(field);
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	fclose(f);
	return v;
}

TEST(argv_and_exit_status)
{
	struct mg_context *c = child();
	const char *argv[] = {"printf", "%s-%s", "a b", "c", NULL};
	struct mg_exec_result res;
	struct mg_exec_opts o;

	mg_exec_opts_init(&o);
	o.argv = argv;
	CHECK_OK(mg_exec_run(c, &o, 1024, &res));
	CHECK_STR(res.out, "a b-c");
	CHECK_EQ(res.status.exit_code, 0);
	CHECK_EQ(res.status.signal, 0);
	mg_exec_result_fini(&res);

	CHECK_OK(sh(c, "echo out; echo err >&2; exit 3", &res));
	CHECK_STR(res.out, "out\n");
	CHECK_STR(res.err, "err\n");
	CHECK_EQ(res.status.exit_code, 3);
	mg_exec_result_fini(&res);

	CHECK_OK(sh(c, "kill -TERM $$", &res));
	CHECK_EQ(res.status.exit_code, -1);
	CHECK_EQ(res.status.signal, SIGTERM);
	CHECK(!res.status.timed_out);
	mg_exec_result_fini(&res);
	done(c);
}

TEST(output_past_the_cap_is_counted_not_kept)
{
	struct mg_context *c = child();
	struct mg_exec_result res;
	struct mg_exec_opts o;

	mg_exec_opts_init(&o);
	/* Collected in the context (the cap is under its limit)... */
	o.command = "head -c 300000 /dev/zero; head -c 5000 /dev/zero >&2";
	CHECK_OK(mg_exec_run(c, &o, 1000, &res));
	CHECK_EQ(res.status.exit_code, 0);
	CHECK_EQ(res.out_len, 1000);
	CHECK_EQ(res.out_total, 300000);
	CHECK_EQ(res.err_len, 1000);
	CHECK_EQ(res.err_total, 5000);
	mg_exec_result_fini(&res);
	/* ...and streamed (over it): the same result. */
	o.command = "head -c 3000000 /dev/zero; echo err >&2";
	CHECK_OK(mg_exec_run(c, &o, 2 << 20, &res));
	CHECK_EQ(res.status.exit_code, 0);
	CHECK_EQ(res.out_len, 2 << 20);
	CHECK_EQ(res.out_total, 3000000);
	CHECK_STR(res.err, "err\n");
	CHECK_EQ(res.err_total, 4);
	mg_exec_result_fini(&res);
	done(c);
}

struct side_arg {
	struct mg_context *c;
	int i, rc;
	char out[32];
};

static void *side_main(void *arg)
{
	struct side_arg *a = arg;
	struct mg_exec_result res;
	struct mg_exec_opts o;
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "echo %d; exit %d", a->i, a->i % 7);
	mg_exec_opts_init(&o);
	o.command = cmd;
	a->rc = mg_exec_run(a->c, &o, 64, &res);
	if (a->rc == 0 && res.status.exit_code != a->i % 7)
		a->rc = -1;
	snprintf(a->out, sizeof(a->out), "%s", res.out ? res.out : "");
	mg_exec_result_fini(&res);
	return NULL;
}

TEST(commands_on_one_context_run_side_by_side)
{
	struct mg_context *c = child();
	struct side_arg args[16];
	pthread_t th[16];
	struct mg_exec_event ev;
	struct mg_exec_opts o;
	struct mg_exec *job;
	char want[32];
	int i, rc;

	/* One command that does not end by itself... */
	mg_exec_opts_init(&o);
	o.command = "sleep 60";
	CHECK_OK(mg_exec_start(c, &o, &job, NULL, 0));
	/* ...does not hold up sixteen others started together. */
	for (i = 0; i < 16; i++) {
		args[i] = (struct side_arg){.c = c, .i = i};
		CHECK_EQ(pthread_create(&th[i], NULL, side_main, &args[i]), 0);
	}
	for (i = 0; i < 16; i++) {
		pthread_join(th[i], NULL);
		CHECK_OK(args[i].rc);
		snprintf(want, sizeof(want), "%d\n", i);
		CHECK_STR(args[i].out, want);
	}
	CHECK_EQ(mg_exec_next(job, 0, &ev), -ETIMEDOUT);
	CHECK_OK(mg_exec_kill(job, SIGKILL));
	CHECK_OK(mg_exec_next(job, 5000, &ev));
	CHECK_EQ(ev.type, MG_EXEC_EXIT);
	CHECK_EQ(ev.status.signal, SIGKILL);
	rc = mg_exec_next(job, 0, &ev);
	CHECK_EQ(rc, MG_ECLOSED);
	mg_exec_free(job);
	done(c);
}

/* mg_exec_run_start/_wait: many commands from one thread, collected and
 * streamed, each waited for in turn with the same results as mg_exec_run. */
TEST(runs_started_together_and_waited_for)
{
	struct mg_context *c = child();
	const char *missing[] = {"/no/such/program", NULL};
	struct mg_exec_pending *p[8], *slow;
	struct mg_exec_result res;
	struct mg_exec_opts o;
	char cmd[8][160], err[256], want[32], dir[] = "/tmp/mg-test-exec-XXXXXX", flag[64];
	int i;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(flag, sizeof(flag), "%s/go", dir);
	mg_exec_opts_init(&o);
	/* The first waits for a file the last one makes: a start that waited
	 * for its command to end would never return. */
	for (i = 0; i < 8; i++) {
		snprintf(cmd[i], sizeof(cmd[i]), "%s %s%s echo %d; echo e%d >&2; exit %d",
		         i == 0   ? "while [ ! -e"
		         : i == 7 ? ": >"
		                  : "",
		         i % 7 == 0 ? flag : "",
		         i == 0   ? " ]; do sleep 0.05; done;"
		         : i == 7 ? ";"
		                  : "",
		         i, i, i);
		o.command = cmd[i];
		/* Half collected in the context, half streamed (cap over 1 MiB). */
		CHECK_OK(mg_exec_run_start(c, &o, i % 2 ? 2 << 20 : 64, &p[i], NULL, 0));
	}
	for (i = 0; i < 8; i++) {
		CHECK_OK(mg_exec_run_wait(p[i], -1, &res));
		snprintf(want, sizeof(want), "%d\n", i);
		CHECK_STR(res.out, want);
		snprintf(want, sizeof(want), "e%d\n", i);
		CHECK_STR(res.err, want);
		CHECK_EQ(res.status.exit_code, i);
		mg_exec_result_fini(&res);
		/* Over: said so, and res still initialised. */
		CHECK_EQ(mg_exec_run_wait(p[i], 0, &res), MG_ECLOSED);
		CHECK(res.out == NULL);
		mg_exec_pending_free(p[i]);
	}
	unlink(flag);
	rmdir(dir);

	/* Not over yet: -ETIMEDOUT, then the result (both ways). */
	for (i = 0; i < 2; i++) {
		o.command = "sleep 0.5; echo late";
		CHECK_OK(mg_exec_run_start(c, &o, i ? 2 << 20 : 64, &slow, NULL, 0));
		CHECK_EQ(mg_exec_run_wait(slow, 50, &res), -ETIMEDOUT);
		CHECK(res.out == NULL);
		CHECK_OK(mg_exec_run_wait(slow, 10000, &res));
		CHECK_STR(res.out, "late\n");
		mg_exec_result_fini(&res);
		mg_exec_pending_free(slow);
	}

	/* Freed before the end: nothing hangs, the context goes on. */
	o.command = "sleep 30";
	CHECK_OK(mg_exec_run_start(c, &o, 64, &slow, NULL, 0));
	mg_exec_pending_free(slow);
	CHECK_OK(mg_exec_run_start(c, &o, 2 << 20, &slow, NULL, 0));
	mg_exec_pending_free(slow);
	mg_exec_pending_free(NULL);

	/* A start failure of a collected run comes with the wait... */
	o.command = NULL;
	o.argv = missing;
	CHECK_OK(mg_exec_run_start(c, &o, 64, &slow, NULL, 0));
	CHECK_EQ(mg_exec_run_wait(slow, -1, &res), -ENOENT);
	CHECK(strstr(res.error, "/no/such/program") != NULL);
	mg_exec_pending_free(slow);
	/* ...of a streamed one with the start, its text in err. */
	CHECK_EQ(mg_exec_run_start(c, &o, 2 << 20, &slow, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "/no/such/program") != NULL);
	o.argv = NULL;
	CHECK_EQ(mg_exec_run_start(c, &o, 64, &slow, err, sizeof(err)), -EINVAL);
	CHECK_OK(sh(c, "echo ok", &res));
	CHECK_STR(res.out, "ok\n");
	mg_exec_result_fini(&res);
	done(c);
}

/* Commands that end at once, many in flight: the context hands each job to
 * its loop while the loop ends and frees earlier ones.  (The hand-over read
 * the job after letting go of it: now and then, under ASan, a
 * use-after-free that took the context down, its calls ending with
 * MG_EDISCONNECT.) */
TEST(short_commands_end_while_more_are_handed_over)
{
	struct mg_context *c = child();
	const char *argv[] = {"true", NULL};
	struct mg_exec_pending *p[64];
	struct mg_exec_result res;
	struct mg_exec_opts o;
	int round, i;

	mg_exec_opts_init(&o);
	o.argv = argv;
	for (round = 0; round < 4; round++) {
		for (i = 0; i < 64; i++)
			CHECK_OK(mg_exec_run_start(c, &o, 64, &p[i], NULL, 0));
		for (i = 0; i < 64; i++) {
			CHECK_OK(mg_exec_run_wait(p[i], -1, &res));
			CHECK_EQ(res.status.exit_code, 0);
			mg_exec_result_fini(&res);
			mg_exec_pending_free(p[i]);
		}
	}
	done(c);
}

TEST(environment_and_working_directory)
{
	struct mg_context *c = child();
	const char *env[] = {"MG_A=one", "MG_B=two", "HOME", NULL};
	const char *env2[] = {"MG_ONLY=x", "PATH=/usr/bin:/bin", NULL};
	struct mg_exec_result res;
	struct mg_exec_opts o;

	mg_exec_opts_init(&o);
	o.command = "echo \"$MG_A $MG_B ${HOME-unset}\"; pwd";
	o.env = env;
	o.cwd = "/usr";
	CHECK_OK(mg_exec_run(c, &o, 1024, &res));
	CHECK_STR(res.out, "one two unset\n/usr\n");
	mg_exec_result_fini(&res);

	/* A cleared environment holds only what the caller gives. */
	o.command = "env | sort";
	o.env = env2;
	o.clear_env = true;
	o.cwd = NULL;
	CHECK_OK(mg_exec_run(c, &o, 1024, &res));
	CHECK(strstr(res.out, "MG_ONLY=x\n") != NULL);
	CHECK(strstr(res.out, "HOME=") == NULL);
	mg_exec_result_fini(&res);
	done(c);
}

/* Runs `echo ok` in c; false when it does not end within 10 s. */
static bool echo_ok_within(struct mg_context *c)
{
	struct mg_exec_pending *pend;
	struct mg_exec_result res;
	struct mg_exec_opts o;
	bool ok;

	mg_exec_opts_init(&o);
	o.command = "echo ok";
	CHECK_OK(mg_exec_run_start(c, &o, 1024, &pend, NULL, 0));
	ok = mg_exec_run_wait(pend, 10000, &res) == 0;
	if (ok)
		CHECK_STR(res.out, "ok\n");
	mg_exec_result_fini(&res);
	mg_exec_pending_free(pend);
	return ok;
}

TEST(a_fork_of_a_context_that_ran_commands_runs_commands)
{
	struct mg_context *c = child(), *forks[8];
	struct mg_connect_opts co;
	int i;

	/* The service's threads now idle in c, the control thread waiting
	 * on its condition variable, the loop in epoll_wait; each fork of c
	 * (made on c's broker thread, at any moment of theirs, busy or not)
	 * must start its own and run commands.  Before the fork handlers,
	 * the first command in a fork hung. */
	CHECK(echo_ok_within(c));
	mg_connect_opts_init(&co, MG_METHOD_FORK);
	co.via = c;
	for (i = 0; i < 8; i++) {
		struct mg_exec_pending *busy;
		struct mg_exec_opts o;
		struct mg_exec_result res;

		/* Keep c's exec threads busy while the fork is made. */
		mg_exec_opts_init(&o);
		o.command = "true";
		CHECK_OK(mg_exec_run_start(c, &o, 1024, &busy, NULL, 0));
		CHECK_OK(mg_connect(r, &co, &forks[i]));
		CHECK_OK(mg_exec_run_wait(busy, 10000, &res));
		mg_exec_result_fini(&res);
		mg_exec_pending_free(busy);
		if (!echo_ok_within(forks[i])) {
			printf("    the command in fork %d hung\n", i);
			CHECK(false);
		}
	}
	for (i = 0; i < 8; i++)
		mg_context_free(forks[i]);
	done(c);
}

TEST(start_failures_carry_the_remote_errno)
{
	struct mg_context *c = child();
	const char *missing[] = {"/no/such/program", NULL};
	const char *nopath[] = {"no-such-program-mg", NULL};
	struct mg_exec_result res;
	struct mg_exec_opts o;

	mg_exec_opts_init(&o);
	o.argv = missing;
	CHECK_EQ(mg_exec_run(c, &o, 1024, &res), -ENOENT);
	CHECK(strstr(res.error, "/no/such/program") != NULL);
	printf("    %s\n", res.error);
	o.argv = nopath;
	CHECK_EQ(mg_exec_run(c, &o, 1024, &res), -ENOENT);
	o.argv = NULL;
	o.command = "true";
	o.cwd = "/no/such/dir";
	CHECK_EQ(mg_exec_run(c, &o, 1024, &res), -ENOENT);
	CHECK(strstr(res.error, "/no/such/dir") != NULL);
	o.cwd = "/etc/passwd";
	CHECK_EQ(mg_exec_run(c, &o, 1024, &res), -ENOTDIR);
	/* The context is fine after all of that. */
	CHECK_OK(sh(c, "echo ok", &res));
	CHECK_STR(res.out, "ok\n");
	mg_exec_result_fini(&res);
	done(c);
}

TEST(stdin_inline_fed_and_from_an_fd)
{
	struct mg_context *c = child();
	const size_t big = 10 << 20;
	struct mg_exec_result res;
	struct mg_exec_opts o;
	char *data = malloc(big);
	int p[2];
	size_t i;

	for (i = 0; i < big; i++)
		data[i] = (char)('a' + i % 26);
	mg_exec_opts_init(&o);
	o.command = "cat";
	o.stdin_data = "hello stdin";
	o.stdin_len = 11;
	CHECK_OK(mg_exec_run(c, &o, 1024, &res));
	CHECK_STR(res.out, "hello stdin");
	mg_exec_result_fini(&res);

	/* Past the inline limit the job's feeder thread streams it. */
	o.stdin_data = data;
	o.stdin_len = big;
	CHECK_OK(mg_exec_run(c, &o, big, &res));
	CHECK_EQ(res.out_len, big);
	CHECK_MEM(res.out, data, big);
	mg_exec_result_fini(&res);

	/* From an fd until EOF. */
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	CHECK_EQ(write(p[1], "from a pipe", 11), 11);
	close(p[1]);
	o.stdin_data = NULL;
	o.stdin_len = 0;
	o.stdin_fd = p[0];
	o.command = "wc -c";
	CHECK_OK(mg_exec_run(c, &o, 1024, &res));
	CHECK_EQ(atoi(res.out), 11);
	mg_exec_result_fini(&res);
	close(p[0]);

	/* No stdin given: /dev/null. */
	CHECK_OK(sh(c, "cat; echo end", &res));
	CHECK_STR(res.out, "end\n");
	mg_exec_result_fini(&res);
	free(data);
	done(c);
}

struct writer {
	struct mg_exec *job;
	size_t len;
	int rc;
};

static void *write_stdin(void *arg)
{
	struct writer *w = arg;
	char *buf = malloc(100000);
	size_t sent = 0, i;

	for (i = 0; i < 100000; i++)
		buf[i] = (char)i;
	while (sent < w->len && (w->rc = mg_exec_write(w->job, buf, 100000)) == 0)
		sent += 100000;
	mg_exec_close_stdin(w->job);
	free(buf);
	return NULL;
}

TEST(stdin_streamed_while_output_is_read)
{
	/* cat echoes 64 MB back while we are still writing: both windows run
	 * at once, and neither side may wait for the other. */
	struct mg_context *c = child();
	struct writer w = {NULL, 64 * 100000, 0};
	struct mg_exec_event ev;
	struct mg_exec_opts o;
	uint64_t got = 0, sum = 0;
	pthread_t t;
	int rc;

	mg_exec_opts_init(&o);
	o.command = "cat";
	o.stdin_stream = true;
	o.window = 1 << 20;
	CHECK_OK(mg_exec_start(c, &o, &w.job, NULL, 0));
	CHECK(mg_exec_pid(w.job) > 0);
	CHECK_EQ(pthread_create(&t, NULL, write_stdin, &w), 0);
	while ((rc = mg_exec_next(w.job, 10000, &ev)) == 0 && ev.type != MG_EXEC_EXIT) {
		const uint8_t *p = ev.data;
		size_t i;
		CHECK_EQ(ev.type, MG_EXEC_STDOUT);
		for (i = 0; i < ev.len; i++)
			sum += p[i] == (uint8_t)((got + i) % 100000) ? 0 : 1;
		got += ev.len;
	}
	CHECK_OK(rc);
	CHECK_EQ(ev.status.exit_code, 0);
	pthread_join(t, NULL);
	CHECK_OK(w.rc);
	CHECK_EQ(got, w.len);
	CHECK_EQ(sum, 0);
	CHECK_EQ(mg_exec_next(w.job, 0, &ev), MG_ECLOSED);
	mg_exec_free(w.job);
	done(c);
}

TEST(output_streams_before_exit)
{
	struct mg_context *c = child();
	struct mg_exec_event ev;
	struct mg_exec_opts o;
	struct mg_exec *job;
	int64_t t0;

	mg_exec_opts_init(&o);
	o.command = "echo first; sleep 30";
	CHECK_OK(mg_exec_start(c, &o, &job, NULL, 0));
	t0 = now_ms();
	CHECK_OK(mg_exec_next(job, 5000, &ev));
	CHECK_EQ(ev.type, MG_EXEC_STDOUT);
	CHECK_EQ(ev.len, 6);
	CHECK_MEM(ev.data, "first\n", 6);
	printf("    first line after %lld ms, the command still running\n",
	       (long long)(now_ms() - t0));
	CHECK_OK(mg_exec_kill(job, SIGKILL));
	CHECK_OK(mg_exec_next(job, 5000, &ev));
	CHECK_EQ(ev.type, MG_EXEC_EXIT);
	CHECK_EQ(ev.status.signal, SIGKILL);
	CHECK(!ev.status.timed_out);
	mg_exec_free(job);
	done(c);
}

static bool pid_gone(long pid)
{
	char path[64], state = '?';
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "re")) == NULL)
		return true;
	if (fscanf(f, "%*d (%*[^)]) %c", &state) != 1)
		state = '?';
	fclose(f);
	return state == 'Z' || state == 'X';
}

TEST(timeout_kills_the_whole_process_group)
{
	struct mg_context *c = child();
	struct mg_exec_result res;
	struct mg_exec_opts o;
	long bg;
	int i;

	mg_exec_opts_init(&o);
	/* The background sleep is a grandchild: only a group kill gets it. */
	o.command = "sleep 60 & echo $!; sleep 60";
	o.timeout_ms = 300;
	CHECK_OK(mg_exec_run(c, &o, 1024, &res));
	CHECK(res.status.timed_out);
	CHECK_EQ(res.status.signal, SIGKILL);
	bg = atol(res.out);
	CHECK(bg > 0);
	for (i = 0; i < 200 && !pid_gone(bg); i++)
		usleep(10000);
	CHECK(pid_gone(bg));
	mg_exec_result_fini(&res);
	done(c);
}

TEST(pty_carries_stdout_and_stderr)
{
	struct mg_context *c = child();
	struct mg_exec_result res;
	struct mg_exec_opts o;

	mg_exec_opts_init(&o);
	o.command = "test -t 0 && test -t 1 && test -t 2 && echo tty; echo err >&2; tty";
	o.pty = true;
	CHECK_OK(mg_exec_run(c, &o, 4096, &res));
	CHECK_EQ(res.status.exit_code, 0);
	CHECK(strstr(res.out, "tty\r\n") != NULL);
	CHECK(strstr(res.out, "err\r\n") != NULL);
	CHECK(strstr(res.out, "/dev/pts/") != NULL);
	CHECK_EQ(res.err_len, 0);
	mg_exec_result_fini(&res);
	done(c);
}

TEST(a_lost_context_ends_the_job)
{
	struct mg_context *c = child();
	struct mg_exec_result res;
	struct mg_exec_event ev;
	struct mg_exec_opts o;
	struct mg_exec *job;
	long ctx_pid;
	int rc;

	CHECK_OK(sh(c, "echo $PPID", &res));
	ctx_pid = atol(res.out);
	mg_exec_result_fini(&res);
	mg_exec_opts_init(&o);
	o.command = "sleep 60";
	CHECK_OK(mg_exec_start(c, &o, &job, NULL, 0));
	kill((pid_t)ctx_pid, SIGKILL);
	rc = mg_exec_next(job, 5000, &ev);
	CHECK_EQ(rc, MG_EDISCONNECT);
	CHECK_EQ(mg_exec_next(job, 0, &ev), MG_ECLOSED);
	mg_exec_free(job);
	done(c);
}

struct lost_arg {
	struct mg_context *c;
	int rc;
};

static void *lost_main(void *arg)
{
	struct lost_arg *a = arg;
	struct mg_exec_result res;
	struct mg_exec_opts o;

	mg_exec_opts_init(&o);
	o.command = "sleep 3";
	a->rc = mg_exec_run(a->c, &o, 64, &res);
	mg_exec_result_fini(&res);
	return NULL;
}

TEST(a_lost_context_ends_a_collected_run)
{
	struct mg_context *c = child();
	struct lost_arg a = {.c = NULL};
	struct mg_exec_result res;
	pthread_t th;
	long ctx_pid;

	CHECK_OK(sh(c, "echo $PPID", &res));
	ctx_pid = atol(res.out);
	mg_exec_result_fini(&res);
	a.c = c;
	CHECK_EQ(pthread_create(&th, NULL, lost_main, &a), 0);
	/* Whether the call got there or not, the run ends with the context. */
	usleep(100000);
	kill((pid_t)ctx_pid, SIGKILL);
	pthread_join(th, NULL);
	CHECK_EQ(a.rc, MG_EDISCONNECT);
	done(c);
}

TEST_T(a_gibibyte_of_output_in_bounded_memory, 120)
{
	const uint64_t total = 1ULL << 30;
	struct mg_context *c = child();
	struct mg_exec_result res;
	struct mg_exec_event ev;
	struct mg_exec_opts o;
	struct mg_exec *job;
	long ctx_pid, m0, m1, c0, c1;
	uint64_t got = 0, chunks = 0;
	int64_t t0;
	char cmd[64];
	int rc;

	CHECK_OK(sh(c, "echo $PPID", &res));
	ctx_pid = atol(res.out);
	mg_exec_result_fini(&res);
	m0 = status_kib(getpid(), "VmHWM");
	c0 = status_kib(ctx_pid, "VmHWM");
	mg_exec_opts_init(&o);
	snprintf(cmd, sizeof(cmd), "head -c %llu /dev/zero", (unsigned long long)total);
	o.command = cmd;
	t0 = now_ms();
	CHECK_OK(mg_exec_start(c, &o, &job, NULL, 0));
	while ((rc = mg_exec_next(job, 30000, &ev)) == 0 && ev.type == MG_EXEC_STDOUT) {
		got += ev.len;
		/* A slow consumer now and then, so the window fills up. */
		if (++chunks % 512 == 0)
			usleep(20000);
	}
	CHECK_OK(rc);
	CHECK_EQ(ev.type, MG_EXEC_EXIT);
	CHECK_EQ(ev.status.exit_code, 0);
	CHECK_EQ(got, total);
	m1 = status_kib(getpid(), "VmHWM");
	c1 = status_kib(ctx_pid, "VmHWM");
	printf("    1 GiB in %lld ms; peak RSS grew %ld KiB here, %ld KiB in the context\n",
	       (long long)(now_ms() - t0), m1 - m0, c1 - c0);
	CHECK(m1 - m0 < 64 * 1024);
	CHECK(c1 - c0 < 64 * 1024);
	mg_exec_free(job);
	done(c);
}
