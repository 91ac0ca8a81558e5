/*
 * select.c: waiting on many receivers.  A receiver that gets a message
 * puts itself on its select's ready queue; select_get takes receivers off
 * that queue and tries them, so a wake-up costs O(1) however many members
 * there are.  Entries may be stale (the message was taken elsewhere); a
 * try that finds nothing just moves on.
 */
#include <errno.h>

#include "internal.h"

struct mg_select {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct mg_ring ready;
	size_t members;
};

int mg_select_new(struct mg_select **selp)
{
	struct mg_select *sel = mg__calloc(1, sizeof(*sel));
	pthread_condattr_t ca;

	if (sel == NULL)
		return -ENOMEM;
	pthread_mutex_init(&sel->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sel->cond, &ca);
	pthread_condattr_destroy(&ca);
	mg__ring_init(&sel->ready);
	*selp = sel;
	return 0;
}

void mg__select_notify(struct mg_select *sel, struct mg_receiver *rx)
{
	pthread_mutex_lock(&sel->lock);
	if (mg__ring_push(&sel->ready, rx) == 0)
		pthread_cond_signal(&sel->cond);
	pthread_mutex_unlock(&sel->lock);
}

int mg_select_add(struct mg_select *sel, struct mg_receiver *rx)
{
	bool ready;

	pthread_mutex_lock(&rx->lock);
	if (rx->sel != NULL) {
		pthread_mutex_unlock(&rx->lock);
		return MG_ELIMIT;
	}
	rx->sel = sel;
	ready = rx->q.count > 0 || rx->closed || rx->shutdown;
	pthread_mutex_unlock(&rx->lock);
	pthread_mutex_lock(&sel->lock);
	sel->members++;
	pthread_mutex_unlock(&sel->lock);
	if (ready)
		mg__select_notify(sel, rx);
	return 0;
}

int mg_select_remove(struct mg_select *sel, struct mg_receiver *rx)
{
	pthread_mutex_lock(&rx->lock);
	if (rx->sel != sel) {
		pthread_mutex_unlock(&rx->lock);
		return -ENOENT;
	}
	rx->sel = NULL;
	pthread_mutex_unlock(&rx->lock);
	pthread_mutex_lock(&sel->lock);
	mg__ring_remove(&sel->ready, rx);
	sel->members--;
	pthread_cond_broadcast(&sel->cond);
	pthread_mutex_unlock(&sel->lock);
	return 0;
}

int mg_select_get(struct mg_select *sel, int timeout_ms, struct mg_receiver **rxp,
                  struct mg_msg **msgp)
{
	struct timespec deadline;
	int rc;

	if (timeout_ms >= 0)
		mg__deadline(&deadline, timeout_ms);
	pthread_mutex_lock(&sel->lock);
	for (;;) {
		struct mg_receiver *rx = mg__ring_pop(&sel->ready);
		bool more;

		if (rx != NULL) {
			pthread_mutex_unlock(&sel->lock);
			rc = mg__receiver_try_get(rx, msgp, &more);
			if (rc != -EAGAIN) {
				if (more || rc == MG_ECLOSED || rc == MG_ESHUTDOWN)
					mg__select_notify(sel, rx);
				*rxp = rx;
				return rc;
			}
			pthread_mutex_lock(&sel->lock);
			continue;
		}
		if (sel->members == 0) {
			pthread_mutex_unlock(&sel->lock);
			return MG_ECLOSED;
		}
		if (timeout_ms < 0) {
			pthread_cond_wait(&sel->cond, &sel->lock);
		} else if (pthread_cond_timedwait(&sel->cond, &sel->lock, &deadline) == ETIMEDOUT &&
		           sel->ready.count == 0) {
			pthread_mutex_unlock(&sel->lock);
			return -ETIMEDOUT;
		}
	}
}

void mg_select_free(struct mg_select *sel)
{
	if (sel == NULL)
		return;
	mg__ring_fini(&sel->ready);
	pthread_cond_destroy(&sel->cond);
	pthread_mutex_destroy(&sel->lock);
	mg__free(sel);
}
