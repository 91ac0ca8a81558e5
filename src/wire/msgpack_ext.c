/*
 * msgpack_ext.c: readers for the extension types mitogen-c gives meaning
 * to (timestamp -1, Context 1, Sender 2, Error 3).  Their writers sit with
 * the rest of the writer in msgpack_write.c.  Each reader checks the type
 * and the exact body layout, and consumes nothing when either is wrong.
 */
#include "wire/msgpack.h"

/* Reads an ext of type want, leaving the reader where it was (and the
 * error stuck) unless its body length is one of the accepted ones. */
static int ext_body(struct mg_mpr *r, int8_t want, size_t n1, size_t n2, size_t n3,
                    const uint8_t **bodyp, size_t *np)
{
	size_t start = r->off, n = 0;
	const void *p;
	int8_t type;

	if (mg__mpr_ext(r, &type, &p, &n) != 0)
		return r->err;
	if (type != want || (n != n1 && n != n2 && n != n3)) {
		r->off = start;
		r->err = MG_EDECODE;
		return r->err;
	}
	*bodyp = p;
	*np = n;
	return 0;
}

int mg__mpr_timestamp(struct mg_mpr *r, int64_t *secp, uint32_t *nsecp)
{
	size_t start = r->off, n = 0;
	const uint8_t *d = NULL;
	uint64_t v;
	uint32_t nsec;
	int64_t sec;

	if (ext_body(r, MG_MP_EXT_TIMESTAMP, 4, 8, 12, &d, &n) != 0)
		return r->err;
	if (n == 4) {
		sec = mg__be32(d);
		nsec = 0;
	} else if (n == 8) {
		v = mg__be64(d);
		nsec = (uint32_t)(v >> 34);
		sec = (int64_t)(v & 0x3ffffffffull);
	} else {
		nsec = mg__be32(d);
		sec = (int64_t)mg__be64(d + 4);
	}
	if (nsec >= 1000000000u) {
		r->off = start;
		r->err = MG_EDECODE;
		return r->err;
	}
	*secp = sec;
	*nsecp = nsec;
	return 0;
}

int mg__mpr_context(struct mg_mpr *r, uint32_t *context_idp)
{
	const uint8_t *d = NULL;
	size_t n = 0;

	if (ext_body(r, MG_MP_EXT_CONTEXT, 4, 4, 4, &d, &n) == 0)
		*context_idp = mg__be32(d);
	return r->err;
}

int mg__mpr_sender(struct mg_mpr *r, uint32_t *context_idp, uint32_t *handlep)
{
	const uint8_t *d = NULL;
	size_t n = 0;

	if (ext_body(r, MG_MP_EXT_SENDER, 8, 8, 8, &d, &n) == 0) {
		*context_idp = mg__be32(d);
		*handlep = mg__be32(d + 4);
	}
	return r->err;
}

/* The body is parsed with a reader of its own, so a lie in the inner
 * lengths cannot reach past the ext. */
int mg__mpr_error(struct mg_mpr *r, struct mg_mp_error *ep)
{
	struct mg_mp_str *f[4];
	struct mg_mp_error e;
	struct mg_mpr in;
	size_t start = r->off, n, count = 0;
	const void *p;
	int8_t type;
	int i;

	if (mg__mpr_ext(r, &type, &p, &n) != 0)
		return r->err;
	f[0] = &e.type;
	f[1] = &e.message;
	f[2] = &e.context;
	f[3] = &e.function;
	mg__mpr_init(&in, p, n);
	if (type == MG_MP_EXT_ERROR && mg__mpr_array(&in, &count) == 0 && count == 4)
		for (i = 0; i < 4; i++)
			mg__mpr_str(&in, &f[i]->p, &f[i]->n);
	if (type != MG_MP_EXT_ERROR || in.err != 0 || count != 4 || !mg__mpr_at_end(&in)) {
		r->off = start;
		r->err = MG_EDECODE;
		return r->err;
	}
	*ep = e;
	return 0;
}
