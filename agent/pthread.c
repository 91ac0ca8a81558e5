/*
 * pthread.c: the agent's mutexes and condition variables, in place of
 * musl's (~4 KB of code with what they drag in: robust, recursive,
 * priority-inheritance and process-shared variants, cancellation).  The
 * library only ever uses default mutexes, and condition variables with
 * one clock each, so a futex word apiece does: about 2.5 KB less on the
 * wire at a first connect (with pthread_once).  Linked ahead of libc.a, they keep musl's from
 * being pulled in (musl's own locks do not use these).
 *
 * The objects are used as plain storage: a zeroed one (the static
 * initialisers) is ready, and nothing here reads the C library's layout.
 *  - mutex: word 0 is 0 free, 1 held, 2 held with possible sleepers.
 *  - cond: word 0 counts wake-ups in its upper bits; bit 0 says a waiter
 *    may be asleep, so signal and broadcast cost no system call when none
 *    is.  Word 1 is the clock of absolute timeouts.  A waiter never
 *    touches the cond after it wakes, so the usual "destroy once all are
 *    woken" is safe.  Wake-ups may be spurious, as POSIX allows.
 *  - condattr: word 0 is the clock.
 *  - once: 0 not run, 1 running, 3 running with waiters, 2 done.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* tests/test_agent_libc.c builds this file under other names, beside the
 * C library's own. */
#ifdef MG_AGENT_LIBC_TEST
#define pthread_mutex_init mg__agent_mutex_init
#define pthread_mutex_destroy mg__agent_mutex_destroy
#define pthread_mutex_lock mg__agent_mutex_lock
#define pthread_mutex_trylock mg__agent_mutex_trylock
#define pthread_mutex_unlock mg__agent_mutex_unlock
#define pthread_condattr_init mg__agent_condattr_init
#define pthread_condattr_destroy mg__agent_condattr_destroy
#define pthread_condattr_setclock mg__agent_condattr_setclock
#define pthread_cond_init mg__agent_cond_init
#define pthread_cond_destroy mg__agent_cond_destroy
#define pthread_cond_wait mg__agent_cond_wait
#define pthread_cond_timedwait mg__agent_cond_timedwait
#define pthread_cond_signal mg__agent_cond_signal
#define pthread_cond_broadcast mg__agent_cond_broadcast
#define pthread_once mg__agent_once
int pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a);
int pthread_mutex_destroy(pthread_mutex_t *m);
int pthread_mutex_lock(pthread_mutex_t *m);
int pthread_mutex_trylock(pthread_mutex_t *m);
int pthread_mutex_unlock(pthread_mutex_t *m);
int pthread_condattr_init(pthread_condattr_t *a);
int pthread_condattr_destroy(pthread_condattr_t *a);
int pthread_condattr_setclock(pthread_condattr_t *a, clockid_t clk);
int pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *a);
int pthread_cond_destroy(pthread_cond_t *c);
int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m);
int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *ts);
int pthread_cond_signal(pthread_cond_t *c);
int pthread_cond_broadcast(pthread_cond_t *c);
int pthread_once(pthread_once_t *o, void (*fn)(void));
#endif

/* From <linux/futex.h>, which musl-gcc does not see. */
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_WAIT_BITSET 9
#define FUTEX_PRIVATE_FLAG 128
#define FUTEX_CLOCK_REALTIME 256
#define FUTEX_BITSET_MATCH_ANY (-1)

#define WORDS(p) ((int *)(void *)(p))

/* The result is the kernel's: 0, or -errno.  errno is left as it was:
 * a caller may take a lock between a failed call and reading its errno. */
static long futex(int *w, int op, int val, const struct timespec *ts)
{
	int saved = errno;
	long r = syscall(SYS_futex, w, op | FUTEX_PRIVATE_FLAG, val, ts, NULL,
	                 FUTEX_BITSET_MATCH_ANY);

	if (r < 0)
		r = -errno;
	errno = saved;
	return r;
}

int pthread_mutex_init(pthread_mutex_t *m, const pthread_mutexattr_t *a)
{
	WORDS(m)[0] = 0;
	return 0;
}

int pthread_mutex_destroy(pthread_mutex_t *m)
{
	return 0;
}

int pthread_mutex_trylock(pthread_mutex_t *m)
{
	int free = 0;

	return __atomic_compare_exchange_n(WORDS(m), &free, 1, 0, __ATOMIC_ACQUIRE,
	                                   __ATOMIC_RELAXED)
	               ? 0
	               : EBUSY;
}

int pthread_mutex_lock(pthread_mutex_t *m)
{
	int *w = WORDS(m);

	/* Free at once most often; when held, spin a little before sleeping,
	 * as musl does: the holder is likely a thread on the other CPU about
	 * to let go, and a sleep costs two context switches. */
	for (int spins = 0; spins < 100; spins++)
		if (__atomic_load_n(w, __ATOMIC_RELAXED) == 0 && pthread_mutex_trylock(m) == 0)
			return 0;
	/* Still held: mark it contended, and sleep until an exchange finds it
	 * free (then it is ours, still marked, which costs the next unlock
	 * one needless wake at worst). */
	while (__atomic_exchange_n(w, 2, __ATOMIC_ACQUIRE) != 0)
		futex(w, FUTEX_WAIT, 2, NULL);
	return 0;
}

int pthread_mutex_unlock(pthread_mutex_t *m)
{
	int *w = WORDS(m);

	if (__atomic_exchange_n(w, 0, __ATOMIC_RELEASE) == 2)
		futex(w, FUTEX_WAKE, 1, NULL);
	return 0;
}

int pthread_condattr_init(pthread_condattr_t *a)
{
	WORDS(a)[0] = CLOCK_REALTIME;
	return 0;
}

int pthread_condattr_destroy(pthread_condattr_t *a)
{
	return 0;
}

int pthread_condattr_setclock(pthread_condattr_t *a, clockid_t clk)
{
	if (clk != CLOCK_REALTIME && clk != CLOCK_MONOTONIC)
		return EINVAL;
	WORDS(a)[0] = clk;
	return 0;
}

int pthread_cond_init(pthread_cond_t *c, const pthread_condattr_t *a)
{
	WORDS(c)[0] = 0;
	WORDS(c)[1] = a != NULL ? WORDS(a)[0] : CLOCK_REALTIME;
	return 0;
}

int pthread_cond_destroy(pthread_cond_t *c)
{
	return 0;
}

int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *ts)
{
	int *w = WORDS(c), seq, op = FUTEX_WAIT_BITSET;
	long r;

	if (ts != NULL && (ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L))
		return EINVAL;
	if (WORDS(c)[1] == CLOCK_REALTIME)
		op |= FUTEX_CLOCK_REALTIME;
	/* Read under the mutex: a wake-up after this changes the word, so
	 * the sleep below returns at once rather than missing it. */
	seq = __atomic_or_fetch(w, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(m);
	r = futex(w, op, seq, ts);
	pthread_mutex_lock(m);
	return r == -ETIMEDOUT ? ETIMEDOUT : 0;
}

int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
	return pthread_cond_timedwait(c, m, NULL);
}

/* Bumps the count (keeping the waiter bit unless all are woken) and
 * wakes n sleepers, when one may sleep. */
static int wake(pthread_cond_t *c, int n)
{
	int *w = WORDS(c), old = __atomic_load_n(w, __ATOMIC_SEQ_CST);

	do {
		if ((old & 1) == 0)
			return 0;
	} while (!__atomic_compare_exchange_n(w, &old, (old + 2) & (n == 1 ? ~0 : ~1), 0,
	                                      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST));
	futex(w, FUTEX_WAKE, n, NULL);
	return 0;
}

int pthread_cond_signal(pthread_cond_t *c)
{
	return wake(c, 1);
}

int pthread_cond_broadcast(pthread_cond_t *c)
{
	return wake(c, INT_MAX);
}

int pthread_once(pthread_once_t *o, void (*fn)(void))
{
	int *w = WORDS(o), v = __atomic_load_n(w, __ATOMIC_ACQUIRE);

	while (v != 2) {
		if (v == 0 &&
		    __atomic_compare_exchange_n(w, &v, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) {
			fn();
			if (__atomic_exchange_n(w, 2, __ATOMIC_RELEASE) == 3)
				futex(w, FUTEX_WAKE, INT_MAX, NULL);
			return 0;
		}
		/* Running elsewhere: say a waiter sleeps, then sleep. */
		if (v == 1 &&
		    !__atomic_compare_exchange_n(w, &v, 3, 0, __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE))
			continue;
		if (v != 0) {
			futex(w, FUTEX_WAIT, 3, NULL);
			v = __atomic_load_n(w, __ATOMIC_ACQUIRE);
		}
	}
	return 0;
}

#ifndef MG_AGENT_LIBC_TEST
/* musl's lock between thread creation and dlopen: pthread_create and
 * pthread_attr_init read the TLS layout and default stack size under it,
 * dlopen changes them under it, fork holds it across.  A static program
 * has no dlopen, so there is nothing to exclude (musl's own fallbacks in
 * pthread_create, for when the lock is not linked, are no-ops too).
 * Defined here, they keep the lock and the rwlock code under it (~1 KB)
 * out.  Kept through LTO (used): libc.a's fork and pthread_create join
 * the link after the IR is compiled. */
void __acquire_ptc(void);
void __release_ptc(void);
void __inhibit_ptc(void);

__attribute__((used)) void __acquire_ptc(void)
{
}

__attribute__((used)) void __release_ptc(void)
{
}

__attribute__((used)) void __inhibit_ptc(void)
{
}
#endif
