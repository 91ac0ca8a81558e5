/*
 * msgpack_read.c: the MessagePack reader.  It never trusts a length: every
 * header and body is checked against the bytes left before it is touched,
 * and container counts against the least those elements could take.
 */
#include <string.h>

#include "wire/msgpack.h"

/* One token: a value's header, plus the body for str, bin and ext (not the
 * elements of a container, which are tokens of their own). */
struct tok {
	enum mg_mp_type type;
	size_t size;         /* header + body bytes */
	uint64_t u;          /* UINT value; length of str/bin/ext; container count */
	int64_t i;           /* INT value */
	const uint8_t *body; /* str/bin/ext body, float bits */
	int8_t ext;          /* ext type */
};

void mg__mpr_init(struct mg_mpr *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->err = 0;
}

static int fail(struct mg_mpr *r, int err)
{
	if (r->err == 0)
		r->err = err;
	return r->err;
}

static uint64_t be(const uint8_t *p, unsigned n)
{
	switch (n) {
	case 1:
		return p[0];
	case 2:
		return mg__be16(p);
	case 4:
		return mg__be32(p);
	default:
		return mg__be64(p);
	}
}

/* The type each tag in 0xc0..0xdf announces, and the width of the number
 * after the tag (a value for ints and floats, a length or count for the
 * rest; 0 for fixext, whose length is in the tag). */
/* clang-format off */
static const struct {
	uint8_t type, width;
} tags[32] = {
	[0x00] = {MG_MP_NIL, 0},    [0x01] = {MG_MP_NONE, 0},   [0x02] = {MG_MP_BOOL, 0},
	[0x03] = {MG_MP_BOOL, 0},   [0x04] = {MG_MP_BIN, 1},    [0x05] = {MG_MP_BIN, 2},
	[0x06] = {MG_MP_BIN, 4},    [0x07] = {MG_MP_EXT, 1},    [0x08] = {MG_MP_EXT, 2},
	[0x09] = {MG_MP_EXT, 4},    [0x0a] = {MG_MP_FLOAT, 4},  [0x0b] = {MG_MP_DOUBLE, 8},
	[0x0c] = {MG_MP_UINT, 1},   [0x0d] = {MG_MP_UINT, 2},   [0x0e] = {MG_MP_UINT, 4},
	[0x0f] = {MG_MP_UINT, 8},   [0x10] = {MG_MP_INT, 1},    [0x11] = {MG_MP_INT, 2},
	[0x12] = {MG_MP_INT, 4},    [0x13] = {MG_MP_INT, 8},    [0x14] = {MG_MP_EXT, 0},
	[0x15] = {MG_MP_EXT, 0},    [0x16] = {MG_MP_EXT, 0},    [0x17] = {MG_MP_EXT, 0},
	[0x18] = {MG_MP_EXT, 0},    [0x19] = {MG_MP_STR, 1},    [0x1a] = {MG_MP_STR, 2},
	[0x1b] = {MG_MP_STR, 4},    [0x1c] = {MG_MP_ARRAY, 2},  [0x1d] = {MG_MP_ARRAY, 4},
	[0x1e] = {MG_MP_MAP, 2},    [0x1f] = {MG_MP_MAP, 4},
};
/* clang-format on */

static enum mg_mp_type tag_type(uint8_t c)
{
	if (c <= 0x7f)
		return MG_MP_UINT;
	if (c <= 0x8f)
		return MG_MP_MAP;
	if (c <= 0x9f)
		return MG_MP_ARRAY;
	if (c <= 0xbf)
		return MG_MP_STR;
	if (c >= 0xe0)
		return MG_MP_INT;
	return (enum mg_mp_type)tags[c - 0xc0].type;
}

/* Parses the token at p[off..len) without consuming it. */
static int tok_at(const uint8_t *p, size_t len, size_t off, struct tok *t)
{
	size_t left = len - off, hdr = 1;
	unsigned width = 0;
	uint8_t c;

	if (off >= len)
		return MG_EDECODE;
	p += off;
	c = p[0];
	t->type = tag_type(c);
	t->u = 0;
	t->i = 0;
	t->ext = 0;
	if (c <= 0x7f || c >= 0xe0) {
		t->u = c;
		t->i = (int8_t)c;
	} else if (c <= 0x9f) {
		t->u = c & 0x0f;
	} else if (c <= 0xbf) {
		t->u = c & 0x1f;
	} else if (c >= 0xd4 && c <= 0xd8) {
		t->u = 1u << (c - 0xd4); /* fixext 1, 2, 4, 8, 16 */
	} else {
		width = tags[c - 0xc0].width;
		if (t->type == MG_MP_NONE)
			return MG_EDECODE;
	}
	if (width > left - 1)
		return MG_EDECODE;
	hdr += width;
	if (width != 0) {
		t->u = be(p + 1, width);
		if (t->type == MG_MP_INT)
			t->i = width == 1   ? (int8_t)t->u
			       : width == 2 ? (int16_t)t->u
			       : width == 4 ? (int32_t)t->u
			                    : (int64_t)t->u;
	}
	t->body = p + hdr;
	switch (t->type) {
	case MG_MP_FLOAT:
	case MG_MP_DOUBLE:
		t->body = p + 1;
		break;
	case MG_MP_EXT:
		if (hdr == left)
			return MG_EDECODE;
		t->ext = (int8_t)p[hdr];
		hdr++;
		t->body = p + hdr;
		/* fall through */
	case MG_MP_STR:
	case MG_MP_BIN:
		if (t->u > left - hdr)
			return MG_EDECODE;
		t->size = hdr + (size_t)t->u;
		return 0;
	case MG_MP_ARRAY:
		if (t->u > left - hdr)
			return MG_EDECODE;
		break;
	case MG_MP_MAP:
		if (t->u > (left - hdr) / 2)
			return MG_EDECODE;
		break;
	default:
		break;
	}
	t->size = hdr;
	return 0;
}

/* Parses the next token for an accessor that wants type want. */
static int take(struct mg_mpr *r, struct tok *t, enum mg_mp_type want)
{
	int e;

	if (r->err != 0)
		return r->err;
	if ((e = tok_at(r->p, r->len, r->off, t)) != 0)
		return fail(r, e);
	if (want != MG_MP_NONE && t->type != want)
		return fail(r, MG_EDECODE);
	return 0;
}

enum mg_mp_type mg__mpr_peek(const struct mg_mpr *r)
{
	if (r->err != 0 || r->off >= r->len)
		return MG_MP_NONE;
	return tag_type(r->p[r->off]);
}

int mg__mpr_peek_ext(const struct mg_mpr *r, int8_t *typep)
{
	struct tok t;

	if (r->err != 0 || tok_at(r->p, r->len, r->off, &t) != 0 || t.type != MG_MP_EXT)
		return MG_EDECODE;
	*typep = t.ext;
	return 0;
}

int mg__mpr_nil(struct mg_mpr *r)
{
	struct tok t;

	if (take(r, &t, MG_MP_NIL) == 0)
		r->off += t.size;
	return r->err;
}

int mg__mpr_bool(struct mg_mpr *r, bool *vp)
{
	struct tok t;

	if (take(r, &t, MG_MP_BOOL) == 0) {
		*vp = r->p[r->off] == 0xc3;
		r->off += t.size;
	}
	return r->err;
}

int mg__mpr_int(struct mg_mpr *r, int64_t *vp)
{
	struct tok t;

	if (take(r, &t, MG_MP_NONE) != 0)
		return r->err;
	if (t.type == MG_MP_INT)
		*vp = t.i;
	else if (t.type == MG_MP_UINT && t.u <= INT64_MAX)
		*vp = (int64_t)t.u;
	else
		return fail(r, MG_EDECODE);
	r->off += t.size;
	return 0;
}

int mg__mpr_uint(struct mg_mpr *r, uint64_t *vp)
{
	struct tok t;

	if (take(r, &t, MG_MP_NONE) != 0)
		return r->err;
	if (t.type == MG_MP_UINT)
		*vp = t.u;
	else if (t.type == MG_MP_INT && t.i >= 0)
		*vp = (uint64_t)t.i;
	else
		return fail(r, MG_EDECODE);
	r->off += t.size;
	return 0;
}

int mg__mpr_float(struct mg_mpr *r, float *vp)
{
	uint32_t bits;
	struct tok t;

	if (take(r, &t, MG_MP_FLOAT) == 0) {
		bits = mg__be32(t.body);
		memcpy(vp, &bits, sizeof(*vp));
		r->off += t.size;
	}
	return r->err;
}

int mg__mpr_double(struct mg_mpr *r, double *vp)
{
	uint64_t bits;
	uint32_t bits32;
	float f;
	struct tok t;

	if (take(r, &t, MG_MP_NONE) != 0)
		return r->err;
	if (t.type == MG_MP_FLOAT) {
		bits32 = mg__be32(t.body);
		memcpy(&f, &bits32, sizeof(f));
		*vp = f;
	} else if (t.type == MG_MP_DOUBLE) {
		bits = mg__be64(t.body);
		memcpy(vp, &bits, sizeof(*vp));
	} else {
		return fail(r, MG_EDECODE);
	}
	r->off += t.size;
	return 0;
}

int mg__mpr_str(struct mg_mpr *r, const char **pp, size_t *np)
{
	struct tok t;

	if (take(r, &t, MG_MP_STR) == 0) {
		*pp = (const char *)t.body;
		*np = (size_t)t.u;
		r->off += t.size;
	}
	return r->err;
}

int mg__mpr_bin(struct mg_mpr *r, const void **pp, size_t *np)
{
	struct tok t;

	if (take(r, &t, MG_MP_BIN) == 0) {
		*pp = t.body;
		*np = (size_t)t.u;
		r->off += t.size;
	}
	return r->err;
}

int mg__mpr_array(struct mg_mpr *r, size_t *countp)
{
	struct tok t;

	if (take(r, &t, MG_MP_ARRAY) == 0) {
		*countp = (size_t)t.u;
		r->off += t.size;
	}
	return r->err;
}

int mg__mpr_map(struct mg_mpr *r, size_t *pairsp)
{
	struct tok t;

	if (take(r, &t, MG_MP_MAP) == 0) {
		*pairsp = (size_t)t.u;
		r->off += t.size;
	}
	return r->err;
}

int mg__mpr_ext(struct mg_mpr *r, int8_t *typep, const void **pp, size_t *np)
{
	struct tok t;

	if (take(r, &t, MG_MP_EXT) == 0) {
		*typep = t.ext;
		*pp = t.body;
		*np = (size_t)t.u;
		r->off += t.size;
	}
	return r->err;
}

/* Skips with an explicit stack of "elements still to skip" per level, so
 * hostile nesting costs a bounded array, not the C stack.  A container at
 * the deepest level is refused even when empty, so depth means the same
 * thing whatever the counts. */
int mg__mpr_skip(struct mg_mpr *r)
{
	uint64_t pending[MG_MP_MAX_DEPTH + 1];
	size_t off = r->off;
	struct tok t;
	int d = 0, e;

	if (r->err != 0)
		return r->err;
	pending[0] = 1;
	while (d >= 0) {
		if (pending[d] == 0) {
			d--;
			continue;
		}
		pending[d]--;
		if ((e = tok_at(r->p, r->len, off, &t)) != 0)
			return fail(r, e);
		off += t.size;
		if (t.type != MG_MP_ARRAY && t.type != MG_MP_MAP)
			continue;
		if (d == MG_MP_MAX_DEPTH)
			return fail(r, MG_EDECODE);
		pending[++d] = t.type == MG_MP_MAP ? t.u * 2 : t.u;
	}
	r->off = off;
	return 0;
}

int mg__mpr_value(struct mg_mpr *r, const void **pp, size_t *np)
{
	size_t start = r->off;

	if (mg__mpr_skip(r) == 0) {
		*pp = r->p + start;
		*np = r->off - start;
	}
	return r->err;
}

int mg__mp_check_one(const void *p, size_t n)
{
	struct mg_mpr r;

	mg__mpr_init(&r, p, n);
	if (mg__mpr_skip(&r) != 0 || r.off != n)
		return MG_EDECODE;
	return 0;
}
