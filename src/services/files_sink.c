/*
 * files_sink.c: the receiving end of a file transfer (see files.h).
 *
 * The target path only ever holds the old file or the complete new one:
 * bytes go to a temporary file in the same folder (so the rename cannot
 * cross filesystems), which gets the source's mode, owner and mtime, is
 * fsynced, checked against the source's size and XXH64, and only then
 * renamed over the target.  Every failure unlinks the temporary file.
 * Runs of zeros are left as holes, so sparse files stay sparse.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/files.h"

int mg__file_sink_open(struct file_sink *k, const char *path, char *err, size_t errsize)
{
	char *copy = NULL;
	struct stat st;
	size_t n;
	int rc = 0;

	memset(k, 0, sizeof(*k));
	k->fd = -1;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(err, errsize, "[Errno %d] %s: '%s'", EISDIR, strerror(EISDIR), path);
		return -EISDIR;
	}
	n = strlen(path);
	if ((k->path = strdup(path)) == NULL || (copy = strdup(path)) == NULL ||
	    (k->tmp = malloc(n + 32)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	{
		char *slash = strrchr(copy, '/');
		const char *dir = slash == NULL ? "." : slash == copy ? "/" : copy;
		const char *base = slash == NULL ? copy : slash + 1;
		if (slash != NULL)
			*slash = '\0';
		if (*base == '\0') {
			rc = -EISDIR;
			goto out;
		}
		snprintf(k->tmp, n + 32, "%s/.%s.mgtmp-XXXXXX", dir, base);
	}
	if ((k->fd = mkostemp(k->tmp, O_CLOEXEC)) < 0) {
		rc = -errno;
		free(k->tmp);
		k->tmp = NULL;
	}
out:
	if (rc != 0)
		snprintf(err, errsize, "[Errno %d] %s: '%s'", -rc, strerror(-rc), path);
	free(copy);
	return rc;
}

void mg__file_sink_fini(struct file_sink *k)
{
	if (k->fd >= 0)
		close(k->fd);
	if (k->tmp != NULL)
		unlink(k->tmp);
	free(k->tmp);
	free(k->path);
	memset(k, 0, sizeof(*k));
	k->fd = -1;
}

static int write_full(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	ssize_t w;

	while (n > 0) {
		w = pwrite(fd, p, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* Makes the temporary file the target. */
static int commit(struct file_sink *k)
{
	const struct file_meta *m = &k->meta;
	struct timespec times[2];
	char *copy, *dir;
	int dfd;

	if (ftruncate(k->fd, (off_t)m->size) != 0)
		return -errno;
	/* The owner first: chown clears set-id bits that fchmod then sets. */
	if (k->keep_owner && geteuid() == 0 && m->uid >= 0 &&
	    fchown(k->fd, (uid_t)m->uid, (gid_t)m->gid) != 0)
		return -errno;
	if (fchmod(k->fd, m->mode) != 0)
		return -errno;
	times[0] = m->mtime;
	times[1] = m->mtime;
	if (futimens(k->fd, times) != 0)
		return -errno;
	if (fsync(k->fd) != 0)
		return -errno;
	if (rename(k->tmp, k->path) != 0)
		return -errno;
	free(k->tmp);
	k->tmp = NULL;
	/* The rename is durable once its folder is. */
	if ((copy = strdup(k->path)) != NULL) {
		dir = dirname(copy);
		if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
			fsync(dfd);
			close(dfd);
		}
		free(copy);
	}
	return 0;
}

/* Takes one data message.  0 to go on, 1 at a good end, or an error. */
static int on_data(struct file_sink *k, struct mg_msg *m, struct mg_xxh64 *h, uint64_t *off,
                   char *err, size_t errsize)
{
	uint64_t n, hash, size;
	const char *text;
	int64_t tag, code;
	const void *p;
	size_t cnt, len;
	int rc;

	if (mg_msg_read(m, "ai", &cnt, &tag) != 0)
		return MG_EDECODE;
	switch (tag) {
	case FILE_DATA:
		if (mg_msg_read(m, "y", &p, &len) != 0)
			return MG_EDECODE;
		if (*off + len > k->meta.size)
			goto too_long;
		if ((rc = write_full(k->fd, p, len, *off)) != 0) {
			snprintf(err, errsize, "[Errno %d] %s: '%s'", -rc, strerror(-rc), k->path);
			return rc;
		}
		mg__xxh64_update(h, p, len);
		*off += len;
		return 0;
	case FILE_HOLE:
		if (mg_msg_read(m, "u", &n) != 0)
			return MG_EDECODE;
		if (*off + n > k->meta.size)
			goto too_long;
		mg__xxh64_zeros(h, n);
		*off += n;
		return 0;
	case FILE_END:
		if (mg_msg_read(m, "uu", &hash, &size) != 0)
			return MG_EDECODE;
		if (size != *off || size != k->meta.size || hash != mg__xxh64_final(h)) {
			snprintf(err, errsize,
			         "checksum or size mismatch for '%s': %llu bytes, expected %llu",
			         k->path, (unsigned long long)*off, (unsigned long long)size);
			return -EBADMSG;
		}
		k->hash = hash;
		return 1;
	case FILE_ABORT:
		if (mg_msg_read(m, "is", &code, &text) != 0)
			return MG_EDECODE;
		snprintf(err, errsize, "the source failed: %s", text ? text : "");
		return code < 0 ? (int)code : -EIO;
	default:
		return MG_EDECODE;
	}
too_long:
	snprintf(err, errsize, "more data than the announced %llu bytes",
	         (unsigned long long)k->meta.size);
	return -EBADMSG;
}

int mg__file_sink_run(struct file_sink *k, struct mg_receiver *data, struct mg_sender *status,
                      uint64_t window, char *err, size_t errsize)
{
	uint64_t off = 0, last_ack = 0;
	struct mg_xxh64 h;
	struct mg_msg *m;
	int rc;

	mg__xxh64_init(&h, 0);
	window = mg__svc_window(window);
	err[0] = '\0';
	for (;;) {
		if ((rc = mg_receiver_get(data, -1, &m)) != 0) {
			snprintf(err, errsize, "the sending side went away: %s", mg_strerror(rc));
			break;
		}
		rc = on_data(k, m, &h, &off, err, errsize);
		mg_msg_free(m);
		if (rc != 0)
			break;
		if (off - last_ack >= window / 4 && status != NULL) {
			mg_sender_sendf(status, "(iu)", (int64_t)FILE_ACK, off);
			last_ack = off;
		}
	}
	if (rc == 1 && (rc = commit(k)) != 0)
		snprintf(err, errsize, "[Errno %d] %s: '%s'", -rc, strerror(-rc), k->path);
	if (rc == MG_EDECODE)
		snprintf(err, errsize, "a malformed transfer message for '%s'", k->path);
	/* Nothing more is read from data: later chunks in flight come back
	 * dead to nobody once the caller closes the receiver. */
	if (status != NULL)
		mg_sender_sendf(status, "(iis)", (int64_t)FILE_FINAL, (int64_t)rc, err);
	return rc;
}
