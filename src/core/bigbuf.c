/*
 * bigbuf.c: storage for large message payloads (those read off a stream
 * and those packed by a sender).  A fresh malloc'd 64 MiB buffer per
 * message is mapped anew by glibc each time, so every 4 KiB of it
 * page-faults and is zeroed before anything is copied into it, which costs
 * more than the copy itself.  Here a large buffer is mapped with
 * transparent huge pages allowed (one fault per 2 MiB), and a few freed
 * buffers are kept mapped for the next large payloads, which then cost no
 * faults at all.
 *
 * The cache keeps at most CACHE_SLOTS buffers and CACHE_BYTES in all, and
 * only while they are in use: a buffer unused for CACHE_IDLE_MS is
 * unmapped by mg__bigbuf_trim(), which every broker loop calls, so a
 * process that once moved large messages goes back to its idle size
 * within seconds.  The wait is jemalloc's default decay time (10 s): with
 * 1 s, a sender whose 64 MiB payloads came a second and a bit apart got
 * fresh memory for nearly each one, and a first touch of fresh memory is
 * slow and erratic in a VM whose host takes freed guest memory back (free
 * page reporting): bench_core's router rounds, 1.3 s apart on a quiet
 * machine, ran at 0.3x or 0.9x the floor depending on which memory the
 * kernel handed out.  (MADV_FREE on cached buffers would let the kernel
 * take them back sooner, but in bench_core it brought 64 MiB throughput
 * from 1.0-2.4x the socketpair floor down to 0.1-0.7x.)
 */
#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>

#include "core/core.h"

#define HUGE_PAGE ((size_t)2 << 20)
#define PAGE ((size_t)4096)
#define CACHE_SLOTS 4
#define CACHE_BYTES ((size_t)256 << 20)
#define CACHE_IDLE_MS 10000

struct slot {
	uint8_t *data;
	size_t cap;
	int64_t put_ms; /* when it was cached */
};

static pthread_mutex_t *const cache_lock = &mg__fork_locks[MG_FORK_LOCK_BIGBUF];
static struct slot cache[CACHE_SLOTS];
static size_t cache_bytes;
static atomic_int cache_used; /* slots in use, read unlocked by trim */

static size_t round_up(size_t n)
{
	return (n + PAGE - 1) & ~(PAGE - 1);
}

/* Maps n bytes (a multiple of PAGE) starting on a huge page boundary, so
 * that all but the last partial 2 MiB can be huge pages. */
static void *map_aligned(size_t n)
{
	uint8_t *p, *start;
	size_t head;

	p = mmap(NULL, n + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return p;
	start = (uint8_t *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
	head = (size_t)(start - p);
	if (head > 0)
		munmap(p, head);
	munmap(start + n, HUGE_PAGE - head);
	/* Advice only: without THP (or on a kernel that refuses) the buffer
	 * is still good, just slower to fill the first time. */
	(void)madvise(start, n, MADV_HUGEPAGE);
	return start;
}

/* Takes the smallest cached buffer of at least len bytes.  Called locked. */
static bool cache_take(size_t len, struct slot *out)
{
	int i, best = -1;

	for (i = 0; i < CACHE_SLOTS; i++) {
		if (cache[i].data != NULL && cache[i].cap >= len &&
		    (best < 0 || cache[i].cap < cache[best].cap))
			best = i;
	}
	if (best < 0)
		return false;
	*out = cache[best];
	cache[best].data = NULL;
	cache_bytes -= out->cap;
	atomic_fetch_sub(&cache_used, 1);
	return true;
}

int mg__bigbuf_get(size_t len, uint8_t **datap, size_t *capp)
{
	struct slot s;
	bool hit;
	void *p;

	if (mg__alloc_fail_now())
		return -ENOMEM;
	pthread_mutex_lock(cache_lock);
	hit = cache_take(len, &s);
	pthread_mutex_unlock(cache_lock);
	if (hit) {
		*datap = s.data;
		*capp = s.cap;
		return 0;
	}
	s.cap = round_up(len);
	if ((p = map_aligned(s.cap)) == MAP_FAILED)
		return -errno;
	*datap = p;
	*capp = s.cap;
	return 0;
}

int mg__bigbuf_grow(uint8_t **datap, size_t *capp, size_t len)
{
	size_t cap = round_up(len > *capp + *capp / 2 ? len : *capp + *capp / 2);
	void *p;

	if (mg__alloc_fail_now())
		return -ENOMEM;
	/* The kernel moves the page tables: nothing is copied. */
	p = mremap(*datap, *capp, cap, MREMAP_MAYMOVE);
	if (p == MAP_FAILED)
		return -errno;
	(void)madvise(p, cap, MADV_HUGEPAGE);
	*datap = p;
	*capp = cap;
	return 0;
}

void mg__bigbuf_put(uint8_t *data, size_t cap)
{
	int i;

	if (data == NULL)
		return;
	pthread_mutex_lock(cache_lock);
	if (cap <= CACHE_BYTES - cache_bytes) {
		for (i = 0; i < CACHE_SLOTS; i++) {
			if (cache[i].data == NULL) {
				cache[i] = (struct slot){data, cap, mg__now_ms()};
				cache_bytes += cap;
				atomic_fetch_add(&cache_used, 1);
				data = NULL;
				break;
			}
		}
	}
	pthread_mutex_unlock(cache_lock);
	if (data != NULL)
		munmap(data, cap);
}

int mg__bigbuf_trim(int64_t now_ms)
{
	struct slot gone[CACHE_SLOTS];
	int i, n = 0, next = -1;

	if (atomic_load_explicit(&cache_used, memory_order_relaxed) == 0)
		return -1;
	pthread_mutex_lock(cache_lock);
	for (i = 0; i < CACHE_SLOTS; i++) {
		int64_t left;

		if (cache[i].data == NULL)
			continue;
		left = cache[i].put_ms + CACHE_IDLE_MS - now_ms;
		if (left <= 0) {
			gone[n++] = cache[i];
			cache_bytes -= cache[i].cap;
			cache[i].data = NULL;
			atomic_fetch_sub(&cache_used, 1);
		} else if (next < 0 || left < next) {
			next = (int)left;
		}
	}
	pthread_mutex_unlock(cache_lock);
	for (i = 0; i < n; i++)
		munmap(gone[i].data, gone[i].cap);
	return next;
}
