/*
 * pack.c: a build tool that prepares the agent for mitogen-unpack
 * (unpack.c), in two steps around a deflate compressor:
 *
 *   pack filter IN OUT    applies the x86 branch filter unpack.c undoes
 *   pack strip IN OUT     turns gzip's output (RFC 1952, no name: -n, or
 *                         zopfli's) into the raw deflate stream inside it
 *
 * The build runs filter, then zopfli --gzip (or gzip -9n), then strip: the
 * unpacker needs no gzip header or checksum (the channel is reliable and
 * the program's length is in its own header), and the library needs no
 * compressor of its own.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "branch_filter.h"

static uint8_t *load(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p = NULL;
	size_t cap = 0, len = 0, n;

	if (f == NULL) {
		perror(path);
		exit(1);
	}
	do {
		if (len == cap && (p = realloc(p, cap = cap * 2 + 65536)) == NULL) {
			fprintf(stderr, "pack: out of memory\n");
			exit(1);
		}
		n = fread(p + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		perror(path);
		exit(1);
	}
	fclose(f);
	*lenp = len;
	return p;
}

static void save(const char *path, const uint8_t *p, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (f == NULL || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

/* The deflate stream of a gzip member: after the 10-byte header (no
 * optional fields: gzip -n and zopfli write none) and before the 8-byte
 * trailer. */
static int strip(const uint8_t *p, size_t n, size_t *offp, size_t *lenp)
{
	if (n < 18 || p[0] != 0x1f || p[1] != 0x8b || p[2] != 8 || p[3] != 0)
		return -1;
	*offp = 10;
	*lenp = n - 18;
	return 0;
}

int main(int argc, char **argv)
{
	uint8_t *p;
	size_t n, off, len;

	if (argc != 4 || (strcmp(argv[1], "filter") != 0 && strcmp(argv[1], "strip") != 0)) {
		fprintf(stderr, "usage: pack filter|strip IN OUT\n");
		return 2;
	}
	p = load(argv[2], &n);
	if (strcmp(argv[1], "filter") == 0) {
		branch_filter(p, n, 0);
		save(argv[3], p, n);
	} else {
		if (strip(p, n, &off, &len) != 0) {
			fprintf(stderr, "pack: %s: not gzip output without optional fields\n",
			        argv[2]);
			return 1;
		}
		save(argv[3], p + off, len);
	}
	free(p);
	return 0;
}
