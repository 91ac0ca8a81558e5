/*
 * fuzz_fmt_unpack.c: the format-string unpacker.
 *
 * Input byte 0 picks the mode.  Below FIXED_COUNT it names one of a few
 * fixed formats the library really uses; the rest of the input is the
 * data.  Whatever unpacks is packed again with the same format and must
 * unpack to the same values, in no more bytes than it came from.
 *
 * Otherwise byte 1 is a format length, the next bytes the format (any
 * bytes at all) and the rest the data.  Every out-parameter of the
 * unpacker is a pointer, so the arguments are pointers to separate slots
 * of a scratch area; whatever the format, a failed unpack must leave the
 * slots and the offset untouched, and no sender may outlive it.
 */
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "fuzz.h"
#include "wire/fmt.h"

/* ------------------------------------------------------------------------ */
/* Hooks: copies and senders are tracked so leaks and double frees show. */

#define TRACK_MAX 256

static void *copies[TRACK_MAX];
static int n_copies;
static void *senders[TRACK_MAX];
static int n_senders;

static char *fz_str_copy(void *arg, const char *p, size_t n)
{
	char *c;

	if (n_copies == TRACK_MAX || (c = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(c, p, n);
	c[n] = '\0';
	FUZZ_ASSERT(strlen(c) == n); /* 's' refuses strs with a NUL */
	copies[n_copies++] = c;
	return c;
}

static int fz_sender_new(void *arg, uint32_t ctx, uint32_t handle, void **senderp)
{
	uint32_t *s;

	if (ctx == 0xdeadbeef)
		return MG_EREFUSED; /* lets the fuzzer reach the undo path */
	if (n_senders == TRACK_MAX || (s = malloc(2 * sizeof(*s))) == NULL)
		return -12;
	s[0] = ctx;
	s[1] = handle;
	senders[n_senders++] = s;
	*senderp = s;
	return 0;
}

static void fz_sender_free(void *arg, void *sender)
{
	int i;

	for (i = 0; i < n_senders; i++)
		if (senders[i] == sender) {
			senders[i] = senders[--n_senders];
			free(sender);
			return;
		}
	FUZZ_ASSERT(!"freed a sender that was not live");
}

static int fz_sender_ref(void *arg, const void *sender, uint32_t *ctxp, uint32_t *handlep)
{
	*ctxp = ((const uint32_t *)sender)[0];
	*handlep = ((const uint32_t *)sender)[1];
	return 0;
}

static const struct mg_fmt_hooks hooks = {NULL, fz_sender_ref, fz_sender_new, fz_sender_free,
                                          fz_str_copy};

static void release_all(void)
{
	while (n_copies > 0)
		free(copies[--n_copies]);
	while (n_senders > 0)
		free(senders[--n_senders]);
}

static int unpack(const uint8_t *d, size_t n, size_t *offp, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = mg__fmt_vunpack(d, n, offp, fmt, &ap, &hooks);
	va_end(ap);
	return r;
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

/* ------------------------------------------------------------------------ */
/* Fixed formats: the values of one unpack. */

struct vals {
	int64_t i[2];
	uint64_t u;
	bool b;
	float f;
	double d;
	const char *s[3];
	const char *sv;
	size_t sn;
	const void *y, *v;
	size_t yn, vn, an;
	struct timespec t;
	uint32_t c;
	void *h;
};

/* Slots a format does not use hold the same fill pattern in both, so equal
 * pointers count as the same value. */
static bool same_view(const void *a, size_t an, const void *b, size_t bn)
{
	return an == bn && (a == b || an == 0 || memcmp(a, b, an) == 0);
}

/* 'f' packs from a double, and a float signalling NaN comes back quiet;
 * any NaN is the same value here. */
static bool same_float(double a, double b)
{
	return memcmp(&a, &b, sizeof(a)) == 0 || (a != a && b != b);
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void check_same(const struct vals *a, const struct vals *b)
{
	int k;

	/* bool compared as bytes: unused slots hold a pattern, not a bool. */
	FUZZ_ASSERT(memcmp(a->i, b->i, sizeof(a->i)) == 0 && a->u == b->u);
	FUZZ_ASSERT(memcmp(&a->b, &b->b, sizeof(a->b)) == 0);
	FUZZ_ASSERT(memcmp(&a->f, &b->f, sizeof(a->f)) == 0 || same_float(a->f, b->f));
	FUZZ_ASSERT(same_float(a->d, b->d));
	for (k = 0; k < 3; k++)
		FUZZ_ASSERT(same_str(a->s[k], b->s[k]));
	FUZZ_ASSERT(same_view(a->sv, a->sn, b->sv, b->sn));
	FUZZ_ASSERT(same_view(a->y, a->yn, b->y, b->yn));
	FUZZ_ASSERT(same_view(a->v, a->vn, b->v, b->vn));
	FUZZ_ASSERT(a->an == b->an && a->c == b->c);
	FUZZ_ASSERT(a->t.tv_sec == b->t.tv_sec && a->t.tv_nsec == b->t.tv_nsec);
	FUZZ_ASSERT(same_view(a->h, 2 * sizeof(uint32_t), b->h, 2 * sizeof(uint32_t)));
}

#define FIXED_COUNT 12

static const char *const fixed_fmt[FIXED_COUNT] = {
        "i",    "u",   "(is)",    "{si}", "(sSy)",       "t",
        "(ch)", "v v", "(bfd n)", "s",    "(i(ss){sy})", "a ii",
};

/* Unpacks with format k into v (every slot used by that format). */
static int fixed_unpack(int k, const uint8_t *d, size_t n, size_t *offp, struct vals *v)
{
	switch (k) {
	case 0:
		return unpack(d, n, offp, fixed_fmt[k], &v->i[0]);
	case 1:
		return unpack(d, n, offp, fixed_fmt[k], &v->u);
	case 2:
		return unpack(d, n, offp, fixed_fmt[k], &v->i[0], &v->s[0]);
	case 3:
		return unpack(d, n, offp, fixed_fmt[k], &v->s[0], &v->i[0]);
	case 4:
		return unpack(d, n, offp, fixed_fmt[k], &v->s[0], &v->sv, &v->sn, &v->y, &v->yn);
	case 5:
		return unpack(d, n, offp, fixed_fmt[k], &v->t);
	case 6:
		return unpack(d, n, offp, fixed_fmt[k], &v->c, &v->h);
	case 7:
		return unpack(d, n, offp, fixed_fmt[k], &v->v, &v->vn, &v->y, &v->yn);
	case 8:
		return unpack(d, n, offp, fixed_fmt[k], &v->b, &v->f, &v->d);
	case 9:
		return unpack(d, n, offp, fixed_fmt[k], &v->s[0]);
	case 10:
		return unpack(d, n, offp, fixed_fmt[k], &v->i[0], &v->s[0], &v->s[1], &v->s[2],
		              &v->y, &v->yn);
	default:
		return unpack(d, n, offp, fixed_fmt[k], &v->an, &v->i[0], &v->i[1]);
	}
}

static int fixed_pack(int k, struct mg_buf *b, const struct vals *v)
{
	switch (k) {
	case 0:
		return pack(b, fixed_fmt[k], v->i[0]);
	case 1:
		return pack(b, fixed_fmt[k], v->u);
	case 2:
		return pack(b, fixed_fmt[k], v->i[0], v->s[0]);
	case 3:
		return pack(b, fixed_fmt[k], v->s[0], v->i[0]);
	case 4:
		return pack(b, fixed_fmt[k], v->s[0], v->sv, v->sn, v->y, v->yn);
	case 5:
		return pack(b, fixed_fmt[k], &v->t);
	case 6:
		return pack(b, fixed_fmt[k], v->c, v->h);
	case 7:
		return pack(b, fixed_fmt[k], v->v, v->vn, v->y, v->yn);
	case 8:
		return pack(b, fixed_fmt[k], (int)v->b, (double)v->f, v->d);
	case 9:
		return pack(b, fixed_fmt[k], v->s[0]);
	case 10:
		return pack(b, fixed_fmt[k], v->i[0], v->s[0], v->s[1], v->s[2], v->y, v->yn);
	default:
		return pack(b, fixed_fmt[k], v->an, v->i[0], v->i[1]);
	}
}

static void fuzz_fixed(int k, const uint8_t *d, size_t n)
{
	struct vals v, sentinel, again;
	struct mg_buf b;
	size_t off = 0, off2 = 0;
	int r;

	memset(&v, 0xa5, sizeof(v));
	sentinel = v;
	r = fixed_unpack(k, d, n, &off, &v);
	if (r != 0) {
		FUZZ_ASSERT(off == 0 && memcmp(&v, &sentinel, sizeof(v)) == 0);
		FUZZ_ASSERT(n_senders == 0);
		return;
	}
	FUZZ_ASSERT(off <= n);
	/* "a ii" with a count over 2 announces elements past the two ints;
	 * repacked alone, the reader rightly refuses a count the bytes left
	 * cannot hold. */
	if (k == 11 && v.an > 2)
		return;
	mg__buf_init(&b, 2 * n + 64);
	FUZZ_ASSERT(fixed_pack(k, &b, &v) == 0);
	/* Canonical encodings are the smallest, except that 'd' reads a
	 * float 32 and writes it back as a float 64. */
	FUZZ_ASSERT(b.len <= off || k == 8);
	memset(&again, 0xa5, sizeof(again));
	FUZZ_ASSERT(fixed_unpack(k, b.data, b.len, &off2, &again) == 0);
	FUZZ_ASSERT(off2 == b.len);
	check_same(&v, &again);
	mg__buf_fini(&b);
}

/* ------------------------------------------------------------------------ */
/* Arbitrary formats */

#define SLOTS 48

static void fuzz_any(const uint8_t *d, size_t n)
{
	union slot {
		uint8_t bytes[32];
		void *align;
		long double ld;
	} slots[SLOTS], orig[SLOTS];
	char fmt[64];
	size_t flen, off, args = 0, i;
	int r;

	if (n < 1)
		return;
	flen = d[0] % sizeof(fmt);
	if (flen > n - 1)
		flen = n - 1;
	memcpy(fmt, d + 1, flen);
	fmt[flen] = '\0';
	d += 1 + flen;
	n -= 1 + flen;
	/* Arguments the format takes: two for the views, none for 'n', the
	 * brackets and white space, one for each other letter. */
	for (i = 0; fmt[i] != '\0'; i++) {
		if (strchr("Syv", fmt[i]) != NULL)
			args += 2;
		else if (strchr("biufdstcham", fmt[i]) != NULL)
			args += 1;
	}
	if (args > SLOTS)
		return;
	memset(slots, 0xa5, sizeof(slots));
	memcpy(orig, slots, sizeof(slots));
	off = n / 3; /* start part-way in, to exercise *offp */
	r = unpack(d, n, &off, fmt, &slots[0], &slots[1], &slots[2], &slots[3], &slots[4],
	           &slots[5], &slots[6], &slots[7], &slots[8], &slots[9], &slots[10], &slots[11],
	           &slots[12], &slots[13], &slots[14], &slots[15], &slots[16], &slots[17],
	           &slots[18], &slots[19], &slots[20], &slots[21], &slots[22], &slots[23],
	           &slots[24], &slots[25], &slots[26], &slots[27], &slots[28], &slots[29],
	           &slots[30], &slots[31], &slots[32], &slots[33], &slots[34], &slots[35],
	           &slots[36], &slots[37], &slots[38], &slots[39], &slots[40], &slots[41],
	           &slots[42], &slots[43], &slots[44], &slots[45], &slots[46], &slots[47]);
	if (r != 0) {
		FUZZ_ASSERT(off == n / 3);
		FUZZ_ASSERT(memcmp(slots, orig, sizeof(slots)) == 0);
		FUZZ_ASSERT(n_senders == 0);
	} else {
		FUZZ_ASSERT(off >= n / 3 && off <= n);
	}
}

int mg_fuzz_fmt_unpack(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] < FIXED_COUNT)
		fuzz_fixed(data[0], data + 1, size - 1);
	else
		fuzz_any(data + 1, size - 1);
	release_all();
	return 0;
}

#ifndef MG_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return mg_fuzz_fmt_unpack(data, size);
}
#endif
