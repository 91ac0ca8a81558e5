/*
 * test_wire_frame.c: the 28-byte frame header.
 */
#include "runner.h"
#include "wire/wire.h"

static const uint8_t sample[MG_FRAME_HDR_LEN] = {
        0x4d, 0x47, 0x00, 0x01, /* magic, flags (raw) */
        0x00, 0x00, 0x00, 0x05, /* dst 5 */
        0x00, 0x00, 0x00, 0x00, /* src 0 */
        0xff, 0xff, 0xff, 0xfe, /* auth */
        0x00, 0x00, 0x00, 0x64, /* handle 100 */
        0x00, 0x00, 0x03, 0xe8, /* reply_to 1000 */
        0x00, 0x01, 0x00, 0x00, /* len 65536 */
};

TEST(frame_encode_exact_bytes)
{
	struct mg_frame_hdr h = {
	        .flags = MG_ENC_RAW,
	        .dst_id = 5,
	        .src_id = 0,
	        .auth_id = 0xfffffffe,
	        .handle = MG_HANDLE_CALL_FUNCTION,
	        .reply_to = 1000,
	        .len = 65536,
	};
	uint8_t out[MG_FRAME_HDR_LEN];

	mg__frame_encode(&h, out);
	CHECK_MEM(out, sample, sizeof(sample));
}

TEST(frame_decode_fields)
{
	struct mg_frame_hdr h;

	CHECK_OK(mg__frame_decode(sample, 65536, &h));
	CHECK_EQ(h.flags, MG_ENC_RAW);
	CHECK_EQ(h.dst_id, 5);
	CHECK_EQ(h.src_id, 0);
	CHECK_UINT(h.auth_id, ==, 0xfffffffe);
	CHECK_EQ(h.handle, 100);
	CHECK_EQ(h.reply_to, 1000);
	CHECK_EQ(h.len, 65536);
}

TEST(frame_round_trip_extremes)
{
	static const uint32_t vals[] = {0, 1, 0x7fffffff, 0x80000000, 0xffffffff};
	struct mg_frame_hdr a, b;
	uint8_t out[MG_FRAME_HDR_LEN];
	size_t i;

	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		a.flags = (uint16_t)(i & 1);
		a.dst_id = vals[i];
		a.src_id = ~vals[i];
		a.auth_id = vals[i] ^ 0x5a5a5a5a;
		a.handle = vals[(i + 1) % 5];
		a.reply_to = vals[(i + 2) % 5];
		a.len = vals[i];
		mg__frame_encode(&a, out);
		CHECK_EQ(mg__be16(out), MG_FRAME_MAGIC);
		CHECK_OK(mg__frame_decode(out, SIZE_MAX, &b));
		CHECK_EQ(a.flags, b.flags);
		CHECK_UINT(a.dst_id, ==, b.dst_id);
		CHECK_UINT(a.src_id, ==, b.src_id);
		CHECK_UINT(a.auth_id, ==, b.auth_id);
		CHECK_UINT(a.handle, ==, b.handle);
		CHECK_UINT(a.reply_to, ==, b.reply_to);
		CHECK_UINT(a.len, ==, b.len);
	}
}

/* A failed decode leaves h exactly as it was. */
static void check_untouched(const uint8_t *in, size_t max, int want)
{
	struct mg_frame_hdr h, orig;

	memset(&h, 0xa5, sizeof(h));
	orig = h;
	CHECK_EQ(mg__frame_decode(in, max, &h), want);
	CHECK_MEM(&h, &orig, sizeof(h));
}

TEST(frame_bad_magic)
{
	uint8_t in[MG_FRAME_HDR_LEN];
	int i;

	for (i = 0; i < 4; i++) {
		memcpy(in, sample, sizeof(in));
		in[i / 2] ^= (uint8_t)(i % 2 ? 0x01 : 0x80);
		check_untouched(in, 1 << 20, MG_EPROTOCOL);
	}
	memcpy(in, sample, sizeof(in));
	in[0] = 0x47;
	in[1] = 0x4d; /* little-endian magic */
	check_untouched(in, 1 << 20, MG_EPROTOCOL);
}

TEST(frame_flags)
{
	struct mg_frame_hdr h;
	uint8_t in[MG_FRAME_HDR_LEN];
	unsigned bit, enc;

	memcpy(in, sample, sizeof(in));
	for (enc = 0; enc < 16; enc++) {
		mg__put_be16(in + 2, (uint16_t)enc);
		if (enc <= MG_ENC_RAW) {
			CHECK_OK(mg__frame_decode(in, 1 << 20, &h));
			CHECK_EQ(h.flags, enc);
		} else {
			check_untouched(in, 1 << 20, MG_EPROTOCOL);
		}
	}
	/* SECRET rides beside either encoding and comes back as sent. */
	mg__put_be16(in + 2, (uint16_t)(MG_FRAME_SECRET | MG_ENC_RAW));
	CHECK_OK(mg__frame_decode(in, 1 << 20, &h));
	CHECK_EQ(h.flags, MG_FRAME_SECRET | MG_ENC_RAW);
	for (bit = 5; bit < 16; bit++) {
		mg__put_be16(in + 2, (uint16_t)(1u << bit));
		check_untouched(in, 1 << 20, MG_EPROTOCOL);
	}
}

TEST(frame_too_big)
{
	struct mg_frame_hdr h;
	uint8_t in[MG_FRAME_HDR_LEN];

	memcpy(in, sample, sizeof(in));
	CHECK_OK(mg__frame_decode(in, 65536, &h));
	check_untouched(in, 65535, MG_ETOOBIG);
	check_untouched(in, 0, MG_ETOOBIG);
	mg__put_be32(in + 24, 0);
	CHECK_OK(mg__frame_decode(in, 0, &h));
	mg__put_be32(in + 24, 0xffffffff);
	check_untouched(in, 0xfffffffe, MG_ETOOBIG);
	CHECK_OK(mg__frame_decode(in, 0xffffffff, &h));
	/* Magic is checked before length: a bad frame is a protocol error. */
	in[0] = 0;
	check_untouched(in, 0, MG_EPROTOCOL);
}
