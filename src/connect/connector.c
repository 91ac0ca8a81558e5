/*
 * connector.c: the broker-side life of a child process that a local or
 * fork connect started.
 *
 * While connecting, the broker watches three fds without blocking: the
 * channel (for the fixed-size ready marker), the child's stderr pipe (kept
 * for the error text) and its pidfd (to notice an early exit), plus a
 * deadline timer.  On the marker the channel is handed to the router and
 * the context is marked ready; on an exit, EOF, bad marker or deadline the
 * child is killed and the connect fails with its stderr.  Afterwards the
 * same object reaps the process as soon as it exits (no zombie waits for
 * someone to call reap) and logs whatever still reaches the stderr pipe,
 * until the child replaces its fd 2.
 *
 * The object outlives its context when the context is freed before the
 * child has gone: it then gives the child a grace period to exit, kills it,
 * reaps it and frees itself.  A stop hook releases everything when the
 * router's broker stops.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "connect/connect.h"

/* How long a child whose context was freed may take to exit by itself. */
#define ORPHAN_GRACE_MS 5000
/* How long a child whose connect failed may take to exit once its input
 * has ended: a first stage removes its file then. */
#define FAIL_GRACE_MS 500
/* Without pidfds, how often the broker checks whether the child exited. */
#define REAP_POLL_MS 50
/* Bound on reaping a killed child when the broker is already gone. */
#define LATE_REAP_MS 2000

struct mg_conn {
	struct mg_broker *broker; /* valid until gone */
	struct mg_context *c;     /* NULL once the context was freed */
	uint32_t id;
	char name[MG_NAME_MAX];
	struct mg_broker_hook hook;
	bool hooked;
	struct mg_watch chan_w, err_w, pid_w; /* fd -1 when not open */
	uint64_t deadline_timer, grace_timer, poll_timer;
	int64_t deadline_ms;
	int64_t fail_grace_end_ms; /* when a failed connect's grace ends; 0: none */
	int timeout_ms;
	bool connecting;
	mg_conn_done_cb done_cb;
	void *done_arg;
	size_t nmark, nerr, nline;
	/* Methods that boot through a first stage or answer a prompt
	 * (struct mg_conn_extra); NULL / -1 otherwise. */
	struct mg_bootstrap *bs;  /* freed when the connect ends */
	struct mg_prompt *prompt; /* wiped and freed when the connect ends */
	struct mg_watch pty_w;    /* the pty's master, open while the child lives */
	int pty_slave;            /* held so the master never reads EIO */
	mg_conn_explain_cb explain;
	uint32_t chan_events;
	bool explained; /* the failure says what it is already */
	size_t npty_text;
	bool prompt_stderr; /* the prompt is on stderr, answered on the channel */
	bool chan_seen;     /* the first stage spoke: no prompt comes any more */

	/* lock guards what other threads read: the process's fate. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pid_t pid;
	int pidfd;
	bool reaped;
	bool killed; /* this side sent the SIGKILL */
	int status;
	bool posted; /* a launch command was posted to the broker */
	bool done;   /* the broker will not touch this again */

	/* The buffers last: the fields above are what a start writes, and
	 * together they mostly fit one page, which a fork's start finds
	 * shared with the child (one copy-on-write fault per page). */
	char mark[MG_HS_READY_LEN];
	char err[1024];     /* stderr while connecting */
	char line[512];     /* a stderr line being assembled after ready */
	char pty_text[256]; /* the start of what the pty showed, for errors */
};

static void conn_maybe_free(struct mg_conn *k);
static void prompt_answer(struct mg_conn *k, int fd, const char *p, size_t n);

/* Tells whoever started the connect how it ended, once. */
static void notify(struct mg_conn *k, int code, const char *text)
{
	mg_conn_done_cb cb = k->done_cb;

	k->done_cb = NULL;
	if (cb != NULL && k->c != NULL)
		cb(k->done_arg, k->c, code, text);
}

/* ------------------------------------------------------------------------ */
/* Small helpers (broker thread). */

static void close_watch(struct mg_conn *k, struct mg_watch *w)
{
	if (w->fd < 0)
		return;
	if (!k->done && w->events != 0)
		mg__watch_del(k->broker, w);
	close(w->fd);
	w->fd = -1;
}

static void cancel_timer(struct mg_conn *k, uint64_t *t)
{
	if (*t != 0 && !k->done)
		mg__timer_cancel(k->broker, *t);
	*t = 0;
}

/* The connect is over: the secret and the bootstrap state go at once. */
static void extra_end(struct mg_conn *k)
{
	if (k->bs != NULL)
		mg__debug("%s: the bootstrap sent %llu bytes", k->name,
		          (unsigned long long)mg__bootstrap_sent(k->bs));
	mg__prompt_free(k->prompt);
	k->prompt = NULL;
	mg__bootstrap_free(k->bs);
	k->bs = NULL;
}

/* Closes the pty once the child is gone (its session leader would be
 * hung up by an earlier close). */
static void pty_close(struct mg_conn *k)
{
	close_watch(k, &k->pty_w);
	if (k->pty_slave >= 0)
		close(k->pty_slave);
	k->pty_slave = -1;
}

/* Sends SIGKILL unless the child was reaped (its pid may be reused).
 * Called with k->lock held. */
static void kill_locked(struct mg_conn *k)
{
	if (k->reaped || k->pid <= 0)
		return;
	k->killed = true;
	if (k->pidfd < 0 || syscall(SYS_pidfd_send_signal, k->pidfd, SIGKILL, NULL, 0) != 0)
		kill(k->pid, SIGKILL);
}

static void kill_now(struct mg_conn *k)
{
	pthread_mutex_lock(&k->lock);
	kill_locked(k);
	pthread_mutex_unlock(&k->lock);
}

/* Appends stderr text gathered while connecting, keeping the start. */
static void err_keep(struct mg_conn *k, const char *p, size_t n)
{
	size_t room = sizeof(k->err) - 1 - k->nerr;

	if (n > room)
		n = room;
	memcpy(k->err + k->nerr, p, n);
	k->nerr += n;
	k->err[k->nerr] = '\0';
}

/* Logs complete stderr lines that reach us after the child was ready. */
static void err_log(struct mg_conn *k, const char *p, size_t n, bool flush)
{
	size_t i;

	for (i = 0; i < n || (flush && k->nline > 0); i++) {
		bool end = i >= n || p[i] == '\n';

		if (i < n && !end && k->nline < sizeof(k->line) - 1)
			k->line[k->nline++] = p[i];
		if (end || k->nline == sizeof(k->line) - 1) {
			k->line[k->nline] = '\0';
			if (k->nline > 0 && mg__log_enabled(MG_LOG_WARNING, false))
				mg__log_forward(MG_LOG_WARNING, "mitogen.stderr", k->name, k->line,
				                mg__now_ns());
			k->nline = 0;
		}
		if (i >= n)
			break;
	}
}

/* Reads what the stderr pipe holds; true at EOF or error. */
static bool err_drain(struct mg_conn *k)
{
	char buf[4096];

	for (;;) {
		ssize_t n = read(k->err_w.fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return false;
		if (n <= 0)
			return true;
		if (k->connecting) {
			err_keep(k, buf, (size_t)n);
			if (k->prompt_stderr && !k->chan_seen && k->chan_w.fd >= 0) {
				bool asked = mg__prompt_answered(k->prompt);

				prompt_answer(k, k->chan_w.fd, buf, (size_t)n);
				/* The prompt itself is no news: not logged once ready. */
				if (!asked && k->connecting && mg__prompt_answered(k->prompt))
					k->nerr = 0;
			}
		} else
			err_log(k, buf, (size_t)n, false);
	}
}

static void err_close(struct mg_conn *k)
{
	if (k->err_w.fd < 0)
		return;
	err_drain(k);
	if (!k->connecting)
		err_log(k, NULL, 0, true);
	close_watch(k, &k->err_w);
}

/* ------------------------------------------------------------------------ */
/* Reaping. */

static void mark_reaped(struct mg_conn *k, int status)
{
	pthread_mutex_lock(&k->lock);
	k->reaped = true;
	k->status = status;
	if (k->pidfd >= 0) {
		if (!k->done && k->pid_w.events != 0)
			mg__watch_del(k->broker, &k->pid_w);
		close(k->pidfd);
		k->pidfd = k->pid_w.fd = -1;
	}
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->lock);
	cancel_timer(k, &k->poll_timer);
	cancel_timer(k, &k->grace_timer);
}

static void conn_fail(struct mg_conn *k, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static bool marker_read(struct mg_conn *k);

/* The child exited (or may have): reap it without blocking. */
static void try_reap(struct mg_conn *k)
{
	char how[96];
	bool killed;
	int status;
	pid_t w;

	if (k->reaped)
		return;
	while ((w = waitpid(k->pid, &status, WNOHANG)) < 0 && errno == EINTR)
		;
	if (w == 0)
		return;
	if (w < 0)
		status = 0; /* someone else reaped it (ECHILD) */
	mark_reaped(k, status);
	if (k->connecting && k->chan_w.fd >= 0)
		marker_read(k); /* a marker written just before exiting still counts */
	mg__proc_describe(status, how, sizeof(how));
	pthread_mutex_lock(&k->lock);
	killed = k->killed;
	pthread_mutex_unlock(&k->lock);
	if (k->connecting)
		conn_fail(k, MG_ECONNECT, "the program %s before it was ready", how);
	else if (status != 0 && !killed && k->c != NULL)
		/* Its calls end with a bare disconnect; this says why (a
		 * sanitizer's report, say, went to its stderr: INFO records). */
		mg__warn("%s: the context's process ended: %s", k->name, how);
	err_close(k);
	pty_close(k);
	conn_maybe_free(k);
}

static void pid_cb(struct mg_watch *w, uint32_t events)
{
	try_reap(w->owner);
}

static void poll_cb(void *arg)
{
	struct mg_conn *k = arg;

	k->poll_timer = 0;
	try_reap(k);
	if (!k->reaped && k->poll_timer == 0)
		k->poll_timer = mg__timer_add(k->broker, REAP_POLL_MS, poll_cb, k);
}

/* ------------------------------------------------------------------------ */
/* Connecting. */

static void grace_cb(void *arg);

/* Formats the failure with the child's stderr appended, reports it, and
 * ends the child's input; the child is killed if it has not exited
 * FAIL_GRACE_MS later (a first stage refused, or given up on, removes its
 * file and exits; SIGKILL at once would leave the file, and a pty's
 * hang-up ends the shell too).  The process is reaped by the pid watch. */
static void conn_fail(struct mg_conn *k, int code, const char *fmt, ...)
{
	char text[400], msg[1800], errline[sizeof(k->err) + 64] = "", pre[64] = "";
	const char *what;
	va_list ap;
	size_t n;

	if (!k->connecting)
		return;
	k->connecting = false;
	cancel_timer(k, &k->deadline_timer);
	close_watch(k, &k->chan_w);
	if (k->reaped || k->grace_timer != 0 ||
	    (k->grace_timer = mg__timer_add(k->broker, FAIL_GRACE_MS, grace_cb, k)) == 0) {
		kill_now(k);
	} else {
		k->fail_grace_end_ms = mg__now_ms() + FAIL_GRACE_MS;
	}
	if (k->err_w.fd >= 0)
		err_drain(k);
	/* What the terminal showed (prompts, sudo's complaints) counts too;
	 * never a secret: prompts are read with echo off. */
	if (k->npty_text > 0)
		err_keep(k, k->pty_text, k->npty_text);
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	extra_end(k);
	/* The method may know what the program's stderr means ("Permission
	 * denied": authentication failed); it leads the message. */
	if (k->explain != NULL && !k->explained && (what = k->explain(k->err)) != NULL)
		snprintf(pre, sizeof(pre), "%.60s: ", what);
	/* One line: the stderr's newlines become "; ". */
	for (n = k->nerr; n > 0 && (k->err[n - 1] == '\n' || k->err[n - 1] == ' '); n--)
		;
	for (size_t i = 0, j = 0; i < n && j < sizeof(errline) - 3; i++) {
		if (k->err[i] == '\n') {
			errline[j++] = ';';
			errline[j++] = ' ';
		} else {
			errline[j++] = k->err[i];
		}
		errline[j] = '\0';
	}
	if (n > 0)
		snprintf(msg, sizeof(msg), "%s: %s%s; its stderr: %s", k->name, pre, text, errline);
	else
		snprintf(msg, sizeof(msg), "%s: %s%s", k->name, pre, text);
	mg__debug("connect failed: %s", msg);
	k->nerr = 0;
	if (k->c != NULL)
		mg__context_set_failed(k->c, code, "%s", msg);
	notify(k, code, msg);
}

static void conn_ready(struct mg_conn *k, uint32_t pid)
{
	int chan = k->chan_w.fd, r;

	k->connecting = false;
	extra_end(k);
	cancel_timer(k, &k->deadline_timer);
	mg__watch_del(k->broker, &k->chan_w);
	k->chan_w.fd = -1;
	/* Stderr lines gathered so far are worth seeing now. */
	err_log(k, k->err, k->nerr, false);
	k->nerr = 0;
	if (k->c == NULL) {
		close(chan);
		return;
	}
	r = mg_router_attach(k->c->router, chan, chan, k->id, 0);
	if (r != 0) {
		close(chan);
		k->connecting = true; /* so conn_fail reports */
		conn_fail(k, r, "could not attach the channel: %s", mg_strerror(r));
		return;
	}
	mg__debug("context %s (id %u, pid %u) is ready", k->name, (unsigned)k->id, (unsigned)pid);
	mg__context_set_ready(k->c);
	notify(k, 0, "");
}

/* Reads what is there of the marker; true when the connect moved on. */
static bool marker_read(struct mg_conn *k)
{
	char why[160];
	uint32_t ver, pid;
	ssize_t n;
	int r;

	for (;;) {
		n = read(k->chan_w.fd, k->mark + k->nmark, sizeof(k->mark) - k->nmark);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return false;
		break;
	}
	if (n <= 0) {
		/* EOF or error: the child is going; its exit gives the reason.
		 * Stop watching the channel so the loop does not spin on it. */
		if (k->chan_w.events != 0)
			mg__watch_del(k->broker, &k->chan_w);
		k->chan_w.events = 0;
		return false;
	}
	k->nmark += (size_t)n;
	if (k->nmark < sizeof(k->mark))
		return false;
	if ((r = mg__hs_ready_parse(k->mark, &ver, &pid, why, sizeof(why))) != 0) {
		conn_fail(k, r == MG_ECONNECT ? MG_ECONNECT : MG_EPROTOCOL, "%s", why);
		return true;
	}
	conn_ready(k, pid);
	return true;
}

/* Watches the channel for writing only while bootstrap output waits. */
static int chan_want(struct mg_conn *k, uint32_t events)
{
	int r = 0;

	if (k->chan_events != events && k->chan_w.events != 0)
		r = mg__watch_mod(k->broker, &k->chan_w, events);
	k->chan_events = events;
	return r;
}

/* The first stage's turn: its markers in, the program and handshake
 * out.  Thread: broker. */
static void boot_io(struct mg_conn *k, uint32_t events)
{
	char buf[512], why[200];
	const void *p;
	size_t len;
	ssize_t n;
	int r;

	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		while ((n = read(k->chan_w.fd, buf, sizeof(buf))) < 0 && errno == EINTR)
			;
		if (n == 0 || (n < 0 && errno != EAGAIN)) {
			/* The first stage is going; its exit gives the reason. */
			if (k->chan_w.events != 0)
				mg__watch_del(k->broker, &k->chan_w);
			k->chan_w.events = 0;
			return;
		}
		if (n > 0)
			k->chan_seen = true;
		if (n > 0 &&
		    (r = mg__bootstrap_input(k->bs, buf, (size_t)n, why, sizeof(why))) != 0) {
			conn_fail(k, r, "%s", why);
			return;
		}
	}
	while (mg__bootstrap_output(k->bs, &p, &len)) {
		while ((n = write(k->chan_w.fd, p, len)) < 0 && errno == EINTR)
			;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			/* A closed channel: the exit tells why. */
			chan_want(k, EPOLLIN);
			return;
		}
		mg__bootstrap_wrote(k->bs, (size_t)n);
	}
	r = chan_want(k, mg__bootstrap_output(k->bs, &p, &len) ? EPOLLIN | EPOLLOUT : EPOLLIN);
	if (r != 0)
		conn_fail(k, r, "could not watch the channel: %s", mg_strerror(r));
}

static void chan_cb(struct mg_watch *w, uint32_t events)
{
	struct mg_conn *k = w->owner;

	if (!k->connecting)
		return;
	if (k->bs != NULL && !mg__bootstrap_done(k->bs)) {
		boot_io(k, events);
		if (!k->connecting || k->bs == NULL || !mg__bootstrap_done(k->bs))
			return;
	}
	marker_read(k);
}

/* Feeds what the child printed (on its pty or its stderr) to the prompt,
 * which types the secret into fd; a refusal or a prompt without a secret
 * ends the connect at once.  Thread: broker. */
static void prompt_answer(struct mg_conn *k, int fd, const char *p, size_t n)
{
	int r = mg__prompt_feed(k->prompt, fd, p, n);

	if (r == MG_EREFUSED || r == -ENOKEY) {
		k->explained = true;
		conn_fail(k, MG_ECONNECT, "authentication failed: %s",
		          r == -ENOKEY ? "a password is required" : "the password was refused");
	} else if (r != 0) {
		conn_fail(k, MG_ECONNECT, "could not answer the prompt: %s", mg_strerror(r));
	}
}

/* The child's terminal: prompts are answered, the text kept for errors.
 * Thread: broker. */
static void pty_cb(struct mg_watch *w, uint32_t events)
{
	struct mg_conn *k = w->owner;
	char buf[512];
	size_t keep;
	ssize_t n;

	while ((n = read(k->pty_w.fd, buf, sizeof(buf))) < 0 && errno == EINTR)
		;
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		close_watch(k, &k->pty_w);
		conn_maybe_free(k);
		return;
	}
	if (!k->connecting)
		return;
	keep = sizeof(k->pty_text) - 1 - k->npty_text;
	keep = (size_t)n < keep ? (size_t)n : keep;
	memcpy(k->pty_text + k->npty_text, buf, keep);
	k->npty_text += keep;
	prompt_answer(k, k->pty_w.fd, buf, (size_t)n);
}

static void err_cb(struct mg_watch *w, uint32_t events)
{
	struct mg_conn *k = w->owner;

	/* At EOF the text is kept (connecting) or logged; the fd goes. */
	if (err_drain(k))
		err_close(k);
}

static void deadline_cb(void *arg)
{
	struct mg_conn *k = arg;

	k->deadline_timer = 0;
	conn_fail(k, -ETIMEDOUT, "no ready marker within %d ms", k->timeout_ms);
}

/* ------------------------------------------------------------------------ */
/* Orphans and the end of the broker. */

/* A child given a grace to exit by itself (its context freed, or its
 * connect failed) has not: killed. */
static void grace_cb(void *arg)
{
	struct mg_conn *k = arg;

	k->grace_timer = 0;
	pthread_mutex_lock(&k->lock);
	if (!k->reaped)
		mg__debug("%s did not exit by itself in time: killing it", k->name);
	kill_locked(k);
	pthread_mutex_unlock(&k->lock);
}

/* Frees the object once nothing refers to it: the context is gone, the
 * process reaped (or given up on) and no fd is watched. */
static void conn_maybe_free(struct mg_conn *k)
{
	if (k->c != NULL || !k->reaped || k->chan_w.fd >= 0 || k->err_w.fd >= 0)
		return;
	pty_close(k);
	extra_end(k);
	if (k->hooked && !k->done)
		mg__broker_hook_del(k->broker, &k->hook);
	cancel_timer(k, &k->deadline_timer);
	cancel_timer(k, &k->grace_timer);
	cancel_timer(k, &k->poll_timer);
	pthread_cond_destroy(&k->cond);
	pthread_mutex_destroy(&k->lock);
	mg__free(k);
}

/* The broker is stopping: give up connecting, stop watching, and for an
 * orphan finish the job here (the child dies with the broker thread
 * anyway: PR_SET_PDEATHSIG). */
static void stop_hook(void *arg)
{
	struct mg_conn *k = arg;
	bool graced;
	int64_t left;
	int status;

	k->hooked = false;
	if (k->connecting)
		conn_fail(k, MG_ESHUTDOWN, "the router shut down while connecting");
	close_watch(k, &k->chan_w);
	close_watch(k, &k->err_w);
	pty_close(k);
	/* A child in a failed connect's grace (conn_fail()) gets what is left
	 * of it here, since no timer runs after this; then it is killed.
	 * Graces that began together end together, so many connects failed
	 * at once hold the stop up by one grace at most. */
	graced = k->grace_timer != 0;
	cancel_timer(k, &k->deadline_timer);
	cancel_timer(k, &k->grace_timer);
	cancel_timer(k, &k->poll_timer);
	left = k->fail_grace_end_ms - mg__now_ms();
	/* (An orphan's grace sets no end: left < 0, killed at once.) */
	if (graced && !k->reaped && left > 0 &&
	    mg__proc_wait(k->pid, k->pidfd, (int)left, &status) == 0)
		mark_reaped(k, status);
	pthread_mutex_lock(&k->lock);
	if (k->pidfd >= 0 && k->pid_w.events != 0)
		mg__watch_del(k->broker, &k->pid_w);
	k->done = true;
	if (k->c == NULL || graced)
		kill_locked(k);
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->lock);
	if (k->c == NULL) {
		if (!k->reaped && mg__proc_wait(k->pid, k->pidfd, LATE_REAP_MS, &status) == 0)
			mark_reaped(k, status);
		k->reaped = true;
		conn_maybe_free(k);
	}
}

/* ------------------------------------------------------------------------ */
/* Entry points. */

int mg__conn_new(struct mg_context *c, int timeout_ms, mg_conn_done_cb done, void *done_arg)
{
	struct mg_conn *k = mg__calloc(1, sizeof(*k));
	pthread_condattr_t ca;

	if (k == NULL) {
		mg__context_set_failed(c, -ENOMEM, "%s: %s", c->name, mg_strerror(-ENOMEM));
		if (done != NULL)
			done(done_arg, c, -ENOMEM, mg_strerror(-ENOMEM));
		return -ENOMEM;
	}
	k->broker = c->router->broker;
	k->c = c;
	k->id = c->id;
	snprintf(k->name, sizeof(k->name), "%s", c->name ? c->name : "?");
	k->chan_w = (struct mg_watch){.fd = -1, .cb = chan_cb, .owner = k};
	k->err_w = (struct mg_watch){.fd = -1, .cb = err_cb, .owner = k};
	k->pid_w = (struct mg_watch){.fd = -1, .cb = pid_cb, .owner = k};
	k->pty_w = (struct mg_watch){.fd = -1, .cb = pty_cb, .owner = k};
	k->pty_slave = -1;
	k->timeout_ms = timeout_ms;
	k->done_cb = done;
	k->done_arg = done_arg;
	k->deadline_ms = mg__now_ms() + timeout_ms;
	k->connecting = true;
	k->pidfd = -1;
	pthread_mutex_init(&k->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->cond, &ca);
	pthread_condattr_destroy(&ca);
	k->hook = (struct mg_broker_hook){.fn = stop_hook, .arg = k};
	c->ops = &mg__conn_ops;
	c->conn = k;
	return 0;
}

void mg__conn_launch_failed(struct mg_context *c, int code, const char *fmt, ...)
{
	struct mg_conn *k = c->conn;
	char text[400], msg[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof(msg), "%s: %s", k->name, text);
	k->connecting = false;
	mg__context_set_failed(c, code, "%s", msg);
	notify(k, code, msg);
	/* Last: once done is set a freeing thread may free k at once. */
	pthread_mutex_lock(&k->lock);
	k->reaped = true; /* there is no process */
	k->done = true;
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->lock);
}

static int conn_post(struct mg_context *c, bool helper, mg_cmd_cb fn, void *arg)
{
	struct mg_conn *k = c->conn;
	int r;

	pthread_mutex_lock(&k->lock);
	k->posted = true;
	pthread_mutex_unlock(&k->lock);
	r = helper ? mg__broker_post_helper(k->broker, fn, arg)
	           : mg__broker_post(k->broker, fn, arg);
	if (r != 0) {
		pthread_mutex_lock(&k->lock);
		k->posted = false;
		pthread_mutex_unlock(&k->lock);
	}
	return r;
}

int mg__conn_post(struct mg_context *c, mg_cmd_cb fn, void *arg)
{
	return conn_post(c, false, fn, arg);
}

int mg__conn_post_helper(struct mg_context *c, mg_cmd_cb fn, void *arg)
{
	return conn_post(c, true, fn, arg);
}

static int nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 0;
}

void mg__conn_launched(struct mg_context *c, int chan, int errfd, pid_t pid, int pidfd)
{
	mg__conn_launched_ex(c, chan, errfd, pid, pidfd, NULL);
}

void mg__conn_launched_ex(struct mg_context *c, int chan, int errfd, pid_t pid, int pidfd,
                          struct mg_conn_extra *x)
{
	struct mg_conn *k = c->conn;
	int64_t left = k->deadline_ms - mg__now_ms();
	int r;

	if (x != NULL) {
		k->bs = x->bs;
		k->prompt = x->prompt;
		k->pty_w.fd = x->pty_master;
		k->pty_slave = x->pty_slave;
		k->explain = x->explain;
		k->prompt_stderr = x->prompt_stderr;
		memset(x, 0, sizeof(*x));
	}
	k->chan_events = EPOLLIN;

	pthread_mutex_lock(&k->lock);
	k->pid = pid;
	k->pidfd = pidfd;
	pthread_cond_broadcast(&k->cond); /* ops_free() may wait for this */
	pthread_mutex_unlock(&k->lock);
	c->pid = pid;
	k->chan_w.fd = chan;
	k->err_w.fd = errfd;
	k->pid_w.fd = pidfd;
	mg__broker_hook_add(k->broker, &k->hook);
	k->hooked = true;
	if ((r = nonblock(chan)) != 0 || (r = nonblock(errfd)) != 0 ||
	    (r = mg__watch_add(k->broker, &k->chan_w, EPOLLIN)) != 0 ||
	    (r = mg__watch_add(k->broker, &k->err_w, EPOLLIN)) != 0 ||
	    (k->pty_w.fd >= 0 && ((r = nonblock(k->pty_w.fd)) != 0 ||
	                          (r = mg__watch_add(k->broker, &k->pty_w, EPOLLIN)) != 0))) {
		conn_fail(k, r, "could not watch the child: %s", mg_strerror(r));
	} else if (left <= 0 ||
	           (k->deadline_timer = mg__timer_add(k->broker, left, deadline_cb, k)) == 0) {
		conn_fail(k, left <= 0 ? -ETIMEDOUT : -ENOMEM, "could not arm the deadline");
	}
	if (pidfd < 0 || mg__watch_add(k->broker, &k->pid_w, EPOLLIN) != 0)
		k->poll_timer = mg__timer_add(k->broker, REAP_POLL_MS, poll_cb, k);
}

/* ------------------------------------------------------------------------ */
/* mg_conn_ops. */

static void orphan_cb(void *arg)
{
	struct mg_conn *k = arg;

	if (k->connecting) {
		k->connecting = false;
		cancel_timer(k, &k->deadline_timer);
		close_watch(k, &k->chan_w);
		kill_now(k);
	}
	k->c = NULL;
	if (!k->reaped && k->grace_timer == 0)
		k->grace_timer = mg__timer_add(k->broker, ORPHAN_GRACE_MS, grace_cb, k);
	conn_maybe_free(k);
}

static void ops_free(struct mg_context *c)
{
	struct mg_conn *k = c->conn;
	bool done;
	int status;

	if (k == NULL)
		return;
	pthread_mutex_lock(&k->lock);
	/* A launch on the broker's helper (a spawn that took longer than the
	 * free's waits) hands the child over through c: wait until it has.
	 * One queued on the broker itself runs before orphan_cb anyway. */
	while (k->posted && k->pid <= 0 && !k->done && !mg__broker_on_thread(k->broker))
		pthread_cond_wait(&k->cond, &k->lock);
	done = k->done;
	pthread_mutex_unlock(&k->lock);
	if (!done && mg__broker_call(k->broker, orphan_cb, k) == 0) {
		c->conn = NULL;
		return;
	}
	/* The broker is stopping or gone, or the launch failed: once a posted
	 * launch and the stop hook have run nothing else touches k, so finish
	 * here. */
	pthread_mutex_lock(&k->lock);
	while (k->posted && !k->done)
		pthread_cond_wait(&k->cond, &k->lock);
	c->conn = NULL;
	kill_locked(k);
	pthread_mutex_unlock(&k->lock);
	if (!k->reaped && mg__proc_wait(k->pid, k->pidfd, LATE_REAP_MS, &status) == 0)
		k->reaped = true;
	if (k->pidfd >= 0)
		close(k->pidfd);
	if (k->chan_w.fd >= 0)
		close(k->chan_w.fd);
	if (k->err_w.fd >= 0)
		close(k->err_w.fd);
	if (k->pty_w.fd >= 0)
		close(k->pty_w.fd);
	if (k->pty_slave >= 0)
		close(k->pty_slave);
	mg__prompt_free(k->prompt);
	mg__bootstrap_free(k->bs);
	pthread_cond_destroy(&k->cond);
	pthread_mutex_destroy(&k->lock);
	mg__free(k);
}

/* On the broker: a connect still going is given up as a failed one is
 * (conn_fail(): its input ends, and it is killed FAIL_GRACE_MS later, so
 * a first stage removes its file); a connected child is killed.  (Not
 * before the launch has handed the child over: the context must then
 * live until it has.) */
static void force_cb(void *arg)
{
	struct mg_conn *k = arg;

	if (k->connecting && k->pid > 0) {
		conn_fail(k, MG_ESHUTDOWN, "given up while connecting");
		return;
	}
	kill_now(k);
}

static void ops_force(struct mg_context *c)
{
	struct mg_conn *k = c->conn;
	bool done;

	if (k == NULL)
		return;
	pthread_mutex_lock(&k->lock);
	done = k->done;
	pthread_mutex_unlock(&k->lock);
	/* Once done the broker may be gone (as in ops_free()). */
	if (!done && mg__broker_call(k->broker, force_cb, k) == 0)
		return;
	kill_now(k);
}

static int ops_reap(struct mg_context *c, int ms)
{
	struct mg_conn *k = c->conn;
	struct timespec ts;
	int r = 0, status;

	if (k == NULL)
		return 0;
	mg__deadline(&ts, ms < 0 ? 0 : ms);
	pthread_mutex_lock(&k->lock);
	/* While the broker lives it reaps (pid watch); wait for it. */
	while (!k->reaped && !k->done && k->pid > 0 && r == 0)
		r = ms < 0 ? pthread_cond_wait(&k->cond, &k->lock)
		           : pthread_cond_timedwait(&k->cond, &k->lock, &ts);
	if (!k->reaped && k->done && k->pid > 0) {
		pthread_mutex_unlock(&k->lock);
		r = mg__proc_wait(k->pid, k->pidfd, ms, &status);
		pthread_mutex_lock(&k->lock);
		if (r == 0) {
			k->reaped = true;
			k->status = status;
		}
	}
	r = k->reaped || k->pid <= 0 ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&k->lock);
	return r;
}

const struct mg_conn_ops mg__conn_ops = {
        .force = ops_force,
        .reap = ops_reap,
        .free = ops_free,
};

const char *mg__explain_text(const struct mg_err_text *table, size_t n, const char *err)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strstr(err, table[i].text) != NULL)
			return table[i].what;
	return NULL;
}
