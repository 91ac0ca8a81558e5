/*
 * local.c: a new child process on this machine running the embedded agent,
 * a program named by the caller, or this very executable ("ship self").
 *
 * Everything that may fail slowly or allocate (the handshake bytes, argv,
 * the environment, finding the program) is prepared on the caller's thread;
 * the broker's helper thread then only makes the socketpair and pipe,
 * queues the handshake in the socket (the child finds it there when it
 * starts reading), spawns, and hands the child to the broker.  A spawn
 * waits for the child's exec, so it is kept off the broker thread, which
 * meanwhile answers the handshakes of children started before: a hundred
 * starts overlap.  Which thread spawns matters: PR_SET_PDEATHSIG fires when
 * the *thread* that made the child exits, and the helper lives exactly as
 * long as the broker, which lives as long as the router the child belongs
 * to.  When the helper cannot be had, the broker spawns itself.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connect/connect.h"

extern char **environ;

struct launch {
	struct mg_context *c;
	int exec_fd; /* the agent's fd (borrowed), or -1 */
	char *path;  /* the program to exec when exec_fd < 0 */
	char *argv[2];
	char **envp;      /* one block: pointers, then strings */
	struct mg_buf hs; /* the parent's half of the handshake */
	struct mg_broker *broker;
	/* What the spawn gave: 0 and the parent's fds and the child, or an
	 * error. */
	int r, chan, errfd, pidfd;
	pid_t pid;
};

static void launch_free(struct launch *L)
{
	mg__free(L->path);
	mg__free(L->argv[0]);
	mg__free(L->envp);
	mg__buf_fini(&L->hs);
	mg__free(L);
}

/* Length of an environment entry's name, '=' excluded. */
static size_t name_len(const char *e)
{
	const char *eq = strchr(e, '=');

	return eq ? (size_t)(eq - e) : strlen(e);
}

/* True when extra sets the variable that entry e sets. */
static bool overridden(const char *e, const char *const *extra)
{
	size_t n = name_len(e), i;

	if (n == sizeof(MG_CONTEXT_ENV) - 1 && memcmp(e, MG_CONTEXT_ENV, n) == 0)
		return true; /* only ship self children get it, and only from us */
	for (i = 0; extra != NULL && extra[i] != NULL; i++)
		if (name_len(extra[i]) == n && memcmp(extra[i], e, n) == 0)
			return true;
	return false;
}

/* Builds the child's environment: this process's, minus what extra
 * replaces, plus extra, plus MITOGEN_CONTEXT=1 for ship self.  Copies every
 * string, since the environment may change before the broker spawns. */
static char **env_build(const char *const *extra, bool ship_self)
{
	static const char flag[] = MG_CONTEXT_ENV "=1";
	size_t n = 0, bytes = 0, i, k = 0;
	char **env, *p;

	for (i = 0; environ != NULL && environ[i] != NULL; i++, n++)
		bytes += strlen(environ[i]) + 1;
	for (i = 0; extra != NULL && extra[i] != NULL; i++, n++)
		bytes += strlen(extra[i]) + 1;
	bytes += sizeof(flag);
	if ((env = mg__malloc((n + 2) * sizeof(char *) + bytes)) == NULL)
		return NULL;
	p = (char *)(env + n + 2);
#define ADD(s)                               \
	do {                                 \
		size_t len_ = strlen(s) + 1; \
		memcpy(p, (s), len_);        \
		env[k++] = p;                \
		p += len_;                   \
	} while (0)
	for (i = 0; environ != NULL && environ[i] != NULL; i++)
		if (!overridden(environ[i], extra))
			ADD(environ[i]);
	for (i = 0; extra != NULL && extra[i] != NULL; i++)
		ADD(extra[i]);
	if (ship_self)
		ADD(flag);
#undef ADD
	env[k] = NULL;
	return env;
}

char *mg__find_program(const char *name)
{
	const char *path = getenv("PATH"), *p, *end;
	char buf[4096];

	if (strchr(name, '/') != NULL)
		return mg__strdup(name);
	if (path == NULL || *path == '\0')
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p != '\0'; p = *end ? end + 1 : end) {
		size_t n;

		end = strchr(p, ':');
		if (end == NULL)
			end = p + strlen(p);
		n = (size_t)(end - p);
		if (snprintf(buf, sizeof(buf), "%.*s%s%s", (int)n, p, n ? "/" : "", name) <
		            (int)sizeof(buf) &&
		    access(buf, X_OK) == 0)
			return mg__strdup(buf);
	}
	return mg__strdup(name); /* exec reports ENOENT with the name */
}

static const char *launch_what(const struct launch *L)
{
	return L->exec_fd >= 0 ? "the agent" : L->path;
}

/* Makes the channel and starts the child.  Thread: the broker's helper, or
 * the broker. */
static void launch_spawn(struct launch *L)
{
	struct mg_spawn sp;
	int sv[2] = {-1, -1}, ep[2] = {-1, -1}, r = 0;
	ssize_t w;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
	    pipe2(ep, O_CLOEXEC) != 0) {
		r = -errno;
		goto out;
	}
	/* A fresh socket's buffer takes a few hundred bytes without blocking. */
	while ((w = write(sv[0], L->hs.data, L->hs.len)) < 0 && errno == EINTR)
		;
	if (w != (ssize_t)L->hs.len) {
		r = w < 0 ? -errno : -EIO;
		goto out;
	}
	memset(&sp, 0, sizeof(sp));
	sp.exec_fd = L->exec_fd;
	sp.path = L->path;
	sp.argv = L->argv;
	sp.envp = L->envp;
	sp.chan_fd = sv[1];
	sp.err_fd = ep[1];
	if ((r = mg__spawn(&sp)) == 0) {
		L->chan = sv[0];
		L->errfd = ep[0];
		L->pid = sp.pid;
		L->pidfd = sp.pidfd;
		sv[0] = ep[0] = -1;
	}
out:
	mg__spawn_close_fds(sv, ep);
	L->r = r;
}

/* Hands the child (or the failure) to the connector.  Thread: broker. */
static void launch_finish(void *arg)
{
	struct launch *L = arg;

	if (L->r == 0)
		mg__conn_launched(L->c, L->chan, L->errfd, L->pid, L->pidfd);
	else
		mg__conn_launch_failed(L->c, MG_ECONNECT, "cannot run %s: %s", launch_what(L),
		                       mg_strerror(L->r));
	launch_free(L);
}

/* Thread: the broker's helper. */
static void launch_job(void *arg)
{
	struct launch *L = arg;

	launch_spawn(L);
	/* Only -ENOMEM can refuse a forced post, and the connector must hear
	 * back: its context's free waits for it. */
	while (mg__broker_post_force(L->broker, launch_finish, L) != 0)
		usleep(1000);
}

/* Thread: broker (when the helper could not take the launch). */
static void launch_cb(void *arg)
{
	launch_spawn(arg);
	launch_finish(arg);
}

static int launch_prepare(struct mg_context *c, const struct mg_connect_opts *o, struct launch *L)
{
	struct mg_boot boot;
	size_t n = strlen(c->name) + sizeof("mitogen:");
	int r;

	L->exec_fd = -1;
	if (o->ship_self)
		L->path = mg__strdup(MG_SELF_EXE);
	else if (o->program != NULL)
		L->path = mg__find_program(o->program);
	else if ((L->exec_fd = mg__agent_memfd()) < 0)
		return L->exec_fd;
	if (L->exec_fd < 0 && L->path == NULL)
		return -ENOMEM;
	/* Visible in ps, as Mitogen's children are. */
	if ((L->argv[0] = mg__malloc(n)) == NULL)
		return -ENOMEM;
	snprintf(L->argv[0], n, "mitogen:%s", c->name);
	if ((L->envp = env_build(o->env, o->ship_self)) == NULL)
		return -ENOMEM;
	mg__boot_for_child(c->router, c->id, c->name, &boot);
	mg__buf_init(&L->hs, MG_HS_BOOT_LINE_LEN + 4 + MG_HS_BOOT_MAX);
	if ((r = mg__hs_boot_build(&boot, &L->hs)) != 0)
		return r;
	return 0;
}

void mg__local_start(struct mg_context *c, const struct mg_connect_opts *o, mg_conn_done_cb done,
                     void *done_arg)
{
	struct launch *L;
	int r;

	if (mg__conn_new(c, o->connect_timeout_ms, done, done_arg) != 0)
		return;
	if ((L = mg__calloc(1, sizeof(*L))) == NULL) {
		mg__conn_launch_failed(c, -ENOMEM, "out of memory");
		return;
	}
	mg__buf_init(&L->hs, 0);
	L->c = c;
	if ((r = launch_prepare(c, o, L)) != 0) {
		mg__conn_launch_failed(c, r == MG_ECONNECT ? r : MG_ECONNECT,
		                       "cannot prepare %s: %s",
		                       o->program ? o->program : "the agent", mg_strerror(r));
		launch_free(L);
		return;
	}
	L->broker = c->router->broker;
	if (mg__conn_post_helper(c, launch_job, L) != 0 &&
	    (r = mg__conn_post(c, launch_cb, L)) != 0) {
		mg__conn_launch_failed(c, r, "the router is shutting down");
		launch_free(L);
	}
}
