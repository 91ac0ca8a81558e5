/*
 * cli_util.h: how test_cli and test_cli_ssh drive the mitogen tool: the real
 * binary (build/cli/mitogen) started with fork/exec, its stdout and stderr
 * read through pipes (or stderr through a pseudo-terminal for the progress
 * line), its exit status and peak memory kept; and looking for processes a
 * run left behind.
 */
#ifndef MG_TEST_CLI_UTIL_H
#define MG_TEST_CLI_UTIL_H

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

static inline const char *cli_path(void)
{
	static char path[4200];

	snprintf(path, sizeof(path), "%s/cli/mitogen", cu_build_dir());
	if (access(path, X_OK) != 0)
		mg_test_fail(__FILE__, __LINE__, "%s: not built", path);
	return path;
}

static inline void become(const char *user)
{
	struct passwd *pw = getpwnam(user);

	if (pw == NULL || initgroups(user, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
	    setuid(pw->pw_uid) != 0 || chdir("/tmp") != 0)
		_exit(126);
	setenv("HOME", pw->pw_dir, 1);
	setenv("USER", user, 1);
	setenv("LOGNAME", user, 1);
}

static inline size_t count_lines_with(const char *text, const char *needle)
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
static inline size_t dir_entries(const char *dir)
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
static inline void run_cli(struct result *r, const struct spawn *sp, const char *const *argv)
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
static inline bool process_running(const char *cmd)
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
static inline bool process_gone(const char *cmd, int ms)
{
	for (; ms > 0; ms -= 50) {
		if (!process_running(cmd))
			return true;
		usleep(50000);
	}
	return !process_running(cmd);
}

#endif
