/*
 * exec_spawn.c: from a decoded spec to a running process.  Everything that
 * allocates (argv, the environment, the PATH search) happens before the
 * child is made; the child then only makes plain system calls, because it
 * runs in the context's memory (or, under sanitizers, a fork of it whose
 * other threads' locks it could inherit held).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "services/exec.h"

extern char **environ;

#define SPEC_MAX_STRINGS 65536
#define SPEC_KEY_MAX 32

static void strv_free(char **v)
{
	size_t i;

	for (i = 0; v != NULL && v[i] != NULL; i++)
		free(v[i]);
	free(v);
}

void mg__exec_spec_fini(struct exec_spec *s)
{
	strv_free(s->argv);
	strv_free(s->envp);
	free(s->path);
	free(s->cwd);
	free(s->stdin_data);
	memset(s, 0, sizeof(*s));
}

static char *dup_n(const char *p, size_t n)
{
	char *d;

	if (memchr(p, '\0', n) != NULL || (d = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

/* Reads an array of strings into a new NULL-ended vector. */
static int read_strv(struct mg_msg *m, char ***vp)
{
	const char *p;
	size_t n, i, len;
	char **v;

	if (mg_msg_read(m, "a", &n) != 0 || n > SPEC_MAX_STRINGS)
		return MG_EDECODE;
	if ((v = calloc(n + 1, sizeof(*v))) == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (mg_msg_read(m, "S", &p, &len) != 0 || (v[i] = dup_n(p, len)) == NULL) {
			strv_free(v);
			return MG_EDECODE;
		}
	}
	*vp = v;
	return 0;
}

static size_t name_len(const char *e)
{
	const char *eq = strchr(e, '=');

	return eq ? (size_t)(eq - e) : strlen(e);
}

/* The process's environment: ours (unless cleared) with the spec's
 * "NAME=value" entries set and bare "NAME" entries removed. */
static int build_env(char **changes, bool clear, char ***envp)
{
	size_t n = 0, i, j, k, cap;
	char **e, **src = clear ? NULL : environ;

	for (i = 0; src != NULL && src[i] != NULL; i++)
		n++;
	for (i = 0; changes != NULL && changes[i] != NULL; i++)
		n++;
	cap = n + 1;
	if ((e = calloc(cap, sizeof(*e))) == NULL)
		return -ENOMEM;
	k = 0;
	for (i = 0; src != NULL && src[i] != NULL; i++)
		if ((e[k++] = strdup(src[i])) == NULL)
			goto nomem;
	for (i = 0; changes != NULL && changes[i] != NULL; i++) {
		size_t nl = name_len(changes[i]);
		/* Drop every earlier entry of that name, then add the new one. */
		for (j = 0; j < k;) {
			if (name_len(e[j]) == nl && memcmp(e[j], changes[i], nl) == 0) {
				free(e[j]);
				e[j] = e[--k];
				e[k] = NULL;
			} else {
				j++;
			}
		}
		if (strchr(changes[i], '=') != NULL && (e[k++] = strdup(changes[i])) == NULL)
			goto nomem;
	}
	*envp = e;
	return 0;
nomem:
	strv_free(e);
	return -ENOMEM;
}

static const char *env_get(char **envp, const char *name)
{
	size_t n = strlen(name), i;

	for (i = 0; envp[i] != NULL; i++)
		if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
			return envp[i] + n + 1;
	return NULL;
}

/* Finds the program as execvp would, with the process's own PATH.
 * 0, -ENOENT, or -EACCES when only non-executable files were found. */
static int find_program(const char *name, char **envp, char **pathp)
{
	const char *path = env_get(envp, "PATH"), *p, *end;
	char buf[4096];
	int err = -ENOENT;

	if (strchr(name, '/') != NULL)
		return (*pathp = strdup(name)) ? 0 : -ENOMEM;
	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p != '\0'; p = *end ? end + 1 : end) {
		struct stat st;
		int n;
		end = strchrnul(p, ':');
		n = snprintf(buf, sizeof(buf), "%.*s/%s", (int)(end - p), end == p ? "." : p, name);
		if (end == p)
			n = snprintf(buf, sizeof(buf), "./%s", name);
		if (n < 0 || (size_t)n >= sizeof(buf) || stat(buf, &st) != 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (access(buf, X_OK) != 0) {
			err = -EACCES;
			continue;
		}
		return (*pathp = strdup(buf)) ? 0 : -ENOMEM;
	}
	return err;
}

int mg__exec_spec_read(struct mg_call *call, const void *v, size_t n, struct exec_spec *s)
{
	char **env_changes = NULL, key[SPEC_KEY_MAX];
	const char *shell = NULL, *p;
	struct mg_msg *m = NULL;
	bool clear = false;
	size_t pairs, i, len;
	int rc;

	memset(s, 0, sizeof(*s));
	if (mg_msg_new_raw(v, n, &m) != 0)
		return mg_call_fail(call, "MemoryError", "out of memory");
	if (mg_msg_read(m, "m", &pairs) != 0) {
		mg_msg_free(m);
		return mg_call_fail(call, "mitogen.ArgumentError", "the exec spec is not a map");
	}
	for (i = 0, rc = 0; i < pairs && rc == 0; i++) {
		if ((rc = mg__svc_key(m, key, sizeof(key))) != 0)
			break;
		if (strcmp(key, "argv") == 0) {
			rc = read_strv(m, &s->argv);
		} else if (strcmp(key, "shell") == 0) {
			rc = mg_msg_read(m, "s", &shell);
		} else if (strcmp(key, "env") == 0) {
			rc = read_strv(m, &env_changes);
		} else if (strcmp(key, "clear_env") == 0) {
			rc = mg_msg_read(m, "b", &clear);
		} else if (strcmp(key, "cwd") == 0) {
			if ((rc = mg_msg_read(m, "S", &p, &len)) == 0 &&
			    (s->cwd = dup_n(p, len)) == NULL)
				rc = MG_EDECODE;
		} else if (strcmp(key, "stdin") == 0) {
			if ((rc = mg_msg_read(m, "y", &p, &len)) == 0 && len > 0) {
				if ((s->stdin_data = malloc(len)) == NULL)
					rc = -ENOMEM;
				else
					memcpy(s->stdin_data, p, s->stdin_len = len);
			}
		} else if (strcmp(key, "stdin_stream") == 0) {
			rc = mg_msg_read(m, "b", &s->stdin_stream);
		} else if (strcmp(key, "pty") == 0) {
			rc = mg_msg_read(m, "b", &s->pty);
		} else if (strcmp(key, "timeout_ms") == 0) {
			rc = mg_msg_read(m, "i", &s->timeout_ms);
		} else if (strcmp(key, "window") == 0) {
			rc = mg_msg_read(m, "u", &s->window);
		} else if (strcmp(key, "collect") == 0) {
			rc = mg_msg_read(m, "u", &s->collect);
		} else {
			/* Unknown keys are skipped: a newer caller may ask for
			 * something this agent does not know, which it ignores. */
			rc = mg_msg_read(m, "v", &p, &len);
		}
	}
	if (rc == 0 && shell != NULL && s->argv == NULL) {
		if ((s->argv = calloc(4, sizeof(char *))) == NULL ||
		    !(s->argv[0] = strdup("/bin/sh")) || !(s->argv[1] = strdup("-c")) ||
		    !(s->argv[2] = strdup(shell)))
			rc = -ENOMEM;
	}
	mg_msg_free(m);
	if (rc != 0) {
		strv_free(env_changes);
		return mg_call_fail(call, "mitogen.ArgumentError", "bad exec spec near \"%s\": %s",
		                    key, mg_strerror(rc));
	}
	if (s->argv == NULL || s->argv[0] == NULL) {
		strv_free(env_changes);
		return mg_call_fail(call, "mitogen.ArgumentError", "no argv and no shell command");
	}
	s->window = mg__svc_window(s->window);
	if (s->collect > EXEC_COLLECT_MAX)
		s->collect = EXEC_COLLECT_MAX;
	rc = build_env(env_changes, clear, &s->envp);
	strv_free(env_changes);
	if (rc != 0)
		return mg_call_fail(call, "MemoryError", "out of memory");
	if ((rc = find_program(s->argv[0], s->envp, &s->path)) != 0)
		return mg__svc_fail_errno(call, -rc, s->argv[0]);
	return 0;
}

/* ---- the child -------------------------------------------------------- */

enum { STAGE_SETUP = 1, STAGE_CWD = 2, STAGE_EXEC = 3 };

/* dup2 that also clears close-on-exec when the fd is already in place. */
static int move_fd(int from, int to)
{
	if (from == to)
		return fcntl(to, F_SETFD, 0);
	return dup2(from, to) < 0 ? -1 : 0;
}

/* What the child needs, and where it says what failed.  With
 * CLONE_VM the child writes stage and err straight into this struct,
 * which the parent reads once the child has exec'd or exited. */
struct child_args {
	const struct exec_spec *s;
	int in_r, out_w, err_w;
	const char *pts;
	int errfd; /* fork builds: the pipe that carries stage and errno */
	volatile int stage, err;
};

static void child_fail(struct child_args *a, int stage)
{
	int v[2] = {stage, errno};

	a->stage = stage;
	a->err = errno ? errno : EIO;
	if (a->errfd >= 0 && write(a->errfd, v, sizeof(v)) < 0) {
		/* Nothing left to tell anyone with. */
	}
	_exit(127);
}

/* Runs between clone and exec, on a borrowed stack and in the parent's
 * memory: plain system calls only, nothing that allocates or locks. */
static int child_main(void *arg)
{
	struct child_args *a = arg;
	const struct exec_spec *s = a->s;
	int in_r = a->in_r, out_w = a->out_w, err_w = a->err_w;
	int fd;

	/* The context may block or ignore signals for its own threads; a
	 * command starts with the defaults, as from a shell.  Every signal is
	 * blocked until then, so no handler of the context's runs here. */
	mg__spawn_reset_signals(~(uint64_t)0);
	if (setsid() < 0)
		child_fail(a, STAGE_SETUP);
	if (a->pts != NULL) {
		/* Opening the pty's slave as a session leader makes it the
		 * controlling terminal; TIOCSCTTY says so explicitly. */
		if ((fd = open(a->pts, O_RDWR | O_CLOEXEC)) < 0)
			child_fail(a, STAGE_SETUP);
		ioctl(fd, TIOCSCTTY, 0);
		out_w = fd;
		err_w = fd;
		/* Without stdin of the caller's, the terminal is stdin too, as
		 * programs that check for one (tty, sudo, ssh) expect. */
		if (in_r < 0)
			in_r = fd;
	}
	if (in_r < 0 && (in_r = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
		child_fail(a, STAGE_SETUP);
	/* Keep the pipe ends clear of 0..2 before moving them there. */
	if (move_fd(in_r, 0) != 0 || move_fd(out_w, 1) != 0 || move_fd(err_w, 2) != 0)
		child_fail(a, STAGE_SETUP);
	if (s->cwd != NULL && chdir(s->cwd) != 0)
		child_fail(a, STAGE_CWD);
	execve(s->path, s->argv, s->envp);
	child_fail(a, STAGE_EXEC);
	return 127;
}

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)

/* clone(CLONE_VM | CLONE_VFORK), as posix_spawn does: no copy of the
 * context's page tables (a fork of a context with many threads and
 * buffers cost most of a short command's time), and this thread sleeps
 * until the child has exec'd or failed, so a->stage is final on return. */
static pid_t start_child(struct child_args *a)
{
	/* The child's stack is in this frame, unused while we sleep. */
	static const size_t stack_size = 32768;
	char stack[32768] __attribute__((aligned(16)));
	sigset_t all, old;
	pid_t pid;
	int e;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = clone(child_main, stack + stack_size, CLONE_VM | CLONE_VFORK | SIGCHLD, a);
	e = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return pid;
}

#else

/* Sanitizer runtimes cannot follow a child sharing their memory: fork,
 * and hear of a failure through a pipe that closes at exec. */
static pid_t start_child(struct child_args *a)
{
	int ep[2], v[2];
	ssize_t n;
	pid_t pid;

	if (pipe2(ep, O_CLOEXEC) != 0)
		return -1;
	if ((pid = fork()) == 0) {
		close(ep[0]);
		a->errfd = ep[1];
		child_main(a);
	}
	close(ep[1]);
	if (pid > 0) {
		do
			n = read(ep[0], v, sizeof(v));
		while (n < 0 && errno == EINTR);
		if (n == (ssize_t)sizeof(v)) {
			a->stage = v[0];
			a->err = v[1];
		}
	}
	close(ep[0]);
	return pid;
}

#endif

/* A pty whose master we read; *ptsp receives the slave's name. */
static int open_pty(char *pts, size_t size)
{
	int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (grantpt(fd) != 0 || unlockpt(fd) != 0 || ptsname_r(fd, pts, size) != 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

int mg__exec_spawn(const struct exec_spec *s, struct exec_proc *p, const char **whatp)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	struct child_args args;
	int master = -1, rc = 0;
	char pts[128];
	pid_t pid;

	*whatp = s->argv[0];
	if ((s->stdin_stream || s->stdin_data != NULL) && pipe2(in, O_CLOEXEC) != 0)
		goto fail_errno;
	if (s->pty) {
		if ((master = open_pty(pts, sizeof(pts))) < 0) {
			rc = master;
			goto out;
		}
	} else if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
		goto fail_errno;
	}
	args = (struct child_args){.s = s,
	                           .in_r = in[0],
	                           .out_w = out[1],
	                           .err_w = err[1],
	                           .pts = s->pty ? pts : NULL,
	                           .errfd = -1};
	if ((pid = start_child(&args)) < 0)
		goto fail_errno;
	if (args.stage != 0) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		rc = -args.err;
		*whatp = args.stage == STAGE_CWD    ? s->cwd
		         : args.stage == STAGE_EXEC ? s->path
		                                    : "setup";
		goto out;
	}
	p->pid = pid;
	p->in_fd = in[1];
	in[1] = -1;
	if (s->pty) {
		p->out_fd = master;
		master = -1;
		p->err_fd = -1;
	} else {
		p->out_fd = out[0];
		p->err_fd = err[0];
		out[0] = err[0] = -1;
		/* Bigger pipes mean fewer wake-ups per megabyte of output. */
		fcntl(p->out_fd, F_SETPIPE_SZ, 1024 * 1024);
		fcntl(p->err_fd, F_SETPIPE_SZ, 1024 * 1024);
		fcntl(p->err_fd, F_SETFL, O_NONBLOCK);
	}
	fcntl(p->out_fd, F_SETFL, O_NONBLOCK);
	if (p->in_fd >= 0)
		fcntl(p->in_fd, F_SETFL, O_NONBLOCK);
	goto out;
fail_errno:
	rc = -errno;
	*whatp = "pipe";
out:
	close_fd(&in[0]);
	close_fd(&in[1]);
	close_fd(&out[0]);
	close_fd(&out[1]);
	close_fd(&err[0]);
	close_fd(&err[1]);
	close_fd(&master);
	return rc;
}
