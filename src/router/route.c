/*
 * route.c: keeping the routing table true.  A child announces every context
 * it connects with ADD_ROUTE and every one it loses with DEL_ROUTE; each
 * hop records the route through the stream it came on and passes the news
 * to its own parent.  A child may announce only what it owns: never this
 * context, an ancestor, or an id already reached through another stream;
 * and never an id that was given to a context elsewhere (a via connect's
 * id, a block of ids from ALLOCATE_ID), or, at the master, which knows
 * every id it gave, one that was never given at all.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

void mg__route_announce(struct mg_router *r, uint32_t handle, uint32_t id)
{
	struct mg_msg *m;
	uint32_t parent_id;

	pthread_mutex_lock(&r->lock);
	parent_id = r->parent ? r->parent->peer_id : MG_NO_RESPONDENT;
	pthread_mutex_unlock(&r->lock);
	if (parent_id == MG_NO_RESPONDENT)
		return;
	if (mg_msg_pack(&m, "u", (uint64_t)id) != 0) {
		mg__error("%s: out of memory announcing context %u", r->name, id);
		return;
	}
	m->hdr.dst_id = parent_id;
	m->hdr.src_id = r->id;
	m->hdr.auth_id = r->id;
	m->hdr.handle = handle;
	mg__router_route(r, m, NULL);
}

/* Wakes every receiver waiting on a reply from id and tells the context
 * layer.  Thread: broker. */
void mg__route_notify_lost(struct mg_router *r, uint32_t id, const char *why)
{
	struct mg_frame_hdr h;
	uint32_t *handles = NULL, key;
	size_t n = 0, cap = 0, pos = 0, i;
	mg_disconnect_cb cb;
	void *cb_arg, *val;

	pthread_mutex_lock(&r->lock);
	while (mg__idmap_next(&r->handlers, &pos, &key, &val)) {
		struct mg_handler *hd = val;
		if (hd->respondent != id)
			continue;
		if (n == cap) {
			uint32_t *nh = mg__realloc(handles, (cap ? cap * 2 : 16) * sizeof(*nh));
			if (nh == NULL)
				break;
			handles = nh;
			cap = cap ? cap * 2 : 16;
		}
		handles[n++] = key;
	}
	cb = r->on_disconnect;
	cb_arg = r->on_disconnect_arg;
	pthread_mutex_unlock(&r->lock);
	/* The context layer first, so a woken waiter finds the context gone. */
	if (cb != NULL)
		cb(cb_arg, id);
	/* The dead message looks like a reply from the lost context. */
	memset(&h, 0, sizeof(h));
	h.src_id = r->id;
	h.dst_id = id;
	for (i = 0; i < n; i++) {
		h.reply_to = handles[i];
		mg__router_send_dead(r, &h, MG_EDISCONNECT, "context %u disconnected: %s", id, why);
	}
	mg__free(handles);
}

static bool is_ancestor(struct mg_router *r, uint32_t id)
{
	size_t i;

	for (i = 0; i < r->nancestors; i++)
		if (r->ancestors[i] == id)
			return true;
	return false;
}

int mg__router_delegate(struct mg_router *r, uint32_t lo, uint32_t hi, uint32_t owner)
{
	int rc = 0;

	if (hi <= lo)
		return -EINVAL;
	pthread_mutex_lock(&r->lock);
	if (hi - lo == 1) {
		rc = mg__idmap_put(&r->owners, lo, (void *)((uintptr_t)owner + 1));
	} else {
		if (r->nblocks == r->blocks_cap) {
			size_t ncap = r->blocks_cap ? r->blocks_cap * 2 : 8;
			struct mg_id_block *n = mg__realloc(r->blocks, ncap * sizeof(*n));

			if (n == NULL)
				rc = -ENOMEM;
			else {
				r->blocks = n;
				r->blocks_cap = ncap;
			}
		}
		if (rc == 0)
			r->blocks[r->nblocks++] = (struct mg_id_block){lo, hi, owner};
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* May the child on stream in announce id?  Called locked. */
static bool owned_through(struct mg_router *r, uint32_t id, struct mg_stream *in)
{
	uintptr_t v = (uintptr_t)mg__idmap_get(&r->owners, id);
	struct mg_stream *s;
	uint32_t owner;
	size_t i;

	if (v != 0) {
		owner = (uint32_t)(v - 1);
	} else {
		for (i = 0; i < r->nblocks; i++)
			if (id >= r->blocks[i].lo && id < r->blocks[i].hi)
				break;
		if (i == r->nblocks)
			return r->parent != NULL;
		owner = r->blocks[i].owner;
	}
	/* The owner is the announcing child or lies behind it. */
	s = mg__idmap_get(&r->routes, owner);
	return owner != r->id && (owner == in->peer_id || s == in);
}

static void add_route(struct mg_router *r, uint32_t id, struct mg_stream *in)
{
	struct mg_stream *cur;
	int rc = 0;

	pthread_mutex_lock(&r->lock);
	cur = mg__idmap_get(&r->routes, id);
	if (id == r->id || is_ancestor(r, id) || (cur != NULL && cur != in) ||
	    !owned_through(r, id, in))
		rc = MG_EREFUSED;
	else
		rc = mg__idmap_put(&r->routes, id, in);
	pthread_mutex_unlock(&r->lock);
	if (rc != 0) {
		mg__error("%s: refused route to %u announced by context %u: %s", r->name, id,
		          in->peer_id, rc == MG_EREFUSED ? "not its to announce" : mg_strerror(rc));
		return;
	}
	mg__debug("%s: route to %u via %u", r->name, id, in->peer_id);
	mg__route_announce(r, MG_HANDLE_ADD_ROUTE, id);
}

static void del_route(struct mg_router *r, uint32_t id, struct mg_stream *in)
{
	bool ok;

	pthread_mutex_lock(&r->lock);
	ok = id != in->peer_id && mg__idmap_get(&r->routes, id) == in;
	if (ok) {
		mg__idmap_del(&r->routes, id);
		mg__idmap_del(&r->owners, id);
	}
	pthread_mutex_unlock(&r->lock);
	if (!ok) {
		mg__error("%s: ignored DEL_ROUTE for %u from context %u: not routed through it",
		          r->name, id, in->peer_id);
		return;
	}
	mg__route_notify_lost(r, id, "its gateway lost it");
	mg__route_announce(r, MG_HANDLE_DEL_ROUTE, id);
}

void mg__route_on_control(struct mg_router *r, struct mg_msg *m, struct mg_stream *in)
{
	uint64_t id;

	/* Only an immediate child speaks about routes below it. */
	if (in == r->parent || m->hdr.src_id != in->peer_id) {
		mg__error("%s: refused route message from %u on the stream of %u", r->name,
		          m->hdr.src_id, in->peer_id);
		mg__router_send_dead(r, &m->hdr, MG_EREFUSED, "route messages come from children");
	} else if (mg_msg_read(m, "u", &id) != 0 || id > UINT32_MAX) {
		mg__error("%s: malformed route message from %u", r->name, in->peer_id);
	} else if (m->hdr.handle == MG_HANDLE_ADD_ROUTE) {
		add_route(r, (uint32_t)id, in);
	} else {
		del_route(r, (uint32_t)id, in);
	}
	mg_msg_free(m);
}

static void unref_cb(void *arg)
{
	mg__stream_unref(arg);
}

/* A stream closed: drop it and every route through it, answer what it still
 * had queued with dead messages, and tell waiters and the parent. */
void mg__route_stream_lost(struct mg_router *r, struct mg_stream *s, int code, const char *why)
{
	struct mg_outq_entry *left;
	uint32_t *lost = NULL, key;
	size_t nleft, nlost = 0, pos = 0, i;
	void *val;
	bool was_parent;

	if (code == MG_EPROTOCOL || code == MG_ETOOBIG)
		mg__error("%s: disconnecting context %u: %s", r->name, s->peer_id, why);
	else
		mg__debug("%s: stream to context %u closed: %s", r->name, s->peer_id, why);
	pthread_mutex_lock(&r->lock);
	for (i = 0; i < r->nstreams; i++) {
		if (r->streams[i] == s) {
			r->streams[i] = r->streams[--r->nstreams];
			break;
		}
	}
	was_parent = r->parent == s;
	if (was_parent)
		r->parent = NULL;
	lost = mg__malloc((r->routes.count + 1) * sizeof(*lost));
	while (mg__idmap_next(&r->routes, &pos, &key, &val))
		if (val == s && lost != NULL)
			lost[nlost++] = key;
	for (i = 0; i < nlost; i++) {
		mg__idmap_del(&r->routes, lost[i]);
		mg__idmap_del(&r->owners, lost[i]);
	}
	pthread_mutex_unlock(&r->lock);

	mg__stream_take_left(s, &left, &nleft);
	for (i = 0; i < nleft; i++) {
		struct mg_frame_hdr h;
		if (mg__frame_decode(left[i].hdr, UINT32_MAX, &h) == 0)
			mg__router_send_dead(r, &h, MG_EDISCONNECT,
			                     "context %u: stream to %u lost before sending: %s",
			                     r->id, s->peer_id, why);
		mg_msg_free(left[i].msg);
	}
	mg__free(left);
	for (i = 0; i < nlost; i++) {
		mg__route_notify_lost(r, lost[i], why);
		if (!was_parent)
			mg__route_announce(r, MG_HANDLE_DEL_ROUTE, lost[i]);
	}
	if (was_parent && nlost == 0)
		mg__route_notify_lost(r, s->peer_id, why);
	mg__free(lost);
	/* Events for this stream may still sit in the current epoll batch. */
	if (r->broker == NULL || mg__broker_post(r->broker, unref_cb, s) != 0)
		mg__stream_unref(s);
}
