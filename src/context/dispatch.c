/*
 * dispatch.c: the child's side of calls.  CALL_FUNCTION messages (parent
 * authority only) queue on a receiver; one thread takes them in arrival
 * order, finds the exported function and replies with its values or an
 * error.  A chain whose call failed fails its later calls without running
 * them, until the caller forgets the chain.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "context/calls.h"
#include "wire/msgpack.h"

#define FAILED_CHAINS 256

struct failed_chain {
	uint32_t src;
	int64_t chain;
	char type[64];
	char message[512];
	char function[MG_FUNCTION_NAME_MAX];
};

static struct mg_receiver *calls_rx;
static struct mg_router *self;
static struct failed_chain failed[FAILED_CHAINS];
static unsigned failed_next;

int mg__dispatch_start(struct mg_router *r)
{
	self = r;
	return mg__receiver_new_at(r, MG_HANDLE_CALL_FUNCTION, MG_NO_RESPONDENT, MG_POLICY_PARENT,
	                           &calls_rx);
}

void mg__dispatch_stop(void)
{
	if (calls_rx != NULL)
		mg_receiver_close(calls_rx);
}

static void send_error(const struct mg_msg *call, const char *type, const char *message,
                       const char *function)
{
	struct mg_msg *m;

	if (call->hdr.reply_to == 0)
		return;
	if (mg_msg_new(&m) != 0)
		return;
	if (mg__error_encode(&m->payload, type, message, self->name, function) != 0) {
		mg_msg_free(m);
		return;
	}
	m->hdr.len = (uint32_t)m->payload.len;
	mg_router_send(self, call->hdr.src_id, call->hdr.reply_to, m);
}

static struct failed_chain *find_failed(uint32_t src, int64_t chain)
{
	unsigned i;

	for (i = 0; i < FAILED_CHAINS; i++)
		if (failed[i].chain == chain && failed[i].src == src)
			return &failed[i];
	return NULL;
}

/* Copies src into dst, cut to fit: a remembered message may be shorter than
 * the one first reported. */
static void copy_cut(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void remember_failure(uint32_t src, int64_t chain, const char *type, const char *message,
                             const char *function)
{
	/* Oldest entries go first when the table is full. */
	struct failed_chain *f = &failed[failed_next++ % FAILED_CHAINS];

	f->src = src;
	f->chain = chain;
	copy_cut(f->type, sizeof(f->type), type);
	copy_cut(f->message, sizeof(f->message), message);
	copy_cut(f->function, sizeof(f->function), function);
}

static void forget_chain(struct mg_msg *m)
{
	struct failed_chain *f;
	int64_t chain;

	if (mg_msg_read(m, "(i)", &chain) == 0 && chain != 0 &&
	    (f = find_failed(m->hdr.src_id, chain)) != NULL)
		memset(f, 0, sizeof(*f));
}

static void run(struct mg_msg *m, const char *fn, int64_t chain)
{
	struct mg_call call;
	char message[600];
	mg_export_fn f;
	int rc;

	if ((f = mg__export_find(fn)) == NULL) {
		snprintf(message, sizeof(message), "no function named \"%s\" in context %s", fn,
		         self->name);
		send_error(m, MG_ERR_NOFUNC, message, fn);
		if (chain != 0)
			remember_failure(m->hdr.src_id, chain, MG_ERR_NOFUNC, message, fn);
		return;
	}
	memset(&call, 0, sizeof(call));
	call.router = self;
	call.msg = m;
	call.function = fn;
	call.chain = chain;
	mg__crash_enter(m->hdr.src_id, m->hdr.reply_to, fn);
	rc = f(&call);
	mg__crash_leave();
	if (rc == 0 && !call.failed) {
		if (m->hdr.reply_to != 0 && !call.deferred &&
		    (call.reply != NULL || mg_msg_new(&call.reply) == 0)) {
			mg_router_send(self, m->hdr.src_id, m->hdr.reply_to, call.reply);
			call.reply = NULL;
		}
		mg_msg_free(call.reply);
		return;
	}
	mg_msg_free(call.reply);
	if (!call.failed) {
		snprintf(call.err_type, sizeof(call.err_type), "%s", MG_ERR_CALL);
		snprintf(call.err_message, sizeof(call.err_message), "%s returned %d (%s)", fn, rc,
		         mg_strerror(rc));
	}
	send_error(m, call.err_type, call.err_message, fn);
	if (chain != 0)
		remember_failure(m->hdr.src_id, chain, call.err_type, call.err_message, fn);
}

static void run_one(struct mg_msg *m)
{
	char fn[MG_FUNCTION_NAME_MAX];
	struct failed_chain *f;
	const char *name;
	size_t n, len;
	int64_t chain;

	if (mg_msg_read(m, "aSi", &n, &name, &len, &chain) != 0 || n != 3) {
		send_error(m, MG_ERR_ARGS, "malformed call message", "");
		return;
	}
	if (len == 0 || len >= sizeof(fn) || memchr(name, '\0', len) != NULL) {
		send_error(m, MG_ERR_NOFUNC, "function name empty, too long or not text", "");
		return;
	}
	memcpy(fn, name, len);
	fn[len] = '\0';
	if (strcmp(fn, MG_FORGET_CHAIN) == 0) {
		forget_chain(m);
		return;
	}
	if (chain != 0 && (f = find_failed(m->hdr.src_id, chain)) != NULL) {
		send_error(m, f->type, f->message, f->function);
		return;
	}
	run(m, fn, chain);
}

void mg__dispatch_run(void)
{
	struct mg_msg *m;

	while (mg_receiver_get(calls_rx, -1, &m) == 0) {
		run_one(m);
		mg_msg_free(m);
	}
}

/* ---- the callee's API --------------------------------------------------- */

int mg_call_args(struct mg_call *call, const char *fmt, ...)
{
	char small[256], *wrapped;
	va_list ap;
	int rc;

	if ((wrapped = mg__call_wrap_fmt(fmt, small, sizeof(small))) == NULL)
		return -ENOMEM;
	va_start(ap, fmt);
	rc = mg_msg_vread(call->msg, wrapped, ap);
	va_end(ap);
	if (wrapped != small)
		mg__free(wrapped);
	if (rc != 0) {
		/* How many came says more than the decoder's reason (a read that
		 * fails leaves given at 0). */
		size_t at = call->msg->rpos, given = 0;

		(void)mg_msg_read(call->msg, "a", &given);
		call->msg->rpos = at;
		call->failed = true;
		snprintf(call->err_type, sizeof(call->err_type), "%s", MG_ERR_ARGS);
		snprintf(call->err_message, sizeof(call->err_message),
		         "arguments do not match \"%s\" (%zu given)", fmt, given);
		return MG_EARGS;
	}
	return 0;
}

/*
 * A function returning one 'v' value that lies inside its own call message
 * (mg.echo, or any function handing an argument back as it came) gets a
 * reply that refers to those bytes instead of a copy of them: for a large
 * argument the copy would cost more than the rest of the call.  Returns 1
 * when *mp was made, 0 to pack as usual, or an error.
 */
#define VIEW_MIN ((size_t)64 << 10)

static int return_view(struct mg_call *call, const char *fmt, va_list ap, struct mg_msg **mp)
{
	const struct mg_msg *in = call->msg;
	const uint8_t *v;
	uintptr_t start;
	size_t n;
	int rc;

	if (strcmp(fmt, "v") != 0 || in == NULL)
		return 0;
	v = va_arg(ap, const void *);
	n = va_arg(ap, size_t);
	start = (uintptr_t)in->payload.data;
	if (n < VIEW_MIN || (uintptr_t)v < start || (uintptr_t)v - start > in->payload.len ||
	    n > in->payload.len - ((uintptr_t)v - start))
		return 0;
	if ((rc = mg__mp_check_one(v, n)) != 0 || (rc = mg__msg_new_view(call->msg, v, n, mp)) != 0)
		return rc;
	(*mp)->hdr.flags = MG_ENC_MSGPACK;
	return 1;
}

int mg_call_return(struct mg_call *call, const char *fmt, ...)
{
	struct mg_msg *m;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = return_view(call, fmt, ap, &m);
	va_end(ap);
	if (rc == 1) {
		rc = 0;
	} else if (rc == 0) {
		va_start(ap, fmt);
		rc = mg_msg_vpack(&m, fmt, ap);
		va_end(ap);
	}
	if (rc != 0)
		return rc;
	mg_msg_free(call->reply);
	call->reply = m;
	return 0;
}

int mg_call_fail(struct mg_call *call, const char *type, const char *fmt, ...)
{
	va_list ap;

	call->failed = true;
	snprintf(call->err_type, sizeof(call->err_type), "%s", type ? type : MG_ERR_CALL);
	va_start(ap, fmt);
	vsnprintf(call->err_message, sizeof(call->err_message), fmt, ap);
	va_end(ap);
	return -1;
}

void mg__call_defer(struct mg_call *call)
{
	call->deferred = true;
}

int mg_call_defer(struct mg_call *call, struct mg_sender **senderp)
{
	struct mg_sender *s = NULL;
	int rc;

	if (call->msg->hdr.reply_to != 0 && (rc = mg_sender_new(call->router, call->msg->hdr.src_id,
	                                                        call->msg->hdr.reply_to, &s)) != 0)
		return rc;
	call->deferred = true;
	*senderp = s;
	return 0;
}

struct mg_router *mg_call_router(struct mg_call *call)
{
	return call->router;
}

const char *mg_call_function(const struct mg_call *call)
{
	return call->function;
}
