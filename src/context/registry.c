/*
 * registry.c: the table of exported functions, by name.  Most entries are
 * added by MG_EXPORT constructors before main(); a lock lets programs add
 * more at run time while calls look names up.
 */
#include <errno.h>
#include <string.h>

#include "context/context.h"

#define BUCKETS 256

struct export
{
	struct export *next;
	mg_export_fn fn;
	char name[];
};

static struct export *table[BUCKETS];
static pthread_mutex_t *const lock = &mg__fork_locks[MG_FORK_LOCK_REGISTRY];

static unsigned bucket_of(const char *name)
{
	uint32_t h = 2166136261u;

	while (*name)
		h = (h ^ (uint8_t)*name++) * 16777619u;
	return h % BUCKETS;
}

int mg_export(const char *name, mg_export_fn fn)
{
	size_t n = name ? strlen(name) : 0;
	struct export *e, *it;
	unsigned b;

	if (n == 0 || n >= MG_FUNCTION_NAME_MAX || fn == NULL)
		return -EINVAL;
	if ((e = mg__malloc(sizeof(*e) + n + 1)) == NULL)
		return -ENOMEM;
	memcpy(e->name, name, n + 1);
	e->fn = fn;
	b = bucket_of(name);
	pthread_mutex_lock(lock);
	for (it = table[b]; it != NULL; it = it->next) {
		if (strcmp(it->name, name) == 0) {
			/* A later registration replaces an earlier one. */
			it->fn = fn;
			pthread_mutex_unlock(lock);
			mg__free(e);
			return 0;
		}
	}
	e->next = table[b];
	table[b] = e;
	pthread_mutex_unlock(lock);
	return 0;
}

mg_export_fn mg__export_find(const char *name)
{
	struct export *it;
	mg_export_fn fn = NULL;

	pthread_mutex_lock(lock);
	for (it = table[bucket_of(name)]; it != NULL; it = it->next) {
		if (strcmp(it->name, name) == 0) {
			fn = it->fn;
			break;
		}
	}
	pthread_mutex_unlock(lock);
	return fn;
}
