/*
 * test_wire_msgpack.c: the MessagePack writer and reader, byte for byte at
 * the boundary of every encoding, and the reader's refusals.
 */
#include <errno.h>
#include <math.h>

#include "runner.h"
#include "wire/msgpack.h"

static struct mg_buf B;
static struct mg_mpw W;
static uint8_t *R_bytes;
static struct mg_mpr R;

static size_t unhex(const char *h, uint8_t *out)
{
	size_t n = 0;
	unsigned v;

	for (; *h != '\0'; h++) {
		if (*h == ' ')
			continue;
		CHECK(h[1] != '\0' && sscanf(h, "%2x", &v) == 1);
		out[n++] = (uint8_t)v;
		h++;
	}
	return n;
}

static struct mg_mpw *wstart(void)
{
	mg__buf_fini(&B);
	mg__buf_init(&B, 1 << 24);
	mg__mpw_init(&W, &B);
	return &W;
}

/* The whole buffer equals hex. */
static void expect_bytes(const char *hex, int line)
{
	uint8_t want[256];
	size_t n = unhex(hex, want);

	if (B.len != n || memcmp(B.data, want, n) != 0) {
		char got[600];
		size_t i, o = 0;

		for (i = 0; i < B.len && o + 3 < sizeof(got); i++)
			o += (size_t)snprintf(got + o, sizeof(got) - o, "%02x", B.data[i]);
		mg_test_fail(__FILE__, line, "encoding\n    got:  %s\n    want: %s", got, hex);
	}
}

/* The buffer starts with hex and is total bytes long. */
static void expect_prefix(const char *hex, size_t total, int line)
{
	uint8_t want[32];
	size_t n = unhex(hex, want);

	if (B.len != total || memcmp(B.data, want, n) != 0)
		mg_test_fail(__FILE__, line, "prefix %s, %zu bytes: got %zu bytes", hex, total,
		             B.len);
}

#define ENC(call, hex)                       \
	do {                                 \
		struct mg_mpw *w = wstart(); \
		call;                        \
		CHECK_OK(w->err);            \
		expect_bytes(hex, __LINE__); \
	} while (0)

/* A reader over an exact-size heap copy, so ASan sees any overread. */
static struct mg_mpr *rstart_mem(const void *p, size_t n)
{
	free(R_bytes);
	R_bytes = malloc(n ? n : 1);
	CHECK(R_bytes != NULL);
	memcpy(R_bytes, p, n);
	mg__mpr_init(&R, R_bytes, n);
	return &R;
}

static struct mg_mpr *rstart(const char *hex)
{
	uint8_t b[256];

	return rstart_mem(b, unhex(hex, b));
}

/* A reader over what the writer just produced. */
static struct mg_mpr *rback(void)
{
	return rstart_mem(B.data, B.len);
}

TEST(mp_nil_bool)
{
	bool v = false;

	ENC(mg__mpw_nil(w), "c0");
	ENC(mg__mpw_bool(w, false), "c2");
	ENC(mg__mpw_bool(w, true), "c3");
	CHECK_OK(mg__mpr_nil(rstart("c0")));
	CHECK(mg__mpr_at_end(&R));
	CHECK_OK(mg__mpr_bool(rstart("c3"), &v));
	CHECK(v);
	CHECK_OK(mg__mpr_bool(rstart("c2"), &v));
	CHECK(!v);
	CHECK_EQ(mg__mpr_bool(rstart("c0"), &v), MG_EDECODE);
	CHECK_EQ(mg__mpr_nil(rstart("c2")), MG_EDECODE);
	CHECK_EQ(mg__mpr_nil(rstart("")), MG_EDECODE);
}

static const struct {
	uint64_t v;
	const char *hex;
} uints[] = {
        {0, "00"},
        {1, "01"},
        {127, "7f"},
        {128, "cc80"},
        {255, "ccff"},
        {256, "cd0100"},
        {65535, "cdffff"},
        {65536, "ce00010000"},
        {4294967295u, "ceffffffff"},
        {4294967296ull, "cf0000000100000000"},
        {INT64_MAX, "cf7fffffffffffffff"},
        {(uint64_t)INT64_MAX + 1, "cf8000000000000000"},
        {UINT64_MAX, "cfffffffffffffffff"},
};

static const struct {
	int64_t v;
	const char *hex;
} ints[] = {
        {-1, "ff"},
        {-32, "e0"},
        {-33, "d0df"},
        {-127, "d081"},
        {-128, "d080"},
        {-129, "d1ff7f"},
        {-255, "d1ff01"},
        {-256, "d1ff00"},
        {-32767, "d18001"},
        {-32768, "d18000"},
        {-32769, "d2ffff7fff"},
        {-65536, "d2ffff0000"},
        {INT32_MIN, "d280000000"},
        {(int64_t)INT32_MIN - 1, "d3ffffffff7fffffff"},
        {-4294967296ll, "d3ffffffff00000000"},
        {INT64_MIN + 1, "d38000000000000001"},
        {INT64_MIN, "d38000000000000000"},
};

TEST(mp_uint_boundaries)
{
	uint64_t u;
	int64_t i;
	size_t k;

	for (k = 0; k < sizeof(uints) / sizeof(uints[0]); k++) {
		ENC(mg__mpw_uint(w, uints[k].v), uints[k].hex);
		CHECK_OK(mg__mpr_uint(rback(), &u));
		CHECK_UINT(u, ==, uints[k].v);
		CHECK(mg__mpr_at_end(&R));
		CHECK_EQ(mg__mpr_peek(rback()), MG_MP_UINT);
		if (uints[k].v <= INT64_MAX) {
			/* The signed writer picks the same unsigned forms. */
			ENC(mg__mpw_int(w, (int64_t)uints[k].v), uints[k].hex);
			CHECK_OK(mg__mpr_int(rback(), &i));
			CHECK_EQ(i, (int64_t)uints[k].v);
		} else {
			CHECK_EQ(mg__mpr_int(rback(), &i), MG_EDECODE);
			CHECK_EQ(R.off, 0);
		}
	}
}

TEST(mp_int_boundaries)
{
	uint64_t u = 7;
	int64_t i;
	size_t k;

	for (k = 0; k < sizeof(ints) / sizeof(ints[0]); k++) {
		ENC(mg__mpw_int(w, ints[k].v), ints[k].hex);
		CHECK_OK(mg__mpr_int(rback(), &i));
		CHECK_EQ(i, ints[k].v);
		CHECK(mg__mpr_at_end(&R));
		CHECK_EQ(mg__mpr_peek(rback()), MG_MP_INT);
		CHECK_EQ(mg__mpr_uint(rback(), &u), MG_EDECODE);
		CHECK_EQ(u, 7); /* untouched */
	}
}

/* Readers take any encoding whose value fits, not just the smallest. */
TEST(mp_int_noncanonical_accepted)
{
	static const char *five[] = {
	        "05",   "cc05",   "cd0005",     "ce00000005",        "cf0000000000000005",
	        "d005", "d10005", "d200000005", "d30000000000000005"};
	uint64_t u;
	int64_t i;
	size_t k;

	for (k = 0; k < sizeof(five) / sizeof(five[0]); k++) {
		CHECK_OK(mg__mpr_int(rstart(five[k]), &i));
		CHECK_EQ(i, 5);
		CHECK_OK(mg__mpr_uint(rstart(five[k]), &u));
		CHECK_EQ(u, 5);
	}
	CHECK_OK(mg__mpr_int(rstart("d3ffffffffffffffff"), &i));
	CHECK_EQ(i, -1);
	CHECK_OK(mg__mpr_int(rstart("d0ff"), &i));
	CHECK_EQ(i, -1);
	CHECK_OK(mg__mpr_int(rstart("d1fffe"), &i));
	CHECK_EQ(i, -2);
	CHECK_OK(mg__mpr_int(rstart("d2fffffffd"), &i));
	CHECK_EQ(i, -3);
	CHECK_OK(mg__mpr_uint(rstart("d37fffffffffffffff"), &u));
	CHECK_UINT(u, ==, INT64_MAX);
	CHECK_EQ(mg__mpr_int(rstart("c0"), &i), MG_EDECODE);
	CHECK_EQ(mg__mpr_int(rstart("ca3f800000"), &i), MG_EDECODE);
	CHECK_EQ(mg__mpr_uint(rstart("a0"), &u), MG_EDECODE);
}

TEST(mp_floats)
{
	float f = 0;
	double d = 0;

	ENC(mg__mpw_float(w, 1.5f), "ca3fc00000");
	ENC(mg__mpw_float(w, -0.0f), "ca80000000");
	ENC(mg__mpw_float(w, INFINITY), "ca7f800000");
	ENC(mg__mpw_double(w, 1.5), "cb3ff8000000000000");
	ENC(mg__mpw_double(w, -2.0), "cbc000000000000000");
	ENC(mg__mpw_double(w, 0.1), "cb3fb999999999999a");
	ENC(mg__mpw_double(w, -INFINITY), "cbfff0000000000000");
	ENC(mg__mpw_double(w, 5e-324), "cb0000000000000001");

	CHECK_OK(mg__mpr_float(rstart("ca3fc00000"), &f));
	CHECK(f == 1.5f);
	CHECK_OK(mg__mpr_double(rstart("ca3fc00000"), &d));
	CHECK(d == 1.5);
	CHECK_OK(mg__mpr_double(rstart("cb3fb999999999999a"), &d));
	CHECK(d == 0.1);
	CHECK_OK(mg__mpr_double(rstart("cb7ff8000000000000"), &d));
	CHECK(isnan(d));
	CHECK_OK(mg__mpr_float(rstart("ca7fc00000"), &f));
	CHECK(isnan(f));
	f = 9;
	CHECK_EQ(mg__mpr_float(rstart("cb3ff8000000000000"), &f), MG_EDECODE);
	CHECK(f == 9);
	CHECK_EQ(mg__mpr_double(rstart("01"), &d), MG_EDECODE);
	CHECK_EQ(mg__mpr_double(rstart("ca3fc000"), &d), MG_EDECODE);
	CHECK_EQ(mg__mpr_double(rstart("cb3ff80000000000"), &d), MG_EDECODE);
	CHECK_EQ(mg__mpr_peek(rstart("ca")), MG_MP_FLOAT);
	CHECK_EQ(mg__mpr_peek(rstart("cb")), MG_MP_DOUBLE);
}

/* Writes a str or bin of n bytes of pattern, checks the header and reads
 * it back as a view. */
static void blob(int is_str, size_t n, const char *hdr_hex, size_t hdr_len, int line)
{
	char *data = malloc(n ? n : 1);
	const void *v;
	const char *s;
	size_t got, i;

	CHECK(data != NULL);
	for (i = 0; i < n; i++)
		data[i] = (char)('a' + i % 26);
	wstart();
	if (is_str)
		mg__mpw_str(&W, data, n);
	else
		mg__mpw_bin(&W, data, n);
	CHECK_OK(W.err);
	expect_prefix(hdr_hex, hdr_len + n, line);
	CHECK_MEM(B.data + hdr_len, data, n);
	if (is_str) {
		CHECK_OK(mg__mpr_str(rback(), &s, &got));
		v = s;
	} else {
		CHECK_OK(mg__mpr_bin(rback(), &v, &got));
	}
	CHECK_EQ(got, n);
	CHECK(v == R_bytes + hdr_len);
	CHECK_MEM(v, data, n);
	CHECK_EQ(mg__mpr_peek(rback()), is_str ? MG_MP_STR : MG_MP_BIN);
	/* Every proper prefix is truncated. */
	CHECK_EQ(mg__mpr_skip(rstart_mem(B.data, B.len - 1)), MG_EDECODE);
	CHECK_EQ(mg__mpr_skip(rstart_mem(B.data, hdr_len - 1)), MG_EDECODE);
	free(data);
}

TEST(mp_str_boundaries)
{
	blob(1, 0, "a0", 1, __LINE__);
	blob(1, 1, "a1", 1, __LINE__);
	blob(1, 31, "bf", 1, __LINE__);
	blob(1, 32, "d920", 2, __LINE__);
	blob(1, 255, "d9ff", 2, __LINE__);
	blob(1, 256, "da0100", 3, __LINE__);
	blob(1, 65535, "daffff", 3, __LINE__);
	blob(1, 65536, "db00010000", 5, __LINE__);
	blob(1, 100000, "db000186a0", 5, __LINE__);
	ENC(mg__mpw_str(w, "hi", 2), "a26869");
	ENC(mg__mpw_str(w, NULL, 0), "a0");
}

TEST(mp_bin_boundaries)
{
	blob(0, 0, "c400", 2, __LINE__);
	blob(0, 1, "c401", 2, __LINE__);
	blob(0, 31, "c41f", 2, __LINE__);
	blob(0, 32, "c420", 2, __LINE__);
	blob(0, 255, "c4ff", 2, __LINE__);
	blob(0, 256, "c50100", 3, __LINE__);
	blob(0, 65535, "c5ffff", 3, __LINE__);
	blob(0, 65536, "c600010000", 5, __LINE__);
	ENC(mg__mpw_bin(w, "\x00\xff", 2), "c40200ff");
}

TEST(mp_str_bin_not_interchangeable)
{
	const void *v;
	const char *s;
	size_t n;

	CHECK_EQ(mg__mpr_bin(rstart("a26869"), &v, &n), MG_EDECODE);
	CHECK_EQ(mg__mpr_str(rstart("c4026869"), &s, &n), MG_EDECODE);
	/* A length longer than the data, at every width. */
	CHECK_EQ(mg__mpr_str(rstart("a36869"), &s, &n), MG_EDECODE);
	CHECK_EQ(mg__mpr_str(rstart("d9036869"), &s, &n), MG_EDECODE);
	CHECK_EQ(mg__mpr_str(rstart("daffff6869"), &s, &n), MG_EDECODE);
	CHECK_EQ(mg__mpr_str(rstart("dbffffffff6869"), &s, &n), MG_EDECODE);
	CHECK_EQ(mg__mpr_bin(rstart("c6ffffffff00"), &v, &n), MG_EDECODE);
	CHECK_EQ(mg__mpr_bin(rstart("c5"), &v, &n), MG_EDECODE);
	CHECK_EQ(R.off, 0);
}

static void container(int is_map, size_t n, const char *hex, int line)
{
	size_t got = 0, i;

	wstart();
	if (is_map)
		mg__mpw_map(&W, n);
	else
		mg__mpw_array(&W, n);
	CHECK_OK(W.err);
	expect_bytes(hex, line);
	/* The elements, so the count is believable to the reader. */
	for (i = 0; i < (is_map ? 2 * n : n); i++)
		mg__mpw_nil(&W);
	if (is_map) {
		CHECK_OK(mg__mpr_map(rback(), &got));
		CHECK_EQ(mg__mpr_peek(rback()), MG_MP_MAP);
	} else {
		CHECK_OK(mg__mpr_array(rback(), &got));
		CHECK_EQ(mg__mpr_peek(rback()), MG_MP_ARRAY);
	}
	CHECK_EQ(got, n);
	CHECK_OK(mg__mpr_skip(rback()));
	CHECK(mg__mpr_at_end(&R));
	/* One element short: the header itself is refused. */
	if (n > 0) {
		if (is_map)
			CHECK_EQ(mg__mpr_map(rstart_mem(B.data, B.len - 2), &got), MG_EDECODE);
		else
			CHECK_EQ(mg__mpr_array(rstart_mem(B.data, B.len - 1), &got), MG_EDECODE);
	}
}

TEST(mp_array_map_boundaries)
{
	container(0, 0, "90", __LINE__);
	container(0, 1, "91", __LINE__);
	container(0, 15, "9f", __LINE__);
	container(0, 16, "dc0010", __LINE__);
	container(0, 65535, "dcffff", __LINE__);
	container(0, 65536, "dd00010000", __LINE__);
	container(1, 0, "80", __LINE__);
	container(1, 15, "8f", __LINE__);
	container(1, 16, "de0010", __LINE__);
	container(1, 65535, "deffff", __LINE__);
	container(1, 65536, "df00010000", __LINE__);
}

TEST(mp_counts_bounded_by_data)
{
	size_t n = 77;

	CHECK_EQ(mg__mpr_array(rstart("ddffffffff"), &n), MG_EDECODE);
	CHECK_EQ(mg__mpr_map(rstart("dfffffffff"), &n), MG_EDECODE);
	CHECK_EQ(mg__mpr_array(rstart("9f"), &n), MG_EDECODE);
	CHECK_EQ(mg__mpr_map(rstart("82c0c0c0"), &n), MG_EDECODE);
	CHECK_EQ(n, 77);
	CHECK_OK(mg__mpr_map(rstart("82c0c0c0c0"), &n));
	CHECK_EQ(n, 2);
	CHECK_EQ(mg__mpr_array(rstart("dc00"), &n), MG_EDECODE);
	CHECK_EQ(mg__mpr_array(rstart("dd000000"), &n), MG_EDECODE);
}

static void ext(size_t n, const char *hdr_hex, size_t hdr_len, int line)
{
	uint8_t *data = malloc(n ? n : 1);
	const void *v;
	size_t got, i;
	int8_t type;

	CHECK(data != NULL);
	for (i = 0; i < n; i++)
		data[i] = (uint8_t)i;
	wstart();
	mg__mpw_ext(&W, 42, data, n);
	CHECK_OK(W.err);
	expect_prefix(hdr_hex, hdr_len + n, line);
	CHECK_EQ(B.data[hdr_len - 1], 42);
	CHECK_OK(mg__mpr_ext(rback(), &type, &v, &got));
	CHECK_EQ(type, 42);
	CHECK_EQ(got, n);
	CHECK_MEM(v, data, n);
	CHECK(mg__mpr_at_end(&R));
	CHECK_EQ(mg__mpr_peek(rback()), MG_MP_EXT);
	CHECK_EQ(mg__mpr_skip(rstart_mem(B.data, B.len - 1)), MG_EDECODE);
	CHECK_EQ(mg__mpr_skip(rstart_mem(B.data, hdr_len - 1)), MG_EDECODE);
	/* The header alone, for a body written separately. */
	wstart();
	mg__mpw_ext_hdr(&W, 42, n);
	mg__mpw_raw(&W, data, n);
	CHECK_OK(W.err);
	expect_prefix(hdr_hex, hdr_len + n, line);
	free(data);
}

TEST(mp_ext_boundaries)
{
	ext(0, "c700", 3, __LINE__);
	ext(1, "d4", 2, __LINE__);
	ext(2, "d5", 2, __LINE__);
	ext(3, "c703", 3, __LINE__);
	ext(4, "d6", 2, __LINE__);
	ext(5, "c705", 3, __LINE__);
	ext(8, "d7", 2, __LINE__);
	ext(16, "d8", 2, __LINE__);
	ext(17, "c711", 3, __LINE__);
	ext(255, "c7ff", 3, __LINE__);
	ext(256, "c80100", 4, __LINE__);
	ext(65535, "c8ffff", 4, __LINE__);
	ext(65536, "c900010000", 6, __LINE__);
	ENC(mg__mpw_ext(w, -128, "\x01", 1), "d48001");
	ENC(mg__mpw_ext(w, 127, "\x01\x02", 2), "d57f0102");
}

TEST(mp_timestamp)
{
	int64_t sec;
	uint32_t nsec;

	ENC(mg__mpw_timestamp(w, 0, 0), "d6ff00000000");
	ENC(mg__mpw_timestamp(w, 1, 0), "d6ff00000001");
	ENC(mg__mpw_timestamp(w, 4294967295ll, 0), "d6ffffffffff");
	ENC(mg__mpw_timestamp(w, 4294967296ll, 0), "d7ff0000000100000000");
	ENC(mg__mpw_timestamp(w, 0, 1), "d7ff0000000400000000");
	ENC(mg__mpw_timestamp(w, 1, 1), "d7ff0000000400000001");
	ENC(mg__mpw_timestamp(w, 17179869183ll, 999999999), "d7ffee6b27ffffffffff");
	ENC(mg__mpw_timestamp(w, 17179869184ll, 0), "c70cff000000000000000400000000");
	ENC(mg__mpw_timestamp(w, -1, 0), "c70cff00000000ffffffffffffffff");
	ENC(mg__mpw_timestamp(w, -1, 999999999), "c70cff3b9ac9ffffffffffffffffff");
	ENC(mg__mpw_timestamp(w, INT64_MIN, 5), "c70cff000000058000000000000000");
	ENC(mg__mpw_timestamp(w, INT64_MAX, 0), "c70cff000000007fffffffffffffff");

	wstart();
	CHECK_EQ(mg__mpw_timestamp(&W, 0, 1000000000), -EINVAL);
	CHECK_EQ(B.len, 0);

	CHECK_OK(mg__mpr_timestamp(rstart("d7ffee6b27ffffffffff"), &sec, &nsec));
	CHECK_EQ(sec, 17179869183ll);
	CHECK_EQ(nsec, 999999999);
	CHECK_OK(mg__mpr_timestamp(rstart("c70cff3b9ac9ffffffffffffffffff"), &sec, &nsec));
	CHECK_EQ(sec, -1);
	CHECK_EQ(nsec, 999999999);
	CHECK_OK(mg__mpr_timestamp(rstart("d6ffffffffff"), &sec, &nsec));
	CHECK_EQ(sec, 4294967295ll);
	CHECK_EQ(nsec, 0);
	/* Any ext form of the right length is a timestamp. */
	CHECK_OK(mg__mpr_timestamp(rstart("c704ff00000009"), &sec, &nsec));
	CHECK_EQ(sec, 9);
	sec = 3;
	/* nsec 10^9 in the 64- and 96-bit forms. */
	CHECK_EQ(mg__mpr_timestamp(rstart("d7ffee6b280000000000"), &sec, &nsec), MG_EDECODE);
	CHECK_EQ(R.off, 0);
	CHECK_EQ(mg__mpr_timestamp(rstart("c70cff3b9aca00ffffffffffffffff"), &sec, &nsec),
	         MG_EDECODE);
	CHECK_EQ(mg__mpr_timestamp(rstart("d5ff0000"), &sec, &nsec), MG_EDECODE);
	CHECK_EQ(mg__mpr_timestamp(rstart("d60100000000"), &sec, &nsec), MG_EDECODE);
	CHECK_EQ(mg__mpr_timestamp(rstart("00"), &sec, &nsec), MG_EDECODE);
	CHECK_EQ(sec, 3);
}

TEST(mp_context_sender)
{
	uint32_t ctx = 0, handle = 0;

	ENC(mg__mpw_context(w, 7), "d60100000007");
	ENC(mg__mpw_context(w, 0xffffffff), "d601ffffffff");
	ENC(mg__mpw_sender(w, 1, 1000), "d70200000001000003e8");
	CHECK_OK(mg__mpr_context(rstart("d601ffffffff"), &ctx));
	CHECK_UINT(ctx, ==, 0xffffffff);
	CHECK_OK(mg__mpr_sender(rstart("d70200000001000003e8"), &ctx, &handle));
	CHECK_EQ(ctx, 1);
	CHECK_EQ(handle, 1000);
	CHECK_OK(mg__mpr_context(rstart("c70401 0000000a"), &ctx));
	CHECK_EQ(ctx, 10);
	CHECK_EQ(mg__mpr_context(rstart("d70200000001000003e8"), &ctx), MG_EDECODE);
	CHECK_EQ(mg__mpr_context(rstart("d50100"), &ctx), MG_EDECODE);
	CHECK_EQ(mg__mpr_sender(rstart("d60100000007"), &ctx, &handle), MG_EDECODE);
	CHECK_EQ(mg__mpr_sender(rstart("d70100000001000003e8"), &ctx, &handle), MG_EDECODE);
	CHECK_EQ(ctx, 10);
}

static struct mg_mp_str S(const char *s) {
	struct mg_mp_str v = {s, s ? strlen(s) : 0};

	return v;
}

static void
check_view(struct mg_mp_str v, const char *want)
{
	CHECK_EQ(v.n, strlen(want));
	CHECK_MEM(v.p, want, v.n);
}

TEST(mp_error_ext)
{
	struct mg_mp_error e = {S("ValueError"), S("bad"), S("ctx"), S("fn")}, got;

	ENC(mg__mpw_error(w, &e), "c71703 94 aa56616c75654572726f72 a3626164 a3637478 a2666e");
	CHECK_OK(mg__mpr_error(rback(), &got));
	check_view(got.type, "ValueError");
	check_view(got.message, "bad");
	check_view(got.context, "ctx");
	check_view(got.function, "fn");
	CHECK(mg__mpr_at_end(&R));

	e = (struct mg_mp_error){S(NULL), S(NULL), S(NULL), S(NULL)};
	ENC(mg__mpw_error(w, &e), "c70503 94a0a0a0a0");
	/* 8 and 16 byte bodies take the fixext forms. */
	e = (struct mg_mp_error){S("a"), S("b"), S("c"), S("")};
	ENC(mg__mpw_error(w, &e), "d703 94a161a162a163a0");
	e = (struct mg_mp_error){S("abcdefghi"), S("b"), S("c"), S("")};
	ENC(mg__mpw_error(w, &e), "d803 94a9616263646566676869a162a163a0");
	/* A long message moves the strs to str8 and the ext to ext 8/16. */
	{
		static char big[300];
		memset(big, 'm', sizeof(big));
		e = (struct mg_mp_error){S("T"), {big, sizeof(big)}, S(""), S("")};
		wstart();
		CHECK_OK(mg__mpw_error(&W, &e));
		expect_prefix("c8013403 94 a154 da012c", 4 + 1 + 2 + 3 + 300 + 2, __LINE__);
		CHECK_OK(mg__mpr_error(rback(), &got));
		CHECK_EQ(got.message.n, 300);
	}

	/* Malformed bodies: 3 strs, a non-str, trailing bytes, wrong type,
	 * and an inner length reaching past the ext into the outer bytes. */
	CHECK_EQ(mg__mpr_error(rstart("c70403 93a0a0a0"), &got), MG_EDECODE);
	CHECK_EQ(R.off, 0);
	CHECK_EQ(mg__mpr_error(rstart("c70503 94a0a0a000"), &got), MG_EDECODE);
	CHECK_EQ(mg__mpr_error(rstart("c70603 94a0a0a0a0a0"), &got), MG_EDECODE);
	CHECK_EQ(mg__mpr_error(rstart("c70504 94a0a0a0a0"), &got), MG_EDECODE);
	CHECK_EQ(mg__mpr_error(rstart("c70503 94a0a0a0a1 61"), &got), MG_EDECODE);
	CHECK_EQ(mg__mpr_error(rstart("c70003"), &got), MG_EDECODE);
}

TEST(mp_peek_ext)
{
	int8_t type = 9;

	CHECK_OK(mg__mpr_peek_ext(rstart("d60100000007"), &type));
	CHECK_EQ(type, 1);
	CHECK_EQ(R.off, 0);
	CHECK_OK(mg__mpr_peek_ext(rstart("c70503 94a0a0a0a0"), &type));
	CHECK_EQ(type, 3);
	CHECK_OK(mg__mpr_peek_ext(rstart("c8000003 94a0a0a0a0"), &type));
	CHECK_EQ(type, 3);
	CHECK_OK(mg__mpr_peek_ext(rstart("c900000000ff"), &type));
	CHECK_EQ(type, -1);
	type = 9;
	CHECK_EQ(mg__mpr_peek_ext(rstart("c70503 94a0a0a0"), &type), MG_EDECODE); /* short */
	CHECK_EQ(mg__mpr_peek_ext(rstart("c700"), &type), MG_EDECODE);
	CHECK_EQ(mg__mpr_peek_ext(rstart("c4 00"), &type), MG_EDECODE);
	CHECK_EQ(mg__mpr_peek_ext(rstart(""), &type), MG_EDECODE);
	CHECK_EQ(type, 9);
	CHECK_EQ(R.err, 0);
}

TEST(mp_peek)
{
	CHECK_EQ(mg__mpr_peek(rstart("")), MG_MP_NONE);
	CHECK_EQ(mg__mpr_peek(rstart("c1")), MG_MP_NONE);
	CHECK_EQ(mg__mpr_peek(rstart("c0")), MG_MP_NIL);
	CHECK_EQ(mg__mpr_peek(rstart("c2")), MG_MP_BOOL);
	CHECK_EQ(mg__mpr_peek(rstart("00")), MG_MP_UINT);
	CHECK_EQ(mg__mpr_peek(rstart("cf")), MG_MP_UINT);
	CHECK_EQ(mg__mpr_peek(rstart("e0")), MG_MP_INT);
	CHECK_EQ(mg__mpr_peek(rstart("d0")), MG_MP_INT);
	CHECK_EQ(mg__mpr_peek(rstart("a0")), MG_MP_STR);
	CHECK_EQ(mg__mpr_peek(rstart("d9")), MG_MP_STR);
	CHECK_EQ(mg__mpr_peek(rstart("c4")), MG_MP_BIN);
	CHECK_EQ(mg__mpr_peek(rstart("90")), MG_MP_ARRAY);
	CHECK_EQ(mg__mpr_peek(rstart("dd")), MG_MP_ARRAY);
	CHECK_EQ(mg__mpr_peek(rstart("80")), MG_MP_MAP);
	CHECK_EQ(mg__mpr_peek(rstart("df")), MG_MP_MAP);
	CHECK_EQ(mg__mpr_peek(rstart("d4")), MG_MP_EXT);
	CHECK_EQ(mg__mpr_peek(rstart("c9")), MG_MP_EXT);
	/* A stuck error hides everything. */
	rstart("c0c0");
	CHECK_EQ(mg__mpr_bool(&R, &(bool){0}), MG_EDECODE);
	CHECK_EQ(mg__mpr_peek(&R), MG_MP_NONE);
	CHECK(!mg__mpr_at_end(&R));
}

TEST(mp_every_tag_parses_or_refuses)
{
	uint8_t b[64];
	unsigned c;

	/* Each single tag byte, followed by plenty of zeros: only 0xc1 is
	 * refused; each value ends inside the buffer. */
	for (c = 0; c < 256; c++) {
		memset(b, 0, sizeof(b));
		b[0] = (uint8_t)c;
		rstart_mem(b, sizeof(b));
		if (c == 0xc1) {
			CHECK_EQ(mg__mpr_skip(&R), MG_EDECODE);
			continue;
		}
		CHECK_OK(mg__mpr_skip(&R));
		if (R.off < 1 || R.off > 32) /* 0xbf: a 31-byte str */
			mg_test_fail(__FILE__, __LINE__, "tag %02x: %zu bytes", c, R.off);
	}
}

TEST(mp_sticky_error)
{
	int64_t i = 5;
	size_t n;

	rstart("c2 01");
	CHECK_EQ(mg__mpr_int(&R, &i), MG_EDECODE);
	CHECK_EQ(R.off, 0);
	/* Later calls do nothing, even ones that would have worked. */
	CHECK_EQ(mg__mpr_bool(&R, &(bool){0}), MG_EDECODE);
	CHECK_EQ(mg__mpr_skip(&R), MG_EDECODE);
	CHECK_EQ(mg__mpr_array(&R, &n), MG_EDECODE);
	CHECK_EQ(R.off, 0);
	CHECK_EQ(i, 5);

	/* The writer: the first error sticks, nothing more is written. */
	{
		struct mg_buf b;
		struct mg_mpw w;

		mg__buf_init(&b, 3);
		mg__mpw_init(&w, &b);
		CHECK_OK(mg__mpw_int(&w, 1));
		CHECK_EQ(mg__mpw_uint(&w, 1000), MG_ELIMIT);
		CHECK_EQ(b.len, 1);
		CHECK_EQ(mg__mpw_nil(&w), MG_ELIMIT);
		CHECK_EQ(mg__mpw_str(&w, "x", 1), MG_ELIMIT);
		CHECK_EQ(b.len, 1);
		mg__buf_fini(&b);
	}
}

TEST(mp_writer_whole_or_nothing)
{
	struct mg_mp_error e = {S("Type"), S("msg"), S("c"), S("f")};
	struct mg_buf b;
	struct mg_mpw w;
	size_t max;

	/* With every maximum short of the full encoding, nothing lands. */
	for (max = 0; max < 24; max++) {
		mg__buf_init(&b, max);
		mg__mpw_init(&w, &b);
		if (mg__mpw_error(&w, &e) != 0)
			CHECK_EQ(b.len, 0);
		else
			CHECK_EQ(b.len, 17);
		mg__mpw_init(&w, &b);
		b.len = 0;
		if (mg__mpw_str(&w, "0123456789abcdefghijklmnopqrstuvwxyz", 36) != 0)
			CHECK_EQ(b.len, 0);
		mg__buf_fini(&b);
	}
}

TEST(mp_lengths_over_u32_are_limit)
{
	size_t big = (size_t)UINT32_MAX + 1;
	struct mg_mp_error e = {{"", big}, S(""), S(""), S("")};

	if (sizeof(size_t) <= 4)
		mg_test_skip("size_t is 32 bits");
	wstart();
	CHECK_EQ(mg__mpw_str_hdr(&W, big), MG_ELIMIT);
	wstart();
	CHECK_EQ(mg__mpw_bin_hdr(&W, big), MG_ELIMIT);
	wstart();
	CHECK_EQ(mg__mpw_ext_hdr(&W, 1, big), MG_ELIMIT);
	wstart();
	CHECK_EQ(mg__mpw_array(&W, big), MG_ELIMIT);
	wstart();
	CHECK_EQ(mg__mpw_map(&W, big), MG_ELIMIT);
	wstart();
	CHECK_EQ(mg__mpw_error(&W, &e), MG_ELIMIT);
	CHECK_EQ(B.len, 0);
	ENC(mg__mpw_str_hdr(w, UINT32_MAX), "dbffffffff");
	ENC(mg__mpw_bin_hdr(w, UINT32_MAX), "c6ffffffff");
	ENC(mg__mpw_ext_hdr(w, 5, UINT32_MAX), "c9ffffffff05");
	ENC(mg__mpw_array(w, UINT32_MAX), "ddffffffff");
	ENC(mg__mpw_map(w, UINT32_MAX), "dfffffffff");
}

TEST(mp_skip_nested)
{
	const void *v;
	size_t n;

	/* [1, {"a": [nil, true]}, "xy"] then 7 */
	rstart("93 01 81 a161 92 c0 c3 a27879 07");
	CHECK_OK(mg__mpr_value(&R, &v, &n));
	CHECK_EQ(n, 11);
	CHECK(v == R_bytes);
	CHECK_OK(mg__mpr_skip(&R));
	CHECK(mg__mpr_at_end(&R));
	CHECK_EQ(mg__mpr_skip(&R), MG_EDECODE); /* nothing left */

	CHECK_OK(mg__mp_check_one(R_bytes, 11));
	CHECK_EQ(mg__mp_check_one(R_bytes, 12), MG_EDECODE);
	CHECK_EQ(mg__mp_check_one(R_bytes, 10), MG_EDECODE);
	CHECK_EQ(mg__mp_check_one(R_bytes, 0), MG_EDECODE);
	CHECK_EQ(mg__mp_check_one(NULL, 0), MG_EDECODE);
}

TEST(mp_skip_depth_cap)
{
	uint8_t b[200];
	size_t d;

	/* 64 nested arrays around a nil are fine; 65 are not, even empty. */
	for (d = 63; d <= 66; d++) {
		memset(b, 0x91, d);
		b[d] = 0xc0;
		rstart_mem(b, d + 1);
		if (d <= MG_MP_MAX_DEPTH) {
			CHECK_OK(mg__mpr_skip(&R));
			CHECK(mg__mpr_at_end(&R));
		} else {
			CHECK_EQ(mg__mpr_skip(&R), MG_EDECODE);
			CHECK_EQ(R.off, 0);
		}
		b[d - 1] = 0x90; /* the innermost becomes an empty array */
		rstart_mem(b, d);
		CHECK_EQ(mg__mpr_skip(&R), d <= MG_MP_MAX_DEPTH ? 0 : MG_EDECODE);
	}
	/* Maps count too. */
	memset(b, 0x81, 65);
	for (d = 0; d < 65; d++)
		b[d] = d % 2 ? 0x81 : 0x91;
	b[65] = 0xc0;
	CHECK_EQ(mg__mpr_skip(rstart_mem(b, 66)), MG_EDECODE);
}

TEST(mp_skip_wide_flat)
{
	/* A million-element array: no recursion, linear time. */
	size_t n = 1000000, i;
	uint8_t *b = malloc(n + 5);

	CHECK(b != NULL);
	b[0] = 0xdd;
	mg__put_be32(b + 1, (uint32_t)n);
	for (i = 0; i < n; i++)
		b[5 + i] = (uint8_t)(i % 2 ? 0x81 : 0x05); /* a map header needs 2 more */
	CHECK_EQ(mg__mpr_skip(rstart_mem(b, n + 5)), MG_EDECODE);
	for (i = 0; i < n; i++)
		b[5 + i] = 0xc3;
	CHECK_OK(mg__mpr_skip(rstart_mem(b, n + 5)));
	CHECK(mg__mpr_at_end(&R));
	free(b);
}

/* Every proper prefix of a valid nested value fails to skip, and never
 * reads outside its own bytes (the reader runs on exact-size copies). */
TEST(mp_truncation_everywhere)
{
	static const char *vals[] = {
	        "93 01 81 a161 92 c0 c3 a27879",
	        "de0001 d90141 dc0002 cd0102 d2ffff7fff",
	        "c70cff000000058000000000000000",
	        "c8000200 0102",
	        "cb3ff8000000000000",
	        "df00000001 c40201ff 91 ca3fc00000",
	};
	uint8_t b[64];
	size_t k, n, i;

	for (k = 0; k < sizeof(vals) / sizeof(vals[0]); k++) {
		n = unhex(vals[k], b);
		for (i = 0; i < n; i++)
			CHECK_EQ(mg__mp_check_one(rstart_mem(b, i)->p, i), MG_EDECODE);
	}
}
