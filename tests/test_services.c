/*
 * test_services.c: the agent's built-in functions (src/services/).
 *
 * Three kinds of case:
 *  - helpers tested alone (WSL detection, sysinfo collection);
 *  - "inproc_*": the functions called through the real dispatcher and call
 *    machinery, with the callee's router in this same process (two routers
 *    joined by a socketpair, the dispatcher on a thread), so each service's
 *    logic and its argument checking are tested without starting a child;
 *  - "local_*" and "fork_*": the same calls against real child contexts.
 */
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "connect/connect.h"
#include "context/calls.h"
#include "services/services.h"
#include "util.h"

/* ---- helpers alone ---------------------------------------------------------- */

TEST(services_registered)
{
	/* Fails when linking dropped a services object and its constructors:
	 * the agent would then answer "no such function" to mg.ping. */
	const char *const *n;

	for (n = mg__builtin_services; *n != NULL; n++)
		if (mg__export_find(*n) == NULL)
			mg_test_fail(__FILE__, __LINE__, "%s is not registered", *n);
	for (n = mg__test_services; *n != NULL; n++)
		if (mg__export_find(*n) == NULL)
			mg_test_fail(__FILE__, __LINE__, "%s is not registered", *n);
}

TEST(wsl_detection)
{
	static const struct {
		const char *osrelease, *version, *distro;
		bool wsl;
	} cases[] = {
	        {NULL, NULL, NULL, false},
	        {"6.1.0-18-amd64", "Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)",
	         NULL, false},
	        {"", "", "", false},
	        /* WSL 1 and WSL 2 kernels as they report themselves. */
	        {"4.4.0-19041-Microsoft", NULL, NULL, true},
	        {"5.15.133.1-microsoft-standard-WSL2", NULL, NULL, true},
	        {NULL, "Linux version 5.10.16.3-microsoft-standard-WSL2 (oe-user@oe-host)", NULL,
	         true},
	        /* A custom kernel under WSL: only the launcher's variable says so. */
	        {"6.6.0-custom", "Linux version 6.6.0-custom", "Debian", true},
	        {"6.6.0-custom", NULL, NULL, false},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (mg__sysinfo_is_wsl(cases[i].osrelease, cases[i].version, cases[i].distro) !=
		    cases[i].wsl)
			mg_test_fail(__FILE__, __LINE__, "case %zu (%s | %s | %s): expected %d", i,
			             cases[i].osrelease ? cases[i].osrelease : "NULL",
			             cases[i].version ? cases[i].version : "NULL",
			             cases[i].distro ? cases[i].distro : "NULL", cases[i].wsl);
}

/* The passwd name for uid, or its number, as sysinfo must report it. */
static void expected_user(char *out, size_t size)
{
	struct passwd *pw = getpwuid(getuid());

	if (pw != NULL)
		snprintf(out, size, "%s", pw->pw_name);
	else
		snprintf(out, size, "%lu", (unsigned long)getuid());
}

TEST(sysinfo_collect)
{
	struct mg__sysinfo si;
	struct utsname u;
	char user[256];

	CHECK_OK(mg__sysinfo_collect(&si));
	CHECK_EQ(uname(&u), 0);
	expected_user(user, sizeof(user));
	CHECK_EQ(si.pid, getpid());
	CHECK_EQ(si.uid, getuid());
	CHECK_STR(si.user, user);
	CHECK_STR(si.hostname, u.nodename);
	CHECK_STR(si.os, u.sysname);
	CHECK_STR(si.arch, u.machine);
	CHECK_STR(si.kernel, u.release);
}

TEST(sysinfo_wsl_from_environment)
{
	struct mg__sysinfo si;

	CHECK_EQ(setenv("WSL_DISTRO_NAME", "Ubuntu", 1), 0);
	CHECK_OK(mg__sysinfo_collect(&si));
	CHECK(si.wsl);
}

/* ---- through the dispatcher, in this process -------------------------------------- */

struct inproc {
	struct mg_router *master, *callee;
	struct mg_context *ctx;
	pthread_t thread;
};

static void *inproc_dispatch(void *arg)
{
	(void)arg;
	mg__dispatch_run();
	return NULL;
}

/* A callee router (id 1, named "svc") whose parent is the master router,
 * serving calls on a dispatcher thread, and the master's context for it. */
static void inproc_start(struct inproc *t)
{
	struct mg_connect_opts o;

	t->master = util_router(0, "master", 0, 0, false);
	t->callee = util_router(1, "svc", 0, 0, false);
	/* Filled by hand: the context layer reads only these fields. */
	memset(&o, 0, sizeof(o));
	o.method = MG_METHOD_LOCAL;
	o.name = "svc";
	CHECK_OK(mg__context_new(t->master, &o, 1, &t->ctx));
	util_join(t->master, t->callee);
	CHECK_OK(mg__dispatch_start(t->callee));
	CHECK_EQ(pthread_create(&t->thread, NULL, inproc_dispatch, NULL), 0);
	mg__context_set_ready(t->ctx);
	CHECK_OK(mg_context_wait_ready(t->ctx, 5000));
}

static void inproc_stop(struct inproc *t)
{
	mg__dispatch_stop();
	CHECK_EQ(pthread_join(t->thread, NULL), 0);
	mg_router_free(t->callee);
	mg_context_free(t->ctx);
	mg_router_free(t->master);
}

/* Checks the last call error's fields. */
static void expect_error(int rc, int code, const char *type, const char *function)
{
	const struct mg_error *e = mg_last_error();

	CHECK_EQ(rc, code);
	CHECK_EQ(e->code, code);
	CHECK_STR(e->type, type);
	CHECK_STR(e->function, function);
}

static void check_ping(struct mg_context *c)
{
	struct mg_msg *reply;
	bool ok = false;

	CHECK_OK(mg_call(c, "mg.ping", &reply, ""));
	CHECK_OK(mg_msg_read(reply, "b", &ok));
	CHECK(ok);
	CHECK(mg_msg_at_end(reply));
	mg_msg_free(reply);
}

TEST(inproc_ping)
{
	struct inproc t;
	struct mg_msg *reply;

	inproc_start(&t);
	check_ping(t.ctx);
	/* Extra arguments are an ArgumentError, not silently dropped. */
	expect_error(mg_call(t.ctx, "mg.ping", &reply, "i", (int64_t)1), MG_EARGS,
	             "mitogen.ArgumentError", "mg.ping");
	CHECK_STR(mg_last_error()->context, "svc");
	inproc_stop(&t);
}

/* Sends one value (packed by fmt) through mg.echo and checks the reply is
 * the same bytes. */
#define CHECK_ECHO(c, fmt, ...)                                                      \
	do {                                                                         \
		struct mg_msg *want_, *got_;                                         \
		CHECK_OK(mg_msg_pack(&want_, fmt, __VA_ARGS__));                     \
		CHECK_OK(mg_call(c, "mg.echo", &got_, fmt, __VA_ARGS__));            \
		CHECK_UINT(mg_msg_len(got_), ==, mg_msg_len(want_));                 \
		CHECK_MEM(mg_msg_data(got_), mg_msg_data(want_), mg_msg_len(want_)); \
		mg_msg_free(got_);                                                   \
		mg_msg_free(want_);                                                  \
	} while (0)

static void check_echo(struct mg_context *c, size_t big)
{
	struct mg_msg *reply;
	const void *p;
	uint8_t *blob;
	size_t i, n;

	CHECK_ECHO(c, "i", (int64_t)-123456789012LL);
	CHECK_ECHO(c, "u", (uint64_t)UINT64_MAX);
	CHECK_ECHO(c, "d", 3.25);
	CHECK_ECHO(c, "s", "h\xc3\xa9llo");
	CHECK_ECHO(c, "b", 0);
	CHECK_ECHO(c, "(is{sb}n)", (int64_t)7, "x", "k", 1);
	/* A large binary argument, read back as bytes. */
	blob = malloc(big);
	CHECK(blob != NULL);
	for (i = 0; i < big; i++)
		blob[i] = (uint8_t)(i * 131 + (i >> 12));
	CHECK_OK(mg_call(c, "mg.echo", &reply, "y", blob, big));
	CHECK_OK(mg_msg_read(reply, "y", &p, &n));
	CHECK_UINT(n, ==, big);
	CHECK_MEM(p, blob, big);
	mg_msg_free(reply);
	free(blob);
}

TEST(inproc_echo)
{
	struct inproc t;
	struct mg_msg *reply;

	inproc_start(&t);
	check_echo(t.ctx, 1 << 20);
	expect_error(mg_call(t.ctx, "mg.echo", &reply, ""), MG_EARGS, "mitogen.ArgumentError",
	             "mg.echo");
	expect_error(mg_call(t.ctx, "mg.echo", &reply, "ii", (int64_t)1, (int64_t)2), MG_EARGS,
	             "mitogen.ArgumentError", "mg.echo");
	inproc_stop(&t);
}

/* Reads an mg.sysinfo reply the way a caller should: by key, in any order,
 * skipping keys it does not know.  Checks every expected key came. */
static void read_sysinfo(struct mg_msg *reply, struct mg__sysinfo *si)
{
	unsigned seen = 0;
	size_t pairs, i;
	const char *key, *s;
	bool b;

	memset(si, 0, sizeof(*si));
	CHECK_OK(mg_msg_read(reply, "m", &pairs));
	for (i = 0; i < pairs; i++) {
		CHECK_OK(mg_msg_read(reply, "s", &key));
		if (strcmp(key, "pid") == 0) {
			CHECK_OK(mg_msg_read(reply, "i", &si->pid));
			seen |= 1;
		} else if (strcmp(key, "uid") == 0) {
			CHECK_OK(mg_msg_read(reply, "i", &si->uid));
			seen |= 2;
		} else if (strcmp(key, "wsl") == 0) {
			CHECK_OK(mg_msg_read(reply, "b", &b));
			si->wsl = b;
			seen |= 4;
		} else {
			const struct {
				const char *name;
				char *dst;
				size_t size;
			} text[] = {
			        {"user", si->user, sizeof(si->user)},
			        {"hostname", si->hostname, sizeof(si->hostname)},
			        {"os", si->os, sizeof(si->os)},
			        {"arch", si->arch, sizeof(si->arch)},
			        {"kernel", si->kernel, sizeof(si->kernel)},
			};
			size_t k;

			CHECK_OK(mg_msg_read(reply, "s", &s));
			for (k = 0; k < sizeof(text) / sizeof(text[0]); k++)
				if (strcmp(key, text[k].name) == 0) {
					snprintf(text[k].dst, text[k].size, "%s", s);
					seen |= 8u << k;
				}
		}
	}
	CHECK(mg_msg_at_end(reply));
	CHECK_UINT(seen, ==, 0xffu);
}

/* Checks a sysinfo reply against this machine; pid is the callee's. */
static void check_sysinfo(struct mg_context *c, int64_t *pidp)
{
	struct mg__sysinfo got, want;
	struct mg_msg *reply;

	CHECK_OK(mg_call(c, "mg.sysinfo", &reply, ""));
	read_sysinfo(reply, &got);
	mg_msg_free(reply);
	CHECK_OK(mg__sysinfo_collect(&want));
	CHECK_INT(got.pid, >, 0);
	CHECK_EQ(got.uid, want.uid);
	CHECK_STR(got.user, want.user);
	CHECK_STR(got.hostname, want.hostname);
	CHECK_STR(got.os, want.os);
	CHECK_STR(got.arch, want.arch);
	CHECK_STR(got.kernel, want.kernel);
	CHECK_EQ(got.wsl, want.wsl);
	*pidp = got.pid;
}

TEST(inproc_sysinfo)
{
	struct inproc t;
	int64_t pid;

	inproc_start(&t);
	check_sysinfo(t.ctx, &pid);
	CHECK_EQ(pid, getpid());
	inproc_stop(&t);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void check_sleep_and_fail(struct mg_context *c)
{
	struct mg_msg *reply;
	int64_t t0 = now_ms();
	bool ok;

	CHECK_OK(mg_call(c, "mg.sleep", &reply, "i", (int64_t)50));
	CHECK_INT(now_ms() - t0, >=, 50);
	CHECK_OK(mg_msg_read(reply, "b", &ok));
	CHECK(ok);
	mg_msg_free(reply);
	expect_error(mg_call(c, "mg.sleep", &reply, "i", (int64_t)-1), MG_EREMOTE, "ValueError",
	             "mg.sleep");
	expect_error(mg_call(c, "mg.sleep", &reply, "s", "soon"), MG_EARGS, "mitogen.ArgumentError",
	             "mg.sleep");

	expect_error(mg_call(c, "mg.fail", &reply, "ss", "KeyError", "no such key: 'x'"),
	             MG_EREMOTE, "KeyError", "mg.fail");
	CHECK_STR(mg_last_error()->message, "no such key: 'x'");
	CHECK_STR(mg_last_error()->context, mg_context_name(c));
	/* A type the caller maps to its own code keeps that code. */
	expect_error(mg_call(c, "mg.fail", &reply, "ss", "mitogen.NoSuchFunction", "pretend"),
	             MG_ENOFUNC, "mitogen.NoSuchFunction", "mg.fail");
	expect_error(mg_call(c, "mg.fail", &reply, "ss", "", "untyped"), MG_EREMOTE, "ValueError",
	             "mg.fail");
}

TEST(inproc_sleep_and_fail)
{
	struct inproc t;

	inproc_start(&t);
	check_sleep_and_fail(t.ctx);
	inproc_stop(&t);
}

/* Starts mg.stream(count) on c into a new receiver; returns the receiver
 * and the call's own receiver. */
static void stream_start(struct mg_context *c, int64_t count, struct mg_receiver **datap,
                         struct mg_receiver **callp)
{
	struct mg_sender *s;

	CHECK_OK(mg_receiver_new(mg_context_router(c), mg_context_id(c), MG_POLICY_ANY, datap));
	CHECK_OK(mg_receiver_to_sender(*datap, &s));
	CHECK_OK(mg_call_async(c, "mg.stream", callp, "hi", s, count));
	mg_sender_free(s);
}

/* Reads count values 0..count-1 and then the close. */
static void stream_drain(struct mg_receiver *rx, int64_t count)
{
	struct mg_msg *m;
	int64_t i, v;

	for (i = 0; i < count; i++) {
		CHECK_OK(mg_receiver_get(rx, 10000, &m));
		CHECK_OK(mg_msg_read(m, "i", &v));
		CHECK_EQ(v, i);
		mg_msg_free(m);
	}
	CHECK_EQ(mg_receiver_get(rx, 10000, &m), MG_ECLOSED);
}

static void stream_finish(struct mg_receiver *call, int64_t count)
{
	struct mg_msg *reply;
	int64_t n;

	CHECK_OK(mg_call_wait(call, 10000, &reply));
	CHECK_OK(mg_msg_read(reply, "i", &n));
	CHECK_EQ(n, count);
	mg_msg_free(reply);
	mg_receiver_free(call);
}

static void check_stream(struct mg_context *c, int64_t count)
{
	struct mg_receiver *data, *call;
	struct mg_msg *reply;

	stream_start(c, count, &data, &call);
	stream_drain(data, count);
	stream_finish(call, count);
	mg_receiver_free(data);

	/* A negative count fails, and still frees the sender it was given. */
	stream_start(c, -1, &data, &call);
	expect_error(mg_call_wait(call, 10000, &reply), MG_EREMOTE, "ValueError", "mg.stream");
	mg_receiver_free(call);
	mg_receiver_free(data);
}

TEST(inproc_stream)
{
	struct inproc t;

	inproc_start(&t);
	check_stream(t.ctx, 0);
	/* More values than fit under the high-water mark at once: the sender
	 * must wait for the reader rather than fail. */
	check_stream(t.ctx, 200000);
	inproc_stop(&t);
}

/* ---- against real children ---------------------------------------------------------- */

__attribute__((constructor)) static void prime_agent_fd(void)
{
	/* The library makes the agent's fd once per process and keeps it:
	 * make it before the runner counts each case's fds. */
	if (mg__agent_memfd() < 0)
		abort();
}

static struct mg_context *start_child(struct mg_router *r, int method, const char *const *env)
{
	struct mg_connect_opts o;
	struct mg_context *c;

	mg_connect_opts_init(&o, method);
	o.env = env;
	CHECK_OK(mg_connect(r, &o, &c));
	return c;
}

static void stop_child(struct mg_context *c)
{
	CHECK_OK(mg_context_shutdown(c, 5000));
	mg_context_free(c);
}

static void check_child_services(int method)
{
	struct mg_router *r = util_router(0, "master", 0, 0, false);
	struct mg_context *c = start_child(r, method, NULL);
	char path[64];
	int64_t pid;

	check_ping(c);
	check_echo(c, 8 << 20);
	check_sysinfo(c, &pid);
	CHECK(pid != getpid());
	snprintf(path, sizeof(path), "/proc/%lld", (long long)pid);
	CHECK_EQ(access(path, F_OK), 0);
	check_sleep_and_fail(c);
	check_stream(c, 1000);
	stop_child(c);
	mg_router_free(r);
}

TEST(local_services)
{
	check_child_services(MG_METHOD_LOCAL);
}

TEST(fork_services)
{
	check_child_services(MG_METHOD_FORK);
}

TEST(local_sysinfo_wsl_from_environment)
{
	static const char *const env[] = {"WSL_DISTRO_NAME=Test", NULL};
	struct mg_router *r = util_router(0, "master", 0, 0, false);
	struct mg_context *c = start_child(r, MG_METHOD_LOCAL, env);
	struct mg__sysinfo si;
	struct mg_msg *reply;

	CHECK_OK(mg_call(c, "mg.sysinfo", &reply, ""));
	read_sysinfo(reply, &si);
	mg_msg_free(reply);
	CHECK(si.wsl);
	stop_child(c);
	mg_router_free(r);
}

static void check_crash(int method)
{
	struct mg_router *r = util_router(0, "master", 0, 0, false);
	struct mg_context *c = start_child(r, method, NULL);
	struct mg_msg *reply;

	expect_error(mg_call(c, "mg.crash", &reply, ""), MG_ECRASH, "mitogen.Crash", "mg.crash");
	CHECK(strstr(mg_last_error()->message, "SIGSEGV") != NULL);
	CHECK_STR(mg_last_error()->context, mg_context_name(c));
	/* The crash takes the context down; later calls fail, never hang. */
	UTIL_WAIT_FOR(mg_context_is_gone(c), 5000);
	CHECK(mg_context_is_gone(c));
	CHECK(mg_call(c, "mg.ping", &reply, "") != 0);
	mg_context_shutdown(c, 5000);
	mg_context_free(c);
	mg_router_free(r);
}

TEST(local_crash)
{
	check_crash(MG_METHOD_LOCAL);
}

TEST(fork_crash)
{
	check_crash(MG_METHOD_FORK);
}

TEST(local_streams_under_select)
{
	enum { N = 4, COUNT = 5000 };
	struct mg_router *r = util_router(0, "master", 0, 0, false);
	struct mg_receiver *data[N], *call[N], *from;
	int64_t next[N] = {0}, v;
	struct mg_context *c[N];
	struct mg_select *sel;
	struct mg_msg *m;
	int i, open = N, rc;

	CHECK_OK(mg_select_new(&sel));
	for (i = 0; i < N; i++) {
		c[i] = start_child(r, MG_METHOD_LOCAL, NULL);
		stream_start(c[i], COUNT, &data[i], &call[i]);
		CHECK_OK(mg_select_add(sel, data[i]));
	}
	/* Values from one stream arrive in order, interleaved with the others.
	 * Four writers racing their brokers is what found an output queue left
	 * unflushed and a queue grown under a writer's feet: a stall or a
	 * dead stream here is a core bug, not a services one. */
	while (open > 0) {
		from = NULL;
		rc = mg_select_get(sel, 10000, &from, &m);
		if (rc == -ETIMEDOUT)
			mg_test_fail(__FILE__, __LINE__, "stalled with %lld %lld %lld %lld values",
			             (long long)next[0], (long long)next[1], (long long)next[2],
			             (long long)next[3]);
		for (i = 0; i < N && data[i] != from; i++)
			;
		CHECK(i < N);
		if (rc == MG_ECLOSED) {
			CHECK_EQ(next[i], COUNT);
			CHECK_OK(mg_select_remove(sel, from));
			open--;
			continue;
		}
		if (rc != 0)
			mg_test_fail(__FILE__, __LINE__, "stream %d after %lld values: %s (%s)", i,
			             (long long)next[i], mg_strerror(rc), mg_errdetail());
		CHECK_OK(mg_msg_read(m, "i", &v));
		CHECK_EQ(v, next[i]);
		next[i]++;
		mg_msg_free(m);
	}
	for (i = 0; i < N; i++) {
		stream_finish(call[i], COUNT);
		mg_receiver_free(data[i]);
		stop_child(c[i]);
	}
	mg_select_free(sel);
	mg_router_free(r);
}
