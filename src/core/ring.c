/*
 * ring.c: a growable FIFO of pointers.  Receivers, latches and selects
 * keep their queues in one; callers do the locking.
 */
#include <errno.h>

#include "core/core.h"

void mg__ring_init(struct mg_ring *q)
{
	q->items = NULL;
	q->head = q->count = q->cap = 0;
}

void mg__ring_fini(struct mg_ring *q)
{
	mg__free(q->items);
	mg__ring_init(q);
}

static int grow(struct mg_ring *q)
{
	size_t ncap = q->cap ? q->cap * 2 : 16, i;
	void **n = mg__malloc(ncap * sizeof(*n));

	if (n == NULL)
		return -ENOMEM;
	for (i = 0; i < q->count; i++)
		n[i] = q->items[(q->head + i) % q->cap];
	mg__free(q->items);
	q->items = n;
	q->cap = ncap;
	q->head = 0;
	return 0;
}

int mg__ring_push(struct mg_ring *q, void *item)
{
	int r;

	if (q->count == q->cap && (r = grow(q)) != 0)
		return r;
	q->items[(q->head + q->count) % q->cap] = item;
	q->count++;
	return 0;
}

void *mg__ring_peek(struct mg_ring *q)
{
	return q->count ? q->items[q->head] : NULL;
}

void *mg__ring_pop(struct mg_ring *q)
{
	void *item;

	if (q->count == 0)
		return NULL;
	item = q->items[q->head];
	q->head = (q->head + 1) % q->cap;
	q->count--;
	return item;
}

size_t mg__ring_remove(struct mg_ring *q, void *item)
{
	size_t i, kept = 0, n = q->count;

	/* Compact in place, keeping order. */
	for (i = 0; i < n; i++) {
		void *it = q->items[(q->head + i) % q->cap];
		if (it != item)
			q->items[(q->head + kept++) % q->cap] = it;
	}
	q->count = kept;
	return n - kept;
}
