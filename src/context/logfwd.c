/*
 * logfwd.c: log records travel up the tree.  A child's handler turns each
 * record at or above the master's level into a FORWARD_LOG message to its
 * parent; a gateway passes them on; the master hands them to its own
 * handler with the name of the context they came from.
 */
#include <string.h>

#include "context/calls.h"

/* Set while this thread is forwarding, so logging done by the send path
 * itself is not forwarded again (that would recurse). */
static _Thread_local bool forwarding;

static void forward_up(struct mg_router *r, int level, const char *logger, const char *context,
                       const char *message, int64_t time_ns)
{
	struct mg_msg *m;
	uint32_t parent = r->nancestors ? r->ancestors[0] : 0;

	if (forwarding)
		return;
	forwarding = true;
	if (mg_msg_pack(&m, "(isssi)", (int64_t)level, logger, context, message, time_ns) == 0)
		mg_router_send(r, parent, MG_HANDLE_FORWARD_LOG, m);
	forwarding = false;
}

static void child_handler(void *arg, const struct mg_log_record *rec)
{
	forward_up(arg, rec->level, rec->logger, rec->context, rec->message, rec->time_ns);
}

void mg__logfwd_start(struct mg_router *r, int level)
{
	mg__log_set_context_name(r->name);
	mg_log_set_handler(child_handler, r, level);
}

static void on_forward_log(void *arg, struct mg_msg *m)
{
	struct mg_router *r = arg;
	const char *logger, *context, *message;
	int64_t level, time_ns;

	if (mg_msg_read(m, "(isssi)", &level, &logger, &context, &message, &time_ns) != 0) {
		mg__error("%s: malformed log record from context %u", r->name, m->hdr.src_id);
		mg_msg_free(m);
		return;
	}
	if (r->id == 0)
		mg__log_forward((int)level, logger ? logger : "", context ? context : "?",
		                message ? message : "", time_ns);
	else
		forward_up(r, (int)level, logger ? logger : "", context ? context : "?",
		           message ? message : "", time_ns);
	mg_msg_free(m);
}

int mg__logfwd_listen(struct mg_router *r)
{
	return mg_router_add_handler(r, MG_HANDLE_FORWARD_LOG, MG_POLICY_ANY, on_forward_log, r,
	                             NULL);
}
