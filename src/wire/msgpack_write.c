/*
 * msgpack_write.c: the MessagePack writer.  Every value is encoded in its
 * smallest form, byte for byte what msgpack-c and msgpack-python produce,
 * so encodings can be compared as bytes in tests and golden files.
 */
#include <errno.h>
#include <string.h>

#include "wire/msgpack.h"

void mg__mpw_init(struct mg_mpw *w, struct mg_buf *b)
{
	w->b = b;
	w->err = 0;
}

static int fail(struct mg_mpw *w, int err)
{
	if (w->err == 0)
		w->err = err;
	return w->err;
}

/* Claims n bytes at the end of the buffer, or returns NULL with the error
 * stuck.  Each value claims its header and body in one go, so a failure
 * never leaves part of a value behind. */
static uint8_t *claim(struct mg_mpw *w, size_t n)
{
	uint8_t *p;
	int r;

	if (w->err != 0)
		return NULL;
	if ((r = mg__buf_reserve(w->b, n)) != 0) {
		fail(w, r);
		return NULL;
	}
	p = w->b->data + w->b->len;
	w->b->len += n;
	return p;
}

/* Writes a one-byte tag and an n-byte big-endian number (n = 0, 1, 2, 4,
 * 8), followed by room for body bytes; returns where the body goes. */
static uint8_t *put_tagged(struct mg_mpw *w, uint8_t tag, unsigned n, uint64_t v, size_t body)
{
	uint8_t *p;

	if (body > SIZE_MAX - 9) {
		fail(w, MG_ELIMIT);
		return NULL;
	}
	if ((p = claim(w, 1 + n + body)) == NULL)
		return NULL;
	p[0] = tag;
	switch (n) {
	case 1:
		p[1] = (uint8_t)v;
		break;
	case 2:
		mg__put_be16(p + 1, (uint16_t)v);
		break;
	case 4:
		mg__put_be32(p + 1, (uint32_t)v);
		break;
	case 8:
		mg__put_be64(p + 1, v);
		break;
	}
	return p + 1 + n;
}

int mg__mpw_nil(struct mg_mpw *w)
{
	put_tagged(w, 0xc0, 0, 0, 0);
	return w->err;
}

int mg__mpw_bool(struct mg_mpw *w, bool v)
{
	put_tagged(w, v ? 0xc3 : 0xc2, 0, 0, 0);
	return w->err;
}

int mg__mpw_uint(struct mg_mpw *w, uint64_t v)
{
	if (v < 0x80)
		put_tagged(w, (uint8_t)v, 0, 0, 0);
	else if (v <= UINT8_MAX)
		put_tagged(w, 0xcc, 1, v, 0);
	else if (v <= UINT16_MAX)
		put_tagged(w, 0xcd, 2, v, 0);
	else if (v <= UINT32_MAX)
		put_tagged(w, 0xce, 4, v, 0);
	else
		put_tagged(w, 0xcf, 8, v, 0);
	return w->err;
}

/* Negative values take the signed forms; the casts to uint64_t keep the
 * two's complement bits that put_tagged truncates to the field width. */
int mg__mpw_int(struct mg_mpw *w, int64_t v)
{
	if (v >= 0)
		return mg__mpw_uint(w, (uint64_t)v);
	if (v >= -32)
		put_tagged(w, (uint8_t)(0xe0 | (v & 0x1f)), 0, 0, 0);
	else if (v >= INT8_MIN)
		put_tagged(w, 0xd0, 1, (uint64_t)v, 0);
	else if (v >= INT16_MIN)
		put_tagged(w, 0xd1, 2, (uint64_t)v, 0);
	else if (v >= INT32_MIN)
		put_tagged(w, 0xd2, 4, (uint64_t)v, 0);
	else
		put_tagged(w, 0xd3, 8, (uint64_t)v, 0);
	return w->err;
}

int mg__mpw_float(struct mg_mpw *w, float v)
{
	uint32_t bits;

	memcpy(&bits, &v, sizeof(bits));
	put_tagged(w, 0xca, 4, bits, 0);
	return w->err;
}

int mg__mpw_double(struct mg_mpw *w, double v)
{
	uint64_t bits;

	memcpy(&bits, &v, sizeof(bits));
	put_tagged(w, 0xcb, 8, bits, 0);
	return w->err;
}

/* The str header for length n, with room for body bytes after it. */
static uint8_t *str_hdr(struct mg_mpw *w, size_t n, size_t body)
{
	if (n < 32)
		return put_tagged(w, (uint8_t)(0xa0 | n), 0, 0, body);
	if (n <= UINT8_MAX)
		return put_tagged(w, 0xd9, 1, n, body);
	if (n <= UINT16_MAX)
		return put_tagged(w, 0xda, 2, n, body);
	if (n <= UINT32_MAX)
		return put_tagged(w, 0xdb, 4, n, body);
	fail(w, MG_ELIMIT);
	return NULL;
}

static uint8_t *bin_hdr(struct mg_mpw *w, size_t n, size_t body)
{
	if (n <= UINT8_MAX)
		return put_tagged(w, 0xc4, 1, n, body);
	if (n <= UINT16_MAX)
		return put_tagged(w, 0xc5, 2, n, body);
	if (n <= UINT32_MAX)
		return put_tagged(w, 0xc6, 4, n, body);
	fail(w, MG_ELIMIT);
	return NULL;
}

/* fixext covers the five sizes 1, 2, 4, 8 and 16; the type byte follows
 * the tag or the length. */
static uint8_t *ext_hdr(struct mg_mpw *w, int8_t type, size_t n, size_t body)
{
	uint8_t *p;

	switch (n) {
	case 1:
		p = put_tagged(w, 0xd4, 0, 0, 1 + body);
		break;
	case 2:
		p = put_tagged(w, 0xd5, 0, 0, 1 + body);
		break;
	case 4:
		p = put_tagged(w, 0xd6, 0, 0, 1 + body);
		break;
	case 8:
		p = put_tagged(w, 0xd7, 0, 0, 1 + body);
		break;
	case 16:
		p = put_tagged(w, 0xd8, 0, 0, 1 + body);
		break;
	default:
		if (n <= UINT8_MAX)
			p = put_tagged(w, 0xc7, 1, n, 1 + body);
		else if (n <= UINT16_MAX)
			p = put_tagged(w, 0xc8, 2, n, 1 + body);
		else if (n <= UINT32_MAX)
			p = put_tagged(w, 0xc9, 4, n, 1 + body);
		else
			p = NULL;
	}
	if (n > UINT32_MAX)
		fail(w, MG_ELIMIT);
	if (p == NULL)
		return NULL;
	p[0] = (uint8_t)type;
	return p + 1;
}

int mg__mpw_str(struct mg_mpw *w, const char *p, size_t n)
{
	uint8_t *d = str_hdr(w, n, n);

	if (d != NULL && n > 0)
		memcpy(d, p, n);
	return w->err;
}

int mg__mpw_bin(struct mg_mpw *w, const void *p, size_t n)
{
	uint8_t *d = bin_hdr(w, n, n);

	if (d != NULL && n > 0)
		memcpy(d, p, n);
	return w->err;
}

int mg__mpw_ext(struct mg_mpw *w, int8_t type, const void *p, size_t n)
{
	uint8_t *d = ext_hdr(w, type, n, n);

	if (d != NULL && n > 0)
		memcpy(d, p, n);
	return w->err;
}

int mg__mpw_str_hdr(struct mg_mpw *w, size_t n)
{
	str_hdr(w, n, 0);
	return w->err;
}

int mg__mpw_bin_hdr(struct mg_mpw *w, size_t n)
{
	bin_hdr(w, n, 0);
	return w->err;
}

int mg__mpw_ext_hdr(struct mg_mpw *w, int8_t type, size_t n)
{
	ext_hdr(w, type, n, 0);
	return w->err;
}

static int container(struct mg_mpw *w, uint8_t fix, uint8_t tag16, size_t n)
{
	if (n < 16)
		put_tagged(w, (uint8_t)(fix | n), 0, 0, 0);
	else if (n <= UINT16_MAX)
		put_tagged(w, tag16, 2, n, 0);
	else if (n <= UINT32_MAX)
		put_tagged(w, (uint8_t)(tag16 + 1), 4, n, 0);
	else
		fail(w, MG_ELIMIT);
	return w->err;
}

int mg__mpw_array(struct mg_mpw *w, size_t count)
{
	return container(w, 0x90, 0xdc, count);
}

int mg__mpw_map(struct mg_mpw *w, size_t pairs)
{
	return container(w, 0x80, 0xde, pairs);
}

int mg__mpw_raw(struct mg_mpw *w, const void *p, size_t n)
{
	uint8_t *d;

	if (n > 0 && (d = claim(w, n)) != NULL)
		memcpy(d, p, n);
	return w->err;
}

/* The spec's rule: 32 bits when the seconds fit unsigned 32 and there are
 * no nanoseconds, 64 bits (30-bit nsec, 34-bit sec) when the seconds fit
 * unsigned 34, else 96 bits (u32 nsec, i64 sec). */
int mg__mpw_timestamp(struct mg_mpw *w, int64_t sec, uint32_t nsec)
{
	uint8_t *d;

	if (nsec >= 1000000000u)
		return fail(w, -EINVAL);
	if (sec >= 0 && sec <= (int64_t)UINT32_MAX && nsec == 0) {
		if ((d = ext_hdr(w, MG_MP_EXT_TIMESTAMP, 4, 4)) != NULL)
			mg__put_be32(d, (uint32_t)sec);
	} else if (sec >= 0 && (sec >> 34) == 0) {
		if ((d = ext_hdr(w, MG_MP_EXT_TIMESTAMP, 8, 8)) != NULL)
			mg__put_be64(d, ((uint64_t)nsec << 34) | (uint64_t)sec);
	} else {
		if ((d = ext_hdr(w, MG_MP_EXT_TIMESTAMP, 12, 12)) != NULL) {
			mg__put_be32(d, nsec);
			mg__put_be64(d + 4, (uint64_t)sec);
		}
	}
	return w->err;
}

int mg__mpw_context(struct mg_mpw *w, uint32_t context_id)
{
	uint8_t *d = ext_hdr(w, MG_MP_EXT_CONTEXT, 4, 4);

	if (d != NULL)
		mg__put_be32(d, context_id);
	return w->err;
}

int mg__mpw_sender(struct mg_mpw *w, uint32_t context_id, uint32_t handle)
{
	uint8_t *d = ext_hdr(w, MG_MP_EXT_SENDER, 8, 8);

	if (d != NULL) {
		mg__put_be32(d, context_id);
		mg__put_be32(d + 4, handle);
	}
	return w->err;
}

static size_t str_hdr_len(size_t n)
{
	return n < 32 ? 1 : n <= UINT8_MAX ? 2 : n <= UINT16_MAX ? 3 : 5;
}

/* The ext length must be known before its body, so the body's size is
 * worked out first; the body is then written in place, with no copy. */
int mg__mpw_error(struct mg_mpw *w, const struct mg_mp_error *e)
{
	const struct mg_mp_str *f[4] = {&e->type, &e->message, &e->context, &e->function};
	size_t body = 1, start;
	int i;

	for (i = 0; i < 4; i++) {
		if (f[i]->n > UINT32_MAX || f[i]->n > SIZE_MAX / 8 - body)
			return fail(w, MG_ELIMIT);
		body += str_hdr_len(f[i]->n) + f[i]->n;
	}
	if (w->err != 0)
		return w->err;
	start = w->b->len;
	ext_hdr(w, MG_MP_EXT_ERROR, body, 0);
	mg__mpw_array(w, 4);
	for (i = 0; i < 4; i++)
		mg__mpw_str(w, f[i]->p, f[i]->n);
	if (w->err != 0)
		w->b->len = start;
	return w->err;
}
