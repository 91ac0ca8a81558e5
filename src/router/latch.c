/*
 * latch.c: a thread-safe queue of pointers.  Any thread puts, any thread
 * waits; closing wakes every waiter once the queue is empty.
 */
#include <errno.h>

#include "internal.h"

struct mg_latch {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct mg_ring q;
	bool closed;
};

int mg_latch_new(struct mg_latch **latchp)
{
	struct mg_latch *l = mg__calloc(1, sizeof(*l));
	pthread_condattr_t ca;

	if (l == NULL)
		return -ENOMEM;
	pthread_mutex_init(&l->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
	mg__ring_init(&l->q);
	*latchp = l;
	return 0;
}

int mg_latch_put(struct mg_latch *l, void *item)
{
	int r;

	pthread_mutex_lock(&l->lock);
	r = l->closed ? MG_ECLOSED : mg__ring_push(&l->q, item);
	if (r == 0)
		pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&l->lock);
	return r;
}

int mg_latch_get(struct mg_latch *l, int timeout_ms, void **itemp)
{
	struct timespec deadline;
	int r = 0;

	if (timeout_ms >= 0)
		mg__deadline(&deadline, timeout_ms);
	pthread_mutex_lock(&l->lock);
	while (l->q.count == 0 && !l->closed && r == 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&l->cond, &l->lock);
		else if (pthread_cond_timedwait(&l->cond, &l->lock, &deadline) == ETIMEDOUT)
			r = -ETIMEDOUT;
	}
	if (l->q.count > 0) {
		*itemp = mg__ring_pop(&l->q);
		r = 0;
	} else if (l->closed) {
		r = MG_ECLOSED;
	}
	pthread_mutex_unlock(&l->lock);
	return r;
}

size_t mg_latch_size(struct mg_latch *l)
{
	size_t n;

	pthread_mutex_lock(&l->lock);
	n = l->q.count;
	pthread_mutex_unlock(&l->lock);
	return n;
}

void mg_latch_close(struct mg_latch *l)
{
	pthread_mutex_lock(&l->lock);
	l->closed = true;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

void mg_latch_free(struct mg_latch *l)
{
	if (l == NULL)
		return;
	mg__ring_fini(&l->q);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
	mg__free(l);
}
