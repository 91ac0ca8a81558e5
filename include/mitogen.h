/*
 * mitogen.h: the whole public API of libmitogen.
 *
 * Conventions (see docs/API.md for the longer story):
 *  - Every function that can fail returns 0 or a negative MG_E* code.  System
 *    errors are -errno; the library's own errors sit in the range below
 *    MG_EFIRST.  mg_strerror() names every code.
 *  - Out-parameters come last, end in "p", and are written only on success.
 *  - mg_x_free(NULL) is always a no-op.
 *  - "Thread: any" functions may be called from any thread; "Thread: broker"
 *    ones only from handler callbacks, which run on the broker thread and must
 *    never block.
 */
#ifndef MITOGEN_H
#define MITOGEN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility; what this header declares
 * is its exported interface. */
#pragma GCC visibility push(default)

#define MG_VERSION_MAJOR 0
#define MG_VERSION_MINOR 1
#define MG_VERSION_PATCH 0
#define MG_VERSION_STRING "0.1.0"

/* Protocol version spoken on every stream; see docs/PROTOCOL.md. */
#define MG_PROTOCOL_VERSION 2

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */

enum mg_error_code {
	MG_OK = 0,
	MG_EFIRST = -4000,
	MG_ENOROUTE = -4000,    /* no route to the destination context */
	MG_ECLOSED = -4001,     /* handle or channel closed */
	MG_EREFUSED = -4002,    /* refused by the destination's policy */
	MG_ETOOBIG = -4003,     /* message larger than the stream maximum */
	MG_EDISCONNECT = -4004, /* the stream or context went away */
	MG_EDECODE = -4005,     /* a payload did not match what was expected */
	MG_EFORMAT = -4006,     /* a bad format string */
	MG_EPROTOCOL = -4007,   /* a peer broke the wire protocol */
	MG_EREMOTE = -4008,     /* a remote call failed; see struct mg_error */
	MG_ESHUTDOWN = -4009,   /* the router is shutting down */
	MG_ELIMIT = -4010,      /* a configured limit was reached */
	MG_ENOFUNC = -4011,     /* no such exported function */
	MG_EARGS = -4012,       /* arguments did not match the function */
	MG_ECRASH = -4013,      /* the remote function crashed */
	MG_ECONNECT = -4014,    /* a connection could not be established */
	MG_ELAST = -4014,
};

/* Returns a static, human-readable name for any code returned by the
 * library, including -errno values.  Never NULL.  Thread: any. */
const char *mg_strerror(int code);

/* Returns a text describing the last failure reported to this thread (for
 * example the reason carried by a dead message), or "" when there is none.
 * Borrowed until the next library call on this thread.  Thread: any. */
const char *mg_errdetail(void);

/* ------------------------------------------------------------------------ */
/* Logging                                                                   */

enum mg_log_level {
	MG_LOG_DEBUG = 10,
	MG_LOG_INFO = 20,
	MG_LOG_WARNING = 30,
	MG_LOG_ERROR = 40,
	MG_LOG_OFF = 100,
};

struct mg_log_record {
	int level;           /* enum mg_log_level */
	const char *logger;  /* "mitogen", "mitogen.io", or a user name */
	const char *context; /* the name of the context the record came from */
	const char *message;
	int64_t time_ns; /* CLOCK_REALTIME when it was made */
};

/* A log handler; the record is borrowed for the duration of the call.
 * Handlers may be called from any thread, concurrently. */
typedef void (*mg_log_cb)(void *arg, const struct mg_log_record *rec);

/* Replaces the process-wide handler (NULL restores the default, which
 * writes one line per record to stderr) and sets the threshold for the
 * "mitogen" logger.  "mitogen.io" stays off unless level is MG_LOG_DEBUG
 * and the environment says MITOGEN_LOG=debug or MITOGEN_LOG=io.
 * The initial level comes from MITOGEN_LOG (debug, info, warning, error,
 * off); it is MG_LOG_WARNING when unset.  Thread: any. */
void mg_log_set_handler(mg_log_cb cb, void *arg, int level);

/* Returns the current threshold of the named logger.  Thread: any. */
int mg_log_level(const char *logger);

/* Emits a record through the handler when level passes the logger's
 * threshold.  Thread: any. */
void mg_log(int level, const char *logger, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------------------------ */
/* Messages                                                                  */

/*
 * A message is a refcounted routed frame: header fields plus a payload.
 * Payloads are usually MessagePack built with mg_msg_append() and read with
 * mg_msg_read(), which keep a cursor inside the message (the sd-bus model).
 *
 * Format letters (pack argument -> unpack argument):
 *   n  nil                      none            -> none (checks nil)
 *   b  bool                     int             -> bool *
 *   i  signed integer           int64_t         -> int64_t *
 *   u  unsigned integer         uint64_t        -> uint64_t *
 *   f  float32                  double          -> float *
 *   d  float64                  double          -> double * (float32 too)
 *   s  string                   const char *    -> const char ** (NUL-terminated
 *                                                  copy owned by the message;
 *                                                  NULL packs nil, nil reads NULL)
 *   S  string view              const char *, size_t -> const char **, size_t *
 *   y  binary view              const void *, size_t -> const void **, size_t *
 *   t  timestamp (ext -1)       const struct timespec * -> struct timespec *
 *   c  context reference (ext 1) uint32_t       -> uint32_t *
 *   h  sender reference (ext 2) const struct mg_sender * -> struct mg_sender **
 *                                                  (new, caller frees)
 *   v  one raw encoded value    const void *, size_t -> const void **, size_t *
 *   (  ... )  an array of exactly the enclosed items (a tuple)
 *   {  ... }  a map of exactly the enclosed key/value items
 *   a  array header             size_t count    -> size_t *count; the elements
 *                                                  follow as further items
 *   m  map header               size_t pairs    -> size_t *pairs
 * White space in a format is ignored.  Pack arguments must have exactly the
 * types above: write (int64_t)2 for 'i', not 2.  Inside brackets, 'a' and 'm'
 * count as one item.  's' refuses to read a str holding a NUL byte ('S'
 * reads any).  Unpacking into a NULL pointer checks and skips the value.
 * docs/PROTOCOL.md gives the bytes each letter writes.
 */
struct mg_msg;
struct mg_router;
struct mg_sender;
struct mg_receiver;

/* Creates an empty message (no payload).  Caller frees.  Thread: any. */
int mg_msg_new(struct mg_msg **msgp);

/* Creates a message whose payload is a copy of len bytes at data (a raw,
 * not MessagePack, payload).  Caller frees.  Thread: any. */
int mg_msg_new_raw(const void *data, size_t len, struct mg_msg **msgp);

/* Creates a message with len bytes of uninitialised raw payload that the
 * caller fills through mg_msg_data().  Caller frees.  Thread: any. */
int mg_msg_new_size(size_t len, struct mg_msg **msgp);

/* Creates a message and appends fmt's values, as mg_msg_append().
 * Caller frees.  Thread: any. */
int mg_msg_pack(struct mg_msg **msgp, const char *fmt, ...);
int mg_msg_vpack(struct mg_msg **msgp, const char *fmt, va_list ap);

/* Appends MessagePack values to a message that has not been sent yet.  On
 * failure the payload is left as it was before the call.  Thread: the
 * message's owner. */
int mg_msg_append(struct mg_msg *msg, const char *fmt, ...);
int mg_msg_vappend(struct mg_msg *msg, const char *fmt, va_list ap);

/* Reads values at the message's read cursor and advances it.  On failure
 * the cursor does not move and no out-parameter is written.  Returns
 * MG_EDECODE when the payload does not match fmt.  Thread: the message's
 * owner. */
int mg_msg_read(struct mg_msg *msg, const char *fmt, ...);
int mg_msg_vread(struct mg_msg *msg, const char *fmt, va_list ap);

/* Moves the read cursor back to the start of the payload. */
void mg_msg_rewind(struct mg_msg *msg);

/* True when the read cursor is at the end of the payload. */
bool mg_msg_at_end(const struct mg_msg *msg);

/* Takes one more reference; returns msg.  Thread: any. */
struct mg_msg *mg_msg_ref(struct mg_msg *msg);

/* Drops a reference; the last one frees the message.  Thread: any. */
void mg_msg_free(struct mg_msg *msg);

/* Payload access.  The pointer is borrowed until the message is freed. */
const void *mg_msg_data(const struct mg_msg *msg);
void *mg_msg_data_mut(struct mg_msg *msg);
size_t mg_msg_len(const struct mg_msg *msg);

/* Header fields. */
uint32_t mg_msg_dst(const struct mg_msg *msg);
uint32_t mg_msg_src(const struct mg_msg *msg);
uint32_t mg_msg_auth(const struct mg_msg *msg);
uint32_t mg_msg_handle(const struct mg_msg *msg);
uint32_t mg_msg_reply_to(const struct mg_msg *msg);
void mg_msg_set_reply_to(struct mg_msg *msg, uint32_t handle);

/* True for a dead message (its reply_to is MG_HANDLE_IS_DEAD).  A dead
 * message carries a code (MG_ENOROUTE, ...) and a reason text; both are
 * returned by mg_msg_dead_reason(), which returns MG_EDECODE for a message
 * that is not a well-formed dead message.  *reasonp is borrowed until the
 * message is freed. */
bool mg_msg_is_dead(const struct mg_msg *msg);
int mg_msg_dead_reason(struct mg_msg *msg, int *codep, const char **reasonp);

/* ------------------------------------------------------------------------ */
/* Routers                                                                   */

/* Reserved handles; dynamic handles start at MG_HANDLE_FIRST_DYNAMIC. */
enum mg_handle {
	MG_HANDLE_CALL_FUNCTION = 100,
	MG_HANDLE_FORWARD_LOG = 101,
	MG_HANDLE_ADD_ROUTE = 102,
	MG_HANDLE_DEL_ROUTE = 103,
	MG_HANDLE_ALLOCATE_ID = 104,
	MG_HANDLE_SHUTDOWN = 105,
	MG_HANDLE_CALL_SERVICE = 106,
	MG_HANDLE_IS_DEAD = 999,
	MG_HANDLE_FIRST_DYNAMIC = 1000,
};

struct mg_router_opts {
	uint32_t context_id;     /* this process's id; 0 for the master */
	const char *name;        /* context name used in logs; copied */
	size_t max_message_size; /* largest payload accepted or sent */
	size_t high_water;       /* per-stream queued bytes before senders wait */
	bool unidirectional;     /* forbid traffic between children */
};

/* Fills opts with defaults: id 0, name "master", 128 MiB maximum message,
 * 4 MiB high-water mark, bidirectional. */
void mg_router_opts_init(struct mg_router_opts *opts);

/* Creates a router and starts its broker thread.  Caller frees with
 * mg_router_free().  Thread: any. */
int mg_router_new(const struct mg_router_opts *opts, struct mg_router **routerp);

/* Stops the broker, closes every stream, wakes every waiting receiver with
 * MG_ESHUTDOWN and frees the router.  Receivers, senders and selects made
 * from it must be freed before or after, but not used after.  Thread: any
 * but the broker. */
void mg_router_free(struct mg_router *router);

uint32_t mg_router_id(const struct mg_router *router);
const char *mg_router_name(const struct mg_router *router);

enum mg_stream_flags {
	MG_STREAM_PARENT = 1 << 0, /* the peer is this context's parent */
};

/* Attaches a connected stream to the peer context peer_id: rfd is read,
 * wfd written (they may be the same fd).  The router takes ownership of
 * both fds on success (on failure they stay the caller's), makes them
 * non-blocking and close-on-exec, and adds
 * a route to peer_id.  With MG_STREAM_PARENT the peer gets parent authority
 * and becomes the default route for unknown destinations.  Thread: any. */
int mg_router_attach(struct mg_router *router, int rfd, int wfd, uint32_t peer_id, unsigned flags);

/* Routes msg to its destination, filling src (this context), auth (this
 * context) and dst/handle from the arguments.  Takes ownership of msg
 * whatever the result.  Blocks while the outgoing stream holds more than
 * its high-water mark.  Failures (no route, too large, ...) are reported
 * as a dead message to msg's reply_to handle, as on the wire; the return
 * value is 0 unless the router is shutting down.  Thread: any. */
int mg_router_send(struct mg_router *router, uint32_t dst, uint32_t handle, struct mg_msg *msg);

/* Handler policies: who may send to a handle. */
enum mg_policy {
	MG_POLICY_ANY = 0,
	MG_POLICY_PARENT = 1, /* only messages with parent authority */
};

/* A handler runs on the broker thread, must not block, and takes ownership
 * of msg. */
typedef void (*mg_handler_cb)(void *arg, struct mg_msg *msg);

/* Registers a handler.  handle 0 allocates a dynamic one.  The handler
 * lives until mg_router_del_handler().  Messages refused by policy get a
 * dead MG_EREFUSED reply.  Thread: any. */
int mg_router_add_handler(struct mg_router *router, uint32_t handle, int policy, mg_handler_cb cb,
                          void *arg, uint32_t *handlep);

/* Removes a handler; after it returns the callback will not run again.
 * Later messages to the handle get a dead MG_ECLOSED reply.  Thread: any;
 * from a handler callback it removes without waiting. */
int mg_router_del_handler(struct mg_router *router, uint32_t handle);

/* ------------------------------------------------------------------------ */
/* Receivers, senders, latches, select                                       */

/* Creates a receiver on a new dynamic handle.  When respondent is not
 * MG_NO_RESPONDENT, the receiver gets a dead MG_EDISCONNECT message when the
 * route to that context goes away.  Caller frees.  Thread: any. */
#define MG_NO_RESPONDENT UINT32_MAX
int mg_receiver_new(struct mg_router *router, uint32_t respondent, int policy,
                    struct mg_receiver **rxp);

uint32_t mg_receiver_handle(const struct mg_receiver *rx);

/* Waits for the next message.  timeout_ms < 0 waits forever.  Returns 0 and
 * the message (caller frees), -ETIMEDOUT, MG_ECLOSED after the receiver was
 * closed, MG_ESHUTDOWN, or, for a dead message, its code with the reason in
 * mg_errdetail().  Thread: any. */
int mg_receiver_get(struct mg_receiver *rx, int timeout_ms, struct mg_msg **msgp);

/* Closes the receiver: waiters wake with MG_ECLOSED, later messages to its
 * handle get a dead reply.  Idempotent.  Thread: any. */
void mg_receiver_close(struct mg_receiver *rx);

/* Closes and frees.  Thread: any. */
void mg_receiver_free(struct mg_receiver *rx);

/* Creates a sender that addresses this receiver (this context, its
 * handle).  Caller frees.  Thread: any. */
int mg_receiver_to_sender(struct mg_receiver *rx, struct mg_sender **senderp);

/* Creates a sender for (context, handle).  Caller frees. */
int mg_sender_new(struct mg_router *router, uint32_t context_id, uint32_t handle,
                  struct mg_sender **senderp);
uint32_t mg_sender_context(const struct mg_sender *s);
uint32_t mg_sender_handle(const struct mg_sender *s);

/* Sends msg (taking ownership whatever the result), or a new message of
 * fmt's values.  Returns MG_ECLOSED after mg_sender_close().  May block on
 * backpressure.  Thread: any. */
int mg_sender_send(struct mg_sender *s, struct mg_msg *msg);
int mg_sender_sendf(struct mg_sender *s, const char *fmt, ...);

/* Sends a dead MG_ECLOSED message, telling the receiver nothing more
 * comes.  Idempotent.  Thread: any. */
int mg_sender_close(struct mg_sender *s);
void mg_sender_free(struct mg_sender *s);

/* A latch is a thread-safe queue of pointers any thread may put to and
 * any thread may wait on. */
struct mg_latch;
int mg_latch_new(struct mg_latch **latchp);
/* Returns MG_ECLOSED after close (the item is not taken). */
int mg_latch_put(struct mg_latch *latch, void *item);
/* Returns 0 and the item, -ETIMEDOUT, or MG_ECLOSED once closed and empty. */
int mg_latch_get(struct mg_latch *latch, int timeout_ms, void **itemp);
size_t mg_latch_size(struct mg_latch *latch);
void mg_latch_close(struct mg_latch *latch);
void mg_latch_free(struct mg_latch *latch);

/* Select waits on many receivers at once. */
struct mg_select;
int mg_select_new(struct mg_select **selp);
/* A receiver belongs to at most one select at a time: MG_ELIMIT otherwise. */
int mg_select_add(struct mg_select *sel, struct mg_receiver *rx);
int mg_select_remove(struct mg_select *sel, struct mg_receiver *rx);
/* Waits for any member to have a message; returns what mg_receiver_get()
 * would, plus the receiver it came from in *rxp (written whenever a member
 * answered, dead messages included).  -ETIMEDOUT, or MG_ECLOSED when the
 * select has no members.  Thread: any. */
int mg_select_get(struct mg_select *sel, int timeout_ms, struct mg_receiver **rxp,
                  struct mg_msg **msgp);
void mg_select_free(struct mg_select *sel);

/* ------------------------------------------------------------------------ */
/* Contexts                                                                  */

/*
 * A context is another process running libmitogen: the stock agent, or
 * this very program ("ship self").  Connecting is asynchronous underneath:
 * mg_connect_start() returns at once and many connects run in parallel;
 * mg_context_wait_ready() or a select over mg_context_ready_receiver()s
 * collects them.
 */
struct mg_context;

enum mg_method {
	MG_METHOD_LOCAL = 1, /* a new child process on this machine */
	MG_METHOD_FORK = 2,  /* a fork of the process that connects */
	MG_METHOD_SSH = 3,   /* the system OpenSSH client to another host */
	MG_METHOD_SUDO = 4,  /* sudo to another user on the same host */
	MG_METHOD_SU = 5,    /* su to another user on the same host */
	MG_METHOD_DOAS = 6,  /* doas (OpenBSD's, or opendoas) to another user */
};

/* What ssh does about the target's host key (StrictHostKeyChecking). */
enum mg_host_key_policy {
	MG_HOST_KEY_ENFORCE = 0,    /* known_hosts must hold it: "yes" */
	MG_HOST_KEY_ACCEPT_NEW = 1, /* add unknown keys, refuse changed ones */
	MG_HOST_KEY_IGNORE = 2,     /* accept anything, remember nothing */
};

struct mg_connect_opts {
	int method;       /* enum mg_method */
	const char *name; /* context name for logs; default made up */
	/* Connect through this context (a gateway): it runs the method with
	 * every other option (password included, wiped there after use). */
	struct mg_context *via;
	int connect_timeout_ms; /* default 30000 */
	const char *program;    /* local: run this program instead of the agent */
	bool ship_self;         /* local: run this executable as the child */
	const char *const *env; /* local: extra "NAME=value" entries, NULL-ended */

	/* local: boot through the POSIX sh first stage that ssh and sudo use:
	 * program (default "sh") is run as `program -c <first stage>`, which
	 * receives the agent on stdin.  For testing shells. */
	bool first_stage;
	/* ssh, sudo and first_stage: keep the program on the target under
	 * ~/.cache/mitogen-c/<its hash> (folder 0700, written atomically),
	 * so later connects send nothing but the handshake.  Off by
	 * default: then nothing is left on the target's disk. */
	bool cache;
	/* ssh: the host (required), the port (0: ssh's default or its
	 * config), the remote user (NULL: ssh's default), an identity file. */
	const char *hostname;
	int port;
	const char *username;      /* ssh: remote user; sudo/su/doas: target (NULL: root) */
	const char *identity_file; /* ssh -i */
	/* ssh: the password or the key's passphrase; sudo, doas: the
	 * caller's password; su: the target user's password.  Typed once at
	 * the prompt (a pty for ssh, sudo and doas; su's stdin, since PAM's
	 * text conversation reads it there), never put on a command line or
	 * in a log; the library's copy is wiped when the connect ends, and a
	 * gateway wipes the copy it was sent.  A refused password is reported
	 * ("authentication failed") within the deadline, never retried.
	 * Without one, sudo and doas run with -n and su fails at its prompt,
	 * so a rule that wants a password fails at once. */
	const char *password;
	const char *ssh_path;         /* default "ssh" (found on PATH) */
	const char *const *ssh_args;  /* ssh: extra arguments, NULL-ended */
	int host_key_policy;          /* ssh: enum mg_host_key_policy */
	bool compression;             /* ssh -o Compression=yes */
	int keepalive_s;              /* ssh ServerAliveInterval; 0: off */
	const char *sudo_path;        /* default "sudo" */
	const char *const *sudo_args; /* sudo: extra arguments, NULL-ended */
	/* sudo -i, su -l: run the first stage through the target's login
	 * shell (its profile, its home as the working directory). */
	bool login_shell;
	/* sudo -E, su -m: keep this process's environment. */
	bool preserve_env;
	const char *su_path;          /* default "su" (util-linux's, found on PATH) */
	const char *const *su_args;   /* su: extra arguments, NULL-ended */
	const char *doas_path;        /* default "doas" */
	const char *const *doas_args; /* doas: extra arguments, NULL-ended */
	/* ssh's ConnectTimeout is connect_timeout_ms, rounded up to seconds. */
};

/* Fills opts with defaults for method. */
void mg_connect_opts_init(struct mg_connect_opts *opts, int method);

/* Starts connecting and returns at once with a context in the connecting
 * state.  Caller frees the context.  Thread: any but the broker (a child
 * context may have to wait for the master to hand out an id; from a
 * handler it returns -EDEADLK). */
int mg_connect_start(struct mg_router *router, const struct mg_connect_opts *opts,
                     struct mg_context **ctxp);

/* Waits until the context is ready: 0, or the connect's error (its text in
 * mg_errdetail()), or -ETIMEDOUT.  Thread: any. */
int mg_context_wait_ready(struct mg_context *ctx, int timeout_ms);

/* A receiver that gets one message when the connect completes, or a dead
 * message with the failure, for waiting on many connects with a select.
 * Borrowed until the context is freed. */
struct mg_receiver *mg_context_ready_receiver(struct mg_context *ctx);

/* Starts and waits.  Caller frees.  Thread: any. */
int mg_connect(struct mg_router *router, const struct mg_connect_opts *opts,
               struct mg_context **ctxp);
/* mg_connect() with method LOCAL or FORK; opts may be NULL. */
int mg_local(struct mg_router *router, const struct mg_connect_opts *opts,
             struct mg_context **ctxp);
int mg_fork(struct mg_router *router, const struct mg_connect_opts *opts, struct mg_context **ctxp);

uint32_t mg_context_id(const struct mg_context *ctx);
const char *mg_context_name(const struct mg_context *ctx);
struct mg_router *mg_context_router(const struct mg_context *ctx);
/* True once the context has disconnected or been shut down. */
bool mg_context_is_gone(const struct mg_context *ctx);
/* The gateway ctx was connected through (opts.via), or NULL for a child
 * of this process.  Borrowed while ctx lives. */
struct mg_context *mg_context_via(const struct mg_context *ctx);

/* A new reference to the context with this id that this process started
 * (itself, or for its parent through a via connect).  0, or -ENOENT when
 * this process has no such context.  Drop it with mg_context_unref(),
 * which never shuts the context down.  Thread: any. */
int mg_context_lookup(struct mg_router *router, uint32_t id, struct mg_context **ctxp);
void mg_context_unref(struct mg_context *ctx);

/* Asks the context to shut down (its own children first) and waits up to
 * wait_ms for it to go; past that it is forced (local and fork children
 * are killed).  A context still connecting is given up at once, as a
 * failed connect is (its process gets its input's end, then a kill 500 ms
 * later).  0, or -ETIMEDOUT when it did not go even when forced.
 * Thread: any. */
int mg_context_shutdown(struct mg_context *ctx, int wait_ms);

/* Shuts down (without waiting) if still connected, then frees. */
void mg_context_free(struct mg_context *ctx);

/* ------------------------------------------------------------------------ */
/* Calls                                                                     */

/* What a failed call reports.  type is the error's kind ("ValueError",
 * "mitogen.NoSuchFunction", "mitogen.ArgumentError", "mitogen.Crash", ...),
 * context and function say where it happened. */
struct mg_error {
	int code; /* MG_EREMOTE, MG_ENOFUNC, MG_EARGS, MG_ECRASH, ... */
	char type[64];
	char message[512];
	char context[128];
	char function[128];
};

/* The last call error reported to this thread.  Borrowed until the next
 * call on this thread.  Thread: any. */
const struct mg_error *mg_last_error(void);

#define MG_FUNCTION_NAME_MAX 128

/* Calls fn in ctx with fmt's arguments and waits for its reply (caller
 * frees), which mg_msg_read() takes apart.  Returns 0, MG_EREMOTE /
 * MG_ENOFUNC / MG_EARGS / MG_ECRASH with mg_last_error() filled, or a
 * routing error (MG_EDISCONNECT when the context goes away meanwhile).
 * Thread: any but the broker. */
int mg_call(struct mg_context *ctx, const char *fn, struct mg_msg **replyp, const char *fmt, ...);
int mg_vcall(struct mg_context *ctx, const char *fn, struct mg_msg **replyp, const char *fmt,
             va_list ap);

/* Starts a call and returns the receiver its reply will reach (caller
 * frees); collect with mg_call_wait() or a select + mg_call_result(). */
int mg_call_async(struct mg_context *ctx, const char *fn, struct mg_receiver **rxp, const char *fmt,
                  ...);

/* mg_call_async() with arguments already packed: args is exactly one
 * MessagePack array (len bytes, copied) whose elements are the arguments,
 * for callers that build them elsewhere (the mitogen tool turns JSON into
 * MessagePack).  -EINVAL when args is not one complete array.  Caller frees
 * the receiver.  Thread: any but the broker. */
int mg_call_packed_async(struct mg_context *ctx, const char *fn, const void *args, size_t len,
                         struct mg_receiver **rxp);

/* Calls without asking for a reply. */
int mg_call_no_reply(struct mg_context *ctx, const char *fn, const char *fmt, ...);

/* Waits on a receiver from mg_call_async(): returns as mg_call(). */
int mg_call_wait(struct mg_receiver *rx, int timeout_ms, struct mg_msg **replyp);

/* Interprets a reply message taken from a select: 0 (reply stays the
 * caller's), or the error code with mg_last_error() filled (reply freed). */
int mg_call_result(struct mg_msg *reply);

/* A chain pipelines calls: the first failure fails every later call of the
 * chain without running it, and is reported by the next call that waits. */
struct mg_chain;
int mg_chain_new(struct mg_context *ctx, struct mg_chain **chainp);
int mg_chain_call_no_reply(struct mg_chain *chain, const char *fn, const char *fmt, ...);
int mg_chain_call(struct mg_chain *chain, const char *fn, struct mg_msg **replyp, const char *fmt,
                  ...);
/* Starts a new chain (forgets an earlier failure). */
void mg_chain_reset(struct mg_chain *chain);
void mg_chain_free(struct mg_chain *chain);

/* ------------------------------------------------------------------------ */
/* Exported functions                                                        */

struct mg_call;
typedef int (*mg_export_fn)(struct mg_call *call);

/* Registers fn under name in this program; contexts running this program
 * can be called by that name.  Thread: any. */
int mg_export(const char *name, mg_export_fn fn);

/* MG_EXPORT(add) static int add(struct mg_call *call) { ... } registers
 * "add" before main().  MG_EXPORT_AS("disk.usage", usage) registers the
 * function under a name that is not a C identifier. */
#define MG_EXPORT_AS(name, fn)                                             \
	static int fn(struct mg_call *);                                   \
	__attribute__((constructor)) static void mg_export_init_##fn(void) \
	{                                                                  \
		(void)mg_export((name), fn);                               \
	}
#define MG_EXPORT(fn) MG_EXPORT_AS(#fn, fn)

/* Reads the call's arguments; MG_EARGS when they do not match fmt (the
 * function should then return -1 at once: the caller gets ArgumentError). */
int mg_call_args(struct mg_call *call, const char *fmt, ...);
/* Sets the reply values; returns 0 (or MG_EFORMAT etc.). */
int mg_call_return(struct mg_call *call, const char *fmt, ...);
/* Fails the call with an error of the given type; returns -1 so a function
 * can "return mg_call_fail(...)". */
int mg_call_fail(struct mg_call *call, const char *type, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* The router of the context running the call; borrowed. */
struct mg_router *mg_call_router(struct mg_call *call);
/* The name of the function being called. */
const char *mg_call_function(const struct mg_call *call);
/* Lets the function reply after it returns, from any thread: *senderp
 * (caller frees) addresses the caller's reply handle, and the dispatcher
 * sends no reply of its own.  Send the reply values once with
 * mg_sender_send() or mg_sender_sendf(); the caller's mg_call() reads them
 * as a reply.  A call made with mg_call_no_reply() gives a NULL sender.
 * A function that fails after deferring (mg_call_fail(), or non-zero
 * returned) still gets its error reply, and must not send.  0 or a
 * negative MG_E* code (the call then replies as usual).  Thread: the
 * function's. */
int mg_call_defer(struct mg_call *call, struct mg_sender **senderp);

/* For "ship self" programs: call first thing in main().  When this process
 * was started as a context, it runs the context and exits; otherwise it
 * returns 0 at once. */
int mg_child_main(int argc, char **argv);

/* ------------------------------------------------------------------------ */
/* Built-in services: commands and files                                     */

/*
 * Every agent exports "mg.exec" (run a command) and "mg.file.*" (move
 * files); the functions below are their caller side.  Output and file data
 * stream in chunks under a window: the producer never has more than
 * `window` bytes sent and not yet acknowledged, so memory stays bounded at
 * both ends however much flows.  docs/PROTOCOL.md has the messages.
 */

/* How to run a command. */
struct mg_exec_opts {
	const char *const *argv; /* NULL-ended argv; argv[0] searched on PATH */
	const char *command;     /* or a shell command line run with /bin/sh -c */
	const char *const *env;  /* NULL-ended: "NAME=value" sets, "NAME" unsets */
	bool clear_env;          /* start from an empty environment */
	const char *cwd;         /* working directory; NULL: the context's */
	const void *stdin_data;  /* bytes written to stdin, then EOF; borrowed */
	size_t stdin_len;        /*   until the job ends */
	int stdin_fd;            /* or read until EOF from this fd (-1: none); */
	                         /*   borrowed until the job ends */
	bool stdin_stream;       /* or the caller writes with mg_exec_write() */
	bool pty;                /* stdout and stderr on a new pty (one stream) */
	int timeout_ms;          /* > 0: kill the process group after this long */
	size_t window;           /* output bytes in flight; 0: 4 MiB */
};

/* Fills opts with defaults: no command, stdin from /dev/null, no pty, no
 * timeout, stdin_fd -1. */
void mg_exec_opts_init(struct mg_exec_opts *opts);

enum mg_exec_event_type {
	MG_EXEC_STDOUT = 1,
	MG_EXEC_STDERR = 2,
	MG_EXEC_EXIT = 3, /* the last event of a job */
};

struct mg_exec_status {
	int exit_code;   /* the exit status, or -1 when a signal ended it */
	int signal;      /* the signal that ended it, or 0 */
	bool timed_out;  /* the timeout killed it */
	char error[256]; /* set when the context lost track of the process */
};

struct mg_exec_event {
	int type;         /* enum mg_exec_event_type */
	const void *data; /* output: borrowed until the next mg_exec_next() */
	size_t len;
	struct mg_exec_status status; /* MG_EXEC_EXIT */
};

struct mg_exec;

/* Starts a command in ctx and returns a job (caller frees).  Fails with
 * -errno (the remote errno: -ENOENT when the program does not exist,
 * -EACCES, -ENOTDIR for a bad cwd, ...) or a call error, the text in err
 * when err is not NULL.  Thread: any but the broker. */
int mg_exec_start(struct mg_context *ctx, const struct mg_exec_opts *opts, struct mg_exec **jobp,
                  char *err, size_t err_size);

/* Waits for the job's next event.  Output arrives as it is produced, in
 * order per stream; the MG_EXEC_EXIT event comes last, after all output.
 * Taking an event acknowledges the previous one's bytes to the producer.
 * Returns 0, -ETIMEDOUT, MG_ECLOSED after the exit event was returned, or
 * MG_EDISCONNECT when the context went away (the job is then over).
 * Thread: one at a time. */
int mg_exec_next(struct mg_exec *job, int timeout_ms, struct mg_exec_event *ev);

/* The receiver the job's events arrive on, for a select over many jobs;
 * pass what the select returned to mg_exec_event_from().  Borrowed until
 * the job is freed. */
struct mg_receiver *mg_exec_receiver(struct mg_exec *job);

/* Turns a message taken from mg_exec_receiver() into an event, as
 * mg_exec_next() would; takes ownership of msg.  rc is what the select
 * returned for it. */
int mg_exec_event_from(struct mg_exec *job, int rc, struct mg_msg *msg, struct mg_exec_event *ev);

/* With stdin_stream: writes len bytes to the process's stdin, blocking
 * while the stdin window is full.  0, -EPIPE when the process closed its
 * stdin, MG_EDISCONNECT.  Thread: any (may run beside mg_exec_next()). */
int mg_exec_write(struct mg_exec *job, const void *data, size_t len);

/* With stdin_stream: closes the process's stdin.  Idempotent. */
int mg_exec_close_stdin(struct mg_exec *job);

/* Sends sig to the job's whole process group.  Thread: any. */
int mg_exec_kill(struct mg_exec *job, int sig);

/* The process id in its context. */
int64_t mg_exec_pid(const struct mg_exec *job);

/* Kills the process group if it still runs and frees the job. */
void mg_exec_free(struct mg_exec *job);

/* What mg_exec_run() collected.  out and err are NUL-terminated heap
 * buffers (free with mg_exec_result_fini()); output past the cap is
 * dropped and counted as truncated.  With pty both land in out. */
struct mg_exec_result {
	struct mg_exec_status status;
	char *out, *err;
	size_t out_len, err_len;
	uint64_t out_total, err_total; /* bytes produced, kept or not */
	char error[512];               /* why mg_exec_run() failed */
};

/* Runs a command to completion, keeping up to cap bytes of each stream.
 * With cap up to 1 MiB and no stdin to stream, the context keeps the
 * output and answers once, when the command has ended (one round trip);
 * otherwise the output streams under the window.  Returns 0 when the
 * command ran (whatever its exit status), else as mg_exec_start() or
 * mg_exec_next().  res is always initialised.
 * Thread: any but the broker. */
int mg_exec_run(struct mg_context *ctx, const struct mg_exec_opts *opts, size_t cap,
                struct mg_exec_result *res);
void mg_exec_result_fini(struct mg_exec_result *res);

/* mg_exec_run() in two halves, so one thread can run a command on many
 * contexts at once: start on each, then wait for each.  A collected run
 * (see mg_exec_run()) only sends the call here; a streamed one starts the
 * job (one round trip) and keeps its output as mg_exec_run_wait() takes
 * it.  Returns 0 and *pendp (caller frees), or fails as mg_exec_start(),
 * the text in err when err is not NULL.  Thread: any but the broker. */
struct mg_exec_pending;
int mg_exec_run_start(struct mg_context *ctx, const struct mg_exec_opts *opts, size_t cap,
                      struct mg_exec_pending **pendp, char *err, size_t err_size);

/* Waits up to timeout_ms (-1: for ever) for a started run to end and
 * fills res as mg_exec_run() does, with the same return value; -ETIMEDOUT
 * (res empty) when it has not ended yet: wait again.  After it has
 * returned anything else, MG_ECLOSED.  res is always initialised.
 * Thread: one at a time per run. */
int mg_exec_run_wait(struct mg_exec_pending *pend, int timeout_ms, struct mg_exec_result *res);

/* Frees a started run.  A streamed job still running is killed; a
 * collected one runs on in its context to its end or its timeout (its
 * answer is dropped).  NULL is a no-op. */
void mg_exec_pending_free(struct mg_exec_pending *pend);

/* File transfers.  The target is written to a temporary file beside it
 * (".<name>.mgtmp-<random>"), checked against the source's XXH64, given
 * the source's mode and mtime (owner too when the writer runs as root),
 * fsynced and renamed over the target, so the target path only ever holds
 * the old file or the complete new one.  Sizes and offsets are 64-bit. */
struct mg_file_opts {
	size_t window;   /* bytes in flight; 0: 4 MiB */
	bool keep_owner; /* apply the source's uid/gid when root (default true) */
	int mode;        /* >= 0: this mode instead of the source's */
};

void mg_file_opts_init(struct mg_file_opts *opts);

struct mg_file_result {
	uint64_t bytes;  /* file bytes moved */
	uint64_t files;  /* regular files written */
	uint64_t hash;   /* XXH64 of the last file */
	char error[512]; /* what failed, with the path */
};

/* Copies local_path (a regular file) to remote_path in ctx.  Returns 0,
 * -errno (-ENOENT missing source or target folder, -EACCES, -ENOSPC,
 * -EISDIR when the target is a directory, -EBADMSG on a checksum
 * mismatch), MG_EDISCONNECT when ctx went away mid-transfer, or a call
 * error.  res may be NULL.  Thread: any but the broker. */
int mg_file_push(struct mg_context *ctx, const char *local_path, const char *remote_path,
                 const struct mg_file_opts *opts, struct mg_file_result *res);

/* Copies remote_path in ctx to local_path; returns as mg_file_push(). */
int mg_file_pull(struct mg_context *ctx, const char *remote_path, const char *local_path,
                 const struct mg_file_opts *opts, struct mg_file_result *res);

/* Copies local_path to remote_path in each of the n contexts, in
 * parallel.  Targets connected through the same gateway (opts.via) share
 * one transfer down to it: the gateway keeps the file in an unnamed
 * temporary file of its own (bounded memory, nothing left behind) and
 * pushes it to each of them, so the file crosses the links above the
 * gateway once however many of its children receive it (Mitogen's
 * PushFileService).  Each target's XXH64 is checked against the source's.
 * codes[i] (0 or as mg_file_push()) and results[i] say how target i
 * fared; either array may be NULL.  Returns 0 when every target got the
 * file, else the first failed target's code.  Thread: any but the broker. */
int mg_file_push_many(struct mg_context *const *ctxs, size_t n, const char *local_path,
                      const char *remote_path, const struct mg_file_opts *opts, int *codes,
                      struct mg_file_result *results);

/* Copies a directory tree (folders, regular files, symlinks; other kinds
 * are skipped) so that remote_dir becomes a copy of local_dir, folders
 * created as needed.  Stops at the first failure. */
int mg_file_push_tree(struct mg_context *ctx, const char *local_dir, const char *remote_dir,
                      const struct mg_file_opts *opts, struct mg_file_result *res);
int mg_file_pull_tree(struct mg_context *ctx, const char *remote_dir, const char *local_dir,
                      const struct mg_file_opts *opts, struct mg_file_result *res);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif
#endif
