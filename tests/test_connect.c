/*
 * test_connect.c: starting contexts.  The handshake in isolation, then real
 * local children (the embedded agent, a program, this very executable),
 * their failures (cannot start, exits early, never answers, wrong
 * version, garbage), forks from the master and from a child, contexts
 * through a gateway, and a thousand at once with nothing left behind.
 *
 * This program doubles as the misbehaving children: started with
 * MG_TEST_FAKECHILD set it plays the part named there, and started as a
 * ship-self context (MITOGEN_CONTEXT=1) it serves the functions below.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

#include "connect/connect.h"
#include "connect_util.h"
#include "util.h"

/* ThreadSanitizer builds: a fork child starts threads (it serves as a
 * context), which the runtime refuses by default. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "die_after_fork=0";
}

/* ---- functions this program's contexts export ------------------------- */

static int64_t fork_marker;

/* (pid, ppid, fork_marker) of the context. */
MG_EXPORT(test_state)
static int test_state(struct mg_call *call)
{
	return mg_call_return(call, "(iii)", (int64_t)getpid(), (int64_t)getppid(), fork_marker);
}

MG_EXPORT(test_getenv)
static int test_getenv(struct mg_call *call)
{
	const char *name;

	if (mg_call_args(call, "s", &name) != 0)
		return -1;
	return mg_call_return(call, "s", getenv(name));
}

/* Whether fd is open in the context. */
MG_EXPORT(test_fd_open)
static int test_fd_open(struct mg_call *call)
{
	int64_t fd;

	if (mg_call_args(call, "i", &fd) != 0)
		return -1;
	return mg_call_return(call, "b", fcntl((int)fd, F_GETFD) >= 0);
}

/* The dispositions of signals the test sets before starting a child:
 * (SIGUSR1 has a handler, SIGUSR2 is ignored, SIGRTMIN+3 has a handler). */
static void sig_state(bool *usr1_handled, bool *usr2_ignored, bool *rt_handled)
{
	struct sigaction sa;

	sigaction(SIGUSR1, NULL, &sa);
	*usr1_handled = sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN;
	sigaction(SIGUSR2, NULL, &sa);
	*usr2_ignored = sa.sa_handler == SIG_IGN;
	sigaction(SIGRTMIN + 3, NULL, &sa);
	*rt_handled = sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN;
}

MG_EXPORT(test_signals)
static int test_signals(struct mg_call *call)
{
	bool a, b, c;

	sig_state(&a, &b, &c);
	return mg_call_return(call, "(bbb)", a, b, c);
}

static void on_signal(int sig)
{
	(void)sig;
}

/* Gives SIGUSR1 and SIGRTMIN+3 a handler and ignores SIGUSR2. */
static void set_test_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	CHECK_OK(sigaction(SIGUSR1, &sa, NULL));
	CHECK_OK(sigaction(SIGRTMIN + 3, &sa, NULL));
	sa.sa_handler = SIG_IGN;
	CHECK_OK(sigaction(SIGUSR2, &sa, NULL));
}

/* ---- helpers ------------------------------------------------------------ */

static struct mg_router *master(void)
{
	return util_router(0, "master", 0, 0, false);
}

static void expect_detail(const char *part)
{
	if (strstr(mg_errdetail(), part) == NULL)
		mg_test_fail(__FILE__, __LINE__, "error text \"%s\" lacks \"%s\"", mg_errdetail(),
		             part);
}

static void state(struct mg_context *c, int64_t *pidp, int64_t *ppidp, int64_t *markp)
{
	struct mg_msg *reply;

	CHECK_OK(mg_call(c, "test_state", &reply, ""));
	CHECK_OK(mg_msg_read(reply, "(iii)", pidp, ppidp, markp));
	mg_msg_free(reply);
}

/* Starts this program as a fake child playing mode; returns the connect's
 * result. */
static int fake_child(struct mg_router *r, const char *mode, int timeout_ms, struct mg_context **cp)
{
	char var[64];
	const char *env[] = {var, NULL};
	struct mg_connect_opts o;

	snprintf(var, sizeof(var), "MG_TEST_FAKECHILD=%s", mode);
	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	o.name = mode;
	o.program = cu_self_exe();
	o.env = env;
	o.connect_timeout_ms = timeout_ms;
	return mg_local(r, &o, cp);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the handshake alone ------------------------------------------------ */

TEST(boot_parameters_round_trip)
{
	struct mg_boot a, b;
	struct mg_buf buf;

	memset(&a, 0, sizeof(a));
	a.context_id = 77;
	a.parent_id = 5;
	a.ancestors[0] = 5;
	a.ancestors[1] = 0;
	a.nancestors = 2;
	snprintf(a.name, sizeof(a.name), "some child");
	a.log_level = MG_LOG_DEBUG;
	a.max_message_size = 1u << 20;
	a.unidirectional = true;
	mg__buf_init(&buf, 4096);
	CHECK_OK(mg__boot_encode(&a, &buf));
	CHECK_OK(mg__boot_decode(buf.data, buf.len, &b));
	CHECK_EQ(b.context_id, 77);
	CHECK_EQ(b.parent_id, 5);
	CHECK_EQ(b.nancestors, 2);
	CHECK_EQ(b.ancestors[0], 5);
	CHECK_EQ(b.ancestors[1], 0);
	CHECK_STR(b.name, "some child");
	CHECK_EQ(b.log_level, MG_LOG_DEBUG);
	CHECK_EQ(b.max_message_size, 1u << 20);
	CHECK(b.unidirectional);
	/* Every truncation is refused. */
	for (size_t n = 0; n < buf.len; n++)
		CHECK_EQ(mg__boot_decode(buf.data, n, &b), MG_EDECODE);
	mg__buf_fini(&buf);
}

TEST(boot_parameters_skip_unknown_keys_and_need_known_ones)
{
	struct mg_msg *m;
	struct mg_boot b;

	/* A newer parent's extra key is skipped. */
	CHECK_OK(mg_msg_pack(&m, "{su su s() ss si su sb s(is)}", "id", (uint64_t)3, "parent",
	                     (uint64_t)0, "ancestors", "name", "x", "log_level", (int64_t)30,
	                     "max_message_size", (uint64_t)4096, "unidirectional", 0, "future",
	                     (int64_t)1, "y"));
	CHECK_OK(mg__boot_decode(mg_msg_data(m), mg_msg_len(m), &b));
	CHECK_EQ(b.context_id, 3);
	CHECK_EQ(b.nancestors, 0);
	mg_msg_free(m);
	/* Without a name it is refused. */
	CHECK_OK(mg_msg_pack(&m, "{su su s() si su sb}", "id", (uint64_t)3, "parent", (uint64_t)0,
	                     "ancestors", "log_level", (int64_t)30, "max_message_size",
	                     (uint64_t)4096, "unidirectional", 0));
	CHECK_EQ(mg__boot_decode(mg_msg_data(m), mg_msg_len(m), &b), MG_EDECODE);
	mg_msg_free(m);
}

/* Runs mg__connect_child_boot in a forked child on a socketpair, with
 * bytes as the parent's side; returns the child's exit status and what it
 * wrote on the channel and on stderr. */
static int run_child_boot(const void *bytes, size_t len, char *chan_out, size_t chan_cap,
                          char *err_out, size_t err_cap)
{
	int sv[2], ep[2], status;
	ssize_t n;
	pid_t pid;

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	CHECK_EQ(pipe2(ep, O_CLOEXEC), 0);
	CHECK_EQ(write(sv[0], bytes, len), (ssize_t)len);
	shutdown(sv[0], SHUT_WR);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		struct mg_boot boot;
		int rc;

		dup2(ep[1], 2);
		rc = mg__connect_child_boot(sv[1], sv[1], &boot);
		_exit(rc == 0 && boot.context_id == 9 ? 0 : rc == MG_EPROTOCOL ? 3 : 4);
	}
	close(sv[1]);
	close(ep[1]);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	n = read(sv[0], chan_out, chan_cap - 1);
	chan_out[n > 0 ? n : 0] = '\0';
	n = read(ep[0], err_out, err_cap - 1);
	err_out[n > 0 ? n : 0] = '\0';
	close(sv[0]);
	close(ep[0]);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

TEST(handshake_in_isolation)
{
	struct mg_boot boot;
	struct mg_buf hs;
	char chan[64], err[256], why[160];
	uint32_t ver, pid;

	memset(&boot, 0, sizeof(boot));
	boot.context_id = 9;
	snprintf(boot.name, sizeof(boot.name), "nine");
	boot.max_message_size = 65536;
	mg__buf_init(&hs, 65536);
	CHECK_OK(mg__hs_boot_build(&boot, &hs));
	CHECK_MEM(hs.data, "MGBOOT 00000002\n", 16);
	CHECK_EQ(mg__be32(hs.data + 16), hs.len - 20);
	CHECK_EQ(run_child_boot(hs.data, hs.len, chan, sizeof(chan), err, sizeof(err)), 0);
	CHECK_EQ(strlen(chan), MG_HS_READY_LEN);
	CHECK_OK(mg__hs_ready_parse(chan, &ver, &pid, why, sizeof(why)));
	CHECK_EQ(ver, MG_PROTOCOL_VERSION);
	CHECK(pid > 0);
	CHECK_STR(err, "");
	mg__buf_fini(&hs);
}

TEST(handshake_child_refuses_another_version)
{
	static const char bytes[] = "MGBOOT 00000099\n\0\0\0\0";
	char chan[64], err[256];

	CHECK_EQ(run_child_boot(bytes, sizeof(bytes) - 1, chan, sizeof(chan), err, sizeof(err)), 3);
	CHECK_STR(chan, "");
	CHECK(strstr(err, "parent speaks version 99, this program 2") != NULL);
}

TEST(handshake_child_refuses_garbage_and_truncation)
{
	char chan[64], err[256];

	CHECK_EQ(run_child_boot("hello there, child\n", 19, chan, sizeof(chan), err, sizeof(err)),
	         3);
	CHECK(strstr(err, "malformed") != NULL);
	CHECK_EQ(run_child_boot("MGBOOT 00000002\n\0\0\0\x20{", 21, chan, sizeof(chan), err,
	                        sizeof(err)),
	         3);
	CHECK_EQ(run_child_boot("MGBOOT 00000002\n\xff\0\0\0", 20, chan, sizeof(chan), err,
	                        sizeof(err)),
	         3);
	CHECK(strstr(err, "too large") != NULL);
	CHECK_STR(chan, "");
}

TEST(ready_marker_parsing)
{
	char mark[MG_HS_READY_LEN + 1] = {0}, why[160];
	uint32_t ver, pid;

	mg__hs_ready_format(MG_PROTOCOL_VERSION, 4242, mark);
	CHECK_MEM(mark, "MGREADY 00000002 0000004242\n", MG_HS_READY_LEN);
	CHECK_OK(mg__hs_ready_parse(mark, &ver, &pid, why, sizeof(why)));
	CHECK_EQ(pid, 4242);
	mg__hs_ready_format(7, 1, mark);
	CHECK_EQ(mg__hs_ready_parse(mark, &ver, &pid, why, sizeof(why)), MG_ECONNECT);
	CHECK(strstr(why, "child speaks version 7, this side 2") != NULL);
	memcpy(mark, "MGREADY 0000000x 0000004242\n", MG_HS_READY_LEN);
	CHECK_EQ(mg__hs_ready_parse(mark, &ver, &pid, why, sizeof(why)), MG_EPROTOCOL);
}

/* ---- local children ----------------------------------------------------- */

TEST(local_agent_starts_answers_and_goes)
{
	struct mg_router *r = master();
	struct mg_connect_opts o;
	struct mg_context *c;
	char path[64], cmd[256] = {0};
	int fd;

	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	o.name = "argv-check";
	CHECK_OK(mg_local(r, &o, &c));
	CHECK_STR(mg_context_name(c), "argv-check");
	CHECK(c->pid > 0);
	/* Named in ps as Mitogen's children are. */
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)c->pid);
	CHECK((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0);
	CHECK(read(fd, cmd, sizeof(cmd) - 1) > 0);
	close(fd);
	CHECK_STR(cmd, "mitogen:argv-check");
	cu_ping(c);
	CHECK_OK(mg_context_shutdown(c, 5000));
	CHECK(mg_context_is_gone(c));
	mg_context_free(c);
	CHECK_EQ(cu_count_children(), 0);
	mg_router_free(r);
}

TEST(local_start_is_asynchronous_and_selectable)
{
	struct mg_router *r = master();
	struct mg_context *c[8];
	struct mg_select *sel;
	struct mg_connect_opts o;
	int i;

	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	CHECK_OK(mg_select_new(&sel));
	for (i = 0; i < 8; i++) {
		CHECK_OK(mg_connect_start(r, &o, &c[i]));
		CHECK_OK(mg_select_add(sel, mg_context_ready_receiver(c[i])));
	}
	for (i = 0; i < 8; i++) {
		struct mg_receiver *rx;
		struct mg_msg *m;

		CHECK_OK(mg_select_get(sel, 10000, &rx, &m));
		mg_msg_free(m);
	}
	for (i = 0; i < 8; i++) {
		CHECK_OK(mg_context_wait_ready(c[i], 0));
		cu_ping(c[i]);
		CHECK_OK(mg_select_remove(sel, mg_context_ready_receiver(c[i])));
		CHECK_OK(mg_context_shutdown(c[i], 5000));
		mg_context_free(c[i]);
	}
	mg_select_free(sel);
	CHECK_EQ(cu_count_children(), 0);
	mg_router_free(r);
}

TEST(program_that_cannot_start)
{
	struct mg_router *r = master();
	struct mg_connect_opts o;
	struct mg_context *c;

	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	o.name = "ghost";
	o.program = "/nonexistent/mitogen-test-program";
	CHECK_EQ(mg_local(r, &o, &c), MG_ECONNECT);
	expect_detail("ghost: cannot run /nonexistent/mitogen-test-program");
	expect_detail("No such file or directory");
	o.program = "/etc/passwd";
	CHECK_EQ(mg_local(r, &o, &c), MG_ECONNECT);
	expect_detail("Permission denied");
	CHECK_EQ(cu_count_children(), 0);
	mg_router_free(r);
}

/* Starts the fake child in mode, which must fail the connect with code
 * and leave no process; the error's detail must hold each of details. */
static void expect_refused(const char *mode, int timeout_ms, int code, const char *const *details)
{
	struct mg_router *r = master();
	struct mg_context *c;

	CHECK_EQ(fake_child(r, mode, timeout_ms, &c), code);
	for (; *details != NULL; details++)
		expect_detail(*details);
	CHECK_EQ(cu_wait_no_children(2000), 0);
	mg_router_free(r);
}

TEST(program_that_exits_reports_its_stderr)
{
	const char *d[] = {"stderr: the program exited with status 3 before it was ready",
	                   "fake child: something broke; and said why", NULL};

	expect_refused("stderr", 10000, MG_ECONNECT, d);
}

TEST(connect_deadline)
{
	int ms = (int)(500 * mg_test_slowdown());
	char text[64];
	const char *d[] = {text, "fake child: sleeping", NULL};
	int64_t t0 = now_ms();

	snprintf(text, sizeof(text), "no ready marker within %d ms", ms);
	expect_refused("sleep", ms, -ETIMEDOUT, d);
	CHECK(now_ms() - t0 >= ms);
}

TEST(version_mismatch_is_refused)
{
	const char *d[] = {"protocol version mismatch: the child speaks version 99, this side 2",
	                   NULL};

	expect_refused("badver", 10000, MG_ECONNECT, d);
}

TEST(garbage_instead_of_a_marker)
{
	const char *d[] = {"something other than a ready marker", NULL};

	expect_refused("garbage", 10000, MG_EPROTOCOL, d);
}

TEST(ship_self_runs_this_program)
{
	const char *env[] = {"MG_TEST_SHIP=yes", NULL};
	struct mg_router *r = master();
	struct mg_connect_opts o;
	struct mg_context *c;
	struct mg_msg *reply;
	int64_t pid, ppid, mark;
	const char *s;

	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	o.ship_self = true;
	o.env = env;
	fork_marker = 99; /* a fresh process: it must not see this */
	CHECK_OK(mg_local(r, &o, &c));
	state(c, &pid, &ppid, &mark);
	CHECK_EQ(pid, c->pid);
	CHECK_EQ(ppid, getpid());
	CHECK_EQ(mark, 0);
	CHECK_OK(mg_call(c, "test_getenv", &reply, "s", "MG_TEST_SHIP"));
	CHECK_OK(mg_msg_read(reply, "s", &s));
	CHECK_STR(s, "yes");
	mg_msg_free(reply);
	/* The flag is for mg_child_main only; the context's own children
	 * must not inherit it. */
	CHECK_OK(mg_call(c, "test_getenv", &reply, "s", MG_CONTEXT_ENV));
	CHECK_OK(mg_msg_read(reply, "s", &s));
	CHECK(s == NULL);
	mg_msg_free(reply);
	CHECK_OK(mg_context_shutdown(c, 5000));
	mg_context_free(c);
	CHECK_EQ(cu_count_children(), 0);
	mg_router_free(r);
}

TEST(context_freed_while_connecting_leaves_nothing)
{
	struct mg_router *r = master();
	struct mg_context *c[10];
	struct mg_connect_opts o;
	int i;

	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	for (i = 0; i < 10; i++)
		CHECK_OK(mg_connect_start(r, &o, &c[i]));
	for (i = 0; i < 10; i++)
		mg_context_free(c[i]);
	CHECK_EQ(cu_wait_no_children(10000), 0);
	mg_router_free(r);
}

TEST(router_freed_while_connecting_leaves_nothing)
{
	struct mg_router *r = master();
	struct mg_context *c[10];
	struct mg_connect_opts o;
	int i;

	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	for (i = 0; i < 10; i++)
		CHECK_OK(mg_connect_start(r, &o, &c[i]));
	mg_router_free(r);
	for (i = 0; i < 10; i++) {
		CHECK(mg_context_wait_ready(c[i], 5000) != -ETIMEDOUT);
		mg_context_free(c[i]);
	}
	CHECK_EQ(cu_wait_no_children(5000), 0);
}

static void busy_helper_job(void *arg)
{
	usleep(2500 * 1000);
}

/* The helper thread is busy longer than a free waits for a connect, so
 * the launch reaches the connector after the context is freed; the free
 * must wait for it (ASan and TSan see any use of the freed context). */
TEST(context_freed_while_its_launch_waits_for_the_helper)
{
	struct mg_router *r = master();
	struct mg_connect_opts o;
	struct mg_context *c;

	CHECK_OK(mg__broker_post_helper(r->broker, busy_helper_job, NULL));
	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	CHECK_OK(mg_connect_start(r, &o, &c));
	mg_context_free(c);
	CHECK_EQ(cu_wait_no_children(5000), 0);
	mg_router_free(r);
}

/* A connect given up (shut down before it was ready) ends as a failed one
 * does: at once, and the child's input ends before any kill, so a first
 * stage waiting there removes its file.  The wait asked for is far longer
 * than the case may take. */
TEST(shutdown_while_connecting_gives_up_and_lets_the_child_clean_up)
{
	struct mg_router *r = master();
	char file[64], var[96];
	const char *env[] = {"MG_TEST_FAKECHILD=eof", var, NULL};
	struct mg_connect_opts o;
	struct mg_context *c;
	int ms;

	snprintf(file, sizeof(file), "/tmp/mg-test-eof-%d", (int)getpid());
	snprintf(var, sizeof(var), "MG_TEST_FAKEFILE=%s", file);
	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	o.name = "eof";
	o.program = cu_self_exe();
	o.env = env;
	o.connect_timeout_ms = 600000;
	CHECK_OK(mg_connect_start(r, &o, &c));
	for (ms = 0; ms < 10000 && access(file, F_OK) != 0; ms += 10)
		usleep(10000);
	CHECK_EQ(access(file, F_OK), 0);
	CHECK_OK(mg_context_shutdown(c, 600000));
	CHECK_EQ(mg_context_wait_ready(c, 0), MG_ESHUTDOWN);
	expect_detail("eof: given up while connecting");
	CHECK(access(file, F_OK) != 0);
	mg_context_free(c);
	CHECK_EQ(cu_wait_no_children(5000), 0);
	mg_router_free(r);
}

/* ---- fork --------------------------------------------------------------- */

TEST(fork_from_master)
{
	struct mg_router *r = master();
	struct mg_context *c;
	int64_t pid, ppid, mark;
	struct mg_msg *reply;
	bool open_there;
	int fd;

	/* An fd without O_CLOEXEC: a fork child must still not keep it. */
	CHECK((fd = open("/dev/null", O_RDONLY)) >= 0);
	CHECK_EQ(dup2(fd, 900), 900);
	close(fd);
	fork_marker = 1234;
	CHECK_OK(mg_fork(r, NULL, &c));
	CHECK(c->pid > 0);
	state(c, &pid, &ppid, &mark);
	CHECK_EQ(pid, c->pid);
	CHECK_EQ(ppid, getpid());
	CHECK_EQ(mark, 1234); /* it has this process's memory */
	CHECK_OK(mg_call(c, "test_fd_open", &reply, "i", (int64_t)900));
	CHECK_OK(mg_msg_read(reply, "b", &open_there));
	CHECK(!open_there);
	mg_msg_free(reply);
	cu_ping(c);
	CHECK_OK(mg_context_shutdown(c, 5000));
	mg_context_free(c);
	close(900);
	CHECK_EQ(cu_count_children(), 0);
	mg_router_free(r);
}

/* A new child's handlers go back to the defaults, ignored signals stay
 * ignored (SIGPIPE too, unless the child is about to exec; every one for
 * a command of the exec service), and its mask is empty: checked in a
 * plain fork of the test. */
TEST(new_children_reset_handlers_and_keep_ignored_signals)
{
	int status;
	pid_t pid;

	set_test_signals();
	CHECK((pid = fork()) >= 0);
	if (pid == 0) {
		struct sigaction sa;
		sigset_t all, mask;
		bool a, b, c;
		int bad = 0;

		signal(SIGPIPE, SIG_IGN);
		sigfillset(&all);
		sigprocmask(SIG_BLOCK, &all, NULL);
		mg__spawn_reset_signals(0);
		sig_state(&a, &b, &c);
		sigaction(SIGPIPE, NULL, &sa);
		bad |= a | (!b << 1) | (c << 2) | ((sa.sa_handler != SIG_IGN) << 3);
		sigprocmask(SIG_SETMASK, NULL, &mask);
		bad |= sigismember(&mask, SIGUSR1) << 4;
		set_test_signals();
		mg__spawn_reset_signals((uint64_t)1 << (SIGPIPE - 1));
		sig_state(&a, &b, &c);
		sigaction(SIGPIPE, NULL, &sa);
		bad |= ((a | !b | c) << 5) | ((sa.sa_handler != SIG_DFL) << 6);
		set_test_signals();
		signal(SIGPIPE, SIG_IGN);
		mg__spawn_reset_signals(~(uint64_t)0);
		sig_state(&a, &b, &c);
		sigaction(SIGPIPE, NULL, &sa);
		sigprocmask(SIG_SETMASK, NULL, &mask);
		/* An exit status has 8 bits: one for this whole case. */
		bad |= (a | b | c | (sa.sa_handler != SIG_DFL) | sigismember(&mask, SIGUSR1)) << 7;
		_exit(bad);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
}

/* A fork child writes its ready marker before it resets signals; the reset
 * must still happen. */
TEST(fork_child_has_default_signal_handling)
{
	struct mg_router *r = master();
	struct mg_context *c;
	struct mg_msg *reply;
	bool usr1, usr2, rt;

	set_test_signals();
	sig_state(&usr1, &usr2, &rt);
	CHECK(usr1 && usr2 && rt);
	CHECK_OK(mg_fork(r, NULL, &c));
	CHECK_OK(mg_call(c, "test_signals", &reply, ""));
	CHECK_OK(mg_msg_read(reply, "(bbb)", &usr1, &usr2, &rt));
	mg_msg_free(reply);
	CHECK(!usr1);
	CHECK(usr2);
	CHECK(!rt);
	CHECK_OK(mg_context_shutdown(c, 5000));
	mg_context_free(c);
	CHECK_EQ(cu_count_children(), 0);
	mg_router_free(r);
}

TEST(fork_from_a_child)
{
	struct mg_router *r = master();
	struct mg_connect_opts o;
	struct mg_context *c1, *c2;
	int64_t pid1, pid2, ppid, mark;

	fork_marker = 1;
	CHECK_OK(mg_fork(r, NULL, &c1));
	fork_marker = 2; /* the grandchild forks from c1, which saw 1 */
	mg_connect_opts_init(&o, MG_METHOD_FORK);
	o.via = c1;
	o.name = "grandchild";
	CHECK_OK(mg_connect(r, &o, &c2));
	CHECK_STR(mg_context_name(c2), "grandchild");
	state(c1, &pid1, &ppid, &mark);
	CHECK_EQ(ppid, getpid());
	state(c2, &pid2, &ppid, &mark);
	CHECK(pid2 != pid1);
	CHECK_EQ(ppid, pid1);
	CHECK_EQ(mark, 1);
	cu_ping(c2);
	CHECK_OK(mg_context_shutdown(c2, 5000));
	mg_context_free(c2);
	CHECK_OK(mg_context_shutdown(c1, 5000));
	mg_context_free(c1);
	CHECK_EQ(cu_wait_no_children(2000), 0);
	mg_router_free(r);
}

TEST(local_agent_through_a_child)
{
	struct mg_router *r = master();
	struct mg_connect_opts o;
	struct mg_context *c1, *c2;

	CHECK_OK(mg_fork(r, NULL, &c1));
	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	o.via = c1;
	CHECK_OK(mg_connect(r, &o, &c2));
	cu_ping(c2);
	/* A failure in the gateway comes back with its text. */
	{
		struct mg_context *c3;

		o.program = "/nonexistent/via-program";
		CHECK_EQ(mg_connect(r, &o, &c3), MG_ECONNECT);
		expect_detail("cannot run /nonexistent/via-program");
	}
	CHECK_OK(mg_context_shutdown(c1, 5000)); /* cascades to c2 */
	CHECK(mg_context_is_gone(c2));
	mg_context_free(c2);
	mg_context_free(c1);
	CHECK_EQ(cu_wait_no_children(2000), 0);
	mg_router_free(r);
}

TEST(agent_as_a_gateway)
{
	struct mg_router *r = master();
	struct mg_connect_opts o;
	struct mg_context *c1, *c2, *c3;

	/* The agent boots another agent from its own image, and forks. */
	CHECK_OK(mg_local(r, NULL, &c1));
	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	o.via = c1;
	CHECK_OK(mg_connect(r, &o, &c2));
	cu_ping(c2);
	mg_connect_opts_init(&o, MG_METHOD_FORK);
	o.via = c1;
	CHECK_OK(mg_connect(r, &o, &c3));
	cu_ping(c3);
	CHECK_OK(mg_context_shutdown(c1, 5000));
	CHECK(mg_context_is_gone(c2));
	CHECK(mg_context_is_gone(c3));
	mg_context_free(c3);
	mg_context_free(c2);
	mg_context_free(c1);
	CHECK_EQ(cu_wait_no_children(2000), 0);
	mg_router_free(r);
}

TEST(three_levels_of_gateways)
{
	struct mg_router *r = master();
	struct mg_connect_opts o;
	struct mg_context *c1, *c2, *c3, *c4;
	int64_t pid2, pid3, ppid, mark;

	CHECK_OK(mg_fork(r, NULL, &c1));
	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	o.via = c1;
	CHECK_OK(mg_connect(r, &o, &c2)); /* c1 now remembers a context */
	mg_connect_opts_init(&o, MG_METHOD_FORK);
	o.via = c1;
	CHECK_OK(mg_connect(r, &o, &c3)); /* a fork of c1: forgets c1's */
	mg_connect_opts_init(&o, MG_METHOD_FORK);
	o.via = c3;
	CHECK_OK(mg_connect(r, &o, &c4));
	state(c3, &pid3, &ppid, &mark);
	state(c4, &pid2, &ppid, &mark);
	CHECK_EQ(ppid, pid3);
	cu_ping(c2);
	cu_ping(c4);
	CHECK_OK(mg_context_shutdown(c1, 5000));
	mg_context_free(c4);
	mg_context_free(c3);
	mg_context_free(c2);
	mg_context_free(c1);
	CHECK_EQ(cu_wait_no_children(2000), 0);
	mg_router_free(r);
}

/* ---- many --------------------------------------------------------------- */

#define MANY 1000

TEST_T(thousand_local_contexts_at_once, 600)
{
	static struct mg_context *c[MANY];
	struct mg_router *r;
	struct mg_select *sel;
	struct mg_connect_opts o;
	int i, tmp_before = cu_count_tmp_agents();

	cu_raise_nofile();
	r = master();
	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	o.connect_timeout_ms = 120000;
	CHECK_OK(mg_select_new(&sel));
	for (i = 0; i < MANY; i++) {
		CHECK_OK(mg_connect_start(r, &o, &c[i]));
		CHECK_OK(mg_select_add(sel, mg_context_ready_receiver(c[i])));
	}
	/* Collected as they become ready, in whatever order. */
	for (i = 0; i < MANY; i++) {
		struct mg_receiver *rx;
		struct mg_msg *m;

		CHECK_OK(mg_select_get(sel, 120000, &rx, &m));
		mg_msg_free(m);
	}
	for (i = 0; i < MANY; i++) {
		CHECK_OK(mg_context_wait_ready(c[i], 0));
		CHECK_OK(mg_select_remove(sel, mg_context_ready_receiver(c[i])));
		cu_ping(c[i]);
	}
	mg_select_free(sel);
	for (i = 0; i < MANY; i++) {
		CHECK_OK(mg_context_shutdown(c[i], 10000));
		mg_context_free(c[i]);
	}
	CHECK_EQ(cu_wait_no_children(5000), 0);
	CHECK_EQ(cu_count_tmp_agents(), tmp_before);
	mg_router_free(r);
}

/* ---- this program as a misbehaving child -------------------------------- */

static void fake_read_handshake(void)
{
	uint8_t buf[MG_HS_BOOT_LINE_LEN + 4 + 4096];
	size_t have = 0, want = MG_HS_BOOT_LINE_LEN + 4;

	while (have < want) {
		ssize_t n = read(0, buf + have, want - have);
		if (n <= 0)
			_exit(5);
		have += (size_t)n;
		if (have == MG_HS_BOOT_LINE_LEN + 4)
			want += mg__be32(buf + MG_HS_BOOT_LINE_LEN);
		if (want > sizeof(buf))
			_exit(6);
	}
}

static void fake_say(int fd, const char *s)
{
	if (write(fd, s, strlen(s)) < 0)
		_exit(7);
}

/* Runs before the runner's main (and, as this object is linked first,
 * before the library's own constructors): a context started from this
 * program never gets to run the suite. */
__attribute__((constructor)) static void fake_child_main(void)
{
	const char *mode = getenv("MG_TEST_FAKECHILD");
	char mark[MG_HS_READY_LEN + 1];

	if (getenv(MG_CONTEXT_ENV) != NULL)
		mg_child_main(0, NULL); /* never returns */
	if (mode == NULL) {
		/* The agent's fd is made once per process and kept: make it
		 * before the runner counts each case's fds. */
		if (mg__agent_memfd() < 0)
			abort();
		return;
	}
	if (strcmp(mode, "stderr") == 0) {
		fake_say(2, "fake child: something broke\nand said why\n");
		_exit(3);
	}
	if (strcmp(mode, "sleep") == 0) {
		fake_say(2, "fake child: sleeping\n");
		for (;;)
			pause();
	}
	if (strcmp(mode, "eof") == 0) {
		/* As a first stage waiting for its line: a file of its own,
		 * removed when its input ends. */
		const char *f = getenv("MG_TEST_FAKEFILE");
		char b[256];
		int fd = f != NULL ? open(f, O_WRONLY | O_CREAT | O_EXCL, 0600) : -1;

		if (fd < 0)
			_exit(8);
		close(fd);
		while (read(0, b, sizeof(b)) > 0)
			;
		unlink(f);
		_exit(0);
	}
	fake_read_handshake();
	if (strcmp(mode, "badver") == 0) {
		snprintf(mark, sizeof(mark), "MGREADY 00000099 %010u\n", (unsigned)getpid());
		fake_say(1, mark);
	} else {
		fake_say(1, "this is not a marker at all\n");
	}
	for (;;)
		pause();
}
