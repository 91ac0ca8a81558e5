/*
 * fuzz_inflate.c: mitogen-unpack's inflate (agent/unpack.c), the code that
 * unpacks the agent on every target, against zlib's.  Input bytes 0-1 are
 * the output length the unpacker is told (it always knows the program's
 * exact length), the rest a raw deflate stream (RFC 1951).
 *
 * Both buffers are allocated to their exact sizes, so ASan sees any read
 * or write past them.  Where zlib inflates the whole stream to exactly
 * that many bytes, ours must succeed with the same bytes.  (The other
 * way round is not required: ours does not reject over-subscribed code
 * sets, which zlib does; it still stays inside its buffers.)
 *
 * Fuzzing only (needs zlib, so no corpus replay in the test suite; the
 * suite's test_unpack covers inflate with real streams and corruptions).
 */
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"

/* unpack.c's inflate() and struct inflate, renamed away from zlib's. */
#define UNPACK_NO_START
#define inflate unpack_inflate
#include "../agent/unpack.c"
#undef inflate

#include <zlib.h>

/* zlib's raw inflate of z into exactly cap bytes: whether it ends the
 * stream there. */
static bool zlib_inflates(const uint8_t *z, size_t zn, uint8_t *out, size_t cap)
{
	z_stream s;
	bool ok;

	memset(&s, 0, sizeof(s));
	if (inflateInit2(&s, -15) != Z_OK)
		return false;
	s.next_in = (Bytef *)z;
	s.avail_in = (uInt)zn;
	s.next_out = out;
	s.avail_out = (uInt)cap;
	ok = inflate(&s, Z_FINISH) == Z_STREAM_END && s.avail_out == 0;
	inflateEnd(&s);
	return ok;
}

int mg_fuzz_inflate(const uint8_t *data, size_t size)
{
	uint8_t *z, *ours, *theirs;
	size_t cap, zn;
	int r;

	if (size < 2)
		return 0;
	cap = (size_t)data[0] | (size_t)data[1] << 8;
	zn = size - 2;
	z = malloc(zn + !zn);
	ours = malloc(cap + !cap);
	theirs = malloc(cap + !cap);
	FUZZ_ASSERT(z != NULL && ours != NULL && theirs != NULL);
	memcpy(z, data + 2, zn);
	{
		struct unpack_inflate s = {z, z + zn, 0, 0, ours, 0, cap, 0};

		r = unpack_inflate(&s);
		FUZZ_ASSERT(s.pos <= cap);
	}
	if (zlib_inflates(z, zn, theirs, cap)) {
		FUZZ_ASSERT(r == 0);
		FUZZ_ASSERT(memcmp(ours, theirs, cap) == 0);
	}
	free(z);
	free(ours);
	free(theirs);
	return 0;
}

#ifndef MG_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return mg_fuzz_inflate(data, size);
}
#endif
