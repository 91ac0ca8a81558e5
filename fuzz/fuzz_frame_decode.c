/*
 * fuzz_frame_decode.c: a byte stream cut into frames the way a stream
 * reader does it: header, length check against the maximum, payload, and
 * a MessagePack walk over msgpack payloads.
 *
 * Input: 4 bytes of maximum payload size (big-endian), then the stream.
 */
#include <string.h>

#include "fuzz.h"
#include "wire/msgpack.h"

int mg_fuzz_frame_decode(const uint8_t *data, size_t size)
{
	struct mg_frame_hdr h, sentinel;
	uint8_t again[MG_FRAME_HDR_LEN];
	size_t max, off = 4;
	unsigned enc;
	int r;

	if (size < 4)
		return 0;
	max = mg__be32(data);
	while (size - off >= MG_FRAME_HDR_LEN) {
		memset(&h, 0x5a, sizeof(h));
		sentinel = h;
		r = mg__frame_decode(data + off, max, &h);
		if (r != 0) {
			FUZZ_ASSERT(r == MG_EPROTOCOL || r == MG_ETOOBIG);
			FUZZ_ASSERT(memcmp(&h, &sentinel, sizeof(h)) == 0);
			FUZZ_ASSERT(r == MG_ETOOBIG || mg__be16(data + off) != MG_FRAME_MAGIC ||
			            (mg__be16(data + off + 2) & ~MG_FRAME_SECRET) > MG_ENC_RAW);
			return 0; /* a stream reader disconnects here */
		}
		FUZZ_ASSERT(h.len <= max);
		enc = h.flags & ~MG_FRAME_SECRET;
		FUZZ_ASSERT(enc == MG_ENC_MSGPACK || enc == MG_ENC_RAW);
		/* Decoding loses nothing: encoding gives the same bytes back. */
		mg__frame_encode(&h, again);
		FUZZ_ASSERT(memcmp(again, data + off, MG_FRAME_HDR_LEN) == 0);
		off += MG_FRAME_HDR_LEN;
		if (h.len > size - off)
			return 0; /* the rest of the payload never came */
		if (enc == MG_ENC_MSGPACK) {
			struct mg_mpr rd;

			mg__mpr_init(&rd, data + off, h.len);
			while (!mg__mpr_at_end(&rd) && mg__mpr_skip(&rd) == 0)
				;
			FUZZ_ASSERT(rd.off <= h.len);
		}
		off += h.len;
	}
	return 0;
}

#ifndef MG_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return mg_fuzz_frame_decode(data, size);
}
#endif
