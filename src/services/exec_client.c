/*
 * exec_client.c: the caller's side of "mg.exec" (see exec_serve.c).
 *
 * The job owns two receivers: events (output chunks and the exit status)
 * and stdin acknowledgements.  Handing an output chunk to the user counts
 * it as consumed; acknowledgements go back in batches of a quarter window
 * so the producer keeps streaming while the consumer keeps up, and stops
 * when it does not.  Stdin from a buffer or an fd is fed by a thread of the
 * job's own, so a caller reading output on one thread can never deadlock
 * against a process waiting for its input.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "services/svc.h"

/* Stdin up to this size travels inside the call itself. */
#define INLINE_STDIN_MAX (256 * 1024)

struct mg_exec {
	struct mg_receiver *ev_rx, *in_ack_rx;
	struct mg_sender *ctl, *in;
	int64_t pid;
	uint64_t window;
	/* Output: consumed by the user, and what the producer was told. */
	uint64_t consumed, acked;
	struct mg_msg *held; /* the message whose bytes the user borrows */
	size_t held_len;
	bool done;
	/* Stdin. */
	pthread_mutex_t in_lock;
	uint64_t in_sent;
	int64_t in_acked;
	bool in_closed, in_broken;
	/* The feeder thread, for stdin_data and stdin_fd. */
	pthread_t feeder;
	bool feeder_started;
	atomic_bool stop;
	const uint8_t *feed_data;
	size_t feed_len;
	int feed_fd;
};

void mg_exec_opts_init(struct mg_exec_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->stdin_fd = -1;
}

static size_t strv_len(const char *const *v)
{
	size_t n = 0;

	while (v != NULL && v[n] != NULL)
		n++;
	return n;
}

static int append_strv(struct mg_msg *m, const char *key, const char *const *v)
{
	size_t i, n = strv_len(v);
	int rc = mg_msg_append(m, "sa", key, n);

	for (i = 0; rc == 0 && i < n; i++)
		rc = mg_msg_append(m, "s", v[i]);
	return rc;
}

/* The spec map mg.exec reads (exec_spawn.c). */
static int build_spec(const struct mg_exec_opts *o, bool inline_stdin, bool stream,
                      uint64_t collect, struct mg_msg **mp)
{
	size_t pairs = 6; /* the command and the five scalars */
	struct mg_msg *m;
	int rc;

	pairs += (o->env != NULL) + (o->cwd != NULL) + (inline_stdin ? 1 : 0) + (collect > 0);
	if ((rc = mg_msg_new(&m)) != 0)
		return rc;
	rc = mg_msg_append(m, "m", pairs);
	if (rc == 0 && o->argv != NULL)
		rc = append_strv(m, "argv", o->argv);
	else if (rc == 0)
		rc = mg_msg_append(m, "ss", "shell", o->command);
	if (rc == 0 && o->env != NULL)
		rc = append_strv(m, "env", o->env);
	if (rc == 0 && o->cwd != NULL)
		rc = mg_msg_append(m, "ss", "cwd", o->cwd);
	if (rc == 0 && inline_stdin)
		rc = mg_msg_append(m, "sy", "stdin", o->stdin_data, o->stdin_len);
	if (rc == 0 && collect > 0)
		rc = mg_msg_append(m, "su", "collect", collect);
	if (rc == 0)
		rc = mg_msg_append(m, "sb sb sb si su", "clear_env", (int)o->clear_env,
		                   "stdin_stream", (int)stream, "pty", (int)o->pty, "timeout_ms",
		                   (int64_t)o->timeout_ms, "window", (uint64_t)o->window);
	if (rc != 0) {
		mg_msg_free(m);
		return rc;
	}
	*mp = m;
	return 0;
}

static void *feeder_main(void *arg)
{
	struct mg_exec *job = arg;
	uint8_t *buf;
	ssize_t n;

	if (job->feed_data != NULL) {
		mg_exec_write(job, job->feed_data, job->feed_len);
	} else if ((buf = malloc(SVC_CHUNK)) != NULL) {
		while (!atomic_load(&job->stop)) {
			struct pollfd pf = {.fd = job->feed_fd, .events = POLLIN};
			/* Polled with a timeout so freeing the job never waits on
			 * an fd that stays silent. */
			if (poll(&pf, 1, 100) == 0)
				continue;
			n = read(job->feed_fd, buf, SVC_CHUNK);
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0 || mg_exec_write(job, buf, (size_t)n) != 0)
				break;
		}
		free(buf);
	}
	mg_exec_close_stdin(job);
	return NULL;
}

static int job_new(struct mg_context *ctx, struct mg_exec **jobp)
{
	struct mg_router *r = mg_context_router(ctx);
	struct mg_exec *job = calloc(1, sizeof(*job));
	int rc;

	if (job == NULL)
		return -ENOMEM;
	pthread_mutex_init(&job->in_lock, NULL);
	job->feed_fd = -1;
	rc = mg_receiver_new(r, mg_context_id(ctx), MG_POLICY_ANY, &job->ev_rx);
	if (rc == 0)
		rc = mg_receiver_new(r, mg_context_id(ctx), MG_POLICY_ANY, &job->in_ack_rx);
	if (rc != 0) {
		mg_exec_free(job);
		return rc;
	}
	*jobp = job;
	return 0;
}

int mg_exec_start(struct mg_context *ctx, const struct mg_exec_opts *o, struct mg_exec **jobp,
                  char *err, size_t err_size)
{
	bool inline_stdin = o->stdin_data != NULL && o->stdin_len <= INLINE_STDIN_MAX;
	bool feed = (o->stdin_data != NULL && !inline_stdin) || o->stdin_fd >= 0;
	struct mg_sender *ev = NULL, *in_ack = NULL;
	struct mg_msg *spec = NULL, *reply = NULL;
	struct mg_exec *job = NULL;
	int rc;

	if (err != NULL && err_size > 0)
		err[0] = '\0';
	if ((o->argv == NULL || o->argv[0] == NULL) && o->command == NULL)
		return -EINVAL;
	if ((rc = job_new(ctx, &job)) != 0)
		goto out;
	job->window = mg__svc_window(o->window);
	if ((rc = build_spec(o, inline_stdin, feed || o->stdin_stream, 0, &spec)) != 0)
		goto out;
	if ((rc = mg_receiver_to_sender(job->ev_rx, &ev)) != 0 ||
	    (rc = mg_receiver_to_sender(job->in_ack_rx, &in_ack)) != 0)
		goto out;
	rc = mg_call(ctx, "mg.exec", &reply, "vhh", mg_msg_data(spec), mg_msg_len(spec), ev,
	             in_ack);
	if (rc != 0) {
		rc = mg__svc_call_error(rc, err, err_size);
		goto out;
	}
	if ((rc = mg_msg_read(reply, "ihh", &job->pid, &job->ctl, &job->in)) != 0)
		goto out;
	if (feed) {
		job->feed_data = o->stdin_fd >= 0 ? NULL : o->stdin_data;
		job->feed_len = o->stdin_len;
		job->feed_fd = o->stdin_fd;
		if (pthread_create(&job->feeder, NULL, feeder_main, job) != 0) {
			rc = -EAGAIN;
			goto out;
		}
		job->feeder_started = true;
	}
	*jobp = job;
	job = NULL;
out:
	if (rc != 0 && err != NULL && err_size > 0 && err[0] == '\0')
		snprintf(err, err_size, "%s", mg_strerror(rc));
	mg_msg_free(spec);
	mg_msg_free(reply);
	mg_sender_free(ev);
	mg_sender_free(in_ack);
	mg_exec_free(job);
	return rc;
}

/* Counts the bytes the user was lent as consumed, acknowledging them in
 * batches. */
static void release_held(struct mg_exec *job)
{
	if (job->held == NULL)
		return;
	mg_msg_free(job->held);
	job->held = NULL;
	job->consumed += job->held_len;
	if (job->consumed - job->acked >= job->window / 4 && job->ctl != NULL) {
		mg_sender_sendf(job->ctl, "(iu)", (int64_t)1, job->consumed);
		job->acked = job->consumed;
	}
}

int mg_exec_event_from(struct mg_exec *job, int rc, struct mg_msg *m, struct mg_exec_event *ev)
{
	int64_t tag, code, sig;
	const char *error;
	bool timed_out;
	size_t n;

	release_held(job);
	if (rc != 0) {
		mg_msg_free(m);
		if (rc != -ETIMEDOUT)
			job->done = true;
		return rc;
	}
	memset(ev, 0, sizeof(*ev));
	if (mg_msg_read(m, "ai", &n, &tag) != 0)
		goto bad;
	if ((tag == EXEC_EV_STDOUT || tag == EXEC_EV_STDERR) &&
	    mg_msg_read(m, "y", &ev->data, &ev->len) == 0) {
		ev->type = (int)tag;
		job->held = m;
		job->held_len = ev->len;
		return 0;
	}
	if (tag == EXEC_EV_EXIT && mg_msg_read(m, "iibs", &code, &sig, &timed_out, &error) == 0) {
		ev->type = MG_EXEC_EXIT;
		ev->status.exit_code = (int)code;
		ev->status.signal = (int)sig;
		ev->status.timed_out = timed_out;
		if (error != NULL)
			snprintf(ev->status.error, sizeof(ev->status.error), "%s", error);
		job->done = true;
		mg_msg_free(m);
		return 0;
	}
bad:
	mg_msg_free(m);
	return MG_EDECODE;
}

int mg_exec_next(struct mg_exec *job, int timeout_ms, struct mg_exec_event *ev)
{
	struct mg_msg *m = NULL;
	int rc;

	if (job->done) {
		release_held(job);
		return MG_ECLOSED;
	}
	rc = mg_receiver_get(job->ev_rx, timeout_ms, &m);
	return mg_exec_event_from(job, rc, m, ev);
}

struct mg_receiver *mg_exec_receiver(struct mg_exec *job)
{
	return job->ev_rx;
}

int64_t mg_exec_pid(const struct mg_exec *job)
{
	return job->pid;
}

/* Waits for stdin acks until the window has room; called locked. */
static int stdin_wait(struct mg_exec *job)
{
	struct mg_msg *m;
	int64_t total;
	int rc;

	while (!job->in_broken && (int64_t)job->in_sent - job->in_acked >= (int64_t)job->window) {
		if ((rc = mg_receiver_get(job->in_ack_rx, -1, &m)) != 0)
			return rc;
		if (mg_msg_read(m, "(i)", &total) == 0) {
			if (total < 0)
				job->in_broken = true;
			else if (total > job->in_acked)
				job->in_acked = total;
		}
		mg_msg_free(m);
	}
	return job->in_broken ? -EPIPE : 0;
}

int mg_exec_write(struct mg_exec *job, const void *data, size_t len)
{
	const uint8_t *p = data;
	int rc = 0;

	pthread_mutex_lock(&job->in_lock);
	if (job->in_closed)
		rc = -EPIPE;
	while (rc == 0 && len > 0) {
		size_t n = len < SVC_CHUNK ? len : SVC_CHUNK;
		if ((rc = stdin_wait(job)) != 0)
			break;
		rc = mg_sender_sendf(job->in, "(iy)", (int64_t)EXEC_IN_DATA, p, n);
		job->in_sent += n;
		p += n;
		len -= n;
	}
	pthread_mutex_unlock(&job->in_lock);
	return rc;
}

int mg_exec_close_stdin(struct mg_exec *job)
{
	int rc = 0;

	pthread_mutex_lock(&job->in_lock);
	if (!job->in_closed && job->in != NULL)
		rc = mg_sender_sendf(job->in, "(i)", (int64_t)EXEC_IN_EOF);
	job->in_closed = true;
	pthread_mutex_unlock(&job->in_lock);
	return rc;
}

int mg_exec_kill(struct mg_exec *job, int sig)
{
	if (job->ctl == NULL)
		return MG_ECLOSED;
	return mg_sender_sendf(job->ctl, "(ii)", (int64_t)EXEC_CTL_KILL, (int64_t)sig);
}

void mg_exec_free(struct mg_exec *job)
{
	if (job == NULL)
		return;
	if (!job->done && job->ctl != NULL)
		mg_exec_kill(job, 9);
	if (job->feeder_started) {
		atomic_store(&job->stop, true);
		/* Wakes a feeder waiting for stdin acks. */
		mg_receiver_close(job->in_ack_rx);
		pthread_join(job->feeder, NULL);
	}
	if (job->held != NULL)
		mg_msg_free(job->held);
	mg_receiver_free(job->ev_rx);
	mg_receiver_free(job->in_ack_rx);
	mg_sender_free(job->ctl);
	mg_sender_free(job->in);
	pthread_mutex_destroy(&job->in_lock);
	free(job);
}

/* ---- run to completion ------------------------------------------------ */

static void keep(char **buf, size_t *len, uint64_t *total, size_t cap, const void *p, size_t n)
{
	size_t take = *len + n > cap ? cap - *len : n;
	char *nb;

	*total += n;
	if (take == 0 || (nb = realloc(*buf, *len + take + 1)) == NULL)
		return;
	memcpy(nb + *len, p, take);
	*len += take;
	nb[*len] = '\0';
	*buf = nb;
}

void mg_exec_result_fini(struct mg_exec_result *res)
{
	free(res->out);
	free(res->err);
	memset(res, 0, sizeof(*res));
}

/* A run started by mg_exec_run_start(): a collected call waiting for its
 * one reply, or a streamed job whose output is kept as it comes. */
struct mg_exec_pending {
	size_t cap;
	struct mg_receiver *rx, *ev_rx; /* collected: the reply; the job's watch */
	struct mg_exec *job;            /* streamed */
	struct mg_exec_result res;      /* streamed: what came so far */
	bool exited, over;
};

/* A run whose output fits the context's collect cap, with no stdin to
 * stream: one call, whose reply (sent when the process has exited) holds
 * the status and the output.  The context then needs no acks and sends
 * one message instead of a reply, the output and an exit event. */
static int start_collected(struct mg_context *ctx, const struct mg_exec_opts *o,
                           struct mg_exec_pending *p)
{
	struct mg_sender *ev = NULL;
	struct mg_msg *spec = NULL;
	int rc;

	if ((rc = build_spec(o, o->stdin_data != NULL, false, p->cap, &spec)) != 0)
		goto out;
	/* The context's control receiver watches this sender's context: it
	 * kills the process if this one goes away.  Nothing is sent to it. */
	rc = mg_receiver_new(mg_context_router(ctx), mg_context_id(ctx), MG_POLICY_ANY, &p->ev_rx);
	if (rc == 0)
		rc = mg_receiver_to_sender(p->ev_rx, &ev);
	if (rc == 0)
		rc = mg_call_async(ctx, "mg.exec", &p->rx, "vhh", mg_msg_data(spec),
		                   mg_msg_len(spec), ev, ev);
out:
	mg_msg_free(spec);
	mg_sender_free(ev);
	return rc;
}

/* The collected run's reply into res. */
static int read_collected(struct mg_msg *reply, size_t cap, struct mg_exec_result *res)
{
	const void *out, *err;
	size_t out_len, err_len;
	int64_t code, sig;
	const char *error;
	bool timed_out;
	int rc;

	rc = mg_msg_read(reply, "iibsyyuu", &code, &sig, &timed_out, &error, &out, &out_len, &err,
	                 &err_len, &res->out_total, &res->err_total);
	if (rc != 0)
		return rc;
	res->status.exit_code = (int)code;
	res->status.signal = (int)sig;
	res->status.timed_out = timed_out;
	if (error != NULL)
		snprintf(res->status.error, sizeof(res->status.error), "%s", error);
	keep(&res->out, &res->out_len, &res->out_total, cap, out, out_len);
	keep(&res->err, &res->err_len, &res->err_total, cap, err, err_len);
	/* keep() counted them again. */
	res->out_total -= out_len;
	res->err_total -= err_len;
	return 0;
}

static void run_error(int rc, struct mg_exec_result *res)
{
	if (rc != 0 && res->error[0] == '\0')
		snprintf(res->error, sizeof(res->error), "%s%s%s", mg_strerror(rc),
		         *mg_errdetail() ? ": " : "", mg_errdetail());
}

int mg_exec_run_start(struct mg_context *ctx, const struct mg_exec_opts *o, size_t cap,
                      struct mg_exec_pending **pendp, char *err, size_t err_size)
{
	struct mg_exec_pending *p;
	int rc;

	if (err != NULL && err_size > 0)
		err[0] = '\0';
	if ((o->argv == NULL || o->argv[0] == NULL) && o->command == NULL)
		return -EINVAL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -ENOMEM;
	p->cap = cap;
	if (cap > 0 && cap <= EXEC_COLLECT_MAX && o->stdin_fd < 0 && !o->stdin_stream &&
	    (o->stdin_data == NULL || o->stdin_len <= INLINE_STDIN_MAX)) {
		if ((rc = start_collected(ctx, o, p)) != 0 && err != NULL && err_size > 0)
			snprintf(err, err_size, "%s%s%s", mg_strerror(rc),
			         *mg_errdetail() ? ": " : "", mg_errdetail());
	} else {
		rc = mg_exec_start(ctx, o, &p->job, err, err_size);
	}
	if (rc != 0) {
		mg_exec_pending_free(p);
		return rc;
	}
	*pendp = p;
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A streamed job's events until its exit, keeping its output in p->res. */
static int wait_streamed(struct mg_exec_pending *p, int timeout_ms)
{
	struct mg_exec_result *res = &p->res;
	int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;
	struct mg_exec_event ev;
	int rc, left = timeout_ms;

	while ((rc = mg_exec_next(p->job, left, &ev)) == 0) {
		if (ev.type == MG_EXEC_STDOUT) {
			keep(&res->out, &res->out_len, &res->out_total, p->cap, ev.data, ev.len);
		} else if (ev.type == MG_EXEC_STDERR) {
			keep(&res->err, &res->err_len, &res->err_total, p->cap, ev.data, ev.len);
		} else if (ev.type == MG_EXEC_EXIT) {
			res->status = ev.status;
			p->exited = true;
		}
		if (deadline >= 0) {
			int64_t l = deadline - now_ms();
			left = l > 0 ? (int)l : 0;
		}
	}
	if (rc == -ETIMEDOUT)
		return rc;
	if (rc == MG_ECLOSED && p->exited)
		rc = 0;
	run_error(rc, res);
	return rc;
}

int mg_exec_run_wait(struct mg_exec_pending *p, int timeout_ms, struct mg_exec_result *res)
{
	struct mg_msg *reply = NULL;
	int rc;

	memset(res, 0, sizeof(*res));
	if (p->over)
		return MG_ECLOSED;
	if (p->job != NULL) {
		if ((rc = wait_streamed(p, timeout_ms)) == -ETIMEDOUT)
			return rc;
		*res = p->res;
		memset(&p->res, 0, sizeof(p->res));
	} else {
		rc = mg_call_wait(p->rx, timeout_ms, &reply);
		if (rc == -ETIMEDOUT)
			return rc;
		if (rc != 0)
			rc = mg__svc_call_error(rc, res->error, sizeof(res->error));
		else
			rc = read_collected(reply, p->cap, res);
		run_error(rc, res);
		mg_msg_free(reply);
	}
	p->over = true;
	return rc;
}

void mg_exec_pending_free(struct mg_exec_pending *p)
{
	if (p == NULL)
		return;
	mg_receiver_free(p->rx);
	mg_receiver_free(p->ev_rx);
	mg_exec_free(p->job);
	mg_exec_result_fini(&p->res);
	free(p);
}

int mg_exec_run(struct mg_context *ctx, const struct mg_exec_opts *o, size_t cap,
                struct mg_exec_result *res)
{
	struct mg_exec_pending *p;
	int rc;

	memset(res, 0, sizeof(*res));
	if ((rc = mg_exec_run_start(ctx, o, cap, &p, res->error, sizeof(res->error))) != 0)
		return rc;
	rc = mg_exec_run_wait(p, -1, res);
	mg_exec_pending_free(p);
	return rc;
}
