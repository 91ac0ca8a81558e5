/*
 * mpvalue.h: a MessagePack value tree for the conformance checks.  A test
 * spells out the value it means once; this writes it with our writer,
 * checks what our reader reads against it, and prints it as a Python
 * expression for msgpack-python.
 */
#ifndef MG_TEST_MPVALUE_H
#define MG_TEST_MPVALUE_H

#include "wire/msgpack.h"

enum mpv_kind {
	MPV_NIL,
	MPV_BOOL,
	MPV_UINT,
	MPV_INT,
	MPV_F32,
	MPV_F64,
	MPV_STR,
	MPV_BIN,
	MPV_EXT,
	MPV_TS,
	MPV_ARRAY,
	MPV_MAP
};

struct mpv {
	enum mpv_kind k;
	uint64_t u;              /* UINT, BOOL */
	int64_t i;               /* INT; TS seconds */
	double d;                /* F32, F64 */
	const char *p;           /* STR, BIN, EXT bytes */
	size_t n;                /* their length; ARRAY count; MAP pairs */
	int8_t ext;              /* EXT type */
	uint32_t nsec;           /* TS */
	const struct mpv *items; /* ARRAY: n items; MAP: 2n, key then value */
};

#define MPV_NILV ((struct mpv){.k = MPV_NIL})
#define MPV_BOOLV(b) ((struct mpv){.k = MPV_BOOL, .u = (b)})
#define MPV_UINTV(v) ((struct mpv){.k = MPV_UINT, .u = (v)})
#define MPV_INTV(v) ((struct mpv){.k = MPV_INT, .i = (v)})
#define MPV_F32V(v) ((struct mpv){.k = MPV_F32, .d = (v)})
#define MPV_F64V(v) ((struct mpv){.k = MPV_F64, .d = (v)})
#define MPV_STRN(s, len) ((struct mpv){.k = MPV_STR, .p = (s), .n = (len)})
#define MPV_STRV(s) MPV_STRN(s, strlen(s))
#define MPV_BINN(s, len) ((struct mpv){.k = MPV_BIN, .p = (s), .n = (len)})
#define MPV_EXTN(t, s, len) ((struct mpv){.k = MPV_EXT, .ext = (t), .p = (s), .n = (len)})
#define MPV_TSV(s, ns) ((struct mpv){.k = MPV_TS, .i = (s), .nsec = (ns)})
#define MPV_ARR(cnt, it) ((struct mpv){.k = MPV_ARRAY, .n = (cnt), .items = (it)})
#define MPV_MAPV(pairs, it) ((struct mpv){.k = MPV_MAP, .n = (pairs), .items = (it)})

/* Items directly inside v (2 per map pair; 0 for scalars). */
size_t mpv_items(const struct mpv *v);

/* Writes v with the writer; errors stick in w. */
void mpv_write(struct mg_mpw *w, const struct mpv *v);

/* Reads one value with r and compares it with v, strictly: the kind the
 * first byte announces must be v's (a non-negative INT reads as UINT).
 * Returns NULL, or a static text naming the first difference. */
const char *mpv_check(struct mg_mpr *r, const struct mpv *v);

/* True for equal doubles, any two NaNs included. */
bool mpv_same_double(double a, double b);

/* Writes v as a Python expression (using float.fromhex, bytes.fromhex,
 * ExtType, Timestamp) into out.  Returns 0, or -1 when cap is too small. */
int mpv_python(const struct mpv *v, char *out, size_t cap);

#endif
