/*
 * sender.c: a (context, handle) address to stream messages to.  Closing it
 * sends a dead message, so the receiving end learns nothing more comes.
 */
#include <errno.h>

#include "internal.h"

struct mg_sender {
	struct mg_router *router; /* holds a reference */
	uint32_t context_id;
	uint32_t handle;
	atomic_bool closed;
};

int mg_sender_new(struct mg_router *r, uint32_t context_id, uint32_t handle,
                  struct mg_sender **senderp)
{
	struct mg_sender *s = mg__calloc(1, sizeof(*s));

	if (s == NULL)
		return -ENOMEM;
	mg__router_ref(r);
	s->router = r;
	s->context_id = context_id;
	s->handle = handle;
	*senderp = s;
	return 0;
}

uint32_t mg_sender_context(const struct mg_sender *s)
{
	return s->context_id;
}

uint32_t mg_sender_handle(const struct mg_sender *s)
{
	return s->handle;
}

int mg_sender_send(struct mg_sender *s, struct mg_msg *msg)
{
	if (atomic_load(&s->closed)) {
		mg_msg_free(msg);
		return MG_ECLOSED;
	}
	return mg_router_send(s->router, s->context_id, s->handle, msg);
}

int mg_sender_sendf(struct mg_sender *s, const char *fmt, ...)
{
	struct mg_msg *m;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = mg_msg_vpack(&m, fmt, ap);
	va_end(ap);
	if (r != 0)
		return r;
	return mg_sender_send(s, m);
}

int mg_sender_close(struct mg_sender *s)
{
	struct mg_msg *m;
	int r;

	if (atomic_exchange(&s->closed, true))
		return 0;
	if ((r = mg__msg_make_dead(MG_ECLOSED, "sender closed", &m)) != 0)
		return r;
	return mg_router_send(s->router, s->context_id, s->handle, m);
}

void mg_sender_free(struct mg_sender *s)
{
	if (s == NULL)
		return;
	mg__router_unref(s->router);
	mg__free(s);
}
