/*
 * stream.c: one peer connection.  Input is read in 128 KiB chunks and cut
 * into frames (a large payload is read straight into its message).  Output
 * is a queue of refcounted messages written with writev; a sender that
 * finds the queue idle writes itself (saving a thread hop), and whatever
 * the socket does not take is left to the broker's EPOLLOUT.  Senders wait
 * while more than the high-water mark is queued.  Input is the broker's,
 * except while a thread waiting for a message takes it to read the fd
 * itself (saving another hop; core.h, mg__stream_input_take()): in_state
 * says who has it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/core.h"

#define READS_PER_EVENT 8 /* then let other streams have a turn */
#define MAX_IOV 64
#define SOCKET_SNDBUF (512 * 1024) /* see grow_sndbuf() */
#define PIPE_SIZE (1024 * 1024)    /* see pace() */
#define PACE_MS 1

static void stream_free(struct mg_stream *s)
{
	size_t i;

	for (i = 0; i < s->out_count; i++)
		mg_msg_free(s->outq[(s->out_head + i) % s->out_cap].msg);
	mg__free(s->outq);
	while (s->nretired > 0)
		mg__free(s->retired[--s->nretired]);
	mg__free(s->rbuf);
	mg_msg_free(s->big);
	mg_msg_free(s->in_pending);
	if (s->in_efd >= 0)
		close(s->in_efd);
	pthread_cond_destroy(&s->drained);
	pthread_mutex_destroy(&s->lock);
	mg__free(s);
}

void mg__stream_ref(struct mg_stream *s)
{
	atomic_fetch_add(&s->refs, 1);
}

void mg__stream_unref(struct mg_stream *s)
{
	if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1)
		stream_free(s);
}

static int set_flags(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return -errno;
	return 0;
}

/*
 * An AF_UNIX stream socket holds at most its sender's SO_SNDBUF in flight
 * (the receiver's SO_RCVBUF plays no part), 208 KiB by default: a large
 * payload then crosses in ~150 KiB turns, each costing a wake-up of the
 * thread at the other end.  When the two ends run on different CPUs that
 * wake-up (an IPI, in a VM often to a halted vCPU) costs as much as the
 * copy, and 64 MiB moved at a third of the speed it reaches when both ends
 * share a CPU (docs/BENCH.md).  Fewer, larger turns make the placement
 * matter little.  The kernel doubles the value asked for and caps it at
 * net.core.wmem_max; a buffer as large or larger set already is kept.
 * Other sockets (TCP tunes its own) are left alone; failure is harmless.
 */
static void grow_sndbuf(int fd)
{
	int domain = 0, cur = 0, want = SOCKET_SNDBUF;
	socklen_t len = sizeof(domain);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_UNIX)
		return;
	len = sizeof(cur);
	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &len) == 0 && cur >= 2 * want)
		return;
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
}

/*
 * A pipe we write to (an agent's output under sshd) is made PIPE_SIZE
 * large so that pace() can let it fill, but only once it has filled at
 * its default size: an unprivileged user's pipes share a budget of pages
 * (fs.pipe-user-pages-soft, 64 MiB by default) that dozens of idle agents
 * of one user must not use up.  Only pipes: a socket's buffer is
 * grow_sndbuf()'s, a pty's is fixed.  A refusal leaves the pipe as it is,
 * and pace() then stays out of it.  Returns the pipe's size, 0 when wfd
 * is not a pipe.
 */
static size_t pipe_size(int fd, bool grow)
{
	struct stat st;
	int cap;

	if (fstat(fd, &st) != 0 || !S_ISFIFO(st.st_mode))
		return 0;
	if (grow && (cap = fcntl(fd, F_GETPIPE_SZ)) >= 0 && cap < PIPE_SIZE)
		(void)fcntl(fd, F_SETPIPE_SZ, PIPE_SIZE);
	cap = fcntl(fd, F_GETPIPE_SZ);
	return cap > 0 ? (size_t)cap : 0;
}

/* ---- output ------------------------------------------------------------ */

void mg__stream_update_events(struct mg_stream *s)
{
	bool in = s->in_state == MG_IN_IDLE || s->in_state == MG_IN_BROKER;
	uint32_t out = s->want_write ? EPOLLOUT : 0;

	if (s->closed)
		return; /* the watches are gone, the fds closed */
	if (s->rfd == s->wfd) {
		mg__watch_mod(s->broker, &s->rwatch, (in ? EPOLLIN : 0) | out);
	} else {
		mg__watch_mod(s->broker, &s->rwatch, in ? EPOLLIN : 0);
		mg__watch_mod(s->broker, &s->wwatch, out);
	}
}

/* Drops n written bytes from the head of the queue; fully written messages
 * are moved to *donep for freeing outside the lock.  Called locked. */
static void consume(struct mg_stream *s, size_t n, struct mg_ring *donep)
{
	s->queued -= n;
	s->bytes_out += n;
	while (n > 0) {
		struct mg_outq_entry *e = &s->outq[s->out_head];
		size_t total = MG_FRAME_HDR_LEN + e->msg->payload.len;
		size_t left = total - s->out_off;

		if (n < left) {
			s->out_off += n;
			return;
		}
		n -= left;
		s->out_off = 0;
		if (mg__ring_push(donep, e->msg) != 0)
			mg_msg_free(e->msg); /* cannot defer: free under the lock */
		s->out_head = (s->out_head + 1) % s->out_cap;
		s->out_count--;
	}
}

/* Builds the iovec for the queue head; *lenp gets its byte count.
 * Called locked. */
static int build_iov(struct mg_stream *s, struct iovec *iov, size_t *lenp)
{
	size_t i, off = s->out_off, len = 0;
	int n = 0;

	for (i = 0; i < s->out_count && n < MAX_IOV - 1; i++) {
		struct mg_outq_entry *e = &s->outq[(s->out_head + i) % s->out_cap];
		size_t plen = e->msg->payload.len;

		if (off < MG_FRAME_HDR_LEN) {
			iov[n].iov_base = e->hdr + off;
			iov[n++].iov_len = MG_FRAME_HDR_LEN - off;
			off = 0;
		} else {
			off -= MG_FRAME_HDR_LEN;
		}
		if (plen > off) {
			iov[n].iov_base = e->msg->payload.data + off;
			iov[n++].iov_len = plen - off;
		}
		off = 0;
	}
	for (i = 0; i < (size_t)n; i++)
		len += iov[i].iov_len;
	*lenp = len;
	return n;
}

static atomic_bool sigpipe_ignored;

void mg__stream_sigpipe_ignored(void)
{
	atomic_store(&sigpipe_ignored, true);
}

/*
 * writev without SIGPIPE: a peer that went away must be an error on this
 * stream, not a signal that kills the process.  Sockets say so per call;
 * for pipes the signal is blocked on this thread and any pending one
 * consumed before unblocking, unless the process ignores it anyway.
 */
static ssize_t write_iov(struct mg_stream *s, struct iovec *iov, int n)
{
	static const struct timespec zero = {0, 0};
	sigset_t pipe_set, old;
	ssize_t w;
	int err;

	if (s->is_socket) {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
		return sendmsg(s->wfd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	}
	if (atomic_load_explicit(&sigpipe_ignored, memory_order_relaxed))
		return writev(s->wfd, iov, n);
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	w = writev(s->wfd, iov, n);
	err = errno;
	if (w < 0 && err == EPIPE)
		sigtimedwait(&pipe_set, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return w;
}

/*
 * Writes as much of the queue as the fd takes.  Exactly one thread writes
 * at a time (s->writing).  Returns 0, or -errno for a write error.  Sets
 * *pendingp when bytes remain queued after EAGAIN or a short write.
 *
 * A short write means the pipe or socket is full: another writev now
 * would only say EAGAIN, so the rest waits for EPOLLOUT (level-triggered:
 * if room came meanwhile, it fires at once).  A stream that outruns its
 * reader (a file pulled over ssh: sshd takes 32 KiB from the agent's pipe
 * per turn) is woken for every turn, and that second writev was a third
 * of its system calls.
 */
static int flush(struct mg_stream *s, bool *pendingp, size_t *wrotep, bool *fullp)
{
	struct iovec iov[MAX_IOV];
	struct mg_ring done;
	size_t wrote = 0;
	bool full = false;
	int err = 0;
	void *m;

	mg__ring_init(&done);
	*pendingp = false;
	*wrotep = 0;
	*fullp = false;
	pthread_mutex_lock(&s->lock);
	if (s->writing || s->closed) {
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	s->writing = true;
	while (s->out_count > 0) {
		size_t len;
		int n = build_iov(s, iov, &len);
		ssize_t w;

		pthread_mutex_unlock(&s->lock);
		do
			w = write_iov(s, iov, n);
		while (w < 0 && errno == EINTR);
		if (w < 0)
			err = errno == EAGAIN ? 0 : -errno;
		full = w < 0 ? err == 0 : (size_t)w < len;
		pthread_mutex_lock(&s->lock);
		if (w < 0)
			break;
		consume(s, (size_t)w, &done);
		wrote += (size_t)w;
		if (s->queued <= s->high_water)
			pthread_cond_broadcast(&s->drained);
		if (full)
			break; /* see above */
	}
	s->writing = false;
	while (s->nretired > 0)
		mg__free(s->retired[--s->nretired]);
	*pendingp = s->out_count > 0 && err == 0;
	*wrotep = wrote;
	*fullp = full;
	/* mg__stream_close() may be waiting for the writer to leave (it sets
	 * closed first); senders only care once under the high-water mark. */
	if (s->closed || s->queued <= s->high_water)
		pthread_cond_broadcast(&s->drained);
	pthread_mutex_unlock(&s->lock);
	while ((m = mg__ring_pop(&done)) != NULL)
		mg_msg_free(m);
	mg__ring_fini(&done);
	return err;
}

static void write_failed(struct mg_stream *s, int err)
{
	mg__stream_close(s, MG_EDISCONNECT, strerror(-err));
}

static void flush_on_broker(struct mg_stream *s, bool timer);

static void pace_cb(void *arg)
{
	struct mg_stream *s = arg;

	pthread_mutex_lock(&s->lock);
	s->pace_timer = 0;
	pthread_mutex_unlock(&s->lock);
	if (!s->closed)
		flush_on_broker(s, true);
	mg__stream_unref(s);
}

/*
 * Whether to wait PACE_MS instead of for EPOLLOUT, with the pipe full.
 * A pipe's writer is woken each time its reader frees a page of a full
 * pipe, and sshd, the reader of an agent's output over ssh, takes 32 KiB
 * a turn: a gigabyte pulled woke the agent 32,000 times, where each
 * wake-up (a switch between processes, costly in a VM) cost more than
 * the copy.  With a 1 MiB pipe (PIPE_SIZE) a full pipe holds a few
 * milliseconds of a reader's work, so waiting a millisecond and then
 * filling it again keeps the reader busy with a thirtieth of the
 * wake-ups.  A reader that took less than an eighth of the pipe in that
 * millisecond is slow or stopped: then EPOLLOUT wakes us as before, so a
 * stalled reader never makes us spin on the timer.  Called locked, on
 * the broker, with the pipe full (the last write stopped short).
 */
static bool pace(struct mg_stream *s, bool timer, size_t wrote)
{
	if (s->pipe_cap > 0 && !s->pipe_grown) {
		/* First time full: grow it, and let EPOLLOUT fill the room. */
		s->pipe_grown = true;
		s->pipe_cap = pipe_size(s->wfd, true);
		return false;
	}
	if (s->pipe_cap < PIPE_SIZE / 2 || (timer && wrote < s->pipe_cap / 8))
		return false;
	mg__stream_ref(s);
	if ((s->pace_timer = mg__timer_add(s->broker, PACE_MS, pace_cb, s)) == 0) {
		atomic_fetch_sub(&s->refs, 1); /* another ref is held: not the last */
		return false;
	}
	return true;
}

/* Broker: EPOLLOUT, a paced wake (timer) or a kick from a sender that hit
 * EAGAIN. */
static void flush_on_broker(struct mg_stream *s, bool timer)
{
	bool pending, full;
	size_t wrote;
	int r = flush(s, &pending, &wrote, &full);

	if (r != 0) {
		write_failed(s, r);
		return;
	}
	/* Decide on EPOLLOUT from the queue as it is now, under the lock.
	 * While a sender is writing, leave it alone: that sender kicks us if
	 * it stops short, and EPOLLOUT may only be dropped once the queue is
	 * seen empty with nobody writing. */
	pthread_mutex_lock(&s->lock);
	if (!s->closed && !s->writing && s->pace_timer == 0) {
		bool on;
		pending = s->out_count > 0;
		on = pending && !(full && pace(s, timer, wrote));
		if (s->want_write != on) {
			s->want_write = on;
			mg__stream_update_events(s);
		}
	}
	pthread_mutex_unlock(&s->lock);
}

static void kick_cb(void *arg)
{
	struct mg_stream *s = arg;

	pthread_mutex_lock(&s->lock);
	s->kicked = false;
	pthread_mutex_unlock(&s->lock);
	flush_on_broker(s, false);
	mg__stream_unref(s);
}

static void kick_broker(struct mg_stream *s)
{
	bool post;

	pthread_mutex_lock(&s->lock);
	post = !s->kicked && !s->want_write && !s->pace_timer && !s->closed;
	if (post)
		s->kicked = true;
	pthread_mutex_unlock(&s->lock);
	if (!post)
		return;
	mg__stream_ref(s);
	if (mg__broker_post(s->broker, kick_cb, s) != 0)
		mg__stream_unref(s);
}

static int queue_grow(struct mg_stream *s)
{
	size_t ncap = s->out_cap ? s->out_cap * 2 : 32, i;
	const size_t max_retired = sizeof(s->retired) / sizeof(s->retired[0]);
	struct mg_outq_entry *n;

	/* A writer outside the lock may have iovecs pointing at headers in
	 * the current array: it is kept until that writer is done. */
	if (s->writing && s->nretired == max_retired)
		return -ENOMEM;
	if ((n = mg__malloc(ncap * sizeof(*n))) == NULL)
		return -ENOMEM;
	for (i = 0; i < s->out_count; i++)
		n[i] = s->outq[(s->out_head + i) % s->out_cap];
	if (s->writing)
		s->retired[s->nretired++] = s->outq;
	else
		mg__free(s->outq);
	s->outq = n;
	s->out_cap = ncap;
	s->out_head = 0;
	return 0;
}

int mg__stream_send(struct mg_stream *s, const struct mg_frame_hdr *hdr, struct mg_msg *msg,
                    bool may_block)
{
	struct mg_outq_entry *e;
	struct mg_frame_hdr h = *hdr;
	bool idle, pending, full, on_broker = mg__broker_on_thread(s->broker);
	size_t wrote;
	int r;

	h.len = (uint32_t)msg->payload.len;
	if (msg->wipe)
		h.flags |= MG_FRAME_SECRET; /* the next hop wipes its copies too */
	pthread_mutex_lock(&s->lock);
	while (may_block && !on_broker && !s->closed && s->queued > s->high_water)
		pthread_cond_wait(&s->drained, &s->lock);
	if (s->closed) {
		pthread_mutex_unlock(&s->lock);
		return MG_EDISCONNECT;
	}
	if (s->out_count == s->out_cap && (r = queue_grow(s)) != 0) {
		pthread_mutex_unlock(&s->lock);
		return r;
	}
	e = &s->outq[(s->out_head + s->out_count++) % s->out_cap];
	e->msg = mg_msg_ref(msg);
	mg__frame_encode(&h, e->hdr);
	s->queued += MG_FRAME_HDR_LEN + msg->payload.len;
	idle = !s->writing && !s->want_write && !s->pace_timer;
	pthread_mutex_unlock(&s->lock);
	if (!idle)
		return 0; /* the thread writing now, or EPOLLOUT, takes it */
	if (on_broker) {
		flush_on_broker(s, false);
		return 0;
	}
	r = flush(s, &pending, &wrote, &full);
	if (r != 0 || pending)
		kick_broker(s); /* the broker reports errors and waits for EPOLLOUT */
	return 0;
}

/* ---- input ------------------------------------------------------------- */

static void deliver(struct mg_stream *s, const struct mg_frame_hdr *h, struct mg_msg *m)
{
	m->hdr = *h;
	s->ops->on_msg(s->owner, s, m);
}

bool mg__stream_parse(struct mg_stream *s, bool here)
{
	size_t off = 0;
	bool secret_moved = false, ok = true;

	/* Only the broker closes, so only it looks at closed here. */
	while ((here || !s->closed) && s->rlen - off >= MG_FRAME_HDR_LEN) {
		struct mg_frame_hdr h;
		struct mg_msg *m;
		size_t have = s->rlen - off - MG_FRAME_HDR_LEN;
		int r = mg__frame_decode(s->rbuf + off, s->max_message_size, &h);

		/* A thread leaves to the broker a bad header, a frame too large
		 * for rbuf and a secret (wiped as it goes, below); the move
		 * below may leave a stale copy of that frame's start behind. */
		if (here && (r != 0 || MG_FRAME_HDR_LEN + (size_t)h.len > MG_STREAM_READ_CHUNK ||
		             (h.flags & MG_FRAME_SECRET))) {
			secret_moved = true;
			ok = false;
			break;
		}
		if (r != 0) {
			mg__stream_close(s, r,
			                 r == MG_ETOOBIG
			                         ? "frame larger than the maximum message size"
			                         : "bad frame magic or flags");
			return false;
		}
		if (have < h.len && MG_FRAME_HDR_LEN + (size_t)h.len <= MG_STREAM_READ_CHUNK) {
			/* Small frame: wait for the rest in rbuf.  The move below
			 * leaves a stale copy of a secret's first part behind. */
			secret_moved = (h.flags & MG_FRAME_SECRET) != 0;
			break;
		}
		if ((r = mg_msg_new_size(h.len, &m)) != 0) {
			if (here) {
				ok = false;
				break;
			}
			mg__stream_close(s, r, "out of memory for an incoming message");
			return false;
		}
		if (have > h.len)
			have = h.len;
		if (have > 0)
			memcpy(m->payload.data, s->rbuf + off + MG_FRAME_HDR_LEN, have);
		if (h.flags & MG_FRAME_SECRET) {
			m->wipe = true;
			explicit_bzero(s->rbuf + off + MG_FRAME_HDR_LEN, have);
		}
		off += MG_FRAME_HDR_LEN + have;
		if (have < h.len) {
			s->big = m;
			s->big_have = have;
			s->big_hdr = h;
			break;
		}
		if (!here) {
			deliver(s, &h, m);
			continue;
		}
		m->hdr = h;
		if (!s->ops->try_msg(s->owner, s, m)) {
			s->in_pending = m;
			ok = false;
			break;
		}
		s->in_thread_msgs++;
	}
	if (!here && s->closed)
		return false;
	memmove(s->rbuf, s->rbuf + off, s->rlen - off);
	if (secret_moved && off > 0)
		explicit_bzero(s->rbuf + s->rlen - off, off);
	s->rlen -= off;
	return ok;
}

static void on_readable(struct mg_stream *s)
{
	int i;

	for (i = 0; i < READS_PER_EVENT && !s->closed; i++) {
		ssize_t n;

		if (s->big != NULL) {
			size_t want = s->big_hdr.len - s->big_have;
			n = read(s->rfd, s->big->payload.data + s->big_have, want);
			if (n > 0) {
				s->bytes_in += (size_t)n;
				s->big_have += (size_t)n;
				if (s->big_have == s->big_hdr.len) {
					struct mg_msg *m = s->big;
					s->big = NULL;
					deliver(s, &s->big_hdr, m);
				}
				if ((size_t)n < want)
					return; /* drained, as below */
				continue;
			}
		} else {
			size_t want = MG_STREAM_READ_CHUNK - s->rlen;
			n = read(s->rfd, s->rbuf + s->rlen, want);
			if (n > 0) {
				s->bytes_in += (size_t)n;
				s->rlen += (size_t)n;
				if (!mg__stream_parse(s, false))
					return;
				/* Drained: a read now would only say EAGAIN
				 * (the fd is level-triggered, so data that
				 * came meanwhile wakes us at once).  A pull
				 * over ssh wakes us for every write ssh makes;
				 * that read was half of our reads. */
				if ((size_t)n < want)
					return;
				continue;
			}
		}
		if (n == 0) {
			mg__stream_close(s, 0, s->rlen || s->big ? "EOF inside a frame" : "EOF");
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			mg__stream_close(s, MG_EDISCONNECT, strerror(errno));
		return;
	}
}

/* The broker starts work on the input unless a thread has it (an event
 * from before it took the input may still be in the loop's batch). */
static bool input_begin(struct mg_stream *s)
{
	bool ok;

	pthread_mutex_lock(&s->lock);
	ok = s->in_state == MG_IN_IDLE;
	if (ok)
		s->in_state = MG_IN_BROKER;
	pthread_mutex_unlock(&s->lock);
	return ok;
}

static void input_end(struct mg_stream *s)
{
	pthread_mutex_lock(&s->lock);
	s->in_state = MG_IN_IDLE;
	pthread_mutex_unlock(&s->lock);
}

static void watch_cb(struct mg_watch *w, uint32_t events)
{
	struct mg_stream *s = w->owner;

	if (s->closed)
		return;
	if (w == &s->rwatch && (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && input_begin(s)) {
		on_readable(s);
		input_end(s);
	}
	if (!s->closed && (events & EPOLLOUT))
		flush_on_broker(s, false);
	if (!s->closed && w == &s->wwatch && (events & (EPOLLERR | EPOLLHUP)))
		mg__stream_close(s, MG_EDISCONNECT, "peer closed its end");
}

int mg__stream_open(struct mg_broker *b, int rfd, int wfd, const struct mg_stream_ops *ops,
                    void *owner, size_t max_message_size, size_t high_water, struct mg_stream **sp)
{
	struct mg_stream *s;
	int r;

	if ((r = set_flags(rfd)) != 0 || (wfd != rfd && (r = set_flags(wfd)) != 0))
		return r;
	if ((s = mg__calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	if ((s->rbuf = mg__malloc(MG_STREAM_READ_CHUNK)) == NULL) {
		mg__free(s);
		return -ENOMEM;
	}
	atomic_init(&s->refs, 1);
	pthread_mutex_init(&s->lock, NULL);
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&s->drained, &ca);
		pthread_condattr_destroy(&ca);
	}
	s->broker = b;
	s->ops = ops;
	s->owner = owner;
	s->rfd = rfd;
	s->wfd = wfd;
	s->in_efd = -1;
	s->max_message_size = max_message_size;
	s->high_water = high_water;
	{
		struct stat st;
		s->is_socket = fstat(wfd, &st) == 0 && S_ISSOCK(st.st_mode);
	}
	if (s->is_socket)
		grow_sndbuf(wfd);
	else
		s->pipe_cap = pipe_size(wfd, false);
	s->rwatch = (struct mg_watch){.fd = rfd, .cb = watch_cb, .owner = s};
	s->wwatch = (struct mg_watch){.fd = wfd, .cb = watch_cb, .owner = s};
	if ((r = mg__watch_add(b, &s->rwatch, EPOLLIN)) != 0)
		goto fail;
	if (wfd != rfd && (r = mg__watch_add(b, &s->wwatch, 0)) != 0) {
		mg__watch_del(b, &s->rwatch);
		goto fail;
	}
	*sp = s;
	return 0;
fail:
	stream_free(s);
	return r;
}

void mg__stream_close(struct mg_stream *s, int code, const char *why)
{
	uint64_t timer;

	pthread_mutex_lock(&s->lock);
	if (s->closed) {
		pthread_mutex_unlock(&s->lock);
		return;
	}
	s->closed = true;
	/* A sender may be inside writev on the fd, a thread may be reading
	 * it (mg__stream_input_wait()): let them leave first.  The reader
	 * holds no lock the broker could hold here and gives the input back
	 * at its next step. */
	while (s->writing)
		pthread_cond_wait(&s->drained, &s->lock);
	while (s->in_state == MG_IN_THREAD) {
		atomic_store(&s->in_reclaim, true);
		mg__stream_input_kick(s);
		pthread_cond_wait(&s->drained, &s->lock);
	}
	timer = s->pace_timer;
	s->pace_timer = 0;
	pthread_cond_broadcast(&s->drained);
	pthread_mutex_unlock(&s->lock);
	/* closed is set: no new pace timer comes (pace() runs on the broker,
	 * as this does). */
	if (timer != 0) {
		mg__timer_cancel(s->broker, timer);
		atomic_fetch_sub(&s->refs, 1); /* the caller holds one too */
	}
	mg__watch_del(s->broker, &s->rwatch);
	if (s->wfd != s->rfd)
		mg__watch_del(s->broker, &s->wwatch);
	close(s->rfd);
	if (s->wfd != s->rfd)
		close(s->wfd);
	mg_msg_free(s->big);
	s->big = NULL;
	s->ops->on_close(s->owner, s, code, why);
}

void mg__stream_take_left(struct mg_stream *s, struct mg_outq_entry **leftp, size_t *nleftp)
{
	struct mg_outq_entry *left = NULL;
	size_t i, n;

	pthread_mutex_lock(&s->lock);
	n = s->out_count;
	if (n > 0 && (left = mg__malloc(n * sizeof(*left))) != NULL) {
		for (i = 0; i < n; i++)
			left[i] = s->outq[(s->out_head + i) % s->out_cap];
		s->out_count = 0;
		s->queued = 0;
	}
	pthread_mutex_unlock(&s->lock);
	*leftp = left;
	*nleftp = left ? n : 0;
}
