/*
 * msg_fmt.c: MessagePack payloads on messages, through the format-string
 * engine of wire/fmt.c.  Sender references read from a message are bound
 * to the router that delivered it.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "wire/fmt.h"

static int sender_ref(void *arg, const void *sender, uint32_t *ctxp, uint32_t *handlep)
{
	const struct mg_sender *s = sender;

	if (s == NULL)
		return MG_EFORMAT;
	*ctxp = mg_sender_context(s);
	*handlep = mg_sender_handle(s);
	return 0;
}

static int sender_new(void *arg, uint32_t ctx, uint32_t handle, void **senderp)
{
	struct mg_msg *m = arg;
	struct mg_sender *s;
	int r;

	if (m->router == NULL)
		return MG_EFORMAT; /* not delivered by a router: nothing to send through */
	if ((r = mg_sender_new(m->router, ctx, handle, &s)) != 0)
		return r;
	*senderp = s;
	return 0;
}

static void sender_free(void *arg, void *sender)
{
	mg_sender_free(sender);
}

static char *str_copy(void *arg, const char *p, size_t n)
{
	return mg__msg_strcopy(arg, p, n);
}

static void hooks_init(struct mg_fmt_hooks *h, struct mg_msg *m)
{
	h->arg = m;
	h->sender_ref = sender_ref;
	h->sender_new = sender_new;
	h->sender_free = sender_free;
	h->str_copy = str_copy;
}

int mg_msg_vappend(struct mg_msg *msg, const char *fmt, va_list ap)
{
	struct mg_fmt_hooks hooks;
	va_list cp;
	int r;

	hooks_init(&hooks, msg);
	va_copy(cp, ap);
	r = mg__fmt_vpack(&msg->payload, fmt, &cp, &hooks);
	va_end(cp);
	msg->hdr.len = (uint32_t)msg->payload.len;
	msg->hdr.flags = MG_ENC_MSGPACK;
	return r;
}

int mg_msg_append(struct mg_msg *msg, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = mg_msg_vappend(msg, fmt, ap);
	va_end(ap);
	return r;
}

int mg_msg_vpack(struct mg_msg **msgp, const char *fmt, va_list ap)
{
	struct mg_msg *m;
	int r;

	if ((r = mg_msg_new(&m)) != 0)
		return r;
	if ((r = mg_msg_vappend(m, fmt, ap)) != 0) {
		mg_msg_free(m);
		return r;
	}
	*msgp = m;
	return 0;
}

int mg_msg_pack(struct mg_msg **msgp, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = mg_msg_vpack(msgp, fmt, ap);
	va_end(ap);
	return r;
}

int mg_msg_vread(struct mg_msg *msg, const char *fmt, va_list ap)
{
	struct mg_fmt_hooks hooks;
	va_list cp;
	int r;

	hooks_init(&hooks, msg);
	va_copy(cp, ap);
	r = mg__fmt_vunpack(msg->payload.data, msg->payload.len, &msg->rpos, fmt, &cp, &hooks);
	va_end(cp);
	return r;
}

int mg_msg_read(struct mg_msg *msg, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = mg_msg_vread(msg, fmt, ap);
	va_end(ap);
	return r;
}

int mg__msg_make_dead(int code, const char *reason, struct mg_msg **msgp)
{
	struct mg_msg *m;
	int r;

	if ((r = mg_msg_pack(&m, "(is)", (int64_t)code, reason)) != 0)
		return r;
	m->hdr.reply_to = MG_HANDLE_IS_DEAD;
	*msgp = m;
	return 0;
}

int mg_msg_dead_reason(struct mg_msg *msg, int *codep, const char **reasonp)
{
	size_t saved = msg->rpos;
	const char *reason;
	int64_t code;

	if (!mg_msg_is_dead(msg))
		return MG_EDECODE;
	msg->rpos = 0;
	if (mg_msg_read(msg, "(is)", &code, &reason) != 0 || code < INT32_MIN || code > 0) {
		msg->rpos = saved;
		return MG_EDECODE;
	}
	msg->rpos = saved;
	*codep = (int)code;
	*reasonp = reason ? reason : "";
	return 0;
}
