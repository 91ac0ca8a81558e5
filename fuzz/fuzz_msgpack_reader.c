/*
 * fuzz_msgpack_reader.c: the reader over arbitrary bytes.
 *
 * Every value that skips cleanly is also read through the typed accessors
 * and written back with the writer.  That copy is canonical (smallest
 * encodings), so it is never longer than the input, and copying it again
 * must give the very same bytes.  Each accessor is also tried at every
 * value, and must either consume exactly what skip does or change nothing.
 */
#include <string.h>

#include "fuzz.h"
#include "wire/msgpack.h"

/* Copies one value; the caller made sure it skips, so it is complete and
 * at most MG_MP_MAX_DEPTH deep, which bounds the recursion. */
static void copy_value(struct mg_mpr *r, struct mg_mpw *w, int depth)
{
	struct mg_mpr t;
	struct mg_mp_error e;
	const void *p;
	const char *s;
	size_t n, i;
	int64_t iv, sec;
	uint64_t uv;
	uint32_t nsec, ctx, handle;
	double d;
	float f;
	bool b;
	int8_t type;

	FUZZ_ASSERT(depth <= MG_MP_MAX_DEPTH);
	switch (mg__mpr_peek(r)) {
	case MG_MP_NIL:
		mg__mpr_nil(r);
		mg__mpw_nil(w);
		break;
	case MG_MP_BOOL:
		mg__mpr_bool(r, &b);
		mg__mpw_bool(w, b);
		break;
	case MG_MP_UINT:
		mg__mpr_uint(r, &uv);
		mg__mpw_uint(w, uv);
		break;
	case MG_MP_INT:
		mg__mpr_int(r, &iv);
		mg__mpw_int(w, iv);
		break;
	case MG_MP_FLOAT:
		mg__mpr_float(r, &f);
		mg__mpw_float(w, f);
		break;
	case MG_MP_DOUBLE:
		mg__mpr_double(r, &d);
		mg__mpw_double(w, d);
		break;
	case MG_MP_STR:
		mg__mpr_str(r, &s, &n);
		mg__mpw_str(w, s, n);
		break;
	case MG_MP_BIN:
		mg__mpr_bin(r, &p, &n);
		mg__mpw_bin(w, p, n);
		break;
	case MG_MP_ARRAY:
		mg__mpr_array(r, &n);
		mg__mpw_array(w, n);
		for (i = 0; i < n && r->err == 0; i++)
			copy_value(r, w, depth + 1);
		break;
	case MG_MP_MAP:
		mg__mpr_map(r, &n);
		mg__mpw_map(w, n);
		for (i = 0; i < 2 * n && r->err == 0; i++)
			copy_value(r, w, depth + 1);
		break;
	case MG_MP_EXT:
		/* The known ext types are rewritten through their own codecs
		 * when they are well formed. */
		t = *r;
		if (mg__mpr_timestamp(&t, &sec, &nsec) == 0) {
			mg__mpw_timestamp(w, sec, nsec);
		} else if ((t = *r, mg__mpr_context(&t, &ctx)) == 0) {
			mg__mpw_context(w, ctx);
		} else if ((t = *r, mg__mpr_sender(&t, &ctx, &handle)) == 0) {
			mg__mpw_sender(w, ctx, handle);
		} else if ((t = *r, mg__mpr_error(&t, &e)) == 0) {
			mg__mpw_error(w, &e);
		} else {
			t = *r;
			mg__mpr_ext(&t, &type, &p, &n);
			mg__mpw_ext(w, type, p, n);
		}
		*r = t;
		break;
	case MG_MP_NONE:
		FUZZ_ASSERT(!"skip accepted a value peek cannot name");
	}
	FUZZ_ASSERT(r->err == 0);
	FUZZ_ASSERT(w->err == 0);
}

/* Tries each accessor at r's position on a copy of the reader. */
static void try_accessors(const struct mg_mpr *r, size_t value_len)
{
	struct mg_mpr t;
	struct mg_mp_error e;
	const void *p;
	const char *s;
	size_t n;
	int64_t iv;
	uint64_t uv;
	uint32_t u32, nsec;
	double d;
	float f;
	bool b;
	int8_t type;
	int k, err;

	if (mg__mpr_peek_ext(r, &type) == 0)
		FUZZ_ASSERT(mg__mpr_peek(r) == MG_MP_EXT);
	for (k = 0; k < 17; k++) {
		t = *r;
		switch (k) {
		case 0:
			err = mg__mpr_nil(&t);
			break;
		case 1:
			err = mg__mpr_bool(&t, &b);
			break;
		case 2:
			err = mg__mpr_int(&t, &iv);
			break;
		case 3:
			err = mg__mpr_uint(&t, &uv);
			break;
		case 4:
			err = mg__mpr_float(&t, &f);
			break;
		case 5:
			err = mg__mpr_double(&t, &d);
			break;
		case 6:
			err = mg__mpr_str(&t, &s, &n);
			break;
		case 7:
			err = mg__mpr_bin(&t, &p, &n);
			break;
		case 8:
			err = mg__mpr_ext(&t, &type, &p, &n);
			break;
		case 9:
			err = mg__mpr_timestamp(&t, &iv, &nsec);
			break;
		case 10:
			err = mg__mpr_context(&t, &u32);
			break;
		case 11:
			err = mg__mpr_sender(&t, &u32, &nsec);
			break;
		case 12:
			err = mg__mpr_error(&t, &e);
			break;
		case 13:
			err = mg__mpr_value(&t, &p, &n);
			break;
		case 14:
			err = mg__mpr_skip(&t);
			break;
		case 15:
			err = mg__mpr_array(&t, &n);
			break;
		default:
			err = mg__mpr_map(&t, &n);
			break;
		}
		if (err != 0) {
			FUZZ_ASSERT(err == MG_EDECODE && t.err == err && t.off == r->off);
			continue;
		}
		if (k == 8) {
			int8_t peeked;

			/* peek_ext agrees with the ext reader. */
			FUZZ_ASSERT(mg__mpr_peek_ext(r, &peeked) == 0 && peeked == type);
		}
		if (k == 15 || k == 16) {
			/* A header: the elements follow, and fit what is left. */
			FUZZ_ASSERT(n <= t.len - t.off);
			continue;
		}
		FUZZ_ASSERT(t.off - r->off == value_len);
		if (k == 9) {
			FUZZ_ASSERT(nsec < 1000000000u);
		}
		if (k == 12) {
			FUZZ_ASSERT(e.type.p >= (const char *)r->p &&
			            e.function.p + e.function.n <= (const char *)r->p + t.off);
		}
	}
}

int mg_fuzz_msgpack_reader(const uint8_t *data, size_t size)
{
	struct mg_buf once, twice;
	struct mg_mpw w;
	struct mg_mpr r, c;
	size_t start, len, values = 0;

	mg__buf_init(&once, 4 * size + 64);
	mg__buf_init(&twice, 4 * size + 64);
	mg__mpr_init(&r, data, size);
	mg__mpw_init(&w, &once);
	while (!mg__mpr_at_end(&r)) {
		start = r.off;
		if (mg__mpr_skip(&r) != 0) {
			FUZZ_ASSERT(r.err == MG_EDECODE && r.off == start);
			break;
		}
		len = r.off - start;
		FUZZ_ASSERT(len > 0);
		FUZZ_ASSERT(mg__mp_check_one(data + start, len) == 0);
		c = r;
		c.off = start;
		/* Every accessor on every value would spend the run on long
		 * inputs of tiny values; the first few show what there is. */
		if (values++ < 32)
			try_accessors(&c, len);
		copy_value(&c, &w, 0);
		FUZZ_ASSERT(c.off == r.off);
	}
	/* The canonical copy is no longer than what it copied, and is a
	 * fixed point. */
	FUZZ_ASSERT(once.len <= r.off);
	mg__mpr_init(&c, once.data, once.len);
	mg__mpw_init(&w, &twice);
	while (!mg__mpr_at_end(&c))
		copy_value(&c, &w, 0);
	FUZZ_ASSERT(twice.len == once.len);
	FUZZ_ASSERT(once.len == 0 || memcmp(once.data, twice.data, once.len) == 0);
	mg__buf_fini(&once);
	mg__buf_fini(&twice);
	return 0;
}

#ifndef MG_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return mg_fuzz_msgpack_reader(data, size);
}
#endif
