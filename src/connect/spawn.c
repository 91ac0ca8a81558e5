/*
 * spawn.c: starting a child process as cheaply as the kernel allows, and
 * waiting for one with a deadline.
 *
 * The child is made with clone(CLONE_VM | CLONE_VFORK), as posix_spawn
 * does: no page tables are copied, and this thread sleeps until the child
 * has exec'd, so an exec failure is known (through shared memory) before
 * mg__spawn() returns.  Between clone and exec the child runs on a stack
 * carved from this thread's and may only make plain system calls.
 * Sanitizer runtimes cannot follow a thread they did not make, so those
 * builds fork() instead and report a failed exec through a pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "connect/connect.h"

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif
#define MG_CLOSE_RANGE_CLOEXEC (1u << 2)

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define MG_SPAWN_FORK 1
#endif

/* The 16 hex digits after "\n<key>:\t" in text, as a signal mask (bit
 * n - 1 for signal n).  Plain loops, no library calls: this runs in a vfork
 * child, where library state is the parent's. */
static bool status_mask(const char *text, const char *key, uint64_t *maskp)
{
	const char *p, *k;
	uint64_t v = 0;
	int d;

	for (p = text; *p != '\0'; p++) {
		for (k = key; *k != '\0' && p[k - key] == *k; k++)
			;
		if (*k == '\0')
			break;
	}
	if (*p == '\0')
		return false;
	for (p += k - key, d = 0; d < 16; d++, p++) {
		if (*p >= '0' && *p <= '9')
			v = v << 4 | (uint64_t)(*p - '0');
		else if (*p >= 'a' && *p <= 'f')
			v = v << 4 | (uint64_t)(*p - 'a' + 10);
		else
			return false;
	}
	*maskp = v;
	return true;
}

/* Which signals are ignored and which have handlers, from
 * /proc/self/status; false when it cannot be read. */
static bool signal_masks(uint64_t *ignp, uint64_t *cgtp)
{
	char buf[4096];
	ssize_t n;
	int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	/* The kernel hands over the whole text in one read; a short one just
	 * lacks the keys, and then every signal is asked about. */
	n = syscall(SYS_read, fd, buf, sizeof(buf) - 1);
	syscall(SYS_close, fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return status_mask(buf, "\nSigIgn:\t", ignp) && status_mask(buf, "\nSigCgt:\t", cgtp);
}

void mg__spawn_reset_signals(uint64_t unignore)
{
	struct sigaction sa, dfl;
	uint64_t ign = 0, cgt = ~(uint64_t)0;
	bool known = signal_masks(&ign, &cgt);
	sigset_t none;
	int sig;

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	/* The kernel lists which signals have handlers (SigCgt) and which are
	 * ignored (SigIgn): one read instead of asking about each of the 64,
	 * at about a microsecond a system call on a virtual machine.  Without
	 * /proc every signal is asked about. */
	for (sig = 1; sig < NSIG && sig <= 64; sig++) {
		uint64_t bit = (uint64_t)1 << (sig - 1);
		bool back = (unignore & bit) != 0;

		/* The C library's own (SIGCANCEL, SIGSETXID) are not ours. */
		if (sig >= 32 && sig < SIGRTMIN)
			continue;
		if (known && !(cgt & bit) && !(back && (ign & bit)))
			continue;
		if (!known) {
			if (sigaction(sig, NULL, &sa) != 0 || sa.sa_handler == SIG_DFL)
				continue;
			if (sa.sa_handler == SIG_IGN && !back)
				continue;
		}
		sigaction(sig, &dfl, NULL);
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

struct child_args {
	const struct mg_spawn *sp;
	const char *fd_path; /* /proc/self/fd/N for kernels without execveat */
	pid_t parent;
	int err_pipe;     /* fork builds: where the child reports errno */
	volatile int err; /* errno of what failed, read by the parent */
};

int mg__spawn_child_fds(int chan, int err)
{
	/* A source below 3 could be overwritten by an earlier dup2. */
	if (chan < 3 && (chan = fcntl(chan, F_DUPFD_CLOEXEC, 3)) < 0)
		return -1;
	if (err < 3 && (err = fcntl(err, F_DUPFD_CLOEXEC, 3)) < 0)
		return -1;
	if (dup2(chan, 0) < 0 || dup2(chan, 1) < 0 || dup2(err, 2) < 0)
		return -1;
	return 0;
}

static int child_main(void *arg)
{
	struct child_args *a = arg;
	const struct mg_spawn *sp = a->sp;

	if (mg__spawn_child_fds(sp->chan_fd, sp->err_fd) != 0)
		goto fail;
	if (sp->ctty && (setsid() < 0 || ioctl(sp->ctty_fd, TIOCSCTTY, 0) != 0))
		goto fail;
	/* Without a pty of its own a child still leaves the caller's session:
	 * Ctrl-C at the caller's terminal must reach the caller alone, which
	 * then stops its contexts in order (an ssh killed by it would drop its
	 * context before the commands there were stopped), and a child cannot
	 * prompt on the caller's terminal behind its back. */
	if (!sp->ctty && setsid() < 0)
		goto fail;
	/* Die with the thread that made us: the broker or its helper, which
	 * live as long as the router (see local.c). */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
		goto fail;
	if (getppid() != a->parent) {
		errno = ESRCH;
		goto fail;
	}
	/* Fds other threads opened without O_CLOEXEC must not leak in; the
	 * exec fd itself must survive until exec, so mark rather than close. */
	syscall(SYS_close_range, 3u, ~0u, MG_CLOSE_RANGE_CLOEXEC);
	mg__spawn_reset_signals((uint64_t)1 << (SIGPIPE - 1) | (uint64_t)1 << (SIGXFSZ - 1));
	if (sp->exec_fd >= 0) {
		syscall(SYS_execveat, sp->exec_fd, "", sp->argv, sp->envp, AT_EMPTY_PATH);
		if (errno == ENOSYS)
			execve(a->fd_path, sp->argv, sp->envp);
	} else {
		execve(sp->path, sp->argv, sp->envp);
	}
fail:
	a->err = errno ? errno : EIO;
	if (a->err_pipe >= 0 && write(a->err_pipe, (const void *)&a->err, sizeof(int)) < 0)
		_exit(126);
	_exit(127);
}

#ifndef MG_SPAWN_FORK

static pid_t start_child(struct child_args *a, int *pidfdp)
{
	/* The child's stack lives in this frame: the parent sleeps until the
	 * child has exec'd or exited, so nothing else uses it meanwhile. */
	static const size_t stack_size = 32768;
	char stack[32768] __attribute__((aligned(16)));
	int flags = CLONE_VM | CLONE_VFORK | SIGCHLD;
	pid_t pid;

	*pidfdp = -1;
	pid = clone(child_main, stack + stack_size, flags | CLONE_PIDFD, a, pidfdp);
	if (pid < 0 && errno == EINVAL) {
		*pidfdp = -1;
		pid = clone(child_main, stack + stack_size, flags, a);
	}
	return pid;
}

#else

static pid_t start_child(struct child_args *a, int *pidfdp)
{
	int pfd[2], e = 0;
	ssize_t n;
	pid_t pid;

	*pidfdp = -1;
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		a->err_pipe = pfd[1];
		child_main(a);
	}
	close(pfd[1]);
	if (pid > 0) {
		/* The child reports errno on the pipe only when exec fails. */
		while ((n = read(pfd[0], &e, sizeof(e))) < 0 && errno == EINTR)
			;
		a->err = n == (ssize_t)sizeof(e) ? e : 0;
	}
	close(pfd[0]);
	return pid;
}

#endif

int mg__spawn(struct mg_spawn *sp)
{
	struct child_args a = {.sp = sp, .parent = getpid(), .err_pipe = -1};
	char fd_path[32];
	sigset_t all, old;
	int pidfd, status, e;
	pid_t pid;

	snprintf(fd_path, sizeof(fd_path), "/proc/self/fd/%d", sp->exec_fd);
	a.fd_path = fd_path;
	/* No handler of ours may run in the child before it has exec'd. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = start_child(&a, &pidfd);
	e = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0)
		return -e;
	if (a.err != 0) {
		mg__proc_wait(pid, pidfd, -1, &status);
		if (pidfd >= 0)
			close(pidfd);
		return -a.err;
	}
	if (pidfd < 0) {
		pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (pidfd >= 0)
			fcntl(pidfd, F_SETFD, FD_CLOEXEC);
	}
	sp->pid = pid;
	sp->pidfd = pidfd < 0 ? -1 : pidfd;
	return 0;
}

int mg__proc_wait(pid_t pid, int pidfd, int ms, int *statusp)
{
	int64_t deadline = ms < 0 ? INT64_MAX : mg__now_ms() + ms;
	int status;

	for (;;) {
		int64_t left = deadline - mg__now_ms();
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid) {
			*statusp = status;
			return 0;
		}
		if (w < 0 && errno != EINTR)
			return -errno;
		if (left <= 0)
			return -ETIMEDOUT;
		if (pidfd >= 0) {
			struct pollfd p = {.fd = pidfd, .events = POLLIN};
			poll(&p, 1, left > INT32_MAX ? -1 : (int)left);
		} else {
			usleep(1000);
		}
	}
}

void mg__proc_describe(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
		         strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "ended with wait status 0x%x", (unsigned)status);
}

void mg__spawn_close_fds(int chan[2], int err[2])
{
	for (int i = 0; i < 2; i++) {
		if (chan[i] >= 0)
			close(chan[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
}
