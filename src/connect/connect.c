/*
 * connect.c: the public entry points.  mg_connect_start() makes the context
 * object and hands it to its method, which continues on the broker; the
 * waiting forms are built on it.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "connect/connect.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 30000
/* How much longer than the connect's own deadline mg_connect() waits: the
 * deadline is enforced by whoever runs the child (maybe a gateway), and
 * its answer needs time to come back. */
#define WAIT_SLACK_MS 5000

void mg_connect_opts_init(struct mg_connect_opts *opts, int method)
{
	memset(opts, 0, sizeof(*opts));
	opts->method = method;
	opts->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
}

static int check_opts(const struct mg_connect_opts *o)
{
	if (o->method < MG_METHOD_LOCAL || o->method > MG_METHOD_DOAS)
		return -EINVAL;
	if (o->method == MG_METHOD_SSH && (o->hostname == NULL || o->hostname[0] == '\0'))
		return -EINVAL;
	if (o->host_key_policy < MG_HOST_KEY_ENFORCE || o->host_key_policy > MG_HOST_KEY_IGNORE)
		return -EINVAL;
	if (o->first_stage && (o->method != MG_METHOD_LOCAL || o->ship_self))
		return -EINVAL;
	if (o->method == MG_METHOD_FORK && (o->program != NULL || o->ship_self || o->env != NULL))
		return -EINVAL;
	if (o->program != NULL && o->ship_self)
		return -EINVAL;
	return 0;
}

/* Copies o with the defaults filled in. */
static void normalise(const struct mg_connect_opts *o, struct mg_connect_opts *out)
{
	*out = *o;
	if (out->connect_timeout_ms <= 0)
		out->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
}

int mg__connect_start_id(struct mg_router *r, const struct mg_connect_opts *o, uint32_t id,
                         mg_conn_done_cb done, void *done_arg, struct mg_context **cp)
{
	struct mg_connect_opts n;
	struct mg_context *c;
	int rc;

	if ((rc = check_opts(o)) != 0)
		return rc;
	normalise(o, &n);
	n.via = NULL;
	if ((rc = mg__context_new(r, &n, id, &c)) != 0)
		return rc;
	if (n.method == MG_METHOD_FORK)
		mg__fork_start(c, &n, done, done_arg);
	else if (n.method == MG_METHOD_SSH)
		mg__ssh_start(c, &n, done, done_arg);
	else if (n.method == MG_METHOD_SUDO)
		mg__sudo_start(c, &n, done, done_arg);
	else if (n.method == MG_METHOD_SU)
		mg__su_start(c, &n, done, done_arg);
	else if (n.method == MG_METHOD_DOAS)
		mg__doas_start(c, &n, done, done_arg);
	else if (n.first_stage)
		mg__first_stage_local_start(c, &n, done, done_arg);
	else
		mg__local_start(c, &n, done, done_arg);
	*cp = c;
	return 0;
}

int mg__argv_addl(char ***argvp, size_t *np, const char *const *list)
{
	size_t i;
	int r = 0;

	for (i = 0; list != NULL && list[i] != NULL && r == 0; i++)
		r = mg__argv_add(argvp, np, list[i]);
	return r;
}

int mg__argv_addn(char ***argvp, size_t *np, ...)
{
	const char *s;
	va_list ap;
	int r = 0;

	va_start(ap, np);
	while (r == 0 && (s = va_arg(ap, const char *)) != NULL)
		r = mg__argv_add(argvp, np, s);
	va_end(ap);
	return r;
}

void mg__cmd_start_or_fail(struct mg_context *c, const struct mg_connect_opts *o,
                           struct mg_cmd *cmd, int r, mg_conn_done_cb done, void *done_arg)
{
	if (r == 0 && o->password != NULL && (cmd->secret = mg__strdup(o->password)) == NULL)
		r = -ENOMEM;
	if (r == 0) {
		mg__cmd_start(c, o, cmd, done, done_arg);
		return;
	}
	mg__cmd_fini(cmd);
	mg__context_set_failed(c, r, "%s: %s", c->name, mg_strerror(r));
	if (done != NULL)
		done(done_arg, c, r, mg_strerror(r));
}

int mg_connect_start(struct mg_router *r, const struct mg_connect_opts *o, struct mg_context **ctxp)
{
	struct mg_connect_opts n;
	struct mg_context *c;
	uint32_t id;
	int rc;

	if (r == NULL || o == NULL)
		return -EINVAL;
	if ((rc = check_opts(o)) != 0)
		return rc;
	if (atomic_load(&r->stopping))
		return MG_ESHUTDOWN;
	/* A child context asks the master for ids and waits: never on the
	 * thread that would deliver the answer. */
	if (mg__broker_on_thread(r->broker))
		return -EDEADLK;
	if ((rc = mg__context_alloc_id(r, &id)) != 0)
		return rc;
	if (o->via == NULL)
		return mg__connect_start_id(r, o, id, NULL, NULL, ctxp);
	if (o->via->router != r)
		return -EINVAL;
	/* The gateway will announce the new context: its route is the only
	 * one that may. */
	if ((rc = mg__router_delegate(r, id, id + 1, o->via->id)) != 0)
		return rc;
	normalise(o, &n);
	if ((rc = mg__context_new(r, &n, id, &c)) != 0)
		return rc;
	mg__via_start(c, &n);
	*ctxp = c;
	return 0;
}

int mg_connect(struct mg_router *r, const struct mg_connect_opts *o, struct mg_context **ctxp)
{
	struct mg_context *c;
	char detail[512];
	int rc, wait;

	if ((rc = mg_connect_start(r, o, &c)) != 0)
		return rc;
	wait = (o->connect_timeout_ms > 0 ? o->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS) +
	       WAIT_SLACK_MS;
	if ((rc = mg_context_wait_ready(c, wait)) != 0) {
		/* Freeing may log and so overwrite this thread's detail text. */
		snprintf(detail, sizeof(detail), "%s", mg_errdetail());
		mg_context_free(c);
		mg__set_errdetail("%s", detail);
		return rc;
	}
	*ctxp = c;
	return 0;
}

static int connect_method(struct mg_router *r, const struct mg_connect_opts *o, int method,
                          struct mg_context **ctxp)
{
	struct mg_connect_opts n;

	if (o != NULL)
		n = *o;
	else
		mg_connect_opts_init(&n, method);
	n.method = method;
	return mg_connect(r, &n, ctxp);
}

int mg_local(struct mg_router *r, const struct mg_connect_opts *o, struct mg_context **ctxp)
{
	return connect_method(r, o, MG_METHOD_LOCAL, ctxp);
}

int mg_fork(struct mg_router *r, const struct mg_connect_opts *o, struct mg_context **ctxp)
{
	return connect_method(r, o, MG_METHOD_FORK, ctxp);
}
