/*
 * core.h: the broker (epoll loop, timers, waker, command queue), streams and
 * the message container they carry.  Core moves frames; it never knows what
 * a handle or a route means.
 */
#ifndef MG_CORE_H
#define MG_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "wire/wire.h"

/* ------------------------------------------------------------------------ */
/* The locks a fork must not leave held (forklock.c, docs/FORK.md). */

/* The library's process-wide locks, one per module, side by side: the
 * thread that forks holds all of them across fork() and both sides release
 * them after, and each page that writes to is a copy-on-write fault in the
 * parent and in the child, on the way to a fork context's ready marker.
 * Listed outermost first: that is the order they are taken in. */
enum {
	MG_FORK_LOCK_VIA,      /* via.c: the table of children started for the parent */
	MG_FORK_LOCK_REGISTRY, /* registry.c: the exports */
	MG_FORK_LOCK_BIGBUF,   /* bigbuf.c: the cache of large buffers */
	MG_FORK_LOCK_AGENT,    /* agent_image.c: the agent's memfd */
	MG_FORK_LOCK_LOG,      /* log.c: the handler and context name; a leaf */
	MG_FORK_LOCK_COUNT
};
extern pthread_mutex_t mg__fork_locks[MG_FORK_LOCK_COUNT];

/* ------------------------------------------------------------------------ */
/* Logging (log.c) */

/* True when records of this level for the logger would be emitted; cheap
 * enough for hot paths.  io selects "mitogen.io". */
bool mg__log_enabled(int level, bool io);
void mg__log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mg__log_io(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Sets the context name stamped on records made in this process; copied. */
void mg__log_set_context_name(const char *name);
/* Emits a record that came from elsewhere (a child) with its own context
 * name and logger. */
void mg__log_forward(int level, const char *logger, const char *context, const char *message,
                     int64_t time_ns);

#define mg__debug(...) mg__log(MG_LOG_DEBUG, __VA_ARGS__)
#define mg__info(...) mg__log(MG_LOG_INFO, __VA_ARGS__)
#define mg__warn(...) mg__log(MG_LOG_WARNING, __VA_ARGS__)
#define mg__error(...) mg__log(MG_LOG_ERROR, __VA_ARGS__)

/* ------------------------------------------------------------------------ */
/* Time (broker.c) */

/* CLOCK_MONOTONIC in milliseconds / nanoseconds. */
int64_t mg__now_ms(void);
int64_t mg__now_ns(void);
/* Fills ts with the absolute CLOCK_MONOTONIC time timeout_ms from now. */
void mg__deadline(struct timespec *ts, int timeout_ms);

/* ------------------------------------------------------------------------ */
/* Wake words (wakeword.c): a futex-backed sleep for a condition guarded by
 * a mutex.  A waiter, holding the mutex and finding nothing to do, calls
 * mg__ww_prepare(), unlocks, and sleeps in mg__ww_wait() with what prepare
 * returned; whoever changes the condition does so under the mutex, and
 * calls mg__ww_wake() once it has unlocked.  Waits may end early (the
 * waiter looks again).  Zero-initialised.  Thread: any. */

struct mg_wakeword {
	atomic_uint seq;
	atomic_uint waiters;
};

unsigned mg__ww_prepare(struct mg_wakeword *w);
/* Sleeps until a wake after prepare, a signal, or deadline (absolute
 * CLOCK_MONOTONIC, NULL for none).  0 or -ETIMEDOUT. */
int mg__ww_wait(struct mg_wakeword *w, unsigned seen, const struct timespec *deadline);
/* Wakes one waiter, or all. */
void mg__ww_wake(struct mg_wakeword *w, bool all);

/* ------------------------------------------------------------------------ */
/* Pointer rings (ring.c): a growable FIFO of pointers, not thread-safe. */

struct mg_ring {
	void **items;
	size_t head, count, cap;
};

void mg__ring_init(struct mg_ring *q);
void mg__ring_fini(struct mg_ring *q);
int mg__ring_push(struct mg_ring *q, void *item);
void *mg__ring_pop(struct mg_ring *q);  /* NULL when empty */
void *mg__ring_peek(struct mg_ring *q); /* NULL when empty */
/* Removes every occurrence of item; returns how many. */
size_t mg__ring_remove(struct mg_ring *q, void *item);

/* ------------------------------------------------------------------------ */
/* u32 -> pointer maps (idmap.c): open addressing, not thread-safe. */

struct mg_idmap {
	uint32_t *keys;
	void **vals;
	size_t cap, count, tombs;
};

void mg__idmap_init(struct mg_idmap *m);
void mg__idmap_fini(struct mg_idmap *m);
void *mg__idmap_get(const struct mg_idmap *m, uint32_t key);
/* Inserts or replaces; -ENOMEM. */
int mg__idmap_put(struct mg_idmap *m, uint32_t key, void *val);
/* Removes; returns the old value or NULL. */
void *mg__idmap_del(struct mg_idmap *m, uint32_t key);
/* Iterates: start with *pos = 0; returns false at the end. */
bool mg__idmap_next(const struct mg_idmap *m, size_t *pos, uint32_t *keyp, void **valp);

/* ------------------------------------------------------------------------ */
/* Messages (msg.c): a refcounted frame.  The payload is immutable once the
 * message has been sent. */

struct mg_strcopy;

struct mg_msg {
	atomic_int refs;
	struct mg_frame_hdr hdr; /* hdr.len is kept equal to payload.len */
	struct mg_buf payload;
	size_t rpos;               /* read cursor for mg_msg_read() */
	struct mg_strcopy *copies; /* NUL-terminated copies made by 's' reads */
	struct mg_router *router;  /* router that delivered it, for 'h' reads */
	bool wipe;                 /* holds a secret: zeroed when freed */
	bool big;                  /* payload storage is from mg__bigbuf_get() */
	struct mg_msg *viewed;     /* payload is bytes of this message (a view) */
};

/* Creates a message that adopts data (allocated with mg__malloc, len bytes)
 * as its payload.  On failure data is freed. */
int mg__msg_adopt(uint8_t *data, size_t len, struct mg_msg **msgp);

/* Large payload storage (bigbuf.c): *capp >= len bytes, free with
 * mg__bigbuf_put().  Returns 0, -ENOMEM or -errno.  Thread: any. */
#define MG_BIGBUF_MIN ((size_t)1 << 20)
int mg__bigbuf_get(size_t len, uint8_t **datap, size_t *capp);
/* Grows storage from mg__bigbuf_get() to at least len bytes, keeping its
 * contents; on failure it is left as it was. */
int mg__bigbuf_grow(uint8_t **datap, size_t *capp, size_t len);
void mg__bigbuf_put(uint8_t *data, size_t cap);
/* Unmaps cached buffers unused for a while; returns the ms until the next
 * one is due, or -1 when none is cached.  The broker loop calls it. */
int mg__bigbuf_trim(int64_t now_ms);

/* Creates a message whose payload is the len bytes at p inside parent's
 * payload, without copying them: the new message holds a reference to
 * parent until it is freed (or appended to, which copies first).  Caller
 * frees.  Thread: any. */
int mg__msg_new_view(struct mg_msg *parent, const uint8_t *p, size_t len, struct mg_msg **msgp);

/* Returns a NUL-terminated copy of p[0..n) that lives as long as the
 * message, or NULL on -ENOMEM.  Thread: the message's owner. */
char *mg__msg_strcopy(struct mg_msg *msg, const char *p, size_t n);

/* ------------------------------------------------------------------------ */
/* The broker (broker.c) */

struct mg_broker;
struct mg_watch;

typedef void (*mg_watch_cb)(struct mg_watch *w, uint32_t events);
typedef void (*mg_cmd_cb)(void *arg);
typedef void (*mg_timer_cb)(void *arg);

/* An fd watched by the loop.  Embedded in its owner. */
struct mg_watch {
	int fd;
	uint32_t events; /* EPOLLIN / EPOLLOUT currently asked for */
	mg_watch_cb cb;
	void *owner;
};

/* Creates a broker and starts its thread.  Caller frees. */
int mg__broker_new(struct mg_broker **brokerp);
/* Stops the thread (commands already posted run first) and frees.  Thread:
 * any but the broker. */
void mg__broker_free(struct mg_broker *b);
bool mg__broker_on_thread(const struct mg_broker *b);

/* Runs fn(arg) on the broker thread soon.  Thread: any.  Returns
 * MG_ESHUTDOWN once the broker is stopping (fn will not run), -ENOMEM. */
int mg__broker_post(struct mg_broker *b, mg_cmd_cb fn, void *arg);
/* A command that carries its own storage, for what must reach the broker
 * even with memory short.  Set fn and arg; the node must stay valid until
 * fn has started, and may be posted again from then on. */
struct mg_broker_node {
	struct mg_broker_node *next;
	size_t pos; /* the array commands posted before it */
	mg_cmd_cb fn;
	void *arg;
};
/* mg__broker_post() of a node, in order with the other commands.  0, or
 * MG_ESHUTDOWN once the broker is stopping: never -ENOMEM. */
int mg__broker_post_node(struct mg_broker *b, struct mg_broker_node *node);
/* Runs fn(arg) on the broker's helper thread soon, in posting order: for
 * work that would hold the loop up.  The helper is started on first use
 * and joined once the loop has ended, before the broker's last commands
 * run, so a job may report back with mg__broker_post_force(); it must not
 * wait for the broker.  Children it spawns die with it (PR_SET_PDEATHSIG),
 * that is with the broker.  Thread: any.  MG_ESHUTDOWN once the broker is
 * stopping, -ENOMEM, or a pthread_create() error. */
int mg__broker_post_helper(struct mg_broker *b, mg_cmd_cb fn, void *arg);
/* mg__broker_post(), accepted even while the broker stops (fn still runs).
 * Thread: the broker's helper.  0 or -ENOMEM. */
int mg__broker_post_force(struct mg_broker *b, mg_cmd_cb fn, void *arg);
/* Runs fn(arg) on the broker thread and waits for it; inline when called
 * on the broker thread.  MG_ESHUTDOWN when the broker is stopping. */
int mg__broker_call(struct mg_broker *b, mg_cmd_cb fn, void *arg);

/* Watches: Thread: broker. */
int mg__watch_add(struct mg_broker *b, struct mg_watch *w, uint32_t events);
int mg__watch_mod(struct mg_broker *b, struct mg_watch *w, uint32_t events);
void mg__watch_del(struct mg_broker *b, struct mg_watch *w);

/* Stop hooks: run on the broker thread when the broker stops, after the
 * last command posted before mg__broker_free(), while watches and timers
 * still work.  For owners of watches that outlive whoever asked for them (a
 * child still connecting, a process still to reap) to release them.  The
 * hook is embedded in its owner and is unlinked before fn runs.  Thread:
 * broker. */
struct mg_broker_hook {
	struct mg_broker_hook *prev, *next;
	mg_cmd_cb fn;
	void *arg;
};
void mg__broker_hook_add(struct mg_broker *b, struct mg_broker_hook *h);
/* Removes a hook that has not run yet; a no-op otherwise. */
void mg__broker_hook_del(struct mg_broker *b, struct mg_broker_hook *h);

/* Timers: Thread: broker.  Returns an id for cancelling, 0 on -ENOMEM. */
uint64_t mg__timer_add(struct mg_broker *b, int64_t delay_ms, mg_timer_cb cb, void *arg);
void mg__timer_cancel(struct mg_broker *b, uint64_t id);

/* ------------------------------------------------------------------------ */
/* Timer heap (timer.c), used by the broker. */

struct mg_timer {
	int64_t due_ms;
	uint64_t id;
	mg_timer_cb cb;
	void *arg;
};

struct mg_timer_heap {
	struct mg_timer *items;
	size_t count, cap;
	uint64_t next_id;
};

void mg__timers_init(struct mg_timer_heap *h);
void mg__timers_fini(struct mg_timer_heap *h);
uint64_t mg__timers_add(struct mg_timer_heap *h, int64_t due_ms, mg_timer_cb cb, void *arg);
void mg__timers_cancel(struct mg_timer_heap *h, uint64_t id);
/* Milliseconds until the next timer, or -1 when there is none. */
int mg__timers_next_ms(const struct mg_timer_heap *h, int64_t now_ms);
/* Pops one due timer into *t; false when none is due. */
bool mg__timers_pop_due(struct mg_timer_heap *h, int64_t now_ms, struct mg_timer *t);

/* ------------------------------------------------------------------------ */
/* Streams (stream.c): one peer connection, a pair of fds. */

struct mg_stream;

struct mg_stream_ops {
	/* A complete frame arrived; takes ownership of msg.  Broker thread. */
	void (*on_msg)(void *owner, struct mg_stream *s, struct mg_msg *msg);
	/* The stream failed or reached EOF; code says why (0 for a clean EOF).
	 * Called once; the stream is already closed for I/O.  Broker thread. */
	void (*on_close)(void *owner, struct mg_stream *s, int code, const char *why);
	/* A complete frame arrived on a thread that reads the stream itself
	 * (mg__stream_input_wait()).  Delivers msg, taking ownership, and
	 * returns true only when that can be done at once on this thread
	 * without blocking; false leaves msg with the caller, which hands it
	 * to the broker's on_msg in order.  May be NULL (threads never read
	 * such a stream).  Thread: the one holding the input. */
	bool (*try_msg)(void *owner, struct mg_stream *s, struct mg_msg *msg);
};

/* Who is working on a stream's input (mg_stream.in_state). */
enum mg_stream_in {
	MG_IN_IDLE = 0, /* nobody: the broker reads on EPOLLIN */
	MG_IN_BROKER,   /* the broker is reading or parsing */
	MG_IN_THREAD,   /* a waiting thread reads (EPOLLIN is off) */
	MG_IN_HANDBACK, /* that thread gave up; the broker resumes (EPOLLIN off) */
};

struct mg_outq_entry {
	struct mg_msg *msg;
	uint8_t hdr[MG_FRAME_HDR_LEN];
};

struct mg_stream {
	atomic_int refs;
	struct mg_broker *broker;
	const struct mg_stream_ops *ops;
	void *owner;
	uint32_t peer_id;
	size_t max_message_size;
	size_t high_water;
	struct mg_watch rwatch, wwatch; /* same fd: only rwatch is used */
	int rfd, wfd;

	/* Input: touched only by whoever in_state says works on it; in_state
	 * changes under lock, so each sees what the last one left. */
	uint8_t *rbuf;
	size_t rlen;
	struct mg_msg *big; /* a large payload being read straight into place */
	size_t big_have;
	struct mg_frame_hdr big_hdr;
	struct mg_msg *in_pending; /* read by a thread, left for the broker */
	int in_state;              /* enum mg_stream_in, under lock */
	int in_efd;                /* eventfd that wakes the reading thread, or -1 */
	atomic_bool in_reclaim;    /* the broker wants the input back */
	uint64_t in_thread_msgs;   /* frames delivered by a reading thread (tests) */
	/* Hands the input back to the broker: cannot fail (stream_wait.c). */
	struct mg_broker_node in_resume;

	/* Output: a ring of entries guarded by lock; producers append, the
	 * broker (or a producer taking the fast path) writes. */
	pthread_mutex_t lock;
	pthread_cond_t drained;
	struct mg_outq_entry *outq;
	size_t out_head, out_count, out_cap;
	size_t out_off;    /* bytes of the head entry already written */
	void *retired[48]; /* old outq arrays a writer may still be reading */
	unsigned nretired;
	size_t queued;   /* payload+header bytes not yet written */
	bool writing;    /* some thread is inside writev */
	bool want_write; /* EPOLLOUT is armed */
	bool closed;     /* no more I/O */
	bool is_socket;  /* wfd is a socket: sendmsg(MSG_NOSIGNAL) */
	bool kicked;     /* a flush command is already posted */

	/* Pacing a full pipe (stream.c: pace()); pace_timer under lock. */
	size_t pipe_cap;     /* wfd is a pipe this large (0: not a pipe) */
	bool pipe_grown;     /* it filled once and was grown (pipe_size()) */
	uint64_t pace_timer; /* a paced flush is due, else 0 */

	uint64_t bytes_out, bytes_in;
	uint32_t flags; /* owner's flags */
};

/* Creates a stream over rfd/wfd (made non-blocking and close-on-exec) and
 * starts reading.  Takes ownership of the fds on success.  Thread: broker. */
int mg__stream_open(struct mg_broker *b, int rfd, int wfd, const struct mg_stream_ops *ops,
                    void *owner, size_t max_message_size, size_t high_water, struct mg_stream **sp);

/* Queues msg with the given header (hdr->len is set from the payload) and
 * takes a reference to msg.  Blocks while more than high_water bytes are
 * queued unless may_block is false.  Returns MG_EDISCONNECT when the stream
 * is closed (no reference taken).  Thread: any. */
int mg__stream_send(struct mg_stream *s, const struct mg_frame_hdr *hdr, struct mg_msg *msg,
                    bool may_block);

/* Closes the stream for I/O (idempotent), reports on_close(code, why) once
 * and wakes blocked senders.  Thread: broker. */
void mg__stream_close(struct mg_stream *s, int code, const char *why);

/* After close: hands the entries still queued to the caller (an array it
 * frees with mg__free; each entry still holds its message reference).
 * Thread: broker. */
void mg__stream_take_left(struct mg_stream *s, struct mg_outq_entry **leftp, size_t *nleftp);

void mg__stream_ref(struct mg_stream *s);
void mg__stream_unref(struct mg_stream *s);

/*
 * A thread reading the stream itself.  A thread that is about to sleep
 * waiting for a message that will most likely arrive on this stream (a
 * call's reply, a child's next call) may take the stream's input from the
 * broker instead: EPOLLIN leaves the broker's epoll set (which does not
 * wake the broker), and the thread sleeps in ppoll() on the fd and reads
 * and delivers what arrives itself (ops->try_msg), which saves the
 * broker's wake-up and the hand-off of the message to the waiting thread.
 * Whatever try_msg refuses, a large payload, a bad frame, EOF or an error
 * goes back to the broker in order.  Thread: any but the broker.
 */

/* Takes the input when nobody works on it.  True when taken: the caller
 * then calls mg__stream_input_wait() and must end with
 * mg__stream_input_release() unless a wait said the input was lost. */
bool mg__stream_input_take(struct mg_stream *s);
/* Sleeps until the fd is readable, mg__stream_input_kick(), or deadline
 * (absolute CLOCK_MONOTONIC, NULL for none), then reads and delivers what
 * came.  Returns 0 (look again for what you wait for; the input is still
 * held), -ETIMEDOUT (still held), or 1: the input was given back (to the
 * broker: a frame only it can deliver, EOF, an error, or it reclaimed it
 * to close the stream). */
int mg__stream_input_wait(struct mg_stream *s, const struct timespec *deadline);
/* Gives the input back to the broker. */
void mg__stream_input_release(struct mg_stream *s);
/* Wakes the thread holding the input (a message for it came some other
 * way).  Call with a reference to s held, or under a lock that keeps the
 * holder's reference alive. */
void mg__stream_input_kick(struct mg_stream *s);
/* True when the calling thread holds s's input. */
bool mg__stream_input_held_here(const struct mg_stream *s);

/* Shared by stream.c and stream_wait.c.  Input is read in chunks of this
 * size into rbuf; a frame larger than that is read straight into place. */
#define MG_STREAM_READ_CHUNK (128 * 1024)
/* Asks epoll for what the stream needs now: EPOLLIN unless a thread has
 * the input, EPOLLOUT while output waits.  Called locked, on any thread:
 * epoll_ctl() does not wake the broker. */
void mg__stream_update_events(struct mg_stream *s);
/* Cuts the complete frames out of rbuf and delivers them.  On the broker
 * (here false, input MG_IN_BROKER) through on_msg; returns false when the
 * stream closed.  On a thread holding the input (here true) through
 * try_msg, stopping at the first frame that thread may not deliver (left
 * in in_pending, or in rbuf) and returning false then: the broker must
 * take over. */
bool mg__stream_parse(struct mg_stream *s, bool here);

/* Says this process ignores SIGPIPE for good (a child context sets that
 * at its start): writes to pipes then skip blocking the signal around
 * each writev, two system calls per write.  Thread: any. */
void mg__stream_sigpipe_ignored(void);

#endif
