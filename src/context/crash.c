/*
 * crash.c: a function that crashes (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
 * SIGABRT) takes its context down, but first its caller is told so.  The
 * handler runs on an alternate stack, encodes a "mitogen.Crash" error reply
 * by hand into static memory (no allocation, no locks it could deadlock
 * on), waits briefly for the stream's writer to stand still, completes any
 * half-written frame, writes the reply straight to the parent's fd, and
 * then lets the signal kill the process as it would have.
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "context/calls.h"

static struct {
	volatile sig_atomic_t active;
	uint32_t src, reply_to;
	char function[MG_FUNCTION_NAME_MAX];
	pthread_t thread;
} cur;

static struct mg_router *self;
static struct mg_stream *parent;
static uint8_t frame[MG_FRAME_HDR_LEN + 1200];
static uint8_t altstack[64 * 1024];
static const int signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

void mg__crash_enter(uint32_t src, uint32_t reply_to, const char *function)
{
	size_t n = strlen(function);

	if (n >= sizeof(cur.function))
		n = sizeof(cur.function) - 1;
	cur.src = src;
	cur.reply_to = reply_to;
	memcpy(cur.function, function, n);
	cur.function[n] = '\0';
	cur.thread = pthread_self();
	cur.active = 1;
}

void mg__crash_leave(void)
{
	cur.active = 0;
}

static const char *signal_name(int sig)
{
	switch (sig) {
	case SIGSEGV:
		return "SIGSEGV (segmentation fault)";
	case SIGBUS:
		return "SIGBUS (bus error)";
	case SIGFPE:
		return "SIGFPE (arithmetic error)";
	case SIGILL:
		return "SIGILL (illegal instruction)";
	default:
		return "SIGABRT (aborted)";
	}
}

/* Appends a str8 of at most 255 bytes; returns the new end. */
static uint8_t *put_str(uint8_t *p, const char *a, const char *b, const char *c)
{
	uint8_t *len = p + 1;
	size_t n = 0;
	const char *parts[3] = {a, b, c};
	int i;

	p[0] = 0xd9;
	p += 2;
	for (i = 0; i < 3; i++) {
		const char *s = parts[i];
		while (s != NULL && *s != '\0' && n < 255) {
			*p++ = (uint8_t)*s++;
			n++;
		}
	}
	*len = (uint8_t)n;
	return p;
}

static size_t encode(int sig)
{
	uint8_t *body = frame + MG_FRAME_HDR_LEN, *p = body + 4;
	struct mg_frame_hdr h;
	size_t data;

	*p++ = 0x94; /* an array of 4 strings */
	p = put_str(p, MG_ERR_CRASH, NULL, NULL);
	p = put_str(p, "killed by ", signal_name(sig), NULL);
	p = put_str(p, self->name, NULL, NULL);
	p = put_str(p, cur.function, NULL, NULL);
	data = (size_t)(p - (body + 4));
	body[0] = 0xc8; /* ext 16 */
	body[1] = (uint8_t)(data >> 8);
	body[2] = (uint8_t)data;
	body[3] = 3;
	memset(&h, 0, sizeof(h));
	h.dst_id = cur.src;
	h.src_id = self->id;
	h.auth_id = self->id;
	h.handle = cur.reply_to;
	h.len = (uint32_t)(p - body);
	mg__frame_encode(&h, frame);
	return MG_FRAME_HDR_LEN + h.len;
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
		} else {
			struct pollfd pfd = {fd, POLLOUT, 0};
			if (poll(&pfd, 1, 500) <= 0)
				return;
		}
	}
}

/* Takes the stream for writing and completes a half-written head frame. */
static bool take_stream(struct mg_stream *s)
{
	struct timespec ms = {0, 1000000};
	int i;

	for (i = 0; i < 200; i++) {
		if (pthread_mutex_trylock(&s->lock) == 0) {
			bool ok = !s->writing && !s->closed;
			if (ok) {
				s->writing = true;
				if (s->out_count > 0 && s->out_off > 0) {
					struct mg_outq_entry *e = &s->outq[s->out_head];
					size_t off = s->out_off;
					if (off < MG_FRAME_HDR_LEN) {
						write_all(s->wfd, e->hdr + off,
						          MG_FRAME_HDR_LEN - off);
						off = MG_FRAME_HDR_LEN;
					}
					write_all(s->wfd,
					          e->msg->payload.data + (off - MG_FRAME_HDR_LEN),
					          e->msg->payload.len - (off - MG_FRAME_HDR_LEN));
				}
			}
			pthread_mutex_unlock(&s->lock);
			if (ok)
				return true;
		}
		nanosleep(&ms, NULL);
	}
	return false;
}

static void on_crash(int sig, siginfo_t *info, void *uctx)
{
	if (cur.active && cur.reply_to != 0 && parent != NULL &&
	    pthread_equal(pthread_self(), cur.thread)) {
		size_t n = encode(sig);
		if (take_stream(parent))
			write_all(parent->wfd, frame, n);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

void mg__crash_install(struct mg_router *r)
{
	struct sigaction sa;
	stack_t st;
	size_t i;

	self = r;
	pthread_mutex_lock(&r->lock);
	parent = r->parent;
	pthread_mutex_unlock(&r->lock);
	st.ss_sp = altstack;
	st.ss_size = sizeof(altstack);
	st.ss_flags = 0;
	sigaltstack(&st, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_crash;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		sigaction(signals[i], &sa, NULL);
}
