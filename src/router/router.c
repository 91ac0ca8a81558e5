/*
 * router.c: the routing decision.  Every message, local or from a stream,
 * passes through mg__router_route(): the reverse-path check, the size
 * check, local delivery to a handle, or forwarding to the stream that
 * leads to the destination.  Whatever cannot be delivered comes back as a
 * dead message to its reply handle, so no waiter hangs.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

#define DEFAULT_MAX_MESSAGE (128u * 1024 * 1024)
#define DEFAULT_HIGH_WATER (4u * 1024 * 1024)

void mg_router_opts_init(struct mg_router_opts *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->context_id = 0;
	opts->name = "master";
	opts->max_message_size = DEFAULT_MAX_MESSAGE;
	opts->high_water = DEFAULT_HIGH_WATER;
}

void mg__router_ref(struct mg_router *r)
{
	atomic_fetch_add(&r->refs, 1);
}

void mg__router_unref(struct mg_router *r)
{
	if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	mg__idmap_fini(&r->routes);
	mg__idmap_fini(&r->handlers);
	mg__idmap_fini(&r->contexts);
	mg__idmap_fini(&r->owners);
	mg__free(r->blocks);
	mg__free(r->streams);
	mg__free(r->name);
	pthread_mutex_destroy(&r->lock);
	mg__free(r);
}

int mg_router_new(const struct mg_router_opts *opts, struct mg_router **routerp)
{
	struct mg_router_opts defaults;
	struct mg_router *r;
	int rc;

	if (opts == NULL) {
		mg_router_opts_init(&defaults);
		opts = &defaults;
	}
	if (opts->max_message_size == 0 || opts->max_message_size > UINT32_MAX)
		return -EINVAL;
	if ((r = mg__calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	atomic_init(&r->refs, 1);
	pthread_mutex_init(&r->lock, NULL);
	mg__idmap_init(&r->routes);
	mg__idmap_init(&r->handlers);
	mg__idmap_init(&r->contexts);
	mg__idmap_init(&r->owners);
	r->id = opts->context_id;
	r->max_message_size = opts->max_message_size;
	r->high_water = opts->high_water ? opts->high_water : DEFAULT_HIGH_WATER;
	r->unidirectional = opts->unidirectional;
	r->next_handle = MG_HANDLE_FIRST_DYNAMIC;
	if ((r->name = mg__strdup(opts->name ? opts->name : "master")) == NULL) {
		mg__router_unref(r);
		return -ENOMEM;
	}
	if ((rc = mg__broker_new(&r->broker)) != 0) {
		mg__router_unref(r);
		return rc;
	}
	mg__log_set_context_name(r->name);
	*routerp = r;
	return 0;
}

static void close_all_cb(void *arg)
{
	struct mg_router *r = arg;

	for (;;) {
		struct mg_stream *s = NULL;

		pthread_mutex_lock(&r->lock);
		if (r->nstreams > 0)
			s = r->streams[r->nstreams - 1];
		pthread_mutex_unlock(&r->lock);
		if (s == NULL)
			return;
		/* on_close removes it from the list. */
		mg__stream_close(s, MG_ESHUTDOWN, "router shutting down");
	}
}

void mg_router_free(struct mg_router *r)
{
	size_t pos = 0;
	uint32_t key;
	void *val;

	if (r == NULL)
		return;
	atomic_store(&r->stopping, true);
	mg__broker_call(r->broker, close_all_cb, r);
	mg__broker_free(r->broker);
	r->broker = NULL;
	pthread_mutex_lock(&r->lock);
	while (mg__idmap_next(&r->handlers, &pos, &key, &val)) {
		struct mg_handler *h = val;
		if (h->rx != NULL)
			mg__receiver_shutdown(h->rx);
		mg__free(h);
	}
	mg__idmap_fini(&r->handlers);
	mg__idmap_fini(&r->routes);
	pthread_mutex_unlock(&r->lock);
	mg__router_unref(r);
}

uint32_t mg_router_id(const struct mg_router *r)
{
	return r->id;
}

const char *mg_router_name(const struct mg_router *r)
{
	return r->name;
}

void mg__router_set_ancestors(struct mg_router *r, const uint32_t *ids, size_t n)
{
	pthread_mutex_lock(&r->lock);
	if (n > sizeof(r->ancestors) / sizeof(r->ancestors[0]))
		n = sizeof(r->ancestors) / sizeof(r->ancestors[0]);
	memcpy(r->ancestors, ids, n * sizeof(*ids));
	r->nancestors = n;
	pthread_mutex_unlock(&r->lock);
}

bool mg__router_has_route(struct mg_router *r, uint32_t id)
{
	bool has;

	pthread_mutex_lock(&r->lock);
	has = mg__idmap_get(&r->routes, id) != NULL;
	pthread_mutex_unlock(&r->lock);
	return has;
}

int mg__router_link_bytes_out(struct mg_router *r, uint32_t id, uint64_t *outp)
{
	struct mg_stream *s;

	pthread_mutex_lock(&r->lock);
	if ((s = mg__idmap_get(&r->routes, id)) != NULL)
		mg__stream_ref(s);
	pthread_mutex_unlock(&r->lock);
	if (s == NULL)
		return MG_ENOROUTE;
	/* The output counter moves under the stream's own lock (the input
	 * one belongs to the broker thread, so it is not offered). */
	pthread_mutex_lock(&s->lock);
	*outp = s->bytes_out;
	pthread_mutex_unlock(&s->lock);
	mg__stream_unref(s);
	return 0;
}

void mg__router_set_disconnect_cb(struct mg_router *r, mg_disconnect_cb cb, void *arg)
{
	pthread_mutex_lock(&r->lock);
	r->on_disconnect = cb;
	r->on_disconnect_arg = arg;
	pthread_mutex_unlock(&r->lock);
}

/* ---- dead messages ------------------------------------------------------ */

void mg__router_send_dead(struct mg_router *r, const struct mg_frame_hdr *h, int code,
                          const char *fmt, ...)
{
	struct mg_msg *dead;
	char reason[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	/* A dead message never answers another, and reply_to 0 asks for no
	 * answer at all. */
	if (h->reply_to == 0 || h->reply_to == MG_HANDLE_IS_DEAD) {
		mg__debug("%s: dropped message to %u handle %u: %s", r->name, h->dst_id, h->handle,
		          reason);
		return;
	}
	if (mg__msg_make_dead(code, reason, &dead) != 0) {
		mg__error("%s: out of memory making a dead message: %s", r->name, reason);
		return;
	}
	dead->hdr.dst_id = h->src_id;
	dead->hdr.src_id = r->id;
	dead->hdr.auth_id = r->id;
	dead->hdr.handle = h->reply_to;
	dead->hdr.reply_to = MG_HANDLE_IS_DEAD;
	mg__router_route(r, dead, NULL);
}

/* ---- local delivery ----------------------------------------------------- */

static bool has_parent_authority(struct mg_router *r, uint32_t auth)
{
	size_t i;

	if (auth == r->id)
		return true;
	for (i = 0; i < r->nancestors; i++)
		if (r->ancestors[i] == auth)
			return true;
	return false;
}

static void invoke_on_broker(void *arg);

/* Delivers m to its local handle.  Called with the router lock held; it
 * is released before anything that could take long or take it again. */
static void invoke_locked(struct mg_router *r, struct mg_msg *m)
{
	struct mg_handler *h = mg__idmap_get(&r->handlers, m->hdr.handle);
	mg_handler_cb cb;
	void *cb_arg;

	if (h == NULL) {
		pthread_mutex_unlock(&r->lock);
		mg__router_send_dead(r, &m->hdr, MG_ECLOSED,
		                     "no handler for handle %u at context %u", m->hdr.handle,
		                     r->id);
		mg_msg_free(m);
		return;
	}
	if (h->policy == MG_POLICY_PARENT && !has_parent_authority(r, m->hdr.auth_id)) {
		pthread_mutex_unlock(&r->lock);
		mg__error("%s: policy refused message from %u (auth %u) to handle %u", r->name,
		          m->hdr.src_id, m->hdr.auth_id, m->hdr.handle);
		mg__router_send_dead(r, &m->hdr, MG_EREFUSED,
		                     "refused by policy at context %u handle %u", r->id,
		                     m->hdr.handle);
		mg_msg_free(m);
		return;
	}
	m->router = r;
	if (h->rx != NULL) {
		/* Push outside the router lock: the woken thread often wants
		 * that lock at once. */
		struct mg_receiver *rx = h->rx;
		mg__receiver_ref(rx);
		pthread_mutex_unlock(&r->lock);
		mg__receiver_push(rx, m);
		mg__receiver_unref(rx);
		return;
	}
	cb = h->cb;
	cb_arg = h->arg;
	pthread_mutex_unlock(&r->lock);
	if (!mg__broker_on_thread(r->broker)) {
		/* Handlers run on the broker: look the handle up again there. */
		if (mg__broker_post(r->broker, invoke_on_broker, m) != 0)
			mg_msg_free(m);
		return;
	}
	cb(cb_arg, m);
}

static void invoke_on_broker(void *arg)
{
	struct mg_msg *m = arg;

	pthread_mutex_lock(&m->router->lock);
	invoke_locked(m->router, m);
}

/* ---- routing ------------------------------------------------------------ */

/* The stream a message for id should leave by.  Called locked. */
static struct mg_stream *stream_for(struct mg_router *r, uint32_t id)
{
	struct mg_stream *s = mg__idmap_get(&r->routes, id);

	return s != NULL ? s : r->parent;
}

/* The reverse-path check: a message must arrive on the stream that routes
 * back to its claimed authority and source.  Called locked. */
static bool from_expected_stream(struct mg_router *r, struct mg_msg *m, struct mg_stream *in)
{
	return stream_for(r, m->hdr.auth_id) == in &&
	       (m->hdr.src_id == m->hdr.auth_id || stream_for(r, m->hdr.src_id) == in);
}

/* Forwards m through out (referenced by the caller, released here). */
static void forward(struct mg_router *r, struct mg_msg *m, struct mg_stream *out,
                    struct mg_stream *in)
{
	struct mg_frame_hdr h = m->hdr;
	uint32_t peer = out->peer_id;
	int rc = mg__stream_send(out, &h, m, in == NULL);

	mg__stream_unref(out);
	if (rc != 0)
		mg__router_send_dead(r, &h, rc, "context %u: stream to %u lost: %s", r->id, peer,
		                     mg_strerror(rc));
	mg_msg_free(m);
}

void mg__router_route(struct mg_router *r, struct mg_msg *m, struct mg_stream *in)
{
	struct mg_frame_hdr h = m->hdr;
	struct mg_stream *out;
	bool known;

	if (mg__log_enabled(MG_LOG_DEBUG, true))
		mg__log_io("%s: route dst=%u src=%u auth=%u handle=%u reply_to=%u len=%u%s",
		           r->name, h.dst_id, h.src_id, h.auth_id, h.handle, h.reply_to,
		           (unsigned)m->payload.len, in ? "" : " (local)");
	if (m->payload.len > r->max_message_size) {
		mg__router_send_dead(r, &h, MG_ETOOBIG,
		                     "message of %zu bytes is larger than the maximum %zu",
		                     m->payload.len, r->max_message_size);
		mg_msg_free(m);
		return;
	}
	/* One look at the tables per message, under one lock. */
	pthread_mutex_lock(&r->lock);
	if (in != NULL && !from_expected_stream(r, m, in)) {
		pthread_mutex_unlock(&r->lock);
		mg__error("%s: dropped message claiming src %u auth %u from the stream of "
		          "context %u: bad source",
		          r->name, h.src_id, h.auth_id, in->peer_id);
		mg_msg_free(m);
		return;
	}
	if (h.dst_id == r->id) {
		if (in != NULL &&
		    (h.handle == MG_HANDLE_ADD_ROUTE || h.handle == MG_HANDLE_DEL_ROUTE)) {
			pthread_mutex_unlock(&r->lock);
			mg__route_on_control(r, m, in);
		} else {
			invoke_locked(r, m);
		}
		return;
	}
	out = mg__idmap_get(&r->routes, h.dst_id);
	/* A context this router knows whose route is gone has disconnected: a
	 * call made between the loss of its stream and the context layer
	 * hearing of it must say so, not "no route" (nor go upward). */
	known = out == NULL && mg__idmap_get(&r->contexts, h.dst_id) != NULL;
	if (out == NULL && !known && in != r->parent)
		out = r->parent;
	if (out != NULL && in != NULL && r->unidirectional && in != r->parent && out != r->parent) {
		pthread_mutex_unlock(&r->lock);
		mg__router_send_dead(r, &h, MG_EREFUSED,
		                     "unidirectional mode forbids %u reaching %u through %u",
		                     h.src_id, h.dst_id, r->id);
		mg_msg_free(m);
		return;
	}
	if (out != NULL)
		mg__stream_ref(out);
	pthread_mutex_unlock(&r->lock);
	if (known) {
		mg__router_send_dead(r, &h, MG_EDISCONNECT, "context %u is not connected",
		                     h.dst_id);
		mg_msg_free(m);
		return;
	}
	if (out == NULL) {
		mg__router_send_dead(r, &h, MG_ENOROUTE, "no route from context %u to context %u",
		                     r->id, h.dst_id);
		mg_msg_free(m);
		return;
	}
	forward(r, m, out, in);
}

int mg_router_send(struct mg_router *r, uint32_t dst, uint32_t handle, struct mg_msg *msg)
{
	if (atomic_load(&r->stopping)) {
		mg_msg_free(msg);
		return MG_ESHUTDOWN;
	}
	msg->hdr.dst_id = dst;
	msg->hdr.src_id = r->id;
	msg->hdr.auth_id = r->id;
	msg->hdr.handle = handle;
	mg__router_route(r, msg, NULL);
	return 0;
}

/* ---- handlers ----------------------------------------------------------- */

int mg__router_register(struct mg_router *r, struct mg_handler *h, uint32_t handle)
{
	int rc = 0;

	pthread_mutex_lock(&r->lock);
	if (handle == 0) {
		/* Dynamic handles wrap around and skip ones in use. */
		do {
			handle = r->next_handle++;
			if (r->next_handle == MG_HANDLE_IS_DEAD || r->next_handle == 0)
				r->next_handle = MG_HANDLE_FIRST_DYNAMIC;
		} while (mg__idmap_get(&r->handlers, handle) != NULL);
	} else if (handle == MG_HANDLE_IS_DEAD || mg__idmap_get(&r->handlers, handle) != NULL) {
		rc = -EEXIST;
	}
	if (rc == 0) {
		h->handle = handle;
		rc = mg__idmap_put(&r->handlers, handle, h);
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int mg_router_add_handler(struct mg_router *r, uint32_t handle, int policy, mg_handler_cb cb,
                          void *arg, uint32_t *handlep)
{
	struct mg_handler *h;
	int rc;

	if (cb == NULL || (policy != MG_POLICY_ANY && policy != MG_POLICY_PARENT))
		return -EINVAL;
	if ((h = mg__calloc(1, sizeof(*h))) == NULL)
		return -ENOMEM;
	h->policy = policy;
	h->cb = cb;
	h->arg = arg;
	h->respondent = MG_NO_RESPONDENT;
	if ((rc = mg__router_register(r, h, handle)) != 0) {
		mg__free(h);
		return rc;
	}
	if (handlep != NULL)
		*handlep = h->handle;
	return 0;
}

static void nothing_cb(void *arg)
{
}

int mg_router_del_handler(struct mg_router *r, uint32_t handle)
{
	struct mg_handler *h;

	pthread_mutex_lock(&r->lock);
	h = mg__idmap_get(&r->handlers, handle);
	if (h != NULL && h->rx == NULL)
		mg__idmap_del(&r->handlers, handle);
	else
		h = NULL;
	pthread_mutex_unlock(&r->lock);
	if (h == NULL)
		return MG_ECLOSED;
	/* A callback may be running on the broker right now: once a no-op
	 * command has run there, it has returned. */
	if (!atomic_load(&r->stopping))
		mg__broker_call(r->broker, nothing_cb, NULL);
	mg__free(h);
	return 0;
}

/* ---- streams ------------------------------------------------------------ */

static void on_stream_msg(void *owner, struct mg_stream *s, struct mg_msg *m)
{
	mg__router_route(owner, m, s);
}

static void on_stream_close(void *owner, struct mg_stream *s, int code, const char *why)
{
	mg__route_stream_lost(owner, s, code, why);
}

/*
 * A thread reading stream in itself (core.h) delivers here what it can
 * deliver at once: a message for a receiver of this router that passes
 * the checks mg__router_route() makes.  Everything else (forwarding,
 * handlers, route messages, dead answers, io logging) goes back to the
 * broker, in order, and is routed there as usual.  The agent has the path
 * too: 0.97 KB of its first boot, for a call round trip over ssh of ~95
 * us instead of ~150 (`ssh host cat` alone: ~90 here).
 */
static bool on_stream_try_msg(void *owner, struct mg_stream *in, struct mg_msg *m)
{
	struct mg_router *r = owner;
	const struct mg_frame_hdr *h = &m->hdr;
	struct mg_handler *hd;
	struct mg_receiver *rx;
	bool ok;

	if (m->payload.len > r->max_message_size || h->dst_id != r->id ||
	    h->handle == MG_HANDLE_ADD_ROUTE || h->handle == MG_HANDLE_DEL_ROUTE ||
	    mg__log_enabled(MG_LOG_DEBUG, true))
		return false;
	pthread_mutex_lock(&r->lock);
	hd = mg__idmap_get(&r->handlers, h->handle);
	if (hd == NULL || hd->rx == NULL || !from_expected_stream(r, m, in) ||
	    (hd->policy == MG_POLICY_PARENT && !has_parent_authority(r, h->auth_id))) {
		pthread_mutex_unlock(&r->lock);
		return false;
	}
	rx = hd->rx;
	mg__receiver_ref(rx);
	pthread_mutex_unlock(&r->lock);
	m->router = r;
	ok = mg__receiver_try_push(rx, m) == 0;
	mg__receiver_unref(rx);
	return ok;
}

static const struct mg_stream_ops stream_ops = {on_stream_msg, on_stream_close, on_stream_try_msg};

struct attach_args {
	struct mg_router *r;
	int rfd, wfd;
	uint32_t peer_id;
	unsigned flags;
	int rc;
};

static void attach_cb(void *arg)
{
	struct attach_args *a = arg;
	struct mg_router *r = a->r;
	struct mg_stream *s;

	pthread_mutex_lock(&r->lock);
	s = mg__idmap_get(&r->routes, a->peer_id);
	/* A route some child announced for this id yields to the stream this
	 * process attaches itself: ids are never given twice, so the claim
	 * was false (a gateway cannot judge every announcement; route.c). */
	if (a->peer_id == r->id || (s != NULL && s->peer_id == a->peer_id) ||
	    ((a->flags & MG_STREAM_PARENT) && (r->parent != NULL || s != NULL)))
		a->rc = -EEXIST;
	else if (r->nstreams == r->streams_cap) {
		size_t ncap = r->streams_cap ? r->streams_cap * 2 : 16;
		struct mg_stream **n = mg__realloc(r->streams, ncap * sizeof(*n));
		if (n == NULL)
			a->rc = -ENOMEM;
		else {
			r->streams = n;
			r->streams_cap = ncap;
		}
	}
	pthread_mutex_unlock(&r->lock);
	if (a->rc != 0)
		return;
	if (s != NULL)
		mg__error("%s: context %u falsely claimed a route to %u", r->name, s->peer_id,
		          a->peer_id);
	a->rc = mg__stream_open(r->broker, a->rfd, a->wfd, &stream_ops, r, r->max_message_size,
	                        r->high_water, &s);
	if (a->rc != 0)
		return;
	s->peer_id = a->peer_id;
	s->flags = a->flags;
	pthread_mutex_lock(&r->lock);
	r->streams[r->nstreams++] = s;
	a->rc = mg__idmap_put(&r->routes, a->peer_id, s);
	if (a->flags & MG_STREAM_PARENT) {
		r->parent = s;
		if (r->nancestors == 0)
			r->ancestors[r->nancestors++] = a->peer_id;
	}
	pthread_mutex_unlock(&r->lock);
	if (a->rc != 0) {
		/* On failure the fds stay the caller's: the stream lets go of
		 * them before it closes. */
		s->rfd = s->wfd = -1;
		mg__stream_close(s, a->rc, "out of memory adding a route");
		return;
	}
	if (!(a->flags & MG_STREAM_PARENT))
		mg__route_announce(r, MG_HANDLE_ADD_ROUTE, a->peer_id);
}

int mg_router_attach(struct mg_router *r, int rfd, int wfd, uint32_t peer_id, unsigned flags)
{
	struct attach_args a = {r, rfd, wfd, peer_id, flags, 0};
	int rc;

	if (rfd < 0 || wfd < 0 || (flags & ~(unsigned)MG_STREAM_PARENT))
		return -EINVAL;
	if (atomic_load(&r->stopping))
		return MG_ESHUTDOWN;
	if ((rc = mg__broker_call(r->broker, attach_cb, &a)) != 0)
		return rc;
	return a.rc;
}
