/*
 * files_sink.c: the receiving end of a file transfer (see files.h).
 *
 * The target path only ever holds the old file or the complete new one:
 * bytes go to a temporary file in the same folder (so the rename cannot
 * cross filesystems), which gets the source's mode, owner and mtime, is
 * fsynced, checked against the source's size and XXH64, and only then
 * renamed over the target.  Every failure unlinks the temporary file.
 * Runs of zeros are left as holes, so sparse files stay sparse.
 *
 * Where the filesystem allows, the temporary file has no name at all
 * (O_TMPFILE) until the commit links it in as ".<name>.mgtmp-XXXXXX"
 * and renames it over the target a moment later: a process that dies
 * at any other point (SIGKILL, a crash, a context exiting because its
 * parent went away in the middle of a transfer) leaves nothing behind.
 *
 * Otherwise (no O_TMPFILE on the filesystem, no /proc to link through,
 * or MG_FILE_NAMED_TEMP set in the environment, which tests use) the
 * temporary file is named from the start, and only such a death can leave
 * it behind.  A live sink holds an open-file-description write lock on its
 * temporary file, so the next sink for the same target can tell such
 * leftovers from a transfer still running beside it: a ".<name>.mgtmp-*"
 * in the target's folder that is ours (same owner), unlocked and untouched
 * for FILE_STALE_SECONDS is removed (by a sink that is itself named: one
 * sweep reads the whole folder).  The age covers the moment between
 * a sink creating its file and locking it, and filesystems where locks
 * are not shared between hosts.  rsync leaves such files for the user;
 * Mitogen's ansible plugin too: a later push cleaning up after a killed
 * one of its own is the least surprising thing to do, and one that never
 * touches another user's or a running transfer's file.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "services/files.h"

/* True when fd (a temporary file) is left over: ours, untouched for a
 * while and locked by no one. */
static bool is_stale(int fd, time_t now)
{
	struct flock fl;
	struct stat st;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    now - st.st_mtim.tv_sec < FILE_STALE_SECONDS)
		return false;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_RDLCK;
	fl.l_whence = SEEK_SET;
	/* A running sink's write lock makes this fail; an error such as
	 * EINVAL (no OFD locks here) says nothing, so the file stays. */
	return fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

/* Removes the leftovers of killed transfers to dir/base. */
static void sweep_stale(const char *dir, const char *base)
{
	char prefix[NAME_MAX + 16];
	struct dirent *e;
	time_t now = time(NULL);
	size_t plen;
	DIR *d;
	int fd;

	plen = (size_t)snprintf(prefix, sizeof(prefix), ".%s.mgtmp-", base);
	if (plen >= sizeof(prefix) || (d = opendir(dir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, prefix, plen) != 0 || strlen(e->d_name) != plen + 6)
			continue;
		fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		if (is_stale(fd, now) && unlinkat(dirfd(d), e->d_name, 0) == 0)
			mg_log(MG_LOG_INFO, "mitogen",
			       "removed %s/%s, left over from a killed transfer", dir, e->d_name);
		close(fd);
	}
	closedir(d);
}

/* Marks the temporary file as in use; see the top of this file. */
static void lock_tmp(int fd)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	(void)fcntl(fd, F_OFD_SETLK, &fl);
}

/* An unnamed file in dir, or -1 when the named way must be used. */
static int open_unnamed(const char *dir)
{
	const char *knob = getenv("MG_FILE_NAMED_TEMP");

	if (knob != NULL && knob[0] != '\0' && strcmp(knob, "0") != 0)
		return -1;
	/* Root links with AT_EMPTY_PATH; others need /proc to link. */
	if (geteuid() != 0 && access("/proc/self/fd", X_OK) != 0)
		return -1;
	return open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
}

/* Gives the unnamed file k->fd the name k->tmp (its XXXXXX made unique
 * here), so that it can be renamed over the target. */
static int link_unnamed(struct file_sink *k)
{
	static const char digits[] =
	        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	static unsigned counter;
	char proc[64], *x = k->tmp + strlen(k->tmp) - 6;
	struct timespec ts;
	uint64_t seed;
	int tries, i;

	clock_gettime(CLOCK_REALTIME, &ts);
	seed = (uint64_t)ts.tv_nsec * 2654435761u ^ (uint64_t)getpid() << 20 ^
	       __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", k->fd);
	for (tries = 0; tries < 100; tries++) {
		for (i = 0; i < 6; i++) {
			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			x[i] = digits[(seed >> 33) % (sizeof(digits) - 1)];
		}
		if (linkat(k->fd, "", AT_FDCWD, k->tmp, AT_EMPTY_PATH) == 0 ||
		    (errno != EEXIST &&
		     linkat(AT_FDCWD, proc, AT_FDCWD, k->tmp, AT_SYMLINK_FOLLOW) == 0)) {
			k->named = true;
			return 0;
		}
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

int mg__file_sink_open_store(struct file_sink *k, char *err, size_t errsize)
{
	const char *dir = getenv("TMPDIR");
	char tmpl[PATH_MAX];
	int rc = 0;
	size_t n;

	memset(k, 0, sizeof(*k));
	k->store = true;
	if (dir == NULL || dir[0] == '\0')
		dir = "/tmp";
	n = strlen(dir) + 16;
	if ((k->path = malloc(n)) == NULL)
		return -ENOMEM;
	snprintf(k->path, n, "a store in %s", dir);
	k->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (k->fd < 0 && errno != ENOENT && errno != EACCES) {
		/* No O_TMPFILE on this filesystem: a named file, unlinked at
		 * once. */
		snprintf(tmpl, sizeof(tmpl), "%s/.mg-store-XXXXXX", dir);
		if ((k->fd = mkostemp(tmpl, O_CLOEXEC)) >= 0)
			unlink(tmpl);
	}
	if (k->fd < 0) {
		rc = -errno;
		snprintf(err, errsize, "[Errno %d] %s: cannot store a file in '%s'", -rc,
		         strerror(-rc), dir);
	}
	return rc;
}

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
		if ((k->fd = open_unnamed(dir)) >= 0)
			goto out;
		/* Only the named way leaves anything to sweep; sweeping reads
		 * the whole folder, so it is not done on every push. */
		sweep_stale(dir, base);
	}
	if ((k->fd = mkostemp(k->tmp, O_CLOEXEC)) < 0) {
		rc = -errno;
		free(k->tmp);
		k->tmp = NULL;
	} else {
		k->named = true;
		lock_tmp(k->fd);
	}
out:
	if (rc != 0)
		snprintf(err, errsize, "[Errno %d] %s: '%s'", -rc, strerror(-rc), path);
	free(copy);
	return rc;
}

void mg__file_sink_fini(struct file_sink *k)
{
	if (k->tmp != NULL && k->named)
		unlink(k->tmp);
	if (k->fd >= 0)
		close(k->fd);
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
	int dfd, rc;

	if (ftruncate(k->fd, (off_t)m->size) != 0)
		return -errno;
	if (k->store)
		return 0; /* kept open for its reader; nothing to rename */
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
	if (!k->named && (rc = link_unnamed(k)) != 0)
		return rc;
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
	size_t cnt, len, done, piece;
	int rc;

	if (mg_msg_read(m, "ai", &cnt, &tag) != 0)
		return MG_EDECODE;
	switch (tag) {
	case FILE_DATA:
		if (mg_msg_read(m, "y", &p, &len) != 0)
			return MG_EDECODE;
		if (*off + len > k->meta.size)
			goto too_long;
		/* Hashed piece by piece as written, while each is still in
		 * the cache. */
		for (done = 0; done < len; done += piece) {
			piece = len - done < FILE_PIECE ? len - done : FILE_PIECE;
			rc = write_full(k->fd, (const uint8_t *)p + done, piece, *off + done);
			if (rc != 0) {
				snprintf(err, errsize, "[Errno %d] %s: '%s'", -rc, strerror(-rc),
				         k->path);
				return rc;
			}
			mg__xxh64_update(h, (const uint8_t *)p + done, piece);
		}
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
		/* Acks every sixteenth of the window (one per chunk at the
		 * default): the source then always has most of its window
		 * open, so a deep pipe (ssh's channel and socket buffers)
		 * does not run dry while an ack is on its way back. */
		if (off - last_ack >= window / 16 && status != NULL) {
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
