/*
 * boot.c: the boot parameters a new child learns in the handshake, as a
 * MessagePack map keyed by name.  A map rather than a fixed array so that a
 * newer parent may add keys an older child skips; the keys a child cannot
 * work without are required.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "connect/connect.h"
#include "wire/msgpack.h"

#define KEY(w, s) mg__mpw_str((w), (s), sizeof(s) - 1)

int mg__boot_encode(const struct mg_boot *boot, struct mg_buf *out)
{
	struct mg_mpw w;
	uint32_t i, n = boot->nancestors;

	if (n > MG_MAX_ANCESTORS)
		return -EINVAL;
	mg__mpw_init(&w, out);
	mg__mpw_map(&w, 7);
	KEY(&w, "id");
	mg__mpw_uint(&w, boot->context_id);
	KEY(&w, "parent");
	mg__mpw_uint(&w, boot->parent_id);
	KEY(&w, "ancestors");
	mg__mpw_array(&w, n);
	for (i = 0; i < n; i++)
		mg__mpw_uint(&w, boot->ancestors[i]);
	KEY(&w, "name");
	mg__mpw_str(&w, boot->name, strnlen(boot->name, sizeof(boot->name)));
	KEY(&w, "log_level");
	mg__mpw_int(&w, boot->log_level);
	KEY(&w, "max_message_size");
	mg__mpw_uint(&w, boot->max_message_size);
	KEY(&w, "unidirectional");
	mg__mpw_bool(&w, boot->unidirectional);
	return w.err;
}

static bool key_is(const char *k, size_t n, const char *want)
{
	return n == strlen(want) && memcmp(k, want, n) == 0;
}

static int read_u32(struct mg_mpr *r, uint32_t *vp)
{
	uint64_t v;

	if (mg__mpr_uint(r, &v) != 0)
		return r->err;
	if (v > UINT32_MAX)
		return r->err = MG_EDECODE;
	*vp = (uint32_t)v;
	return 0;
}

static int read_ancestors(struct mg_mpr *r, struct mg_boot *b)
{
	size_t n, i;

	if (mg__mpr_array(r, &n) != 0)
		return r->err;
	if (n > MG_MAX_ANCESTORS)
		return r->err = MG_EDECODE;
	for (i = 0; i < n; i++)
		if (read_u32(r, &b->ancestors[i]) != 0)
			return r->err;
	b->nancestors = (uint32_t)n;
	return 0;
}

static int read_one(struct mg_mpr *r, const char *k, size_t kn, struct mg_boot *b, unsigned *seen)
{
	const char *s;
	size_t n;
	int64_t lvl;

	if (key_is(k, kn, "id")) {
		*seen |= 1;
		return read_u32(r, &b->context_id);
	}
	if (key_is(k, kn, "parent")) {
		*seen |= 2;
		return read_u32(r, &b->parent_id);
	}
	if (key_is(k, kn, "name")) {
		*seen |= 4;
		if (mg__mpr_str(r, &s, &n) != 0)
			return r->err;
		if (n >= sizeof(b->name) || memchr(s, '\0', n) != NULL)
			return r->err = MG_EDECODE;
		memcpy(b->name, s, n);
		b->name[n] = '\0';
		return 0;
	}
	if (key_is(k, kn, "ancestors"))
		return read_ancestors(r, b);
	if (key_is(k, kn, "log_level")) {
		if (mg__mpr_int(r, &lvl) != 0)
			return r->err;
		if (lvl < INT32_MIN || lvl > INT32_MAX)
			return r->err = MG_EDECODE;
		b->log_level = (int32_t)lvl;
		return 0;
	}
	if (key_is(k, kn, "max_message_size"))
		return mg__mpr_uint(r, &b->max_message_size);
	if (key_is(k, kn, "unidirectional"))
		return mg__mpr_bool(r, &b->unidirectional);
	/* A key from a newer parent: skip it. */
	return mg__mpr_skip(r);
}

int mg__boot_decode(const uint8_t *data, size_t len, struct mg_boot *boot)
{
	struct mg_boot b;
	struct mg_mpr r;
	size_t pairs, i;
	unsigned seen = 0;

	memset(&b, 0, sizeof(b));
	b.log_level = MG_LOG_WARNING;
	b.max_message_size = 128u << 20;
	mg__mpr_init(&r, data, len);
	if (mg__mpr_map(&r, &pairs) != 0)
		return MG_EDECODE;
	for (i = 0; i < pairs; i++) {
		const char *k;
		size_t kn;

		if (mg__mpr_str(&r, &k, &kn) != 0 || read_one(&r, k, kn, &b, &seen) != 0)
			return MG_EDECODE;
	}
	if (!mg__mpr_at_end(&r) || seen != 7 || b.max_message_size == 0 ||
	    b.max_message_size > UINT32_MAX)
		return MG_EDECODE;
	*boot = b;
	return 0;
}

void mg__boot_for_child(struct mg_router *r, uint32_t child_id, const char *name,
                        struct mg_boot *boot)
{
	size_t i;

	memset(boot, 0, sizeof(*boot));
	boot->context_id = child_id;
	boot->parent_id = r->id;
	/* The child's ancestors are this context, then this context's own. */
	boot->ancestors[0] = r->id;
	boot->nancestors = 1;
	pthread_mutex_lock(&r->lock);
	for (i = 0; i < r->nancestors && boot->nancestors < MG_MAX_ANCESTORS; i++)
		boot->ancestors[boot->nancestors++] = r->ancestors[i];
	pthread_mutex_unlock(&r->lock);
	snprintf(boot->name, sizeof(boot->name), "%s", name);
	boot->log_level = mg_log_level("mitogen");
	boot->max_message_size = r->max_message_size;
	boot->unidirectional = r->unidirectional;
}
