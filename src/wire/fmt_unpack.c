/*
 * fmt_unpack.c: reading values by format string, all or nothing.
 *
 * The format is walked up to three times over the same bytes:
 *   CHECK  decodes everything and writes nothing, so bad data fails with
 *          no side effect at all;
 *   ALLOC  runs the hooks ('s' copies, 'h' senders) into a side table, so
 *          running out of memory also fails before anything is written
 *          (the senders made so far are freed again);
 *   WRITE  decodes once more and stores the values.  It cannot fail: the
 *          bytes are the ones CHECK accepted.
 * Each pass takes its arguments from its own copy of the va_list.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "wire/fmt.h"

enum pass { CHECK, ALLOC, WRITE };

/* The side table holds at most this many entries on the stack. */
#define SLOTS_INLINE 16

struct unpack {
	struct mg_mpr r;
	const struct mg_fmt_hooks *hooks;
	enum pass pass;
	void **strs;              /* 's' copies (char *), in format order */
	void **senders;           /* 'h' senders, in format order */
	unsigned n_str, n_sender; /* entries used so far in this pass */
	unsigned n_made;          /* senders made by ALLOC, for undoing */
};

/* time_t may be narrower than the wire's 64-bit seconds. */
static bool fits_time_t(int64_t sec)
{
	time_t t = (time_t)sec;

	return (int64_t)t == sec;
}

static int unpack_str(struct unpack *u, const char **out)
{
	const char *p;
	size_t n;
	char *c;

	if (mg__mpr_peek(&u->r) == MG_MP_NIL) {
		if (mg__mpr_nil(&u->r) == 0 && u->pass == WRITE && out != NULL)
			*out = NULL;
		return u->r.err;
	}
	if (mg__mpr_str(&u->r, &p, &n) != 0)
		return u->r.err;
	if (n > 0 && memchr(p, '\0', n) != NULL)
		return u->r.err = MG_EDECODE;
	if (out == NULL)
		return 0;
	if (u->pass == ALLOC) {
		if ((c = u->hooks->str_copy(u->hooks->arg, p, n)) == NULL)
			return -ENOMEM;
		u->strs[u->n_str] = c;
	} else if (u->pass == WRITE) {
		*out = u->strs[u->n_str];
	}
	u->n_str++;
	return 0;
}

static int unpack_sender(struct unpack *u, void **out)
{
	uint32_t ctx, handle;
	void *s;
	int e;

	if (mg__mpr_sender(&u->r, &ctx, &handle) != 0 || out == NULL)
		return u->r.err;
	if (u->pass == ALLOC) {
		s = NULL;
		if ((e = u->hooks->sender_new(u->hooks->arg, ctx, handle, &s)) != 0)
			return e;
		u->senders[u->n_sender] = s;
		u->n_made++;
	} else if (u->pass == WRITE) {
		*out = u->senders[u->n_sender];
	}
	u->n_sender++;
	return 0;
}

/* Counts must match the format exactly, as a tuple's length would. */
static int unpack_group(struct unpack *u, const char *p)
{
	size_t n, want = mg__fmt_items(p + 1);

	if (*p == '(') {
		mg__mpr_array(&u->r, &n);
	} else {
		mg__mpr_map(&u->r, &n);
		want /= 2;
	}
	if (u->r.err == 0 && n != want)
		u->r.err = MG_EDECODE;
	return u->r.err;
}

/* The value goes to *out only in the WRITE pass and when out is set. */
#define STORE(type, out, v)                                          \
	do {                                                         \
		type *o_ = (out);                                    \
		if (u->r.err == 0 && u->pass == WRITE && o_ != NULL) \
			*o_ = (v);                                   \
	} while (0)

static int unpack_one(struct unpack *u, const char *p, va_list *ap)
{
	struct mg_mpr *r = &u->r;
	const char *sp;
	const void *v;
	size_t n;
	union {
		bool b;
		int64_t i;
		uint64_t u;
		float f;
		double d;
		uint32_t c;
		struct {
			int64_t sec;
			uint32_t nsec;
		} t;
	} x;

	switch (*p) {
	case 'n':
		return mg__mpr_nil(r);
	case 'b':
		mg__mpr_bool(r, &x.b);
		STORE(bool, va_arg(*ap, bool *), x.b);
		return r->err;
	case 'i':
		mg__mpr_int(r, &x.i);
		STORE(int64_t, va_arg(*ap, int64_t *), x.i);
		return r->err;
	case 'u':
		mg__mpr_uint(r, &x.u);
		STORE(uint64_t, va_arg(*ap, uint64_t *), x.u);
		return r->err;
	case 'f':
		mg__mpr_float(r, &x.f);
		STORE(float, va_arg(*ap, float *), x.f);
		return r->err;
	case 'd':
		mg__mpr_double(r, &x.d);
		STORE(double, va_arg(*ap, double *), x.d);
		return r->err;
	case 's':
		return unpack_str(u, va_arg(*ap, const char **));
	case 'S':
	case 'y':
	case 'v': {
		const void **pp = va_arg(*ap, const void **);
		size_t *np = va_arg(*ap, size_t *);

		if (*p == 'S') {
			if (mg__mpr_str(r, &sp, &n) == 0)
				v = sp;
		} else if (*p == 'y') {
			mg__mpr_bin(r, &v, &n);
		} else {
			mg__mpr_value(r, &v, &n);
		}
		STORE(const void *, pp, v);
		STORE(size_t, np, n);
		return r->err;
	}
	case 't': {
		struct timespec *o = va_arg(*ap, struct timespec *);

		if (mg__mpr_timestamp(r, &x.t.sec, &x.t.nsec) == 0 && !fits_time_t(x.t.sec))
			r->err = MG_EDECODE;
		if (r->err == 0 && u->pass == WRITE && o != NULL) {
			o->tv_sec = (time_t)x.t.sec;
			o->tv_nsec = (long)x.t.nsec;
		}
		return r->err;
	}
	case 'c':
		mg__mpr_context(r, &x.c);
		STORE(uint32_t, va_arg(*ap, uint32_t *), x.c);
		return r->err;
	case 'h':
		return unpack_sender(u, va_arg(*ap, void **));
	case 'a':
		mg__mpr_array(r, &n);
		STORE(size_t, va_arg(*ap, size_t *), n);
		return r->err;
	case 'm':
		mg__mpr_map(r, &n);
		STORE(size_t, va_arg(*ap, size_t *), n);
		return r->err;
	case '(':
	case '{':
		return unpack_group(u, p);
	default:
		return 0; /* white space and closing brackets */
	}
}

static int run_pass(struct unpack *u, enum pass pass, size_t off, const char *fmt, va_list *ap)
{
	int e = 0;

	u->pass = pass;
	u->r.off = off;
	u->r.err = 0;
	u->n_str = 0;
	u->n_sender = 0;
	for (; *fmt != '\0' && e == 0; fmt++)
		e = unpack_one(u, fmt, ap);
	return e;
}

int mg__fmt_vunpack(const uint8_t *data, size_t len, size_t *offp, const char *fmt, va_list *ap,
                    const struct mg_fmt_hooks *hooks)
{
	void *inline_slots[SLOTS_INLINE], **slots = inline_slots;
	unsigned n_str, n_sender, i;
	struct unpack u;
	va_list aq;
	int e;

	if ((e = mg__fmt_scan(fmt, &n_str, &n_sender)) != 0)
		return e;
	if (n_str > 0 && (hooks == NULL || hooks->str_copy == NULL))
		return MG_EFORMAT;
	if (n_sender > 0 &&
	    (hooks == NULL || hooks->sender_new == NULL || hooks->sender_free == NULL))
		return MG_EFORMAT;
	if (*offp > len)
		return MG_EDECODE;
	mg__mpr_init(&u.r, data, len);
	u.hooks = hooks;
	u.n_made = 0;

	va_copy(aq, *ap);
	e = run_pass(&u, CHECK, *offp, fmt, &aq);
	va_end(aq);
	if (e != 0)
		return e;

	if (n_str + n_sender > 0) {
		if (n_str + n_sender > SLOTS_INLINE &&
		    (slots = mg__calloc(n_str + n_sender, sizeof(*slots))) == NULL)
			return -ENOMEM;
		u.strs = slots;
		u.senders = slots + n_str;
		va_copy(aq, *ap);
		e = run_pass(&u, ALLOC, *offp, fmt, &aq);
		va_end(aq);
		if (e != 0) {
			for (i = 0; i < u.n_made; i++)
				hooks->sender_free(hooks->arg, u.senders[i]);
			goto out;
		}
	}

	run_pass(&u, WRITE, *offp, fmt, ap);
	*offp = u.r.off;
out:
	if (slots != inline_slots)
		mg__free(slots);
	return e;
}
