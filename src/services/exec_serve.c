/*
 * exec_serve.c: "mg.exec", run a command in this context.
 *
 *   mg.exec(spec, events, stdin_acks) -> (pid, control, stdin)
 *
 * The call returns as soon as the process runs, so the context's
 * dispatcher is free for other calls (or other commands) meanwhile.  Three
 * threads then look after the process:
 *  - the pump reads stdout and stderr and sends each chunk at once as an
 *    event, but never more than `window` bytes beyond what the caller has
 *    acknowledged, so a slow caller stops the process (the pipe fills)
 *    instead of filling memory; it enforces the timeout, reaps the process
 *    and sends the exit event last;
 *  - the control thread takes acknowledgements and kill requests, and kills
 *    the process group when the caller goes away;
 *  - the stdin thread writes the caller's stdin chunks to the process and
 *    acknowledges them, so stdin is windowed too.
 * Acks and stdin travel on separate handles: a process that does not read
 * its stdin must not stop the acks that let its output flow.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "services/exec.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434 /* the same number on every architecture */
#endif

const char *const mg__exec_services[] = {"mg.exec", NULL};

/* How long output may keep flowing after a timeout kill: a descendant that
 * left the process group can hold the pipes open forever. */
#define KILL_GRACE_MS 1000

struct job {
	struct exec_spec spec;
	struct exec_proc proc;
	struct mg_sender *events, *in_acks;
	struct mg_receiver *ctl_rx, *in_rx;
	int wake_fd; /* eventfd: the control thread wakes the pump */
	int stop_fd; /* eventfd: the pump stops the stdin thread */
	pthread_t ctl_t, in_t;
	bool ctl_started, in_started;
	pthread_mutex_t lock;
	uint64_t acked; /* output bytes the caller has consumed */
	bool gone;      /* the caller went away: discard output */
	bool reaped;    /* the pid may be reused: never signal it again */
	/* On the live list until reaped. */
	struct job *live_prev, *live_next;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void kill_group(struct job *j, int sig)
{
	pthread_mutex_lock(&j->lock);
	if (!j->reaped)
		kill(-j->proc.pid, sig);
	pthread_mutex_unlock(&j->lock);
}

/* Jobs whose process has not been reaped.  A context whose parent goes
 * away exits soon after, and the control threads that would then kill its
 * commands may not get to run first: exit() kills what is left, so a
 * command never outlives the context that ran it. */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static struct job *live_head;
static pthread_once_t live_once = PTHREAD_ONCE_INIT;

static void live_kill_all(void)
{
	struct job *j;

	pthread_mutex_lock(&live_lock);
	for (j = live_head; j != NULL; j = j->live_next)
		kill_group(j, SIGKILL);
	pthread_mutex_unlock(&live_lock);
}

static void live_init(void)
{
	atexit(live_kill_all);
}

static void live_add(struct job *j)
{
	pthread_once(&live_once, live_init);
	pthread_mutex_lock(&live_lock);
	j->live_next = live_head;
	if (live_head != NULL)
		live_head->live_prev = j;
	live_head = j;
	pthread_mutex_unlock(&live_lock);
}

static void live_del(struct job *j)
{
	pthread_mutex_lock(&live_lock);
	if (j->live_prev != NULL)
		j->live_prev->live_next = j->live_next;
	else if (live_head == j)
		live_head = j->live_next;
	if (j->live_next != NULL)
		j->live_next->live_prev = j->live_prev;
	j->live_prev = j->live_next = NULL;
	pthread_mutex_unlock(&live_lock);
}

static void poke(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0) {
		/* The counter saturating still leaves it readable. */
	}
}

static void drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing was pending. */
	}
}

static void *control_main(void *arg)
{
	struct job *j = arg;
	struct mg_msg *m;
	int64_t tag, v;
	int rc;

	while ((rc = mg_receiver_get(j->ctl_rx, -1, &m)) == 0) {
		if (mg_msg_read(m, "(ii)", &tag, &v) == 0) {
			if (tag == EXEC_CTL_ACK) {
				pthread_mutex_lock(&j->lock);
				if ((uint64_t)v > j->acked)
					j->acked = (uint64_t)v;
				pthread_mutex_unlock(&j->lock);
				poke(j->wake_fd);
			} else if (tag == EXEC_CTL_KILL && v > 0 && v < NSIG) {
				kill_group(j, (int)v);
			}
		}
		mg_msg_free(m);
	}
	if (rc != MG_ECLOSED) {
		/* The caller (or this context) is going away: a command must not
		 * outlive whoever waits for it. */
		pthread_mutex_lock(&j->lock);
		j->gone = true;
		pthread_mutex_unlock(&j->lock);
		kill_group(j, SIGKILL);
		poke(j->wake_fd);
	}
	return NULL;
}

/* Writes all of p to the non-blocking stdin pipe, waiting for room or for
 * the pump to say stop.  0, -EPIPE, or MG_ECLOSED when told to stop. */
static int write_all(struct job *j, const uint8_t *p, size_t n)
{
	struct pollfd pf[2];
	sigset_t pipe_set;
	struct timespec zero = {0, 0};
	ssize_t w;

	while (n > 0) {
		w = write(j->proc.in_fd, p, n);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN) {
			/* SIGPIPE is blocked on this thread: take the pending one
			 * so it is never delivered to the process. */
			sigemptyset(&pipe_set);
			sigaddset(&pipe_set, SIGPIPE);
			sigtimedwait(&pipe_set, NULL, &zero);
			return -EPIPE;
		}
		pf[0] = (struct pollfd){.fd = j->proc.in_fd, .events = POLLOUT};
		pf[1] = (struct pollfd){.fd = j->stop_fd, .events = POLLIN};
		if (poll(pf, 2, -1) > 0 && pf[1].revents != 0)
			return MG_ECLOSED;
	}
	return 0;
}

static void *stdin_main(void *arg)
{
	struct job *j = arg;
	sigset_t pipe_set;
	int64_t total = 0, tag;
	struct mg_msg *m;
	const void *p;
	size_t n;
	int rc = 0;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
	if (j->spec.stdin_data != NULL)
		rc = write_all(j, j->spec.stdin_data, j->spec.stdin_len);
	while (rc == 0 && j->spec.stdin_stream && mg_receiver_get(j->in_rx, -1, &m) == 0) {
		if (mg_msg_read(m, "ai", &n, &tag) != 0 || tag == EXEC_IN_EOF) {
			mg_msg_free(m);
			break;
		}
		if (tag == EXEC_IN_DATA && mg_msg_read(m, "y", &p, &n) == 0) {
			rc = write_all(j, p, n);
			total = rc == 0 ? total + (int64_t)n : -1;
			/* The ack tells the caller's window this much left its
			 * hands; -1 says the process closed its stdin. */
			mg_sender_sendf(j->in_acks, "(i)", total);
		}
		mg_msg_free(m);
	}
	close(j->proc.in_fd);
	j->proc.in_fd = -1;
	return NULL;
}

/* Waits until the process has exited, without reaping it, so the control
 * thread may signal its group until the very moment it is reaped.  A
 * pidfd (Linux 5.3+) wakes us the moment it exits; without one, polling
 * backs off from 1 ms to 50 ms. */
static void await_exit(struct job *j, int64_t deadline, bool *timed_out)
{
	int pidfd = (int)syscall(SYS_pidfd_open, j->proc.pid, 0);
	siginfo_t si;
	int backoff = 1, tmo;

	for (;;) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)j->proc.pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid == j->proc.pid)
			break;
		if (deadline != 0 && !*timed_out && now_ms() >= deadline) {
			kill_group(j, SIGKILL);
			*timed_out = true;
		}
		tmo = backoff;
		if (pidfd >= 0)
			tmo = deadline != 0 && !*timed_out ? (int)(deadline - now_ms()) : -1;
		struct pollfd pf[2] = {{.fd = j->wake_fd, .events = POLLIN},
		                       {.fd = pidfd, .events = POLLIN}};
		if (poll(pf, 2, tmo) > 0 && pf[0].revents != 0)
			drain(j->wake_fd);
		if (backoff < 50)
			backoff *= 2;
	}
	if (pidfd >= 0)
		close(pidfd);
}

static void job_free(struct job *j)
{
	mg_receiver_free(j->ctl_rx);
	mg_receiver_free(j->in_rx);
	mg_sender_free(j->events);
	mg_sender_free(j->in_acks);
	if (j->proc.out_fd >= 0)
		close(j->proc.out_fd);
	if (j->proc.err_fd >= 0)
		close(j->proc.err_fd);
	if (j->proc.in_fd >= 0)
		close(j->proc.in_fd);
	if (j->wake_fd >= 0)
		close(j->wake_fd);
	if (j->stop_fd >= 0)
		close(j->stop_fd);
	mg__exec_spec_fini(&j->spec);
	pthread_mutex_destroy(&j->lock);
	free(j);
}

/* Reads what is ready on *fd, more while more comes at once, up to a
 * chunk: a fast writer's small writes then travel as few large messages.
 * Closes *fd at EOF (EIO is a pty's EOF). */
static void pump_read(struct job *j, int *fd, int tag, uint8_t *buf, uint64_t *sent, bool gone)
{
	size_t got = 0;
	ssize_t n = 0;

	while (got < SVC_CHUNK) {
		n = read(*fd, buf + got, SVC_CHUNK - got);
		if (n > 0)
			got += (size_t)n;
		else if (n < 0 && errno == EINTR)
			continue;
		else
			break;
	}
	if (got > 0) {
		if (!gone)
			mg_sender_sendf(j->events, "(iy)", (int64_t)tag, buf, got);
		*sent += got;
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		close(*fd);
		*fd = -1;
	}
}

static void *pump_main(void *arg)
{
	struct job *j = arg;
	int64_t deadline = j->spec.timeout_ms > 0 ? now_ms() + j->spec.timeout_ms : 0, grace = 0;
	int *fds[2] = {&j->proc.out_fd, &j->proc.err_fd},
	    tags[2] = {EXEC_EV_STDOUT, EXEC_EV_STDERR};
	bool timed_out = false, open, gone;
	struct pollfd pf[3];
	int idx[3], np, i, tmo, status = 0;
	uint64_t sent = 0;
	uint8_t *buf = NULL;

	while (j->proc.out_fd >= 0 || j->proc.err_fd >= 0) {
		pthread_mutex_lock(&j->lock);
		gone = j->gone;
		open = gone || sent - j->acked < j->spec.window;
		pthread_mutex_unlock(&j->lock);
		np = 0;
		pf[np++] = (struct pollfd){.fd = j->wake_fd, .events = POLLIN};
		for (i = 0; open && i < 2; i++) {
			if (*fds[i] >= 0) {
				idx[np] = i;
				pf[np++] = (struct pollfd){.fd = *fds[i], .events = POLLIN};
			}
		}
		tmo = -1;
		if (deadline != 0 && !timed_out) {
			if (now_ms() >= deadline) {
				kill_group(j, SIGKILL);
				timed_out = true;
				grace = now_ms() + KILL_GRACE_MS;
			} else {
				tmo = (int)(deadline - now_ms());
			}
		}
		if (timed_out) {
			if (now_ms() >= grace)
				break;
			tmo = (int)(grace - now_ms());
		}
		if (poll(pf, (nfds_t)np, tmo) <= 0)
			continue;
		if (pf[0].revents != 0)
			drain(j->wake_fd);
		for (i = 1; i < np; i++) {
			if (pf[i].revents == 0)
				continue;
			/* A hang-up with nothing to read is EOF: a command without
			 * output (most are) never needs the chunk buffer, whose
			 * mmap and munmap would cost more than the rest of the job. */
			if (!(pf[i].revents & POLLIN)) {
				close(*fds[idx[i]]);
				*fds[idx[i]] = -1;
				continue;
			}
			if (buf == NULL && (buf = malloc(SVC_CHUNK)) == NULL)
				break;
			pump_read(j, fds[idx[i]], tags[idx[i]], buf, &sent, gone);
		}
		if (i < np)
			break;
	}
	free(buf);
	await_exit(j, deadline, &timed_out);
	live_del(j);
	pthread_mutex_lock(&j->lock);
	j->reaped = true;
	pthread_mutex_unlock(&j->lock);
	while (waitpid(j->proc.pid, &status, 0) < 0 && errno == EINTR)
		;
	mg_sender_sendf(j->events, "(iiibs)", (int64_t)EXEC_EV_EXIT,
	                (int64_t)(WIFEXITED(status) ? WEXITSTATUS(status) : -1),
	                (int64_t)(WIFSIGNALED(status) ? WTERMSIG(status) : 0), (int)timed_out,
	                (const char *)NULL);
	mg_receiver_close(j->ctl_rx);
	mg_receiver_close(j->in_rx);
	poke(j->stop_fd);
	if (j->ctl_started)
		pthread_join(j->ctl_t, NULL);
	if (j->in_started)
		pthread_join(j->in_t, NULL);
	job_free(j);
	return NULL;
}

MG_EXPORT_AS("mg.exec", exec_call)
static int exec_call(struct mg_call *call)
{
	struct mg_router *r = mg_call_router(call);
	struct mg_sender *ctl = NULL, *in = NULL;
	const void *spec;
	const char *what;
	struct job *j;
	size_t n;
	int rc;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return mg_call_fail(call, "MemoryError", "out of memory");
	pthread_mutex_init(&j->lock, NULL);
	j->proc = (struct exec_proc){.pid = -1, .in_fd = -1, .out_fd = -1, .err_fd = -1};
	j->wake_fd = j->stop_fd = -1;
	if (mg_call_args(call, "vhh", &spec, &n, &j->events, &j->in_acks) != 0)
		goto fail;
	if (mg__exec_spec_read(call, spec, n, &j->spec) != 0)
		goto fail;
	rc = mg_receiver_new(r, mg_sender_context(j->events), MG_POLICY_ANY, &j->ctl_rx);
	if (rc == 0)
		rc = mg_receiver_new(r, mg_sender_context(j->events), MG_POLICY_ANY, &j->in_rx);
	if (rc == 0 && ((j->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
	                (j->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0))
		rc = -errno;
	if (rc == 0)
		rc = mg_receiver_to_sender(j->ctl_rx, &ctl);
	if (rc == 0)
		rc = mg_receiver_to_sender(j->in_rx, &in);
	if (rc != 0) {
		mg_call_fail(call, "OSError", "cannot set up the job: %s", mg_strerror(rc));
		goto fail;
	}
	if ((rc = mg__exec_spawn(&j->spec, &j->proc, &what)) != 0) {
		mg__svc_fail_errno(call, -rc, what);
		goto fail;
	}
	live_add(j);
	rc = mg_call_return(call, "ihh", (int64_t)j->proc.pid, ctl, in);
	mg_sender_free(ctl);
	mg_sender_free(in);
	ctl = in = NULL;
	/* From here on the process runs: whatever fails, the pump must run to
	 * reap it, so threads that cannot start are done without. */
	j->ctl_started = pthread_create(&j->ctl_t, NULL, control_main, j) == 0;
	if (j->proc.in_fd >= 0)
		j->in_started = pthread_create(&j->in_t, NULL, stdin_main, j) == 0;
	if (!j->ctl_started)
		kill_group(j, SIGKILL);
	if (mg__svc_thread(pump_main, j) != 0) {
		/* Last resort: pump here, the call then returns late. */
		pump_main(j);
	}
	return rc;
fail:
	mg_sender_free(ctl);
	mg_sender_free(in);
	job_free(j);
	return -1;
}
