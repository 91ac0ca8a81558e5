/*
 * wire.h: the byte layer.  Buffers, the MessagePack codec, format strings and
 * the frame header.  Nothing here makes a syscall, and every allocation is
 * capped, so the layer can be fuzzed on its own.
 */
#ifndef MG_WIRE_H
#define MG_WIRE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mitogen.h"

/* ------------------------------------------------------------------------ */
/* Allocation: every allocation in the library goes through these so tests
 * can fail the Nth one (mg__alloc_fail_after).  They never abort. */

void *mg__malloc(size_t n);
void *mg__calloc(size_t n, size_t size);
void *mg__realloc(void *p, size_t n);
void mg__free(void *p);
char *mg__strdup(const char *s);

/* Chunk buffers (CHUNK_MIN..CHUNK_MAX bytes, powers of two) that were
 * freed are kept for reuse, a few MiB at most: file and output chunks
 * allocate and free one such buffer per message, and musl's malloc (the
 * agent's) maps and unmaps each of them, so every page faults again, at
 * a cost that dominated bulk transfers.  mg__chunk_alloc(cap) is
 * mg__malloc(cap) that may reuse a kept buffer; mg__chunk_free(p, cap)
 * is mg__free(p) that may keep it (cap: what p was allocated with, at
 * least).  Thread: any (lock-free, so fork-safe). */
#define CHUNK_MIN (64 * 1024)
#define CHUNK_MAX (1024 * 1024)
void *mg__chunk_alloc(size_t cap);
void mg__chunk_free(void *p, size_t cap);

/* Makes the Nth allocation from now fail (1 = the next one); 0 disables.
 * For tests only.  Thread: any. */
void mg__alloc_fail_after(long n);
/* Counts one allocation against mg__alloc_fail_after(); true when it is to
 * fail.  For allocators that do not go through mg__malloc (core/bigbuf.c). */
bool mg__alloc_fail_now(void);

/* Sets the text returned by mg_errdetail() for this thread. */
void mg__set_errdetail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------------------ */
/* Buffers: a growable byte array with a mandatory maximum. */

struct mg_buf_store;

struct mg_buf {
	uint8_t *data;
	size_t len;                       /* bytes written */
	size_t cap;                       /* bytes allocated */
	size_t max;                       /* len may never exceed this */
	const struct mg_buf_store *store; /* NULL: mg__realloc / mg__free */
};

/* Storage other than the heap for a buffer (core/msg.c gives large message
 * payloads storage that is cheap to fill).  grow makes data hold at least
 * need bytes, keeping the first len (cap is what doubling would give);
 * returns 0 or a negative errno and leaves the buffer as it was on
 * failure.
 * release frees data (which may be NULL).  Set right after
 * mg__buf_init(). */
struct mg_buf_store {
	int (*grow)(struct mg_buf *b, size_t need, size_t cap);
	void (*release)(struct mg_buf *b);
};

/* Initialises an empty buffer that may grow to max bytes. */
void mg__buf_init(struct mg_buf *b, size_t max);
/* Frees the storage; the buffer may be reused after mg__buf_init(). */
void mg__buf_fini(struct mg_buf *b);
/* Makes room for n more bytes; MG_ELIMIT past max, -ENOMEM. */
int mg__buf_reserve(struct mg_buf *b, size_t n);
/* Appends n bytes; MG_ELIMIT past max, -ENOMEM. */
int mg__buf_put(struct mg_buf *b, const void *p, size_t n);
int mg__buf_put_u8(struct mg_buf *b, uint8_t v);
int mg__buf_put_u16(struct mg_buf *b, uint16_t v);
int mg__buf_put_u32(struct mg_buf *b, uint32_t v);
int mg__buf_put_u64(struct mg_buf *b, uint64_t v);
/* Takes ownership of the storage; caller frees with mg__free().  Not for a
 * buffer with a store. */
uint8_t *mg__buf_steal(struct mg_buf *b, size_t *lenp);

/* Big-endian helpers on raw memory (no bounds: callers check). */
static inline uint16_t mg__be16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t mg__be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t mg__be64(const uint8_t *p)
{
	return ((uint64_t)mg__be32(p) << 32) | mg__be32(p + 4);
}
static inline void mg__put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void mg__put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline void mg__put_be64(uint8_t *p, uint64_t v)
{
	mg__put_be32(p, (uint32_t)(v >> 32));
	mg__put_be32(p + 4, (uint32_t)v);
}

/* ------------------------------------------------------------------------ */
/* Frame header.  See docs/PROTOCOL.md. */

#define MG_FRAME_MAGIC 0x4d47u /* "MG" */
#define MG_FRAME_HDR_LEN 28u

/* Payload encodings carried in the header's flags field. */
enum mg_frame_enc {
	MG_ENC_MSGPACK = 0,
	MG_ENC_RAW = 1,
};

/* Flag bit: the payload holds a secret (a password on its way to the
 * context that types it).  Every hop wipes its copies: the bytes in its
 * read buffer once cut out, and the message when freed. */
#define MG_FRAME_SECRET 0x0010u

struct mg_frame_hdr {
	uint16_t flags; /* low 4 bits: enum mg_frame_enc, then MG_FRAME_SECRET */
	uint32_t dst_id;
	uint32_t src_id;
	uint32_t auth_id;
	uint32_t handle;
	uint32_t reply_to;
	uint32_t len; /* payload bytes following the header */
};

/* Encodes h into out[MG_FRAME_HDR_LEN]. */
void mg__frame_encode(const struct mg_frame_hdr *h, uint8_t *out);

/* Decodes a header from in (at least MG_FRAME_HDR_LEN bytes).  Returns 0,
 * MG_EPROTOCOL for a bad magic or unknown flag bits, MG_ETOOBIG when len is
 * over max.  h is written only on success. */
int mg__frame_decode(const uint8_t *in, size_t max, struct mg_frame_hdr *h);

#endif
