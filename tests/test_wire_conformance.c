/*
 * test_wire_conformance.c: our codec against Debian's msgpack-c, both ways.
 * Each value is encoded by both packers (the bytes must be identical: both
 * pick the smallest encoding), decoded by msgpack-c from our bytes and by
 * our reader from msgpack-c's bytes, and compared with what was meant.
 */
#include <msgpack.h>

#include "conformance/mpvalue.h"
#include "runner.h"
#include "wire/fmt.h"

/* Short names for the value tree of conformance/mpvalue.h. */
#define NIL MPV_NILV
#define BOOLV MPV_BOOLV
#define UINTV MPV_UINTV
#define INTV MPV_INTV
#define F32 MPV_F32V
#define F64 MPV_F64V
#define STRN MPV_STRN
#define STRV MPV_STRV
#define BINN MPV_BINN
#define EXTN MPV_EXTN
#define TSV MPV_TSV
#define ARR MPV_ARR
#define MAPV MPV_MAPV

static void theirs_write(msgpack_packer *pk, const struct mpv *v)
{
	msgpack_timestamp ts;
	size_t i;

	switch (v->k) {
	case MPV_NIL:
		msgpack_pack_nil(pk);
		break;
	case MPV_BOOL:
		v->u ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
		break;
	case MPV_UINT:
		msgpack_pack_uint64(pk, v->u);
		break;
	case MPV_INT:
		msgpack_pack_int64(pk, v->i);
		break;
	case MPV_F32:
		msgpack_pack_float(pk, (float)v->d);
		break;
	case MPV_F64:
		msgpack_pack_double(pk, v->d);
		break;
	case MPV_STR:
		msgpack_pack_str_with_body(pk, v->p, v->n);
		break;
	case MPV_BIN:
		msgpack_pack_bin_with_body(pk, v->p, v->n);
		break;
	case MPV_EXT:
		msgpack_pack_ext_with_body(pk, v->p, v->n, v->ext);
		break;
	case MPV_TS:
		ts.tv_sec = v->i;
		ts.tv_nsec = v->nsec;
		msgpack_pack_timestamp(pk, &ts);
		break;
	case MPV_ARRAY:
		msgpack_pack_array(pk, v->n);
		break;
	case MPV_MAP:
		msgpack_pack_map(pk, v->n);
		break;
	}
	for (i = 0; i < mpv_items(v); i++)
		theirs_write(pk, &v->items[i]);
}

/* Compares a msgpack-c object with the value meant; fails the case. */
static void check_theirs(const msgpack_object *o, const struct mpv *v)
{
	msgpack_timestamp ts;
	size_t i;

	switch (v->k) {
	case MPV_NIL:
		CHECK_EQ(o->type, MSGPACK_OBJECT_NIL);
		break;
	case MPV_BOOL:
		CHECK_EQ(o->type, MSGPACK_OBJECT_BOOLEAN);
		CHECK_EQ(o->via.boolean, v->u != 0);
		break;
	case MPV_UINT:
		CHECK_EQ(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
		CHECK_UINT(o->via.u64, ==, v->u);
		break;
	case MPV_INT:
		if (v->i >= 0) {
			CHECK_EQ(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
			CHECK_UINT(o->via.u64, ==, (uint64_t)v->i);
		} else {
			CHECK_EQ(o->type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
			CHECK_EQ(o->via.i64, v->i);
		}
		break;
	case MPV_F32:
		CHECK_EQ(o->type, MSGPACK_OBJECT_FLOAT32);
		CHECK(mpv_same_double(o->via.f64, (double)(float)v->d));
		break;
	case MPV_F64:
		CHECK_EQ(o->type, MSGPACK_OBJECT_FLOAT64);
		CHECK(mpv_same_double(o->via.f64, v->d));
		break;
	case MPV_STR:
		CHECK_EQ(o->type, MSGPACK_OBJECT_STR);
		CHECK_EQ(o->via.str.size, v->n);
		CHECK(v->n == 0 || memcmp(o->via.str.ptr, v->p, v->n) == 0);
		break;
	case MPV_BIN:
		CHECK_EQ(o->type, MSGPACK_OBJECT_BIN);
		CHECK_EQ(o->via.bin.size, v->n);
		CHECK(v->n == 0 || memcmp(o->via.bin.ptr, v->p, v->n) == 0);
		break;
	case MPV_EXT:
		CHECK_EQ(o->type, MSGPACK_OBJECT_EXT);
		CHECK_EQ(o->via.ext.type, v->ext);
		CHECK_EQ(o->via.ext.size, v->n);
		CHECK(v->n == 0 || memcmp(o->via.ext.ptr, v->p, v->n) == 0);
		break;
	case MPV_TS:
		CHECK(msgpack_object_to_timestamp(o, &ts));
		CHECK_EQ(ts.tv_sec, v->i);
		CHECK_EQ(ts.tv_nsec, v->nsec);
		break;
	case MPV_ARRAY:
		CHECK_EQ(o->type, MSGPACK_OBJECT_ARRAY);
		CHECK_EQ(o->via.array.size, v->n);
		for (i = 0; i < v->n; i++)
			check_theirs(&o->via.array.ptr[i], &v->items[i]);
		break;
	case MPV_MAP:
		CHECK_EQ(o->type, MSGPACK_OBJECT_MAP);
		CHECK_EQ(o->via.map.size, v->n);
		for (i = 0; i < v->n; i++) {
			check_theirs(&o->via.map.ptr[i].key, &v->items[2 * i]);
			check_theirs(&o->via.map.ptr[i].val, &v->items[2 * i + 1]);
		}
		break;
	}
}

/* Both directions for one value, plus identical bytes. */
static void conform(const struct mpv *v)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_unpacked up;
	struct mg_buf b;
	struct mg_mpw w;
	struct mg_mpr r;
	const char *why;
	size_t off = 0;

	mg__buf_init(&b, 1 << 26);
	mg__mpw_init(&w, &b);
	mpv_write(&w, v);
	CHECK_OK(w.err);

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	theirs_write(&pk, v);

	CHECK_EQ(b.len, sb.size);
	CHECK_MEM(b.data, sb.data, b.len);

	/* Ours -> msgpack-c. */
	msgpack_unpacked_init(&up);
	CHECK_EQ(msgpack_unpack_next(&up, (const char *)b.data, b.len, &off),
	         MSGPACK_UNPACK_SUCCESS);
	CHECK_EQ(off, b.len);
	check_theirs(&up.data, v);
	msgpack_unpacked_destroy(&up);

	/* msgpack-c -> ours. */
	mg__mpr_init(&r, sb.data, sb.size);
	if ((why = mpv_check(&r, v)) != NULL)
		mg_test_fail(__FILE__, __LINE__, "our reader on msgpack-c's bytes: %s", why);
	CHECK(mg__mpr_at_end(&r));
	mg__mpr_init(&r, sb.data, sb.size);
	CHECK_OK(mg__mpr_skip(&r));
	CHECK(mg__mpr_at_end(&r));

	msgpack_sbuffer_destroy(&sb);
	mg__buf_fini(&b);
}

/* ------------------------------------------------------------------------ */

TEST(conf_nil_bool)
{
	conform(&NIL);
	conform(&BOOLV(1));
	conform(&BOOLV(0));
}

TEST(conf_ints)
{
	static const uint64_t us[] = {
	        0,         1,     127,         128,           255,       256,
	        65535,     65536, 4294967295u, 4294967296ull, INT64_MAX, (uint64_t)INT64_MAX + 1,
	        UINT64_MAX};
	static const int64_t is[] = {0,
	                             1,
	                             127,
	                             128,
	                             255,
	                             256,
	                             65535,
	                             65536,
	                             4294967295ll,
	                             4294967296ll,
	                             INT64_MAX,
	                             -1,
	                             -31,
	                             -32,
	                             -33,
	                             -127,
	                             -128,
	                             -129,
	                             -32767,
	                             -32768,
	                             -32769,
	                             INT32_MIN,
	                             (int64_t)INT32_MIN - 1,
	                             -4294967296ll,
	                             INT64_MIN + 1,
	                             INT64_MIN};
	size_t k;

	for (k = 0; k < sizeof(us) / sizeof(us[0]); k++)
		conform(&UINTV(us[k]));
	for (k = 0; k < sizeof(is) / sizeof(is[0]); k++)
		conform(&INTV(is[k]));
}

TEST(conf_floats)
{
	static const double ds[] = {0.0,       -0.0,      1.5,
	                            -2.25,     0.1,       1e300,
	                            -1e-300,   5e-324,    3.4028234663852886e38,
	                            1.0 / 0.0, -1.0 / 0.0};
	size_t k;

	for (k = 0; k < sizeof(ds) / sizeof(ds[0]); k++) {
		conform(&F64(ds[k]));
		conform(&F32(ds[k]));
	}
	conform(&F64(__builtin_nan("")));
	conform(&F32(__builtin_nanf("")));
}

TEST(conf_str_bin_lengths)
{
	static const size_t lens[] = {0, 1, 31, 32, 255, 256, 65535, 65536, 70000};
	char *p = malloc(70000);
	size_t k, i;

	CHECK(p != NULL);
	for (i = 0; i < 70000; i++)
		p[i] = (char)(i * 31 + 7);
	for (k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		conform(&STRN(p, lens[k]));
		conform(&BINN(p, lens[k]));
	}
	conform(&STRV("héllo, wörld"));
	free(p);
}

TEST(conf_ext_lengths)
{
	static const size_t lens[] = {0, 1, 2, 3, 4, 5, 8, 15, 16, 17, 255, 256, 65535, 65536};
	static const int8_t types[] = {0, 1, 2, 3, 42, 127, -2, -128};
	char *p = malloc(65536);
	size_t k, t;

	CHECK(p != NULL);
	memset(p, 0x5c, 65536);
	for (k = 0; k < sizeof(lens) / sizeof(lens[0]); k++)
		for (t = 0; t < sizeof(types) / sizeof(types[0]); t++)
			conform(&EXTN(types[t], p, lens[k]));
	free(p);
}

TEST(conf_timestamps)
{
	static const struct {
		int64_t s;
		uint32_t ns;
	} ts[] = {
	        {0, 0},
	        {1, 0},
	        {4294967295ll, 0},
	        {4294967296ll, 0},
	        {0, 1},
	        {1, 999999999},
	        {17179869183ll, 999999999},
	        {17179869184ll, 0},
	        {-1, 0},
	        {-1, 999999999},
	        {INT64_MIN, 0},
	        {INT64_MAX, 999999999},
	        {1700000000, 123456789},
	};
	size_t k;

	for (k = 0; k < sizeof(ts) / sizeof(ts[0]); k++)
		conform(&TSV(ts[k].s, ts[k].ns));
}

TEST(conf_containers)
{
	static const size_t counts[] = {0, 1, 15, 16, 65535, 65536};
	struct mpv *items = malloc(2 * 65536 * sizeof(*items));
	size_t k, i;

	CHECK(items != NULL);
	for (i = 0; i < 2 * 65536; i++)
		items[i] = i % 3 == 0 ? NIL : i % 3 == 1 ? INTV(-(int64_t)i) : STRV("k");
	for (k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
		conform(&ARR(counts[k], items));
		conform(&MAPV(counts[k], items));
	}
	free(items);
}

TEST(conf_nested)
{
	const struct mpv leaf[] = {INTV(-5), STRV("deep"), TSV(1, 2)};
	const struct mpv inner[] = {ARR(3, leaf), MAPV(0, NULL), BINN("\0\1", 2)};
	const struct mpv kv[] = {STRV("a"),    ARR(3, inner), INTV(300),
	                         ARR(0, NULL), F32(0.5),      MAPV(1, kv)};
	const struct mpv top[] = {MAPV(2, kv), NIL, BOOLV(1), UINTV(UINT64_MAX)};
	const struct mpv *cur;
	struct mpv chain[40];
	int d;

	conform(&ARR(4, top));
	/* 32 levels: as deep as msgpack-c's default stack goes. */
	chain[0] = NIL;
	for (d = 1; d < 32; d++)
		chain[d] = ARR(1, &chain[d - 1]);
	cur = &chain[31];
	conform(cur);
}

/* The ext types mitogen-c gives meaning to, checked at the byte level on
 * msgpack-c's side. */
TEST(conf_mitogen_exts)
{
	struct mg_mp_error e = {{"KeyError", 8}, {"'x'", 3}, {"local.1", 7}, {"lookup", 6}};
	msgpack_unpacked up, body;
	struct mg_buf b;
	struct mg_mpw w;
	size_t off = 0, boff = 0;
	const msgpack_object *o;

	mg__buf_init(&b, 1024);
	mg__mpw_init(&w, &b);
	mg__mpw_context(&w, 0x01020304);
	mg__mpw_sender(&w, 7, 1003);
	mg__mpw_error(&w, &e);
	CHECK_OK(w.err);
	msgpack_unpacked_init(&up);

	CHECK_EQ(msgpack_unpack_next(&up, (const char *)b.data, b.len, &off),
	         MSGPACK_UNPACK_SUCCESS);
	CHECK_EQ(up.data.type, MSGPACK_OBJECT_EXT);
	CHECK_EQ(up.data.via.ext.type, 1);
	CHECK_EQ(up.data.via.ext.size, 4);
	CHECK_MEM(up.data.via.ext.ptr, "\x01\x02\x03\x04", 4);

	CHECK_EQ(msgpack_unpack_next(&up, (const char *)b.data, b.len, &off),
	         MSGPACK_UNPACK_SUCCESS);
	CHECK_EQ(up.data.via.ext.type, 2);
	CHECK_EQ(up.data.via.ext.size, 8);
	CHECK_MEM(up.data.via.ext.ptr, "\0\0\0\x07\0\0\x03\xeb", 8);

	CHECK_EQ(msgpack_unpack_next(&up, (const char *)b.data, b.len, &off),
	         MSGPACK_UNPACK_SUCCESS);
	CHECK_EQ(up.data.via.ext.type, 3);
	msgpack_unpacked_init(&body);
	CHECK_EQ(msgpack_unpack_next(&body, up.data.via.ext.ptr, up.data.via.ext.size, &boff),
	         MSGPACK_UNPACK_SUCCESS);
	CHECK_EQ(boff, up.data.via.ext.size);
	o = &body.data;
	CHECK_EQ(o->type, MSGPACK_OBJECT_ARRAY);
	CHECK_EQ(o->via.array.size, 4);
	CHECK_EQ(o->via.array.ptr[0].type, MSGPACK_OBJECT_STR);
	CHECK_MEM(o->via.array.ptr[0].via.str.ptr, "KeyError", 8);
	CHECK_MEM(o->via.array.ptr[2].via.str.ptr, "local.1", 7);
	CHECK_EQ(o->via.array.ptr[3].via.str.size, 6);
	CHECK_EQ(off, b.len);
	msgpack_unpacked_destroy(&body);
	msgpack_unpacked_destroy(&up);
	mg__buf_fini(&b);
}

static int pack(struct mg_buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = mg__fmt_vpack(b, fmt, &ap, NULL);
	va_end(ap);
	return r;
}

/* The format engine's output, read by msgpack-c. */
TEST(conf_fmt_output)
{
	struct timespec ts = {1700000000, 5};
	const struct mpv leaf[] = {STRV("k"), BINN("\x01", 1)};
	const struct mpv tuple[] = {INTV(-129),       STRV("s"), MAPV(1, leaf), TSV(1700000000, 5),
	                            F32(0.25),        F64(-0.5), NIL,           BOOLV(1),
	                            UINTV(UINT64_MAX)};
	msgpack_unpacked up;
	struct mg_buf b;
	size_t off = 0;

	mg__buf_init(&b, 1024);
	CHECK_OK(pack(&b, "(is{sy}tfdnbu)", (int64_t)-129, "s", "k", "\x01", (size_t)1, &ts, 0.25,
	              -0.5, 1, UINT64_MAX));
	msgpack_unpacked_init(&up);
	CHECK_EQ(msgpack_unpack_next(&up, (const char *)b.data, b.len, &off),
	         MSGPACK_UNPACK_SUCCESS);
	CHECK_EQ(off, b.len);
	check_theirs(&up.data, &ARR(9, tuple));
	msgpack_unpacked_destroy(&up);
	mg__buf_fini(&b);
}

/* A long mixed stream through msgpack-c's streaming unpacker. */
TEST(conf_stream)
{
	msgpack_unpacker u;
	msgpack_unpacked up;
	struct mg_buf b;
	struct mg_mpw w;
	int64_t k, count = 0;

	mg__buf_init(&b, 1 << 24);
	mg__mpw_init(&w, &b);
	for (k = -70000; k < 70000; k += 7) {
		mg__mpw_int(&w, k * k * k);
		mg__mpw_str(&w, "xyz", (size_t)(k & 3));
	}
	CHECK_OK(w.err);
	CHECK(msgpack_unpacker_init(&u, 1024));
	CHECK(msgpack_unpacker_reserve_buffer(&u, b.len));
	memcpy(msgpack_unpacker_buffer(&u), b.data, b.len);
	msgpack_unpacker_buffer_consumed(&u, b.len);
	msgpack_unpacked_init(&up);
	k = -70000;
	while (msgpack_unpacker_next(&u, &up) == MSGPACK_UNPACK_SUCCESS) {
		if (count++ % 2 == 0) {
			check_theirs(&up.data, &INTV(k * k * k));
		} else {
			check_theirs(&up.data, &STRN("xyz", (size_t)(k & 3)));
			k += 7;
		}
	}
	CHECK_EQ(count, 2 * 20000);
	msgpack_unpacked_destroy(&up);
	msgpack_unpacker_destroy(&u);
	mg__buf_fini(&b);
}
