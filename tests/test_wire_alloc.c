/*
 * test_wire_alloc.c: every allocation the wire layer makes may fail.  Each
 * case fails the 1st, 2nd, ... allocation of an operation until it runs
 * clean, and checks the operation left everything as it was every time.
 */
#include <errno.h>

#include "runner.h"
#include "wire/fmt.h"

static int live; /* strings the hook handed out and nobody freed */
static char *copies[64];
static int n_copies;

static char *copy_str(void *arg, const char *p, size_t n)
{
	char *c = mg__malloc(n + 1);

	if (c == NULL)
		return NULL;
	memcpy(c, p, n);
	c[n] = '\0';
	copies[n_copies++] = c;
	live++;
	return c;
}

static int new_sender(void *arg, uint32_t ctx, uint32_t handle, void **senderp)
{
	uint32_t *s = mg__malloc(2 * sizeof(*s));

	if (s == NULL)
		return -ENOMEM;
	s[0] = ctx;
	s[1] = handle;
	live++;
	*senderp = s;
	return 0;
}

static void free_sender(void *arg, void *s)
{
	live--;
	mg__free(s);
}

static int ref_sender(void *arg, const void *s, uint32_t *ctxp, uint32_t *handlep)
{
	*ctxp = ((const uint32_t *)s)[0];
	*handlep = ((const uint32_t *)s)[1];
	return 0;
}

static const struct mg_fmt_hooks hooks = {NULL, ref_sender, new_sender, free_sender, copy_str};

static void free_copies(void)
{
	while (n_copies > 0) {
		mg__free(copies[--n_copies]);
		live--;
	}
}

static int pack(struct mg_buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = mg__fmt_vpack(b, fmt, &ap, &hooks);
	va_end(ap);
	return r;
}

static int unpack(const struct mg_buf *b, size_t *offp, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = mg__fmt_vunpack(b->data, b->len, offp, fmt, &ap, &hooks);
	va_end(ap);
	return r;
}

TEST(alloc_writer_growth)
{
	static char text[5000];
	struct mg_buf b;
	struct mg_mpw w;
	long n;
	int i;

	memset(text, 't', sizeof(text));
	for (n = 1;; n++) {
		mg__buf_init(&b, 1 << 20);
		mg__mpw_init(&w, &b);
		mg__alloc_fail_after(n);
		for (i = 0; i < 50; i++) {
			size_t before = b.len;
			if (mg__mpw_str(&w, text, (size_t)i * 100) != 0) {
				CHECK_EQ(w.err, -ENOMEM);
				CHECK_EQ(b.len, before);
				break;
			}
		}
		mg__alloc_fail_after(0);
		mg__buf_fini(&b);
		if (w.err == 0)
			break;
		CHECK(n < 100);
	}
	CHECK(n > 3); /* the buffer did grow a few times */
}

TEST(alloc_fmt_pack)
{
	static const char big[3000];
	struct mg_buf b;
	uint32_t snd[2] = {1, 2};
	long n;
	int r;

	for (n = 1;; n++) {
		mg__buf_init(&b, 1 << 20);
		CHECK_OK(mg__buf_put(&b, "prefix", 6));
		mg__alloc_fail_after(n);
		r = pack(&b, "(s y h {si}) y", "hello", big, (size_t)100, snd, "k", (int64_t)-1,
		         big, sizeof(big));
		mg__alloc_fail_after(0);
		if (r == 0) {
			mg__buf_fini(&b);
			break;
		}
		CHECK_EQ(r, -ENOMEM);
		CHECK_EQ(b.len, 6);
		CHECK_MEM(b.data, "prefix", 6);
		mg__buf_fini(&b);
		CHECK(n < 100);
	}
	CHECK(n > 1);
}

TEST(alloc_fmt_unpack)
{
	const char *s[18];
	void *h = NULL;
	struct mg_buf b;
	size_t off;
	long n;
	int r, i;

	mg__buf_init(&b, 1 << 20);
	CHECK_OK(pack(&b, "(sssssssss sssssssss) h", "a", "b", "c", "d", "e", "f", "g", "h", "i",
	              "j", "k", "l", "m", "n", "o", "p", "q", "r", (uint32_t[]){7, 8}));
	/* 19 entries: the side table comes from the allocator too. */
	for (n = 1;; n++) {
		memset(s, 0, sizeof(s));
		h = NULL;
		off = 0;
		mg__alloc_fail_after(n);
		r = unpack(&b, &off, "(sssssssss sssssssss) h", &s[0], &s[1], &s[2], &s[3], &s[4],
		           &s[5], &s[6], &s[7], &s[8], &s[9], &s[10], &s[11], &s[12], &s[13],
		           &s[14], &s[15], &s[16], &s[17], &h);
		mg__alloc_fail_after(0);
		if (r == 0)
			break;
		CHECK_EQ(r, -ENOMEM);
		CHECK_EQ(off, 0);
		CHECK(h == NULL);
		for (i = 0; i < 18; i++)
			CHECK(s[i] == NULL);
		/* Strings copied before the failure belong to the message
		 * (here: this test); no sender survives. */
		free_copies();
		CHECK_EQ(live, 0);
		CHECK(n < 100);
	}
	CHECK_EQ(n, 18 + 1 + 1 + 1); /* table, 18 copies, the sender, then clean */
	CHECK_STR(s[17], "r");
	CHECK_EQ(((uint32_t *)h)[1], 8);
	free_sender(NULL, h);
	free_copies();
	CHECK_EQ(live, 0);
	CHECK_EQ(off, b.len);
	mg__buf_fini(&b);
}

TEST(alloc_steal_and_reuse)
{
	struct mg_buf b;
	size_t n;
	uint8_t *p;

	mg__buf_init(&b, 100);
	mg__alloc_fail_after(1);
	CHECK_EQ(mg__buf_put(&b, "x", 1), -ENOMEM);
	CHECK(mg__buf_steal(&b, &n) == NULL);
	CHECK_EQ(n, 0);
	CHECK_OK(mg__buf_put(&b, "x", 1));
	p = mg__buf_steal(&b, &n);
	CHECK(p != NULL && n == 1);
	mg__free(p);
	mg__alloc_fail_after(0);
}

TEST(big_buffers_are_reused_within_a_budget)
{
	enum { CAP = 512 * 1024, MANY = 8 };
	struct mg_buf b;
	void *p[MANY], *q;
	int i, kept = 0;

	/* A freed big buffer comes back for the next one of its size. */
	mg__buf_init(&b, 1u << 30);
	CHECK_OK(mg__buf_reserve(&b, 300000));
	CHECK_EQ(b.cap, CAP);
	q = b.data;
	mg__buf_fini(&b);
	CHECK_OK(mg__buf_reserve(&b, 400000));
	CHECK(b.data == q);
	memset(b.data, 1, b.cap);
	mg__buf_fini(&b);

	/* Freeing more than the budget (2 MiB) keeps some and frees the rest;
	 * no buffer is ever handed out twice. */
	for (i = 0; i < MANY; i++)
		CHECK((p[i] = mg__chunk_alloc(CAP)) != NULL);
	for (i = 0; i < MANY; i++)
		mg__chunk_free(p[i], CAP);
	for (i = 0; i < MANY; i++) {
		p[i] = mg__chunk_alloc(CAP);
		CHECK(p[i] != NULL);
	}
	for (i = 0; i < MANY; i++) {
		int j;
		for (j = 0; j < MANY; j++)
			kept += i != j && p[i] == p[j];
	}
	CHECK_EQ(kept, 0);
	for (i = 0; i < MANY; i++)
		mg__chunk_free(p[i], CAP);

	/* Other sizes are plain allocations; a reused one still counts as an
	 * allocation that a test can make fail. */
	mg__chunk_free(mg__chunk_alloc(300000), 300000);
	mg__alloc_fail_after(1);
	CHECK(mg__chunk_alloc(CAP) == NULL);
	mg__alloc_fail_after(0);
}
