/*
 * child.c: running this process as a context.  After the handshake the
 * channel fds are moved out of the way, stdio is captured, the router is
 * made with the parent as its upstream, and this thread becomes the
 * dispatcher until the parent asks for shutdown or goes away.  Shutdown
 * cascades: this context's own children are shut down first.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "context/calls.h"

#define CHILD_GRACE_MS 3000
#define EXIT_DEADLINE_MS 1000

static struct mg_router *self_router;
static atomic_bool parent_lost;

struct mg_router *mg__self_router(void)
{
	return self_router;
}

static void exit_now(void *arg)
{
	/* The dispatcher is stuck in a call and the parent is gone. */
	_exit(1);
}

static void on_shutdown(void *arg, struct mg_msg *m)
{
	struct mg_router *r = arg;

	mg__debug("%s: shutdown requested by %u", r->name, m->hdr.src_id);
	mg_msg_free(m);
	mg__dispatch_stop();
}

/* A context became unreachable.  Losing the parent ends this context:
 * nobody is left to give it work or take its answers. */
void mg__child_lost(struct mg_router *r, uint32_t id)
{
	if (r != self_router || r->nancestors == 0 || id != r->ancestors[0] ||
	    atomic_exchange(&parent_lost, true))
		return;
	mg__dispatch_stop();
	mg__timer_add(r->broker, EXIT_DEADLINE_MS, exit_now, NULL);
}

/* Moves a channel fd above stdio so fds 0-2 can be replaced. */
static int lift(int fd)
{
	int nfd;

	if (fd > 2)
		return fd;
	if ((nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) < 0)
		return -errno;
	return nfd;
}

/* Shuts down every context this one started, with a grace period. */
static void shutdown_children(struct mg_router *r)
{
	struct mg_context **list = NULL;
	size_t n = 0, pos = 0, i;
	uint32_t key;
	void *val;

	pthread_mutex_lock(&r->lock);
	if (r->contexts.count > 0)
		list = mg__malloc(r->contexts.count * sizeof(*list));
	while (list != NULL && mg__idmap_next(&r->contexts, &pos, &key, &val)) {
		struct mg_context *c = val;
		atomic_fetch_add(&c->refs, 1);
		list[n++] = c;
	}
	pthread_mutex_unlock(&r->lock);
	for (i = 0; i < n; i++) {
		struct mg_msg *m;
		if (mg_msg_new(&m) == 0)
			mg_router_send(r, list[i]->id, MG_HANDLE_SHUTDOWN, m);
	}
	for (i = 0; i < n; i++) {
		mg_context_shutdown(list[i], atomic_load(&parent_lost) ? 0 : CHILD_GRACE_MS);
		/* Drop our extra reference; the context stays registered. */
		atomic_fetch_sub(&list[i]->refs, 1);
	}
	mg__free(list);
}

int mg__child_serve(int rfd, int wfd, const struct mg_boot *boot)
{
	struct mg_router_opts o;
	struct mg_router *r;
	int rc, same = rfd == wfd;

	signal(SIGPIPE, SIG_IGN);
	mg__stream_sigpipe_ignored();
	/* A context's life is its parent's to end.  Ctrl-C at a terminal
	 * signals the whole foreground process group, local children
	 * included; a child killed by it would orphan the commands it runs
	 * (they have sessions of their own) instead of letting the parent
	 * stop them.  Commands start with default dispositions (exec). */
	signal(SIGINT, SIG_IGN);
	if ((rfd = lift(rfd)) < 0 || (wfd = same ? rfd : lift(wfd)) < 0)
		return 2;
	mg_router_opts_init(&o);
	o.context_id = boot->context_id;
	o.name = boot->name;
	if (boot->max_message_size > 0 && boot->max_message_size <= UINT32_MAX)
		o.max_message_size = (size_t)boot->max_message_size;
	o.unidirectional = boot->unidirectional;
	if (mg_router_new(&o, &r) != 0)
		return 2;
	self_router = r;
	mg__router_set_ancestors(r, boot->ancestors, boot->nancestors);
	if ((rc = mg__context_services(r)) != 0 || (rc = mg__stdio_capture(r)) != 0 ||
	    (rc = mg__dispatch_start(r)) != 0 ||
	    (rc = mg_router_add_handler(r, MG_HANDLE_SHUTDOWN, MG_POLICY_PARENT, on_shutdown, r,
	                                NULL)) != 0 ||
	    (rc = mg_router_attach(r, rfd, wfd, boot->parent_id, MG_STREAM_PARENT)) != 0) {
		mg_router_free(r);
		return 2;
	}
	mg__logfwd_start(r, boot->log_level);
	mg__crash_install(r);
	mg__dispatch_run();
	shutdown_children(r);
	mg__debug("%s: exiting", r->name);
	mg_log_set_handler(NULL, NULL, MG_LOG_OFF);
	mg_router_free(r);
	return 0;
}
