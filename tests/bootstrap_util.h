/*
 * bootstrap_util.h: what test_bootstrap.c and test_bootstrap_hostile.c
 * share: a sandbox (its own bin/ for PATH, TMPDIR and HOME) whose shell
 * runs the first stage (src/connect/bootstrap.c) for real, and boots
 * through it that check what is left behind.
 */
#ifndef MG_TEST_BOOTSTRAP_UTIL_H
#define MG_TEST_BOOTSTRAP_UTIL_H

#include "connect/connect.h"
#include "connect_util.h"
#include "util.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define BUSYBOX "/usr/bin/busybox"

struct sandbox {
	char dir[256];  /* removed at the end */
	char bin[300];  /* PATH for the shell */
	char tmp[300];  /* TMPDIR for the shell */
	char home[300]; /* HOME for the shell: where a cache goes */
	char path_env[320], tmp_env[320], home_env[320];
	const char *env[5];
};

static inline void sandbox_init(struct sandbox *sb)
{
	snprintf(sb->dir, sizeof(sb->dir), "/tmp/mg-bootstrap-test.XXXXXX");
	CHECK(mkdtemp(sb->dir) != NULL);
	snprintf(sb->bin, sizeof(sb->bin), "%s/bin", sb->dir);
	snprintf(sb->tmp, sizeof(sb->tmp), "%s/tmp", sb->dir);
	CHECK_EQ(mkdir(sb->bin, 0755), 0);
	snprintf(sb->home, sizeof(sb->home), "%s/home", sb->dir);
	CHECK_EQ(mkdir(sb->tmp, 0700), 0);
	CHECK_EQ(mkdir(sb->home, 0700), 0);
	snprintf(sb->path_env, sizeof(sb->path_env), "PATH=%s", sb->bin);
	snprintf(sb->tmp_env, sizeof(sb->tmp_env), "TMPDIR=%s", sb->tmp);
	snprintf(sb->home_env, sizeof(sb->home_env), "HOME=%s", sb->home);
	sb->env[0] = sb->path_env;
	sb->env[1] = sb->tmp_env;
	sb->env[2] = sb->home_env;
	sb->env[3] = NULL;
	sb->env[4] = NULL;
}

/* Puts busybox applet name (or target) into the sandbox's PATH. */
static inline void sandbox_link(struct sandbox *sb, const char *name, const char *target)
{
	char p[400];

	snprintf(p, sizeof(p), "%s/%s", sb->bin, name);
	CHECK_EQ(symlink(target, p), 0);
}

static inline void sandbox_script(struct sandbox *sb, const char *name, const char *text)
{
	char p[400];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", sb->bin, name);
	CHECK((fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755)) >= 0);
	CHECK_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static inline void sandbox_unlink(struct sandbox *sb, const char *name)
{
	char p[400];

	snprintf(p, sizeof(p), "%s/%s", sb->bin, name);
	CHECK_EQ(unlink(p), 0);
}

/* The sandbox's sh, by path: the master finds programs on its own PATH. */
static const char *sandbox_sh(struct sandbox *sb)
{
	static char p[400];

	snprintf(p, sizeof(p), "%s/sh", sb->bin);
	return p;
}

static inline int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	CHECK(d != NULL);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static inline void rm_tree(const char *dir)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK_EQ(system(cmd), 0);
}

/* Connects through shell as a first stage (with the cache option if
 * cache). */
static inline int connect_shell_with(struct mg_router *r, const char *shell, const char *const *env,
                                     bool cache, struct mg_context **cp)
{
	struct mg_connect_opts o;

	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	o.name = "first-stage";
	o.first_stage = true;
	o.cache = cache;
	o.program = shell;
	o.env = env;
	o.connect_timeout_ms = 10000;
	return mg_connect(r, &o, cp);
}

static inline int connect_shell(struct mg_router *r, const char *shell, const char *const *env,
                                struct mg_context **cp)
{
	return connect_shell_with(r, shell, env, false, cp);
}

/* What dir holds, or 0 where there is no dir. */
static inline int entries_if_any(const char *dir)
{
	return access(dir, F_OK) == 0 ? count_entries(dir) : 0;
}

/* Connects through shell (with the cache option if cache) with the
 * sandbox's env, which must fail with MG_ECONNECT and a message holding
 * want and want2 (unless NULL) and leave nothing in TMPDIR or HOME (the
 * master ends the shell's input and lets it clean up); then removes the
 * sandbox. */
static inline void connect_fails_with(struct sandbox *sb, const char *shell, bool cache,
                                      const char *want, const char *want2)
{
	struct mg_router *r = util_router(0, "master", 0, 0, false);
	struct mg_context *c;

	CHECK_EQ(connect_shell_with(r, shell, sb->env, cache, &c), MG_ECONNECT);
	if (strstr(mg_errdetail(), want) == NULL ||
	    (want2 != NULL && strstr(mg_errdetail(), want2) == NULL))
		mg_test_fail(__FILE__, __LINE__, "error text: %s", mg_errdetail());
	mg_router_free(r);
	CHECK_EQ(cu_wait_no_children(2000), 0);
	CHECK_EQ(entries_if_any(sb->tmp), 0);
	CHECK_EQ(entries_if_any(sb->home), 0);
	rm_tree(sb->dir);
}

static inline void connect_fails(struct sandbox *sb, const char *shell, const char *want,
                                 const char *want2)
{
	connect_fails_with(sb, shell, false, want, want2);
}

/* dash with one busybox applet alone on PATH; skipped without them. */
static inline void sandbox_dash_and(struct sandbox *sb, const char *applet)
{
	if (access("/usr/bin/dash", X_OK) != 0)
		mg_test_skip("dash is missing");
	if (access(BUSYBOX, X_OK) != 0)
		mg_test_skip("%s is missing (Debian: busybox-static)", BUSYBOX);
	sandbox_init(sb);
	sandbox_link(sb, applet, BUSYBOX);
}

/* Busybox applets the first stages may use (the plain one only sh and
 * chmod; mktemp and uname are its fallbacks, rm cleans up when it
 * fails); gzip never. */
static inline void sandbox_busybox(struct sandbox *sb)
{
	static const char *const applets[] = {"sh", "head", "uname", "mktemp", "chmod", "rm", NULL};

	if (access(BUSYBOX, X_OK) != 0)
		mg_test_skip("%s is missing (Debian: busybox-static)", BUSYBOX);
	for (size_t i = 0; applets[i] != NULL; i++)
		sandbox_link(sb, applets[i], BUSYBOX);
}

/* The size the connector logs as sent by the last bootstrap. */
static _Atomic long sent_bytes;

static inline void log_cb(void *arg, const struct mg_log_record *rec)
{
	const char *p = strstr(rec->message, "the bootstrap sent ");

	if (p != NULL)
		sent_bytes = atol(p + strlen("the bootstrap sent "));
}

/* Where the agent's file was: its argv[0], which the memfd keeps. */
static inline void agent_argv0(struct mg_context *c, char *out, size_t len)
{
	char path[64];
	int64_t pid = 0;
	ssize_t n;
	int fd;

	cu_sysinfo(c, out, len, &pid);
	snprintf(path, sizeof(path), "/proc/%lld/cmdline", (long long)pid);
	CHECK((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0);
	n = read(fd, out, len - 1);
	close(fd);
	CHECK(n > 0);
	out[n] = '\0';
}

/* Boots through the sandbox's shell, pings, and checks the folder the
 * first stage made is gone; where dir is not NULL, also that the program
 * was written there.  Returns the bytes the bootstrap sent. */
static inline long boot_and_check_in(struct sandbox *sb, const char *shell, const char *dir)
{
	struct mg_router *r;
	struct mg_context *c;
	char argv0[512];

	sent_bytes = 0;
	mg_log_set_handler(log_cb, NULL, MG_LOG_DEBUG);
	r = util_router(0, "master", 0, 0, false);

	if (connect_shell(r, shell, sb->env, &c) != 0)
		mg_test_fail(__FILE__, __LINE__, "connect: %s", mg_errdetail());
	cu_ping(c);
	if (dir != NULL) {
		agent_argv0(c, argv0, sizeof(argv0));
		if (strncmp(argv0, dir, strlen(dir)) != 0 || argv0[strlen(dir)] != '/')
			mg_test_fail(__FILE__, __LINE__, "the program ran as %s, not in %s", argv0,
			             dir);
	}
	CHECK_EQ(count_entries(sb->tmp), 0);
	CHECK_OK(mg_context_shutdown(c, 5000));
	mg_context_free(c);
	mg_router_free(r);
	/* Without the cache option nothing is left, in TMPDIR or HOME. */
	CHECK_EQ(count_entries(sb->tmp), 0);
	CHECK_EQ(count_entries(sb->home), 0);
	rm_tree(sb->dir);
	mg_log_set_handler(NULL, NULL, MG_LOG_WARNING);
	CHECK(sent_bytes > 0);
	return sent_bytes;
}

static inline long boot_and_check(struct sandbox *sb, const char *shell)
{
	return boot_and_check_in(sb, shell, sb->tmp);
}

/* The agent's size as the library embeds it. */
static inline long agent_size(void)
{
	const uint8_t *data;
	size_t len;

	CHECK_OK(mg__agent_image(&data, &len));
	return (long)len;
}

/* mitogen-unpack's size as the library embeds it. */
static inline long unpack_size(void)
{
	const uint8_t *data;
	size_t len;

	CHECK_OK(mg__unpack_image(&data, &len));
	return (long)len;
}

/* Moves the sandbox's TMPDIR and HOME to names with a space and a glob
 * character: the first stage's unquoted $f must not split or expand. */
static inline void sandbox_spaces(struct sandbox *sb)
{
	char tmp[300], home[300];

	snprintf(tmp, sizeof(tmp), "%s/t m*p", sb->dir);
	snprintf(home, sizeof(home), "%s/ho me[1]", sb->dir);
	CHECK_EQ(rename(sb->tmp, tmp), 0);
	CHECK_EQ(rename(sb->home, home), 0);
	snprintf(sb->tmp, sizeof(sb->tmp), "%s", tmp);
	snprintf(sb->home, sizeof(sb->home), "%s", home);
	snprintf(sb->tmp_env, sizeof(sb->tmp_env), "TMPDIR=%s", sb->tmp);
	snprintf(sb->home_env, sizeof(sb->home_env), "HOME=%s", sb->home);
}

#endif
