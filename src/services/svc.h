/*
 * svc.h: what the exec and files services share.  Like every service they
 * are written against include/mitogen.h alone; this header holds only
 * helpers of their own (threads, errno texts, a hash, spec maps, the signal
 * reset their children share with connect/spawn.c) and the
 * tags of their wire messages, which docs/PROTOCOL.md describes.
 */
#ifndef MG_SVC_H
#define MG_SVC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "mitogen.h"

/* Bulk data travels in chunks of this size; the window default bounds the
 * bytes a producer may have sent and not yet seen acknowledged. */
#define SVC_CHUNK (256 * 1024)
#define SVC_WINDOW_DEFAULT (4 * 1024 * 1024)
#define SVC_WINDOW_MIN SVC_CHUNK
#define SVC_WINDOW_MAX (256 * 1024 * 1024)

/* A collected run keeps at most this much of each output in the context
 * (more is counted, not kept): collecting is for short outputs, streaming
 * (windowed) for the rest. */
#define EXEC_COLLECT_MAX (1024 * 1024)

/* Tags of the exec service's messages (first element of each array). */
enum {
	EXEC_EV_STDOUT = 1, /* events: [1, bin] */
	EXEC_EV_STDERR = 2, /* events: [2, bin] */
	EXEC_EV_EXIT = 3,   /* events: [3, code, signal, timed_out, error|nil] */
	EXEC_CTL_ACK = 1,   /* control: [1, consumed total] */
	EXEC_CTL_KILL = 4,  /* control: [4, signal] */
	EXEC_IN_DATA = 2,   /* stdin: [2, bin] */
	EXEC_IN_EOF = 3,    /* stdin: [3] */
};

/* Tags of the file transfer messages. */
enum {
	FILE_DATA = 1,   /* data: [1, bin] */
	FILE_END = 2,    /* data: [2, hash, size] */
	FILE_ABORT = 3,  /* data: [3, code, message] */
	FILE_HOLE = 4,   /* data: [4, length]: that many zero bytes */
	FILE_ACK = 1,    /* status: [1, bytes received] */
	FILE_FINAL = 2,  /* status: [2, code, message]; code 0 means committed */
	FILE_RESULT = 3, /* fanout status, after FINAL: [3, id, code, message, hash] */
};

/* Resets every signal to SIG_DFL (unignore ~0) and empties the mask, for
 * a command's child before exec.  Defined in connect/spawn.c, which starts
 * contexts' children the same way; connect.h has the full contract. */
void mg__spawn_reset_signals(uint64_t unignore);

/* Runs fn(arg) on a new detached thread.  0 or -errno.  Thread: any. */
int mg__svc_thread(void *(*fn)(void *), void *arg);

/* The Python name of an errno's exception ("FileNotFoundError", ...),
 * so remote errors read as they do in Mitogen. */
const char *mg__svc_errno_type(int err);

/* Fails call with an OSError-style error: "[Errno N] text: 'what'".  The
 * caller side recovers N with mg__svc_errno_of().  Returns -1. */
int mg__svc_fail_errno(struct mg_call *call, int err, const char *what);

/* Opens path to read a regular file from it, filling *st: the fd, or
 * -errno (-EISDIR for a folder, -EINVAL for any other kind).  The open
 * does not block: a FIFO would wait for a writer for ever, a device
 * could be endless. */
int mg__open_regular(const char *path, struct stat *st);

/* The errno named by an error message ("[Errno N] ..."), else 0. */
int mg__svc_errno_of(const char *message);

/* Maps a failed call's code and mg_last_error() to the best return code:
 * -errno when the remote reported one, else rc.  Copies the text to err
 * (size bytes) when err is not NULL. */
int mg__svc_call_error(int rc, char *err, size_t size);

/* Reads the key at a spec map's cursor: a string, copied to key (size
 * bytes, truncated).  0 or MG_EDECODE. */
int mg__svc_key(struct mg_msg *m, char *key, size_t size);

/* Clamps a requested window to the allowed range; 0 gives the default. */
uint64_t mg__svc_window(uint64_t w);

/* XXH64, streamed: the end-to-end checksum of file transfers. */
struct mg_xxh64 {
	uint64_t v[4];
	uint64_t total;
	uint8_t buf[32];
	size_t buffered;
	uint64_t seed;
};
void mg__xxh64_init(struct mg_xxh64 *h, uint64_t seed);
void mg__xxh64_update(struct mg_xxh64 *h, const void *data, size_t len);
/* Feeds len zero bytes without a buffer of them. */
void mg__xxh64_zeros(struct mg_xxh64 *h, uint64_t len);
uint64_t mg__xxh64_final(const struct mg_xxh64 *h);
uint64_t mg__xxh64(const void *data, size_t len, uint64_t seed);

/* True when all len bytes at p are zero. */
bool mg__svc_all_zero(const void *p, size_t len);

/* Names of the exported functions, NULL-ended; a program that references
 * them keeps the services' objects (and their registrations) when linking
 * the static library. */
extern const char *const mg__exec_services[];
extern const char *const mg__files_services[];

#endif
