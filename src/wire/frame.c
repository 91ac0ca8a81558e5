/*
 * frame.c: the 28-byte frame header.  Fields are written one by one in
 * big-endian order, never by casting a struct onto the bytes.
 *
 *   0  u16 magic 0x4d47     2  u16 flags     4  u32 dst_id   8  u32 src_id
 *  12  u32 auth_id         16  u32 handle   20  u32 reply_to 24  u32 len
 */
#include "wire/wire.h"

/* Flag bits this version understands: the encoding nibble and SECRET. */
#define FRAME_ENC_MASK 0x000fu
#define FRAME_KNOWN (FRAME_ENC_MASK | MG_FRAME_SECRET)

void mg__frame_encode(const struct mg_frame_hdr *h, uint8_t *out)
{
	mg__put_be16(out + 0, MG_FRAME_MAGIC);
	mg__put_be16(out + 2, h->flags);
	mg__put_be32(out + 4, h->dst_id);
	mg__put_be32(out + 8, h->src_id);
	mg__put_be32(out + 12, h->auth_id);
	mg__put_be32(out + 16, h->handle);
	mg__put_be32(out + 20, h->reply_to);
	mg__put_be32(out + 24, h->len);
}

/* An encoding this version does not know is refused like an unknown flag:
 * the payload could not be interpreted, and the peer must not think it
 * was. */
int mg__frame_decode(const uint8_t *in, size_t max, struct mg_frame_hdr *h)
{
	uint16_t flags = mg__be16(in + 2);
	uint32_t len = mg__be32(in + 24);

	if (mg__be16(in) != MG_FRAME_MAGIC)
		return MG_EPROTOCOL;
	if ((flags & ~FRAME_KNOWN) != 0 || (flags & FRAME_ENC_MASK) > MG_ENC_RAW)
		return MG_EPROTOCOL;
	if (len > max)
		return MG_ETOOBIG;
	h->flags = flags;
	h->dst_id = mg__be32(in + 4);
	h->src_id = mg__be32(in + 8);
	h->auth_id = mg__be32(in + 12);
	h->handle = mg__be32(in + 16);
	h->reply_to = mg__be32(in + 20);
	h->len = len;
	return 0;
}
