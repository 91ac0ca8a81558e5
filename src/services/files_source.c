/*
 * files_source.c: the sending end of a file transfer (see files.h).
 *
 * Each chunk is read straight into the message that carries it: the
 * array and bin32 headers are written by hand in front of the bytes, so a
 * gigabyte crosses this side with one copy (the kernel's).  Chunks of
 * zeros go as a length only; the checksum still covers every byte.
 *
 * A chunk's message is FILE_MSG bytes in all: from MG_BIGBUF_MIN on, its
 * buffer comes from the kept big buffers (core/bigbuf.c), so no chunk
 * maps, faults in and unmaps fresh pages (musl's malloc, the agent's,
 * would for every one), and a gigabyte is a thousand messages, acks and
 * wake-ups rather than four thousand: over ssh on two CPUs, where the
 * cipher needs most of both, those hand-offs were what a pull lost.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "services/files.h"

/* [1, bin32 n]: fixarray(2), fixint 1, bin32 marker, 4-byte length. */
#define DATA_HDR 7

/* A whole data message: 1 MiB, header included (see above). */
#define FILE_MSG ((size_t)1 << 20)

void mg__file_meta_from_stat(const struct stat *st, struct file_meta *m)
{
	m->size = (uint64_t)st->st_size;
	m->mode = st->st_mode & 07777;
	m->mtime = st->st_mtim;
	m->uid = st->st_uid;
	m->gid = st->st_gid;
}

static int read_full(int fd, uint8_t *p, size_t n, uint64_t off)
{
	ssize_t r;

	while (n > 0) {
		r = pread(fd, p, n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ENODATA; /* the file shrank under us */
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

/* Handles one status message: an ack moves *acked, a final word ends the
 * transfer (returns 1 with *finalp set). */
static int on_status(struct mg_msg *m, uint64_t *acked, int *finalp, char *err, size_t errsize)
{
	int64_t tag, v;
	const char *text;
	size_t n;

	if (mg_msg_read(m, "aii", &n, &tag, &v) != 0)
		return 0;
	if (tag == FILE_ACK && v > 0 && (uint64_t)v > *acked)
		*acked = (uint64_t)v;
	if (tag != FILE_FINAL)
		return 0;
	*finalp = (int)v;
	if (v != 0 && mg_msg_read(m, "s", &text) == 0 && text != NULL)
		snprintf(err, errsize, "%s", text);
	return 1;
}

/* Where the file's data lies, as far as lseek has said: [data_at,
 * hole_at) is data, and from off to data_at a hole. */
struct extent {
	uint64_t data_at, hole_at;
};

/* True when [off, off + n) lies in a hole, so it need not be read: the
 * next data starts past it, or there is none.  One SEEK_DATA and one
 * SEEK_HOLE per run of data, not one per chunk: a file without holes
 * costs two lseeks in all. */
static bool in_hole(int fd, uint64_t off, size_t n, struct extent *x)
{
	off_t next;

	if (x->data_at > off)
		return x->data_at >= off + n;
	if (x->hole_at > off)
		return false;
	next = lseek(fd, (off_t)off, SEEK_DATA);
	if (next < 0) {
		/* ENXIO: only a hole up to the end; anything else: no hole
		 * information (an old filesystem), read everything. */
		bool hole = errno == ENXIO;
		*x = (struct extent){hole ? UINT64_MAX : 0, hole ? 0 : UINT64_MAX};
		return hole;
	}
	x->data_at = (uint64_t)next;
	next = lseek(fd, next, SEEK_HOLE);
	/* Without an answer, look again at the next chunk. */
	x->hole_at = next < 0 ? 0 : (uint64_t)next;
	return x->data_at >= off + n;
}

static int chunk_msg(int fd, uint64_t off, size_t n, struct mg_xxh64 *h, struct extent *x,
                     struct mg_msg **mp)
{
	struct mg_msg *m;
	size_t done, piece;
	uint8_t *d;
	int rc;

	if (in_hole(fd, off, n, x)) {
		mg__xxh64_zeros(h, n);
		return mg_msg_pack(mp, "(iu)", (int64_t)FILE_HOLE, (uint64_t)n);
	}
	if ((rc = mg_msg_new_size(DATA_HDR + n, &m)) != 0)
		return rc;
	d = mg_msg_data_mut(m);
	/* Hashed piece by piece as read, while each is still in the cache. */
	for (done = 0; done < n; done += piece) {
		piece = n - done < FILE_PIECE ? n - done : FILE_PIECE;
		if ((rc = read_full(fd, d + DATA_HDR + done, piece, off + done)) != 0) {
			mg_msg_free(m);
			return rc;
		}
		mg__xxh64_update(h, d + DATA_HDR + done, piece);
	}
	if (mg__svc_all_zero(d + DATA_HDR, n)) {
		mg_msg_free(m);
		return mg_msg_pack(mp, "(iu)", (int64_t)FILE_HOLE, (uint64_t)n);
	}
	d[0] = 0x92;
	d[1] = FILE_DATA;
	d[2] = 0xc6;
	d[3] = (uint8_t)(n >> 24);
	d[4] = (uint8_t)(n >> 16);
	d[5] = (uint8_t)(n >> 8);
	d[6] = (uint8_t)n;
	/* Appending nothing marks the payload as MessagePack. */
	mg_msg_append(m, "");
	*mp = m;
	return 0;
}

int mg__file_source_run(int fd, uint64_t size, uint64_t window, struct mg_sender *data,
                        struct mg_receiver *status, uint64_t *hashp, char *err, size_t errsize)
{
	uint64_t sent = 0, acked = 0, chunk;
	struct extent x = {0, 0};
	struct mg_xxh64 h;
	struct mg_msg *m;
	int rc, final = 0;

	mg__xxh64_init(&h, 0);
	window = mg__svc_window(window);
	/* A small window still holds a few chunks, so the pipe never waits
	 * for one whole chunk's ack. */
	chunk = window / 4 < FILE_MSG - DATA_HDR ? window / 4 : FILE_MSG - DATA_HDR;
	while (sent < size) {
		/* Wait while the window is full; otherwise only look, so a sink
		 * that failed (disk full) stops us at once. */
		rc = mg_receiver_get(status, sent - acked >= window ? -1 : 0, &m);
		if (rc == 0) {
			int ended = on_status(m, &acked, &final, err, errsize);
			mg_msg_free(m);
			if (ended)
				return final != 0 ? final : -EPROTO;
			continue;
		}
		if (rc != -ETIMEDOUT) {
			snprintf(err, errsize, "the receiving side went away: %s", mg_strerror(rc));
			return rc;
		}
		size_t n = size - sent < chunk ? (size_t)(size - sent) : (size_t)chunk;
		if ((rc = chunk_msg(fd, sent, n, &h, &x, &m)) != 0) {
			snprintf(err, errsize, "reading the source at offset %llu: %s",
			         (unsigned long long)sent,
			         rc == -ENODATA ? "the file shrank during the transfer"
			                        : mg_strerror(rc));
			mg_sender_sendf(data, "(iis)", (int64_t)FILE_ABORT, (int64_t)rc, err);
			return rc == -ENODATA ? -EIO : rc;
		}
		mg_sender_send(data, m);
		sent += n;
	}
	*hashp = mg__xxh64_final(&h);
	mg_sender_sendf(data, "(iuu)", (int64_t)FILE_END, *hashp, size);
	for (;;) {
		if ((rc = mg_receiver_get(status, -1, &m)) != 0) {
			snprintf(err, errsize, "the receiving side went away: %s", mg_strerror(rc));
			return rc;
		}
		rc = on_status(m, &acked, &final, err, errsize);
		mg_msg_free(m);
		if (rc)
			return final;
	}
}
