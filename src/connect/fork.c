/*
 * fork.c: a child that is a fork of the connecting process, so it starts
 * with this process's memory: every exported function, every global, the
 * environment and the working directory.  See docs/FORK.md.
 *
 * The fork happens on the broker thread, for the same reason local.c spawns
 * there (PR_SET_PDEATHSIG follows the forking thread).  In the child only
 * that thread exists: the parent's routers, brokers and dispatcher are
 * memory with no thread behind them, and the child never touches them.  It
 * closes every fd but the channel and its stderr pipe, puts signal handling
 * back to defaults, forgets per-process caches that referred to closed fds,
 * and serves as a context from boot parameters built in memory: no
 * handshake to read, but the ready marker is still written (first thing,
 * before all of that), so the parent side is the same as for a local child.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdio_ext.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "connect/connect.h"

struct fork_launch {
	struct mg_context *c;
	struct mg_boot boot;
};

/* Closes every fd from 3 up, the slow way where close_range is missing.
 * The limit comes from getrlimit rather than sysconf(_SC_OPEN_MAX), the
 * same figure, because musl's sysconf and its table cost the agent 1 KB. */
static void close_from_3(void)
{
	struct rlimit rl;
	rlim_t max = 65536, fd;

	if (syscall(SYS_close_range, 3u, ~0u, 0u) == 0)
		return;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		max = rl.rlim_cur;
	for (fd = 3; fd < max; fd++)
		close((int)fd);
}

/* The child's whole life.  Never returns. */
static void fork_child(int chan, int err, pid_t parent, const struct mg_boot *boot)
{
	/* The ready marker goes first: the parent's wait ends as early as it
	 * can, and the clean-up below overlaps the parent's side of the start
	 * (on a virtual machine every system call and every copy-on-write
	 * fault here costs microseconds).  Nothing below fails unless the
	 * parent is gone or the kernel is out of resources; such a failure
	 * shows as the channel closing, a disconnect. */
	if (mg__hs_write_ready(chan) != 0)
		_exit(127);
	if (mg__spawn_child_fds(chan, err) != 0)
		_exit(127);
	close_from_3();
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(127);
	mg__spawn_reset_signals(0);
	mg__agent_forget();
	mg__via_forget();
	/* Output the parent had buffered is the parent's to write. */
	__fpurge(stdout);
	__fpurge(stderr);
	_exit(mg__child_serve(0, 1, boot));
}

/* Thread: broker. */
static void fork_cb(void *arg)
{
	struct fork_launch *L = arg;
	int sv[2] = {-1, -1}, ep[2] = {-1, -1}, pidfd, r = 0;
	pid_t parent = getpid(), pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
	    pipe2(ep, O_CLOEXEC) != 0) {
		r = -errno;
		goto fail;
	}
	pid = fork();
	if (pid == 0)
		fork_child(sv[1], ep[1], parent, &L->boot);
	r = pid < 0 ? -errno : 0;
	close(sv[1]);
	close(ep[1]);
	sv[1] = ep[1] = -1;
	if (r != 0)
		goto fail;
	/* A pidfd is born close-on-exec. */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	mg__conn_launched(L->c, sv[0], ep[0], pid, pidfd < 0 ? -1 : pidfd);
	mg__free(L);
	return;
fail:
	mg__spawn_close_fds(sv, ep);
	mg__conn_launch_failed(L->c, MG_ECONNECT, "cannot fork: %s", mg_strerror(r));
	mg__free(L);
}

void mg__fork_start(struct mg_context *c, const struct mg_connect_opts *o, mg_conn_done_cb done,
                    void *done_arg)
{
	struct fork_launch *L;
	int r;

	if (mg__conn_new(c, o->connect_timeout_ms, done, done_arg) != 0)
		return;
	if ((L = mg__calloc(1, sizeof(*L))) == NULL) {
		mg__conn_launch_failed(c, -ENOMEM, "out of memory");
		return;
	}
	L->c = c;
	mg__boot_for_child(c->router, c->id, c->name, &L->boot);
	if ((r = mg__conn_post(c, fork_cb, L)) != 0) {
		mg__conn_launch_failed(c, r, "the router is shutting down");
		mg__free(L);
	}
}
