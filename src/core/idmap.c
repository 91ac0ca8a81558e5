/*
 * idmap.c: a u32 -> pointer hash map with open addressing and linear
 * probing.  Routes and handles live in these.
 */
#include <errno.h>
#include <string.h>

#include "core/core.h"

/* A slot is empty when its value is NULL and not a tombstone. */
static char tomb_marker;
#define TOMB ((void *)&tomb_marker)

void mg__idmap_init(struct mg_idmap *m)
{
	memset(m, 0, sizeof(*m));
}

void mg__idmap_fini(struct mg_idmap *m)
{
	mg__free(m->keys);
	mg__free(m->vals);
	mg__idmap_init(m);
}

static size_t slot_of(uint32_t key, size_t cap)
{
	/* Fibonacci hashing spreads the small sequential ids we mostly see. */
	return (size_t)(((uint64_t)key * 11400714819323198485ull) >> 32) & (cap - 1);
}

static int rehash(struct mg_idmap *m, size_t ncap)
{
	uint32_t *keys = mg__calloc(ncap, sizeof(*keys));
	void **vals = mg__calloc(ncap, sizeof(*vals));
	size_t i;

	if (keys == NULL || vals == NULL) {
		mg__free(keys);
		mg__free(vals);
		return -ENOMEM;
	}
	for (i = 0; i < m->cap; i++) {
		size_t j;
		if (m->vals[i] == NULL || m->vals[i] == TOMB)
			continue;
		for (j = slot_of(m->keys[i], ncap); vals[j] != NULL; j = (j + 1) & (ncap - 1))
			;
		keys[j] = m->keys[i];
		vals[j] = m->vals[i];
	}
	mg__free(m->keys);
	mg__free(m->vals);
	m->keys = keys;
	m->vals = vals;
	m->cap = ncap;
	m->tombs = 0;
	return 0;
}

void *mg__idmap_get(const struct mg_idmap *m, uint32_t key)
{
	size_t i;

	if (m->cap == 0)
		return NULL;
	for (i = slot_of(key, m->cap); m->vals[i] != NULL; i = (i + 1) & (m->cap - 1))
		if (m->vals[i] != TOMB && m->keys[i] == key)
			return m->vals[i];
	return NULL;
}

int mg__idmap_put(struct mg_idmap *m, uint32_t key, void *val)
{
	size_t i, tomb = SIZE_MAX;
	int r;

	if ((m->count + m->tombs + 1) * 4 >= m->cap * 3) {
		size_t ncap = m->cap ? m->cap : 16;
		while ((m->count + 1) * 2 >= ncap)
			ncap *= 2;
		if ((r = rehash(m, ncap)) != 0)
			return r;
	}
	for (i = slot_of(key, m->cap); m->vals[i] != NULL; i = (i + 1) & (m->cap - 1)) {
		if (m->vals[i] == TOMB) {
			if (tomb == SIZE_MAX)
				tomb = i;
		} else if (m->keys[i] == key) {
			m->vals[i] = val;
			return 0;
		}
	}
	if (tomb != SIZE_MAX) {
		i = tomb;
		m->tombs--;
	}
	m->keys[i] = key;
	m->vals[i] = val;
	m->count++;
	return 0;
}

void *mg__idmap_del(struct mg_idmap *m, uint32_t key)
{
	size_t i;

	if (m->cap == 0)
		return NULL;
	for (i = slot_of(key, m->cap); m->vals[i] != NULL; i = (i + 1) & (m->cap - 1)) {
		if (m->vals[i] != TOMB && m->keys[i] == key) {
			void *old = m->vals[i];
			m->vals[i] = TOMB;
			m->count--;
			m->tombs++;
			return old;
		}
	}
	return NULL;
}

bool mg__idmap_next(const struct mg_idmap *m, size_t *pos, uint32_t *keyp, void **valp)
{
	for (; *pos < m->cap; (*pos)++) {
		if (m->vals[*pos] != NULL && m->vals[*pos] != TOMB) {
			*keyp = m->keys[*pos];
			*valp = m->vals[*pos];
			(*pos)++;
			return true;
		}
	}
	return false;
}
