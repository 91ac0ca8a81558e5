/*
 * files_serve.c: the exported half of file transfers.
 *
 *   mg.file.recv(path, size, mode, mtime, uid, gid, keep_owner, window,
 *                status) -> (data)
 *       this context receives a file: the sink runs here.
 *   mg.file.send(path, window, data)
 *                -> (size, mode, mtime, uid, gid, status)
 *       this context sends a file: the source runs here.
 *
 * Both reply as soon as the file is open (so a missing source, a target
 * that is a folder or a folder without write permission fail the call
 * itself) and move the bytes on a thread of their own, leaving the
 * dispatcher free: a gateway can receive one file and serve others at the
 * same time.  The receivers they make have the caller as respondent, so a
 * caller that goes away ends the transfer (and a sink unlinks its
 * temporary file).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/files.h"

const char *const mg__files_services[] = {
        "mg.file.recv",  "mg.file.send", "mg.file.mkdir",  "mg.file.symlink",
        "mg.file.utime", "mg.file.list", "mg.file.fanout", NULL};

struct recv_job {
	struct file_sink sink;
	struct mg_receiver *data;
	struct mg_sender *status;
	uint64_t window;
};

static void *recv_main(void *arg)
{
	struct recv_job *j = arg;
	char err[512];

	mg__file_sink_run(&j->sink, j->data, j->status, j->window, err, sizeof(err));
	mg__file_sink_fini(&j->sink);
	mg_receiver_free(j->data);
	mg_sender_free(j->status);
	free(j);
	return NULL;
}

int mg__file_sink_serve(struct mg_call *call, struct file_sink *k, const struct file_meta *meta,
                        bool keep_owner, struct mg_sender *status, struct mg_receiver **datap,
                        void *(*fn)(void *), void *job)
{
	struct mg_sender *data = NULL;
	int rc;

	k->meta = *meta;
	k->keep_owner = keep_owner;
	rc = mg_receiver_new(mg_call_router(call), mg_sender_context(status), MG_POLICY_ANY, datap);
	if (rc == 0)
		rc = mg_receiver_to_sender(*datap, &data);
	if (rc == 0)
		rc = mg_call_return(call, "h", data);
	if (rc == 0)
		rc = mg__svc_thread(fn, job);
	mg_sender_free(data);
	if (rc == 0)
		return 0;
	mg_call_fail(call, "OSError", "cannot start receiving: %s", mg_strerror(rc));
	return -1;
}

MG_EXPORT_AS("mg.file.recv", file_recv)
static int file_recv(struct mg_call *call)
{
	struct file_meta meta;
	struct recv_job *j;
	const char *path;
	uint64_t size, mode;
	struct timespec mtime;
	int64_t uid, gid;
	char err[512];
	bool keep;
	int rc;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return mg_call_fail(call, "MemoryError", "out of memory");
	j->sink.fd = -1;
	if (mg_call_args(call, "suutiibuh", &path, &size, &mode, &mtime, &uid, &gid, &keep,
	                 &j->window, &j->status) != 0) {
		free(j);
		return -1;
	}
	if ((rc = mg__file_sink_open(&j->sink, path, err, sizeof(err))) != 0) {
		mg_call_fail(call, mg__svc_errno_type(-rc), "%s", err);
		goto fail;
	}
	meta = (struct file_meta){size, (uint32_t)mode & 07777, mtime, uid, gid};
	if (mg__file_sink_serve(call, &j->sink, &meta, keep, j->status, &j->data, recv_main, j) ==
	    0)
		return 0;
fail:
	mg__file_sink_fini(&j->sink);
	mg_receiver_free(j->data);
	mg_sender_free(j->status);
	free(j);
	return -1;
}

struct send_job {
	int fd;
	uint64_t size, window;
	struct mg_sender *data;
	struct mg_receiver *status;
};

static void *send_main(void *arg)
{
	struct send_job *j = arg;
	uint64_t hash;
	char err[512];

	mg__file_source_run(j->fd, j->size, j->window, j->data, j->status, &hash, err, sizeof(err));
	close(j->fd);
	mg_receiver_free(j->status);
	mg_sender_free(j->data);
	free(j);
	return NULL;
}

MG_EXPORT_AS("mg.file.send", file_send)
static int file_send(struct mg_call *call)
{
	struct mg_sender *status = NULL;
	struct file_meta meta;
	struct send_job *j;
	const char *path;
	struct stat st;
	int rc;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return mg_call_fail(call, "MemoryError", "out of memory");
	j->fd = -1;
	if (mg_call_args(call, "suh", &path, &j->window, &j->data) != 0) {
		free(j);
		return -1;
	}
	if ((j->fd = mg__open_regular(path, &st)) < 0) {
		if (j->fd == -EINVAL)
			mg_call_fail(call, mg__svc_errno_type(EINVAL),
			             "[Errno %d] not a regular file: '%s'", EINVAL, path);
		else
			mg__svc_fail_errno(call, -j->fd, path);
		goto fail;
	}
	mg__file_meta_from_stat(&st, &meta);
	j->size = meta.size;
	rc = mg_receiver_new(mg_call_router(call), mg_sender_context(j->data), MG_POLICY_ANY,
	                     &j->status);
	if (rc == 0)
		rc = mg_receiver_to_sender(j->status, &status);
	if (rc == 0)
		rc = mg_call_return(call, "uutiih", meta.size, (uint64_t)meta.mode, &meta.mtime,
		                    meta.uid, meta.gid, status);
	if (rc == 0)
		rc = mg__svc_thread(send_main, j);
	mg_sender_free(status);
	if (rc == 0)
		return 0;
	mg_call_fail(call, "OSError", "cannot start sending: %s", mg_strerror(rc));
fail:
	if (j->fd >= 0)
		close(j->fd);
	mg_receiver_free(j->status);
	mg_sender_free(j->data);
	free(j);
	return -1;
}
