/*
 * test_wire_golden.c: canonical frames, checked byte for byte.  The files
 * in tests/corpus/golden/ were written by tests/corpus/make_seeds.py with
 * Python's struct and msgpack modules, independently of this code; each
 * case builds the same frame with our encoder and compares, then reads
 * the file back through the decoder.  A difference here is a change of
 * the wire format.
 */
#include <errno.h>
#include <time.h>

#include "runner.h"
#include "wire/fmt.h"

static uint8_t *golden(const char *name, size_t *lenp)
{
	const char *src = getenv("MG_SOURCE_DIR");
	char path[4096];
	uint8_t *p;
	FILE *f;
	long n;

	if (src == NULL || *src == '\0')
		mg_test_fail(__FILE__, __LINE__, "MG_SOURCE_DIR is not set (ctest sets it)");
	snprintf(path, sizeof(path), "%s/tests/corpus/golden/%s", src, name);
	if ((f = fopen(path, "rb")) == NULL)
		mg_test_fail(__FILE__, __LINE__, "%s: %s", path, strerror(errno));
	CHECK(fseek(f, 0, SEEK_END) == 0);
	n = ftell(f);
	rewind(f);
	CHECK(n >= 0 && (p = malloc((size_t)n + 1)) != NULL);
	CHECK(fread(p, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	*lenp = (size_t)n;
	return p;
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

static char *copy_str(void *arg, const char *p, size_t n)
{
	static char pool[4096];
	static size_t used;
	char *c = pool + used;

	CHECK(used + n + 1 <= sizeof(pool));
	memcpy(c, p, n);
	c[n] = '\0';
	used += n + 1;
	return c;
}

static const struct mg_fmt_hooks hooks = {.str_copy = copy_str};

static int unpack(const uint8_t *p, size_t n, size_t *offp, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = mg__fmt_vunpack(p, n, offp, fmt, &ap, &hooks);
	va_end(ap);
	return r;
}

/* Frames hdr + the payload in b, compares with the file, and returns the
 * file's payload after decoding its header into *h. */
static const uint8_t *compare(const char *name, struct mg_frame_hdr *h, struct mg_buf *b,
                              uint8_t **filep)
{
	uint8_t *file, want_hdr[MG_FRAME_HDR_LEN];
	struct mg_frame_hdr got;
	size_t n;

	file = golden(name, &n);
	h->len = (uint32_t)b->len;
	mg__frame_encode(h, want_hdr);
	CHECK_EQ(n, MG_FRAME_HDR_LEN + b->len);
	CHECK_MEM(file, want_hdr, MG_FRAME_HDR_LEN);
	if (b->len > 0)
		CHECK_MEM(file + MG_FRAME_HDR_LEN, b->data, b->len);

	CHECK_OK(mg__frame_decode(file, b->len, &got));
	CHECK_EQ(got.flags, h->flags);
	CHECK_UINT(got.dst_id, ==, h->dst_id);
	CHECK_UINT(got.src_id, ==, h->src_id);
	CHECK_UINT(got.auth_id, ==, h->auth_id);
	CHECK_UINT(got.handle, ==, h->handle);
	CHECK_UINT(got.reply_to, ==, h->reply_to);
	CHECK_UINT(got.len, ==, b->len);
	if (b->len > 0)
		CHECK_EQ(mg__frame_decode(file, b->len - 1, &got), MG_ETOOBIG);
	*filep = file;
	return file + MG_FRAME_HDR_LEN;
}

TEST(golden_msgpack)
{
	struct mg_frame_hdr h = {MG_ENC_MSGPACK, 5, 0, 0, 1000, 1001, 0};
	const char *s = NULL;
	const void *y = NULL;
	const uint8_t *pl;
	uint8_t *file;
	struct mg_buf b;
	size_t off = 0, yn = 0;
	int64_t a = 0, c = 0;
	uint64_t k = 0;
	double d = 0;
	bool t = false;

	mg__buf_init(&b, 1024);
	CHECK_OK(pack(&b, "(iisynbd{su})", (int64_t)1, (int64_t)-1, "str", "bin", (size_t)3, 1, 1.5,
	              "k", (uint64_t)1 << 32));
	pl = compare("msgpack.bin", &h, &b, &file);
	CHECK_OK(unpack(pl, b.len, &off, "(iisynbd{su})", &a, &c, &s, &y, &yn, &t, &d, &s, &k));
	CHECK_EQ(off, b.len);
	CHECK(a == 1 && c == -1 && t && d == 1.5 && k == (uint64_t)1 << 32);
	CHECK(yn == 3 && memcmp(y, "bin", 3) == 0);
	CHECK_STR(s, "k");
	free(file);
	mg__buf_fini(&b);
}

TEST(golden_raw)
{
	static const char raw[] = "\x00\x01raw bytes\xff";
	struct mg_frame_hdr h = {MG_ENC_RAW, 5, 0, 0, 1002, 0, 0};
	uint8_t *file;
	struct mg_buf b;

	mg__buf_init(&b, 1024);
	CHECK_OK(mg__buf_put(&b, raw, sizeof(raw) - 1));
	compare("raw.bin", &h, &b, &file);
	free(file);
	mg__buf_fini(&b);
}

TEST(golden_dead)
{
	struct mg_frame_hdr h = {MG_ENC_MSGPACK, 0, 5, 5, 1001, MG_HANDLE_IS_DEAD, 0};
	const char *reason = NULL;
	const uint8_t *pl;
	uint8_t *file;
	struct mg_buf b;
	int64_t code = 0;
	size_t off = 0;

	mg__buf_init(&b, 1024);
	CHECK_OK(pack(&b, "(is)", (int64_t)MG_ENOROUTE, "no route to context 7"));
	pl = compare("dead.bin", &h, &b, &file);
	CHECK_OK(unpack(pl, b.len, &off, "(is)", &code, &reason));
	CHECK_EQ(code, MG_ENOROUTE);
	CHECK_STR(reason, "no route to context 7");
	free(file);
	mg__buf_fini(&b);
}

TEST(golden_ext)
{
	struct mg_frame_hdr h = {MG_ENC_MSGPACK, 1, 2, 3, MG_HANDLE_ALLOCATE_ID, 1003, 0};
	struct mg_mp_error e = {{"KeyError", 8}, {"'x'", 3}, {"local.1", 7}, {"lookup", 6}}, got;
	struct timespec t1 = {1, 0}, t2 = {4294967296, 1}, t3 = {-1, 999999999}, r1, r2, r3;
	const uint8_t *pl;
	uint8_t *file;
	struct mg_buf b;
	struct mg_mpw w;
	struct mg_mpr r;
	uint32_t ctx = 0, sctx = 0, shandle = 0;
	size_t n = 0;

	mg__buf_init(&b, 1024);
	mg__mpw_init(&w, &b);
	mg__mpw_array(&w, 6);
	mg__mpw_context(&w, 7);
	mg__mpw_sender(&w, 7, 1003);
	mg__mpw_error(&w, &e);
	CHECK_OK(w.err);
	CHECK_OK(pack(&b, "ttt", &t1, &t2, &t3));
	pl = compare("ext.bin", &h, &b, &file);
	mg__mpr_init(&r, pl, b.len);
	mg__mpr_array(&r, &n);
	mg__mpr_context(&r, &ctx);
	mg__mpr_sender(&r, &sctx, &shandle);
	mg__mpr_error(&r, &got);
	CHECK_OK(r.err);
	CHECK(n == 6 && ctx == 7 && sctx == 7 && shandle == 1003);
	CHECK(got.context.n == 7 && memcmp(got.context.p, "local.1", 7) == 0);
	CHECK(got.function.n == 6 && memcmp(got.function.p, "lookup", 6) == 0);
	n = r.off;
	CHECK_OK(unpack(pl, b.len, &n, "ttt", &r1, &r2, &r3));
	CHECK(r1.tv_sec == 1 && r1.tv_nsec == 0);
	CHECK(r2.tv_sec == 4294967296 && r2.tv_nsec == 1);
	CHECK(r3.tv_sec == -1 && r3.tv_nsec == 999999999);
	free(file);
	mg__buf_fini(&b);
}

TEST(golden_empty)
{
	struct mg_frame_hdr h = {MG_ENC_MSGPACK, 0xffffffff, 0, 0, MG_HANDLE_SHUTDOWN, 0, 0};
	uint8_t *file;
	struct mg_buf b;

	mg__buf_init(&b, 1024);
	compare("empty.bin", &h, &b, &file);
	free(file);
	mg__buf_fini(&b);
}
