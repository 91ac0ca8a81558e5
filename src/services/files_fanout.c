/*
 * files_fanout.c: one file to many contexts, store-and-forward (as
 * Mitogen's PushFileService).
 *
 *   mg.file.fanout(path, size, mode, mtime, uid, gid, keep_owner, window,
 *                  status, ids) -> (data)
 *       this context (a gateway) receives a file once into a store of its
 *       own, then pushes it to path in each of its children named by ids
 *       (big-endian u32s), several at a time.  The status channel carries
 *       the usual acks and final word for the store, then one
 *       [3, id, code, message, hash] per child.
 *
 * mg_file_push_many() groups the targets by the gateway they were
 * connected through: the file crosses the links down to a gateway once
 * however many of its children receive it.  Targets connected directly,
 * or alone behind their gateway, get an ordinary push.  The hash each
 * child reports is compared with the one the caller sent, so the check
 * stays end to end across the store.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/files.h"

/* Transfers a gateway, or the caller, runs at once. */
#define FANOUT_THREADS 8

/* Runs fn(arg) on up to n threads (fewer when n is smaller or threads
 * cannot be made) and waits for all; at least the calling thread runs. */
static void run_parallel(void *(*fn)(void *), void *arg, size_t n)
{
	pthread_t t[FANOUT_THREADS];
	pthread_attr_t a;
	size_t i, made = 0;

	if (n > FANOUT_THREADS)
		n = FANOUT_THREADS;
	if (n > 1 && pthread_attr_init(&a) == 0) {
		pthread_attr_setstacksize(&a, 256 * 1024);
		for (i = 0; i + 1 < n; i++)
			if (pthread_create(&t[made], &a, fn, arg) == 0)
				made++;
		pthread_attr_destroy(&a);
	}
	fn(arg);
	for (i = 0; i < made; i++)
		pthread_join(t[i], NULL);
}

/* ---- the gateway's side ----------------------------------------------- */

struct fanout_job {
	struct file_sink sink;
	struct mg_router *router;
	struct mg_receiver *data;
	struct mg_sender *status;
	uint64_t window;
	char *path;
	uint32_t *ids;
	size_t n, next;
};

static void fanout_job_free(struct fanout_job *j)
{
	mg__file_sink_fini(&j->sink);
	mg_receiver_free(j->data);
	mg_sender_free(j->status);
	free(j->path);
	free(j->ids);
	free(j);
}

/* Pushes the stored file to one child and reports how it went. */
static void fanout_one(struct fanout_job *j, uint32_t id)
{
	struct mg_context *c = NULL;
	struct mg_file_opts o;
	uint64_t hash = 0;
	char err[512] = "";
	int rc;

	mg_file_opts_init(&o);
	o.window = j->window;
	o.keep_owner = j->sink.keep_owner;
	if ((rc = mg_context_lookup(j->router, id, &c)) != 0)
		snprintf(err, sizeof(err), "context %u is not a child of this gateway", id);
	else
		rc = mg__file_push_fd(c, j->sink.fd, &j->sink.meta, j->path, &o, &hash, err,
		                      sizeof(err));
	/* Say which child failed when the text does not. */
	if (rc != 0 && c != NULL &&
	    strncmp(err, mg_context_name(c), strlen(mg_context_name(c))) != 0) {
		char tmp[sizeof(err)];
		snprintf(tmp, sizeof(tmp), "%.100s: %.400s", mg_context_name(c), err);
		memcpy(err, tmp, sizeof(err));
	}
	mg_sender_sendf(j->status, "(iuisu)", (int64_t)FILE_RESULT, (uint64_t)id, (int64_t)rc, err,
	                hash);
	mg_context_unref(c);
}

static void *fanout_worker(void *arg)
{
	struct fanout_job *j = arg;
	size_t i;

	while ((i = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED)) < j->n)
		fanout_one(j, j->ids[i]);
	return NULL;
}

static void *fanout_main(void *arg)
{
	struct fanout_job *j = arg;
	char err[512];

	if (mg__file_sink_run(&j->sink, j->data, j->status, j->window, err, sizeof(err)) == 0)
		run_parallel(fanout_worker, j, j->n);
	fanout_job_free(j);
	return NULL;
}

MG_EXPORT_AS("mg.file.fanout", file_fanout)
static int file_fanout(struct mg_call *call)
{
	struct file_meta meta;
	struct fanout_job *j;
	const uint8_t *blob;
	const char *path;
	uint64_t size, mode;
	struct timespec mtime;
	int64_t uid, gid;
	char err[512];
	size_t len, i;
	bool keep;
	int rc;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return mg_call_fail(call, "MemoryError", "out of memory");
	j->sink.fd = -1;
	if (mg_call_args(call, "suutiibuhy", &path, &size, &mode, &mtime, &uid, &gid, &keep,
	                 &j->window, &j->status, (const void **)&blob, &len) != 0) {
		free(j);
		return -1;
	}
	j->router = mg_call_router(call);
	j->n = len / 4;
	if (len % 4 != 0 || j->n == 0) {
		mg_call_fail(call, "ValueError", "mg.file.fanout needs one or more context ids");
		goto fail;
	}
	if ((j->ids = malloc(j->n * sizeof(*j->ids))) == NULL || (j->path = strdup(path)) == NULL) {
		mg_call_fail(call, "MemoryError", "out of memory");
		goto fail;
	}
	for (i = 0; i < j->n; i++)
		j->ids[i] = (uint32_t)blob[4 * i] << 24 | (uint32_t)blob[4 * i + 1] << 16 |
		            (uint32_t)blob[4 * i + 2] << 8 | blob[4 * i + 3];
	if ((rc = mg__file_sink_open_store(&j->sink, err, sizeof(err))) != 0) {
		mg_call_fail(call, mg__svc_errno_type(-rc), "%s", err);
		goto fail;
	}
	meta = (struct file_meta){size, (uint32_t)mode & 07777, mtime, uid, gid};
	if (mg__file_sink_serve(call, &j->sink, &meta, keep, j->status, &j->data, fanout_main, j) ==
	    0)
		return 0;
fail:
	fanout_job_free(j);
	return -1;
}

/* ---- the caller's side ------------------------------------------------ */

/* Targets that travel together: those behind gw (count > 1), or one. */
struct group {
	struct mg_context *gw;
	size_t first, count; /* into many.order */
};

struct many {
	struct mg_context *const *ctxs;
	const char *remote;
	const struct mg_file_opts *opts;
	int fd;
	struct file_meta meta;
	int *codes;                 /* n */
	struct mg_file_result *res; /* n */
	size_t *order;              /* target indices, group by group */
	struct group *groups;
	size_t ngroups, next;
};

static void set_one(struct many *m, size_t i, int rc, uint64_t hash, const char *err)
{
	struct mg_file_result *res = &m->res[i];

	m->codes[i] = rc;
	if (rc == 0) {
		res->bytes += m->meta.size;
		res->files++;
		res->hash = hash;
		res->error[0] = '\0';
	} else {
		mg__file_set_err(res, rc, err, m->remote);
	}
}

static void push_one(struct many *m, size_t i)
{
	uint64_t hash = 0;
	char err[512] = "";
	int rc;

	rc = mg__file_push_fd(m->ctxs[i], m->fd, &m->meta, m->remote, m->opts, &hash, err,
	                      sizeof(err));
	set_one(m, i, rc, hash, err);
}

/* Reads the gateway's per-child results into the group's targets. */
static void read_results(struct many *m, const struct group *g, struct mg_receiver *status,
                         uint64_t hash)
{
	size_t left = g->count, k;
	bool *done = calloc(g->count, sizeof(*done));
	char err[512];
	int rc = 0;

	while (left > 0 && done != NULL) {
		struct mg_msg *msg;
		int64_t tag, code;
		uint64_t id, got;
		const char *text;

		if ((rc = mg_receiver_get(status, -1, &msg)) != 0)
			break;
		if (mg_msg_read(msg, "(iuisu)", &tag, &id, &code, &text, &got) != 0 ||
		    tag != FILE_RESULT) {
			mg_msg_free(msg);
			continue;
		}
		for (k = 0; k < g->count; k++) {
			size_t i = m->order[g->first + k];
			if (done[k] || mg_context_id(m->ctxs[i]) != id)
				continue;
			done[k] = true;
			left--;
			if (code > 0 || code < INT32_MIN)
				code = -EPROTO;
			/* The store was checked against what we sent; the child's
			 * sink against what the store held: same hash, same bytes. */
			if (code == 0 && got != hash) {
				code = -EBADMSG;
				text = "the checksum changed in the gateway's store";
			}
			set_one(m, i, (int)code, hash, text);
			break;
		}
		mg_msg_free(msg);
	}
	snprintf(err, sizeof(err), "through %s: %s", mg_context_name(g->gw),
	         done == NULL ? "out of memory" : mg_strerror(rc));
	for (k = 0; k < g->count; k++)
		if (done == NULL || !done[k])
			set_one(m, m->order[g->first + k], rc ? rc : -ENOMEM, 0, err);
	free(done);
}

/* Sends the file once to the group's gateway, which serves its children. */
static void push_group(struct many *m, const struct group *g)
{
	struct mg_router *r = mg_context_router(g->gw);
	struct mg_receiver *status = NULL;
	struct mg_sender *st_sender = NULL, *data = NULL;
	struct mg_msg *reply = NULL;
	uint8_t *ids = malloc(4 * g->count);
	char err[512] = "", text[700];
	uint64_t hash = 0;
	size_t k;
	int rc;

	for (k = 0; ids != NULL && k < g->count; k++) {
		uint32_t id = mg_context_id(m->ctxs[m->order[g->first + k]]);
		ids[4 * k] = (uint8_t)(id >> 24);
		ids[4 * k + 1] = (uint8_t)(id >> 16);
		ids[4 * k + 2] = (uint8_t)(id >> 8);
		ids[4 * k + 3] = (uint8_t)id;
	}
	if (ids == NULL)
		rc = -ENOMEM;
	else if ((rc = mg_receiver_new(r, mg_context_id(g->gw), MG_POLICY_ANY, &status)) == 0 &&
	         (rc = mg_receiver_to_sender(status, &st_sender)) == 0)
		rc = mg_call(g->gw, "mg.file.fanout", &reply, "suutiibuhy", m->remote, m->meta.size,
		             (uint64_t)m->meta.mode, &m->meta.mtime, m->meta.uid, m->meta.gid,
		             (int)m->opts->keep_owner, (uint64_t)m->opts->window, st_sender,
		             (const void *)ids, 4 * g->count);
	if (rc == MG_ENOFUNC) {
		/* A gateway without the service: one push per target. */
		for (k = 0; k < g->count; k++)
			push_one(m, m->order[g->first + k]);
		goto out;
	}
	if (rc != 0)
		rc = mg__svc_call_error(rc, err, sizeof(err));
	if (rc == 0 && (rc = mg_msg_read(reply, "h", &data)) == 0)
		rc = mg__file_source_run(m->fd, m->meta.size, m->opts->window, data, status, &hash,
		                         err, sizeof(err));
	if (rc == 0) {
		read_results(m, g, status, hash);
		goto out;
	}
	snprintf(text, sizeof(text), "storing in %s: %s", mg_context_name(g->gw), err);
	for (k = 0; k < g->count; k++)
		set_one(m, m->order[g->first + k], rc, 0, text);
out:
	free(ids);
	mg_msg_free(reply);
	mg_sender_free(data);
	mg_sender_free(st_sender);
	mg_receiver_free(status);
}

static void *many_worker(void *arg)
{
	struct many *m = arg;
	size_t i, k;

	while ((i = __atomic_fetch_add(&m->next, 1, __ATOMIC_RELAXED)) < m->ngroups) {
		const struct group *g = &m->groups[i];
		if (g->count > 1)
			push_group(m, g);
		else
			for (k = 0; k < g->count; k++)
				push_one(m, m->order[g->first + k]);
	}
	return NULL;
}

/* Groups the targets by gateway (targets without one each make their
 * own); sets m->groups and m->order. */
static int make_groups(struct many *m, size_t n)
{
	size_t i, k, *gi = malloc(n * sizeof(*gi)), *fill = calloc(n, sizeof(*fill));
	int rc = -ENOMEM;

	m->groups = calloc(n, sizeof(*m->groups));
	m->order = malloc(n * sizeof(*m->order));
	if (m->groups == NULL || m->order == NULL || gi == NULL || fill == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		struct mg_context *gw = mg_context_via(m->ctxs[i]);
		for (k = 0; gw != NULL && k < m->ngroups && m->groups[k].gw != gw; k++)
			;
		if (gw == NULL || k == m->ngroups)
			m->groups[k = m->ngroups++].gw = gw;
		m->groups[k].count++;
		gi[i] = k;
	}
	for (k = 0, i = 0; k < m->ngroups; k++) {
		m->groups[k].first = i;
		i += m->groups[k].count;
	}
	for (i = 0; i < n; i++)
		m->order[m->groups[gi[i]].first + fill[gi[i]]++] = i;
	rc = 0;
out:
	free(gi);
	free(fill);
	return rc;
}

int mg_file_push_many(struct mg_context *const *ctxs, size_t n, const char *local,
                      const char *remote, const struct mg_file_opts *opts, int *codes,
                      struct mg_file_result *results)
{
	struct many m;
	struct mg_file_opts def;
	char err[512] = "";
	size_t i;
	int rc;

	memset(&m, 0, sizeof(m));
	m.ctxs = ctxs;
	m.remote = remote;
	m.opts = mg__file_opts_or_default(opts, &def);
	m.fd = -1;
	if (n == 0)
		return 0;
	m.codes = calloc(n, sizeof(*m.codes));
	m.res = calloc(n, sizeof(*m.res));
	if (m.codes == NULL || m.res == NULL || (rc = make_groups(&m, n)) != 0)
		rc = -ENOMEM;
	else
		rc = mg__file_open_source(local, m.opts, &m.fd, &m.meta, err, sizeof(err));
	if (rc == 0)
		run_parallel(many_worker, &m, m.ngroups);
	for (i = 0; i < n; i++) {
		int c = m.codes != NULL && rc == 0 ? m.codes[i] : rc;
		if (codes != NULL)
			codes[i] = c;
		if (results == NULL)
			continue;
		if (rc == 0) {
			results[i] = m.res[i];
			continue;
		}
		memset(&results[i], 0, sizeof(results[i]));
		mg__file_set_err(&results[i], rc, err, local);
	}
	for (i = 0; rc == 0 && i < n; i++)
		rc = m.codes[i];
	if (m.fd >= 0)
		close(m.fd);
	free(m.codes);
	free(m.res);
	free(m.order);
	free(m.groups);
	return rc;
}
