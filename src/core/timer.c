/*
 * timer.c: a binary min-heap of timers keyed by due time.  Cancelling marks
 * the entry dead in place; dead entries are dropped when they surface.
 */
#include <string.h>

#include "core/core.h"

void mg__timers_init(struct mg_timer_heap *h)
{
	memset(h, 0, sizeof(*h));
	h->next_id = 1;
}

void mg__timers_fini(struct mg_timer_heap *h)
{
	mg__free(h->items);
	memset(h, 0, sizeof(*h));
}

static bool before(const struct mg_timer *a, const struct mg_timer *b)
{
	return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->id < b->id);
}

static void swap(struct mg_timer *a, struct mg_timer *b)
{
	struct mg_timer t = *a;
	*a = *b;
	*b = t;
}

static void sift_up(struct mg_timer_heap *h, size_t i)
{
	while (i > 0 && before(&h->items[i], &h->items[(i - 1) / 2])) {
		swap(&h->items[i], &h->items[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
}

static void sift_down(struct mg_timer_heap *h, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < h->count && before(&h->items[l], &h->items[m]))
			m = l;
		if (r < h->count && before(&h->items[r], &h->items[m]))
			m = r;
		if (m == i)
			return;
		swap(&h->items[i], &h->items[m]);
		i = m;
	}
}

uint64_t mg__timers_add(struct mg_timer_heap *h, int64_t due_ms, mg_timer_cb cb, void *arg)
{
	if (h->count == h->cap) {
		size_t ncap = h->cap ? h->cap * 2 : 16;
		struct mg_timer *n = mg__realloc(h->items, ncap * sizeof(*n));
		if (n == NULL)
			return 0;
		h->items = n;
		h->cap = ncap;
	}
	h->items[h->count] = (struct mg_timer){due_ms, h->next_id++, cb, arg};
	sift_up(h, h->count++);
	return h->next_id - 1;
}

void mg__timers_cancel(struct mg_timer_heap *h, uint64_t id)
{
	size_t i;

	for (i = 0; i < h->count; i++) {
		if (h->items[i].id == id) {
			h->items[i].cb = NULL;
			return;
		}
	}
}

static void pop_top(struct mg_timer_heap *h)
{
	h->items[0] = h->items[--h->count];
	if (h->count)
		sift_down(h, 0);
}

int mg__timers_next_ms(const struct mg_timer_heap *h, int64_t now_ms)
{
	int64_t d;

	if (h->count == 0)
		return -1;
	d = h->items[0].due_ms - now_ms;
	if (d < 0)
		return 0;
	return d > 1000000 ? 1000000 : (int)d;
}

bool mg__timers_pop_due(struct mg_timer_heap *h, int64_t now_ms, struct mg_timer *t)
{
	while (h->count && h->items[0].due_ms <= now_ms) {
		*t = h->items[0];
		pop_top(h);
		if (t->cb != NULL)
			return true;
	}
	return false;
}
