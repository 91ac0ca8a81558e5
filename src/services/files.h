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
	char *tmp;  /* the temporary file, unlinked unless committed */
	int fd;
	struct file_meta meta;
	bool keep_owner;
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

/* Closes and, unless committed, unlinks the temporary file. */
void mg__file_sink_fini(struct file_sink *k);

#endif
