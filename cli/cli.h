/*
 * cli.h: the mitogen command-line tool's shared pieces.  main.c parses the
 * command line into a struct cli, pool.c connects every target (a worker
 * thread per fan-out slot) and runs the verb's function in each, output.c
 * prints what comes back (prefixed lines, gathered blocks or JSON), and
 * progress.c keeps a status line on a terminal's stderr.
 *
 * Threads: the main thread parses, then waits for signals and draws the
 * progress line; each worker runs one target at a time from connect to
 * shutdown.  Output from workers goes through output.c's lock.
 */
#ifndef MG_CLI_H
#define MG_CLI_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mitogen.h"

/* Exit statuses (documented in --help and docs/mitogen.1). */
enum cli_exit {
	CLI_EXIT_OK = 0,          /* every target succeeded */
	CLI_EXIT_FAILED = 1,      /* a command, call or copy failed somewhere */
	CLI_EXIT_USAGE = 2,       /* bad command line; nothing was run */
	CLI_EXIT_UNREACHABLE = 3, /* some target could not be connected */
	CLI_EXIT_INTERRUPTED = 130,
	/* Internal: nobody reads the output any more (EPIPE); main() then
	 * dies of SIGPIPE, as a pipeline expects (141 in a shell). */
	CLI_EXIT_OUTPUT_CLOSED = 141,
};

/* A growable string; the tool may exit on out-of-memory (STYLE.md). */
struct sbuf {
	char *p;
	size_t len, cap;
};
void sb_put(struct sbuf *b, const void *p, size_t n);
void sb_puts(struct sbuf *b, const char *s);
void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vprintf(struct sbuf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void sb_free(struct sbuf *b);
/* Appends a target's name as one path component ('/' becomes '_'). */
void sb_put_name(struct sbuf *b, const char *name);
void *xmalloc(size_t n);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

enum target_state {
	T_WAITING = 0,
	T_CONNECTING,
	T_RUNNING,
	T_DONE,
};

enum target_result {
	RES_NONE = 0,
	RES_OK,
	RES_FAILED,      /* connected, but the work failed */
	RES_UNREACHABLE, /* the connect failed */
	RES_CANCELLED,   /* stopped by Ctrl-C */
};

/* Output kept per target for -b and --json (capped; see output.c). */
#define CLI_KEEP_MAX (16u << 20)

struct target {
	char *name; /* as given and shown: "web01", "mgtest@10.0.0.1", "local3" */
	char *host; /* ssh: the host; NULL for a local target */
	char *user; /* ssh: the user from "user@host", else NULL */
	atomic_int state;
	int result; /* enum target_result, set once by the worker */
	char *error;
	int exit_code;          /* run: the command's status (128 + N for signal N), -1 if none */
	struct sbuf partial[2]; /* stdout, stderr: an unfinished line */
	struct sbuf kept[2];    /* -b / --json: everything (gather: [0]) */
	bool truncated;         /* kept output hit CLI_KEEP_MAX */
	struct sbuf json;       /* verb's extra JSON fields: ,"k":v... */
	int64_t t_start, t_end; /* monotonic ns */
	pthread_mutex_t lock;   /* guards ctx for the main thread */
	struct mg_context *ctx; /* where the verb runs; borrowed */
	struct mg_context *ctxs[3]; /* what the worker started, in order */
	int nctx;
};

struct cli;

/* One verb: its help and the function it runs in each target. */
struct verb {
	const char *name;
	const char *synopsis; /* after "mitogen VERB [options] " */
	const char *summary;  /* one line for the verb list */
	const char *help;     /* the verb's own arguments and options */
	unsigned opts;        /* OPT_* it accepts beyond the common ones */
	/* Takes the positional arguments; returns 0 or prints one message and
	 * returns CLI_EXIT_USAGE. */
	int (*args)(struct cli *cli, int argc, char **argv);
	/* Runs in t->ctx on a worker thread; sets t->result (and t->error)
	 * through target_ok()/target_fail(). */
	void (*run)(struct cli *cli, struct target *t);
};

/* Verb-specific options (bits of struct verb's opts). */
enum {
	OPT_TIMEOUT = 1 << 0,   /* -T: command timeout (run) */
	OPT_COUNT = 1 << 1,     /* -c: pings per target (ping) */
	OPT_RECURSIVE = 1 << 2, /* -r: a directory tree (put, get) */
	/* Options may follow the operands too (put, get, ping: as cp does);
	 * without it parsing stops at the first operand, which begins a
	 * command (run) or a function's arguments (call). */
	OPT_ANYWHERE = 1 << 3,
	OPT_STDIN = 1 << 4,  /* --stdin: the tool's input to every command (run) */
	OPT_MAXRC = 1 << 5,  /* -S: exit with the largest command status (run) */
	OPT_OUTDIR = 1 << 6, /* --outdir, --errdir: a file per target (run) */
};

struct cli {
	const struct verb *verb;
	struct target *targets;
	size_t ntargets, targets_cap;
	char **excluded; /* -x names */
	size_t nexcluded, excluded_cap;
	char **via; /* --via gateways, in order */
	size_t nvia;
	const char *user, *identity, *ssh_config;
	const char **ssh_args; /* -o values as "-o" pairs, NULL-ended */
	size_t nssh_args;
	int port;
	int host_key_policy;
	int become;                           /* 0, or MG_METHOD_SUDO, _SU or _DOAS */
	const char *become_user;              /* NULL: root */
	char *ssh_password, *become_password; /* wiped and freed at exit */
	int nlocal;
	int fanout;
	int connect_timeout_ms, timeout_ms;
	int count;
	bool gather, json;
	bool no_prefix;   /* -N: streamed lines without "target: " */
	bool recursive;   /* -r: put and get copy a directory tree */
	bool cache;       /* --cache: the agent kept on targets */
	bool stdin_input; /* --stdin: read to its end, given to every command */
	bool maxrc;       /* -S: the exit status is the largest command status */
	/* --outdir, --errdir: each target's stdout, stderr also to DIR/TARGET. */
	const char *outdir[2];
	int progress; /* -1: auto (a tty), 0: off */

	/* Verb arguments. */
	char *command;           /* run */
	struct sbuf input;       /* run --stdin: the tool's standard input */
	const char *src, *dst;   /* put, get */
	char *dst_buf;           /* put: dst when built here */
	const char *function;    /* call */
	struct sbuf packed_args; /* call: one MessagePack array */

	/* Run state. */
	atomic_bool cancelled;
	atomic_size_t finished;
	pthread_t main_thread;
	int64_t t0;
};

extern const struct verb verb_run, verb_put, verb_get, verb_call, verb_ping;

/* main.c */
int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int64_t now_ns(void);
/* "sudo", "su" or "doas" for cli->become (main.c). */
const char *become_name(int method);

/* targets.c: "web[01-03],db1" -> names; folding names back to ranges. */
typedef void (*target_add_cb)(void *arg, const char *name);
int targets_expand(const char *list, target_add_cb add, void *arg, char *err, size_t errlen);
int targets_file(const char *path, target_add_cb add, void *arg, char *err, size_t errlen);
/* Writes "web[01-03],db1" for the names into b. */
void targets_fold(const char *const *names, size_t n, struct sbuf *b);

/* target_list.c: cli->targets as the command line builds it. */
/* target_add_cb for -H and --hostfile: "host" or "user@host". */
void targets_add_host(void *cli, const char *name);
/* target_add_cb for -x: a name, or the host part of "user@host" targets. */
void targets_add_excluded(void *cli, const char *name);
/* n local contexts: "local", or "local1".."localN". */
void targets_add_local(struct cli *cli, int n);
/* Drops a name given twice (the first stays where it was, as in pdsh and
 * clush) and every target -x names; then makes each target's lock. */
void targets_prune(struct cli *cli);
void targets_free(struct cli *cli);

/* json.c */
/* Parses one JSON text into MessagePack appended to out; 0, or -1 with a
 * message in err. */
int json_to_msgpack(const char *text, struct sbuf *out, char *err, size_t errlen);
/* Appends the JSON form of the MessagePack values in p[0..n): one value as
 * itself, none as null, several as an array.  -1 on malformed input. */
int msgpack_to_json(const void *p, size_t n, struct sbuf *out);
/* Appends a JSON string literal of p[0..n) (bytes that are not UTF-8 become
 * U+FFFD). */
void json_str(struct sbuf *out, const char *p, size_t n);
/* Appends a finished copy's --json fields (put, get): bytes, the files
 * with -r, and the path written. */
void json_copied(struct sbuf *out, const struct cli *cli, const struct mg_file_result *res,
                 const char *path, size_t n);

/* output.c */
void output_init(struct cli *cli);
/* A chunk of a target's stdout (stream 0) or stderr (stream 1). */
void output_data(struct cli *cli, struct target *t, int stream, const void *p, size_t n);
/* A whole line of verb output on stdout ("host: text"). */
void output_line(struct cli *cli, struct target *t, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Called once per target when its worker is done with it. */
void output_target_done(struct cli *cli, struct target *t);
/* After every target: -b's gathered blocks. */
void output_finish(struct cli *cli);
/* 0 while stdout and stderr take what is written; else the errno of the
 * first write that failed (EPIPE: the reader went away).  The first
 * failure also wakes the main thread (SIGUSR1), which stops the targets. */
int output_failed(void);
/* A message of the tool's own on stderr ("mitogen: ..."), red on a tty. */
void output_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void output_lock(void);
void output_unlock(void);

/* progress.c (call with the output lock held) */
void progress_init(bool enabled, bool colour);
bool progress_enabled(void);
void progress_draw(struct cli *cli);
void progress_clear(void);
bool use_colour(int fd);

/* pool.c */
int pool_run(struct cli *cli);
void target_ok(struct target *t);
void target_fail(struct target *t, int result, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* A failed put or get: "VERB PATH: why[hint]", why being the library's
 * text less the name of the target's own context it starts with (the
 * target is named already), or rc's. */
void target_copy_failed(struct target *t, const char *verb, const char *path,
                        const struct mg_file_result *res, int rc, const char *hint);
bool cli_cancelled(struct cli *cli);
/* Waits for rx's next message, as mg_receiver_get() with no timeout, or
 * for an interrupt, whichever comes first: -ECANCELED (*msgp NULL) for
 * the interrupt.  Workers are woken by it; other threads poll. */
int cli_wait(struct cli *cli, struct mg_receiver *rx, struct mg_msg **msgp);

#endif
