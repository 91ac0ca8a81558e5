/*
 * wakeword.c: a word threads sleep on with futex(2).  It replaces a
 * condition variable where the wake-up is on the hot path of a call: a
 * waiter sleeps without holding the guarding mutex, so waking costs one
 * FUTEX_WAKE and nothing more (glibc's condition variable re-takes the
 * mutex as contended after every sleep, which costs a second, useless
 * FUTEX_WAKE at the next unlock).
 */
#include <errno.h>
#include <limits.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/core.h"

/* The kernel's ABI values (the agent's musl toolchain has no linux/ headers). */
#define FUTEX_WAKE_PRIVATE (1 | 128)
#define FUTEX_WAIT_BITSET_PRIVATE (9 | 128)
#define FUTEX_BITSET_MATCH_ANY 0xffffffffu

unsigned mg__ww_prepare(struct mg_wakeword *w)
{
	atomic_fetch_add(&w->waiters, 1);
	return atomic_load(&w->seq);
}

int mg__ww_wait(struct mg_wakeword *w, unsigned seen, const struct timespec *deadline)
{
	int r = 0;

	/* An absolute CLOCK_MONOTONIC deadline needs FUTEX_WAIT_BITSET. */
	if (atomic_load(&w->seq) == seen &&
	    syscall(SYS_futex, &w->seq, FUTEX_WAIT_BITSET_PRIVATE, seen, deadline, NULL,
	            FUTEX_BITSET_MATCH_ANY) < 0 &&
	    errno == ETIMEDOUT)
		r = -ETIMEDOUT;
	atomic_fetch_sub(&w->waiters, 1);
	return r;
}

void mg__ww_wake(struct mg_wakeword *w, bool all)
{
	/* The waiter counts itself before it reads seq; this side moves seq
	 * before it reads the count: one of the two sees the other. */
	atomic_fetch_add(&w->seq, 1);
	if (atomic_load(&w->waiters) > 0)
		syscall(SYS_futex, &w->seq, FUTEX_WAKE_PRIVATE, all ? INT_MAX : 1, NULL, NULL, 0);
}
