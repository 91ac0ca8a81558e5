/*
 * context.c: the parent's handle on a child context: its state through
 * connect, ready and gone; waiting for readiness; shutdown with a grace
 * period and then force; and noticing when it disconnects.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "context/calls.h"

#define DEFAULT_SHUTDOWN_GRACE_MS 5000

static void context_unref(struct mg_context *c);

/* A new reference to the context r knows as id, or NULL. */
static struct mg_context *find_ref(struct mg_router *r, uint32_t id)
{
	struct mg_context *c;

	pthread_mutex_lock(&r->lock);
	c = mg__idmap_get(&r->contexts, id);
	if (c != NULL)
		atomic_fetch_add(&c->refs, 1);
	pthread_mutex_unlock(&r->lock);
	return c;
}

static void on_disconnect(void *arg, uint32_t id)
{
	struct mg_router *r = arg;
	struct mg_context *c = find_ref(r, id);

	mg__child_lost(r, id);
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	if (c->state == MG_CTX_CONNECTING) {
		pthread_mutex_unlock(&c->lock);
		mg__context_set_failed(c, MG_EDISCONNECT,
		                       "context %s disconnected while connecting", c->name);
	} else {
		c->state = MG_CTX_GONE;
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
		mg__debug("%s: context %s (%u) is gone", r->name, c->name, id);
	}
	context_unref(c);
}

int mg__context_services(struct mg_router *r)
{
	bool first;
	int rc = 0;

	pthread_mutex_lock(&r->lock);
	first = !r->context_services;
	r->context_services = true;
	pthread_mutex_unlock(&r->lock);
	if (!first)
		return 0;
	mg__router_set_disconnect_cb(r, on_disconnect, r);
	if (r->id == 0)
		rc = mg__ids_listen(r);
	if (rc == 0)
		rc = mg__logfwd_listen(r);
	if (rc == -EEXIST)
		rc = 0;
	return rc;
}

/* The name logs and errors use when the caller gave none, as Mitogen's:
 * "ssh.[user@]host[:port]", "sudo.user" (su, doas alike), "local.ID". */
static void default_name(const struct mg_connect_opts *o, uint32_t id, char *name, size_t size)
{
	const char *user = o->username;

	if (o->name != NULL && o->name[0] != '\0') {
		snprintf(name, size, "%s", o->name);
		return;
	}
	switch (o->method) {
	case MG_METHOD_SSH:
		snprintf(name, size, "ssh.%s%s%s", user ? user : "", user ? "@" : "",
		         o->hostname ? o->hostname : "?");
		if (o->port > 0)
			snprintf(name + strlen(name), size - strlen(name), ":%d", o->port);
		break;
	case MG_METHOD_SUDO:
	case MG_METHOD_SU:
	case MG_METHOD_DOAS:
		snprintf(name, size, "%s.%s",
		         o->method == MG_METHOD_SUDO ? "sudo"
		         : o->method == MG_METHOD_SU ? "su"
		                                     : "doas",
		         user ? user : "root");
		break;
	default:
		snprintf(name, size, "%s.%u", o->method == MG_METHOD_FORK ? "fork" : "local", id);
	}
}

int mg__context_new(struct mg_router *r, const struct mg_connect_opts *o, uint32_t id,
                    struct mg_context **cp)
{
	struct mg_context *c;
	pthread_condattr_t ca;
	char name[MG_NAME_MAX];
	int rc;

	if ((rc = mg__context_services(r)) != 0)
		return rc;
	default_name(o, id, name, sizeof(name));
	if ((c = mg__calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	atomic_init(&c->refs, 1);
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	c->id = id;
	c->method = o->method;
	c->state = MG_CTX_CONNECTING;
	if ((c->name = mg__strdup(name)) == NULL ||
	    (rc = mg_receiver_new(r, MG_NO_RESPONDENT, MG_POLICY_ANY, &c->ready_rx)) != 0) {
		rc = rc ? rc : -ENOMEM;
		goto fail;
	}
	pthread_mutex_lock(&r->lock);
	rc = mg__idmap_get(&r->contexts, id) ? -EEXIST : mg__idmap_put(&r->contexts, id, c);
	pthread_mutex_unlock(&r->lock);
	if (rc != 0)
		goto fail;
	mg__router_ref(r);
	c->router = r;
	if (o->via != NULL) {
		atomic_fetch_add(&o->via->refs, 1);
		c->via = o->via;
	}
	*cp = c;
	return 0;
fail:
	mg_receiver_free(c->ready_rx);
	mg__free(c->name);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	mg__free(c);
	return rc;
}

void mg__context_set_ready(struct mg_context *c)
{
	struct mg_msg *m;

	pthread_mutex_lock(&c->lock);
	if (c->state != MG_CTX_CONNECTING) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	c->state = MG_CTX_READY;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	if (mg_msg_pack(&m, "u", (uint64_t)c->id) == 0)
		mg_router_send(c->router, c->router->id, mg_receiver_handle(c->ready_rx), m);
	mg__debug("%s: context %s (%u) ready", c->router->name, c->name, c->id);
}

void mg__context_set_failed(struct mg_context *c, int code, const char *fmt, ...)
{
	struct mg_frame_hdr h;
	va_list ap;

	pthread_mutex_lock(&c->lock);
	if (c->state != MG_CTX_CONNECTING) {
		pthread_mutex_unlock(&c->lock);
		return;
	}
	c->state = MG_CTX_FAILED;
	c->error = code < 0 ? code : MG_ECONNECT;
	va_start(ap, fmt);
	vsnprintf(c->errtext, sizeof(c->errtext), fmt, ap);
	va_end(ap);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	memset(&h, 0, sizeof(h));
	h.src_id = c->router->id;
	h.reply_to = mg_receiver_handle(c->ready_rx);
	mg__router_send_dead(c->router, &h, c->error, "%s", c->errtext);
	mg__info("%s: connecting %s failed: %s", c->router->name, c->name, c->errtext);
}

int mg_context_wait_ready(struct mg_context *c, int timeout_ms)
{
	struct timespec deadline;
	int rc = 0;

	if (timeout_ms >= 0)
		mg__deadline(&deadline, timeout_ms);
	pthread_mutex_lock(&c->lock);
	while (c->state == MG_CTX_CONNECTING && rc == 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&c->cond, &c->lock);
		else if (pthread_cond_timedwait(&c->cond, &c->lock, &deadline) == ETIMEDOUT)
			rc = -ETIMEDOUT;
	}
	if (c->state == MG_CTX_READY)
		rc = 0;
	else if (c->state == MG_CTX_FAILED) {
		rc = c->error;
		mg__set_errdetail("%s", c->errtext);
	} else if (c->state == MG_CTX_GONE) {
		rc = MG_EDISCONNECT;
		mg__set_errdetail("context %s is gone", c->name);
	} else {
		mg__set_errdetail("connecting %s: still waiting after %d ms", c->name, timeout_ms);
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

struct mg_receiver *mg_context_ready_receiver(struct mg_context *c)
{
	return c->ready_rx;
}

uint32_t mg_context_id(const struct mg_context *c)
{
	return c->id;
}

const char *mg_context_name(const struct mg_context *c)
{
	return c->name;
}

struct mg_router *mg_context_router(const struct mg_context *c)
{
	return c->router;
}

struct mg_context *mg_context_via(const struct mg_context *c)
{
	return c->via;
}

int mg_context_lookup(struct mg_router *r, uint32_t id, struct mg_context **cp)
{
	struct mg_context *c = find_ref(r, id);

	if (c == NULL)
		return -ENOENT;
	*cp = c;
	return 0;
}

void mg_context_unref(struct mg_context *c)
{
	if (c != NULL)
		context_unref(c);
}

bool mg_context_is_gone(const struct mg_context *c)
{
	struct mg_context *mc = (struct mg_context *)c;
	bool gone;

	pthread_mutex_lock(&mc->lock);
	gone = mc->state == MG_CTX_GONE || mc->state == MG_CTX_FAILED;
	pthread_mutex_unlock(&mc->lock);
	return gone;
}

/* Waits until the context is gone; false on timeout. */
static bool wait_gone(struct mg_context *c, int ms)
{
	struct timespec deadline;
	bool gone;

	mg__deadline(&deadline, ms);
	pthread_mutex_lock(&c->lock);
	while (c->state == MG_CTX_READY || c->state == MG_CTX_CONNECTING)
		if (pthread_cond_timedwait(&c->cond, &c->lock, &deadline) == ETIMEDOUT)
			break;
	gone = c->state == MG_CTX_GONE || c->state == MG_CTX_FAILED;
	pthread_mutex_unlock(&c->lock);
	return gone;
}

int mg_context_shutdown(struct mg_context *c, int wait_ms)
{
	struct mg_msg *m;
	bool gone, connecting;
	int rc = 0;

	if (wait_ms < 0)
		wait_ms = DEFAULT_SHUTDOWN_GRACE_MS;
	pthread_mutex_lock(&c->lock);
	gone = c->state == MG_CTX_GONE || c->state == MG_CTX_FAILED;
	connecting = c->state == MG_CTX_CONNECTING;
	pthread_mutex_unlock(&c->lock);
	/* Nothing there can answer yet: the connect is given up at once. */
	if (connecting)
		wait_ms = 0;
	else if (!gone && mg_msg_new(&m) == 0)
		mg_router_send(c->router, c->id, MG_HANDLE_SHUTDOWN, m);
	if (!gone && !wait_gone(c, wait_ms)) {
		mg__info("%s: %s did not shut down within %d ms: forcing it", c->router->name,
		         c->name, wait_ms);
		if (c->ops != NULL && c->ops->force != NULL)
			c->ops->force(c);
		if (!wait_gone(c, 2000))
			rc = -ETIMEDOUT;
	}
	if (c->ops != NULL && c->ops->reap != NULL && c->ops->reap(c, 2000) != 0)
		rc = -ETIMEDOUT;
	return rc;
}

static void context_unref(struct mg_context *c)
{
	struct mg_router *r = c->router;

	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	if (c->ops != NULL && c->ops->free != NULL)
		c->ops->free(c);
	if (c->via != NULL)
		context_unref(c->via);
	mg_receiver_free(c->ready_rx);
	mg__free(c->name);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	mg__router_unref(r);
	mg__free(c);
}

void mg_context_free(struct mg_context *c)
{
	struct mg_router *r;
	bool connecting;

	if (c == NULL)
		return;
	r = c->router;
	pthread_mutex_lock(&c->lock);
	connecting = c->state == MG_CTX_CONNECTING;
	pthread_mutex_unlock(&c->lock);
	/* A context still connecting has nothing to finish: force it now. */
	if (connecting && c->ops != NULL && c->ops->force != NULL)
		c->ops->force(c);
	if (!mg_context_is_gone(c))
		mg_context_shutdown(c, connecting ? 0 : 1000);
	else if (c->ops != NULL && c->ops->reap != NULL)
		c->ops->reap(c, 2000);
	pthread_mutex_lock(&r->lock);
	if (mg__idmap_get(&r->contexts, c->id) == c)
		mg__idmap_del(&r->contexts, c->id);
	pthread_mutex_unlock(&r->lock);
	context_unref(c);
}
