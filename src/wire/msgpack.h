/*
 * msgpack.h: the MessagePack codec.  A writer appends to a struct mg_buf; a
 * reader walks a borrowed byte view and hands out zero-copy views into it.
 *
 * Both keep a sticky error, as mpack does: the first failure is stored in
 * ->err, every later call is a no-op returning it, and callers may chain
 * calls and check once at the end.  Every call also returns the current
 * error, so "if (mg__mpr_uint(&r, &v)) goto out;" works too.
 *
 * A call either does its whole job or nothing: the writer never leaves half
 * a value in the buffer, the reader never moves past a value it rejected and
 * writes its out-parameters only on success.
 *
 * Errors: MG_ELIMIT (the buffer's maximum, or a length over 2^32-1),
 * -ENOMEM, -EINVAL (a timestamp's nanoseconds out of range), MG_EDECODE
 * (the reader met truncated, malformed or unexpected data).
 */
#ifndef MG_WIRE_MSGPACK_H
#define MG_WIRE_MSGPACK_H

#include "wire/wire.h"

/* Containers nested deeper than this are MG_EDECODE for the reader. */
#define MG_MP_MAX_DEPTH 64

/* Extension types used by mitogen-c (docs/PROTOCOL.md). */
enum mg_mp_ext {
	MG_MP_EXT_TIMESTAMP = -1, /* the spec's timestamp: 4, 8 or 12 bytes */
	MG_MP_EXT_CONTEXT = 1,    /* u32 BE context id */
	MG_MP_EXT_SENDER = 2,     /* u32 BE context id, u32 BE handle */
	MG_MP_EXT_ERROR = 3,      /* a msgpack array of 4 strs */
};

/* What the next value is, from its first byte.  UINT is the unsigned
 * encodings (positive fixint, uint 8..64), INT the signed ones (negative
 * fixint, int 8..64, whose value may still be positive). */
enum mg_mp_type {
	MG_MP_NONE = 0, /* end of data, a reserved byte (0xc1), or a stuck error */
	MG_MP_NIL,
	MG_MP_BOOL,
	MG_MP_UINT,
	MG_MP_INT,
	MG_MP_FLOAT,  /* float 32 */
	MG_MP_DOUBLE, /* float 64 */
	MG_MP_STR,
	MG_MP_BIN,
	MG_MP_ARRAY,
	MG_MP_MAP,
	MG_MP_EXT, /* fixext and ext, timestamps included */
};

/* A borrowed string view (not NUL-terminated). */
struct mg_mp_str {
	const char *p;
	size_t n;
};

/* A remote error as carried by ext 3: exception type name, message, the
 * name of the context where it happened and the function that raised it.
 * Views are borrowed from the reader's bytes; for the writer p may be NULL
 * when n is 0. */
struct mg_mp_error {
	struct mg_mp_str type, message, context, function;
};

/* ------------------------------------------------------------------------ */
/* Writer */

struct mg_mpw {
	struct mg_buf *b; /* borrowed */
	int err;
};

/* Starts writing at the end of b, which stays owned by the caller. */
void mg__mpw_init(struct mg_mpw *w, struct mg_buf *b);

/* Each appends one value in its smallest encoding, as msgpack-c does:
 * non-negative ints take the unsigned forms.  Lengths and counts over
 * 2^32-1 are MG_ELIMIT.  Return w->err. */
int mg__mpw_nil(struct mg_mpw *w);
int mg__mpw_bool(struct mg_mpw *w, bool v);
int mg__mpw_int(struct mg_mpw *w, int64_t v);
int mg__mpw_uint(struct mg_mpw *w, uint64_t v);
int mg__mpw_float(struct mg_mpw *w, float v);
int mg__mpw_double(struct mg_mpw *w, double v);
int mg__mpw_str(struct mg_mpw *w, const char *p, size_t n);
int mg__mpw_bin(struct mg_mpw *w, const void *p, size_t n);
/* Headers only: the count (pairs for a map) values follow as calls. */
int mg__mpw_array(struct mg_mpw *w, size_t count);
int mg__mpw_map(struct mg_mpw *w, size_t pairs);
/* Headers for a str, bin or ext whose n bytes the caller appends next
 * (with mg__mpw_raw), for bodies built elsewhere. */
int mg__mpw_str_hdr(struct mg_mpw *w, size_t n);
int mg__mpw_bin_hdr(struct mg_mpw *w, size_t n);
int mg__mpw_ext_hdr(struct mg_mpw *w, int8_t type, size_t n);
int mg__mpw_ext(struct mg_mpw *w, int8_t type, const void *p, size_t n);
/* Ext -1 in its smallest form (32, 64 or 96 bits); -EINVAL unless
 * nsec < 1000000000. */
int mg__mpw_timestamp(struct mg_mpw *w, int64_t sec, uint32_t nsec);
int mg__mpw_context(struct mg_mpw *w, uint32_t context_id);
int mg__mpw_sender(struct mg_mpw *w, uint32_t context_id, uint32_t handle);
int mg__mpw_error(struct mg_mpw *w, const struct mg_mp_error *e);
/* Appends n bytes as they are; the caller vouches they are msgpack. */
int mg__mpw_raw(struct mg_mpw *w, const void *p, size_t n);

/* ------------------------------------------------------------------------ */
/* Reader */

struct mg_mpr {
	const uint8_t *p; /* borrowed for the reader's life */
	size_t len, off;
	int err;
};

/* Reads p[0..len) from the start. */
void mg__mpr_init(struct mg_mpr *r, const void *p, size_t len);

/* The type of the next value, without consuming it or setting an error. */
enum mg_mp_type mg__mpr_peek(const struct mg_mpr *r);
/* When the next value is a complete ext, stores its type and returns 0;
 * else returns MG_EDECODE.  Consumes nothing and sets no error. */
int mg__mpr_peek_ext(const struct mg_mpr *r, int8_t *typep);
static inline bool mg__mpr_at_end(const struct mg_mpr *r)
{
	return r->err == 0 && r->off == r->len;
}

/* Each consumes one value of the named kind and returns r->err; anything
 * else is MG_EDECODE.  The int readers take any integer encoding whose
 * value fits the target: mg__mpr_uint refuses negatives, mg__mpr_int values
 * over INT64_MAX.  mg__mpr_double takes float 32 or 64, mg__mpr_float only
 * float 32.  Views point into the reader's bytes. */
int mg__mpr_nil(struct mg_mpr *r);
int mg__mpr_bool(struct mg_mpr *r, bool *vp);
int mg__mpr_int(struct mg_mpr *r, int64_t *vp);
int mg__mpr_uint(struct mg_mpr *r, uint64_t *vp);
int mg__mpr_float(struct mg_mpr *r, float *vp);
int mg__mpr_double(struct mg_mpr *r, double *vp);
int mg__mpr_str(struct mg_mpr *r, const char **pp, size_t *np);
int mg__mpr_bin(struct mg_mpr *r, const void **pp, size_t *np);
/* Container headers.  The count is at most the bytes left (pairs: half
 * of them), since every element takes at least one byte, so callers may
 * size things by it without trusting the sender further. */
int mg__mpr_array(struct mg_mpr *r, size_t *countp);
int mg__mpr_map(struct mg_mpr *r, size_t *pairsp);
int mg__mpr_ext(struct mg_mpr *r, int8_t *typep, const void **pp, size_t *np);
/* Ext -1 of 4, 8 or 12 bytes with nanoseconds below 10^9. */
int mg__mpr_timestamp(struct mg_mpr *r, int64_t *secp, uint32_t *nsecp);
/* Ext 1 of exactly 4 bytes. */
int mg__mpr_context(struct mg_mpr *r, uint32_t *context_idp);
/* Ext 2 of exactly 8 bytes. */
int mg__mpr_sender(struct mg_mpr *r, uint32_t *context_idp, uint32_t *handlep);
/* Ext 3 whose body is exactly an array of 4 strs; views into the bytes. */
int mg__mpr_error(struct mg_mpr *r, struct mg_mp_error *ep);
/* Skips one complete value, however nested (up to MG_MP_MAX_DEPTH), without
 * recursion. */
int mg__mpr_skip(struct mg_mpr *r);
/* Consumes one complete value and returns a view of its encoded bytes. */
int mg__mpr_value(struct mg_mpr *r, const void **pp, size_t *np);

/* Returns 0 when p[0..n) is exactly one complete value, else MG_EDECODE. */
int mg__mp_check_one(const void *p, size_t n);

#endif
