/*
 * test_cli.c: the mitogen command-line tool, driven as a user drives it:
 * the real binary (build/cli/mitogen) started with fork/exec, its stdout
 * and stderr read through pipes (or stderr through a pseudo-terminal for
 * the progress line), its exit status checked.  Targets are local
 * contexts and the loopback sshd of tests/infra (user mgtest); the ssh and
 * sudo cases skip unless run as root.
 */
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pty.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "connect_util.h"
#include "infra/infra.h"
#include "mitogen.h"

/* How to start the tool. */
struct spawn {
	const char *const *env; /* extra NAME=VALUE entries */
	const char *user;       /* run as this user (needs root) */
	bool pty_stderr;        /* stderr on a pseudo-terminal */
	/* Send SIGINT to the tool's process group once stdout holds this
	 * many lines containing interrupt_marker, as Ctrl-C at a terminal. */
	const char *interrupt_marker;
	int interrupt_after;
	/* Or once this folder holds interrupt_after entries. */
	const char *interrupt_dir;
	/* Give the tool this pty as its controlling terminal and type this
	 * line when it shows a "password: " prompt there. */
	const char *tty_answer;
	const char *stdin_path;  /* the tool's stdin (else the runner's) */
	const char *stdout_path; /* the tool's stdout (else a pipe read here) */
	/* Close the stdout pipe once this much came, as `| head -c N` does. */
	size_t close_stdout_after;
};

#define RESULT_MAX 65536

struct result {
	int status; /* exit status, or 128 + the signal */
	char out[RESULT_MAX], err[RESULT_MAX], tty[RESULT_MAX];
	size_t outlen, errlen, ttylen;
	long maxrss_kb; /* the tool's peak resident memory */
};

static const char *cli_path(void)
{
	static char path[4200];

	snprintf(path, sizeof(path), "%s/cli/mitogen", cu_build_dir());
	if (access(path, X_OK) != 0)
		mg_test_fail(__FILE__, __LINE__, "%s: not built", path);
	return path;
}

static void become(const char *user)
{
	struct passwd *pw = getpwnam(user);

	if (pw == NULL || initgroups(user, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0 || chdir("/tmp") != 0)
		_exit(126);
	setenv("HOME", pw->pw_dir, 1);
	setenv("USER", user, 1);
	setenv("LOGNAME", user, 1);
}

static size_t count_lines_with(const char *text, const char *needle)
{
	size_t n = 0;
	const char *p = text;

	while ((p = strstr(p, needle)) != NULL) {
		n++;
		p += strlen(needle);
	}
	return n;
}

/* Entries in dir, but . and .. */
static size_t dir_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	while (d != NULL && (e = readdir(d)) != NULL)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	if (d != NULL)
		closedir(d);
	return n;
}

/* Runs the tool with argv (argv[0] is ignored) and collects everything. */
static void run_cli(struct result *r, const struct spawn *sp, const char *const *argv)
{
	static const struct spawn none;
	/* [0] stdout, [1] stderr, [2] the controlling terminal (tty_answer). */
	int rd[3] = {-1, -1, -1}, wr[3] = {-1, -1, -1}, pipefd[2], status, i;
	char *bufs[3] = {r->out, r->err, r->tty};
	size_t *lens[3] = {&r->outlen, &r->errlen, &r->ttylen};
	bool interrupted = false, answered = false;
	pid_t pid;

	if (sp == NULL)
		sp = &none;
	memset(r, 0, sizeof(*r));
	CHECK(pipe2(pipefd, O_CLOEXEC) == 0);
	rd[0] = pipefd[0];
	wr[0] = pipefd[1];
	if (sp->pty_stderr) {
		CHECK(openpty(&rd[1], &wr[1], NULL, NULL, NULL) == 0);
	} else {
		CHECK(pipe2(pipefd, O_CLOEXEC) == 0);
		rd[1] = pipefd[0];
		wr[1] = pipefd[1];
	}
	if (sp->tty_answer != NULL)
		CHECK(openpty(&rd[2], &wr[2], NULL, NULL, NULL) == 0);
	/* openpty() fds are inherited; only the dup2'd copies should be. */
	for (i = 0; i < 3; i++) {
		if (rd[i] >= 0)
			fcntl(rd[i], F_SETFD, FD_CLOEXEC);
		if (wr[i] >= 0)
			fcntl(wr[i], F_SETFD, FD_CLOEXEC);
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		/* A session of its own (so a "Ctrl-C" can go to its group, and
		 * it never sees the terminal the tests run on), with the pty as
		 * its terminal when asked. */
		if (setsid() < 0 || (wr[2] >= 0 && ioctl(wr[2], TIOCSCTTY, 0) != 0))
			_exit(126);
		if (wr[2] >= 0) {
			close(wr[2]);
			close(rd[2]);
		}
		if (sp->stdout_path != NULL) {
			int fd = open(sp->stdout_path, O_WRONLY | O_TRUNC);

			if (fd < 0 || dup2(fd, 1) != 1)
				_exit(126);
			close(fd);
		} else {
			dup2(wr[0], 1);
		}
		dup2(wr[1], 2);
		if (sp->stdin_path != NULL) {
			int fd = open(sp->stdin_path, O_RDONLY);

			if (fd < 0 || dup2(fd, 0) != 0)
				_exit(126);
			close(fd);
		}
		if (sp->user != NULL)
			become(sp->user);
		/* Out of the case's process group, so the runner's kill of a
		 * case that timed out would miss it: die with the case (set
		 * after become(), which clears it). */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		unsetenv("NO_COLOR");
		unsetenv("MITOGEN_SSH_PASSWORD");
		unsetenv("MITOGEN_SUDO_PASSWORD");
		setenv("TERM", "xterm", 1);
		for (i = 0; sp->env != NULL && sp->env[i] != NULL; i++)
			putenv((char *)sp->env[i]);
		execv(cli_path(), (char *const *)argv);
		_exit(127);
	}
	close(wr[0]);
	close(wr[1]);
	for (;;) {
		struct pollfd p[3];
		int open = 0;
		ssize_t n;

		for (i = 0; i < 3; i++)
			p[i] = (struct pollfd){rd[i], POLLIN, 0};
		open = (rd[0] >= 0) + (rd[1] >= 0);
		if (open == 0)
			break;
		CHECK(poll(p, 3, sp->interrupt_dir != NULL && !interrupted ? 50 : -1) >= 0);
		for (i = 0; i < 3; i++) {
			if (p[i].revents == 0)
				continue;
			n = read(rd[i], bufs[i] + *lens[i], RESULT_MAX - 1 - *lens[i]);
			/* A pty's master reads EIO once the slave is closed. */
			if (n <= 0) {
				close(rd[i]);
				rd[i] = -1;
				continue;
			}
			*lens[i] += (size_t)n;
			bufs[i][*lens[i]] = '\0';
			if (i == 0 && sp->close_stdout_after > 0 &&
			    *lens[0] >= sp->close_stdout_after) {
				close(rd[0]);
				rd[0] = -1;
			}
		}
		if (!interrupted &&
		    ((sp->interrupt_marker != NULL &&
		      count_lines_with(r->out, sp->interrupt_marker) >=
		              (size_t)sp->interrupt_after) ||
		     (sp->interrupt_dir != NULL &&
		      dir_entries(sp->interrupt_dir) >= (size_t)sp->interrupt_after))) {
			kill(-pid, SIGINT);
			interrupted = true;
		}
		if (sp->tty_answer != NULL && !answered && rd[2] >= 0 &&
		    strstr(r->tty, "password: ") != NULL) {
			CHECK(write(rd[2], sp->tty_answer, strlen(sp->tty_answer)) > 0);
			CHECK(write(rd[2], "\n", 1) == 1);
			answered = true;
		}
	}
	{
		struct rusage ru;

		CHECK(wait4(pid, &status, 0, &ru) == pid);
		r->maxrss_kb = ru.ru_maxrss;
	}
	/* The terminal stays until the tool is gone, as a real one does
	 * (its master would read EIO whenever no slave is open). */
	if (rd[2] >= 0)
		close(rd[2]);
	if (wr[2] >= 0)
		close(wr[2]);
	r->status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#define ARGV(...) ((const char *const[]){"mitogen", __VA_ARGS__, NULL})

/* Fails with both streams shown. */
#define CHECK_RUN(r, cond)                                                                       \
	do {                                                                                     \
		if (!(cond))                                                                     \
			mg_test_fail(__FILE__, __LINE__,                                         \
			             "CHECK(%s)\n    status %d\n    stdout: %s\n    stderr: %s", \
			             #cond, (r)->status, (r)->out, (r)->err);                    \
	} while (0)

/* True when some process's command line is exactly cmd (argv joined). */
static bool process_running(const char *cmd)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	bool found = false;

	CHECK(d != NULL);
	while (!found && (e = readdir(d)) != NULL) {
		char path[300], buf[512];
		ssize_t n, i;
		int fd;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		for (i = 0; i < n - 1; i++)
			if (buf[i] == '\0')
				buf[i] = ' ';
		buf[n] = '\0';
		found = strcmp(buf, cmd) == 0;
	}
	closedir(d);
	return found;
}

/* Waits up to ms for no process to run cmd. */
static bool process_gone(const char *cmd, int ms)
{
	for (; ms > 0; ms -= 50) {
		if (!process_running(cmd))
			return true;
		usleep(50000);
	}
	return !process_running(cmd);
}

/* ---- command line ------------------------------------------------------- */

TEST(cli_malformed_arguments)
{
	const struct {
		const char *const *argv;
		const char *says;
	} cases[] = {
	        {ARGV("run", "-H", "web[05-01]", "true"), "bad range in 'web[05-01]'"},
	        {ARGV("run", "-H", "web[1-3", "true"), "'[' without ']'"},
	        {ARGV("run", "-H", "web[a-b]", "true"), "is not N or N-M"},
	        {ARGV("run", "--frobnicate", "true"), "unknown option '--frobnicate'"},
	        {ARGV("run", "-Z", "true"), "unknown option '-Z'"},
	        {ARGV("call", "--local", "1", "mg.echo", "{\"a\": 1"), "argument 1 is not JSON"},
	        {ARGV("call", "--local", "1", "mg.echo", "[1,]"), "argument 1 is not JSON"},
	        {ARGV("run", "--local", "2"), "no command given"},
	        {ARGV("call"), "no function given"},
	        {ARGV("frob"), "unknown verb 'frob'"},
	        {ARGV("run", "--local", "0", "true"), "--local wants a count"},
	        {ARGV("run", "-b", "--json", "true"), "-b and --json"},
	        {ARGV("run", "-T", "soon", "true"), "bad --timeout"},
	        {ARGV("ping", "-T", "3"), "unknown option '-T'"},
	        {ARGV("run", "-f"), "needs a value"},
	        {ARGV("put", "/nonexistent/file", "/tmp/x"), "/nonexistent/file"},
	        {ARGV("get", "/etc/hostname"), "wants REMOTE and LOCALDIR"},
	        /* put takes options after its operands too. */
	        {ARGV("put", "/etc/hostname", "/tmp/x", "--frob"), "unknown option '--frob'"},
	        /* By host part and by whole name: nothing left, nothing started. */
	        {ARGV("run", "-H", "u@h1,h2", "-x", "h1", "-x", "h2", "true"),
	         "--exclude left no target"},
	        {ARGV("run", "-x", "a[1-", "true"), "'[' without ']'"},
	};
	struct result *r = malloc(sizeof(*r));
	size_t i;

	CHECK(r != NULL);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_cli(r, NULL, cases[i].argv);
		CHECK_RUN(r, r->status == 2);
		CHECK_RUN(r, strstr(r->err, cases[i].says) != NULL);
		/* One message and one hint, nothing on stdout. */
		CHECK_RUN(r, count_lines_with(r->err, "\n") == 2);
		CHECK_RUN(r, r->outlen == 0);
	}
	run_cli(r, NULL, (const char *const[]){"mitogen", NULL});
	CHECK_RUN(r, r->status == 2 && strstr(r->err, "no verb given") != NULL);
	free(r);
}

TEST(cli_help_and_version)
{
	struct result *r = malloc(sizeof(*r));

	CHECK(r != NULL);
	run_cli(r, NULL, ARGV("--version"));
	CHECK_RUN(r, r->status == 0 && strncmp(r->out, "mitogen " MG_VERSION_STRING, 13) == 0);
	run_cli(r, NULL, ARGV("--help"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "run ") && strstr(r->out, "Exit status"));
	run_cli(r, NULL, ARGV("run", "--help"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "mitogen run [options]") &&
	                     strstr(r->out, "--timeout") && strstr(r->out, "130 interrupted"));
	run_cli(r, NULL, ARGV("ping", "--help"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "--count") && !strstr(r->out, "--timeout"));
	free(r);
}

/* ---- local targets ------------------------------------------------------ */

/* --stdin: every command gets the whole of the tool's input; without it
 * their stdin is /dev/null, whatever the tool's is. */
TEST(cli_run_stdin)
{
	struct result *r = malloc(sizeof(*r));
	char path[] = "/tmp/mg-cli-stdin-XXXXXX", want[64], cmd[96];
	struct spawn sp = {.stdin_path = path};
	static char data[300000];
	size_t i;
	int fd;

	CHECK(r != NULL);
	for (i = 0; i < sizeof(data); i++)
		data[i] = (char)('a' + i % 26 + (i % 997 == 0 ? -32 : 0));
	CHECK((fd = mkstemp(path)) >= 0);
	CHECK(write(fd, data, sizeof(data)) == (ssize_t)sizeof(data));
	close(fd);
	run_cli(r, &sp, ARGV("run", "--local", "3", "--stdin", "--", "wc -c"));
	snprintf(want, sizeof(want), ": %zu\n", sizeof(data));
	CHECK_RUN(r, r->status == 0 && count_lines_with(r->out, want) == 3);
	/* The same bytes: local targets see the file they came from. */
	snprintf(cmd, sizeof(cmd), "cmp - %s && echo same", path);
	run_cli(r, &sp, ARGV("run", "--local", "2", "--stdin", "--", cmd));
	CHECK_RUN(r, r->status == 0 && count_lines_with(r->out, ": same\n") == 2);
	run_cli(r, &sp, ARGV("run", "--local", "1", "--", "wc -c"));
	CHECK_RUN(r, r->status == 0 && strcmp(r->out, "local: 0\n") == 0);
	/* Only one thing can read the tool's stdin. */
	run_cli(r, &sp, ARGV("run", "--stdin", "--hostfile", "-", "true"));
	CHECK_RUN(r, r->status == 2 && strstr(r->err, "both want standard input") != NULL);
	CHECK(unlink(path) == 0);
	free(r);
}

TEST(cli_run_prefixes_lines)
{
	struct result *r = malloc(sizeof(*r));

	CHECK(r != NULL);
	run_cli(r, NULL, ARGV("run", "--local", "3", "--", "echo out-$((40+2)); echo err >&2"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r, strstr(r->out, "local1: out-42\n") && strstr(r->out, "local2: out-42\n") &&
	                     strstr(r->out, "local3: out-42\n"));
	CHECK_RUN(r, count_lines_with(r->out, "\n") == 3);
	CHECK_RUN(r, strstr(r->err, "local1: err\n") && strstr(r->err, "local3: err\n"));
	CHECK_RUN(r, count_lines_with(r->err, "\n") == 3);

	/* A failing command: its status on stderr, exit status 1. */
	run_cli(r, NULL, ARGV("run", "--local", "2", "printf partial; exit 7"));
	CHECK_RUN(r, r->status == 1);
	CHECK_RUN(r, strstr(r->out, "local1: partial\n") && strstr(r->out, "local2: partial\n"));
	CHECK_RUN(r, strstr(r->err, "mitogen: local1: exit status 7") &&
	                     strstr(r->err, "mitogen: local2: exit status 7"));

	/* A command timeout kills it. */
	run_cli(r, NULL, ARGV("run", "--local", "1", "-T", "0.3", "sleep 30"));
	CHECK_RUN(r, r->status == 1 && strstr(r->err, "timed out"));

	/* -N: the lines as they are (pdsh -N). */
	run_cli(r, NULL, ARGV("run", "--local", "2", "-N", "echo hi; echo oops >&2"));
	CHECK_RUN(r, r->status == 0 && strcmp(r->out, "hi\nhi\n") == 0);
	CHECK_RUN(r, strcmp(r->err, "oops\noops\n") == 0);

	/* 100 MB with no newline: the tool keeps at most a bounded part of a
	 * line (printed in parts, each prefixed), not all of it; with -N the
	 * bytes go out as they are. */
	{
		char path[] = "/tmp/mg-cli-long-XXXXXX";
		struct spawn sp = {.stdout_path = path};
		struct stat st;
		int fd = mkstemp(path);

		CHECK(fd >= 0 && close(fd) == 0);
		run_cli(r, &sp, ARGV("run", "--local", "1", "head -c 100000000 /dev/zero"));
		CHECK_RUN(r, r->status == 0 && r->maxrss_kb < 40 * 1024);
		CHECK(stat(path, &st) == 0 && st.st_size > 100000000);
		run_cli(r, &sp,
		        ARGV("run", "--local", "1", "-N", "head -c 10000000 /dev/zero; echo"));
		CHECK_RUN(r, r->status == 0 && r->maxrss_kb < 40 * 1024);
		CHECK(stat(path, &st) == 0 && st.st_size == 10000001);
		CHECK(unlink(path) == 0);
	}

	/* Options end at the command: these are echo's words. */
	run_cli(r, NULL, ARGV("run", "--local", "1", "echo", "-N", "-H", "x"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, ": -N -H x\n") != NULL);
	free(r);
}

TEST(cli_exclude_leaves_targets_out)
{
	struct result *r = malloc(sizeof(*r));

	CHECK(r != NULL);
	run_cli(r, NULL,
	        ARGV("run", "--local", "4", "-x", "local2", "--exclude", "local[3-3]", "--",
	             "echo hi"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r, strstr(r->out, "local1: hi\n") && strstr(r->out, "local4: hi\n"));
	CHECK_RUN(r, count_lines_with(r->out, "\n") == 2);
	free(r);
}

TEST(cli_gather_identical_output)
{
	struct result *r = malloc(sizeof(*r));

	CHECK(r != NULL);
	run_cli(r, NULL, ARGV("run", "--local", "4", "-b", "echo same; echo two >&2"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r, strcmp(r->out, "---------------\nlocal[1-4] (4)\n---------------\n"
	                            "same\ntwo\n") == 0 ||
	                     strcmp(r->out, "---------------\nlocal[1-4] (4)\n---------------\n"
	                                    "two\nsame\n") == 0);
	free(r);
}

TEST(cli_json_lines)
{
	struct result *r = malloc(sizeof(*r));
	char *line, *save = NULL;
	int n = 0;

	CHECK(r != NULL);
	run_cli(r, NULL,
	        ARGV("run", "--local", "2", "--json", "printf '%s\\n' 'hi\\there'; exit 3"));
	CHECK_RUN(r, r->status == 1);
	CHECK_RUN(r, r->errlen == 0);
	for (line = strtok_r(r->out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		CHECK(line[0] == '{' && line[strlen(line) - 1] == '}');
		CHECK(strstr(line, "\"target\":\"local1\"") ||
		      strstr(line, "\"target\":\"local2\""));
		CHECK(strstr(line, "\"status\":\"failed\",\"ok\":false"));
		CHECK(strstr(line, "\"exit_code\":3"));
		CHECK(strstr(line, "\"stdout\":\"hi\\\\there\\n\""));
		n++;
	}
	CHECK_EQ(n, 2);
	free(r);
}

TEST(cli_call_with_json_arguments)
{
	struct result *r = malloc(sizeof(*r));

	CHECK(r != NULL);
	run_cli(r, NULL,
	        ARGV("call", "--local", "2", "mg.echo",
	             "{\"k\": [1, -2, 2.5, null, true, \"\\u00e9\\ud83d\\ude00\"], \"e\": {}}"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r,
	          strstr(r->out, "local1: {\"k\":[1,-2,2.5,null,true,\"\xc3\xa9\xf0\x9f\x98\x80\"],"
	                         "\"e\":{}}\n") != NULL);
	CHECK_RUN(r, strstr(r->out, "local2: {\"k\""));

	run_cli(r, NULL, ARGV("call", "--local", "1", "--json", "mg.ping"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "\"result\":true}\n"));

	/* A remote error keeps its type and message. */
	run_cli(r, NULL,
	        ARGV("call", "--local", "1", "mg.fail", "\"KeyError\"", "\"no such key\""));
	CHECK_RUN(r, r->status == 1 && strstr(r->err, "local: KeyError: no such key"));
	free(r);
}

TEST(cli_ping)
{
	struct result *r = malloc(sizeof(*r));

	CHECK(r != NULL);
	run_cli(r, NULL, ARGV("ping", "--local", "3", "-c", "5"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r, count_lines_with(r->out, ": ok: connect ") == 3);
	CHECK_RUN(r, strstr(r->out, "local2: ok: connect ") && strstr(r->out, "ms (mean)"));
	run_cli(r, NULL, ARGV("ping", "--local", "1", "--json"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "\"rtt_ms\":"));
	free(r);
}

TEST(cli_put_get_round_trip)
{
	struct result *r = malloc(sizeof(*r));
	char dir[] = "/tmp/mg-cli-XXXXXX", src[128], dst[160], back[128], got[200], buf[8192];
	unsigned char data[5000];
	size_t i;
	int fd, n;

	CHECK(r != NULL);
	CHECK(mkdtemp(dir) != NULL);
	snprintf(src, sizeof(src), "%s/src.bin", dir);
	snprintf(dst, sizeof(dst), "%s/remote/", dir);
	snprintf(back, sizeof(back), "%s/back", dir);
	for (i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7 + (i >> 8));
	CHECK((fd = open(src, O_WRONLY | O_CREAT | O_CLOEXEC, 0640)) >= 0);
	CHECK(write(fd, data, sizeof(data)) == (ssize_t)sizeof(data));
	close(fd);
	snprintf(got, sizeof(got), "%s/remote", dir);
	CHECK(mkdir(got, 0700) == 0 && mkdir(back, 0700) == 0);

	run_cli(r, NULL, ARGV("put", "--local", "2", src, dst));
	CHECK_RUN(r, r->status == 0 && r->outlen == 0);
	snprintf(dst, sizeof(dst), "%s/remote/src.bin", dir);
	/* Options after the operands count for get (as for cp). */
	run_cli(r, NULL, ARGV("get", dst, back, "--local", "2"));
	CHECK_RUN(r, r->status == 0);
	for (i = 1; i <= 2; i++) {
		snprintf(got, sizeof(got), "%s/src.bin.local%zu", back, i);
		CHECK((fd = open(got, O_RDONLY | O_CLOEXEC)) >= 0);
		n = (int)read(fd, buf, sizeof(buf));
		close(fd);
		CHECK_EQ(n, sizeof(data));
		CHECK_MEM(buf, data, sizeof(data));
		CHECK(unlink(got) == 0);
	}
	/* A missing remote file: a clear error per target, status 1. */
	run_cli(r, NULL, ARGV("get", "--local", "1", "/nonexistent/x", back));
	/* The target is named once, not again as the context the error came from. */
	CHECK_RUN(r, r->status == 1 &&
	                     strstr(r->err, "mitogen: local: get /nonexistent/x: [Errno 2] "));
	CHECK(unlink(dst) == 0 && unlink(src) == 0);
	snprintf(got, sizeof(got), "%s/remote", dir);
	CHECK(rmdir(got) == 0 && rmdir(back) == 0 && rmdir(dir) == 0);
	free(r);
}

/* Makes a small file holding text; 0 or -1. */
static int write_small(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
	return close(fd) == 0 && ok ? 0 : -1;
}

/* Reads a small file whole into buf (NUL-ended); its length, or -1. */
static int read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), n;

	if (fd < 0)
		return -1;
	n = (int)read(fd, buf, size - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return n;
}

/* -r: a folder with a subfolder and a symlink goes out and comes back. */
TEST(cli_put_get_recursive)
{
	struct result *r = malloc(sizeof(*r));
	char dir[] = "/tmp/mg-cli-XXXXXX", src[64], dst[64], back[64], p[200], buf[64];
	int i;

	CHECK(r != NULL);
	CHECK(mkdtemp(dir) != NULL);
	snprintf(src, sizeof(src), "%s/src", dir);
	snprintf(dst, sizeof(dst), "%s/tree", dir);
	snprintf(back, sizeof(back), "%s/back", dir);
	CHECK(mkdir(src, 0755) == 0 && mkdir(back, 0700) == 0);
	snprintf(p, sizeof(p), "%s/sub", src);
	CHECK(mkdir(p, 0750) == 0);
	snprintf(p, sizeof(p), "%s/sub/b", src);
	CHECK(write_small(p, "deep\n") == 0);
	snprintf(p, sizeof(p), "%s/a", src);
	CHECK(write_small(p, "top\n") == 0);
	snprintf(p, sizeof(p), "%s/link", src);
	CHECK(symlink("a", p) == 0);

	run_cli(r, NULL, ARGV("put", "-r", "--json", "--local", "1", src, dst));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "\"files\":2"));
	snprintf(p, sizeof(p), "%s/sub/b", dst);
	CHECK(read_small(p, buf, sizeof(buf)) == 5 && strcmp(buf, "deep\n") == 0);
	snprintf(p, sizeof(p), "%s/link", dst);
	CHECK(readlink(p, buf, sizeof(buf)) == 1 && buf[0] == 'a');

	run_cli(r, NULL, ARGV("get", "--recursive", "--local", "2", dst, back));
	CHECK_RUN(r, r->status == 0 && r->outlen == 0);
	for (i = 1; i <= 2; i++) {
		snprintf(p, sizeof(p), "%s/tree.local%d/a", back, i);
		CHECK(read_small(p, buf, sizeof(buf)) == 4 && strcmp(buf, "top\n") == 0);
		snprintf(p, sizeof(p), "%s/tree.local%d/sub/b", back, i);
		CHECK(read_small(p, buf, sizeof(buf)) == 5);
	}

	/* A folder needs -r, and -r needs a folder. */
	run_cli(r, NULL, ARGV("put", "--local", "1", src, dst));
	CHECK_RUN(r, r->status == 2 && strstr(r->err, "a directory (-r copies it)"));
	snprintf(p, sizeof(p), "%s/a", src);
	run_cli(r, NULL, ARGV("put", "-r", "--local", "1", p, dst));
	CHECK_RUN(r, r->status == 2 && strstr(r->err, "not a directory"));
	run_cli(r, NULL, ARGV("get", "--local", "1", dst, back));
	CHECK_RUN(r, r->status == 1 && strstr(r->err, "Is a directory") &&
	                     strstr(r->err, "(-r copies a folder)"));
	/* A file put onto a folder: the hint to copy into it. */
	snprintf(p, sizeof(p), "%s/a", src);
	run_cli(r, NULL, ARGV("put", "--local", "1", p, dst));
	CHECK_RUN(r, r->status == 1 && strstr(r->err, "(end REMOTE with / to copy into it)"));
	run_cli(r, NULL, ARGV("run", "-r", "true"));
	CHECK_RUN(r, r->status == 2 && strstr(r->err, "unknown option '-r'"));

	snprintf(p, sizeof(p), "rm -rf '%s'", dir);
	CHECK(system(p) == 0);
	free(r);
}

TEST(cli_progress_only_on_a_terminal)
{
	struct result *r = malloc(sizeof(*r));
	struct spawn sp = {.pty_stderr = true};

	CHECK(r != NULL);
	run_cli(r, &sp, ARGV("run", "--local", "3", "sleep 1; echo hi"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r, strstr(r->err, "mitogen run: ") && strstr(r->err, "3 running"));
	CHECK_RUN(r, strstr(r->err, "\r\033[K") && strstr(r->err, "\033[32m"));
	CHECK_RUN(r, count_lines_with(r->out, ": hi\n") == 3);

	/* NO_COLOR: the line stays, the colours go. */
	sp.env = (const char *const[]){"NO_COLOR=1", NULL};
	run_cli(r, &sp, ARGV("run", "--local", "2", "sleep 1"));
	CHECK_RUN(r, r->status == 0 && strstr(r->err, "2 running") && !strstr(r->err, "\033[3"));

	/* --no-progress, and stderr on a pipe: nothing at all. */
	sp.env = NULL;
	run_cli(r, &sp, ARGV("run", "--local", "2", "--no-progress", "sleep 1"));
	CHECK_RUN(r, r->status == 0 && r->errlen == 0);
	run_cli(r, NULL, ARGV("run", "--local", "3", "sleep 1; echo hi"));
	CHECK_RUN(r, r->status == 0 && r->errlen == 0);
	free(r);
}

TEST(cli_interrupt_stops_everything)
{
	struct result *r = malloc(sizeof(*r));
	struct spawn sp = {.interrupt_marker = ": started\n", .interrupt_after = 3};
	char sleep_cmd[64], cmd[128];

	CHECK(r != NULL);
	/* A sleep no other process runs, to look for leftovers. */
	snprintf(sleep_cmd, sizeof(sleep_cmd), "sleep 4%d.5", (int)getpid() % 1000);
	snprintf(cmd, sizeof(cmd), "echo started; %s; echo finished", sleep_cmd);
	run_cli(r, &sp, ARGV("run", "--local", "3", cmd));
	CHECK_RUN(r, r->status == 130);
	CHECK_RUN(r, strstr(r->err, "interrupted: 3 of 3 targets did not finish: local[1-3]"));
	CHECK_RUN(r, !strstr(r->out, "finished"));
	CHECK(process_gone(sleep_cmd, 3000));
	CHECK_EQ(cu_wait_no_children(3000), 0);
	free(r);
}

/* Output nobody reads any more (`mitogen run -- yes | head`): the commands
 * are stopped and the tool dies of SIGPIPE, quietly, as a pipeline's
 * writer does.  Output that cannot be written (a full disk) is an error,
 * status 1. */
TEST(cli_output_closed_or_failing)
{
	struct result *r = malloc(sizeof(*r));
	struct spawn head = {.close_stdout_after = 100}, full = {.stdout_path = "/dev/full"};
	char yes_cmd[64];

	CHECK(r != NULL);
	snprintf(yes_cmd, sizeof(yes_cmd), "yes mg-cli-%d", (int)getpid());
	run_cli(r, &head, ARGV("run", "--local", "2", yes_cmd));
	CHECK_RUN(r, r->status == 128 + SIGPIPE && r->errlen == 0);
	CHECK(process_gone(yes_cmd, 3000));
	/* Gathered output, more than the pipe holds, goes at the end: the same. */
	run_cli(r, &head, ARGV("run", "--local", "2", "-b", "seq 1 100000"));
	CHECK_RUN(r, r->status == 128 + SIGPIPE && r->errlen == 0);
	run_cli(r, &full, ARGV("run", "--local", "2", "echo hi"));
	CHECK_RUN(r, r->status == 1 &&
	                     strstr(r->err, "cannot write the output: No space left on device"));
	CHECK_EQ(cu_wait_no_children(3000), 0);
	free(r);
}

/* Whether pid runs: an orphan's zombie, left to whoever adopted it,
 * does not. */
static bool pid_alive(int pid)
{
	char path[64], stat[256], *p;
	FILE *f;
	bool alive = false;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	if (fgets(stat, sizeof(stat), f) != NULL && (p = strrchr(stat, ')')) != NULL)
		alive = p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
	fclose(f);
	return alive;
}

/* Interrupted while every worker waits for a connect: each is woken and
 * the tool ends at once, long before the connects' 60 s.  The connects
 * hang on a ProxyCommand that says it started (a file named after its
 * host, holding its pid) and then reads its input, never answering. */
TEST(cli_interrupt_while_connecting)
{
	struct result *r = malloc(sizeof(*r));
	char dir[] = "/tmp/mg-cli-stuck-XXXXXX", proxy[256], path[300];
	struct spawn sp = {.interrupt_dir = dir, .interrupt_after = 2};
	const char *hosts[] = {"stuck1", "stuck2"};

	CHECK(r != NULL && mkdtemp(dir) != NULL);
	/* cat keeps ssh's end open on fd 3 (its stdout is /dev/null). */
	snprintf(proxy, sizeof(proxy),
	         "ProxyCommand=sh -c 'echo $$ > %s/%%h; exec 3>&1 cat > /dev/null'", dir);
	run_cli(r, &sp,
	        ARGV("run", "-H", "stuck[1-2]", "--ssh-config", "/dev/null", "-o", proxy, "-t",
	             "60", "--no-progress", "true"));
	CHECK_RUN(r, r->status == 130);
	CHECK_RUN(r, strstr(r->err, "interrupted: 2 of 2 targets did not finish: stuck[1-2]"));
	for (size_t i = 0; i < 2; i++) {
		FILE *f;
		int pid = 0, ms;

		snprintf(path, sizeof(path), "%s/%s", dir, hosts[i]);
		CHECK((f = fopen(path, "r")) != NULL);
		CHECK(fscanf(f, "%d", &pid) == 1 && pid > 0);
		fclose(f);
		/* The proxy goes with its ssh (its input ends). */
		for (ms = 0; ms < 3000 && pid_alive(pid); ms += 50)
			usleep(50000);
		CHECK(!pid_alive(pid));
		CHECK_EQ(unlink(path), 0);
	}
	CHECK_EQ(rmdir(dir), 0);
	CHECK_EQ(cu_wait_no_children(3000), 0);
	free(r);
}

/* ---- ssh and sudo ------------------------------------------------------- */

/* A case on the infra: held from begin to end, with a result buffer and
 * the ssh_config every ssh target is reached with. */
struct infra_case {
	struct mg_test_infra inf;
	struct result *r;
	const char *cfg;
};

static void infra_begin(struct infra_case *c)
{
	c->r = malloc(sizeof(*c->r));
	CHECK(c->r != NULL);
	mg_test_infra_up(&c->inf);
	c->cfg = mg_test_infra_get(&c->inf, "MG_INFRA_SSH_CONFIG");
	CHECK(c->cfg != NULL);
}

static void infra_end(struct infra_case *c)
{
	mg_test_infra_put(&c->inf);
	free(c->r);
}

TEST_T(cli_ssh_unreachable_among_reachable, 240)
{
	struct infra_case c;
	struct result *r;
	char hostfile[64];
	FILE *f;

	infra_begin(&c);
	r = c.r;
	/* Two from -H, two from a hosts file (with a comment and a blank). */
	snprintf(hostfile, sizeof(hostfile), "/tmp/mg-cli-hosts-%d", (int)getpid());
	CHECK((f = fopen(hostfile, "w")) != NULL);
	fputs("# the hosts\n\n127.0.0.3, 127.0.0.99  # .99 has no sshd\n", f);
	CHECK(fclose(f) == 0);
	run_cli(r, NULL,
	        ARGV("run", "-H", "127.0.0.[1-2]", "--hostfile", hostfile, "-l", "mgtest",
	             "--ssh-config", c.cfg, "-t", "60", "id -un"));
	CHECK(unlink(hostfile) == 0);
	CHECK_RUN(r, r->status == 3);
	CHECK_RUN(r, strstr(r->out, "127.0.0.1: mgtest\n") &&
	                     strstr(r->out, "127.0.0.2: mgtest\n") &&
	                     strstr(r->out, "127.0.0.3: mgtest\n"));
	CHECK_RUN(r, strstr(r->err, "mitogen: 127.0.0.99: unreachable: ") &&
	                     strstr(r->err, "refused"));
	CHECK_RUN(r, count_lines_with(r->err, "\n") == 1);
	infra_end(&c);
}

TEST_T(cli_ssh_gather_groups_by_output, 240)
{
	struct infra_case c;
	struct result *r;

	infra_begin(&c);
	r = c.r;
	/* sshd reports the address it was reached on: .1-.2 say low, .3-.4 high. */
	run_cli(r, NULL,
	        ARGV("run", "-b", "-H", "mgtest@127.0.0.[1-4]", "--ssh-config", c.cfg, "-t", "60",
	             "set -- $SSH_CONNECTION; case $3 in *.[12]) echo low;; *) echo high;; esac"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r, strstr(r->out, "---------------\nmgtest@127.0.0.[1-2] (2)\n---------------\n"
	                            "low\n") &&
	                     strstr(r->out, "---------------\nmgtest@127.0.0.[3-4] (2)\n"
	                                    "---------------\nhigh\n"));
	{
		/* --stdin through ssh: the same 200 KB for every target. */
		char path[] = "/tmp/mg-cli-stdin-XXXXXX";
		struct spawn sp = {.stdin_path = path};
		int fd = mkstemp(path);

		CHECK(fd >= 0 && ftruncate(fd, 204800) == 0 && close(fd) == 0);
		run_cli(r, &sp,
		        ARGV("run", "-b", "-H", "mgtest@127.0.0.[1-4]", "--ssh-config", c.cfg, "-t",
		             "60", "--stdin", "--", "wc -c"));
		CHECK(unlink(path) == 0);
		CHECK_RUN(r, r->status == 0 && strstr(r->out, "mgtest@127.0.0.[1-4] (4)\n"
		                                              "---------------\n204800\n"));
	}
	infra_end(&c);
}

/* The inode of the one program kept in dir, 0 unless there is exactly
 * one. */
static ino_t kept_inode(const char *dir)
{
	char path[1300];
	struct dirent *e;
	struct stat st;
	ino_t ino = 0;
	int n = 0;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		n++;
		ino = stat(path, &st) == 0 ? st.st_ino : 0;
	}
	closedir(d);
	return n == 1 ? ino : 0;
}

/* --cache: the first run leaves the agent in the user's ~/.cache, the
 * next one boots from it; without it nothing stays. */
TEST_T(cli_ssh_cache, 240)
{
	struct infra_case c;
	struct result *r;
	struct passwd *pw;
	char dir[1024], cmd[2200];
	struct stat st;
	ino_t ino;

	infra_begin(&c);
	r = c.r;
	CHECK((pw = getpwnam("mgtest")) != NULL);
	snprintf(dir, sizeof(dir), "%s/.cache/mitogen-c", pw->pw_dir);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'; rmdir '%s/.cache' 2>/dev/null; true", dir,
	         pw->pw_dir);
	CHECK_EQ(system(cmd), 0);
	run_cli(r, NULL, ARGV("run", "-H", "mgtest@127.0.0.5", "--ssh-config", c.cfg, "echo one"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "127.0.0.5: one\n"));
	CHECK(stat(dir, &st) != 0); /* not asked for: nothing kept */
	run_cli(r, NULL,
	        ARGV("run", "--cache", "-H", "mgtest@127.0.0.5,mgtest@127.0.0.6", "--ssh-config",
	             c.cfg, "echo two"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "127.0.0.5: two\n") &&
	                     strstr(r->out, "127.0.0.6: two\n"));
	CHECK_EQ(stat(dir, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0700);
	CHECK_EQ(st.st_uid, pw->pw_uid);
	CHECK((ino = kept_inode(dir)) != 0);
	/* The next run boots from the kept program: the file is not written
	 * again (a miss would replace it with a new one). */
	run_cli(r, NULL,
	        ARGV("run", "--cache", "-H", "mgtest@127.0.0.5", "--ssh-config", c.cfg,
	             "echo three"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "127.0.0.5: three\n"));
	CHECK_EQ(kept_inode(dir), ino);
	CHECK_EQ(system(cmd), 0);
	infra_end(&c);
}

TEST_T(cli_ssh_interrupt, 240)
{
	struct infra_case c;
	struct result *r;
	struct spawn sp = {.interrupt_marker = ": started\n", .interrupt_after = 2};
	char sleep_cmd[64], cmd[128];

	infra_begin(&c);
	r = c.r;
	snprintf(sleep_cmd, sizeof(sleep_cmd), "sleep 5%d.5", (int)getpid() % 1000);
	snprintf(cmd, sizeof(cmd), "echo started; %s; echo finished", sleep_cmd);
	run_cli(r, &sp,
	        ARGV("run", "-H", "mgtest@127.0.0.[5-6]", "--ssh-config", c.cfg, "-t", "60", cmd));
	CHECK_RUN(r, r->status == 130);
	CHECK_RUN(r, strstr(r->err, "did not finish: mgtest@127.0.0.[5-6]"));
	CHECK(process_gone(sleep_cmd, 5000));
	CHECK_EQ(cu_wait_no_children(3000), 0);
	infra_end(&c);
}

TEST_T(cli_sudo_password, 240)
{
	struct infra_case c;
	struct result *r;
	static char good[256];
	struct spawn sp = {.user = "mgtest",
	                   .env = (const char *const[]){"MITOGEN_SUDO_PASSWORD=wrong-pw", NULL}};

	infra_begin(&c);
	r = c.r;
	/* mgtest may sudo to mgtest2 with its own password. */
	run_cli(r, &sp, ARGV("run", "--sudo=mgtest2", "id -un"));
	CHECK_RUN(r, r->status == 3);
	CHECK_RUN(r, strstr(r->err, "mitogen: local: sudo: ") && strstr(r->err, "password"));
	CHECK_RUN(r, !strstr(r->err, "wrong-pw") && r->outlen == 0);

	snprintf(good, sizeof(good), "MITOGEN_SUDO_PASSWORD=%s",
	         mg_test_infra_get(&c.inf, "MG_INFRA_PASSWORD"));
	sp.env = (const char *const[]){good, NULL};
	run_cli(r, &sp, ARGV("run", "--local", "2", "--sudo=mgtest2", "id -un"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r, strstr(r->out, "local1: mgtest2\n") && strstr(r->out, "local2: mgtest2\n"));

	/* --ask-sudo-pass reads it from the terminal, without echo. */
	sp.env = NULL;
	sp.tty_answer = mg_test_infra_get(&c.inf, "MG_INFRA_PASSWORD");
	run_cli(r, &sp, ARGV("run", "--ask-sudo-pass", "--sudo=mgtest2", "id -un"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "local: mgtest2\n"));
	CHECK(strstr(r->tty, "sudo password: ") != NULL);
	CHECK(strstr(r->tty, sp.tty_answer) == NULL);
	/* Without a terminal it is a usage error. */
	sp.tty_answer = NULL;
	run_cli(r, &sp, ARGV("run", "--ask-sudo-pass", "--sudo=mgtest2", "id -un"));
	CHECK_RUN(r, r->status == 2 && strstr(r->err, "--ask-sudo-pass needs a terminal"));
	infra_end(&c);
}

TEST_T(cli_via_gateway, 240)
{
	struct infra_case c;
	struct result *r;
	static char pw[256];
	struct spawn sp = {0};

	infra_begin(&c);
	r = c.r;
	/* Local contexts started by the gateway run as its user. */
	run_cli(r, NULL,
	        ARGV("run", "--local", "2", "--via", "mgtest@127.0.0.7", "--ssh-config", c.cfg,
	             "-t", "60", "id -un"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r, strstr(r->out, "local1: mgtest\n") && strstr(r->out, "local2: mgtest\n"));
	/* A gateway that cannot be reached: said once, status 3. */
	run_cli(r, NULL,
	        ARGV("run", "--local", "2", "--via", "mgtest@127.0.0.99", "--ssh-config", c.cfg,
	             "true"));
	CHECK_RUN(r, r->status == 3 && strstr(r->err, "mitogen: gateway mgtest@127.0.0.99: "));
	/* ssh through the gateway, then sudo on the target: ssh, ssh, sudo. */
	snprintf(pw, sizeof(pw), "MITOGEN_BECOME_PASSWORD=%s",
	         mg_test_infra_get(&c.inf, "MG_INFRA_PASSWORD"));
	sp.env = (const char *const[]){pw, NULL};
	run_cli(r, &sp,
	        ARGV("run", "-H", "mgtest@127.0.0.[8-9]", "--via", "mgtest@127.0.0.7",
	             "--ssh-config", c.cfg, "-t", "60", "--sudo=mgtest2", "id -un"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r, strstr(r->out, "mgtest@127.0.0.8: mgtest2\n") &&
	                     strstr(r->out, "mgtest@127.0.0.9: mgtest2\n"));
	infra_end(&c);
}

TEST_T(cli_su_and_doas, 240)
{
	struct infra_case c;
	struct result *r;
	static char good[256];
	struct spawn sp = {.user = "mgtest",
	                   .env = (const char *const[]){"MITOGEN_BECOME_PASSWORD=wrong-pw", NULL}};

	infra_begin(&c);
	r = c.r;
	/* su wants the target user's password: a wrong one is a clear
	 * failure that does not show it. */
	run_cli(r, &sp, ARGV("run", "--su=mgtest2", "id -un"));
	CHECK_RUN(r, r->status == 3);
	CHECK_RUN(r, strstr(r->err, "mitogen: local: su: ") != NULL);
	CHECK_RUN(r, !strstr(r->err, "wrong-pw") && r->outlen == 0);
	snprintf(good, sizeof(good), "MITOGEN_BECOME_PASSWORD=%s",
	         mg_test_infra_get(&c.inf, "MG_INFRA_PASSWORD2"));
	sp.env = (const char *const[]){good, NULL};
	run_cli(r, &sp, ARGV("run", "--local", "2", "--su=mgtest2", "id -un"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r, strstr(r->out, "local1: mgtest2\n") && strstr(r->out, "local2: mgtest2\n"));
	/* doas to mgtest3 is a nopass rule. */
	sp.env = NULL;
	run_cli(r, &sp, ARGV("run", "--doas=mgtest3", "id -un"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "local: mgtest3\n"));
	/* Two ways to become at once is a usage error. */
	run_cli(r, &sp, ARGV("run", "--su", "--doas=mgtest3", "true"));
	CHECK_RUN(r, r->status == 2 && strstr(r->err, "--su and --doas do not go together"));
	infra_end(&c);
}
