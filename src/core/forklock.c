/*
 * forklock.c: the library's process-wide locks that a fork must not leave
 * held (see core.h and docs/FORK.md).  Only the forking thread exists in a
 * fork's child, so a lock another thread held at that moment would stay
 * held there forever: the forking thread takes every one of them before
 * fork() and both sides release them after.
 */
#include "core/core.h"

/* Aligned so that the five share one page. */
pthread_mutex_t mg__fork_locks[MG_FORK_LOCK_COUNT] __attribute__((aligned(256))) = {
        PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
        PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
};

static void fork_prepare(void)
{
	for (int i = 0; i < MG_FORK_LOCK_COUNT; i++)
		pthread_mutex_lock(&mg__fork_locks[i]);
}

static void fork_release(void)
{
	for (int i = MG_FORK_LOCK_COUNT - 1; i >= 0; i--)
		pthread_mutex_unlock(&mg__fork_locks[i]);
}

__attribute__((constructor)) static void fork_locks_atfork(void)
{
	pthread_atfork(fork_prepare, fork_release, fork_release);
}
