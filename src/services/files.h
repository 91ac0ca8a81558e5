/*
 * files.h: the two ends of a file transfer, used by both the caller's API
 * (files_client.c) and the exported functions (files_serve.c): whichever
 * side holds the file runs the source, the other the sink.  Because a sink
 * leaves an ordinary file behind, a context that received a file can serve
 * it again: that is the store-and-forward a gateway does.
 *
 * The data channel carries [1, bin] chunks, [4, n] runs of zeros, then
 * [2, xxh64, size] or [3, code, message] to abort.  The status channel
 * carries [1, bytes received] acks and one [2, code, message] final word.
 */
#ifndef MG_SVC_FILES_H
#define MG_SVC_FILES_H

#include <sys/stat.h>
#include <time.h>

#include "services/svc.h"

/* Both ends read or write a chunk in pieces of this size and hash each
 * piece at once, while it is in the CPU's cache: hashing a whole 1 MiB
 * chunk after its copy read it from memory a second time. */
#define FILE_PIECE (128 * 1024)

/* What a file carries besides its bytes. */
struct file_meta {
	uint64_t size;
	uint32_t mode; /* permission bits only */
	struct timespec mtime;
	int64_t uid, gid;
};

void mg__file_meta_from_stat(const struct stat *st, struct file_meta *m);

/* Streams size bytes of fd to data, keeping at most window bytes beyond
 * the sink's acks, then the end marker, and waits for the sink's final
 * word.  0 when the sink committed the file; else -errno (the sink's or
 * ours), MG_EDISCONNECT, ...; err (size bytes) says what happened.
 * *hashp receives the XXH64 sent.  Thread: any but the broker. */
int mg__file_source_run(int fd, uint64_t size, uint64_t window, struct mg_sender *data,
                        struct mg_receiver *status, uint64_t *hashp, char *err, size_t errsize);

/* A file being received: a temporary file beside the target. */
struct file_sink {
	char *path; /* the target */
	char *tmp;  /* the temporary file's name, unlinked unless committed */
	bool named; /* tmp exists (else fd is still an unnamed file) */
	int fd;
	struct file_meta meta;
	bool keep_owner;
	bool store;    /* an anonymous file kept open, never renamed */
	uint64_t hash; /* after a commit */
};

/* Checks the target (not a directory) and creates the temporary file.
 * 0 or -errno; err says which path.  k is always safe to fini. */
int mg__file_sink_open(struct file_sink *k, const char *path, char *err, size_t errsize);

/* Receives from data into the temporary file, acking to status, checks
 * size and checksum, applies meta, fsyncs and renames over the target;
 * then sends the final word to status (when status is not NULL).  Returns
 * as mg__file_source_run().  Thread: any but the broker. */
int mg__file_sink_run(struct file_sink *k, struct mg_receiver *data, struct mg_sender *status,
                      uint64_t window, char *err, size_t errsize);

/* What mg.file.recv and mg.file.fanout share once their sink is open:
 * gives k meta and keep_owner, makes the data receiver (answering to
 * status's context, so a caller that goes away ends the transfer),
 * returns its sender as the call's reply and runs fn(job) on a thread of
 * its own.  0, or -1 with the call failed (the caller frees job). */
int mg__file_sink_serve(struct mg_call *call, struct file_sink *k, const struct file_meta *meta,
                        bool keep_owner, struct mg_sender *status, struct mg_receiver **datap,
                        void *(*fn)(void *), void *job);

/* Opens a sink that keeps the bytes in an unnamed file of its own under
 * $TMPDIR (or /tmp): what a gateway stores a file in before serving it to
 * its children.  Memory stays bounded (it is a file, not a buffer) and
 * nothing is left on disk whatever happens to the process.  After a good
 * mg__file_sink_run() k->fd holds the checked bytes. */
int mg__file_sink_open_store(struct file_sink *k, char *err, size_t errsize);

/* Unlinks, then closes (so a sweeper never sees it unlocked but present),
 * the temporary file unless committed. */
void mg__file_sink_fini(struct file_sink *k);

/* Temporary files older than this that no live sink holds locked are
 * left over from a killed transfer: a later sink for the same target
 * removes them (files_sink.c). */
#define FILE_STALE_SECONDS 60

/* The caller's side, shared by files_client.c and files_fanout.c. */
const struct mg_file_opts *mg__file_opts_or_default(const struct mg_file_opts *o,
                                                    struct mg_file_opts *def);
void mg__file_set_err(struct mg_file_result *res, int rc, const char *text, const char *path);

/* Opens local (a regular file) and reads its meta, opts->mode applied.
 * 0 or -errno with err set; the caller closes *fdp. */
int mg__file_open_source(const char *local, const struct mg_file_opts *opts, int *fdp,
                         struct file_meta *meta, char *err, size_t errsize);

/* Pushes meta->size bytes of fd to remote in ctx through mg.file.recv.
 * Returns as mg_file_push(); err says what failed.  fd is borrowed and
 * read with pread only, so many pushes may share it.  Thread: any but
 * the broker. */
int mg__file_push_fd(struct mg_context *ctx, int fd, const struct file_meta *meta,
                     const char *remote, const struct mg_file_opts *opts, uint64_t *hashp,
                     char *err, size_t errsize);

#endif
