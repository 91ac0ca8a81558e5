/*
 * call.c: the caller's side of remote calls.  A call is one CALL_FUNCTION
 * message; its reply comes to a receiver bound to the callee, so a callee
 * that dies wakes the caller at once with MG_EDISCONNECT.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "context/calls.h"
#include "wire/msgpack.h"

struct mg_chain {
	struct mg_context *ctx;
	int64_t id;
};

static atomic_llong next_chain = 1;

char *mg__call_wrap_fmt(const char *fmt, char *small, size_t size)
{
	size_t flen = strlen(fmt);
	char *w = small;

	if (flen + 3 > size && (w = mg__malloc(flen + 3)) == NULL)
		return NULL;
	w[0] = '(';
	memcpy(w + 1, fmt, flen);
	w[flen + 1] = ')';
	w[flen + 2] = '\0';
	return w;
}

/* A function name must fit the callee's table. */
static int check_name(struct mg_context *c, const char *fn, size_t n)
{
	if (n > 0 && n < MG_FUNCTION_NAME_MAX)
		return 0;
	mg__error_set_local(MG_ELIMIT, MG_ERR_ARGS, c->name, fn ? fn : "",
	                    "function name of %zu bytes: the limit is %d", n,
	                    MG_FUNCTION_NAME_MAX - 1);
	return MG_ELIMIT;
}

/* Builds the CALL_FUNCTION message for fn(fmt...). */
static int build(struct mg_context *c, const char *fn, int64_t chain, const char *fmt, va_list ap,
                 struct mg_msg **msgp)
{
	char small[256], *wrapped;
	size_t n = fn ? strlen(fn) : 0;
	struct mg_msg *m;
	int rc;

	if ((rc = check_name(c, fn, n)) != 0)
		return rc;
	if ((wrapped = mg__call_wrap_fmt(fmt ? fmt : "", small, sizeof(small))) == NULL)
		return -ENOMEM;
	if ((rc = mg_msg_pack(&m, "aSi", (size_t)3, fn, n, chain)) == 0 &&
	    (rc = mg_msg_vappend(m, wrapped, ap)) != 0)
		mg_msg_free(m);
	if (wrapped != small)
		mg__free(wrapped);
	if (rc == 0)
		*msgp = m;
	return rc;
}

/* Sends a built CALL_FUNCTION message (taking ownership of it), with a
 * reply receiver bound to the callee when rxp is not NULL. */
static int send_built(struct mg_context *c, struct mg_msg *m, struct mg_receiver **rxp)
{
	struct mg_receiver *rx = NULL;
	int rc;

	if (rxp != NULL) {
		if ((rc = mg_receiver_new(c->router, c->id, MG_POLICY_ANY, &rx)) != 0) {
			mg_msg_free(m);
			return rc;
		}
		mg_msg_set_reply_to(m, mg_receiver_handle(rx));
	}
	if ((rc = mg_router_send(c->router, c->id, MG_HANDLE_CALL_FUNCTION, m)) != 0) {
		mg_receiver_free(rx);
		return rc;
	}
	if (rxp != NULL)
		*rxp = rx;
	return 0;
}

static int send_call(struct mg_context *c, const char *fn, int64_t chain, bool want_reply,
                     struct mg_receiver **rxp, const char *fmt, va_list ap)
{
	struct mg_msg *m;
	int rc;

	if ((rc = build(c, fn, chain, fmt, ap, &m)) != 0)
		return rc;
	return send_built(c, m, want_reply ? rxp : NULL);
}

int mg_call_packed_async(struct mg_context *c, const char *fn, const void *args, size_t len,
                         struct mg_receiver **rxp)
{
	size_t n = fn ? strlen(fn) : 0;
	struct mg_msg *m;
	struct mg_mpr r;
	int rc;

	/* The arguments must be exactly one MessagePack array: the callee
	 * reads them as the call's tuple. */
	mg__mpr_init(&r, args, len);
	if (args == NULL || mg__mp_check_one(args, len) != 0 || mg__mpr_peek(&r) != MG_MP_ARRAY)
		return -EINVAL;
	if ((rc = check_name(c, fn, n)) != 0)
		return rc;
	if ((rc = mg_msg_pack(&m, "aSiv", (size_t)3, fn, n, (int64_t)0, args, len)) != 0)
		return rc;
	return send_built(c, m, rxp);
}

int mg_call_result(struct mg_msg *reply)
{
	int rc;

	if (!mg__reply_is_error(reply))
		return 0;
	rc = mg__error_from_reply(reply);
	mg_msg_free(reply);
	return rc;
}

int mg_call_wait(struct mg_receiver *rx, int timeout_ms, struct mg_msg **replyp)
{
	struct mg_msg *m;
	int rc = mg_receiver_get(rx, timeout_ms, &m);

	if (rc != 0) {
		mg__error_set_local(rc, "mitogen.ChannelError", "", "", "%s", mg_errdetail());
		return rc;
	}
	if ((rc = mg_call_result(m)) != 0)
		return rc;
	*replyp = m;
	return 0;
}

int mg_vcall(struct mg_context *c, const char *fn, struct mg_msg **replyp, const char *fmt,
             va_list ap)
{
	struct mg_receiver *rx;
	int rc;

	if ((rc = send_call(c, fn, 0, true, &rx, fmt, ap)) != 0)
		return rc;
	rc = mg_call_wait(rx, -1, replyp);
	mg_receiver_free(rx);
	return rc;
}

int mg_call(struct mg_context *c, const char *fn, struct mg_msg **replyp, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = mg_vcall(c, fn, replyp, fmt, ap);
	va_end(ap);
	return rc;
}

int mg_call_async(struct mg_context *c, const char *fn, struct mg_receiver **rxp, const char *fmt,
                  ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = send_call(c, fn, 0, true, rxp, fmt, ap);
	va_end(ap);
	return rc;
}

int mg_call_no_reply(struct mg_context *c, const char *fn, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = send_call(c, fn, 0, false, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

/* ---- chains ------------------------------------------------------------- */

int mg_chain_new(struct mg_context *c, struct mg_chain **chainp)
{
	struct mg_chain *ch = mg__calloc(1, sizeof(*ch));

	if (ch == NULL)
		return -ENOMEM;
	ch->ctx = c;
	ch->id = atomic_fetch_add(&next_chain, 1);
	*chainp = ch;
	return 0;
}

int mg_chain_call_no_reply(struct mg_chain *ch, const char *fn, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = send_call(ch->ctx, fn, ch->id, false, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

int mg_chain_call(struct mg_chain *ch, const char *fn, struct mg_msg **replyp, const char *fmt, ...)
{
	struct mg_receiver *rx;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = send_call(ch->ctx, fn, ch->id, true, &rx, fmt, ap);
	va_end(ap);
	if (rc != 0)
		return rc;
	rc = mg_call_wait(rx, -1, replyp);
	mg_receiver_free(rx);
	return rc;
}

/* Tells the callee to forget the chain's failure, if any. */
static void forget(struct mg_chain *ch)
{
	if (!mg_context_is_gone(ch->ctx))
		mg_call_no_reply(ch->ctx, MG_FORGET_CHAIN, "i", ch->id);
}

void mg_chain_reset(struct mg_chain *ch)
{
	forget(ch);
	ch->id = atomic_fetch_add(&next_chain, 1);
}

void mg_chain_free(struct mg_chain *ch)
{
	if (ch == NULL)
		return;
	forget(ch);
	mg__free(ch);
}
