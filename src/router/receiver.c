/*
 * receiver.c: a handle whose messages queue up for threads to collect.
 * The router pushes from whichever thread routed the message; waiters
 * sleep on a wake word (core.h) with a monotonic deadline: a call's reply
 * wakes its caller with one futex call.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

int mg_receiver_new(struct mg_router *r, uint32_t respondent, int policy, struct mg_receiver **rxp)
{
	return mg__receiver_new_at(r, 0, respondent, policy, rxp);
}

int mg__receiver_new_at(struct mg_router *r, uint32_t handle, uint32_t respondent, int policy,
                        struct mg_receiver **rxp)
{
	struct mg_receiver *rx;
	struct mg_handler *h;
	int rc;

	if (policy != MG_POLICY_ANY && policy != MG_POLICY_PARENT)
		return -EINVAL;
	if (atomic_load(&r->stopping))
		return MG_ESHUTDOWN;
	rx = mg__calloc(1, sizeof(*rx));
	h = mg__calloc(1, sizeof(*h));
	if (rx == NULL || h == NULL) {
		mg__free(rx);
		mg__free(h);
		return -ENOMEM;
	}
	pthread_mutex_init(&rx->lock, NULL);
	mg__ring_init(&rx->q);
	h->policy = policy;
	h->rx = rx;
	h->respondent = respondent;
	if ((rc = mg__router_register(r, h, handle)) != 0) {
		pthread_mutex_destroy(&rx->lock);
		mg__free(rx);
		mg__free(h);
		return rc;
	}
	mg__router_ref(r);
	atomic_init(&rx->refs, 1);
	rx->router = r;
	rx->handle = h->handle;
	*rxp = rx;
	return 0;
}

uint32_t mg_receiver_handle(const struct mg_receiver *rx)
{
	return rx->handle;
}

/* Wakes a waiter that reads a stream itself (it sleeps in ppoll(), not on
 * the wake word), unless this is that thread.  Called locked: the waiter
 * holds its stream until it has cleared rx->reading under the lock. */
static void kick_reader(struct mg_receiver *rx)
{
	if (rx->reading != NULL && !mg__stream_input_held_here(rx->reading))
		mg__stream_input_kick(rx->reading);
}

int mg__receiver_try_push(struct mg_receiver *rx, struct mg_msg *m)
{
	struct mg_select *sel;
	int rc;

	pthread_mutex_lock(&rx->lock);
	rc = rx->closed ? MG_ECLOSED : mg__ring_push(&rx->q, m);
	sel = rx->sel;
	if (rc == 0)
		kick_reader(rx);
	pthread_mutex_unlock(&rx->lock);
	if (rc != 0)
		return rc;
	/* Woken unlocked, so the woken thread does not block at once on the
	 * lock we still held. */
	mg__ww_wake(&rx->wake, false);
	if (sel != NULL)
		mg__select_notify(sel, rx);
	return 0;
}

void mg__receiver_push(struct mg_receiver *rx, struct mg_msg *m)
{
	int rc = mg__receiver_try_push(rx, m);

	if (rc != 0) {
		/* Closed between the router's look-up and now. */
		mg__router_send_dead(rx->router, &m->hdr, rc, "handle %u at context %u: %s",
		                     rx->handle, rx->router->id, mg_strerror(rc));
		mg_msg_free(m);
	}
}

void mg__receiver_shutdown(struct mg_receiver *rx)
{
	struct mg_select *sel;

	pthread_mutex_lock(&rx->lock);
	rx->shutdown = true;
	sel = rx->sel;
	kick_reader(rx);
	pthread_mutex_unlock(&rx->lock);
	mg__ww_wake(&rx->wake, true);
	if (sel != NULL)
		mg__select_notify(sel, rx);
}

int mg__receiver_dead_code(struct mg_msg *m)
{
	const char *reason;
	int code;

	if (mg_msg_dead_reason(m, &code, &reason) != 0) {
		code = MG_EDISCONNECT;
		reason = "malformed dead message";
	}
	if (code >= 0)
		code = MG_ECLOSED;
	mg__set_errdetail("%s", reason);
	mg_msg_free(m);
	return code;
}

/* Takes the next queued item or the receiver's terminal state.  Called
 * locked; returns -EAGAIN when the caller should wait. */
static int take(struct mg_receiver *rx, struct mg_msg **mp)
{
	struct mg_msg *m = mg__ring_pop(&rx->q);

	if (m != NULL) {
		*mp = m;
		return 0;
	}
	if (rx->closed)
		return MG_ECLOSED;
	if (rx->shutdown)
		return MG_ESHUTDOWN;
	return -EAGAIN;
}

static int finish(int rc, struct mg_msg *m, struct mg_msg **msgp)
{
	if (rc != 0) {
		if (rc == MG_ECLOSED)
			mg__set_errdetail("receiver closed");
		else if (rc == MG_ESHUTDOWN)
			mg__set_errdetail("router shut down");
		return rc;
	}
	if (mg_msg_is_dead(m))
		return mg__receiver_dead_code(m);
	*msgp = m;
	return 0;
}

int mg__receiver_try_get(struct mg_receiver *rx, struct mg_msg **msgp, bool *morep)
{
	struct mg_msg *m = NULL;
	int rc;

	pthread_mutex_lock(&rx->lock);
	rc = take(rx, &m);
	*morep = rx->q.count > 0;
	pthread_mutex_unlock(&rx->lock);
	if (rc == -EAGAIN)
		return rc;
	return finish(rc, m, msgp);
}

/*
 * The stream the message a waiter on rx wants will most likely come by:
 * the one routing to the receiver's respondent (a call's reply), else the
 * parent's (a child's calls), else the router's only stream.  Returns it
 * referenced, or NULL: on the broker thread, which reads every stream
 * anyway, or when there is no good guess.
 */
static struct mg_stream *likely_stream(struct mg_receiver *rx)
{
	struct mg_router *r = rx->router;
	struct mg_handler *h;
	struct mg_stream *s = NULL;

	if (atomic_load(&r->stopping))
		return NULL;
	pthread_mutex_lock(&r->lock);
	h = mg__idmap_get(&r->handlers, rx->handle);
	if (h != NULL && h->rx == rx && h->respondent != MG_NO_RESPONDENT)
		s = mg__idmap_get(&r->routes, h->respondent);
	if (s == NULL)
		s = r->parent;
	if (s == NULL && r->nstreams == 1)
		s = r->streams[0];
	if (s != NULL)
		mg__stream_ref(s);
	pthread_mutex_unlock(&r->lock);
	if (s != NULL && mg__broker_on_thread(s->broker)) {
		mg__stream_unref(s);
		s = NULL;
	}
	return s;
}

/*
 * Waits for rx's next item.  When a stream is the likely way in and nobody
 * works on its input, this thread takes the input and sleeps on the fd
 * itself (core.h: mg__stream_input_take()), delivering what arrives: the
 * message it waits for then wakes it directly, with no hand-off from the
 * broker.  Otherwise it sleeps on the wake word.
 */
int mg_receiver_get(struct mg_receiver *rx, int timeout_ms, struct mg_msg **msgp)
{
	struct mg_msg *m = NULL;
	struct mg_stream *s = NULL;
	struct timespec deadline;
	bool looked = false, held = false;
	unsigned seen;
	int rc;

	if (timeout_ms >= 0)
		mg__deadline(&deadline, timeout_ms);
	pthread_mutex_lock(&rx->lock);
	while ((rc = take(rx, &m)) == -EAGAIN && timeout_ms != 0) {
		if (!looked) {
			/* Looked up only when there is a wait: it takes the
			 * router lock, which comes before ours. */
			looked = true;
			pthread_mutex_unlock(&rx->lock);
			s = likely_stream(rx);
			pthread_mutex_lock(&rx->lock);
			continue;
		}
		if (s != NULL &&
		    (held || (rx->reading == NULL && (held = mg__stream_input_take(s))))) {
			rx->reading = s;
			pthread_mutex_unlock(&rx->lock);
			rc = mg__stream_input_wait(s, timeout_ms < 0 ? NULL : &deadline);
			pthread_mutex_lock(&rx->lock);
			rx->reading = NULL;
			if (rc == 1) {
				/* The input went back to the broker: wait as usual. */
				held = false;
				mg__stream_unref(s);
				s = NULL;
			}
		} else {
			seen = mg__ww_prepare(&rx->wake);
			pthread_mutex_unlock(&rx->lock);
			rc = mg__ww_wait(&rx->wake, seen, timeout_ms < 0 ? NULL : &deadline);
			pthread_mutex_lock(&rx->lock);
		}
		if (rc == -ETIMEDOUT) {
			rc = take(rx, &m);
			break;
		}
	}
	pthread_mutex_unlock(&rx->lock);
	if (held)
		mg__stream_input_release(s);
	mg__stream_unref(s);
	if (rc == -EAGAIN) {
		mg__set_errdetail("timed out after %d ms", timeout_ms);
		return -ETIMEDOUT;
	}
	return finish(rc, m, msgp);
}

void mg_receiver_close(struct mg_receiver *rx)
{
	struct mg_router *r = rx->router;
	struct mg_handler *h;
	struct mg_select *sel;

	pthread_mutex_lock(&r->lock);
	h = mg__idmap_get(&r->handlers, rx->handle);
	if (h != NULL && h->rx == rx)
		mg__idmap_del(&r->handlers, rx->handle);
	else
		h = NULL;
	pthread_mutex_lock(&rx->lock);
	rx->closed = true;
	sel = rx->sel;
	kick_reader(rx);
	pthread_mutex_unlock(&rx->lock);
	pthread_mutex_unlock(&r->lock);
	mg__ww_wake(&rx->wake, true);
	mg__free(h);
	if (sel != NULL)
		mg__select_notify(sel, rx);
}

void mg__receiver_ref(struct mg_receiver *rx)
{
	atomic_fetch_add(&rx->refs, 1);
}

void mg__receiver_unref(struct mg_receiver *rx)
{
	struct mg_msg *m;

	if (atomic_fetch_sub(&rx->refs, 1) != 1)
		return;
	while ((m = mg__ring_pop(&rx->q)) != NULL)
		mg_msg_free(m);
	mg__ring_fini(&rx->q);
	pthread_mutex_destroy(&rx->lock);
	mg__router_unref(rx->router);
	mg__free(rx);
}

void mg_receiver_free(struct mg_receiver *rx)
{
	if (rx == NULL)
		return;
	mg_receiver_close(rx);
	if (rx->sel != NULL)
		mg_select_remove(rx->sel, rx);
	mg__receiver_unref(rx);
}

int mg_receiver_to_sender(struct mg_receiver *rx, struct mg_sender **senderp)
{
	return mg_sender_new(rx->router, rx->router->id, rx->handle, senderp);
}
