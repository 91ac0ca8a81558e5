/*
 * fmt.c: format strings, the checks shared by both directions, and packing.
 * Packing writes straight into the caller's buffer and, on any failure,
 * cuts it back to where it started, so a message is never left holding
 * half of an append.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "wire/fmt.h"

static bool is_letter(char c)
{
	return c != '\0' && strchr("nbiufdsSytchvam", c) != NULL;
}

int mg__fmt_scan(const char *fmt, unsigned *n_strp, unsigned *n_senderp)
{
	char closer[MG_FMT_MAX_DEPTH];
	size_t items[MG_FMT_MAX_DEPTH];
	unsigned n_str = 0, n_sender = 0;
	int depth = 0;
	const char *p;

	if (fmt == NULL)
		return MG_EFORMAT;
	for (p = fmt; *p != '\0'; p++) {
		char c = *p;

		if (mg__fmt_space(c))
			continue;
		if (c == ')' || c == '}') {
			if (depth == 0 || closer[depth - 1] != c)
				return MG_EFORMAT;
			if (c == '}' && items[depth - 1] % 2 != 0)
				return MG_EFORMAT;
			depth--;
			continue;
		}
		if (c != '(' && c != '{' && !is_letter(c))
			return MG_EFORMAT;
		if (depth > 0)
			items[depth - 1]++;
		if (c == 's')
			n_str++;
		else if (c == 'h')
			n_sender++;
		else if (c == '(' || c == '{') {
			if (depth == MG_FMT_MAX_DEPTH)
				return MG_EFORMAT;
			closer[depth] = c == '(' ? ')' : '}';
			items[depth] = 0;
			depth++;
		}
	}
	if (depth != 0)
		return MG_EFORMAT;
	*n_strp = n_str;
	*n_senderp = n_sender;
	return 0;
}

size_t mg__fmt_items(const char *p)
{
	size_t n = 0;
	int depth = 0;

	for (; *p != '\0'; p++) {
		if (mg__fmt_space(*p))
			continue;
		if (*p == ')' || *p == '}') {
			if (depth-- == 0)
				break;
			continue;
		}
		if (depth == 0)
			n++;
		if (*p == '(' || *p == '{')
			depth++;
	}
	return n;
}

/* Packs one letter (or bracket) with its arguments; errors stick in w. */
static int pack_one(struct mg_mpw *w, const char *p, va_list *ap, const struct mg_fmt_hooks *hooks)
{
	const struct timespec *ts;
	const void *v;
	const char *s;
	uint32_t ctx, handle;
	size_t n;
	int r;

	switch (*p) {
	case 'n':
		return mg__mpw_nil(w);
	case 'b':
		return mg__mpw_bool(w, va_arg(*ap, int) != 0);
	case 'i':
		return mg__mpw_int(w, va_arg(*ap, int64_t));
	case 'u':
		return mg__mpw_uint(w, va_arg(*ap, uint64_t));
	case 'f':
		return mg__mpw_float(w, (float)va_arg(*ap, double));
	case 'd':
		return mg__mpw_double(w, va_arg(*ap, double));
	case 's':
		s = va_arg(*ap, const char *);
		return s == NULL ? mg__mpw_nil(w) : mg__mpw_str(w, s, strlen(s));
	case 'S':
	case 'y':
	case 'v':
		v = va_arg(*ap, const void *);
		n = va_arg(*ap, size_t);
		if (v == NULL && n != 0)
			return -EINVAL;
		if (*p == 'S')
			return mg__mpw_str(w, v, n);
		if (*p == 'y')
			return mg__mpw_bin(w, v, n);
		if ((r = mg__mp_check_one(v, n)) != 0)
			return r;
		return mg__mpw_raw(w, v, n);
	case 't':
		ts = va_arg(*ap, const struct timespec *);
		if (ts == NULL || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)
			return -EINVAL;
		return mg__mpw_timestamp(w, (int64_t)ts->tv_sec, (uint32_t)ts->tv_nsec);
	case 'c':
		return mg__mpw_context(w, va_arg(*ap, uint32_t));
	case 'h':
		v = va_arg(*ap, const void *);
		if (v == NULL)
			return -EINVAL;
		if ((r = hooks->sender_ref(hooks->arg, v, &ctx, &handle)) != 0)
			return r;
		return mg__mpw_sender(w, ctx, handle);
	case 'a':
		return mg__mpw_array(w, va_arg(*ap, size_t));
	case 'm':
		return mg__mpw_map(w, va_arg(*ap, size_t));
	case '(':
		return mg__mpw_array(w, mg__fmt_items(p + 1));
	case '{':
		return mg__mpw_map(w, mg__fmt_items(p + 1) / 2);
	default:
		return 0; /* white space and closing brackets */
	}
}

int mg__fmt_vpack(struct mg_buf *b, const char *fmt, va_list *ap, const struct mg_fmt_hooks *hooks)
{
	size_t start = b->len;
	unsigned n_str, n_sender;
	struct mg_mpw w;
	const char *p;
	int r;

	if ((r = mg__fmt_scan(fmt, &n_str, &n_sender)) != 0)
		return r;
	if (n_sender > 0 && (hooks == NULL || hooks->sender_ref == NULL))
		return MG_EFORMAT;
	mg__mpw_init(&w, b);
	for (p = fmt; *p != '\0' && r == 0; p++)
		r = pack_one(&w, p, ap, hooks);
	if (r != 0)
		b->len = start;
	return r;
}
