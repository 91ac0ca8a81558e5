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

char *mg__strdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = mg__malloc(n);

	if (d != NULL)
		memcpy(d, s, n);
	return d;
}
