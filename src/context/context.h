/*
 * context.h: contexts, the export registry, the dispatcher, calls, remote
 * errors, log forwarding and the shutdown cascade.  Context knows nothing
 * of how a child was started: connect/ starts it, completes the handshake
 * and then hands the channel over through the functions below.
 */
#ifndef MG_CONTEXT_H
#define MG_CONTEXT_H

#include "router/router.h"

/* ------------------------------------------------------------------------ */
/* Boot parameters: what a new child learns in the handshake. */

#define MG_MAX_ANCESTORS 32
#define MG_NAME_MAX 128

struct mg_boot {
	uint32_t context_id;
	uint32_t parent_id;
	uint32_t ancestors[MG_MAX_ANCESTORS]; /* parent first, master last */
	uint32_t nancestors;
	char name[MG_NAME_MAX];
	int32_t log_level;
	uint64_t max_message_size;
	bool unidirectional;
};

/* MessagePack encoding of boot parameters (a map), for the handshake. */
int mg__boot_encode(const struct mg_boot *boot, struct mg_buf *out);
int mg__boot_decode(const uint8_t *data, size_t len, struct mg_boot *boot);

/* Fills boot for a new child of router r. */
void mg__boot_for_child(struct mg_router *r, uint32_t child_id, const char *name,
                        struct mg_boot *boot);

/* ------------------------------------------------------------------------ */
/* The child side. */

/* Runs this process as a context on the channel rfd/wfd (already past the
 * handshake): makes the router, attaches the parent stream, starts the
 * dispatcher, replaces stdio so stray output becomes log records, and
 * serves until the parent disconnects or asks for shutdown.  Returns the
 * process exit status.  Never returns in the middle of a call. */
int mg__child_serve(int rfd, int wfd, const struct mg_boot *boot);

/* ------------------------------------------------------------------------ */
/* Contexts, parent side. */

enum mg_context_state {
	MG_CTX_CONNECTING = 0,
	MG_CTX_READY,
	MG_CTX_FAILED,
	MG_CTX_GONE,
};

struct mg_context;

/* What a connection method provides for a context it started. */
struct mg_conn_ops {
	/* Forces the child to go (e.g. SIGKILL to its pid); called when a
	 * shutdown's grace period runs out.  May be NULL.  Thread: any. */
	void (*force)(struct mg_context *c);
	/* Waits up to ms for the child process to be reaped (no zombie);
	 * 0 or -ETIMEDOUT.  May be NULL.  Thread: any. */
	int (*reap)(struct mg_context *c, int ms);
	/* Frees method state.  May be NULL. */
	void (*free)(struct mg_context *c);
};

struct mg_context {
	atomic_int refs;
	struct mg_router *router; /* holds a reference */
	uint32_t id;
	char *name;
	struct mg_context *via; /* holds a reference, or NULL */
	int method;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	int state; /* enum mg_context_state */
	int error; /* the connect's failure code */
	char errtext[512];
	struct mg_receiver *ready_rx;

	const struct mg_conn_ops *ops;
	void *conn; /* method state */
	pid_t pid;  /* local and fork children, else 0 */
};

/* Creates a context object for id in the connecting state.  Thread: any. */
int mg__context_new(struct mg_router *r, const struct mg_connect_opts *o, uint32_t id,
                    struct mg_context **cp);

/* The connect finished: the stream to the child is attached (ready) or
 * the connect failed with code and a text that says what failed, the
 * tool's own words included.  Wakes waiters and the ready receiver. */
void mg__context_set_ready(struct mg_context *c);
void mg__context_set_failed(struct mg_context *c, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Allocates a context id for a new child of this process: the master
 * counts up; other contexts ask the master for a block (ALLOCATE_ID).
 * Thread: any but the broker. */
int mg__context_alloc_id(struct mg_router *r, uint32_t *idp);

/* ------------------------------------------------------------------------ */
/* Exports (registry.c) */

mg_export_fn mg__export_find(const char *name);

/* The context process's own state, set by mg__child_serve() (NULL in the
 * master). */
struct mg_router *mg__self_router(void);

#endif
