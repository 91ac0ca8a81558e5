/*
 * exec_loop.c: the two threads that serve every command a process runs.
 *
 *  - The loop waits (epoll) on each job's stdout and stderr and on a pidfd
 *    that becomes readable when the process exits.  It sends each chunk of
 *    output at once as an event, but never more than `window` bytes beyond
 *    what the caller has acknowledged (a job over its window leaves the
 *    epoll set until acks come, so a slow caller stops the process, whose
 *    pipe fills, instead of filling memory); it enforces timeouts, reaps
 *    the process and sends the exit event last.
 *  - The control thread waits (one select) on each job's control
 *    receiver: acknowledgements, kill requests, and the caller going away,
 *    which kills the process group.
 *
 * A job so costs no thread of its own.  Starting and ending two threads
 * per command (their stacks' mmap and munmap, with a TLB shoot-down
 * across the context's threads) cost more than the rest of a short
 * command's service.  Only a job with stdin has a thread (exec_serve.c),
 * since writing stdin may block on a process that does not read it.
 *
 * Both threads start with the first command and live as long as the
 * process; a forked context starts its own.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "services/exec.h"

/* How long output may keep flowing after a timeout kill: a descendant that
 * left the process group can hold the pipes open forever. */
#define KILL_GRACE_MS 1000
/* Without a pidfd (Linux < 5.3) the exit is polled this often. */
#define POLL_EXIT_MS 10

enum { W_OUT, W_ERR, W_PID, W_WAKE };

/* lock guards the lists and the start; the rest is set up under it once
 * per process and then read-only. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ctl_cond = PTHREAD_COND_INITIALIZER;
static pid_t started_pid;
static int ep = -1, wake_fd = -1;
static struct mg_select *ctl_sel;
static struct exec_job *loop_head, *ctl_head;
static struct exec_watch wake_watch = {NULL, W_WAKE};
static uint8_t *chunk; /* the loop's read buffer, made at the first output */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void poke(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0) {
		/* The counter saturating still leaves it readable. */
	}
}

void mg__exec_kill(struct exec_job *j, int sig)
{
	pthread_mutex_lock(&j->lock);
	if (!j->reaped)
		kill(-j->proc.pid, sig);
	pthread_mutex_unlock(&j->lock);
}

void mg__exec_loop_wake(void)
{
	if (wake_fd >= 0)
		poke(wake_fd);
}

static bool window_open(struct exec_job *j, bool *gonep)
{
	bool open;

	pthread_mutex_lock(&j->lock);
	*gonep = j->gone;
	open = j->gone || j->sent - j->acked < j->spec.window;
	pthread_mutex_unlock(&j->lock);
	return open;
}

static int watch(struct exec_job *j, int fd, int kind, int op)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &j->w[kind]};

	j->w[kind] = (struct exec_watch){j, kind};
	return epoll_ctl(ep, op, fd, &ev);
}

static void close_watch(int *fd)
{
	if (*fd < 0)
		return;
	epoll_ctl(ep, EPOLL_CTL_DEL, *fd, NULL);
	close(*fd);
	*fd = -1;
}

/* A collected run keeps the first cap bytes of each output. */
static void keep(struct exec_output *o, uint64_t cap, size_t got)
{
	size_t take = o->len + got > cap ? (size_t)(cap - o->len) : got;
	char *p;

	o->total += got;
	if (take == 0 || (p = realloc(o->data, o->len + take)) == NULL)
		return;
	memcpy(p + o->len, chunk, take);
	o->data = p;
	o->len += take;
}

/* Reads what is ready on *fd, more while more comes at once, up to a
 * chunk: a fast writer's small writes then travel as few large messages.
 * Closes *fd at EOF (EIO is a pty's EOF). */
static void pump_read(struct exec_job *j, int *fd, int tag, bool gone)
{
	size_t got = 0;
	ssize_t n = 0;

	while (got < SVC_CHUNK) {
		n = read(*fd, chunk + got, SVC_CHUNK - got);
		if (n > 0)
			got += (size_t)n;
		else if (n < 0 && errno == EINTR)
			continue;
		else
			break;
	}
	if (got > 0 && j->reply != NULL) {
		keep(&j->out[tag == EXEC_EV_STDOUT ? 0 : 1], j->spec.collect, got);
	} else if (got > 0) {
		if (!gone)
			mg_sender_sendf(j->events, "(iy)", (int64_t)tag, chunk, got);
		j->sent += got;
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		close_watch(fd);
}

static void on_output(struct exec_job *j, int kind, uint32_t revents)
{
	int *fd = kind == W_OUT ? &j->proc.out_fd : &j->proc.err_fd;
	bool gone;

	if (*fd < 0)
		return;
	/* A hang-up with nothing to read is EOF: a command without output
	 * (most are) never needs the chunk buffer. */
	if (!(revents & EPOLLIN)) {
		close_watch(fd);
		return;
	}
	/* A collected run reads on (keeping no more than its cap). */
	if (!window_open(j, &gone) && j->reply == NULL) {
		/* Out of the set until acks reopen the window (level-triggered,
		 * so what waits is seen again when it returns). */
		if (j->proc.out_fd >= 0)
			epoll_ctl(ep, EPOLL_CTL_DEL, j->proc.out_fd, NULL);
		if (j->proc.err_fd >= 0)
			epoll_ctl(ep, EPOLL_CTL_DEL, j->proc.err_fd, NULL);
		j->paused = true;
		return;
	}
	if (chunk == NULL && (chunk = malloc(SVC_CHUNK)) == NULL) {
		close_watch(fd); /* the output is lost, the job still ends */
		return;
	}
	pump_read(j, fd, kind == W_OUT ? EXEC_EV_STDOUT : EXEC_EV_STDERR, gone);
}

/* Puts paused jobs whose window reopened back in the set.  Loop thread. */
static void resume_paused(void)
{
	struct exec_job *j;
	bool gone;

	pthread_mutex_lock(&lock);
	for (j = loop_head; j != NULL; j = j->next) {
		if (!j->paused || !window_open(j, &gone))
			continue;
		j->paused = false;
		if (j->proc.out_fd >= 0)
			watch(j, j->proc.out_fd, W_OUT, EPOLL_CTL_ADD);
		if (j->proc.err_fd >= 0)
			watch(j, j->proc.err_fd, W_ERR, EPOLL_CTL_ADD);
	}
	pthread_mutex_unlock(&lock);
}

static int64_t min_tmo(int64_t tmo, int64_t v)
{
	return tmo < 0 || v < tmo ? v : tmo;
}

/* Timeouts due now, and the polled exits; the ms until the next, or -1.
 * Loop thread. */
static int timers(void)
{
	int64_t now = now_ms(), tmo = -1;
	struct exec_job *j;
	siginfo_t si;

	pthread_mutex_lock(&lock);
	for (j = loop_head; j != NULL; j = j->next) {
		if (j->deadline != 0 && !j->timed_out) {
			if (now >= j->deadline) {
				mg__exec_kill(j, SIGKILL);
				j->timed_out = true;
				j->grace = now + KILL_GRACE_MS;
			} else {
				tmo = min_tmo(tmo, j->deadline - now);
			}
		}
		if (j->timed_out && (j->proc.out_fd >= 0 || j->proc.err_fd >= 0)) {
			if (now >= j->grace) {
				close_watch(&j->proc.out_fd);
				close_watch(&j->proc.err_fd);
			} else {
				tmo = min_tmo(tmo, j->grace - now);
			}
		}
		if (j->polled && !j->exited) {
			/* Not reaped (WNOWAIT): the group stays signalable. */
			memset(&si, 0, sizeof(si));
			if (waitid(P_PID, (id_t)j->proc.pid, &si, WEXITED | WNOHANG | WNOWAIT) ==
			            0 &&
			    si.si_pid == j->proc.pid)
				j->exited = true;
			else
				tmo = min_tmo(tmo, POLL_EXIT_MS);
		}
	}
	pthread_mutex_unlock(&lock);
	return tmo > 100000 ? 100000 : (int)tmo;
}

/* Reaps the process, sends the exit event and lets go of the job.  Taken
 * off the list already (so no exit handler signals it meanwhile). */
static void finish(struct exec_job *j)
{
	int64_t code, sig;
	int status = 0;

	pthread_mutex_lock(&j->lock);
	j->reaped = true;
	pthread_mutex_unlock(&j->lock);
	if (j->pidfd >= 0) {
		close_watch(&j->pidfd);
	}
	while (waitpid(j->proc.pid, &status, 0) < 0 && errno == EINTR)
		;
	code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
	if (j->reply != NULL)
		mg_sender_sendf(j->reply, "iibsyyuu", code, sig, (int)j->timed_out,
		                (const char *)NULL, j->out[0].data ? j->out[0].data : "",
		                j->out[0].len, j->out[1].data ? j->out[1].data : "", j->out[1].len,
		                j->out[0].total, j->out[1].total);
	else
		mg_sender_sendf(j->events, "(iiibs)", (int64_t)EXEC_EV_EXIT, code, sig,
		                (int)j->timed_out, (const char *)NULL);
	/* The control thread drops its reference when it sees the close; the
	 * stdin thread when it sees its own close or the stop. */
	mg_receiver_close(j->ctl_rx);
	if (j->in_rx != NULL)
		mg_receiver_close(j->in_rx);
	if (j->stop_fd >= 0)
		poke(j->stop_fd);
	mg__exec_unref(j);
}

/* Ends every job whose output is closed and whose process exited.  After
 * a whole batch of events, so no event left in it names a freed job. */
static void finish_done(void)
{
	struct exec_job *j, *next, *done = NULL;

	pthread_mutex_lock(&lock);
	for (j = loop_head; j != NULL; j = next) {
		next = j->next;
		if (j->proc.out_fd >= 0 || j->proc.err_fd >= 0 || !j->exited)
			continue;
		if (j->prev != NULL)
			j->prev->next = j->next;
		else
			loop_head = j->next;
		if (j->next != NULL)
			j->next->prev = j->prev;
		j->next = done;
		done = j;
	}
	pthread_mutex_unlock(&lock);
	for (j = done; j != NULL; j = next) {
		next = j->next;
		finish(j);
	}
}

static void *loop_main(void *arg)
{
	struct epoll_event evs[64];
	struct exec_watch *w;
	uint64_t v;
	int n, i;

	(void)arg;
	for (;;) {
		n = epoll_wait(ep, evs, 64, timers());
		for (i = 0; i < n; i++) {
			w = evs[i].data.ptr;
			if (w->kind == W_WAKE) {
				if (read(wake_fd, &v, sizeof(v)) < 0) {
					/* EAGAIN: another wake took it. */
				}
				resume_paused();
			} else if (w->kind == W_PID) {
				w->job->exited = true;
				epoll_ctl(ep, EPOLL_CTL_DEL, w->job->pidfd, NULL);
			} else {
				on_output(w->job, w->kind, evs[i].events);
			}
		}
		finish_done();
	}
	return NULL;
}

static struct exec_job *ctl_find(struct mg_receiver *rx)
{
	struct exec_job *j;

	pthread_mutex_lock(&lock);
	for (j = ctl_head; j != NULL && j->ctl_rx != rx; j = j->cnext)
		;
	pthread_mutex_unlock(&lock);
	return j;
}

static void ctl_remove(struct exec_job *j)
{
	mg_select_remove(ctl_sel, j->ctl_rx);
	pthread_mutex_lock(&lock);
	if (j->cprev != NULL)
		j->cprev->cnext = j->cnext;
	else
		ctl_head = j->cnext;
	if (j->cnext != NULL)
		j->cnext->cprev = j->cprev;
	pthread_mutex_unlock(&lock);
	mg__exec_unref(j);
}

static void ctl_message(struct exec_job *j, struct mg_msg *m)
{
	int64_t tag, v;

	if (mg_msg_read(m, "(ii)", &tag, &v) != 0)
		return;
	if (tag == EXEC_CTL_ACK) {
		pthread_mutex_lock(&j->lock);
		if ((uint64_t)v > j->acked)
			j->acked = (uint64_t)v;
		pthread_mutex_unlock(&j->lock);
		poke(wake_fd);
	} else if (tag == EXEC_CTL_KILL && v > 0 && v < NSIG) {
		mg__exec_kill(j, (int)v);
	}
}

static void *ctl_main(void *arg)
{
	struct mg_receiver *rx;
	struct exec_job *j;
	struct mg_msg *m;
	int rc;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&lock);
		while (ctl_head == NULL)
			pthread_cond_wait(&ctl_cond, &lock);
		pthread_mutex_unlock(&lock);
		rx = NULL;
		m = NULL;
		rc = mg_select_get(ctl_sel, -1, &rx, &m);
		if (rx == NULL || (j = ctl_find(rx)) == NULL) {
			mg_msg_free(m);
			continue;
		}
		if (rc == 0) {
			ctl_message(j, m);
			mg_msg_free(m);
		} else if (rc == MG_ECLOSED) {
			/* The loop closed it: the job is over. */
			ctl_remove(j);
		} else {
			/* The caller (or this context) is going away: a command must
			 * not outlive whoever waits for it. */
			pthread_mutex_lock(&j->lock);
			j->gone = true;
			pthread_mutex_unlock(&j->lock);
			mg__exec_kill(j, SIGKILL);
			poke(wake_fd);
			/* A receiver of a router shutting down says so for ever. */
			if (rc == MG_ESHUTDOWN)
				ctl_remove(j);
		}
	}
	return NULL;
}

/* A context exiting (its parent went away) may not get to kill its
 * commands through the control thread first: exit() kills what is left,
 * so a command never outlives the context that ran it. */
static void kill_all_at_exit(void)
{
	struct exec_job *j;

	if (started_pid != getpid())
		return;
	pthread_mutex_lock(&lock);
	for (j = loop_head; j != NULL; j = j->next)
		mg__exec_kill(j, SIGKILL);
	pthread_mutex_unlock(&lock);
}

/* A fork of a context (mg_fork through it) has only the forking thread:
 * lock must not stay held by one of the threads here that it lacks, and
 * ctl_cond still counts the control thread waiting on it, a waiter that
 * glibc's pthread_cond_signal() would wait for for ever.  The forking
 * thread holds lock across the fork; the child makes ctl_cond anew. */
static void fork_prepare(void)
{
	pthread_mutex_lock(&lock);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&lock);
}

static void fork_child(void)
{
	pthread_cond_init(&ctl_cond, NULL);
	pthread_mutex_unlock(&lock);
}

/* Called locked, once per process (a fork of a context that had started
 * them has the state but not the threads: it starts its own, and leaves
 * the parent's fds alone, since a forked context may have reused them).
 * The control thread first: it idles until a job comes, so a loop that
 * cannot start leaves nothing half-working behind. */
static int start(void)
{
	static pid_t ctl_pid, atexit_pid;
	static bool atfork; /* the handlers are a fork's too */
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &wake_watch};
	int rc;

	loop_head = ctl_head = NULL;
	ctl_sel = NULL;
	ep = wake_fd = -1;
	if ((rc = mg_select_new(&ctl_sel)) != 0)
		goto fail;
	if (ctl_pid != getpid() && (rc = mg__svc_thread(ctl_main, NULL)) != 0)
		goto fail;
	ctl_pid = getpid();
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    (wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, wake_fd, &ev) != 0) {
		rc = -errno;
		goto fail;
	}
	if ((rc = mg__svc_thread(loop_main, NULL)) != 0)
		goto fail;
	if (atexit_pid == 0)
		atexit(kill_all_at_exit);
	/* Registered after the library's own locks (forklock.c, at load), so
	 * lock is taken first: a thread holding it may go on to take those
	 * (mg_select_add() may log), none holding those takes it. */
	if (!atfork && pthread_atfork(fork_prepare, fork_parent, fork_child) == 0)
		atfork = true;
	atexit_pid = getpid();
	started_pid = getpid();
	return 0;
fail:
	if (ep >= 0)
		close(ep);
	if (wake_fd >= 0)
		close(wake_fd);
	mg_select_free(ctl_sel);
	ep = wake_fd = -1;
	ctl_sel = NULL;
	return rc;
}

int mg__exec_loop_start(void)
{
	int rc = 0;

	pthread_mutex_lock(&lock);
	if (started_pid != getpid())
		rc = start();
	pthread_mutex_unlock(&lock);
	return rc;
}

void mg__exec_loop_add(struct exec_job *j)
{
	bool timed;

	pthread_mutex_lock(&lock);
	j->deadline = j->spec.timeout_ms > 0 ? now_ms() + j->spec.timeout_ms : 0;
	if (mg_select_add(ctl_sel, j->ctl_rx) == 0) {
		atomic_fetch_add(&j->refs, 1);
		j->cprev = NULL;
		j->cnext = ctl_head;
		if (ctl_head != NULL)
			ctl_head->cprev = j;
		ctl_head = j;
		pthread_cond_signal(&ctl_cond);
	} else {
		mg__exec_kill(j, SIGKILL);
	}
	/* Watched under the lock: the loop ends a job only under it, so not
	 * before all of it is watched. */
	if (j->proc.out_fd >= 0 && watch(j, j->proc.out_fd, W_OUT, EPOLL_CTL_ADD) != 0)
		close_watch(&j->proc.out_fd);
	if (j->proc.err_fd >= 0 && watch(j, j->proc.err_fd, W_ERR, EPOLL_CTL_ADD) != 0)
		close_watch(&j->proc.err_fd);
	j->polled = j->pidfd < 0 || watch(j, j->pidfd, W_PID, EPOLL_CTL_ADD) != 0;
	j->prev = NULL;
	j->next = loop_head;
	if (loop_head != NULL)
		loop_head->prev = j;
	loop_head = j;
	/* Read before the unlock: from then on the job is the loop's and the
	 * control thread's, and a short command may be over and freed before
	 * this thread runs again. */
	timed = j->deadline != 0 || j->polled;
	pthread_mutex_unlock(&lock);
	/* The loop's next wait then counts this job's timers. */
	if (timed)
		poke(wake_fd);
}
