/*
 * router.h: routes, handles, policies, dead messages, and the waiting
 * objects built on them (receivers, senders, latches, selects).
 */
#ifndef MG_ROUTER_H
#define MG_ROUTER_H

#include "core/core.h"

struct mg_handler {
	uint32_t handle;
	int policy;
	mg_handler_cb cb;
	void *arg;
	struct mg_receiver *rx; /* set for receivers: delivered from any thread */
	uint32_t respondent;    /* MG_NO_RESPONDENT or a context id */
};

/* Hook the context layer sets to learn that a context became unreachable.
 * Runs on the broker thread. */
typedef void (*mg_disconnect_cb)(void *arg, uint32_t context_id);

/* Ids [lo, hi) given to context owner to hand out below it. */
struct mg_id_block {
	uint32_t lo, hi, owner;
};

struct mg_router {
	atomic_int refs;
	struct mg_broker *broker;
	uint32_t id;
	char *name;
	size_t max_message_size;
	size_t high_water;
	bool unidirectional;
	atomic_bool stopping;

	/* lock guards everything below.  Order: router lock, then a
	 * receiver's lock, then a select's lock; a stream's lock is never
	 * held together with the router lock. */
	pthread_mutex_t lock;
	struct mg_idmap routes;     /* context id -> stream (borrowed) */
	struct mg_idmap handlers;   /* handle -> struct mg_handler */
	struct mg_stream **streams; /* attached streams (one reference each) */
	size_t nstreams, streams_cap;
	struct mg_stream *parent;
	uint32_t ancestors[64];
	size_t nancestors;
	uint32_t next_handle;
	mg_disconnect_cb on_disconnect;
	void *on_disconnect_arg;

	/* Kept here for the context layer (guarded by lock too). */
	struct mg_idmap contexts; /* context id -> struct mg_context (borrowed) */
	uint32_t id_next, id_end; /* ids this process may hand its children */

	/* Who may announce which ids (route.c): single ids handed to a via
	 * connect (id -> owner + 1) and blocks handed out by ALLOCATE_ID. */
	struct mg_idmap owners;
	struct mg_id_block *blocks;
	size_t nblocks, blocks_cap;
	bool context_services; /* ALLOCATE_ID / FORWARD_LOG handlers added */
};

struct mg_receiver {
	atomic_int refs;          /* the owner's, plus deliveries in progress */
	struct mg_router *router; /* holds a reference */
	uint32_t handle;
	pthread_mutex_t lock;
	struct mg_wakeword wake;   /* waiters in mg_receiver_get() */
	struct mg_stream *reading; /* a waiter reads this stream itself */
	struct mg_ring q;
	bool closed;
	bool shutdown;
	struct mg_select *sel;
};

/* router.c */
void mg__router_ref(struct mg_router *r);
void mg__router_unref(struct mg_router *r);
/* Routes a message (ownership taken).  in is the stream it arrived on, or
 * NULL when it originates here.  Thread: any (in != NULL: broker). */
void mg__router_route(struct mg_router *r, struct mg_msg *m, struct mg_stream *in);
/* Sends a dead message answering m (which is not consumed) when m asked
 * for a reply and is not itself dead. */
void mg__router_send_dead(struct mg_router *r, const struct mg_frame_hdr *h, int code,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Allocates a handle and registers h under it (h->handle is set). */
int mg__router_register(struct mg_router *r, struct mg_handler *h, uint32_t handle);
/* Sets the ancestor ids that have parent authority here. */
void mg__router_set_ancestors(struct mg_router *r, const uint32_t *ids, size_t n);
/* True when id is reachable through an explicit route (tests, diagnostics). */
bool mg__router_has_route(struct mg_router *r, uint32_t id);
/* Bytes written to the stream that routes to id since it was attached:
 * how tests and benches see what crossed a link.  0 or MG_ENOROUTE.
 * Thread: any. */
int mg__router_link_bytes_out(struct mg_router *r, uint32_t id, uint64_t *outp);
void mg__router_set_disconnect_cb(struct mg_router *r, mg_disconnect_cb cb, void *arg);

/* route.c: ADD_ROUTE / DEL_ROUTE and stream loss.  Thread: broker. */
void mg__route_on_control(struct mg_router *r, struct mg_msg *m, struct mg_stream *in);
void mg__route_announce(struct mg_router *r, uint32_t handle, uint32_t id);
void mg__route_stream_lost(struct mg_router *r, struct mg_stream *s, int code, const char *why);
void mg__route_notify_lost(struct mg_router *r, uint32_t id, const char *why);
/* Records that ids [lo, hi) were given to context owner (or below it) to
 * use: only the stream leading to owner may announce routes to them.  A
 * router with no parent (the master) refuses announcements of ids it never
 * gave; a gateway cannot know every id given below it and judges only the
 * ids it has recorded.  0 or -ENOMEM.  Thread: any. */
int mg__router_delegate(struct mg_router *r, uint32_t lo, uint32_t hi, uint32_t owner);

/* receiver.c */
/* mg_receiver_new() on a given handle (0 allocates one); -EEXIST. */
int mg__receiver_new_at(struct mg_router *r, uint32_t handle, uint32_t respondent, int policy,
                        struct mg_receiver **rxp);
/* Queues m on rx (ownership taken).  The caller holds a reference to rx
 * (mg__receiver_ref() under the router lock) and not the router lock. */
void mg__receiver_push(struct mg_receiver *rx, struct mg_msg *m);
/* mg__receiver_push() that leaves m with the caller when rx is closed
 * (MG_ECLOSED) or memory is short (-ENOMEM), instead of answering it. */
int mg__receiver_try_push(struct mg_receiver *rx, struct mg_msg *m);
void mg__receiver_ref(struct mg_receiver *rx);
void mg__receiver_unref(struct mg_receiver *rx);
/* Marks rx shut down (router freed).  Called with the router lock held. */
void mg__receiver_shutdown(struct mg_receiver *rx);
/* Non-blocking get: -EAGAIN when empty; *morep says more are queued. */
int mg__receiver_try_get(struct mg_receiver *rx, struct mg_msg **msgp, bool *morep);
/* Turns a dead message into its code, setting mg_errdetail(); frees it. */
int mg__receiver_dead_code(struct mg_msg *m);

/* select.c */
void mg__select_notify(struct mg_select *sel, struct mg_receiver *rx);

/* msg_fmt.c */
int mg__msg_make_dead(int code, const char *reason, struct mg_msg **msgp);

#endif
