/*
 * broker.c: the event loop.  One thread per router owns every fd: it waits
 * in epoll, runs due timers, and runs commands other threads post through
 * a mutex-protected queue and an eventfd kick.  A helper thread, started
 * on first use, runs the jobs that would hold the loop up (spawning a
 * child waits for its exec) and lives exactly as long as the loop.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

struct cmd {
	mg_cmd_cb fn;
	void *arg;
};

struct mg_broker {
	int epfd;
	struct mg_watch waker;
	pthread_t thread;
	pthread_mutex_t lock;
	struct cmd *cmds, *spare; /* posted commands; swapped out to run */
	size_t ncmds, cap, spare_cap;
	/* Posted nodes, in order (mg__broker_post_node()). */
	struct mg_broker_node *nodes, **nodes_tail;
	bool kicked;   /* an eventfd write is outstanding */
	bool stopping; /* no more posts accepted */
	bool stop;     /* the loop should exit (broker thread only) */
	struct mg_timer_heap timers;
	struct mg_broker_hook *hooks; /* stop hooks (broker thread only) */
	/* The events epoll_wait gave still to run (broker thread only): a
	 * watch deleted meanwhile is taken out, as its owner may go with it. */
	struct epoll_event *ev_next, *ev_end;

	/* The helper thread and its jobs, under lock. */
	pthread_t helper;
	pthread_cond_t helper_cond;
	struct cmd *jobs;
	size_t njobs, jobs_cap;
	bool helper_started, helper_stop;
};

int64_t mg__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t mg__now_ms(void)
{
	return mg__now_ns() / 1000000;
}

void mg__deadline(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static void run_commands(struct mg_broker *b)
{
	struct mg_broker_node *nodes, *node;
	struct cmd *batch;
	size_t n, i, cap;

	pthread_mutex_lock(&b->lock);
	batch = b->cmds;
	n = b->ncmds;
	cap = b->cap;
	nodes = b->nodes;
	b->nodes = NULL;
	b->nodes_tail = &b->nodes;
	/* Swap in the spare array so posting goes on while the batch runs. */
	b->cmds = b->spare;
	b->cap = b->spare_cap;
	b->ncmds = 0;
	b->spare = NULL;
	b->spare_cap = 0;
	b->kicked = false;
	pthread_mutex_unlock(&b->lock);
	/* Each node after the array commands posted before it.  A node is
	 * unlinked before it runs, so its fn may post it again. */
	for (i = 0; nodes != NULL;) {
		node = nodes;
		nodes = node->next;
		for (; i < node->pos; i++)
			batch[i].fn(batch[i].arg);
		node->fn(node->arg);
	}
	for (; i < n; i++)
		batch[i].fn(batch[i].arg);
	pthread_mutex_lock(&b->lock);
	if (b->spare == NULL) {
		b->spare = batch;
		b->spare_cap = cap;
	} else {
		mg__free(batch);
	}
	pthread_mutex_unlock(&b->lock);
}

static void waker_cb(struct mg_watch *w, uint32_t events)
{
	uint64_t v;

	while (read(w->fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	run_commands(w->owner);
}

static void run_timers(struct mg_broker *b)
{
	struct mg_timer t;
	int64_t now = mg__now_ms();

	while (mg__timers_pop_due(&b->timers, now, &t))
		t.cb(t.arg);
}

static _Thread_local const struct mg_broker *current;

bool mg__broker_on_thread(const struct mg_broker *b)
{
	return current == b;
}

/* ---- the helper thread ----------------------------------------------- */

static void *helper_loop(void *arg)
{
	struct mg_broker *b = arg;

	pthread_mutex_lock(&b->lock);
	for (;;) {
		struct cmd job;

		while (b->njobs == 0 && !b->helper_stop)
			pthread_cond_wait(&b->helper_cond, &b->lock);
		if (b->njobs == 0)
			break;
		job = b->jobs[0];
		memmove(b->jobs, b->jobs + 1, --b->njobs * sizeof(*b->jobs));
		pthread_mutex_unlock(&b->lock);
		job.fn(job.arg);
		pthread_mutex_lock(&b->lock);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

/* Thread: broker, once its loop has ended.  Queued jobs still run. */
static void helper_join(struct mg_broker *b)
{
	bool started;

	pthread_mutex_lock(&b->lock);
	b->helper_stop = true;
	started = b->helper_started;
	pthread_cond_signal(&b->helper_cond);
	pthread_mutex_unlock(&b->lock);
	if (started)
		pthread_join(b->helper, NULL);
}

int mg__broker_post_helper(struct mg_broker *b, mg_cmd_cb fn, void *arg)
{
	int r = 0;

	pthread_mutex_lock(&b->lock);
	if (b->stopping || b->helper_stop) {
		r = MG_ESHUTDOWN;
	} else if (b->njobs == b->jobs_cap) {
		size_t ncap = b->jobs_cap ? b->jobs_cap * 2 : 16;
		struct cmd *n = mg__realloc(b->jobs, ncap * sizeof(*n));
		if (n == NULL) {
			r = -ENOMEM;
		} else {
			b->jobs = n;
			b->jobs_cap = ncap;
		}
	}
	if (r == 0 && !b->helper_started) {
		if ((r = -pthread_create(&b->helper, NULL, helper_loop, b)) == 0)
			b->helper_started = true;
	}
	if (r == 0) {
		b->jobs[b->njobs++] = (struct cmd){fn, arg};
		pthread_cond_signal(&b->helper_cond);
	}
	pthread_mutex_unlock(&b->lock);
	return r;
}

/* ---- the loop ---------------------------------------------------------- */

static void *loop(void *arg)
{
	struct mg_broker *b = arg;
	struct epoll_event ev[64];

	current = b;
	while (!b->stop) {
		int64_t now = mg__now_ms();
		int n, timeout = mg__timers_next_ms(&b->timers, now);
		int trim = mg__bigbuf_trim(now);

		/* Wake up in time to give back cached large buffers. */
		if (trim >= 0 && (timeout < 0 || trim < timeout))
			timeout = trim;

		n = epoll_wait(b->epfd, ev, 64, timeout);
		if (n < 0 && errno != EINTR) {
			mg__error("epoll_wait: %s", strerror(errno));
			break;
		}
		b->ev_end = ev + (n > 0 ? n : 0);
		for (b->ev_next = ev; b->ev_next < b->ev_end;) {
			struct epoll_event *e = b->ev_next++;
			struct mg_watch *w = e->data.ptr;

			if (w != NULL)
				w->cb(w, e->events);
		}
		run_timers(b);
	}
	/* The helper finishes its jobs first: what they post back (forced)
	 * then runs below with the rest. */
	helper_join(b);
	/* Commands posted before stopping still run, so none is lost; they
	 * may post more while they run. */
	for (;;) {
		bool more;
		run_commands(b);
		pthread_mutex_lock(&b->lock);
		more = b->ncmds > 0 || b->nodes != NULL;
		pthread_mutex_unlock(&b->lock);
		if (!more)
			break;
	}
	/* Stop hooks release what their owners still watch; they run inline
	 * and may not post (posting is refused from here on). */
	while (b->hooks != NULL) {
		struct mg_broker_hook *h = b->hooks;

		mg__broker_hook_del(b, h);
		h->fn(h->arg);
	}
	current = NULL;
	return NULL;
}

static void stop_cb(void *arg)
{
	((struct mg_broker *)arg)->stop = true;
}

int mg__broker_new(struct mg_broker **brokerp)
{
	struct mg_broker *b = mg__calloc(1, sizeof(*b));
	int r;

	if (b == NULL)
		return -ENOMEM;
	b->epfd = -1;
	b->waker.fd = -1;
	b->nodes_tail = &b->nodes;
	mg__timers_init(&b->timers);
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->helper_cond, NULL);
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	b->waker.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (b->epfd < 0 || b->waker.fd < 0) {
		r = -errno;
		goto fail;
	}
	b->waker.cb = waker_cb;
	b->waker.owner = b;
	if ((r = mg__watch_add(b, &b->waker, EPOLLIN)) != 0)
		goto fail;
	if ((r = -pthread_create(&b->thread, NULL, loop, b)) != 0)
		goto fail;
	*brokerp = b;
	return 0;
fail:
	if (b->waker.fd >= 0)
		close(b->waker.fd);
	if (b->epfd >= 0)
		close(b->epfd);
	pthread_cond_destroy(&b->helper_cond);
	pthread_mutex_destroy(&b->lock);
	mg__free(b);
	return r;
}

/* Wakes the loop for what was just queued.  Called with b->lock held,
 * which it releases. */
static void kick_and_unlock(struct mg_broker *b)
{
	bool kick = !b->kicked;

	b->kicked = true;
	pthread_mutex_unlock(&b->lock);
	if (kick) {
		uint64_t one = 1;
		while (write(b->waker.fd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
	}
}

int mg__broker_post_node(struct mg_broker *b, struct mg_broker_node *node)
{
	pthread_mutex_lock(&b->lock);
	if (b->stopping) {
		pthread_mutex_unlock(&b->lock);
		return MG_ESHUTDOWN;
	}
	node->next = NULL;
	node->pos = b->ncmds;
	*b->nodes_tail = node;
	b->nodes_tail = &node->next;
	kick_and_unlock(b);
	return 0;
}

static int post(struct mg_broker *b, mg_cmd_cb fn, void *arg, bool force)
{

	pthread_mutex_lock(&b->lock);
	if (b->stopping && !force) {
		pthread_mutex_unlock(&b->lock);
		return MG_ESHUTDOWN;
	}
	if (b->ncmds == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 64;
		struct cmd *n = mg__realloc(b->cmds, ncap * sizeof(*n));
		if (n == NULL) {
			pthread_mutex_unlock(&b->lock);
			return -ENOMEM;
		}
		b->cmds = n;
		b->cap = ncap;
	}
	b->cmds[b->ncmds++] = (struct cmd){fn, arg};
	kick_and_unlock(b);
	return 0;
}

int mg__broker_post(struct mg_broker *b, mg_cmd_cb fn, void *arg)
{
	return post(b, fn, arg, false);
}

int mg__broker_post_force(struct mg_broker *b, mg_cmd_cb fn, void *arg)
{
	return post(b, fn, arg, true);
}

struct sync_call {
	mg_cmd_cb fn;
	void *arg;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void sync_cb(void *arg)
{
	struct sync_call *c = arg;

	c->fn(c->arg);
	pthread_mutex_lock(&c->lock);
	c->done = true;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

int mg__broker_call(struct mg_broker *b, mg_cmd_cb fn, void *arg)
{
	struct sync_call c = {.fn = fn, .arg = arg};
	int r;

	if (mg__broker_on_thread(b)) {
		fn(arg);
		return 0;
	}
	pthread_mutex_init(&c.lock, NULL);
	pthread_cond_init(&c.cond, NULL);
	if ((r = mg__broker_post(b, sync_cb, &c)) == 0) {
		pthread_mutex_lock(&c.lock);
		while (!c.done)
			pthread_cond_wait(&c.cond, &c.lock);
		pthread_mutex_unlock(&c.lock);
	}
	pthread_cond_destroy(&c.cond);
	pthread_mutex_destroy(&c.lock);
	return r;
}

void mg__broker_free(struct mg_broker *b)
{
	if (b == NULL)
		return;
	pthread_mutex_lock(&b->lock);
	b->stopping = true;
	pthread_mutex_unlock(&b->lock);
	post(b, stop_cb, b, true);
	pthread_join(b->thread, NULL);
	close(b->waker.fd);
	close(b->epfd);
	mg__timers_fini(&b->timers);
	pthread_cond_destroy(&b->helper_cond);
	pthread_mutex_destroy(&b->lock);
	mg__free(b->jobs);
	mg__free(b->cmds);
	mg__free(b->spare);
	mg__free(b);
}

int mg__watch_add(struct mg_broker *b, struct mg_watch *w, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};

	w->events = events;
	return epoll_ctl(b->epfd, EPOLL_CTL_ADD, w->fd, &ev) < 0 ? -errno : 0;
}

int mg__watch_mod(struct mg_broker *b, struct mg_watch *w, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = w};

	if (w->events == events)
		return 0;
	w->events = events;
	return epoll_ctl(b->epfd, EPOLL_CTL_MOD, w->fd, &ev) < 0 ? -errno : 0;
}

void mg__watch_del(struct mg_broker *b, struct mg_watch *w)
{
	struct epoll_event *e;

	epoll_ctl(b->epfd, EPOLL_CTL_DEL, w->fd, NULL);
	w->events = 0;
	for (e = b->ev_next; e < b->ev_end; e++) {
		if (e->data.ptr == w)
			e->data.ptr = NULL;
	}
}

uint64_t mg__timer_add(struct mg_broker *b, int64_t delay_ms, mg_timer_cb cb, void *arg)
{
	return mg__timers_add(&b->timers, mg__now_ms() + delay_ms, cb, arg);
}

void mg__timer_cancel(struct mg_broker *b, uint64_t id)
{
	mg__timers_cancel(&b->timers, id);
}

void mg__broker_hook_add(struct mg_broker *b, struct mg_broker_hook *h)
{
	h->prev = NULL;
	h->next = b->hooks;
	if (b->hooks != NULL)
		b->hooks->prev = h;
	b->hooks = h;
}

void mg__broker_hook_del(struct mg_broker *b, struct mg_broker_hook *h)
{
	if (h->prev == NULL && b->hooks != h)
		return;
	if (h->prev != NULL)
		h->prev->next = h->next;
	else
		b->hooks = h->next;
	if (h->next != NULL)
		h->next->prev = h->prev;
	h->prev = h->next = NULL;
}
