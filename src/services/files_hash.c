/*
 * files_hash.c: XXH64, the end-to-end checksum of file transfers.  Written
 * from the published algorithm description: four 64-bit lanes over 32-byte
 * stripes, then a tail and an avalanche.  It runs at memory speed, so the
 * checksum costs far less than the transfer it protects; it guards against
 * corruption and truncation, not against an attacker (the channel's
 * authentication is the transport's job).
 */
#include <string.h>

#include "services/svc.h"

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL
#define P5 0x27D4EB2F165667C5ULL

/* Forced inline: the agent is built with -Os, where gcc otherwise
 * calls these once per 8 bytes, which made hashing the costliest thing a
 * transfer did in the agent. */
#define HOT static inline __attribute__((always_inline))

HOT uint64_t rotl(uint64_t x, int r)
{
	return (x << r) | (x >> (64 - r));
}

/* Little-endian loads, whatever the host's byte order: one unaligned
 * load (memcpy), swapped on big-endian hosts. */
HOT uint64_t le64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

HOT uint32_t le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

HOT uint64_t round1(uint64_t acc, uint64_t in)
{
	acc += in * P2;
	acc = rotl(acc, 31);
	return acc * P1;
}

HOT uint64_t merge(uint64_t acc, uint64_t v)
{
	acc ^= round1(0, v);
	return acc * P1 + P4;
}

void mg__xxh64_init(struct mg_xxh64 *h, uint64_t seed)
{
	memset(h, 0, sizeof(*h));
	h->seed = seed;
	h->v[0] = seed + P1 + P2;
	h->v[1] = seed + P2;
	h->v[2] = seed;
	h->v[3] = seed - P1;
}

static void stripes(struct mg_xxh64 *h, const uint8_t *p, size_t n)
{
	uint64_t v0 = h->v[0], v1 = h->v[1], v2 = h->v[2], v3 = h->v[3];
	const uint8_t *end = p + n;

	for (; p < end; p += 32) {
		v0 = round1(v0, le64(p));
		v1 = round1(v1, le64(p + 8));
		v2 = round1(v2, le64(p + 16));
		v3 = round1(v3, le64(p + 24));
	}
	h->v[0] = v0;
	h->v[1] = v1;
	h->v[2] = v2;
	h->v[3] = v3;
}

void mg__xxh64_update(struct mg_xxh64 *h, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t take, whole;

	h->total += len;
	if (h->buffered > 0) {
		take = 32 - h->buffered < len ? 32 - h->buffered : len;
		memcpy(h->buf + h->buffered, p, take);
		h->buffered += take;
		p += take;
		len -= take;
		if (h->buffered < 32)
			return;
		stripes(h, h->buf, 32);
		h->buffered = 0;
	}
	whole = len & ~(size_t)31;
	stripes(h, p, whole);
	memcpy(h->buf, p + whole, len - whole);
	h->buffered = len - whole;
}

void mg__xxh64_zeros(struct mg_xxh64 *h, uint64_t len)
{
	/* Not const: in .bss it costs the agent no bytes on the wire. */
	static uint8_t zero[64 * 1024];

	while (len > 0) {
		size_t n = len < sizeof(zero) ? (size_t)len : sizeof(zero);
		mg__xxh64_update(h, zero, n);
		len -= n;
	}
}

uint64_t mg__xxh64_final(const struct mg_xxh64 *h)
{
	const uint8_t *p = h->buf, *end = h->buf + h->buffered;
	uint64_t acc;

	if (h->total >= 32) {
		acc = rotl(h->v[0], 1) + rotl(h->v[1], 7) + rotl(h->v[2], 12) + rotl(h->v[3], 18);
		acc = merge(acc, h->v[0]);
		acc = merge(acc, h->v[1]);
		acc = merge(acc, h->v[2]);
		acc = merge(acc, h->v[3]);
	} else {
		acc = h->seed + P5;
	}
	acc += h->total;
	for (; p + 8 <= end; p += 8) {
		acc ^= round1(0, le64(p));
		acc = rotl(acc, 27) * P1 + P4;
	}
	if (p + 4 <= end) {
		acc ^= (uint64_t)le32(p) * P1;
		acc = rotl(acc, 23) * P2 + P3;
		p += 4;
	}
	for (; p < end; p++) {
		acc ^= (uint64_t)*p * P5;
		acc = rotl(acc, 11) * P1;
	}
	acc ^= acc >> 33;
	acc *= P2;
	acc ^= acc >> 29;
	acc *= P3;
	acc ^= acc >> 32;
	return acc;
}

uint64_t mg__xxh64(const void *data, size_t len, uint64_t seed)
{
	struct mg_xxh64 h;

	mg__xxh64_init(&h, seed);
	mg__xxh64_update(&h, data, len);
	return mg__xxh64_final(&h);
}

bool mg__svc_all_zero(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint64_t acc = 0, w[8];
	size_t i;

	/* Words, 64 bytes at a time with one test each (musl's memcmp goes
	 * byte by byte); data that is not zero stops at the first block. */
	for (; len >= 64; b += 64, len -= 64) {
		memcpy(w, b, 64);
		for (i = 0; i < 8; i++)
			acc |= w[i];
		if (acc != 0)
			return false;
	}
	for (; len > 0; b++, len--)
		acc |= *b;
	return acc == 0;
}
