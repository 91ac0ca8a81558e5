/*
 * json.c: JSON to MessagePack for `mitogen call`'s arguments, and
 * MessagePack to JSON for its results and for --json output.  Both sides
 * use the library's wire codec (src/wire/msgpack.h), so there is one
 * MessagePack implementation in the tree.  Nesting is capped at
 * MG_MP_MAX_DEPTH both ways.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "wire/msgpack.h"

/* ---- JSON -> MessagePack ------------------------------------------------- */

struct jp {
	const char *s, *p;
	struct mg_buf b;
	struct mg_mpw w;
	char *err;
	size_t errlen;
	int depth;
};

static int jp_fail(struct jp *j, const char *what)
{
	snprintf(j->err, j->errlen, "%s at offset %zu", what, (size_t)(j->p - j->s));
	return -1;
}

static void jp_ws(struct jp *j)
{
	while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
		j->p++;
}

static int hex4(const char *p, unsigned *vp)
{
	unsigned v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		char c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*vp = v;
	return 0;
}

static void put_utf8(struct sbuf *o, unsigned cp)
{
	char u[4];

	if (cp < 0x80) {
		u[0] = (char)cp;
		sb_put(o, u, 1);
	} else if (cp < 0x800) {
		u[0] = (char)(0xc0 | cp >> 6);
		u[1] = (char)(0x80 | (cp & 0x3f));
		sb_put(o, u, 2);
	} else if (cp < 0x10000) {
		u[0] = (char)(0xe0 | cp >> 12);
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (char)(0x80 | (cp & 0x3f));
		sb_put(o, u, 3);
	} else {
		u[0] = (char)(0xf0 | cp >> 18);
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (char)(0x80 | (cp & 0x3f));
		sb_put(o, u, 4);
	}
}

/* Reads a string literal (j->p at the quote) into o. */
static int jp_string(struct jp *j, struct sbuf *o)
{
	o->len = 0;
	sb_put(o, "", 0);
	for (j->p++;; j->p++) {
		unsigned char c = (unsigned char)*j->p;
		unsigned cp, lo;

		if (c == '"') {
			j->p++;
			return 0;
		}
		if (c == '\0')
			return jp_fail(j, "unterminated string");
		if (c < 0x20)
			return jp_fail(j, "control character in a string");
		if (c != '\\') {
			sb_put(o, j->p, 1);
			continue;
		}
		switch (*++j->p) {
		case '"':
			sb_puts(o, "\"");
			break;
		case '\\':
			sb_puts(o, "\\");
			break;
		case '/':
			sb_puts(o, "/");
			break;
		case 'b':
			sb_puts(o, "\b");
			break;
		case 'f':
			sb_puts(o, "\f");
			break;
		case 'n':
			sb_puts(o, "\n");
			break;
		case 'r':
			sb_puts(o, "\r");
			break;
		case 't':
			sb_puts(o, "\t");
			break;
		case 'u':
			if (hex4(j->p + 1, &cp) != 0)
				return jp_fail(j, "bad \\u escape");
			j->p += 4;
			if (cp >= 0xd800 && cp < 0xdc00) {
				if (j->p[1] != '\\' || j->p[2] != 'u' || hex4(j->p + 3, &lo) != 0 ||
				    lo < 0xdc00 || lo >= 0xe000)
					return jp_fail(j, "lone surrogate in \\u escape");
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				j->p += 6;
			} else if (cp >= 0xdc00 && cp < 0xe000) {
				return jp_fail(j, "lone surrogate in \\u escape");
			}
			put_utf8(o, cp);
			break;
		default:
			return jp_fail(j, "bad escape in a string");
		}
	}
}

static int jp_value(struct jp *j);

static int jp_number(struct jp *j)
{
	const char *start = j->p, *p = j->p;
	bool integer = true;
	char *end;

	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return jp_fail(j, "expected a value");
	if (*p == '.') {
		integer = false;
		if (!(*++p >= '0' && *p <= '9'))
			return jp_fail(j, "expected digits after '.'");
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		integer = false;
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!(*p >= '0' && *p <= '9'))
			return jp_fail(j, "expected digits in the exponent");
		while (*p >= '0' && *p <= '9')
			p++;
	}
	errno = 0;
	if (integer && *start == '-') {
		long long v = strtoll(start, &end, 10);
		if (errno == 0 && end == p) {
			j->p = p;
			return mg__mpw_int(&j->w, v);
		}
	} else if (integer) {
		unsigned long long v = strtoull(start, &end, 10);
		if (errno == 0 && end == p) {
			j->p = p;
			return mg__mpw_uint(&j->w, v);
		}
	}
	/* Fractions, exponents and integers past 64 bits become doubles. */
	errno = 0;
	double d = strtod(start, &end);
	if (end != p || !isfinite(d))
		return jp_fail(j, "number out of range");
	j->p = p;
	return mg__mpw_double(&j->w, d);
}

/* A MessagePack container starts with its element count, which JSON only
 * tells at the end: the elements are written to a buffer of their own,
 * then the header and those bytes are appended to the outer one. */
static int jp_container(struct jp *j, char close)
{
	struct mg_buf outer = j->b, inner;
	struct mg_mpw saved = j->w;
	size_t count = 0;
	struct sbuf key = {0};
	int rc = 0;

	if (++j->depth > MG_MP_MAX_DEPTH)
		return jp_fail(j, "nested too deep");
	mg__buf_init(&inner, outer.max);
	j->b = inner;
	mg__mpw_init(&j->w, &j->b);
	j->p++;
	jp_ws(j);
	if (*j->p == close) {
		j->p++;
	} else {
		for (;;) {
			if (close == '}') {
				if (*j->p != '"') {
					rc = jp_fail(j, "expected a string key");
					break;
				}
				if ((rc = jp_string(j, &key)) != 0)
					break;
				mg__mpw_str(&j->w, key.p, key.len);
				jp_ws(j);
				if (*j->p != ':') {
					rc = jp_fail(j, "expected ':'");
					break;
				}
				j->p++;
			}
			if ((rc = jp_value(j)) != 0)
				break;
			count++;
			jp_ws(j);
			if (*j->p == ',') {
				j->p++;
				jp_ws(j);
				continue;
			}
			if (*j->p == close) {
				j->p++;
				break;
			}
			rc = jp_fail(j,
			             close == ']' ? "expected ',' or ']'" : "expected ',' or '}'");
			break;
		}
	}
	if (rc == 0 && j->w.err != 0)
		rc = jp_fail(j, "too large");
	inner = j->b;
	j->b = outer;
	j->w = saved;
	j->w.b = &j->b;
	if (rc == 0) {
		if (close == ']')
			mg__mpw_array(&j->w, count);
		else
			mg__mpw_map(&j->w, count);
		mg__mpw_raw(&j->w, inner.data, inner.len);
	}
	mg__buf_fini(&inner);
	sb_free(&key);
	j->depth--;
	return rc;
}

static int jp_value(struct jp *j)
{
	struct sbuf s = {0};
	int rc;

	jp_ws(j);
	switch (*j->p) {
	case '{':
		return jp_container(j, '}');
	case '[':
		return jp_container(j, ']');
	case '"':
		if ((rc = jp_string(j, &s)) == 0)
			mg__mpw_str(&j->w, s.p, s.len);
		sb_free(&s);
		return rc;
	case 't':
		if (strncmp(j->p, "true", 4) != 0)
			break;
		j->p += 4;
		return mg__mpw_bool(&j->w, true);
	case 'f':
		if (strncmp(j->p, "false", 5) != 0)
			break;
		j->p += 5;
		return mg__mpw_bool(&j->w, false);
	case 'n':
		if (strncmp(j->p, "null", 4) != 0)
			break;
		j->p += 4;
		return mg__mpw_nil(&j->w);
	case '\0':
		return jp_fail(j, "unexpected end of input");
	default:
		return jp_number(j);
	}
	return jp_fail(j, "expected a value");
}

int json_to_msgpack(const char *text, struct sbuf *out, char *err, size_t errlen)
{
	struct jp j = {.s = text, .p = text, .err = err, .errlen = errlen};
	int rc;

	mg__buf_init(&j.b, 64u << 20);
	mg__mpw_init(&j.w, &j.b);
	err[0] = '\0';
	rc = jp_value(&j);
	if (rc == 0) {
		jp_ws(&j);
		if (*j.p != '\0')
			rc = jp_fail(&j, "unexpected text after the value");
	}
	if ((rc == 0 && j.w.err != 0) || (rc != 0 && err[0] == '\0'))
		rc = jp_fail(&j, "too large");
	if (rc == 0)
		sb_put(out, j.b.data, j.b.len);
	mg__buf_fini(&j.b);
	return rc == 0 ? 0 : -1;
}

/* ---- MessagePack -> JSON ------------------------------------------------- */

void json_str(struct sbuf *out, const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t i = 0;

	sb_puts(out, "\"");
	while (i < n) {
		unsigned char c = s[i];
		size_t len = c < 0x80             ? 1
		             : (c & 0xe0) == 0xc0 ? 2
		             : (c & 0xf0) == 0xe0 ? 3
		             : (c & 0xf8) == 0xf0 ? 4
		                                  : 0;
		size_t k;

		if (c == '"' || c == '\\') {
			sb_printf(out, "\\%c", c);
		} else if (c == '\n') {
			sb_puts(out, "\\n");
		} else if (c == '\t') {
			sb_puts(out, "\\t");
		} else if (c == '\r') {
			sb_puts(out, "\\r");
		} else if (c < 0x20 || c == 0x7f) {
			sb_printf(out, "\\u%04x", c);
		} else if (len == 1) {
			sb_put(out, &s[i], 1);
		} else {
			/* A valid multi-byte sequence is copied; anything else (a
			 * stray byte of binary output) becomes U+FFFD. */
			bool ok = len > 1 && i + len <= n && !(c == 0xc0 || c == 0xc1 || c > 0xf4);
			for (k = 1; ok && k < len; k++)
				ok = (s[i + k] & 0xc0) == 0x80;
			if (ok) {
				sb_put(out, &s[i], len);
				i += len;
				continue;
			}
			sb_puts(out, "\\ufffd");
		}
		i++;
	}
	sb_puts(out, "\"");
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void base64(struct sbuf *out, const uint8_t *p, size_t n)
{
	size_t i;

	sb_puts(out, "\"");
	for (i = 0; i + 2 < n; i += 3)
		sb_printf(out, "%c%c%c%c", b64[p[i] >> 2], b64[((p[i] & 3) << 4) | (p[i + 1] >> 4)],
		          b64[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)], b64[p[i + 2] & 63]);
	if (n - i == 1)
		sb_printf(out, "%c%c==", b64[p[i] >> 2], b64[(p[i] & 3) << 4]);
	else if (n - i == 2)
		sb_printf(out, "%c%c%c=", b64[p[i] >> 2], b64[((p[i] & 3) << 4) | (p[i + 1] >> 4)],
		          b64[(p[i + 1] & 15) << 2]);
	sb_puts(out, "\"");
}

static void json_double(struct sbuf *out, double d)
{
	if (!isfinite(d))
		sb_puts(out, "null");
	else if (d == floor(d) && fabs(d) < 1e15)
		sb_printf(out, "%.1f", d);
	else
		sb_printf(out, "%.17g", d);
}

static int mp_value(struct mg_mpr *r, struct sbuf *out, int depth);

/* Writes a map key: strings as they are, anything else as its JSON text
 * in a string. */
static int mp_key(struct mg_mpr *r, struct sbuf *out, int depth)
{
	struct sbuf k = {0};
	const char *s;
	size_t n;
	int rc = 0;

	if (mg__mpr_peek(r) == MG_MP_STR) {
		if (mg__mpr_str(r, &s, &n) != 0)
			return -1;
		json_str(out, s, n);
		return 0;
	}
	if ((rc = mp_value(r, &k, depth)) == 0)
		json_str(out, k.p, k.len);
	sb_free(&k);
	return rc;
}

static int mp_value(struct mg_mpr *r, struct sbuf *out, int depth)
{
	const void *v;
	const char *s;
	size_t n, i;
	int64_t iv;
	uint64_t uv;
	double d;
	bool b;
	int8_t type;
	uint32_t id, h;
	struct mg_mp_error e;

	if (depth > MG_MP_MAX_DEPTH)
		return -1;
	switch (mg__mpr_peek(r)) {
	case MG_MP_NIL:
		mg__mpr_nil(r);
		sb_puts(out, "null");
		break;
	case MG_MP_BOOL:
		mg__mpr_bool(r, &b);
		sb_puts(out, b ? "true" : "false");
		break;
	case MG_MP_UINT:
		if (mg__mpr_uint(r, &uv) != 0)
			return -1;
		sb_printf(out, "%llu", (unsigned long long)uv);
		break;
	case MG_MP_INT:
		if (mg__mpr_int(r, &iv) != 0)
			return -1;
		sb_printf(out, "%lld", (long long)iv);
		break;
	case MG_MP_FLOAT:
	case MG_MP_DOUBLE:
		if (mg__mpr_double(r, &d) != 0)
			return -1;
		json_double(out, d);
		break;
	case MG_MP_STR:
		if (mg__mpr_str(r, &s, &n) != 0)
			return -1;
		json_str(out, s, n);
		break;
	case MG_MP_BIN:
		if (mg__mpr_bin(r, &v, &n) != 0)
			return -1;
		sb_puts(out, "{\"base64\":");
		base64(out, v, n);
		sb_puts(out, "}");
		break;
	case MG_MP_ARRAY:
		if (mg__mpr_array(r, &n) != 0)
			return -1;
		sb_puts(out, "[");
		for (i = 0; i < n; i++) {
			if (i)
				sb_puts(out, ",");
			if (mp_value(r, out, depth + 1) != 0)
				return -1;
		}
		sb_puts(out, "]");
		break;
	case MG_MP_MAP:
		if (mg__mpr_map(r, &n) != 0)
			return -1;
		sb_puts(out, "{");
		for (i = 0; i < n; i++) {
			if (i)
				sb_puts(out, ",");
			if (mp_key(r, out, depth + 1) != 0)
				return -1;
			sb_puts(out, ":");
			if (mp_value(r, out, depth + 1) != 0)
				return -1;
		}
		sb_puts(out, "}");
		break;
	case MG_MP_EXT:
		if (mg__mpr_peek_ext(r, &type) != 0)
			return -1;
		if (type == MG_MP_EXT_CONTEXT && mg__mpr_context(r, &id) == 0) {
			sb_printf(out, "{\"context\":%u}", id);
		} else if (type == MG_MP_EXT_SENDER && mg__mpr_sender(r, &id, &h) == 0) {
			sb_printf(out, "{\"sender\":[%u,%u]}", id, h);
		} else if (type == MG_MP_EXT_ERROR && mg__mpr_error(r, &e) == 0) {
			sb_puts(out, "{\"error\":{\"type\":");
			json_str(out, e.type.p, e.type.n);
			sb_puts(out, ",\"message\":");
			json_str(out, e.message.p, e.message.n);
			sb_puts(out, "}}");
		} else if (type == MG_MP_EXT_TIMESTAMP && mg__mpr_timestamp(r, &iv, &id) == 0) {
			sb_printf(out, "%lld.%09u", (long long)iv, id);
		} else {
			r->err = 0;
			if (mg__mpr_ext(r, &type, &v, &n) != 0)
				return -1;
			sb_printf(out, "{\"ext\":%d,\"base64\":", type);
			base64(out, v, n);
			sb_puts(out, "}");
		}
		break;
	default:
		return -1;
	}
	return r->err == 0 ? 0 : -1;
}

int msgpack_to_json(const void *p, size_t n, struct sbuf *out)
{
	struct mg_mpr r, count;
	size_t values = 0;

	mg__mpr_init(&count, p, n);
	while (!mg__mpr_at_end(&count)) {
		if (mg__mpr_skip(&count) != 0)
			return -1;
		values++;
	}
	mg__mpr_init(&r, p, n);
	if (values == 0) {
		sb_puts(out, "null");
		return 0;
	}
	if (values > 1)
		sb_puts(out, "[");
	while (!mg__mpr_at_end(&r)) {
		if (r.off > 0)
			sb_puts(out, ",");
		if (mp_value(&r, out, 0) != 0)
			return -1;
	}
	if (values > 1)
		sb_puts(out, "]");
	return 0;
}

void json_copied(struct sbuf *out, const struct cli *cli, const struct mg_file_result *res,
                 const char *path, size_t n)
{
	sb_printf(out, ",\"bytes\":%llu", (unsigned long long)res->bytes);
	if (cli->recursive)
		sb_printf(out, ",\"files\":%llu", (unsigned long long)res->files);
	sb_puts(out, ",\"path\":");
	json_str(out, path, n);
}
