/*
 * test_gateway.c: the su and doas methods, sudo's login shell and
 * environment options, and connects through gateways, against the real
 * sshd, sudo, su and doas of tests/infra (users mgtest, mgtest2, mgtest3;
 * see tests/infra/README.md): su and doas with right, wrong and missing
 * passwords, su's prompt in other languages, and through gateways ssh then
 * sudo, ssh then ssh, local then sudo, sudo then su, local then doas, many
 * connects through one gateway at once, and an intermediary killed with
 * everything behind it reported gone and exiting.  The options' wire
 * codec is tested alone first (no infra needed).
 *
 * Cases that need a password run their master in a child process that
 * became mgtest, since root is never asked for one.
 */
#include <dirent.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "connect/connect.h"
#include "connect_util.h"
#include "infra/infra.h"
#include "util.h"
#include "wire/msgpack.h"

/* The agent's fd is made once per process and kept: make it before the
 * runner counts each case's fds. */
__attribute__((constructor)) static void make_agent_fd(void)
{
	if (mg__agent_memfd() < 0)
		abort();
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------------------ */
/* The options codec. */

static const char *const list_a[] = {"-F", "/x/ssh_config", NULL};
static const char *const list_b[] = {"A=1", "B=two", "", NULL};

/* Options with every field away from its default. */
static void full_opts(struct mg_connect_opts *o)
{
	mg_connect_opts_init(o, MG_METHOD_SSH);
	o->name = "n";
	o->connect_timeout_ms = 1234;
	o->program = "/bin/prog";
	o->ship_self = true;
	o->env = list_b;
	o->first_stage = true;
	o->hostname = "h.example";
	o->port = 2222;
	o->username = "u";
	o->identity_file = "/id";
	o->password = "pw with spaces";
	o->ssh_path = "/usr/bin/ssh";
	o->ssh_args = list_a;
	o->host_key_policy = MG_HOST_KEY_IGNORE;
	o->compression = true;
	o->keepalive_s = 7;
	o->sudo_path = "/s";
	o->sudo_args = list_a;
	o->login_shell = true;
	o->preserve_env = true;
	o->su_path = "/su";
	o->su_args = list_b;
	o->doas_path = "/doas";
	o->doas_args = list_a;
}

static void same_list(const char *const *a, const char *const *b)
{
	size_t i;

	CHECK((a == NULL) == (b == NULL));
	for (i = 0; a != NULL && a[i] != NULL; i++) {
		CHECK(b[i] != NULL);
		CHECK_STR(a[i], b[i]);
	}
	CHECK(a == NULL || b[i] == NULL);
}

static void same_str(const char *a, const char *b)
{
	CHECK((a == NULL) == (b == NULL));
	if (a != NULL)
		CHECK_STR(a, b);
}

TEST(via_opts_round_trip_every_option)
{
	struct mg_connect_opts o;
	struct mg_via_opts v;
	struct mg_buf b;
	char why[160];

	full_opts(&o);
	mg__buf_init(&b, 1u << 20);
	CHECK_OK(mg__via_opts_encode(&o, &b));
	CHECK_OK(mg__via_opts_decode(b.data, b.len, &v, why, sizeof(why)));
	CHECK_EQ(v.o.method, o.method);
	same_str(v.o.name, o.name);
	CHECK_EQ(v.o.connect_timeout_ms, o.connect_timeout_ms);
	same_str(v.o.program, o.program);
	CHECK(v.o.ship_self && v.o.first_stage && v.o.compression);
	CHECK(v.o.login_shell && v.o.preserve_env);
	same_list(v.o.env, o.env);
	same_str(v.o.hostname, o.hostname);
	CHECK_EQ(v.o.port, o.port);
	same_str(v.o.username, o.username);
	same_str(v.o.identity_file, o.identity_file);
	same_str(v.o.password, o.password);
	same_str(v.o.ssh_path, o.ssh_path);
	same_list(v.o.ssh_args, o.ssh_args);
	CHECK_EQ(v.o.host_key_policy, o.host_key_policy);
	CHECK_EQ(v.o.keepalive_s, o.keepalive_s);
	same_str(v.o.sudo_path, o.sudo_path);
	same_list(v.o.sudo_args, o.sudo_args);
	same_str(v.o.su_path, o.su_path);
	same_list(v.o.su_args, o.su_args);
	same_str(v.o.doas_path, o.doas_path);
	same_list(v.o.doas_args, o.doas_args);
	CHECK(v.o.via == NULL);
	mg__via_opts_fini(&v);
	/* Defaults stay out of the map: only the method is sent. */
	mg_connect_opts_init(&o, MG_METHOD_SU);
	b.len = 0;
	CHECK_OK(mg__via_opts_encode(&o, &b));
	CHECK_OK(mg__via_opts_decode(b.data, b.len, &v, why, sizeof(why)));
	CHECK_EQ(b.len, 1 + 1 + 6 + 1); /* map(1), "method", 5 */
	CHECK_EQ(v.o.method, MG_METHOD_SU);
	CHECK(v.o.username == NULL && v.o.password == NULL && !v.o.login_shell);
	mg__via_opts_fini(&v);
	mg__buf_fini(&b);
}

/* Decodes the map built by fmt's values (as mg_msg_pack), expecting the
 * failure code and a reason that holds part. */
static void bad_map(int code, const char *part, const char *fmt, ...)
{
	struct mg_via_opts v;
	struct mg_msg *m;
	char why[160];
	va_list ap;

	va_start(ap, fmt);
	CHECK_OK(mg_msg_vpack(&m, fmt, ap));
	va_end(ap);
	CHECK_EQ(mg__via_opts_decode(mg_msg_data(m), mg_msg_len(m), &v, why, sizeof(why)), code);
	if (strstr(why, part) == NULL)
		mg_test_fail(__FILE__, __LINE__, "reason \"%s\" lacks \"%s\"", why, part);
	mg__via_opts_fini(&v);
	mg_msg_free(m);
}

TEST(via_opts_refuse_malformed_input_clearly)
{
	static char big[70000];

	memset(big, 'x', sizeof(big) - 1);
	bad_map(MG_EDECODE, "\"nope\" is not an option", "{si si}", "method", (int64_t)3, "nope",
	        (int64_t)1);
	bad_map(MG_EDECODE, "\"port\" is given twice", "{si si si}", "method", (int64_t)3, "port",
	        (int64_t)1, "port", (int64_t)2);
	bad_map(MG_EDECODE, "\"port\" is not an integer in range", "{si si}", "method", (int64_t)3,
	        "port", (int64_t)70000);
	bad_map(MG_EDECODE, "\"method\" is not an integer", "{si}", "method", (int64_t)99);
	bad_map(MG_EDECODE, "\"hostname\" is not a string", "{si si}", "method", (int64_t)3,
	        "hostname", (int64_t)1);
	bad_map(MG_EDECODE, "\"hostname\" holds a NUL", "{si sS}", "method", (int64_t)3, "hostname",
	        "a\0b", (size_t)3);
	bad_map(MG_ELIMIT, "\"hostname\" is too long", "{si ss}", "method", (int64_t)3, "hostname",
	        big);
	bad_map(MG_EDECODE, "\"ssh_args\" is not a list", "{si ss}", "method", (int64_t)3,
	        "ssh_args", "x");
	bad_map(MG_EDECODE, "\"compression\" is not a boolean", "{si si}", "method", (int64_t)3,
	        "compression", (int64_t)1);
	bad_map(MG_EDECODE, "no method", "{sb}", "compression", 1);
	bad_map(MG_EDECODE, "malformed", "(s)", "not a map");
	bad_map(MG_EDECODE, "bytes after", "{si} i", "method", (int64_t)3, (int64_t)1);
	/* A key off the wire is printed without its control bytes. */
	bad_map(MG_EDECODE, "\"a?b\" is not", "{si si}", "method", (int64_t)3, "a\nb", (int64_t)1);
}

TEST(via_opts_survive_every_truncation_and_mutation)
{
	struct mg_connect_opts o;
	struct mg_via_opts v;
	struct mg_buf b;
	uint8_t *copy;
	char why[160];
	unsigned seed = 12345;
	size_t i;
	int ok = 0;

	full_opts(&o);
	mg__buf_init(&b, 1u << 20);
	CHECK_OK(mg__via_opts_encode(&o, &b));
	CHECK((copy = malloc(b.len)) != NULL);
	for (i = 0; i < b.len; i++) {
		CHECK(mg__via_opts_decode(b.data, i, &v, why, sizeof(why)) != 0);
		CHECK(why[0] != '\0');
		mg__via_opts_fini(&v);
	}
	/* Flipped bytes: decoded or refused, never a crash (ASan builds). */
	for (i = 0; i < 20000; i++) {
		memcpy(copy, b.data, b.len);
		seed = seed * 1103515245u + 12345u;
		copy[(seed >> 8) % b.len] ^= (uint8_t)(1u << ((seed >> 4) % 8));
		if (mg__via_opts_decode(copy, b.len, &v, why, sizeof(why)) == 0)
			ok++;
		mg__via_opts_fini(&v);
	}
	printf("    %d of 20000 mutations still decoded\n", ok);
	free(copy);
	mg__buf_fini(&b);
}

/* ------------------------------------------------------------------------ */
/* Helpers for the infra cases. */

/* Fails unless c runs as user. */
static void expect_user(struct mg_context *c, const char *user)
{
	char got[64];

	cu_sysinfo(c, got, sizeof(got), NULL);
	CHECK_STR(got, user);
}

/* Runs `sh -c cmd` in c; its stdout, without the trailing newline. */
static void run_in(struct mg_context *c, const char *cmd, char *out, size_t len)
{
	struct mg_exec_opts e;
	struct mg_exec_result res;

	mg_exec_opts_init(&e);
	e.command = cmd;
	if (mg_exec_run(c, &e, 4096, &res) != 0)
		mg_test_fail(__FILE__, __LINE__, "%s: %s", cmd, res.error);
	snprintf(out, len, "%s", res.out != NULL ? res.out : "");
	out[strcspn(out, "\n")] = '\0';
	mg_exec_result_fini(&res);
}

static struct mg_context *connect_ok(struct mg_router *r, const struct mg_connect_opts *o)
{
	struct mg_context *c;

	if (mg_connect(r, o, &c) != 0)
		mg_test_fail(__FILE__, __LINE__, "connect %s: %s", o->name ? o->name : "?",
		             mg_errdetail());
	return c;
}

/* Connects, expecting a failure whose text holds part (and part2). */
static void connect_fails(struct mg_router *r, const struct mg_connect_opts *o, const char *part,
                          const char *part2)
{
	struct mg_context *c;
	double t0 = now_ms();
	int rc = mg_connect(r, o, &c);

	if (rc == 0) {
		mg_context_free(c);
		mg_test_fail(__FILE__, __LINE__, "connected; expected \"%s\"", part);
	}
	printf("    failed after %.0f ms: %s\n", now_ms() - t0, mg_errdetail());
	if (strstr(mg_errdetail(), part) == NULL ||
	    (part2 != NULL && strstr(mg_errdetail(), part2) == NULL))
		mg_test_fail(__FILE__, __LINE__, "error %d \"%s\" lacks \"%s\" / \"%s\"", rc,
		             mg_errdetail(), part, part2 ? part2 : "");
}

struct gw_case {
	struct mg_test_infra inf;
	struct mg_router *r;
	const char *user, *pw, *user2, *pw2, *user3;
	const char *ssh_args[3];
};

static void gw_init(struct gw_case *t)
{
	mg_test_infra_up(&t->inf);
	t->r = util_router(0, "master", 0, 0, false);
	t->user = mg_test_infra_get(&t->inf, "MG_INFRA_USER");
	t->pw = mg_test_infra_get(&t->inf, "MG_INFRA_PASSWORD");
	t->user2 = mg_test_infra_get(&t->inf, "MG_INFRA_USER2");
	t->pw2 = mg_test_infra_get(&t->inf, "MG_INFRA_PASSWORD2");
	t->user3 = mg_test_infra_get(&t->inf, "MG_INFRA_USER3");
	t->ssh_args[0] = "-F";
	t->ssh_args[1] = mg_test_infra_get(&t->inf, "MG_INFRA_SSH_CONFIG");
	t->ssh_args[2] = NULL;
	CHECK(t->user && t->pw && t->user2 && t->pw2 && t->user3 && t->ssh_args[1]);
}

static void gw_fini(struct gw_case *t)
{
	if (t->r != NULL)
		mg_router_free(t->r);
	CHECK_EQ(cu_wait_no_children(5000), 0);
	mg_test_infra_put(&t->inf);
}

/* Options for method to user with password pw (may be NULL). */
static void opts(struct mg_connect_opts *o, int method, const char *user, const char *pw)
{
	mg_connect_opts_init(o, method);
	o->username = user;
	o->password = pw;
	o->connect_timeout_ms = 30000;
}

/* ssh as mgtest to addr, with the infra's client config. */
static void ssh_opts(struct gw_case *t, struct mg_connect_opts *o, const char *addr)
{
	opts(o, MG_METHOD_SSH, t->user, NULL);
	o->hostname = addr;
	o->ssh_args = t->ssh_args;
}

/* Runs fn(t) in a child process that became mgtest (its own master, so
 * su/sudo/doas ask for passwords); fails unless it exits 0.  Inside, a
 * failed CHECK exits non-zero. */
static void as_mgtest(struct gw_case *t, void (*fn)(struct gw_case *t))
{
	struct passwd *me = getpwnam(t->user);
	int status;
	pid_t pid;

	CHECK(me != NULL);
	/* The child starts its own router: fork with none running here, so no
	 * thread of ours is copied half-alive (TSan refuses thread ids it
	 * still counts as used). */
	mg_router_free(t->r);
	t->r = NULL;
	fflush(stdout);
	fflush(stderr);
	CHECK((pid = fork()) >= 0);
	if (pid == 0) {
		struct gw_case u = *t;

		if (setgid(me->pw_gid) != 0 || setuid(me->pw_uid) != 0)
			_exit(10);
		u.r = util_router(0, "master", 0, 0, false);
		fn(&u);
		mg_router_free(u.r);
		fflush(stdout);
		_exit(0);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
}

/* ------------------------------------------------------------------------ */
/* su. */

static void su_right(struct gw_case *t)
{
	struct mg_connect_opts o;
	struct mg_context *c;

	opts(&o, MG_METHOD_SU, t->user2, t->pw2);
	c = connect_ok(t->r, &o);
	expect_user(c, t->user2);
	mg_context_free(c);
}

/* The text su printed for the failure, or NULL for any. */
static const char *su_failure_text = "Authentication failure";

static void su_wrong(struct gw_case *t)
{
	struct mg_connect_opts o;

	opts(&o, MG_METHOD_SU, t->user2, "not-the-password");
	connect_fails(t->r, &o, "authentication failed", su_failure_text);
}

static void su_none(struct gw_case *t)
{
	struct mg_connect_opts o;
	double t0 = now_ms();

	opts(&o, MG_METHOD_SU, t->user2, NULL);
	connect_fails(t->r, &o, "authentication failed: a password is required", NULL);
	/* At the prompt, not at the deadline. */
	CHECK(now_ms() - t0 < o.connect_timeout_ms);
}

TEST_T(su_with_the_right_password, 240)
{
	struct gw_case t;

	gw_init(&t);
	as_mgtest(&t, su_right);
	gw_fini(&t);
}

TEST_T(su_wrong_or_missing_password_is_an_auth_failure, 240)
{
	struct gw_case t;

	gw_init(&t);
	as_mgtest(&t, su_wrong);
	as_mgtest(&t, su_none);
	gw_fini(&t);
}

/* su's prompt and its failure in other languages: PAM translates both
 * (LANGUAGE picks the catalogue; C.UTF-8 keeps gettext on). */
static const char *lang;

static void su_in_lang(struct gw_case *t)
{
	CHECK_EQ(setenv("LC_ALL", "C.UTF-8", 1), 0);
	CHECK_EQ(setenv("LANGUAGE", lang, 1), 0);
	/* Recognised by its translation: "authentication failed" leads. */
	su_failure_text = NULL;
	su_right(t);
	su_wrong(t);
	/* The catalogue was in use: not the English text. */
	if (strstr(mg_errdetail(), "Authentication failure") != NULL)
		mg_test_fail(__FILE__, __LINE__, "su was not translated: %s", mg_errdetail());
}

TEST_T(su_prompt_and_failure_in_other_languages, 300)
{
	static const char *const langs[] = {"de", "fr", "es", "ru", "ja", "pt_BR", "pl"};
	struct gw_case t;
	size_t i;

	gw_init(&t);
	for (i = 0; i < sizeof(langs) / sizeof(langs[0]); i++) {
		printf("    LANGUAGE=%s\n", langs[i]);
		lang = langs[i];
		as_mgtest(&t, su_in_lang);
	}
	gw_fini(&t);
}

TEST_T(su_login_shell_and_preserved_environment, 240)
{
	struct gw_case t;
	struct mg_connect_opts o;
	struct mg_context *c;
	char out[512], home[300];
	const char *mine = getenv("HOME");

	gw_init(&t);
	snprintf(home, sizeof(home), "/home/%s", t.user2);
	/* Root is not asked for a password. */
	opts(&o, MG_METHOD_SU, t.user2, NULL);
	o.login_shell = true;
	c = connect_ok(t.r, &o);
	expect_user(c, t.user2);
	run_in(c, "pwd", out, sizeof(out));
	CHECK_STR(out, home);
	mg_context_free(c);
	/* -m keeps this process's HOME; without it su sets the target's. */
	CHECK(mine != NULL && strcmp(mine, home) != 0);
	opts(&o, MG_METHOD_SU, t.user2, NULL);
	o.preserve_env = true;
	c = connect_ok(t.r, &o);
	run_in(c, "echo $HOME", out, sizeof(out));
	CHECK_STR(out, mine);
	mg_context_free(c);
	opts(&o, MG_METHOD_SU, t.user2, NULL);
	c = connect_ok(t.r, &o);
	run_in(c, "echo $HOME", out, sizeof(out));
	CHECK_STR(out, home);
	mg_context_free(c);
	gw_fini(&t);
}

/* ------------------------------------------------------------------------ */
/* doas and sudo. */

static void doas_all(struct gw_case *t)
{
	struct mg_connect_opts o;
	struct mg_context *c;

	opts(&o, MG_METHOD_DOAS, t->user2, t->pw);
	c = connect_ok(t->r, &o);
	expect_user(c, t->user2);
	mg_context_free(c);
	opts(&o, MG_METHOD_DOAS, t->user2, "not-the-password");
	connect_fails(t->r, &o, "authentication failed", "Authentication failed");
	/* No password: -n, so the rule that wants one fails at once. */
	opts(&o, MG_METHOD_DOAS, t->user2, NULL);
	connect_fails(t->r, &o, "authentication failed", NULL);
	/* nopass rule. */
	opts(&o, MG_METHOD_DOAS, t->user3, NULL);
	c = connect_ok(t->r, &o);
	expect_user(c, t->user3);
	mg_context_free(c);
}

TEST_T(doas_right_wrong_and_missing_password, 240)
{
	struct gw_case t;

	gw_init(&t);
	as_mgtest(&t, doas_all);
	gw_fini(&t);
}

/* sudo's prompt is its -p marker whatever the language. */
static void sudo_in_german(struct gw_case *t)
{
	struct mg_connect_opts o;
	struct mg_context *c;

	CHECK_EQ(setenv("LC_ALL", "C.UTF-8", 1), 0);
	CHECK_EQ(setenv("LANGUAGE", "de", 1), 0);
	opts(&o, MG_METHOD_SUDO, t->user2, t->pw);
	o.connect_timeout_ms = 20000;
	c = connect_ok(t->r, &o);
	expect_user(c, t->user2);
	mg_context_free(c);
}

TEST_T(sudo_prompt_is_the_marker_in_any_language, 240)
{
	struct gw_case t;

	gw_init(&t);
	as_mgtest(&t, sudo_in_german);
	gw_fini(&t);
}

TEST_T(sudo_login_shell_and_preserved_environment, 240)
{
	struct gw_case t;
	struct mg_connect_opts o;
	struct mg_context *c;
	char out[512], home[300];

	gw_init(&t);
	snprintf(home, sizeof(home), "/home/%s", t.user2);
	CHECK_EQ(setenv("MG_GW_MARK", "kept-1", 1), 0);
	opts(&o, MG_METHOD_SUDO, t.user2, NULL);
	o.login_shell = true;
	c = connect_ok(t.r, &o);
	expect_user(c, t.user2);
	run_in(c, "pwd; echo ${MG_GW_MARK:-none}", out, sizeof(out));
	CHECK_STR(out, home);
	mg_context_free(c);
	opts(&o, MG_METHOD_SUDO, t.user2, NULL);
	o.preserve_env = true;
	c = connect_ok(t.r, &o);
	run_in(c, "echo ${MG_GW_MARK:-none}", out, sizeof(out));
	CHECK_STR(out, "kept-1");
	mg_context_free(c);
	/* sudo's env_reset drops it otherwise. */
	opts(&o, MG_METHOD_SUDO, t.user2, NULL);
	c = connect_ok(t.r, &o);
	run_in(c, "echo ${MG_GW_MARK:-none}", out, sizeof(out));
	CHECK_STR(out, "none");
	mg_context_free(c);
	gw_fini(&t);
}

/* ------------------------------------------------------------------------ */
/* Through gateways. */

TEST_T(ssh_then_sudo_with_a_password, 240)
{
	struct gw_case t;
	struct mg_connect_opts o;
	struct mg_context *g, *c;
	char user[64];
	int64_t gpid = 0;

	gw_init(&t);
	ssh_opts(&t, &o, "127.0.0.11");
	o.name = "ssh";
	g = connect_ok(t.r, &o);
	expect_user(g, t.user);
	cu_sysinfo(g, user, sizeof(user), &gpid);
	CHECK(gpid > 0);
	/* mgtest's password travels to the ssh context and is typed there. */
	opts(&o, MG_METHOD_SUDO, t.user2, t.pw);
	o.via = g;
	o.name = "ssh.sudo";
	c = connect_ok(t.r, &o);
	expect_user(c, t.user2);
	/* ...and is gone from the gateway's memory once used: its read
	 * buffer and the call message are wiped, not only freed. */
	CHECK_EQ(cu_memory_holds((pid_t)gpid, t.pw), 0);
	mg_context_free(c);
	/* A wrong one is told apart there and reported here, and wiped too. */
	o.password = "not-the-password";
	connect_fails(t.r, &o, "authentication failed", NULL);
	CHECK_EQ(cu_memory_holds((pid_t)gpid, "not-the-password"), 0);
	mg_context_free(g);
	gw_fini(&t);
}

TEST_T(ssh_then_ssh_two_hops, 240)
{
	struct gw_case t;
	struct mg_connect_opts o;
	struct mg_context *g, *c;
	int64_t gpid = 0, cpid = 0; /* stay 0 when sysinfo fails */
	char user[64];

	gw_init(&t);
	ssh_opts(&t, &o, "127.0.0.12");
	g = connect_ok(t.r, &o);
	/* As mgtest, ~/.ssh/config has the key and port for 127.*. */
	opts(&o, MG_METHOD_SSH, NULL, NULL);
	o.hostname = "127.0.0.13";
	o.keepalive_s = 30;
	o.compression = true;
	o.via = g;
	c = connect_ok(t.r, &o);
	cu_sysinfo(g, user, sizeof(user), &gpid);
	cu_sysinfo(c, user, sizeof(user), &cpid);
	CHECK_STR(user, t.user);
	CHECK(gpid != cpid);
	mg_context_free(c);
	/* The port travels: nothing listens on 1 there. */
	o.port = 1;
	connect_fails(t.r, &o, "connection refused", NULL);
	mg_context_free(g);
	gw_fini(&t);
}

TEST_T(local_then_ssh_with_a_password_and_every_ssh_option, 240)
{
	const char *args[] = {"-F", NULL, "-o", "PubkeyAuthentication=no", NULL};
	struct gw_case t;
	struct mg_connect_opts o;
	struct mg_context *g, *c;

	gw_init(&t);
	args[1] = t.ssh_args[1];
	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	g = connect_ok(t.r, &o);
	ssh_opts(&t, &o, "127.0.0.14");
	o.via = g;
	o.ssh_args = args;
	o.password = t.pw;
	o.port = t.inf.port;
	o.ssh_path = "/usr/bin/ssh";
	o.host_key_policy = MG_HOST_KEY_IGNORE;
	o.compression = true;
	o.keepalive_s = 15;
	c = connect_ok(t.r, &o);
	expect_user(c, t.user);
	mg_context_free(c);
	o.password = "not-the-password";
	connect_fails(t.r, &o, "authentication failed", NULL);
	/* Without the password the key is off: ssh's own refusal. */
	o.password = NULL;
	connect_fails(t.r, &o, "authentication failed", "Permission denied");
	mg_context_free(g);
	gw_fini(&t);
}

TEST_T(local_then_sudo_local_then_doas, 240)
{
	struct gw_case t;
	struct mg_connect_opts o;
	struct mg_context *g, *c;
	char out[512];

	gw_init(&t);
	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	g = connect_ok(t.r, &o);
	opts(&o, MG_METHOD_SUDO, t.user2, NULL);
	o.via = g;
	o.login_shell = true;
	c = connect_ok(t.r, &o);
	expect_user(c, t.user2);
	run_in(c, "pwd", out, sizeof(out));
	CHECK(strstr(out, t.user2) != NULL); /* -i travelled */
	mg_context_free(c);
	opts(&o, MG_METHOD_DOAS, t.user2, NULL);
	o.via = g;
	c = connect_ok(t.r, &o);
	expect_user(c, t.user2);
	mg_context_free(c);
	/* The path travels too. */
	o.doas_path = "/nonexistent/doas";
	connect_fails(t.r, &o, "/nonexistent/doas", NULL);
	mg_context_free(g);
	gw_fini(&t);
}

/* Fails when any process's command line or environment holds secret. */
static void no_process_shows(const char *secret)
{
	static char buf[1 << 20];
	const char *what[] = {"cmdline", "environ"};
	struct dirent *e;
	DIR *d = opendir("/proc");
	size_t n, k, len = strlen(secret);
	char path[300];
	FILE *f;
	int i, seen = 0;

	CHECK(d != NULL);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		for (i = 0; i < 2; i++) {
			snprintf(path, sizeof(path), "/proc/%s/%s", e->d_name, what[i]);
			if ((f = fopen(path, "r")) == NULL)
				continue;
			n = fread(buf, 1, sizeof(buf), f);
			fclose(f);
			seen += i == 0;
			for (k = 0; k + len <= n; k++)
				if (memcmp(buf + k, secret, len) == 0)
					mg_test_fail(__FILE__, __LINE__,
					             "/proc/%s/%s shows the password", e->d_name,
					             what[i]);
		}
	}
	closedir(d);
	CHECK(seen > 10);
}

TEST_T(sudo_then_su_with_a_password, 240)
{
	struct gw_case t;
	struct mg_connect_opts o;
	struct mg_context *g, *c;

	gw_init(&t);
	opts(&o, MG_METHOD_SUDO, t.user, NULL);
	g = connect_ok(t.r, &o);
	expect_user(g, t.user);
	/* As mgtest, su asks for mgtest2's password. */
	opts(&o, MG_METHOD_SU, t.user2, t.pw2);
	o.via = g;
	o.login_shell = true;
	c = connect_ok(t.r, &o);
	expect_user(c, t.user2);
	/* Not on the command line or in the environment of su, the gateway or
	 * anything else, while the contexts run. */
	no_process_shows(t.pw2);
	mg_context_free(c);
	o.password = "not-the-password";
	connect_fails(t.r, &o, "authentication failed", "Authentication failure");
	mg_context_free(g);
	gw_fini(&t);
}

TEST_T(twenty_connects_through_one_gateway_at_once, 300)
{
	enum { N = 20 };
	struct gw_case t;
	struct mg_connect_opts o;
	struct mg_context *g, *c[N];
	char names[N][32];
	double t0;
	int i;

	gw_init(&t);
	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	g = connect_ok(t.r, &o);
	t0 = now_ms();
	for (i = 0; i < N; i++) {
		opts(&o, i % 2 ? MG_METHOD_SUDO : MG_METHOD_SU, t.user2, NULL);
		snprintf(names[i], sizeof(names[i]), "p%d", i);
		o.name = names[i];
		o.via = g;
		o.connect_timeout_ms = 120000;
		CHECK_OK(mg_connect_start(t.r, &o, &c[i]));
	}
	for (i = 0; i < N; i++)
		if (mg_context_wait_ready(c[i], 150000) != 0)
			mg_test_fail(__FILE__, __LINE__, "%s: %s", names[i], mg_errdetail());
	printf("    %d sudo/su connects through one gateway: %.0f ms\n", N, now_ms() - t0);
	for (i = 0; i < N; i++)
		expect_user(c[i], t.user2);
	for (i = 0; i < N; i++)
		mg_context_free(c[i]);
	mg_context_free(g);
	gw_fini(&t);
}

/* The state letter and parent of pid from /proc; false when it is gone. */
static bool proc_stat(pid_t pid, char *statep, pid_t *ppidp)
{
	char path[64], buf[512], *p;
	FILE *f;
	int ppid = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	/* The command may hold spaces and parentheses: skip to the last ')'. */
	if (p == NULL || (p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 1, " %c %d", statep, &ppid) != 2)
		return false;
	*ppidp = (pid_t)ppid;
	return true;
}

/* True once pid has exited (gone, or a zombie nobody reaped yet). */
static bool pid_gone(pid_t pid)
{
	pid_t ppid;
	char st;

	return !proc_stat(pid, &st, &ppid) || st == 'Z' || st == 'X';
}

static pid_t parent_of(pid_t pid)
{
	pid_t ppid;
	char st;

	return proc_stat(pid, &st, &ppid) ? ppid : 0;
}

TEST_T(killing_an_intermediary_reports_everything_behind_it, 300)
{
	enum { N = 4, MAXP = 32 };
	struct gw_case t;
	struct mg_connect_opts o;
	struct mg_context *g, *c[N];
	pid_t procs[MAXP], p;
	int64_t gpid = 0, pid = 0;
	char user[64];
	double t0, gone_ms = -1, exit_ms = -1;
	int i, n = 0, left;

	gw_init(&t);
	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	o.name = "gw";
	g = connect_ok(t.r, &o);
	cu_sysinfo(g, user, sizeof(user), &gpid);
	/* Behind it: a local child, a sudo and a su context, and a local
	 * grandchild through the first. */
	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	o.via = g;
	o.name = "gw.local";
	c[0] = connect_ok(t.r, &o);
	opts(&o, MG_METHOD_SUDO, t.user2, NULL);
	o.via = g;
	o.name = "gw.sudo";
	c[1] = connect_ok(t.r, &o);
	opts(&o, MG_METHOD_SU, t.user2, NULL);
	o.via = g;
	o.name = "gw.su";
	c[2] = connect_ok(t.r, &o);
	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	o.via = c[0];
	o.name = "gw.local.local";
	c[3] = connect_ok(t.r, &o);
	/* Every process between the gateway and each context (sudo, su and
	 * their monitors included) must go. */
	for (i = 0; i < N; i++) {
		cu_sysinfo(c[i], user, sizeof(user), &pid);
		for (p = (pid_t)pid; p > 1 && p != (pid_t)gpid && n < MAXP; p = parent_of(p))
			procs[n++] = p;
		CHECK(p == (pid_t)gpid);
	}
	printf("    %d processes behind the gateway (pid %lld)\n", n, (long long)gpid);
	t0 = now_ms();
	CHECK_EQ(kill((pid_t)gpid, SIGKILL), 0);
	while (now_ms() - t0 < 10000 && (gone_ms < 0 || exit_ms < 0)) {
		for (i = 0, left = 0; i < N; i++)
			left += !mg_context_is_gone(c[i]);
		if (gone_ms < 0 && left == 0 && mg_context_is_gone(g))
			gone_ms = now_ms() - t0;
		for (i = 0, left = 0; i < n; i++)
			left += !pid_gone(procs[i]);
		if (exit_ms < 0 && left == 0)
			exit_ms = now_ms() - t0;
		usleep(500);
	}
	printf("    all %d contexts behind it reported gone after %.1f ms; "
	       "their %d processes exited after %.1f ms\n",
	       N, gone_ms, n, exit_ms);
	CHECK(gone_ms >= 0);
	CHECK(exit_ms >= 0);
	/* Calls to them fail at once rather than hang. */
	{
		struct mg_msg *reply = NULL;

		CHECK(mg_call(c[3], "mg.ping", &reply, "") != 0);
		mg_msg_free(reply);
	}
	for (i = 0; i < N; i++)
		mg_context_free(c[i]);
	mg_context_free(g);
	gw_fini(&t);
}
