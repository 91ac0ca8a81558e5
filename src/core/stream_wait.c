/*
 * stream_wait.c: a thread that waits for a message reading the stream
 * itself.  The broker is the stream's reader otherwise; while a thread
 * holds the input (in_state MG_IN_THREAD) the fd is out of the broker's
 * epoll set for reading, the thread sleeps in ppoll() on it and on an
 * eventfd others kick, and delivers the frames it reads through
 * ops->try_msg.  What it may not deliver goes back to the broker in order:
 * the refused message in in_pending, the rest in rbuf, and EPOLLIN stays
 * off until resume_cb() has delivered them.  Closing the stream takes the
 * input back first (in_reclaim and a kick; mg__stream_close()).
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

/* The stream whose input this thread holds, if any. */
static _Thread_local const struct mg_stream *held_here;

bool mg__stream_input_held_here(const struct mg_stream *s)
{
	return held_here == s;
}

void mg__stream_input_kick(struct mg_stream *s)
{
	uint64_t one = 1;

	/* in_efd is made before the input is first taken and lives as long
	 * as the stream. */
	while (write(s->in_efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

bool mg__stream_input_take(struct mg_stream *s)
{
	bool ok;

	if (s->ops->try_msg == NULL)
		return false;
	pthread_mutex_lock(&s->lock);
	/* A large payload half read stays with the broker, which reads it
	 * straight into place. */
	ok = !s->closed && s->in_state == MG_IN_IDLE && s->big == NULL;
	if (ok && s->in_efd < 0 && (s->in_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		ok = false;
	if (ok) {
		s->in_state = MG_IN_THREAD;
		atomic_store(&s->in_reclaim, false);
		mg__stream_update_events(s);
		held_here = s;
	}
	pthread_mutex_unlock(&s->lock);
	return ok;
}

/* Ends this thread's hold on the input: state is MG_IN_IDLE (the broker
 * reads on EPOLLIN again) or MG_IN_HANDBACK (resume_cb() is posted). */
static void give_back(struct mg_stream *s, int state)
{
	pthread_mutex_lock(&s->lock);
	s->in_state = state;
	mg__stream_update_events(s);
	held_here = NULL;
	/* mg__stream_close() may be waiting for the input. */
	pthread_cond_broadcast(&s->drained);
	pthread_mutex_unlock(&s->lock);
}

void mg__stream_input_release(struct mg_stream *s)
{
	give_back(s, MG_IN_IDLE);
}

/* Broker: takes the input back from a thread that gave up on it, delivers
 * the message it left, parses the rest of rbuf (cutting a large payload's
 * start, say, or closing on a bad frame) and reads on EPOLLIN again. */
static void resume_cb(void *arg)
{
	struct mg_stream *s = arg;
	struct mg_msg *m;
	bool closed;

	pthread_mutex_lock(&s->lock);
	m = s->in_pending;
	s->in_pending = NULL;
	closed = s->closed;
	s->in_state = closed ? MG_IN_IDLE : MG_IN_BROKER;
	pthread_mutex_unlock(&s->lock);
	if (closed) {
		mg_msg_free(m);
	} else {
		if (m != NULL)
			s->ops->on_msg(s->owner, s, m);
		if (!s->closed)
			mg__stream_parse(s, false);
		pthread_mutex_lock(&s->lock);
		s->in_state = MG_IN_IDLE;
		mg__stream_update_events(s);
		pthread_mutex_unlock(&s->lock);
	}
	mg__stream_unref(s);
}

static void hand_back(struct mg_stream *s)
{
	give_back(s, MG_IN_HANDBACK);
	mg__stream_ref(s);
	/* The stream's own node: short of memory the input still goes back.
	 * Only a stopping broker refuses, which closes every stream. */
	s->in_resume.fn = resume_cb;
	s->in_resume.arg = s;
	if (mg__broker_post_node(s->broker, &s->in_resume) != 0)
		mg__stream_unref(s);
}

/* Delivers the complete frames in rbuf on this thread; hands the input
 * back when one is left for the broker (mg__stream_parse()).  Returns 0
 * while the input is held, 1 once handed back. */
static int parse_here(struct mg_stream *s)
{
	if (mg__stream_parse(s, true))
		return 0;
	hand_back(s);
	return 1;
}

/* What is left until deadline, as ppoll() wants it (zero once past). */
static void time_left(const struct timespec *deadline, struct timespec *left)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	left->tv_sec = deadline->tv_sec - now.tv_sec;
	left->tv_nsec = deadline->tv_nsec - now.tv_nsec;
	if (left->tv_nsec < 0) {
		left->tv_sec--;
		left->tv_nsec += 1000000000;
	}
	if (left->tv_sec < 0)
		left->tv_sec = left->tv_nsec = 0;
}

int mg__stream_input_wait(struct mg_stream *s, const struct timespec *deadline)
{
	struct pollfd p[2] = {{.fd = s->rfd, .events = POLLIN},
	                      {.fd = s->in_efd, .events = POLLIN}};
	struct timespec left;
	uint64_t v;
	ssize_t n;
	int r = 0;

	if (!atomic_load(&s->in_reclaim)) {
		if (deadline != NULL)
			time_left(deadline, &left);
		r = ppoll(p, 2, deadline != NULL ? &left : NULL, NULL);
		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0 && errno == EINTR)
			return 0;
		if (r > 0 && (p[1].revents & POLLIN))
			while (read(s->in_efd, &v, sizeof(v)) < 0 && errno == EINTR)
				;
	}
	if (atomic_load(&s->in_reclaim) || r < 0) {
		give_back(s, MG_IN_IDLE);
		return 1;
	}
	if (p[0].revents == 0)
		return 0;
	n = read(s->rfd, s->rbuf + s->rlen, MG_STREAM_READ_CHUNK - s->rlen);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		/* EOF or an error: the broker reads it again and closes. */
		give_back(s, MG_IN_IDLE);
		return 1;
	}
	s->bytes_in += (size_t)n;
	s->rlen += (size_t)n;
	return parse_here(s);
}
