/*
 * files_tree.c: directory trees, built from single-file transfers plus
 * three small operations on the far side.
 *
 *   mg.file.list(path, out)       -> nil, then pages on the sender out:
 *       [1, count, entries] with every entry below path, path itself
 *       first as ".", folders before their contents, entries being count
 *       encoded [rel, type, mode, size, mtime, link|nil] (type 1 folder,
 *       2 file, 3 symlink); then [2, total, code, message].  Pages hold
 *       at most LIST_PAGE_ENTRIES entries or about LIST_PAGE_BYTES, so a
 *       folder of any size never makes one giant message, and the walk
 *       runs on a thread of its own while the caller reads.
 *   mg.file.mkdir(path, mode)     -> nil; an existing folder is fine
 *   mg.file.symlink(target, path) -> nil; replaces path atomically
 *   mg.file.utime(path, mode, mtime) -> nil
 *
 * Folders are made private (0700) while they fill and get their own mode
 * and mtime last, deepest first, so writing their contents neither fails
 * on a read-only folder nor moves its mtime afterwards.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "services/files.h"

enum { T_DIR = 1, T_FILE = 2, T_LINK = 3 };

struct entry {
	char *rel;
	int type;
	uint32_t mode;
	uint64_t size;
	struct timespec mtime;
	char *link;
};

struct tree {
	struct entry *e;
	size_t n, cap;
};

static void tree_fini(struct tree *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		free(t->e[i].rel);
		free(t->e[i].link);
	}
	free(t->e);
	memset(t, 0, sizeof(*t));
}

static int tree_add(struct tree *t, const char *rel, const struct stat *st, const char *full)
{
	struct entry *e;
	char link[PATH_MAX];
	ssize_t n;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct entry *ne = realloc(t->e, cap * sizeof(*ne));
		if (ne == NULL)
			return -ENOMEM;
		t->e = ne;
		t->cap = cap;
	}
	e = &t->e[t->n];
	memset(e, 0, sizeof(*e));
	e->type = S_ISDIR(st->st_mode) ? T_DIR : S_ISREG(st->st_mode) ? T_FILE : T_LINK;
	e->mode = st->st_mode & 07777;
	e->size = (uint64_t)st->st_size;
	e->mtime = st->st_mtim;
	if (e->type == T_LINK && full != NULL) {
		if ((n = readlink(full, link, sizeof(link) - 1)) < 0)
			return -errno;
		link[n] = '\0';
		if ((e->link = strdup(link)) == NULL)
			return -ENOMEM;
	}
	if ((e->rel = strdup(rel)) == NULL) {
		free(e->link);
		return -ENOMEM;
	}
	t->n++;
	return 0;
}

/* Called for each entry of a walk; full is its path, for readlink. */
typedef int (*visit_fn)(void *arg, const char *rel, const struct stat *st, const char *full);

/* Visits root/rel recursively; other kinds (fifos, devices) are left
 * out. */
static int walk(const char *root, const char *rel, visit_fn visit, void *arg)
{
	char full[PATH_MAX], sub[PATH_MAX];
	struct dirent *d;
	struct stat st;
	DIR *dir;
	int rc = 0;

	if (snprintf(full, sizeof(full), "%s/%s", root, rel) >= (int)sizeof(full))
		return -ENAMETOOLONG;
	if ((dir = opendir(full)) == NULL)
		return -errno;
	while (rc == 0 && (d = readdir(dir)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", rel, d->d_name) >= (int)sizeof(sub) ||
		    snprintf(full, sizeof(full), "%s/%s", root, sub) >= (int)sizeof(full)) {
			rc = -ENAMETOOLONG;
			break;
		}
		if (lstat(full, &st) != 0) {
			rc = -errno;
			break;
		}
		if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode) && !S_ISLNK(st.st_mode))
			continue;
		if ((rc = visit(arg, sub, &st, full)) == 0 && S_ISDIR(st.st_mode))
			rc = walk(root, sub, visit, arg);
	}
	closedir(dir);
	return rc;
}

static int tree_visit(void *arg, const char *rel, const struct stat *st, const char *full)
{
	return tree_add(arg, rel, st, full);
}

/* 0 when root is a folder, else -errno. */
static int check_dir(const char *root, struct stat *st)
{
	if (stat(root, st) != 0)
		return -errno;
	return S_ISDIR(st->st_mode) ? 0 : -ENOTDIR;
}

/* Visits root as "." and everything below it. */
static int list_all(const char *root, visit_fn visit, void *arg)
{
	struct stat st;
	int rc;

	if ((rc = check_dir(root, &st)) == 0 && (rc = visit(arg, ".", &st, root)) == 0)
		rc = walk(root, ".", visit, arg);
	return rc;
}

static int tree_list(const char *root, struct tree *t)
{
	int rc;

	memset(t, 0, sizeof(*t));
	if ((rc = list_all(root, tree_visit, t)) != 0)
		tree_fini(t);
	return rc;
}

/* ---- the far side's operations ---------------------------------------- */

/* The listing is sent in pages of at most this many entries, or about
 * this many bytes (an entry is at most a few KiB: two paths). */
#define LIST_PAGE_ENTRIES 1024
#define LIST_PAGE_BYTES (128 * 1024)

enum { LIST_PAGE = 1, LIST_END = 2 };

struct lister {
	char *root;
	struct mg_sender *out;
	struct mg_msg *page;
	uint64_t n, total;
};

static int page_flush(struct lister *l)
{
	int rc;

	if (l->n == 0)
		return 0;
	rc = mg_sender_sendf(l->out, "(iuy)", (int64_t)LIST_PAGE, l->n, mg_msg_data(l->page),
	                     mg_msg_len(l->page));
	mg_msg_free(l->page);
	l->page = NULL;
	l->n = 0;
	return rc;
}

static int page_visit(void *arg, const char *rel, const struct stat *st, const char *full)
{
	struct lister *l = arg;
	char link[PATH_MAX];
	ssize_t n = 0;
	int rc;

	if (S_ISLNK(st->st_mode) && (n = readlink(full, link, sizeof(link) - 1)) < 0)
		return -errno;
	link[n] = '\0';
	if (l->page == NULL && (rc = mg_msg_new(&l->page)) != 0)
		return rc;
	rc = mg_msg_append(l->page, "(siuuts)", rel,
	                   (int64_t)(S_ISDIR(st->st_mode)   ? T_DIR
	                             : S_ISREG(st->st_mode) ? T_FILE
	                                                    : T_LINK),
	                   (uint64_t)(st->st_mode & 07777), (uint64_t)st->st_size, &st->st_mtim,
	                   S_ISLNK(st->st_mode) ? link : NULL);
	if (rc != 0)
		return rc;
	l->n++;
	l->total++;
	if (l->n >= LIST_PAGE_ENTRIES || mg_msg_len(l->page) >= LIST_PAGE_BYTES)
		return page_flush(l);
	return 0;
}

static void *list_main(void *arg)
{
	struct lister *l = arg;
	char err[600] = "";
	int rc;

	if ((rc = list_all(l->root, page_visit, l)) == 0)
		rc = page_flush(l);
	if (rc != 0)
		snprintf(err, sizeof(err), "[Errno %d] %s: listing '%.500s'", -rc,
		         rc > -4096 ? strerror(-rc) : mg_strerror(rc), l->root);
	/* A caller that went away makes the sends fail; nothing to undo. */
	mg_sender_sendf(l->out, "(iuis)", (int64_t)LIST_END, l->total, (int64_t)rc, err);
	mg_msg_free(l->page);
	mg_sender_free(l->out);
	free(l->root);
	free(l);
	return NULL;
}

MG_EXPORT_AS("mg.file.list", file_list)
static int file_list(struct mg_call *call)
{
	struct lister *l;
	const char *path;
	struct stat st;
	int rc;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return mg_call_fail(call, "MemoryError", "out of memory");
	if (mg_call_args(call, "sh", &path, &l->out) != 0) {
		free(l);
		return -1;
	}
	/* A missing path or a file fails the call itself. */
	if ((rc = check_dir(path, &st)) != 0)
		mg__svc_fail_errno(call, -rc, path);
	else if ((l->root = strdup(path)) == NULL)
		rc = mg_call_fail(call, "MemoryError", "out of memory");
	else if ((rc = mg_call_return(call, "n")) == 0 && (rc = mg__svc_thread(list_main, l)) == 0)
		return 0;
	mg_sender_free(l->out);
	free(l->root);
	free(l);
	return -1;
}

static int make_dir(const char *path, uint32_t mode)
{
	struct stat st;

	if (mkdir(path, mode) == 0)
		return 0;
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	return -errno;
}

MG_EXPORT_AS("mg.file.mkdir", file_mkdir)
static int file_mkdir(struct mg_call *call)
{
	const char *path;
	uint64_t mode;
	int rc;

	if (mg_call_args(call, "su", &path, &mode) != 0)
		return -1;
	if ((rc = make_dir(path, (uint32_t)mode & 07777)) != 0)
		return mg__svc_fail_errno(call, -rc, path);
	return 0;
}

static int make_symlink(const char *target, const char *path)
{
	static unsigned counter;
	char tmp[PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s.mgtmp-%ld-%u", path, (long)getpid(),
	         __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
	if (symlink(target, tmp) != 0)
		return -errno;
	if (rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		return -e;
	}
	return 0;
}

MG_EXPORT_AS("mg.file.symlink", file_symlink)
static int file_symlink(struct mg_call *call)
{
	const char *target, *path;
	int rc;

	if (mg_call_args(call, "ss", &target, &path) != 0)
		return -1;
	if ((rc = make_symlink(target, path)) != 0)
		return mg__svc_fail_errno(call, -rc, path);
	return 0;
}

static int set_times(const char *path, uint32_t mode, const struct timespec *mtime)
{
	struct timespec times[2] = {*mtime, *mtime};

	if (chmod(path, mode) != 0 || utimensat(AT_FDCWD, path, times, 0) != 0)
		return -errno;
	return 0;
}

MG_EXPORT_AS("mg.file.utime", file_utime)
static int file_utime(struct mg_call *call)
{
	struct timespec mtime;
	const char *path;
	uint64_t mode;
	int rc;

	if (mg_call_args(call, "sut", &path, &mode, &mtime) != 0)
		return -1;
	if ((rc = set_times(path, (uint32_t)mode & 07777, &mtime)) != 0)
		return mg__svc_fail_errno(call, -rc, path);
	return 0;
}

/* ---- the caller's side ------------------------------------------------ */

static void path_err(struct mg_file_result *res, int rc, const char *path)
{
	snprintf(res->error, sizeof(res->error), "[Errno %d] %s: '%.400s'", -rc, strerror(-rc),
	         path);
}

static void join(char *out, size_t size, const char *root, const char *rel)
{
	if (strcmp(rel, ".") == 0)
		snprintf(out, size, "%s", root);
	else
		snprintf(out, size, "%s/%s", root, rel + 2); /* rel starts "./" */
}

static int remote_call(struct mg_context *ctx, struct mg_file_result *res, const char *fn,
                       const char *fmt, ...)
{
	struct mg_msg *reply;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = mg_vcall(ctx, fn, &reply, fmt, ap);
	va_end(ap);
	if (rc != 0)
		return mg__svc_call_error(rc, res->error, sizeof(res->error));
	mg_msg_free(reply);
	return 0;
}

int mg_file_push_tree(struct mg_context *ctx, const char *local_dir, const char *remote_dir,
                      const struct mg_file_opts *opts, struct mg_file_result *resp)
{
	char lp[PATH_MAX], rp[PATH_MAX];
	struct mg_file_result scratch;
	struct mg_file_result *res = resp ? resp : &scratch;
	struct tree t;
	size_t i;
	int rc;

	res->error[0] = '\0';
	if ((rc = tree_list(local_dir, &t)) != 0) {
		path_err(res, rc, local_dir);
		return rc;
	}
	for (i = 0, rc = 0; rc == 0 && i < t.n; i++) {
		struct entry *e = &t.e[i];
		join(lp, sizeof(lp), local_dir, e->rel);
		join(rp, sizeof(rp), remote_dir, e->rel);
		if (e->type == T_DIR)
			rc = remote_call(ctx, res, "mg.file.mkdir", "su", rp, (uint64_t)0700);
		else if (e->type == T_FILE)
			rc = mg_file_push(ctx, lp, rp, opts, res);
		else
			rc = remote_call(ctx, res, "mg.file.symlink", "ss", e->link, rp);
	}
	for (i = t.n; rc == 0 && i-- > 0;) {
		if (t.e[i].type != T_DIR)
			continue;
		join(rp, sizeof(rp), remote_dir, t.e[i].rel);
		rc = remote_call(ctx, res, "mg.file.utime", "sut", rp, (uint64_t)t.e[i].mode,
		                 &t.e[i].mtime);
	}
	tree_fini(&t);
	return rc;
}

/* Adds a page of the listing to t. */
static int read_page(struct mg_msg *page, struct tree *t)
{
	struct mg_msg *blob;
	const void *p;
	uint64_t count, i;
	int64_t tag;
	size_t n;
	int rc;

	if ((rc = mg_msg_read(page, "(iuy)", &tag, &count, &p, &n)) != 0 ||
	    (rc = mg_msg_new_raw(p, n, &blob)) != 0)
		return rc;
	for (i = 0; rc == 0 && i < count; i++) {
		const char *rel, *link;
		int64_t type;
		uint64_t mode, size;
		struct timespec mtime;
		struct stat st;
		if ((rc = mg_msg_read(blob, "(siuuts)", &rel, &type, &mode, &size, &mtime,
		                      &link)) != 0)
			break;
		/* A listing names paths below its root only. */
		if ((strcmp(rel, ".") != 0 && strncmp(rel, "./", 2) != 0) ||
		    strstr(rel, "/../") != NULL ||
		    (strlen(rel) >= 3 && strcmp(rel + strlen(rel) - 3, "/..") == 0) ||
		    (t->n == 0) != (strcmp(rel, ".") == 0)) {
			rc = MG_EDECODE;
			break;
		}
		memset(&st, 0, sizeof(st));
		st.st_mode = (mode_t)mode | (type == T_DIR    ? S_IFDIR
		                             : type == T_FILE ? S_IFREG
		                                              : 0);
		st.st_size = (off_t)size;
		st.st_mtim = mtime;
		if ((rc = tree_add(t, rel, &st, NULL)) == 0 && type == T_LINK)
			rc = (t->e[t->n - 1].link = strdup(link ? link : "")) ? 0 : -ENOMEM;
	}
	mg_msg_free(blob);
	return rc;
}

/* Lists remote_dir in ctx into t, page by page. */
static int read_listing(struct mg_context *ctx, const char *remote_dir, struct tree *t,
                        struct mg_file_result *res)
{
	struct mg_receiver *rx = NULL;
	struct mg_sender *out = NULL;
	struct mg_msg *m = NULL;
	uint64_t total;
	const char *text;
	int64_t tag, code;
	size_t cnt;
	int rc;

	memset(t, 0, sizeof(*t));
	if ((rc = mg_receiver_new(mg_context_router(ctx), mg_context_id(ctx), MG_POLICY_ANY,
	                          &rx)) != 0 ||
	    (rc = mg_receiver_to_sender(rx, &out)) != 0)
		goto out;
	if ((rc = mg_call(ctx, "mg.file.list", &m, "sh", remote_dir, out)) != 0) {
		rc = mg__svc_call_error(rc, res->error, sizeof(res->error));
		goto out;
	}
	for (;;) {
		mg_msg_free(m);
		m = NULL;
		if ((rc = mg_receiver_get(rx, -1, &m)) != 0) {
			snprintf(res->error, sizeof(res->error), "listing '%.400s': %s", remote_dir,
			         mg_strerror(rc));
			break;
		}
		if (mg_msg_read(m, "ai", &cnt, &tag) != 0)
			tag = 0;
		mg_msg_rewind(m);
		if (tag == LIST_PAGE && (rc = read_page(m, t)) == 0)
			continue;
		if (tag == LIST_END && mg_msg_read(m, "(iuis)", &tag, &total, &code, &text) == 0) {
			if (code != 0 && code > INT32_MIN) {
				rc = (int)code;
				snprintf(res->error, sizeof(res->error), "%s: %s",
				         mg_context_name(ctx), text ? text : "");
			} else {
				rc = code == 0 && total == t->n ? 0 : MG_EDECODE;
			}
			break;
		}
		rc = rc ? rc : MG_EDECODE;
		break;
	}
	if (rc == MG_EDECODE)
		snprintf(res->error, sizeof(res->error), "a bad listing of '%.400s'", remote_dir);
out:
	mg_msg_free(m);
	mg_sender_free(out);
	mg_receiver_free(rx);
	if (rc != 0)
		tree_fini(t);
	return rc;
}

int mg_file_pull_tree(struct mg_context *ctx, const char *remote_dir, const char *local_dir,
                      const struct mg_file_opts *opts, struct mg_file_result *resp)
{
	char lp[PATH_MAX], rp[PATH_MAX];
	struct mg_file_result scratch;
	struct mg_file_result *res = resp ? resp : &scratch;
	struct tree t;
	size_t i;
	int rc;

	res->error[0] = '\0';
	if ((rc = read_listing(ctx, remote_dir, &t, res)) != 0)
		return rc;
	for (i = 0; rc == 0 && i < t.n; i++) {
		struct entry *e = &t.e[i];
		join(lp, sizeof(lp), local_dir, e->rel);
		join(rp, sizeof(rp), remote_dir, e->rel);
		if (e->type == T_DIR)
			rc = make_dir(lp, 0700);
		else if (e->type == T_FILE)
			rc = mg_file_pull(ctx, rp, lp, opts, res);
		else
			rc = make_symlink(e->link, lp);
		if (rc != 0 && res->error[0] == '\0')
			path_err(res, rc, lp);
	}
	for (i = t.n; rc == 0 && i-- > 0;) {
		if (t.e[i].type != T_DIR)
			continue;
		join(lp, sizeof(lp), local_dir, t.e[i].rel);
		if ((rc = set_times(lp, t.e[i].mode, &t.e[i].mtime)) != 0)
			path_err(res, rc, lp);
	}
	tree_fini(&t);
	return rc;
}
