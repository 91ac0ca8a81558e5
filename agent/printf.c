/*
 * printf.c: the agent's own snprintf family.  musl's vfprintf carries its
 * floating-point formatter and the stdio plumbing with it (~10 KB of the
 * static agent, ~5 KB of the bytes a first connect sends), while the
 * library only ever formats text and integers into buffers.  Linked ahead
 * of libc.a, these definitions keep musl's from being pulled in at all.
 *
 * Supported: the flags - 0 + space #, a width and a precision (either may
 * be *), the lengths hh h l ll z j t, and the conversions d i u o x X c s
 * p %.  Anything else (floating point, %n) is copied out as written, so a
 * misuse shows in the text rather than reading a wrong argument.
 *
 * tests/test_agent_libc.c compiles this file beside glibc's printf and
 * compares both over the formats the library uses.
 */
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* tests/test_agent_libc.c builds this file under other names, beside the
 * C library's own. */
#ifdef MG_AGENT_LIBC_TEST
#define vsnprintf mg__agent_vsnprintf
#define snprintf mg__agent_snprintf
int vsnprintf(char *restrict buf, size_t size, const char *restrict fmt, va_list ap);
int snprintf(char *restrict buf, size_t size, const char *restrict fmt, ...);
#endif

/* Where the output goes: at most cap - 1 bytes are stored, len counts all. */
struct out {
	char *buf;
	size_t cap;
	size_t len;
};

static void put(struct out *o, char c, size_t n)
{
	while (n-- > 0) {
		if (o->len + 1 < o->cap)
			o->buf[o->len] = c;
		o->len++;
	}
}

static void put_str(struct out *o, const char *s, size_t n)
{
	while (n-- > 0)
		put(o, *s++, 1);
}

enum { F_LEFT = 1, F_ZERO = 2, F_PLUS = 4, F_SPACE = 8, F_ALT = 16 };

/* Pads body (with its prefix: sign or 0x) to the width, as C99 7.19.6.1
 * says: zeros after the prefix under 0 without a precision, else spaces. */
static void put_field(struct out *o, const char *prefix, const char *body, size_t len, size_t zeros,
                      int flags, int width)
{
	size_t plen = strlen(prefix), total = plen + zeros + len;
	size_t pad = width > 0 && (size_t)width > total ? (size_t)width - total : 0;

	if (!(flags & (F_LEFT | F_ZERO)))
		put(o, ' ', pad);
	put_str(o, prefix, plen);
	if (flags & F_ZERO && !(flags & F_LEFT))
		put(o, '0', pad);
	put(o, '0', zeros);
	put_str(o, body, len);
	if (flags & F_LEFT)
		put(o, ' ', pad);
}

int vsnprintf(char *restrict buf, size_t size, const char *restrict fmt, va_list ap)
{
	struct out o = {buf, size, 0};
	const char *p;

	for (p = fmt; *p != '\0'; p++) {
		const char *start = p, *s, *prefix = "";
		char digits[24], *d;
		int flags = 0, width = 0, prec = -1, lng = 0, base = 10;
		uintmax_t u;
		size_t n;

		if (*p != '%') {
			put(&o, *p, 1);
			continue;
		}
		for (;; p++) {
			if (p[1] == '-')
				flags |= F_LEFT;
			else if (p[1] == '0')
				flags |= F_ZERO;
			else if (p[1] == '+')
				flags |= F_PLUS;
			else if (p[1] == ' ')
				flags |= F_SPACE;
			else if (p[1] == '#')
				flags |= F_ALT;
			else
				break;
		}
		if (*++p == '*') {
			if ((width = va_arg(ap, int)) < 0) {
				flags |= F_LEFT;
				width = -width;
			}
			p++;
		} else
			while (*p >= '0' && *p <= '9')
				width = width * 10 + (*p++ - '0');
		if (*p == '.') {
			prec = 0;
			if (*++p == '*') {
				prec = va_arg(ap, int);
				p++;
			} else
				while (*p >= '0' && *p <= '9')
					prec = prec * 10 + (*p++ - '0');
		}
		/* lng: -2 hh, -1 h, 0 int, 1 long, 2 long long or wider. */
		for (;; p++) {
			if (*p == 'h')
				lng--;
			else if (*p == 'l')
				lng++;
			else if (*p == 'z' || *p == 'j' || *p == 't')
				lng = 2;
			else
				break;
		}
		switch (*p) {
		case '%':
			put(&o, '%', 1);
			continue;
		case 'c':
			digits[0] = (char)va_arg(ap, int);
			put_field(&o, "", digits, 1, 0, flags & ~F_ZERO, width);
			continue;
		case 's':
			if ((s = va_arg(ap, const char *)) == NULL)
				s = "(null)";
			n = prec >= 0 ? strnlen(s, (size_t)prec) : strlen(s);
			put_field(&o, "", s, n, 0, flags & ~F_ZERO, width);
			continue;
		case 'd':
		case 'i': {
			intmax_t v = lng >= 2   ? va_arg(ap, long long)
			             : lng == 1 ? va_arg(ap, long)
			                        : va_arg(ap, int);

			if (lng == -1)
				v = (short)v;
			else if (lng <= -2)
				v = (signed char)v;
			u = v < 0 ? -(uintmax_t)v : (uintmax_t)v;
			prefix = v < 0 ? "-" : flags & F_PLUS ? "+" : flags & F_SPACE ? " " : "";
			break;
		}
		case 'p':
			u = (uintptr_t)va_arg(ap, void *);
			base = 16;
			prefix = "0x";
			break;
		case 'o':
		case 'u':
		case 'x':
		case 'X':
			u = lng >= 2   ? va_arg(ap, unsigned long long)
			    : lng == 1 ? va_arg(ap, unsigned long)
			               : va_arg(ap, unsigned);
			if (lng == -1)
				u = (unsigned short)u;
			else if (lng <= -2)
				u = (unsigned char)u;
			base = *p == 'o' ? 8 : *p == 'u' ? 10 : 16;
			if (flags & F_ALT && u != 0 && base == 16)
				prefix = *p == 'x' ? "0x" : "0X";
			break;
		default:
			/* Not supported (see the top): the text as written. */
			put_str(&o, start, (size_t)(p - start) + (*p != '\0'));
			if (*p == '\0')
				p--;
			continue;
		}
		d = digits + sizeof(digits);
		while (u != 0) {
			*--d = (*p == 'X' ? "0123456789ABCDEF"
			                  : "0123456789abcdef")[u % (unsigned)base];
			u /= (unsigned)base;
		}
		n = (size_t)(digits + sizeof(digits) - d);
		if (*p == 'o' && flags & F_ALT && (prec < 0 || (size_t)prec <= n))
			prec = (int)n + 1;
		if (prec >= 0)
			flags &= ~F_ZERO;
		else
			prec = 1;
		put_field(&o, prefix, d, n, (size_t)prec > n ? (size_t)prec - n : 0, flags, width);
	}
	if (size > 0)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return o.len > INT_MAX ? -1 : (int)o.len;
}

/* musl's sprintf and vsprintf (used once) are thin and call this
 * vsnprintf, so they need no stand-in. */
int snprintf(char *restrict buf, size_t size, const char *restrict fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return r;
}
