/*
 * fuzz.h: the libFuzzer targets.  Each fuzz_<name>.c defines
 * mg_fuzz_<name>(), the whole body of the target, and, unless
 * MG_FUZZ_REPLAY is defined, the LLVMFuzzerTestOneInput() that calls it.
 * tests/test_wire_corpus.c builds the wire layer's with MG_FUZZ_REPLAY and
 * replays tests/corpus/<name>/ through them in every build; fuzz_inflate
 * (the unpacker's inflate against zlib's) is for fuzzing only.
 *
 * A target returns 0; a broken invariant aborts with a message, which
 * libFuzzer reports as a crash and the replay suite as a failed case.
 */
#ifndef MG_FUZZ_H
#define MG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int mg_fuzz_msgpack_reader(const uint8_t *data, size_t size);
int mg_fuzz_fmt_unpack(const uint8_t *data, size_t size);
int mg_fuzz_frame_decode(const uint8_t *data, size_t size);
int mg_fuzz_inflate(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                                    \
	do {                                                                                 \
		if (!(cond)) {                                                               \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, \
			        #cond);                                                      \
			abort();                                                             \
		}                                                                            \
	} while (0)

#endif
