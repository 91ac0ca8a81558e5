/*
 * alloc.c: the one allocation wrapper.  Tests make the Nth allocation fail
 * to prove every caller copes; nothing here aborts.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "wire/wire.h"

static atomic_long fail_countdown;

void mg__alloc_fail_after(long n)
{
	atomic_store(&fail_countdown, n);
}

static int should_fail(void)
{
	long left = atomic_load_explicit(&fail_countdown, memory_order_relaxed);

	if (left <= 0)
		return 0;
	left = atomic_fetch_sub(&fail_countdown, 1);
	return left == 1;
}

bool mg__alloc_fail_now(void)
{
	return should_fail() != 0;
}

void *mg__malloc(size_t n)
{
	if (should_fail())
		return NULL;
	return malloc(n ? n : 1);
}

void *mg__calloc(size_t n, size_t size)
{
	if (should_fail())
		return NULL;
	return calloc(n ? n : 1, size ? size : 1);
}

void *mg__realloc(void *p, size_t n)
{
	if (should_fail())
		return NULL;
	return realloc(p, n ? n : 1);
}

void mg__free(void *p)
{
	free(p);
}

/* Slots per size class, and the most bytes kept over all classes. */
#define CHUNK_SLOTS 4
#define CHUNK_CLASSES 5 /* 64 KiB .. 1 MiB */
#define CHUNK_BUDGET (2 * 1024 * 1024)

static _Atomic(void *) chunks[CHUNK_CLASSES][CHUNK_SLOTS];
static atomic_size_t chunk_bytes;

/* The class of cap, or -1 when cap is not one that is kept. */
static int chunk_class(size_t cap)
{
	int c = 0;
	size_t n = CHUNK_MIN;

	if ((cap & (cap - 1)) != 0)
		return -1;
	for (; n <= CHUNK_MAX; n *= 2, c++)
		if (n == cap)
			return c;
	return -1;
}

void *mg__chunk_alloc(size_t cap)
{
	int c = chunk_class(cap), i;
	void *p;

	if (should_fail())
		return NULL;
	for (i = 0; c >= 0 && i < CHUNK_SLOTS; i++) {
		if (atomic_load_explicit(&chunks[c][i], memory_order_relaxed) == NULL)
			continue;
		if ((p = atomic_exchange(&chunks[c][i], NULL)) != NULL) {
			atomic_fetch_sub(&chunk_bytes, cap);
			return p;
		}
	}
	return malloc(cap ? cap : 1);
}

void mg__chunk_free(void *p, size_t cap)
{
	int c = chunk_class(cap), i;
	void *expect;

	if (c < 0 || p == NULL) {
		free(p);
		return;
	}
	if (atomic_fetch_add(&chunk_bytes, cap) + cap <= CHUNK_BUDGET) {
		for (i = 0; i < CHUNK_SLOTS; i++) {
			expect = NULL;
			if (atomic_compare_exchange_strong(&chunks[c][i], &expect, p))
				return;
		}
	}
	atomic_fetch_sub(&chunk_bytes, cap);
	free(p);
}

char *mg__strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = mg__malloc(n);

	if (d != NULL)
		memcpy(d, s, n);
	return d;
}
