/*
 * mpvalue.c: see mpvalue.h.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mpvalue.h"

size_t mpv_items(const struct mpv *v)
{
	return v->k == MPV_MAP ? 2 * v->n : v->k == MPV_ARRAY ? v->n : 0;
}

void mpv_write(struct mg_mpw *w, const struct mpv *v)
{
	size_t i;

	switch (v->k) {
	case MPV_NIL:
		mg__mpw_nil(w);
		break;
	case MPV_BOOL:
		mg__mpw_bool(w, v->u != 0);
		break;
	case MPV_UINT:
		mg__mpw_uint(w, v->u);
		break;
	case MPV_INT:
		mg__mpw_int(w, v->i);
		break;
	case MPV_F32:
		mg__mpw_float(w, (float)v->d);
		break;
	case MPV_F64:
		mg__mpw_double(w, v->d);
		break;
	case MPV_STR:
		mg__mpw_str(w, v->p, v->n);
		break;
	case MPV_BIN:
		mg__mpw_bin(w, v->p, v->n);
		break;
	case MPV_EXT:
		mg__mpw_ext(w, v->ext, v->p, v->n);
		break;
	case MPV_TS:
		mg__mpw_timestamp(w, v->i, v->nsec);
		break;
	case MPV_ARRAY:
		mg__mpw_array(w, v->n);
		break;
	case MPV_MAP:
		mg__mpw_map(w, v->n);
		break;
	}
	for (i = 0; i < mpv_items(v); i++)
		mpv_write(w, &v->items[i]);
}

bool mpv_same_double(double a, double b)
{
	return memcmp(&a, &b, sizeof(a)) == 0 || (a != a && b != b);
}

static char why[200];

#define DIFF(...) (snprintf(why, sizeof(why), __VA_ARGS__), why)

static bool same_bytes(const void *a, size_t an, const void *b, size_t bn)
{
	return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

const char *mpv_check(struct mg_mpr *r, const struct mpv *v)
{
	static const enum mg_mp_type want[] = {
	        [MPV_NIL] = MG_MP_NIL, [MPV_BOOL] = MG_MP_BOOL,   [MPV_UINT] = MG_MP_UINT,
	        [MPV_INT] = MG_MP_INT, [MPV_F32] = MG_MP_FLOAT,   [MPV_F64] = MG_MP_DOUBLE,
	        [MPV_STR] = MG_MP_STR, [MPV_BIN] = MG_MP_BIN,     [MPV_EXT] = MG_MP_EXT,
	        [MPV_TS] = MG_MP_EXT,  [MPV_ARRAY] = MG_MP_ARRAY, [MPV_MAP] = MG_MP_MAP,
	};
	enum mg_mp_type t = want[v->k], got = mg__mpr_peek(r);
	const char *s, *e;
	const void *p;
	size_t n, i, at = r->off;
	uint64_t u;
	int64_t iv;
	uint32_t nsec;
	double d;
	float f;
	bool b;
	int8_t type;

	if (v->k == MPV_INT && v->i >= 0)
		t = MG_MP_UINT;
	if (got != t)
		return DIFF("at byte %zu: type %d, want %d", at, (int)got, (int)t);
	switch (v->k) {
	case MPV_NIL:
		mg__mpr_nil(r);
		break;
	case MPV_BOOL:
		if (mg__mpr_bool(r, &b) == 0 && b != (v->u != 0))
			return DIFF("at byte %zu: bool %d", at, b);
		break;
	case MPV_UINT:
		if (mg__mpr_uint(r, &u) == 0 && u != v->u)
			return DIFF("at byte %zu: %" PRIu64 ", want %" PRIu64, at, u, v->u);
		break;
	case MPV_INT:
		if (mg__mpr_int(r, &iv) == 0 && iv != v->i)
			return DIFF("at byte %zu: %" PRId64 ", want %" PRId64, at, iv, v->i);
		break;
	case MPV_F32:
		if (mg__mpr_float(r, &f) == 0 && !mpv_same_double(f, (double)(float)v->d))
			return DIFF("at byte %zu: %a, want %a", at, (double)f, v->d);
		break;
	case MPV_F64:
		if (mg__mpr_double(r, &d) == 0 && !mpv_same_double(d, v->d))
			return DIFF("at byte %zu: %a, want %a", at, d, v->d);
		break;
	case MPV_STR:
		if (mg__mpr_str(r, &s, &n) == 0 && !same_bytes(s, n, v->p, v->n))
			return DIFF("at byte %zu: str of %zu bytes differs", at, n);
		break;
	case MPV_BIN:
		if (mg__mpr_bin(r, &p, &n) == 0 && !same_bytes(p, n, v->p, v->n))
			return DIFF("at byte %zu: bin of %zu bytes differs", at, n);
		break;
	case MPV_EXT:
		if (mg__mpr_ext(r, &type, &p, &n) == 0 &&
		    (type != v->ext || !same_bytes(p, n, v->p, v->n)))
			return DIFF("at byte %zu: ext %d of %zu bytes differs", at, type, n);
		break;
	case MPV_TS:
		if (mg__mpr_timestamp(r, &iv, &nsec) == 0 && (iv != v->i || nsec != v->nsec))
			return DIFF("at byte %zu: timestamp %" PRId64 ".%09u", at, iv, nsec);
		break;
	case MPV_ARRAY:
		if (mg__mpr_array(r, &n) == 0 && n != v->n)
			return DIFF("at byte %zu: array of %zu, want %zu", at, n, v->n);
		break;
	case MPV_MAP:
		if (mg__mpr_map(r, &n) == 0 && n != v->n)
			return DIFF("at byte %zu: map of %zu, want %zu", at, n, v->n);
		break;
	}
	if (r->err != 0)
		return DIFF("at byte %zu: error %d", at, r->err);
	for (i = 0; i < mpv_items(v); i++)
		if ((e = mpv_check(r, &v->items[i])) != NULL)
			return e;
	return NULL;
}

/* A tiny appender over a fixed buffer that remembers overflowing. */
struct out {
	char *p;
	size_t len, cap;
	bool full;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len)
		o->full = true;
	else
		o->len += (size_t)n;
}

static void put_hex(struct out *o, const char *p, size_t n)
{
	size_t i;

	put(o, "bytes.fromhex('");
	for (i = 0; i < n; i++)
		put(o, "%02x", (unsigned char)p[i]);
	put(o, "')");
}

static void put_double(struct out *o, double d)
{
	if (d != d)
		put(o, "float('nan')");
	else if (d == 1.0 / 0.0)
		put(o, "float('inf')");
	else if (d == -1.0 / 0.0)
		put(o, "float('-inf')");
	else
		put(o, "float.fromhex('%a')", d);
}

static void python(struct out *o, const struct mpv *v)
{
	size_t i;

	switch (v->k) {
	case MPV_NIL:
		put(o, "None");
		break;
	case MPV_BOOL:
		put(o, v->u ? "True" : "False");
		break;
	case MPV_UINT:
		put(o, "%" PRIu64, v->u);
		break;
	case MPV_INT:
		put(o, "%" PRId64, v->i);
		break;
	case MPV_F32:
		put_double(o, (double)(float)v->d);
		break;
	case MPV_F64:
		put_double(o, v->d);
		break;
	case MPV_STR:
		put_hex(o, v->p, v->n);
		put(o, ".decode()");
		break;
	case MPV_BIN:
		put_hex(o, v->p, v->n);
		break;
	case MPV_EXT:
		put(o, "ExtType(%d, ", v->ext);
		put_hex(o, v->p, v->n);
		put(o, ")");
		break;
	case MPV_TS:
		put(o, "Timestamp(%" PRId64 ", %u)", v->i, v->nsec);
		break;
	case MPV_ARRAY:
		put(o, "[");
		for (i = 0; i < v->n; i++) {
			python(o, &v->items[i]);
			put(o, ", ");
		}
		put(o, "]");
		break;
	case MPV_MAP:
		put(o, "{");
		for (i = 0; i < v->n; i++) {
			python(o, &v->items[2 * i]);
			put(o, ": ");
			python(o, &v->items[2 * i + 1]);
			put(o, ", ");
		}
		put(o, "}");
		break;
	}
}

int mpv_python(const struct mpv *v, char *out, size_t cap)
{
	struct out o = {out, 0, cap, cap == 0};

	if (cap > 0)
		out[0] = '\0';
	python(&o, v);
	return o.full ? -1 : 0;
}
