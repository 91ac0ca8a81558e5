/*
 * pool.c: connecting the targets and running the verb in each.  Gateways
 * (--via) are connected first, in order, each through the one before.
 * Then min(fanout, targets) worker threads take targets in order; each
 * connects its target (ssh, or a local context; then sudo/su/doas when asked),
 * runs the verb, reports, and shuts the target's contexts down.
 *
 * The main thread owns the signals: SIGINT, SIGTERM and SIGHUP are blocked
 * in every thread (the broker's included, since it is started after) and
 * taken with sigtimedwait(), which also lets it redraw the progress line.
 * An interrupt sets cli->cancelled and wakes the workers (cli_wait()),
 * which kill their commands and shut their contexts down; a target still
 * busy in a blocking transfer after GRACE_MS has its context shut down
 * from here.  A second interrupt exits at once.
 *
 * Workers wait without timeouts: each has a select and a receiver that no
 * message reaches, which the interrupt closes.  They used to wake every
 * POLL_MS to look: 100 workers connecting for seconds did that ~4,000
 * times a run, a third of this process's CPU (~0.3 ms per target).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define POLL_MS 100
#define GRACE_MS 1500
#define SHUTDOWN_MS 5000
/* After an interrupt contexts get a short grace to kill their commands
 * (a forced stop would orphan them), then are forced. */
#define CANCEL_SHUTDOWN_MS 1000

struct pool {
	struct cli *cli;
	sigset_t sigs;     /* the signals the main thread takes */
	bool *unfinished;  /* targets not done when interrupted */
	int interrupted;   /* interrupts seen */
	int64_t cancel_at; /* when the last interrupt or forced stop was */
	struct mg_router *router;
	struct mg_context **gw; /* the --via chain */
	size_t ngw;
	const char **ssh_args;
	atomic_size_t next;
	pthread_mutex_t wake_lock; /* guards wake and nwake */
	struct mg_receiver **wake; /* each worker's, closed by an interrupt */
	size_t nwake;
};

/* A worker's way to wait for a receiver or an interrupt. */
struct waiter {
	struct mg_select *sel;
	struct mg_receiver *cancel; /* no message reaches it; closed to wake */
};

static __thread struct waiter *this_waiter;

void target_ok(struct target *t)
{
	t->result = RES_OK;
}

void target_fail(struct target *t, int result, const char *fmt, ...)
{
	struct sbuf b = {0};
	va_list ap;

	va_start(ap, fmt);
	sb_vprintf(&b, fmt, ap);
	va_end(ap);
	/* Texts quoted from a tool's stderr may end in "\r\n". */
	while (b.len > 0 &&
	       (b.p[b.len - 1] == '\r' || b.p[b.len - 1] == '\n' || b.p[b.len - 1] == ' '))
		b.p[--b.len] = '\0';
	sb_put(&b, "", 0);
	free(t->error);
	t->error = b.p;
	t->result = result;
}

void target_copy_failed(struct target *t, const char *verb, const char *path,
                        const struct mg_file_result *res, int rc, const char *hint)
{
	const char *why = res->error[0] ? res->error : mg_strerror(rc);
	const char *own = mg_context_name(t->ctx);
	size_t n = own != NULL ? strlen(own) : 0;

	if (n > 0 && strncmp(why, own, n) == 0 && strncmp(why + n, ": ", 2) == 0)
		why += n + 2;
	target_fail(t, RES_FAILED, "%s %s: %s%s", verb, path, why, hint);
}

bool cli_cancelled(struct cli *cli)
{
	return atomic_load(&cli->cancelled);
}

int cli_wait(struct cli *cli, struct mg_receiver *rx, struct mg_msg **msgp)
{
	struct waiter *w = this_waiter;
	struct mg_receiver *from = NULL;
	int rc;

	*msgp = NULL;
	if (w == NULL) {
		while ((rc = mg_receiver_get(rx, POLL_MS, msgp)) == -ETIMEDOUT)
			if (cli_cancelled(cli))
				return -ECANCELED;
		return rc;
	}
	if ((rc = mg_select_add(w->sel, rx)) != 0)
		return rc;
	rc = mg_select_get(w->sel, -1, &from, msgp);
	mg_select_remove(w->sel, rx);
	if (from == w->cancel) {
		mg_msg_free(*msgp);
		*msgp = NULL;
		return -ECANCELED;
	}
	return rc;
}

/* ssh options for host (and user, else -l's) through via. */
static void ssh_opts(struct pool *p, struct mg_connect_opts *o, const char *name, const char *host,
                     const char *user, struct mg_context *via)
{
	struct cli *cli = p->cli;

	mg_connect_opts_init(o, MG_METHOD_SSH);
	o->name = name;
	o->hostname = host;
	o->username = user ? user : cli->user;
	o->port = cli->port;
	o->password = cli->ssh_password;
	o->host_key_policy = cli->host_key_policy;
	o->connect_timeout_ms = cli->connect_timeout_ms;
	o->via = via;
	/* -i and -F name files on this machine: an ssh that a gateway runs
	 * uses its own user's configuration there instead. */
	o->identity_file = via == NULL ? cli->identity : NULL;
	o->ssh_args = p->ssh_args + (via != NULL && cli->ssh_config != NULL ? 2 : 0);
}

static void take_signals(struct pool *p, int timeout_ms);

/* Starts a connect and waits for it, giving up when interrupted.  0 and
 * the context (caller frees), or an error with its text in buf. */
static int connect_one(struct pool *p, const struct mg_connect_opts *o, struct mg_context **cp,
                       char *buf, size_t len)
{
	struct mg_context *c;
	int rc;

	if ((rc = mg_connect_start(p->router, o, &c)) != 0) {
		snprintf(buf, len, "%s", *mg_errdetail() ? mg_errdetail() : mg_strerror(rc));
		return rc;
	}
	*cp = c;
	if (this_waiter != NULL) {
		struct mg_msg *m;

		/* The connect's outcome is in the context once its ready
		 * receiver has a message. */
		rc = cli_wait(p->cli, mg_context_ready_receiver(c), &m);
		mg_msg_free(m);
		if (rc == -ECANCELED || (rc = mg_context_wait_ready(c, 0)) != -ETIMEDOUT)
			goto done;
		/* The receiver answered otherwise (the router is stopping):
		 * look as the main thread does. */
	}
	for (;;) {
		/* The gateways are connected on the main thread, which owns
		 * the signals: it looks for an interrupt between waits. */
		if (pthread_equal(pthread_self(), p->cli->main_thread))
			take_signals(p, 0);
		rc = mg_context_wait_ready(c, POLL_MS);
		/* -ETIMEDOUT is both "still connecting" and a connect that timed
		 * out; only the second leaves the context gone. */
		if (rc == -ETIMEDOUT && mg_context_is_gone(c))
			rc = mg_context_wait_ready(c, 0);
		else if (rc == -ETIMEDOUT && !cli_cancelled(p->cli))
			continue;
		else if (rc == -ETIMEDOUT)
			rc = -ECANCELED;
		break;
	}
done:
	if (rc != 0) {
		const char *d = rc == -ECANCELED  ? "interrupted"
		                : *mg_errdetail() ? mg_errdetail()
		                                  : mg_strerror(rc);
		size_t n = strlen(o->name);

		/* The library's text starts with the context's name, which
		 * the tool prints already. */
		if (strncmp(d, o->name, n) == 0 && strncmp(d + n, ": ", 2) == 0)
			d += n + 2;
		snprintf(buf, len, "%s", d);
	}
	return rc;
}

static void set_ctx(struct target *t, struct mg_context *c)
{
	pthread_mutex_lock(&t->lock);
	t->ctx = c;
	pthread_mutex_unlock(&t->lock);
}

/* Connects the next hop of t's chain with o; on failure marks t (what
 * names the hop in the message). */
static int hop(struct pool *p, struct target *t, struct mg_connect_opts *o, const char *what)
{
	char err[1024];
	int rc;

	o->connect_timeout_ms = p->cli->connect_timeout_ms;
	o->cache = p->cli->cache; /* used by the methods that boot through sh */
	rc = connect_one(p, o, &t->ctxs[t->nctx], err, sizeof(err));
	t->nctx += t->ctxs[t->nctx] != NULL;
	if (rc != 0)
		target_fail(t, rc == -ECANCELED ? RES_CANCELLED : RES_UNREACHABLE, "%s: %s", what,
		            err);
	return rc;
}

/* Connects t: [ssh through the gateway] then [sudo, su or doas]; a local
 * target with one of those is that alone (from here, or from the last
 * gateway), since a local context in between would add nothing. */
static int connect_target(struct pool *p, struct target *t)
{
	struct cli *cli = p->cli;
	struct mg_context *via = p->ngw ? p->gw[p->ngw - 1] : NULL;
	struct mg_connect_opts o;
	char name[300];
	int rc;

	if (t->host != NULL) {
		ssh_opts(p, &o, t->name, t->host, t->user, via);
	} else {
		mg_connect_opts_init(&o, MG_METHOD_LOCAL);
		o.name = t->name;
		o.via = via;
	}
	if ((t->host != NULL || !cli->become) && (rc = hop(p, t, &o, "unreachable")) != 0)
		return rc;
	if (cli->become) {
		const char *how = become_name(cli->become);

		snprintf(name, sizeof(name), "%s/%s:%s", t->name, how,
		         cli->become_user ? cli->become_user : "root");
		mg_connect_opts_init(&o, cli->become);
		o.name = name;
		o.username = cli->become_user;
		o.password = cli->become_password;
		o.via = t->nctx > 0 ? t->ctxs[t->nctx - 1] : via;
		if ((rc = hop(p, t, &o, how)) != 0)
			return rc;
	}
	set_ctx(t, t->ctxs[t->nctx - 1]);
	return 0;
}

static void finish_target(struct pool *p, struct target *t)
{
	struct cli *cli = p->cli;
	int i;

	t->t_end = now_ns();
	/* Whatever went wrong after an interrupt is the interrupt's doing. */
	if (t->result == RES_NONE || (cli_cancelled(cli) && t->result != RES_OK))
		t->result = RES_CANCELLED;
	output_target_done(cli, t);
	set_ctx(t, NULL);
	for (i = t->nctx - 1; i >= 0; i--) {
		mg_context_shutdown(t->ctxs[i],
		                    cli_cancelled(cli) ? CANCEL_SHUTDOWN_MS : SHUTDOWN_MS);
		mg_context_free(t->ctxs[i]);
		t->ctxs[i] = NULL;
	}
	t->nctx = 0;
	atomic_store(&t->state, T_DONE);
	if (atomic_fetch_add(&cli->finished, 1) + 1 == cli->ntargets)
		pthread_kill(cli->main_thread, SIGUSR1);
}

/* Makes this worker's waiter and hands its cancel receiver to the main
 * thread; one closed at once when the run is interrupted already. */
static int waiter_start(struct pool *p, struct waiter *w)
{
	int rc;

	if ((rc = mg_select_new(&w->sel)) != 0)
		return rc;
	if ((rc = mg_receiver_new(p->router, MG_NO_RESPONDENT, MG_POLICY_ANY, &w->cancel)) != 0 ||
	    (rc = mg_select_add(w->sel, w->cancel)) != 0) {
		mg_receiver_free(w->cancel);
		mg_select_free(w->sel);
		return rc;
	}
	pthread_mutex_lock(&p->wake_lock);
	p->wake[p->nwake++] = w->cancel;
	if (cli_cancelled(p->cli))
		mg_receiver_close(w->cancel);
	pthread_mutex_unlock(&p->wake_lock);
	this_waiter = w;
	return 0;
}

static void waiter_stop(struct pool *p, struct waiter *w)
{
	size_t i;

	this_waiter = NULL;
	pthread_mutex_lock(&p->wake_lock);
	for (i = 0; i < p->nwake && p->wake[i] != w->cancel; i++)
		;
	p->wake[i] = p->wake[--p->nwake];
	pthread_mutex_unlock(&p->wake_lock);
	mg_select_remove(w->sel, w->cancel);
	mg_receiver_free(w->cancel);
	mg_select_free(w->sel);
}

/* Wakes every worker's waits (the run was interrupted). */
static void wake_workers(struct pool *p)
{
	size_t i;

	pthread_mutex_lock(&p->wake_lock);
	for (i = 0; i < p->nwake; i++)
		mg_receiver_close(p->wake[i]);
	pthread_mutex_unlock(&p->wake_lock);
}

static void *worker_main(void *arg)
{
	struct pool *p = arg;
	struct cli *cli = p->cli;
	struct waiter w;
	bool waiting = waiter_start(p, &w) == 0; /* else its waits poll */
	size_t i;

	while ((i = atomic_fetch_add(&p->next, 1)) < cli->ntargets) {
		struct target *t = &cli->targets[i];

		t->t_start = now_ns();
		if (cli_cancelled(cli)) {
			finish_target(p, t);
			continue;
		}
		atomic_store(&t->state, T_CONNECTING);
		if (connect_target(p, t) == 0) {
			atomic_store(&t->state, T_RUNNING);
			cli->verb->run(cli, t);
		}
		finish_target(p, t);
	}
	if (waiting)
		waiter_stop(p, &w);
	return NULL;
}

/* Connects the --via chain in order; 0, or prints why not. */
static int connect_gateways(struct pool *p)
{
	struct cli *cli = p->cli;
	struct mg_connect_opts o;
	char err[1024], *user, *at;
	size_t i;
	int rc;

	p->gw = xmalloc((cli->nvia ? cli->nvia : 1) * sizeof(*p->gw));
	memset(p->gw, 0, (cli->nvia ? cli->nvia : 1) * sizeof(*p->gw));
	for (i = 0; i < cli->nvia; i++) {
		user = xstrdup(cli->via[i]);
		at = strrchr(user, '@');
		if (at != NULL)
			*at = '\0';
		ssh_opts(p, &o, cli->via[i], at ? at + 1 : user, at ? user : NULL,
		         i ? p->gw[i - 1] : NULL);
		rc = connect_one(p, &o, &p->gw[i], err, sizeof(err));
		free(user);
		if (p->gw[i] != NULL)
			p->ngw = i + 1;
		if (rc != 0) {
			output_error("gateway %s: %s", cli->via[i], err);
			return rc;
		}
	}
	return 0;
}

static void block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1); /* the last worker's "all done" */
	pthread_sigmask(SIG_BLOCK, set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void report_unfinished(struct cli *cli, const bool *unfinished);

/* Stops the run: remembers which targets had not finished and sets
 * cancelled, which their workers see. */
static void cancel_all(struct pool *p)
{
	struct cli *cli = p->cli;
	size_t i;

	for (i = 0; i < cli->ntargets; i++)
		p->unfinished[i] = atomic_load(&cli->targets[i].state) != T_DONE;
	atomic_store(&cli->cancelled, true);
	wake_workers(p);
	p->cancel_at = now_ns();
}

/* Waits up to timeout_ms for a signal.  A first interrupt cancels the run;
 * a second one exits.  Output that cannot be written (output_failed())
 * cancels it as well. */
static void take_signals(struct pool *p, int timeout_ms)
{
	struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
	int sig = sigtimedwait(&p->sigs, NULL, &ts);

	if (!p->interrupted && output_failed()) {
		p->interrupted = 1;
		cancel_all(p);
		return;
	}
	if (sig != SIGINT && sig != SIGTERM && sig != SIGHUP)
		return;
	if (p->interrupted++ > 0) {
		output_lock();
		progress_clear();
		output_unlock();
		report_unfinished(p->cli, p->unfinished);
		_exit(CLI_EXIT_INTERRUPTED);
	}
	cancel_all(p);
}

/* Shuts down the contexts of targets still busy (blocking transfers or
 * calls that do not poll), so their workers return. */
static void force_stop(struct cli *cli)
{
	size_t i;

	for (i = 0; i < cli->ntargets; i++) {
		struct target *t = &cli->targets[i];

		pthread_mutex_lock(&t->lock);
		if (t->ctx != NULL && atomic_load(&t->state) == T_RUNNING)
			mg_context_shutdown(t->ctx, 0);
		pthread_mutex_unlock(&t->lock);
	}
}

/* -S: the largest of the commands' statuses, as pdsh -S and clush -S:
 * 255 for a target not reached (as ssh), 1 for a command that could not
 * be run or was lost. */
static int max_status(struct cli *cli)
{
	int worst = 0, rc;
	size_t i;

	for (i = 0; i < cli->ntargets; i++) {
		const struct target *t = &cli->targets[i];

		rc = t->result == RES_OK            ? 0
		     : t->result == RES_UNREACHABLE ? 255
		     : t->exit_code > 0             ? t->exit_code
		                                    : 1;
		worst = rc > worst ? rc : worst;
	}
	return worst;
}

static int exit_status(struct cli *cli)
{
	bool failed = false, unreachable = false;
	size_t i;

	if (cli->maxrc)
		return max_status(cli);
	for (i = 0; i < cli->ntargets; i++) {
		failed |= cli->targets[i].result == RES_FAILED;
		unreachable |= cli->targets[i].result == RES_UNREACHABLE;
	}
	return unreachable ? CLI_EXIT_UNREACHABLE : failed ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}

static void report_unfinished(struct cli *cli, const bool *unfinished)
{
	const char **names = xmalloc(cli->ntargets * sizeof(*names));
	struct sbuf b = {0};
	size_t i, n = 0;

	for (i = 0; i < cli->ntargets; i++)
		if (unfinished[i])
			names[n++] = cli->targets[i].name;
	if (n > 0) {
		targets_fold(names, n, &b);
		output_error("interrupted: %zu of %zu target%s did not finish: %s", n,
		             cli->ntargets, cli->ntargets == 1 ? "" : "s", b.p);
	} else {
		output_error("interrupted (every target had finished)");
	}
	sb_free(&b);
	free(names);
}

int pool_run(struct cli *cli)
{
	struct pool p = {.cli = cli, .wake_lock = PTHREAD_MUTEX_INITIALIZER};
	pthread_t *workers = NULL;
	size_t i, nworkers = 0, nargs = 0;
	struct mg_router_opts ro;
	int rc = 0;

	cli->t0 = now_ns();
	cli->main_thread = pthread_self();
	block_signals(&p.sigs);
	output_init(cli);
	p.unfinished = xmalloc(cli->ntargets * sizeof(bool));
	for (i = 0; i < cli->ntargets; i++)
		p.unfinished[i] = true;
	/* -F FILE first, then the -o pairs. */
	p.ssh_args = xmalloc((cli->nssh_args + 3) * sizeof(char *));
	if (cli->ssh_config != NULL) {
		p.ssh_args[nargs++] = "-F";
		p.ssh_args[nargs++] = cli->ssh_config;
	}
	for (i = 0; i < cli->nssh_args; i++)
		p.ssh_args[nargs++] = cli->ssh_args[i];
	p.ssh_args[nargs] = NULL;

	mg_router_opts_init(&ro);
	ro.name = "mitogen";
	if ((rc = mg_router_new(&ro, &p.router)) != 0) {
		output_error("cannot start: %s", mg_strerror(rc));
		free(p.ssh_args);
		free(p.unfinished);
		return CLI_EXIT_FAILED;
	}
	if (connect_gateways(&p) != 0) {
		rc = p.interrupted ? 0 : CLI_EXIT_UNREACHABLE;
		goto out;
	}
	nworkers = (size_t)cli->fanout < cli->ntargets ? (size_t)cli->fanout : cli->ntargets;
	workers = xmalloc(nworkers * sizeof(*workers));
	p.wake = xmalloc(nworkers * sizeof(*p.wake));
	for (i = 0; i < nworkers; i++) {
		if (pthread_create(&workers[i], NULL, worker_main, &p) != 0) {
			nworkers = i;
			break;
		}
	}
	if (nworkers == 0) {
		output_error("cannot start a worker thread");
		rc = CLI_EXIT_FAILED;
		goto out;
	}
	while (atomic_load(&cli->finished) < cli->ntargets) {
		if (progress_enabled()) {
			output_lock();
			progress_draw(cli);
			output_unlock();
		}
		take_signals(&p, POLL_MS);
		if (p.interrupted && now_ns() - p.cancel_at > (int64_t)GRACE_MS * 1000000) {
			force_stop(cli);
			p.cancel_at = now_ns();
		}
	}
	for (i = 0; i < nworkers; i++)
		pthread_join(workers[i], NULL);
	rc = 0;
out:
	output_lock();
	progress_clear();
	output_unlock();
	for (i = p.ngw; i-- > 0;) {
		mg_context_shutdown(p.gw[i], p.interrupted ? CANCEL_SHUTDOWN_MS : SHUTDOWN_MS);
		mg_context_free(p.gw[i]);
	}
	mg_router_free(p.router);
	if (rc == 0 && !output_failed()) {
		output_finish(cli);
		rc = exit_status(cli);
	}
	if (output_failed() == EPIPE) {
		rc = CLI_EXIT_OUTPUT_CLOSED; /* quietly: the reader is gone */
	} else if (output_failed()) {
		fprintf(stderr, "mitogen: cannot write the output: %s\n",
		        strerror(output_failed()));
		rc = CLI_EXIT_FAILED;
	} else if (p.interrupted) {
		report_unfinished(cli, p.unfinished);
		rc = CLI_EXIT_INTERRUPTED;
	}
	free(workers);
	free(p.wake);
	free(p.gw);
	free(p.ssh_args);
	free(p.unfinished);
	return rc;
}
