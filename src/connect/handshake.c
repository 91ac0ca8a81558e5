/*
 * handshake.c: the few bytes exchanged on a new channel before framed
 * messages start (docs/PROTOCOL.md, "Bootstrap").  Both messages have a
 * length known in advance, so neither side ever reads past them into the
 * framed protocol that follows on the same fds.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "connect/connect.h"

int mg__hs_boot_build(const struct mg_boot *boot, struct mg_buf *out)
{
	char line[MG_HS_BOOT_LINE_LEN + 1];
	size_t at = out->len;
	int r;

	snprintf(line, sizeof(line), "%s%08u\n", MG_HS_BOOT_MAGIC, (unsigned)MG_PROTOCOL_VERSION);
	if ((r = mg__buf_put(out, line, MG_HS_BOOT_LINE_LEN)) != 0 ||
	    (r = mg__buf_put_u32(out, 0)) != 0 || (r = mg__boot_encode(boot, out)) != 0) {
		out->len = at;
		return r;
	}
	if (out->len - at - MG_HS_BOOT_LINE_LEN - 4 > MG_HS_BOOT_MAX) {
		out->len = at;
		return MG_ELIMIT;
	}
	mg__put_be32(out->data + at + MG_HS_BOOT_LINE_LEN,
	             (uint32_t)(out->len - at - MG_HS_BOOT_LINE_LEN - 4));
	return 0;
}

/* Writes v as exactly n decimal digits (the high ones dropped). */
static void put_digits(char *p, size_t n, uint32_t v)
{
	while (n-- > 0) {
		p[n] = (char)('0' + v % 10);
		v /= 10;
	}
}

/* By hand rather than with snprintf: a fork child formats this first thing,
 * and each stack page printf's machinery touches is a copy-on-write fault
 * on the way to ready. */
void mg__hs_ready_format(uint32_t version, uint32_t pid, char *out)
{
	const size_t m = sizeof(MG_HS_READY_MAGIC) - 1;

	memcpy(out, MG_HS_READY_MAGIC, m);
	put_digits(out + m, 8, version % 100000000u);
	out[m + 8] = ' ';
	put_digits(out + m + 9, 10, pid);
	out[MG_HS_READY_LEN - 1] = '\n';
}

/* Parses exactly n decimal digits. */
static bool digits(const char *p, size_t n, uint32_t *vp)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*vp = (uint32_t)v;
	return true;
}

int mg__hs_ready_parse(const char *in, uint32_t *versionp, uint32_t *pidp, char *why, size_t whylen)
{
	const size_t m = sizeof(MG_HS_READY_MAGIC) - 1;
	uint32_t ver, pid;

	if (memcmp(in, MG_HS_READY_MAGIC, m) != 0 || !digits(in + m, 8, &ver) || in[m + 8] != ' ' ||
	    !digits(in + m + 9, 10, &pid) || in[MG_HS_READY_LEN - 1] != '\n') {
		snprintf(why, whylen, "the child sent something other than a ready marker");
		return MG_EPROTOCOL;
	}
	if (ver != MG_PROTOCOL_VERSION) {
		snprintf(why, whylen,
		         "protocol version mismatch: the child speaks version %u, this side %u",
		         ver, (unsigned)MG_PROTOCOL_VERSION);
		return MG_ECONNECT;
	}
	*versionp = ver;
	*pidp = pid;
	return 0;
}

/* Blocking write of all n bytes. */
static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EPIPE;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Blocking read of exactly n bytes; -EPIPE at a premature end. */
static int read_all(int fd, void *p, size_t n)
{
	uint8_t *b = p;

	while (n > 0) {
		ssize_t r = read(fd, b, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EPIPE;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

int mg__hs_write_ready(int wfd)
{
	char mark[MG_HS_READY_LEN];

	mg__hs_ready_format(MG_PROTOCOL_VERSION, (uint32_t)getpid(), mark);
	return write_all(wfd, mark, sizeof(mark));
}

/* The child cannot log yet (no channel), so refusals go to stderr, which
 * the parent collects and reports as the connect's error. */
static int refuse(const char *text)
{
	char line[256];
	int n = snprintf(line, sizeof(line), "mitogen: %s\n", text);

	if (n > 0)
		write_all(STDERR_FILENO, line,
		          (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	return MG_EPROTOCOL;
}

int mg__connect_child_boot(int rfd, int wfd, struct mg_boot *bootp)
{
	const size_t m = sizeof(MG_HS_BOOT_MAGIC) - 1;
	char line[MG_HS_BOOT_LINE_LEN], text[160];
	uint8_t lenb[4], *blob;
	uint32_t ver, len;
	int r;

	if (read_all(rfd, line, sizeof(line)) != 0)
		return refuse("no handshake from the parent");
	if (memcmp(line, MG_HS_BOOT_MAGIC, m) != 0 || !digits(line + m, 8, &ver) ||
	    line[MG_HS_BOOT_LINE_LEN - 1] != '\n')
		return refuse("the parent's handshake is malformed");
	if (ver != MG_PROTOCOL_VERSION) {
		snprintf(text, sizeof(text),
		         "protocol version mismatch: the parent speaks version %u, this program %u",
		         ver, (unsigned)MG_PROTOCOL_VERSION);
		return refuse(text);
	}
	if (read_all(rfd, lenb, 4) != 0)
		return refuse("the parent's handshake ended early");
	len = mg__be32(lenb);
	if (len > MG_HS_BOOT_MAX)
		return refuse("the parent's boot parameters are too large");
	if ((blob = mg__malloc(len)) == NULL)
		return -ENOMEM;
	r = read_all(rfd, blob, len);
	if (r == 0)
		r = mg__boot_decode(blob, len, bootp);
	mg__free(blob);
	if (r != 0)
		return refuse("the parent's boot parameters are malformed");
	return mg__hs_write_ready(wfd);
}
