/*
 * test_wire_fmt.c: the format-string engine: every letter both ways,
 * brackets, every error path, and "nothing written on failure".
 */
#include <errno.h>
#include <time.h>

#include "runner.h"
#include "wire/fmt.h"

/* ------------------------------------------------------------------------ */
/* Hooks: senders are small structs; live ones are counted so leaks and
 * double frees show.  Either hook can be told to fail on its Nth call. */

struct fake_sender {
	uint32_t ctx, handle;
};

static int live_senders, sender_calls, sender_fail_at;
static int str_calls, str_fail_at;
static char *strs[128];
static int n_strs;

static int t_sender_ref(void *arg, const void *sender, uint32_t *ctxp, uint32_t *handlep)
{
	const struct fake_sender *s = sender;

	if (s->ctx == 666)
		return MG_EREFUSED;
	*ctxp = s->ctx;
	*handlep = s->handle;
	return 0;
}

static int t_sender_new(void *arg, uint32_t ctx, uint32_t handle, void **senderp)
{
	struct fake_sender *s;

	if (++sender_calls == sender_fail_at)
		return MG_ECLOSED;
	s = malloc(sizeof(*s));
	CHECK(s != NULL);
	s->ctx = ctx;
	s->handle = handle;
	live_senders++;
	*senderp = s;
	return 0;
}

static void t_sender_free(void *arg, void *sender)
{
	CHECK(sender != NULL);
	live_senders--;
	free(sender);
}

static char *t_str_copy(void *arg, const char *p, size_t n)
{
	char *c;

	if (++str_calls == str_fail_at)
		return NULL;
	CHECK(n_strs < 128);
	c = malloc(n + 1);
	CHECK(c != NULL);
	memcpy(c, p, n);
	c[n] = '\0';
	strs[n_strs++] = c;
	return c;
}

static const struct mg_fmt_hooks hooks = {
        .arg = NULL,
        .sender_ref = t_sender_ref,
        .sender_new = t_sender_new,
        .sender_free = t_sender_free,
        .str_copy = t_str_copy,
};

static int pack(struct mg_buf *b, const struct mg_fmt_hooks *h, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = mg__fmt_vpack(b, fmt, &ap, h);
	va_end(ap);
	return r;
}

static int unpack(const struct mg_buf *b, size_t *offp, const struct mg_fmt_hooks *h,
                  const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = mg__fmt_vunpack(b->data, b->len, offp, fmt, &ap, h);
	va_end(ap);
	return r;
}

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

static void expect(const struct mg_buf *b, const char *hex, int line)
{
	uint8_t want[512];
	size_t n = unhex(hex, want), i, o = 0;
	char got[1100];

	if (b->len == n && (n == 0 || memcmp(b->data, want, n) == 0))
		return;
	for (i = 0; i < b->len && o + 3 < sizeof(got); i++)
		o += (size_t)snprintf(got + o, sizeof(got) - o, "%02x", b->data[i]);
	mg_test_fail(__FILE__, line, "encoding\n    got:  %s\n    want: %s", got, hex);
}

/* A buffer holding hex. */
static void from_hex(struct mg_buf *b, const char *hex)
{
	uint8_t tmp[512];

	mg__buf_init(b, 1 << 20);
	CHECK_OK(mg__buf_put(b, tmp, unhex(hex, tmp)));
}

#define PACKS(hex, fmt, ...)                                     \
	do {                                                     \
		struct mg_buf b_;                                \
		mg__buf_init(&b_, 1 << 20);                      \
		CHECK_OK(pack(&b_, &hooks, fmt, ##__VA_ARGS__)); \
		expect(&b_, hex, __LINE__);                      \
		mg__buf_fini(&b_);                               \
	} while (0)

/* ------------------------------------------------------------------------ */
/* Packing */

TEST(fmt_pack_scalars)
{
	PACKS("", "");
	PACKS("", " \t\n");
	PACKS("c0", "n");
	PACKS("c3 c2 c3", "bbb", 1, 0, 42);
	PACKS("00 7f cc80 ff e0 d0df d38000000000000000", "iiiiiii", (int64_t)0, (int64_t)127,
	      (int64_t)128, (int64_t)-1, (int64_t)-32, (int64_t)-33, (int64_t)INT64_MIN);
	PACKS("cfffffffffffffffff cdffff 00", "uuu", UINT64_MAX, (uint64_t)65535, (uint64_t)0);
	PACKS("ca3fc00000", "f", 1.5);
	PACKS("cb3ff8000000000000", "d", 1.5);
	PACKS("a3616263 c0", "ss", "abc", (const char *)NULL);
	PACKS("a26100 a0", "SS", "a\0b", (size_t)2, (const char *)NULL, (size_t)0);
	PACKS("c40300ff01 c400", "yy", "\x00\xff\x01", (size_t)3, (const void *)NULL, (size_t)0);
	PACKS("d60100000007", "c", (uint32_t)7);
}

TEST(fmt_pack_timestamp)
{
	struct timespec a = {1, 0}, b = {1, 1}, c = {-1, 999999999};

	PACKS("d6ff00000001 d7ff0000000400000001 c70cff3b9ac9ffffffffffffffffff", "ttt", &a, &b,
	      &c);
}

TEST(fmt_pack_sender)
{
	struct fake_sender s = {5, 1001};

	PACKS("d70200000005000003e9", "h", &s);
}

TEST(fmt_pack_raw_value)
{
	static const uint8_t v[] = {0x92, 0x01, 0xa1, 'x'};

	PACKS("92 01 a178 c3", "vb", v, sizeof(v), 1);
}

TEST(fmt_pack_brackets)
{
	PACKS("90", "()");
	PACKS("80", "{}");
	PACKS("90 80", "( ) { }");
	PACKS("92 01 92 a161 c40162", "(i(sy))", (int64_t)1, "a", "b", (size_t)1);
	PACKS("82 a161 01 a162 91 c0", "{si s(n)}", "a", (int64_t)1, "b");
	PACKS("91 91 91 90 81 c0 80 c3", "(((()))){n{}}b", 1);
	/* A nested bracket counts as one item of its parent. */
	PACKS("93 01 92 02 03 04", "(i(ii)i)", (int64_t)1, (int64_t)2, (int64_t)3, (int64_t)4);
}

TEST(fmt_pack_big_brackets)
{
	char fmt[80];
	struct mg_buf b;
	int i;

	/* 16 items need an array 16 header; 32 map items a map 16 one. */
	memset(fmt, 'n', sizeof(fmt));
	fmt[0] = '(';
	fmt[17] = ')';
	fmt[18] = '\0';
	mg__buf_init(&b, 1024);
	CHECK_OK(pack(&b, NULL, fmt));
	CHECK_EQ(b.len, 3 + 16);
	CHECK_EQ(b.data[0], 0xdc);
	CHECK_EQ(mg__be16(b.data + 1), 16);
	memset(fmt, 'n', sizeof(fmt));
	fmt[0] = '{';
	fmt[33] = '}';
	fmt[34] = '\0';
	b.len = 0;
	CHECK_OK(pack(&b, NULL, fmt));
	CHECK_EQ(b.len, 3 + 32);
	CHECK_EQ(b.data[0], 0xde);
	CHECK_EQ(mg__be16(b.data + 1), 16);
	for (i = 3; i < 35; i++)
		CHECK_EQ(b.data[i], 0xc0);
	mg__buf_fini(&b);
}

TEST(fmt_pack_headers_a_m)
{
	/* 'a' and 'm' are one item of a bracket; their elements follow. */
	PACKS("92 a178 92 01 02", "(s a) ii", "x", (size_t)2, (int64_t)1, (int64_t)2);
	PACKS("dc0010", "a", (size_t)16);
	PACKS("de0010", "m", (size_t)16);
	PACKS("dd00010000", "a", (size_t)65536);
	PACKS("81 a16b 90", "m sa", (size_t)1, "k", (size_t)0);
}

TEST(fmt_pack_appends)
{
	struct mg_buf b;

	mg__buf_init(&b, 100);
	CHECK_OK(pack(&b, NULL, "i", (int64_t)1));
	CHECK_OK(pack(&b, NULL, "s", "z"));
	expect(&b, "01 a17a", __LINE__);
	mg__buf_fini(&b);
}

static const char *const bad_formats[] = {
        "x",
        "i x",
        "(",
        ")",
        "{",
        "}",
        "(}",
        "{)",
        "(()",
        "())",
        "{i}",
        "{iii}",
        "{(ii)}x",
        "q",
        "I",
        "%",
        "0",
        "(i{s)}",
        "{{}}" /* one item in the outer map */,
        "(\x80)",
};

TEST(fmt_pack_bad_formats)
{
	struct mg_buf b;
	size_t i;

	mg__buf_init(&b, 100);
	CHECK_OK(mg__buf_put(&b, "keep", 4));
	for (i = 0; i < sizeof(bad_formats) / sizeof(bad_formats[0]); i++) {
		if (pack(&b, &hooks, bad_formats[i], (int64_t)1, (int64_t)2, (int64_t)3) !=
		    MG_EFORMAT)
			mg_test_fail(__FILE__, __LINE__, "format \"%s\" accepted", bad_formats[i]);
		CHECK_EQ(b.len, 4);
	}
	CHECK_EQ(pack(&b, &hooks, NULL), MG_EFORMAT);
	/* 'h' needs sender_ref. */
	CHECK_EQ(pack(&b, NULL, "h", (void *)&b), MG_EFORMAT);
	CHECK_EQ(pack(&b, &(struct mg_fmt_hooks){0}, "ih", (int64_t)1, (void *)&b), MG_EFORMAT);
	CHECK_EQ(b.len, 4);
	mg__buf_fini(&b);
}

TEST(fmt_depth_cap)
{
	char fmt[2 * MG_FMT_MAX_DEPTH + 8];
	struct mg_buf b;
	int d;

	mg__buf_init(&b, 1000);
	for (d = MG_FMT_MAX_DEPTH; d <= MG_FMT_MAX_DEPTH + 1; d++) {
		memset(fmt, '(', (size_t)d);
		memset(fmt + d, ')', (size_t)d);
		fmt[2 * d] = '\0';
		b.len = 0;
		CHECK_EQ(pack(&b, NULL, fmt), d <= MG_FMT_MAX_DEPTH ? 0 : MG_EFORMAT);
	}
	mg__buf_fini(&b);
}

/* Each failure leaves the buffer as it was, wherever it happens. */
TEST(fmt_pack_failures_restore_len)
{
	static const uint8_t two[] = {0x01, 0x02}, trunc[] = {0x92, 0x01};
	struct fake_sender bad = {666, 1};
	struct timespec ts = {0, 1000000000}, neg = {0, -1};
	struct mg_buf b;

	mg__buf_init(&b, 12);
	CHECK_OK(mg__buf_put(&b, "keep", 4));
	CHECK_EQ(pack(&b, NULL, "(iiiiiiii)", (int64_t)1, (int64_t)2, (int64_t)3, (int64_t)4,
	              (int64_t)5, (int64_t)6, (int64_t)7, (int64_t)8),
	         MG_ELIMIT);
	CHECK_EQ(b.len, 4);
	CHECK_EQ(pack(&b, NULL, "is", (int64_t)1, "a very long string"), MG_ELIMIT);
	CHECK_EQ(b.len, 4);
	CHECK_EQ(pack(&b, NULL, "iv", (int64_t)1, two, sizeof(two)), MG_EDECODE);
	CHECK_EQ(pack(&b, NULL, "iv", (int64_t)1, trunc, sizeof(trunc)), MG_EDECODE);
	CHECK_EQ(pack(&b, NULL, "iv", (int64_t)1, (const void *)NULL, (size_t)0), MG_EDECODE);
	CHECK_EQ(pack(&b, NULL, "iS", (int64_t)1, (const char *)NULL, (size_t)1), -EINVAL);
	CHECK_EQ(pack(&b, NULL, "iy", (int64_t)1, (const void *)NULL, (size_t)1), -EINVAL);
	CHECK_EQ(pack(&b, NULL, "iv", (int64_t)1, (const void *)NULL, (size_t)1), -EINVAL);
	CHECK_EQ(pack(&b, NULL, "it", (int64_t)1, &ts), -EINVAL);
	CHECK_EQ(pack(&b, NULL, "it", (int64_t)1, &neg), -EINVAL);
	CHECK_EQ(pack(&b, NULL, "it", (int64_t)1, (struct timespec *)NULL), -EINVAL);
	CHECK_EQ(pack(&b, &hooks, "ih", (int64_t)1, &bad), MG_EREFUSED);
	CHECK_EQ(pack(&b, &hooks, "ih", (int64_t)1, (void *)NULL), -EINVAL);
	CHECK_EQ(b.len, 4);
	CHECK_MEM(b.data, "keep", 4);
	mg__buf_fini(&b);
}

/* ------------------------------------------------------------------------ */
/* Unpacking */

TEST(fmt_unpack_every_letter)
{
	static const uint8_t raw[] = {0x91, 0xc0};
	struct fake_sender snd = {9, 1234}, *sp = NULL;
	struct timespec ts = {-5, 7}, ts2 = {0, 0};
	const char *s1 = "x", *s2 = "x", *sv;
	const void *yv, *vv;
	size_t sn, yn, vn, an, mn, off = 0;
	uint64_t u;
	int64_t i;
	uint32_t c;
	double d, d2;
	float f;
	bool t, fl;
	struct mg_buf b;

	mg__buf_init(&b, 1 << 16);
	CHECK_OK(pack(&b, &hooks, "nbbiufdfssSytchv a m", 1, 0, (int64_t)INT64_MIN, UINT64_MAX,
	              0.25, 1e300, 2.5, "str", (const char *)NULL, "vi\0ew", (size_t)5, "\x01\x02",
	              (size_t)2, &ts, (uint32_t)77, &snd, raw, sizeof(raw), (size_t)0, (size_t)0));
	CHECK_OK(unpack(&b, &off, &hooks, "nbbiufdd ssSytchv am", &t, &fl, &i, &u, &f, &d, &d2, &s1,
	                &s2, &sv, &sn, &yv, &yn, &ts2, &c, &sp, &vv, &vn, &an, &mn));
	CHECK_EQ(off, b.len);
	CHECK(t && !fl);
	CHECK_EQ(i, INT64_MIN);
	CHECK_UINT(u, ==, UINT64_MAX);
	CHECK(f == 0.25f);
	CHECK(d == 1e300);
	CHECK(d2 == 2.5); /* 'd' reads a float 32 too */
	CHECK_STR(s1, "str");
	CHECK(s2 == NULL);
	CHECK_EQ(sn, 5);
	CHECK_MEM(sv, "vi\0ew", 5);
	CHECK_EQ(yn, 2);
	CHECK_MEM(yv, "\x01\x02", 2);
	CHECK_EQ(ts2.tv_sec, -5);
	CHECK_EQ(ts2.tv_nsec, 7);
	CHECK_EQ(c, 77);
	CHECK(sp != NULL && sp->ctx == 9 && sp->handle == 1234);
	CHECK_EQ(vn, 2);
	CHECK_MEM(vv, raw, 2);
	CHECK(vv == b.data + b.len - 4);
	CHECK_EQ(an, 0);
	CHECK_EQ(mn, 0);
	CHECK_EQ(live_senders, 1);
	free(sp);
	mg__buf_fini(&b);
}

TEST(fmt_unpack_brackets)
{
	int64_t a = 0, c = 0;
	const char *s = NULL;
	size_t off = 0, n = 0;
	struct mg_buf b;

	from_hex(&b, "93 01 92 a161 c0 81 c3 05");
	CHECK_OK(unpack(&b, &off, &hooks, "(i(sn){bi})", &a, &s, (bool *)NULL, &c));
	CHECK_EQ(a, 1);
	CHECK_STR(s, "a");
	CHECK_EQ(c, 5);
	CHECK_EQ(off, b.len);
	off = 0;
	CHECK_OK(unpack(&b, &off, &hooks, "a i a s", &n, NULL, NULL, NULL));
	CHECK_EQ(n, 3);
	CHECK_EQ(off, 5);
	mg__buf_fini(&b);
}

/* A read that fails leaves the offset and every output untouched. */
static void unpack_fails(const char *hex, const char *fmt, int want, int line)
{
	union out {
		uint8_t bytes[64];
		void *align;
	} outs[4];
	uint8_t pattern[sizeof(outs)];
	struct mg_buf b;
	size_t off = 0;
	int r;

	memset(outs, 0xa5, sizeof(outs));
	memcpy(pattern, outs, sizeof(outs));
	from_hex(&b, hex);
	r = unpack(&b, &off, &hooks, fmt, &outs[0], &outs[1], &outs[2], &outs[3]);
	if (r != want)
		mg_test_fail(__FILE__, line, "\"%s\" on %s: got %d, want %d", fmt, hex, r, want);
	if (off != 0 || memcmp(outs, pattern, sizeof(outs)) != 0)
		mg_test_fail(__FILE__, line, "\"%s\" on %s wrote something", fmt, hex);
	CHECK_EQ(live_senders, 0);
	mg__buf_fini(&b);
}

TEST(fmt_unpack_mismatches_write_nothing)
{
	/* Each letter against a value of another type; the items before it
	 * matched, so a one-pass reader would have written them. */
	unpack_fails("01 02", "ib", MG_EDECODE, __LINE__);
	unpack_fails("01 c0", "ii", MG_EDECODE, __LINE__);
	unpack_fails("01 01", "in", MG_EDECODE, __LINE__);
	unpack_fails("01 ff", "iu", MG_EDECODE, __LINE__);
	unpack_fails("01 cf8000000000000000", "ii", MG_EDECODE, __LINE__);
	unpack_fails("01 cb3ff8000000000000", "if", MG_EDECODE, __LINE__);
	unpack_fails("01 01", "id", MG_EDECODE, __LINE__);
	unpack_fails("01 c401 61", "is", MG_EDECODE, __LINE__);
	unpack_fails("a161 01", "sS", MG_EDECODE, __LINE__);
	unpack_fails("01 a161", "iy", MG_EDECODE, __LINE__);
	unpack_fails("01 d60100000001", "it", MG_EDECODE, __LINE__);
	unpack_fails("01 d6ff00000001", "ic", MG_EDECODE, __LINE__);
	unpack_fails("01 d60100000001", "ih", MG_EDECODE, __LINE__);
	unpack_fails("01 c1", "iv", MG_EDECODE, __LINE__);
	unpack_fails("01 80", "ia", MG_EDECODE, __LINE__);
	unpack_fails("01 90", "im", MG_EDECODE, __LINE__);
	/* Running out of data. */
	unpack_fails("01", "ii", MG_EDECODE, __LINE__);
	unpack_fails("", "n", MG_EDECODE, __LINE__);
	unpack_fails("a3 6162", "s", MG_EDECODE, __LINE__);
	/* Senders and strings are made only when everything matched. */
	unpack_fails("d70200000001000003e8 a161 01", "hsn", MG_EDECODE, __LINE__);
	CHECK_EQ(sender_calls, 0);
	CHECK_EQ(str_calls, 0);
}

TEST(fmt_unpack_counts_exact)
{
	unpack_fails("93 01 02 03", "(ii)", MG_EDECODE, __LINE__);
	unpack_fails("91 01", "(ii)", MG_EDECODE, __LINE__);
	unpack_fails("90", "(i)", MG_EDECODE, __LINE__);
	unpack_fails("92 01 02", "()", MG_EDECODE, __LINE__);
	unpack_fails("82 01 01 02 02", "{ii}", MG_EDECODE, __LINE__);
	unpack_fails("81 01 01", "{}", MG_EDECODE, __LINE__);
	unpack_fails("92 01 02", "{ii}", MG_EDECODE, __LINE__);
	unpack_fails("81 01 02", "(ii)", MG_EDECODE, __LINE__);
	/* The inner count is wrong, after an outer one that was right. */
	unpack_fails("92 01 92 02 03", "(i(iii))", MG_EDECODE, __LINE__);
}

TEST(fmt_unpack_bad_formats)
{
	size_t i;

	for (i = 0; i < sizeof(bad_formats) / sizeof(bad_formats[0]); i++)
		unpack_fails("01 02 03", bad_formats[i], MG_EFORMAT, __LINE__);
}

TEST(fmt_unpack_missing_hooks)
{
	struct mg_fmt_hooks only_str = {.str_copy = t_str_copy};
	struct mg_fmt_hooks no_free = hooks;
	struct mg_buf b;
	const char *s;
	void *snd;
	size_t off = 0;

	no_free.sender_free = NULL;
	from_hex(&b, "a161 d70200000001000003e8");
	/* Checked before any data: the data does match. */
	CHECK_EQ(unpack(&b, &off, NULL, "s", &s), MG_EFORMAT);
	CHECK_EQ(unpack(&b, &off, &(struct mg_fmt_hooks){0}, "s", &s), MG_EFORMAT);
	CHECK_EQ(unpack(&b, &off, &only_str, "sh", &s, &snd), MG_EFORMAT);
	CHECK_EQ(unpack(&b, &off, &no_free, "sh", &s, &snd), MG_EFORMAT);
	CHECK_EQ(unpack(&b, &off, NULL, "Sh", &s, &off, &snd), MG_EFORMAT);
	CHECK_EQ(off, 0);
	CHECK_OK(unpack(&b, &off, &only_str, "s", &s));
	CHECK_STR(s, "a");
	/* Views need no hooks at all. */
	off = 0;
	CHECK_OK(unpack(&b, &off, NULL, "Sv", &s, &(size_t){0}, &s, &(size_t){0}));
	mg__buf_fini(&b);
}

TEST(fmt_unpack_str_with_nul)
{
	const char *s = NULL;
	size_t n = 0, off = 0;
	struct mg_buf b;

	unpack_fails("a3 610062", "s", MG_EDECODE, __LINE__);
	unpack_fails("a1 00", "s", MG_EDECODE, __LINE__);
	from_hex(&b, "a3 610062");
	CHECK_OK(unpack(&b, &off, NULL, "S", &s, &n));
	CHECK_EQ(n, 3);
	CHECK_MEM(s, "a\0b", 3);
	mg__buf_fini(&b);
}

TEST(fmt_unpack_hook_failures_undo)
{
	const char *s1 = "u", *s2 = "u";
	void *h[3] = {NULL, NULL, NULL};
	struct mg_buf b;
	size_t off = 0;

	mg__buf_init(&b, 1000);
	CHECK_OK(pack(&b, &hooks, "h s h h s", &(struct fake_sender){1, 2}, "one",
	              &(struct fake_sender){3, 4}, &(struct fake_sender){5, 6}, "two"));
	/* The third sender fails: the two made are freed. */
	sender_fail_at = 3;
	CHECK_EQ(unpack(&b, &off, &hooks, "hshhs", &h[0], &s1, &h[1], &h[2], &s2), MG_ECLOSED);
	CHECK_EQ(live_senders, 0);
	CHECK_EQ(sender_calls, 3);
	CHECK(h[0] == NULL && h[1] == NULL && h[2] == NULL);
	CHECK_STR(s1, "u");
	CHECK_EQ(off, 0);
	/* The second copy fails: same. */
	sender_fail_at = 0;
	str_calls = 0;
	str_fail_at = 2;
	CHECK_EQ(unpack(&b, &off, &hooks, "hshhs", &h[0], &s1, &h[1], &h[2], &s2), -ENOMEM);
	CHECK_EQ(live_senders, 0);
	CHECK(h[0] == NULL);
	CHECK_STR(s2, "u");
	/* And with nothing failing, all of it. */
	str_fail_at = 0;
	CHECK_OK(unpack(&b, &off, &hooks, "hshhs", &h[0], &s1, &h[1], &h[2], &s2));
	CHECK_EQ(live_senders, 3);
	CHECK_EQ(((struct fake_sender *)h[2])->handle, 6);
	CHECK_STR(s1, "one");
	CHECK_STR(s2, "two");
	CHECK_EQ(off, b.len);
	free(h[0]);
	free(h[1]);
	free(h[2]);
	mg__buf_fini(&b);
}

TEST(fmt_unpack_null_outputs_discard)
{
	struct mg_buf b;
	size_t off = 0;

	mg__buf_init(&b, 1000);
	CHECK_OK(pack(&b, &hooks, "i s h S", (int64_t)3, "text", &(struct fake_sender){1, 2}, "v",
	              (size_t)1));
	CHECK_OK(unpack(&b, &off, &hooks, "i s h S", NULL, NULL, NULL, NULL, NULL));
	CHECK_EQ(off, b.len);
	CHECK_EQ(str_calls, 0);
	CHECK_EQ(sender_calls, 0);
	mg__buf_fini(&b);
}

TEST(fmt_unpack_offsets)
{
	int64_t a = 0, c = 0;
	struct mg_buf b;
	size_t off = 0;

	from_hex(&b, "01 02 03");
	CHECK_OK(unpack(&b, &off, NULL, "i", &a));
	CHECK_EQ(off, 1);
	CHECK_OK(unpack(&b, &off, NULL, "ii", &a, &c));
	CHECK_EQ(a, 2);
	CHECK_EQ(c, 3);
	CHECK_EQ(off, 3);
	CHECK_EQ(unpack(&b, &off, NULL, "i", &a), MG_EDECODE);
	CHECK_OK(unpack(&b, &off, NULL, ""));
	CHECK_EQ(off, 3);
	off = 4;
	CHECK_EQ(unpack(&b, &off, NULL, "", &a), MG_EDECODE);
	CHECK_EQ(off, 4);
	mg__buf_fini(&b);
}

TEST(fmt_unpack_int_rules)
{
	uint64_t u = 0;
	int64_t i = 0;
	size_t off;
	struct mg_buf b;

	/* 'i' takes any int encoding that fits int64; 'u' any that fits
	 * uint64. */
	from_hex(&b, "cf7fffffffffffffff d3000000000000000a");
	off = 0;
	CHECK_OK(unpack(&b, &off, NULL, "iu", &i, &u));
	CHECK_EQ(i, INT64_MAX);
	CHECK_EQ(u, 10);
	mg__buf_fini(&b);
	unpack_fails("cf8000000000000000", "i", MG_EDECODE, __LINE__);
	unpack_fails("d0ff", "u", MG_EDECODE, __LINE__);
	unpack_fails("ca3f800000", "i", MG_EDECODE, __LINE__);
	unpack_fails("c3", "u", MG_EDECODE, __LINE__);
}

TEST(fmt_unpack_timestamp_range)
{
	struct timespec ts = {0, 0};
	struct mg_buf b;
	size_t off = 0;

	from_hex(&b, "c70cff 3b9ac9ff 8000000000000000");
	if (sizeof(time_t) >= 8) {
		CHECK_OK(unpack(&b, &off, NULL, "t", &ts));
		CHECK(ts.tv_sec == (time_t)INT64_MIN);
		CHECK_EQ(ts.tv_nsec, 999999999);
	} else {
		CHECK_EQ(unpack(&b, &off, NULL, "t", &ts), MG_EDECODE);
	}
	mg__buf_fini(&b);
	unpack_fails("d7ffee6b280000000000", "t", MG_EDECODE, __LINE__);
}

TEST(fmt_round_trip_many_strings)
{
	/* More 's' and 'h' than the engine keeps on its stack. */
	const char *in[20], *out[20];
	char words[20][8];
	struct mg_buf b;
	size_t off = 0;
	int i;

	for (i = 0; i < 20; i++) {
		snprintf(words[i], sizeof(words[i]), "w%d", i);
		in[i] = words[i];
		out[i] = NULL;
	}
	mg__buf_init(&b, 1000);
	CHECK_OK(pack(&b, NULL, "(ssssssssss ssssssssss)", in[0], in[1], in[2], in[3], in[4], in[5],
	              in[6], in[7], in[8], in[9], in[10], in[11], in[12], in[13], in[14], in[15],
	              in[16], in[17], in[18], in[19]));
	CHECK_OK(unpack(&b, &off, &hooks, "(ssssssssss ssssssssss)", &out[0], &out[1], &out[2],
	                &out[3], &out[4], &out[5], &out[6], &out[7], &out[8], &out[9], &out[10],
	                &out[11], &out[12], &out[13], &out[14], &out[15], &out[16], &out[17],
	                &out[18], &out[19]));
	for (i = 0; i < 20; i++)
		CHECK_STR(out[i], in[i]);
	CHECK_EQ(str_calls, 20);
	mg__buf_fini(&b);
}

TEST(fmt_dead_message_payload)
{
	/* The shape the router uses for dead messages: [int code, str reason]. */
	const char *reason = NULL;
	int64_t code = 0;
	struct mg_buf b;
	size_t off = 0;

	mg__buf_init(&b, 100);
	CHECK_OK(pack(&b, NULL, "(is)", (int64_t)MG_ENOROUTE, "no route"));
	expect(&b, "92 d1f060 a86e6f20726f757465", __LINE__);
	CHECK_OK(unpack(&b, &off, &hooks, "(is)", &code, &reason));
	CHECK_EQ(code, MG_ENOROUTE);
	CHECK_STR(reason, "no route");
	mg__buf_fini(&b);
}
