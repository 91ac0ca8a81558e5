/*
 * malloc.c: the agent's allocator, in place of musl's mallocng (~7 KB of
 * code, ~3 KB of the program a first connect sends).  Linked ahead of
 * libc.a, it keeps musl's from being pulled in.
 *
 * Blocks up to 128 KiB (musl's own mmap threshold) come from size classes
 * 1.5 or 2 times apart, carved from 256 KiB mappings and kept on a free
 * list per class once freed: the agent allocates the same few sizes over
 * and over (messages, buffers), so the lists stay short and the high-water
 * mark bounds its memory.  Bigger blocks get a mapping of their own, given
 * back at free and grown with mremap.  One mutex guards the lists; fork
 * takes it (pthread_atfork) so a child of a busy process finds it free.
 * A 16-byte header before each block holds its class, or for a mapping
 * its length, which keeps blocks 16-byte aligned as malloc must.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* tests/test_agent_libc.c builds this file under other names, beside the
 * C library's own. */
#ifdef MG_AGENT_LIBC_TEST
#define malloc mg__agent_malloc
#define free mg__agent_free
#define calloc mg__agent_calloc
#define realloc mg__agent_realloc
void *malloc(size_t n);
void free(void *p);
void *calloc(size_t m, size_t n);
void *realloc(void *p, size_t n);
#endif

#define HDR 16
#define NCLASS 25 /* class 24 is 128 KiB */
#define ARENA (256 * 1024)
#define PAGE 4096

/* 32, 48, 64, 96, 128, 192, ... bytes, header included. */
#define CLASS_SIZE(c) ((size_t)(2 + ((c)&1)) << (4 + (c) / 2))

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *lists[NCLASS];
static char *cur, *end;

static void lock_take(void)
{
	pthread_mutex_lock(&lock);
}

static void lock_drop(void)
{
	pthread_mutex_unlock(&lock);
}

/* Registered before any other fork handler (the lowest constructor
 * priority runs first), so that its prepare runs last: a thread holding
 * one of the library's fork locks may be waiting in malloc, and the
 * forking thread must take that lock before this one, never after. */
__attribute__((constructor(101))) static void malloc_init(void)
{
	pthread_atfork(lock_take, lock_drop, lock_drop);
}

/* Whole pages for a block of t bytes with its header, or 0 on overflow. */
static size_t page_round(size_t t)
{
	return t > SIZE_MAX - PAGE ? 0 : (t + PAGE - 1) & ~(size_t)(PAGE - 1);
}

void *malloc(size_t n)
{
	size_t t = n + HDR, c = 0;
	char *h;

	if (n > SIZE_MAX - HDR) {
		errno = ENOMEM;
		return NULL;
	}
	if (t > CLASS_SIZE(NCLASS - 1)) {
		size_t len = page_round(t);

		h = len == 0 ? MAP_FAILED
		             : mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		                    -1, 0);
		if (h == MAP_FAILED) {
			errno = ENOMEM;
			return NULL;
		}
		*(size_t *)h = len;
		return h + HDR;
	}
	while (CLASS_SIZE(c) < t)
		c++;
	lock_take();
	if ((h = lists[c]) != NULL) {
		lists[c] = *(void **)(h + HDR);
	} else {
		if ((size_t)(end - cur) < CLASS_SIZE(c)) {
			/* The rest of the old mapping is never touched, so it
			 * costs address space only. */
			char *m = mmap(NULL, ARENA, PROT_READ | PROT_WRITE,
			               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

			if (m == MAP_FAILED) {
				lock_drop();
				errno = ENOMEM;
				return NULL;
			}
			cur = m;
			end = m + ARENA;
		}
		h = cur;
		cur += CLASS_SIZE(c);
	}
	lock_drop();
	*(size_t *)h = c;
	return h + HDR;
}

void free(void *p)
{
	char *h;
	size_t v;

	if (p == NULL)
		return;
	h = (char *)p - HDR;
	v = *(size_t *)h;
	if (v >= NCLASS) {
		munmap(h, v);
		return;
	}
	lock_take();
	*(void **)p = lists[v];
	lists[v] = h;
	lock_drop();
}

void *calloc(size_t m, size_t n)
{
	void *p;

	if (n != 0 && m > SIZE_MAX / n) {
		errno = ENOMEM;
		return NULL;
	}
	p = malloc(m * n);
	/* A mapping of its own is fresh from the kernel, zeroed already. */
	if (p != NULL && *(size_t *)((char *)p - HDR) < NCLASS)
		memset(p, 0, m * n);
	return p;
}

void *realloc(void *p, size_t n)
{
	char *h;
	size_t v, have, len;
	void *q;

	if (p == NULL)
		return malloc(n);
	h = (char *)p - HDR;
	v = *(size_t *)h;
	have = (v < NCLASS ? CLASS_SIZE(v) : v) - HDR;
	if (v < NCLASS && n <= have)
		return p;
	if (v >= NCLASS && n <= SIZE_MAX - HDR && n + HDR > CLASS_SIZE(NCLASS - 1) &&
	    (len = page_round(n + HDR)) != 0) {
		/* A mapping grows or shrinks where the kernel can, without
		 * a copy. */
		if ((h = mremap(h, v, len, MREMAP_MAYMOVE)) == MAP_FAILED) {
			errno = ENOMEM;
			return NULL;
		}
		*(size_t *)h = len;
		return h + HDR;
	}
	if ((q = malloc(n)) == NULL)
		return NULL;
	memcpy(q, p, n < have ? n : have);
	free(p);
	return q;
}

#ifndef MG_AGENT_LIBC_TEST
/* musl's own allocations (atexit's handler blocks) go through this
 * internal name; without it libc.a brings its bump allocator and calloc
 * wrapper (~1 KB).  Kept through LTO (used): libc.a's atexit may join the
 * link after the IR is compiled. */
void *__libc_calloc(size_t m, size_t n);
__attribute__((used)) void *__libc_calloc(size_t m, size_t n)
{
	return calloc(m, n);
}
#endif
