/*
 * files_client.c: mg_file_push() and mg_file_pull(), the caller's side of
 * mg.file.recv and mg.file.send (files_serve.c).  The local end is
 * prepared before the call (the source opened, or the temporary file
 * made), so a local failure costs the remote side nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "services/files.h"

void mg_file_opts_init(struct mg_file_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->keep_owner = true;
	o->mode = -1;
}

const struct mg_file_opts *mg__file_opts_or_default(const struct mg_file_opts *o,
                                                    struct mg_file_opts *def)
{
	if (o != NULL)
		return o;
	mg_file_opts_init(def);
	return def;
}

void mg__file_set_err(struct mg_file_result *res, int rc, const char *text, const char *path)
{
	if (text != NULL && text[0] != '\0')
		snprintf(res->error, sizeof(res->error), "%s", text);
	else
		snprintf(res->error, sizeof(res->error), "%s: %s", path, mg_strerror(rc));
}

int mg__file_push_fd(struct mg_context *ctx, int fd, const struct file_meta *meta,
                     const char *remote, const struct mg_file_opts *opts, uint64_t *hashp,
                     char *err, size_t errsize)
{
	struct mg_router *r = mg_context_router(ctx);
	struct mg_receiver *status = NULL;
	struct mg_sender *st_sender = NULL, *data = NULL;
	struct mg_msg *reply = NULL;
	int rc;

	if ((rc = mg_receiver_new(r, mg_context_id(ctx), MG_POLICY_ANY, &status)) != 0 ||
	    (rc = mg_receiver_to_sender(status, &st_sender)) != 0)
		goto out;
	rc = mg_call(ctx, "mg.file.recv", &reply, "suutiibuh", remote, meta->size,
	             (uint64_t)meta->mode, &meta->mtime, meta->uid, meta->gid,
	             (int)opts->keep_owner, (uint64_t)opts->window, st_sender);
	if (rc != 0) {
		rc = mg__svc_call_error(rc, err, errsize);
		goto out;
	}
	if ((rc = mg_msg_read(reply, "h", &data)) != 0)
		goto out;
	rc = mg__file_source_run(fd, meta->size, opts->window, data, status, hashp, err, errsize);
out:
	mg_msg_free(reply);
	mg_sender_free(data);
	mg_sender_free(st_sender);
	mg_receiver_free(status);
	return rc;
}

int mg__file_open_source(const char *local, const struct mg_file_opts *opts, int *fdp,
                         struct file_meta *meta, char *err, size_t errsize)
{
	struct stat st;
	int fd;

	if ((fd = mg__open_regular(local, &st)) < 0) {
		if (fd == -EINVAL || fd == -EISDIR)
			snprintf(err, errsize, "[Errno %d] not a regular file: '%s'", -fd, local);
		else
			snprintf(err, errsize, "[Errno %d] %s: '%s'", -fd, strerror(-fd), local);
		return fd;
	}
	mg__file_meta_from_stat(&st, meta);
	if (opts->mode >= 0)
		meta->mode = (uint32_t)opts->mode & 07777;
	*fdp = fd;
	return 0;
}

int mg_file_push(struct mg_context *ctx, const char *local, const char *remote,
                 const struct mg_file_opts *opts, struct mg_file_result *resp)
{
	struct mg_file_result scratch;
	struct mg_file_result *res = resp ? resp : &scratch;
	struct mg_file_opts def;
	struct file_meta meta;
	char err[512] = "";
	uint64_t hash = 0;
	int fd = -1, rc;

	opts = mg__file_opts_or_default(opts, &def);
	res->error[0] = '\0';
	if ((rc = mg__file_open_source(local, opts, &fd, &meta, err, sizeof(err))) == 0)
		rc = mg__file_push_fd(ctx, fd, &meta, remote, opts, &hash, err, sizeof(err));
	if (rc == 0) {
		res->bytes += meta.size;
		res->files++;
		res->hash = hash;
	} else {
		mg__file_set_err(res, rc, err, remote);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

int mg_file_pull(struct mg_context *ctx, const char *remote, const char *local,
                 const struct mg_file_opts *opts, struct mg_file_result *resp)
{
	struct mg_router *r = mg_context_router(ctx);
	struct mg_file_result scratch;
	struct mg_file_result *res = resp ? resp : &scratch;
	struct mg_sender *status = NULL, *data_sender = NULL;
	struct mg_receiver *data = NULL;
	struct mg_file_opts def;
	struct mg_msg *reply = NULL;
	struct file_sink k;
	uint64_t mode;
	char err[512] = "";
	int rc;

	opts = mg__file_opts_or_default(opts, &def);
	res->error[0] = '\0';
	if ((rc = mg__file_sink_open(&k, local, err, sizeof(err))) != 0)
		goto out;
	if ((rc = mg_receiver_new(r, mg_context_id(ctx), MG_POLICY_ANY, &data)) != 0 ||
	    (rc = mg_receiver_to_sender(data, &data_sender)) != 0)
		goto out;
	rc = mg_call(ctx, "mg.file.send", &reply, "suh", remote, (uint64_t)opts->window,
	             data_sender);
	if (rc != 0) {
		rc = mg__svc_call_error(rc, err, sizeof(err));
		goto out;
	}
	if ((rc = mg_msg_read(reply, "uutiih", &k.meta.size, &mode, &k.meta.mtime, &k.meta.uid,
	                      &k.meta.gid, &status)) != 0)
		goto out;
	k.meta.mode = opts->mode >= 0 ? (uint32_t)opts->mode & 07777 : (uint32_t)mode & 07777;
	k.keep_owner = opts->keep_owner;
	rc = mg__file_sink_run(&k, data, status, opts->window, err, sizeof(err));
	if (rc == 0) {
		res->bytes += k.meta.size;
		res->files++;
		res->hash = k.hash;
	}
out:
	if (rc != 0)
		mg__file_set_err(res, rc, err, local);
	mg__file_sink_fini(&k);
	mg_msg_free(reply);
	mg_sender_free(status);
	mg_sender_free(data_sender);
	mg_receiver_free(data);
	return rc;
}
