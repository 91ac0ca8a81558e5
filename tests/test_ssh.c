/*
 * test_ssh.c: the ssh method against the real sshd of tests/infra (on
 * loopback, as user mgtest): key, password and key-passphrase logins, the
 * failures told apart by ssh's own messages (wrong password, unknown and
 * changed host keys, a refused port), fifty contexts on fifty addresses at
 * once, and nothing left on the target's disk.  Every case skips unless
 * run as root (the infra makes users and an sshd).
 *
 * Case timeouts are generous: mg_test_infra_up() waits for the infra lock,
 * which a test_infra run elsewhere on the machine holds for minutes.
 */
#include <dirent.h>
#include <pwd.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "connect/connect.h"
#include "connect_util.h"
#include "infra/infra.h"
#include "util.h"

struct ssh_case {
	struct mg_test_infra inf;
	struct mg_router *r;
	const char *args[8];
	struct mg_connect_opts o;
};

/* Infra up, a master, and options for a key login as mgtest at addr. */
static void ssh_case_init(struct ssh_case *t, const char *addr)
{
	mg_test_infra_up(&t->inf);
	t->r = util_router(0, "master", 0, 0, false);
	mg_connect_opts_init(&t->o, MG_METHOD_SSH);
	t->o.hostname = addr;
	t->o.username = mg_test_infra_get(&t->inf, "MG_INFRA_USER");
	t->o.connect_timeout_ms = 20000;
	t->args[0] = "-F";
	t->args[1] = mg_test_infra_get(&t->inf, "MG_INFRA_SSH_CONFIG");
	t->args[2] = NULL;
	t->o.ssh_args = t->args;
	CHECK(t->o.username != NULL && t->args[1] != NULL);
}

static void ssh_case_fini(struct ssh_case *t)
{
	mg_router_free(t->r);
	CHECK_EQ(cu_wait_no_children(5000), 0);
	mg_test_infra_put(&t->inf);
}

/* Adds "-o", opt to the ssh arguments. */
static void ssh_case_opt(struct ssh_case *t, const char *opt)
{
	size_t n = 0;

	while (t->args[n] != NULL)
		n++;
	CHECK(n + 3 <= sizeof(t->args) / sizeof(t->args[0]));
	t->args[n] = "-o";
	t->args[n + 1] = opt;
	t->args[n + 2] = NULL;
}

/* The "user" field of mg.sysinfo in c. */
static void remote_user(struct mg_context *c, char *user, size_t len)
{
	cu_sysinfo(c, user, len, NULL);
}

static void expect_fail(struct ssh_case *t, const char *part1, const char *part2)
{
	struct mg_context *c;
	int rc = mg_connect(t->r, &t->o, &c);

	if (rc == 0) {
		mg_context_free(c);
		mg_test_fail(__FILE__, __LINE__, "connected; expected \"%s\"", part1);
	}
	if (strstr(mg_errdetail(), part1) == NULL ||
	    (part2 != NULL && strstr(mg_errdetail(), part2) == NULL))
		mg_test_fail(__FILE__, __LINE__, "error %d \"%s\" lacks \"%s\" / \"%s\"", rc,
		             mg_errdetail(), part1, part2 ? part2 : "");
}

TEST_T(ssh_key_login_runs_as_the_user, 240)
{
	struct ssh_case t;
	struct mg_context *c;
	char user[64];

	ssh_case_init(&t, "127.0.0.1");
	if (mg_connect(t.r, &t.o, &c) != 0)
		mg_test_fail(__FILE__, __LINE__, "connect: %s", mg_errdetail());
	remote_user(c, user, sizeof(user));
	CHECK_STR(user, "mgtest");
	cu_ping(c);
	CHECK_OK(mg_context_shutdown(c, 5000));
	mg_context_free(c);
	ssh_case_fini(&t);
}

TEST_T(ssh_password_login, 240)
{
	struct ssh_case t;
	struct mg_context *c;
	char user[64];

	ssh_case_init(&t, "127.0.0.3");
	ssh_case_opt(&t, "PubkeyAuthentication=no");
	t.o.password = mg_test_infra_get(&t.inf, "MG_INFRA_PASSWORD");
	if (mg_connect(t.r, &t.o, &c) != 0)
		mg_test_fail(__FILE__, __LINE__, "connect: %s", mg_errdetail());
	remote_user(c, user, sizeof(user));
	CHECK_STR(user, "mgtest");
	mg_context_free(c);
	ssh_case_fini(&t);
}

TEST_T(ssh_key_passphrase, 240)
{
	struct ssh_case t;
	struct mg_context *c;

	ssh_case_init(&t, "127.0.0.4");
	t.o.identity_file = mg_test_infra_get(&t.inf, "MG_INFRA_KEY_PP");
	t.o.password = mg_test_infra_get(&t.inf, "MG_INFRA_KEY_PASSPHRASE");
	ssh_case_opt(&t, "PasswordAuthentication=no");
	if (mg_connect(t.r, &t.o, &c) != 0)
		mg_test_fail(__FILE__, __LINE__, "connect: %s", mg_errdetail());
	cu_ping(c);
	mg_context_free(c);
	ssh_case_fini(&t);
}

TEST_T(ssh_wrong_password_is_an_auth_failure, 240)
{
	struct ssh_case t;

	ssh_case_init(&t, "127.0.0.5");
	ssh_case_opt(&t, "PubkeyAuthentication=no");
	t.o.password = "not-the-password";
	expect_fail(&t, "authentication failed", NULL);
	ssh_case_fini(&t);
}

TEST_T(ssh_no_password_no_key_is_an_auth_failure, 240)
{
	struct ssh_case t;

	ssh_case_init(&t, "127.0.0.6");
	ssh_case_opt(&t, "PubkeyAuthentication=no");
	/* BatchMode: no prompt to wait for; ssh's own text comes back. */
	expect_fail(&t, "authentication failed", "Permission denied");
	ssh_case_fini(&t);
}

TEST_T(ssh_unknown_host_key_is_refused, 240)
{
	struct ssh_case t;

	ssh_case_init(&t, "127.0.0.7");
	ssh_case_opt(&t, "UserKnownHostsFile=/dev/null");
	expect_fail(&t, "host key", "Host key verification failed");
	ssh_case_fini(&t);
}

TEST_T(ssh_changed_host_key_is_refused, 240)
{
	struct ssh_case t;
	char opt[300];

	ssh_case_init(&t, "127.0.0.8");
	snprintf(opt, sizeof(opt), "UserKnownHostsFile=%s",
	         mg_test_infra_get(&t.inf, "MG_INFRA_KNOWN_HOSTS_CHANGED"));
	ssh_case_opt(&t, opt);
	expect_fail(&t, "host key changed", "REMOTE HOST IDENTIFICATION HAS CHANGED");
	ssh_case_fini(&t);
}

TEST_T(ssh_ignore_policy_accepts_an_unknown_key, 240)
{
	struct ssh_case t;
	struct mg_context *c;

	ssh_case_init(&t, "127.0.0.9");
	t.o.host_key_policy = MG_HOST_KEY_IGNORE;
	if (mg_connect(t.r, &t.o, &c) != 0)
		mg_test_fail(__FILE__, __LINE__, "connect: %s", mg_errdetail());
	cu_ping(c);
	mg_context_free(c);
	ssh_case_fini(&t);
}

TEST_T(ssh_refused_port, 240)
{
	struct ssh_case t;

	ssh_case_init(&t, "127.0.0.1");
	t.o.port = 1; /* nothing listens there */
	expect_fail(&t, "connection refused", "Connection refused");
	ssh_case_fini(&t);
}

TEST_T(ssh_fifty_contexts_at_once, 300)
{
	enum { N = 50 };
	static char addr[N][32];
	struct mg_context *c[N];
	struct ssh_case t;
	int i;

	cu_raise_nofile();
	ssh_case_init(&t, NULL);
	CHECK(t.inf.naddrs >= N + 1);
	t.o.connect_timeout_ms = 120000;
	for (i = 0; i < N; i++) {
		snprintf(addr[i], sizeof(addr[i]), "127.0.0.%d", i + 2);
		t.o.hostname = addr[i];
		t.o.name = addr[i];
		CHECK_OK(mg_connect_start(t.r, &t.o, &c[i]));
	}
	for (i = 0; i < N; i++)
		if (mg_context_wait_ready(c[i], 150000) != 0)
			mg_test_fail(__FILE__, __LINE__, "%s: %s", addr[i], mg_errdetail());
	for (i = 0; i < N; i++)
		cu_ping(c[i]);
	for (i = 0; i < N; i++)
		mg_context_free(c[i]);
	ssh_case_fini(&t);
}

/* Entries of dir owned by uid, or all of them when uid is -1. */
static int count_owned(const char *dir, long uid)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;
	char p[1024];
	int n = 0;

	CHECK(d != NULL);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		if (lstat(p, &st) == 0 && (uid < 0 || st.st_uid == (uid_t)uid))
			n++;
	}
	closedir(d);
	return n;
}

TEST_T(ssh_leaves_nothing_on_the_target, 240)
{
	struct ssh_case t;
	struct mg_context *c;
	struct passwd *pw;
	int tmp0, home0;

	ssh_case_init(&t, "127.0.0.10");
	CHECK((pw = getpwnam(t.o.username)) != NULL);
	tmp0 = count_owned("/tmp", pw->pw_uid);
	home0 = count_owned(pw->pw_dir, -1);
	if (mg_connect(t.r, &t.o, &c) != 0)
		mg_test_fail(__FILE__, __LINE__, "connect: %s", mg_errdetail());
	cu_ping(c);
	/* The agent removed its file and folder before the handshake. */
	CHECK_EQ(count_owned("/tmp", pw->pw_uid), tmp0);
	CHECK_EQ(count_owned(pw->pw_dir, -1), home0);
	CHECK_OK(mg_context_shutdown(c, 5000));
	mg_context_free(c);
	CHECK_EQ(count_owned("/tmp", pw->pw_uid), tmp0);
	CHECK_EQ(count_owned(pw->pw_dir, -1), home0);
	ssh_case_fini(&t);
}

/* The size the connector logs as sent by the last bootstrap. */
static _Atomic long sent_bytes;

static void sent_log_cb(void *arg, const struct mg_log_record *rec)
{
	const char *p = strstr(rec->message, "the bootstrap sent ");

	if (p != NULL)
		sent_bytes = atol(p + strlen("the bootstrap sent "));
}

static long ssh_connect_bytes(struct ssh_case *t)
{
	struct mg_context *c;

	sent_bytes = 0;
	mg_log_set_handler(sent_log_cb, NULL, MG_LOG_DEBUG);
	if (mg_connect(t->r, &t->o, &c) != 0)
		mg_test_fail(__FILE__, __LINE__, "connect: %s", mg_errdetail());
	cu_ping(c);
	CHECK_OK(mg_context_shutdown(c, 5000));
	mg_context_free(c);
	mg_log_set_handler(NULL, NULL, MG_LOG_WARNING);
	CHECK(sent_bytes > 0);
	return sent_bytes;
}

TEST_T(ssh_cache_sends_the_program_once, 240)
{
	struct ssh_case t;
	struct passwd *pw;
	char cache[1024], cmd[2200];
	long first, again;
	struct stat st;
	int tmp0;

	ssh_case_init(&t, "127.0.0.11");
	t.o.cache = true;
	CHECK((pw = getpwnam(t.o.username)) != NULL);
	snprintf(cache, sizeof(cache), "%s/.cache/mitogen-c", pw->pw_dir);
	/* Also the ~/.cache the first stage made, when it is empty again. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'; rmdir '%s/.cache' 2>/dev/null; true", cache,
	         pw->pw_dir);
	CHECK_EQ(system(cmd), 0);
	tmp0 = count_owned("/tmp", pw->pw_uid);
	first = ssh_connect_bytes(&t);
	/* One private file, owned by the user; nothing in /tmp. */
	CHECK_EQ(count_owned(cache, pw->pw_uid), 1);
	CHECK_EQ(stat(cache, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0700);
	CHECK_EQ(st.st_uid, pw->pw_uid);
	CHECK_EQ(count_owned("/tmp", pw->pw_uid), tmp0);
	again = ssh_connect_bytes(&t);
	printf("    bytes sent over ssh: %ld first, %ld cached\n", first, again);
	CHECK_INT(first, >, 20000);
	CHECK_INT(again, <, 1024);
	CHECK_EQ(system(cmd), 0);
	ssh_case_fini(&t);
}

/* sudo from the master (root: no password asked) to mgtest2, whose login
 * shell is dash; the first stage runs under sudo, leaving nothing. */
TEST_T(sudo_from_root_runs_as_the_target_user, 240)
{
	struct mg_test_infra inf;
	struct mg_connect_opts o;
	struct mg_router *r;
	struct mg_context *c;
	struct passwd *pw;
	char user[64];
	int tmp0;

	mg_test_infra_up(&inf);
	r = util_router(0, "master", 0, 0, false);
	mg_connect_opts_init(&o, MG_METHOD_SUDO);
	o.username = mg_test_infra_get(&inf, "MG_INFRA_USER2");
	CHECK((pw = getpwnam(o.username)) != NULL);
	tmp0 = count_owned("/tmp", pw->pw_uid);
	if (mg_connect(r, &o, &c) != 0)
		mg_test_fail(__FILE__, __LINE__, "connect: %s", mg_errdetail());
	remote_user(c, user, sizeof(user));
	CHECK_STR(user, o.username);
	CHECK_EQ(count_owned("/tmp", pw->pw_uid), tmp0);
	mg_context_free(c);
	mg_router_free(r);
	CHECK_EQ(cu_wait_no_children(5000), 0);
	mg_test_infra_put(&inf);
}

TEST_T(sudo_to_a_missing_user_fails_with_sudos_text, 240)
{
	struct mg_test_infra inf;
	struct mg_connect_opts o;
	struct mg_router *r;
	struct mg_context *c;

	mg_test_infra_up(&inf);
	r = util_router(0, "master", 0, 0, false);
	mg_connect_opts_init(&o, MG_METHOD_SUDO);
	o.username = "mg-no-such-user";
	CHECK_EQ(mg_connect(r, &o, &c), MG_ECONNECT);
	if (strstr(mg_errdetail(), "unknown user") == NULL)
		mg_test_fail(__FILE__, __LINE__, "error text: %s", mg_errdetail());
	mg_router_free(r);
	mg_test_infra_put(&inf);
}

/* Runs sudo to mgtest2 as mgtest (in a child that drops to mgtest) with
 * password pw; the child exits 0 when the result was as expected: user
 * mgtest2 when ok, an authentication failure otherwise. */
static void sudo_as_mgtest(struct mg_test_infra *inf, const char *pw, bool ok)
{
	struct passwd *me = getpwnam(mg_test_infra_get(inf, "MG_INFRA_USER"));
	const char *target = mg_test_infra_get(inf, "MG_INFRA_USER2");
	int status;
	pid_t pid;

	CHECK(me != NULL && target != NULL);
	fflush(stdout);
	fflush(stderr);
	CHECK((pid = fork()) >= 0);
	if (pid == 0) {
		struct mg_connect_opts o;
		struct mg_router *r;
		struct mg_context *c;
		char user[64];
		int rc;

		if (setgid(me->pw_gid) != 0 || setuid(me->pw_uid) != 0)
			_exit(10);
		r = util_router(0, "master", 0, 0, false);
		mg_connect_opts_init(&o, MG_METHOD_SUDO);
		o.username = target;
		o.password = pw;
		o.connect_timeout_ms = 20000;
		rc = mg_connect(r, &o, &c);
		if (!ok) {
			if (rc == 0 || strstr(mg_errdetail(), "authentication failed") == NULL) {
				fprintf(stderr, "expected an auth failure: %d %s\n", rc,
				        mg_errdetail());
				_exit(11);
			}
			mg_router_free(r);
			_exit(0);
		}
		if (rc != 0) {
			fprintf(stderr, "connect: %s\n", mg_errdetail());
			_exit(12);
		}
		remote_user(c, user, sizeof(user));
		if (strcmp(user, target) != 0)
			_exit(13);
		mg_context_free(c);
		mg_router_free(r);
		_exit(0);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
}

TEST_T(sudo_with_password_on_a_pty, 240)
{
	struct mg_test_infra inf;

	mg_test_infra_up(&inf);
	sudo_as_mgtest(&inf, mg_test_infra_get(&inf, "MG_INFRA_PASSWORD"), true);
	CHECK_EQ(cu_wait_no_children(5000), 0);
	mg_test_infra_put(&inf);
}

TEST_T(sudo_wrong_password_is_an_auth_failure, 240)
{
	struct mg_test_infra inf;

	mg_test_infra_up(&inf);
	sudo_as_mgtest(&inf, "not-the-password", false);
	CHECK_EQ(cu_wait_no_children(5000), 0);
	mg_test_infra_put(&inf);
}
