/*
 * via.c: connecting through another context (a gateway).
 *
 * The master calls "mg.connect" in the gateway with the new context's id
 * and options.  The gateway runs the same connect locally (so a fork "via"
 * a child is a fork of that child) and answers once the child is ready or
 * has failed, with (code, text).  The options travel as a map (via_opts.c),
 * so every option of every method reaches the gateway; the password is in
 * it only on the tree's own streams, and both ends wipe their copies (the
 * message zeroed when freed, the gateway's decoded copy after the start).  Its router announced the route to the new
 * id upward when it attached the child, before that answer left on the
 * same stream, so the master can address the new context at once.
 *
 * Both ends stay asynchronous.  On the master the answer arrives at a
 * handler on the broker, which marks the context; it is bound to the
 * gateway, so losing the gateway fails the connect.  In the gateway the
 * exported function returns at once and the answer is sent when the
 * connect finishes, so one gateway runs many connects in parallel and its
 * dispatcher stays free for other calls.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "connect/connect.h"
#include "context/calls.h"
#include "wire/msgpack.h"

#define CONNECT_FN "mg.connect"
/* The largest options map sent or accepted (environment included). */
#define MAX_OPTS_BYTES (4u << 20)

/* ------------------------------------------------------------------------ */
/* Master side. */

struct via_req {
	pthread_mutex_t lock;
	struct mg_context *c; /* NULL once freed */
	struct mg_router *router;
	uint32_t via_id;
	char via_name[MG_NAME_MAX];
	uint32_t handle;
	bool answered;
};

/* Marks the context from the gateway's answer.  Called with v->lock. */
static void via_answer(struct via_req *v, struct mg_msg *m)
{
	struct mg_context *c = v->c;
	const char *text;
	int64_t code;
	int dcode;

	if (mg_msg_is_dead(m)) {
		if (mg_msg_dead_reason(m, &dcode, &text) != 0) {
			dcode = MG_EDISCONNECT;
			text = "?";
		}
		mg__context_set_failed(c, dcode, "%s: through %s: %s", c->name, v->via_name, text);
	} else if (mg__reply_is_error(m)) {
		const struct mg_error *e;

		mg__error_from_reply(m);
		e = mg_last_error();
		mg__context_set_failed(c, MG_ECONNECT, "%s: through %s: %s: %s", c->name,
		                       v->via_name, e->type, e->message);
	} else if (mg_msg_read(m, "(is)", &code, &text) != 0 || code > 0 || code < INT32_MIN) {
		mg__context_set_failed(c, MG_EPROTOCOL, "%s: %s sent a malformed answer", c->name,
		                       v->via_name);
	} else if (code == 0) {
		mg__context_set_ready(c);
	} else {
		mg__context_set_failed(c, (int)code, "%s (through %s)", text ? text : "",
		                       v->via_name);
	}
}

/* Thread: broker. */
static void via_reply_cb(void *arg, struct mg_msg *m)
{
	struct via_req *v = arg;
	struct mg_router *r;
	uint32_t handle;

	pthread_mutex_lock(&v->lock);
	/* A live answer must come from the gateway itself. */
	if (!mg_msg_is_dead(m) && mg_msg_src(m) != v->via_id) {
		pthread_mutex_unlock(&v->lock);
		mg_msg_free(m);
		return;
	}
	if (!v->answered && v->c != NULL)
		via_answer(v, m);
	v->answered = true;
	r = v->router;
	handle = v->handle;
	pthread_mutex_unlock(&v->lock);
	mg_msg_free(m);
	/* v may be freed from here on. */
	mg_router_del_handler(r, handle);
}

static void via_free(struct mg_context *c)
{
	struct via_req *v = c->conn;

	if (v == NULL)
		return;
	pthread_mutex_lock(&v->lock);
	v->c = NULL;
	pthread_mutex_unlock(&v->lock);
	/* Waits for a running callback; the lock round trip below covers one
	 * that removed the handler itself. */
	mg_router_del_handler(v->router, v->handle);
	pthread_mutex_lock(&v->lock);
	pthread_mutex_unlock(&v->lock);
	pthread_mutex_destroy(&v->lock);
	mg__free(v);
	c->conn = NULL;
}

static const struct mg_conn_ops via_ops = {
        .force = NULL,
        .reap = NULL,
        .free = via_free,
};

/* The mg.connect call: [name, chain 0, [id, options]], built in one
 * buffer whose room is reserved before the options go in, so no copy of
 * a password is left behind by a reallocation.  The name is the one the
 * master gave the context. */
static int connect_msg(const struct mg_connect_opts *opts, const char *name, uint32_t id,
                       struct mg_msg **mp)
{
	struct mg_connect_opts no = *opts, *o = &no;
	struct mg_buf b;
	struct mg_mpw w;
	int r;

	mg__buf_init(&b, MAX_OPTS_BYTES);
	mg__mpw_init(&w, &b);
	mg__mpw_array(&w, 3);
	mg__mpw_str(&w, CONNECT_FN, strlen(CONNECT_FN));
	mg__mpw_int(&w, 0);
	mg__mpw_array(&w, 2);
	mg__mpw_uint(&w, id);
	no.name = name;
	if ((r = w.err) != 0 || (r = mg__via_opts_encode(o, &b)) != 0) {
		explicit_bzero(b.data, b.cap);
		mg__buf_fini(&b);
		return r;
	}
	if ((r = mg__msg_adopt(b.data, b.len, mp)) == 0)
		(*mp)->wipe = true;
	return r;
}

void mg__via_start(struct mg_context *c, const struct mg_connect_opts *o)
{
	struct mg_router *r = c->router;
	struct mg_context *via = o->via;
	struct mg_handler *h = NULL;
	struct via_req *v;
	struct mg_msg *m = NULL;
	int rc;

	if ((v = mg__calloc(1, sizeof(*v))) == NULL || (h = mg__calloc(1, sizeof(*h))) == NULL) {
		mg__free(v);
		mg__context_set_failed(c, -ENOMEM, "%s: out of memory", c->name);
		return;
	}
	pthread_mutex_init(&v->lock, NULL);
	v->c = c;
	v->router = r;
	v->via_id = via->id;
	snprintf(v->via_name, sizeof(v->via_name), "%s", via->name);
	/* Bound to the gateway: losing it sends this handler a dead message. */
	h->policy = MG_POLICY_ANY;
	h->cb = via_reply_cb;
	h->arg = v;
	h->respondent = via->id;
	if ((rc = mg__router_register(r, h, 0)) != 0) {
		mg__free(h);
		pthread_mutex_destroy(&v->lock);
		mg__free(v);
		mg__context_set_failed(c, rc, "%s: %s", c->name, mg_strerror(rc));
		return;
	}
	v->handle = h->handle;
	c->ops = &via_ops;
	c->conn = v;
	if ((rc = connect_msg(o, c->name, c->id, &m)) != 0) {
		mg__context_set_failed(c, rc, "%s: %s", c->name, mg_strerror(rc));
		return;
	}
	mg_msg_set_reply_to(m, v->handle);
	/* A failure comes back as a dead message to the handler. */
	mg_router_send(r, via->id, MG_HANDLE_CALL_FUNCTION, m);
}

/* ------------------------------------------------------------------------ */
/* Gateway side. */

/* Where the answer goes once the connect finishes. */
struct deferred {
	struct mg_router *router;
	uint32_t src, reply_to;
};

/* Contexts this gateway started for its parent.  They stay until gone,
 * then are freed by a later mg.connect (on the dispatcher thread, where
 * freeing may wait). */
static pthread_mutex_t *const started_lock = &mg__fork_locks[MG_FORK_LOCK_VIA];
static struct mg_context **started;
static size_t nstarted, started_cap;

static void sweep_gone(void)
{
	struct mg_context *gone[64];
	size_t i, n = 0;

	pthread_mutex_lock(started_lock);
	for (i = 0; i < nstarted && n < 64;) {
		if (mg_context_is_gone(started[i])) {
			gone[n++] = started[i];
			started[i] = started[--nstarted];
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(started_lock);
	for (i = 0; i < n; i++)
		mg_context_free(gone[i]);
}

static int remember(struct mg_context *c)
{
	int rc = 0;

	pthread_mutex_lock(started_lock);
	if (nstarted == started_cap) {
		size_t ncap = started_cap ? started_cap * 2 : 16;
		struct mg_context **n = mg__realloc(started, ncap * sizeof(*n));
		if (n == NULL)
			rc = -ENOMEM;
		else {
			started = n;
			started_cap = ncap;
		}
	}
	if (rc == 0)
		started[nstarted++] = c;
	pthread_mutex_unlock(started_lock);
	return rc;
}

void mg__via_forget(void)
{
	/* The entries are the parent's contexts, on a router whose threads
	 * do not exist here: drop them unseen. */
	pthread_mutex_lock(started_lock);
	started = NULL;
	nstarted = started_cap = 0;
	pthread_mutex_unlock(started_lock);
}

/* The connect finished: answer the parent.  Thread: broker. */
static void answer_cb(void *arg, struct mg_context *c, int code, const char *text)
{
	struct deferred *d = arg;
	struct mg_msg *m;

	if (mg_msg_pack(&m, "(is)", (int64_t)code, text ? text : "") == 0)
		mg_router_send(d->router, d->src, d->reply_to, m);
	mg__free(d);
}

/* Zeroes the options' bytes in the call message, password included, once
 * they were decoded: the message itself lives on until the dispatcher
 * frees it. */
static void wipe_view(struct mg_call *call, const void *p, size_t n)
{
	const uint8_t *base = mg_msg_data(call->msg);

	if (n > 0 && (const uint8_t *)p >= base &&
	    (const uint8_t *)p + n <= base + mg_msg_len(call->msg))
		explicit_bzero((uint8_t *)mg_msg_data_mut(call->msg) + ((const uint8_t *)p - base),
		               n);
}

static int connect_fn(struct mg_call *call)
{
	struct mg_router *r = mg_call_router(call);
	struct mg_via_opts v;
	struct mg_context *c;
	struct deferred *d = NULL;
	const void *blob;
	char why[160];
	uint32_t reply_to;
	uint64_t id;
	size_t bloblen;
	int rc;

	if (mg_call_args(call, "uv", &id, &blob, &bloblen) != 0)
		return -1;
	if (bloblen > MAX_OPTS_BYTES) {
		wipe_view(call, blob, bloblen);
		return mg_call_fail(call, MG_ERR_ARGS, "the options take more than %u bytes",
		                    MAX_OPTS_BYTES);
	}
	rc = mg__via_opts_decode(blob, bloblen, &v, why, sizeof(why));
	wipe_view(call, blob, bloblen);
	if (rc == 0 && (id == 0 || id >= UINT32_MAX)) {
		rc = MG_EARGS;
		snprintf(why, sizeof(why), "bad context id");
	}
	if (rc == 0 && (d = mg__malloc(sizeof(*d))) == NULL) {
		rc = -ENOMEM;
		snprintf(why, sizeof(why), "out of memory");
	}
	if (rc != 0) {
		mg__via_opts_fini(&v);
		return mg_call_fail(call, rc == -ENOMEM ? MG_ERR_CALL : MG_ERR_ARGS, "%s", why);
	}
	sweep_gone();
	reply_to = call->msg->hdr.reply_to;
	d->router = r;
	d->src = call->msg->hdr.src_id;
	d->reply_to = reply_to;
	/* The methods copy what they keep (the password into the prompt)
	 * before the start returns: the decoded options go right after. */
	rc = mg__connect_start_id(r, &v.o, (uint32_t)id, reply_to ? answer_cb : NULL, d, &c);
	mg__via_opts_fini(&v);
	if (rc != 0 || reply_to == 0)
		mg__free(d);
	if (rc != 0)
		return mg_call_return(call, "(is)", (int64_t)rc, mg_strerror(rc));
	/* The answer is sent by answer_cb (which frees d, maybe before the
	 * start returned), not by the dispatcher. */
	mg__call_defer(call);
	if (remember(c) != 0)
		mg__warn("%s: cannot track context %s; it will not be freed", r->name, c->name);
	return 0;
}

__attribute__((constructor)) static void via_init(void)
{
	mg_export(CONNECT_FN, connect_fn);
}
