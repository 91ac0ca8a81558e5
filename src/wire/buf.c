/*
 * buf.c: a growable byte buffer with a mandatory maximum (the OpenSSH
 * sshbuf idea).  The maximum is checked before any allocation, so a peer
 * can never make us allocate more than the caller allowed.
 */
#include <errno.h>
#include <string.h>

#include "wire/wire.h"

/* Small buffers start here; most messages fit without a second realloc. */
#define BUF_MIN_CAP 64

void mg__buf_init(struct mg_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
	b->store = NULL;
}

void mg__buf_fini(struct mg_buf *b)
{
	if (b->store != NULL)
		b->store->release(b);
	else
		mg__chunk_free(b->data, b->cap);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

/* Capacity grows by doubling, clamped to max, so appending n bytes one at
 * a time costs O(n) copies overall and never overshoots the maximum. */
int mg__buf_reserve(struct mg_buf *b, size_t n)
{
	size_t need, cap;
	uint8_t *p;

	if (b->len > b->max || n > b->max - b->len)
		return MG_ELIMIT;
	need = b->len + n;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : BUF_MIN_CAP;
	while (cap < need)
		cap = cap > b->max / 2 ? b->max : cap * 2;
	if (cap > b->max)
		cap = b->max;
	if (b->store != NULL)
		return b->store->grow(b, need, cap);
	/* A first big allocation may reuse a kept buffer (see wire.h). */
	p = b->data == NULL ? mg__chunk_alloc(cap) : mg__realloc(b->data, cap);
	if (p == NULL)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int mg__buf_put(struct mg_buf *b, const void *p, size_t n)
{
	int r;

	if (n == 0)
		return 0;
	if ((r = mg__buf_reserve(b, n)) != 0)
		return r;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int mg__buf_put_u8(struct mg_buf *b, uint8_t v)
{
	return mg__buf_put(b, &v, 1);
}

int mg__buf_put_u16(struct mg_buf *b, uint16_t v)
{
	uint8_t t[2];

	mg__put_be16(t, v);
	return mg__buf_put(b, t, sizeof(t));
}

int mg__buf_put_u32(struct mg_buf *b, uint32_t v)
{
	uint8_t t[4];

	mg__put_be32(t, v);
	return mg__buf_put(b, t, sizeof(t));
}

int mg__buf_put_u64(struct mg_buf *b, uint64_t v)
{
	uint8_t t[8];

	mg__put_be64(t, v);
	return mg__buf_put(b, t, sizeof(t));
}

/* Returns NULL (and *lenp 0) for a buffer that never allocated.  The
 * buffer is left empty with the same maximum, ready for reuse. */
uint8_t *mg__buf_steal(struct mg_buf *b, size_t *lenp)
{
	uint8_t *p = b->data;

	if (lenp != NULL)
		*lenp = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}
