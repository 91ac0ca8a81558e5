/*
 * test_calls.c: the call machinery against real child processes.  The
 * children here are forked by the test itself and run mg__child_serve()
 * on a socketpair, so these cases exercise the context layer alone; the
 * connection methods have their own suite.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "connect_util.h"
#include "context/calls.h"
#include "util.h"

/* ---- functions the children export ------------------------------------ */

MG_EXPORT(add)
static int add(struct mg_call *call)
{
	int64_t a, b;

	if (mg_call_args(call, "ii", &a, &b) != 0)
		return -1;
	return mg_call_return(call, "i", a + b);
}

MG_EXPORT(fail_value)
static int fail_value(struct mg_call *call)
{
	return mg_call_fail(call, "ValueError", "bad value %d", 42);
}

MG_EXPORT(crash)
static int crash(struct mg_call *call)
{
	volatile int *p = NULL;

	/* Under ASan a real fault is reported and ended by ASan's own handler
	 * before ours runs; a raised SIGSEGV still exercises ours there. */
	if (mg_test_sanitized())
		raise(SIGSEGV);
	else
		*p = 1;
	return 0;
}

MG_EXPORT(sleep_ms)
static int sleep_ms(struct mg_call *call)
{
	int64_t ms;

	if (mg_call_args(call, "i", &ms) != 0)
		return -1;
	usleep((useconds_t)ms * 1000);
	return 0;
}

/* Replies after it returns, from a thread of its own, as the exec
 * service does when a command ends. */
struct later {
	struct mg_sender *reply;
	int64_t v;
};

static void *reply_later_main(void *arg)
{
	struct later *l = arg;

	usleep(50000);
	mg_sender_sendf(l->reply, "is", l->v * 2, "later");
	mg_sender_free(l->reply);
	free(l);
	return NULL;
}

MG_EXPORT(reply_later)
static int reply_later(struct mg_call *call)
{
	struct later *l = calloc(1, sizeof(*l));
	pthread_t t;
	int rc;

	if (l == NULL || mg_call_args(call, "i", &l->v) != 0) {
		free(l);
		return -1;
	}
	if ((rc = mg_call_defer(call, &l->reply)) != 0 || l->reply == NULL) {
		free(l);
		return rc != 0 ? rc : mg_call_fail(call, "ValueError", "no reply handle");
	}
	if (pthread_create(&t, NULL, reply_later_main, l) != 0) {
		mg_sender_free(l->reply);
		free(l);
		return mg_call_fail(call, "OSError", "no thread");
	}
	pthread_detach(t);
	return 0;
}

MG_EXPORT(getpid_fn)
static int getpid_fn(struct mg_call *call)
{
	return mg_call_return(call, "i", (int64_t)getpid());
}

static int marked;

MG_EXPORT(mark)
static int mark(struct mg_call *call)
{
	marked++;
	return 0;
}

MG_EXPORT(get_mark)
static int get_mark(struct mg_call *call)
{
	return mg_call_return(call, "i", (int64_t)marked);
}

MG_EXPORT(count_to)
static int count_to(struct mg_call *call)
{
	struct mg_sender *s;
	int64_t n, i;

	if (mg_call_args(call, "hi", &s, &n) != 0)
		return -1;
	for (i = 0; i < n; i++)
		mg_sender_sendf(s, "i", i);
	mg_sender_close(s);
	mg_sender_free(s);
	return 0;
}

MG_EXPORT(say)
static int say(struct mg_call *call)
{
	const char *text;

	if (mg_call_args(call, "s", &text) != 0)
		return -1;
	printf("%s\n", text);
	fprintf(stderr, "err: %s\n", text);
	mg_log(MG_LOG_WARNING, "user", "logged: %s", text);
	return 0;
}

/* Writes bytes straight onto the channel to the parent, as a hostile or
 * broken child would. */
static void write_raw_up(const void *p, size_t n)
{
	struct mg_router *r = mg__self_router();
	int fd = r->parent->wfd;

	pthread_mutex_lock(&r->parent->lock);
	if (write(fd, p, n) != (ssize_t)n)
		abort();
	pthread_mutex_unlock(&r->parent->lock);
}

MG_EXPORT(send_garbage)
static int send_garbage(struct mg_call *call)
{
	write_raw_up("this is not a frame at all, not even close....", 46);
	return 0;
}

MG_EXPORT(forge_source)
static int forge_source(struct mg_call *call)
{
	int64_t victim, handle;
	struct mg_frame_hdr h;
	uint8_t hdr[MG_FRAME_HDR_LEN];

	if (mg_call_args(call, "ii", &victim, &handle) != 0)
		return -1;
	/* Pretend to be the sibling, then the master itself. */
	h = (struct mg_frame_hdr){
	        MG_ENC_RAW, 0, (uint32_t)victim, (uint32_t)victim, (uint32_t)handle, 0, 0};
	mg__frame_encode(&h, hdr);
	write_raw_up(hdr, sizeof(hdr));
	h.src_id = h.auth_id = 0;
	mg__frame_encode(&h, hdr);
	write_raw_up(hdr, sizeof(hdr));
	return 0;
}

MG_EXPORT(call_parent)
static int call_parent(struct mg_call *call)
{
	struct mg_router *r = mg_call_router(call);
	struct mg_receiver *rx;
	struct mg_msg *m;
	int rc;

	if (mg_receiver_new(r, 0, MG_POLICY_ANY, &rx) != 0)
		return -1;
	if (mg_msg_pack(&m, "aSi()", (size_t)3, "add", (size_t)3, (int64_t)0) != 0)
		return -1;
	mg_msg_set_reply_to(m, mg_receiver_handle(rx));
	mg_router_send(r, 0, MG_HANDLE_CALL_FUNCTION, m);
	rc = mg_receiver_get(rx, 5000, &m);
	mg_receiver_free(rx);
	if (rc == 0) {
		mg_msg_free(m);
		return mg_call_fail(call, "Unexpected", "the parent ran a call from its child");
	}
	return mg_call_fail(call, "Refused", "%s: %s", mg_strerror(rc), mg_errdetail());
}

/* Sends a message to (dst, handle) as this context and reports what came
 * back: a refusal as a "Refused" error with the dead message's reason, a
 * real answer as "Unexpected".  CALL_FUNCTION gets a call to "add". */
MG_EXPORT(poke)
static int poke(struct mg_call *call)
{
	struct mg_router *r = mg_call_router(call);
	int64_t dst, handle;
	struct mg_receiver *rx;
	struct mg_msg *m;
	int rc;

	if (mg_call_args(call, "ii", &dst, &handle) != 0)
		return -1;
	if (mg_receiver_new(r, 0, MG_POLICY_ANY, &rx) != 0)
		return -1;
	rc = handle == MG_HANDLE_CALL_FUNCTION
	             ? mg_msg_pack(&m, "aSi()", (size_t)3, "add", (size_t)3, (int64_t)0)
	             : mg_msg_new(&m);
	if (rc != 0)
		return -1;
	mg_msg_set_reply_to(m, mg_receiver_handle(rx));
	mg_router_send(r, (uint32_t)dst, (uint32_t)handle, m);
	rc = mg_receiver_get(rx, 2000, &m);
	mg_receiver_free(rx);
	if (rc == 0) {
		mg_msg_free(m);
		return mg_call_fail(call, "Unexpected", "context %lld handle %lld answered",
		                    (long long)dst, (long long)handle);
	}
	return mg_call_fail(call, "Refused", "%s: %s", mg_strerror(rc), mg_errdetail());
}

/* Announces a route to id to this context's parent, as a gateway does for
 * a child it connected. */
MG_EXPORT(announce)
static int announce(struct mg_call *call)
{
	struct mg_router *r = mg_call_router(call);
	struct mg_msg *m;
	int64_t id;

	if (mg_call_args(call, "i", &id) != 0 || mg_msg_pack(&m, "u", (uint64_t)id) != 0)
		return -1;
	mg_router_send(r, r->ancestors[0], MG_HANDLE_ADD_ROUTE, m);
	return mg_call_return(call, "");
}

/* The id of the stream this context would send a message for id on (its
 * peer), or -1 when none. */
MG_EXPORT(route_peer)
static int route_peer(struct mg_call *call)
{
	struct mg_router *r = mg_call_router(call);
	struct mg_stream *s;
	int64_t id, peer = -1;

	if (mg_call_args(call, "i", &id) != 0)
		return -1;
	pthread_mutex_lock(&r->lock);
	s = mg__idmap_get(&r->routes, (uint32_t)id);
	if (s != NULL)
		peer = s->peer_id;
	pthread_mutex_unlock(&r->lock);
	return mg_call_return(call, "i", peer);
}

/* ---- a child made by hand --------------------------------------------- */

/* Forks a child context (the library's fork method, so the child runs
 * this test program's exports) and returns it ready.  The id is chosen by
 * the router; name is what errors and logs carry. */
static struct mg_context *fork_child(struct mg_router *r, uint32_t unused_id, const char *name)
{
	struct mg_connect_opts o;
	struct mg_context *c;

	mg_connect_opts_init(&o, MG_METHOD_FORK);
	o.name = name;
	CHECK_OK(mg_fork(r, &o, &c));
	return c;
}

static struct mg_router *master(void)
{
	return util_router(0, "master", 0, 0, false);
}

TEST(call_returns_values)
{
	struct mg_router *r = master();
	struct mg_context *c = fork_child(r, 1, "child-1");
	struct mg_msg *reply;
	int64_t sum;

	CHECK_OK(mg_context_wait_ready(c, 1000));
	CHECK_OK(mg_call(c, "add", &reply, "ii", (int64_t)2, (int64_t)3));
	CHECK_OK(mg_msg_read(reply, "i", &sum));
	CHECK_EQ(sum, 5);
	mg_msg_free(reply);
	CHECK_OK(mg_context_shutdown(c, 2000));
	CHECK(mg_context_is_gone(c));
	mg_context_free(c);
	mg_router_free(r);
}

TEST(a_deferred_reply_arrives_after_the_function_returned)
{
	struct mg_router *r = master();
	struct mg_context *c = fork_child(r, 1, "child-1");
	struct mg_receiver *rx;
	struct mg_msg *reply;
	const char *s;
	int64_t v;

	CHECK_OK(mg_context_wait_ready(c, 1000));
	CHECK_OK(mg_call_async(c, "reply_later", &rx, "i", (int64_t)21));
	/* Had the dispatcher replied at the return, that empty reply would
	 * come first. */
	CHECK_OK(mg_call_wait(rx, 5000, &reply));
	CHECK_OK(mg_msg_read(reply, "is", &v, &s));
	CHECK_EQ(v, 42);
	CHECK_STR(s, "later");
	mg_msg_free(reply);
	CHECK_EQ(mg_receiver_get(rx, 200, &reply), -ETIMEDOUT);
	mg_receiver_free(rx);
	CHECK_OK(mg_context_shutdown(c, 2000));
	mg_context_free(c);
	mg_router_free(r);
}

TEST(remote_errors_keep_type_message_context_and_function)
{
	struct mg_router *r = master();
	struct mg_context *c = fork_child(r, 1, "child-1");
	const struct mg_error *e;
	struct mg_msg *reply;

	CHECK_EQ(mg_call(c, "fail_value", &reply, ""), MG_EREMOTE);
	e = mg_last_error();
	CHECK_EQ(e->code, MG_EREMOTE);
	CHECK_STR(e->type, "ValueError");
	CHECK_STR(e->message, "bad value 42");
	CHECK_STR(e->context, "child-1");
	CHECK_STR(e->function, "fail_value");
	CHECK(strstr(mg_errdetail(), "ValueError") != NULL);

	CHECK_EQ(mg_call(c, "no_such_function", &reply, ""), MG_ENOFUNC);
	CHECK_STR(mg_last_error()->type, "mitogen.NoSuchFunction");
	CHECK_STR(mg_last_error()->function, "no_such_function");

	CHECK_EQ(mg_call(c, "add", &reply, "s", "two"), MG_EARGS);
	CHECK_STR(mg_last_error()->type, "mitogen.ArgumentError");
	CHECK_EQ(mg_call(c, "add", &reply, "iii", (int64_t)1, (int64_t)2, (int64_t)3), MG_EARGS);
	/* The message says how many came. */
	CHECK(strstr(mg_last_error()->message, "(3 given)") != NULL);
	CHECK_EQ(mg_call(c, "add", &reply, "i", (int64_t)1), MG_EARGS);
	{
		char longname[300];
		memset(longname, 'f', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		CHECK_EQ(mg_call(c, longname, &reply, ""), MG_ELIMIT);
	}
	/* After all that the context still answers. */
	CHECK_OK(mg_call(c, "add", &reply, "ii", (int64_t)1, (int64_t)1));
	mg_msg_free(reply);
	mg_context_free(c);
	mg_router_free(r);
}

TEST(a_crash_is_reported_as_a_crash)
{
	struct mg_router *r = master();
	struct mg_context *c = fork_child(r, 1, "child-1");
	struct mg_msg *reply;

	CHECK_EQ(mg_call(c, "crash", &reply, ""), MG_ECRASH);
	CHECK_STR(mg_last_error()->type, "mitogen.Crash");
	CHECK(strstr(mg_last_error()->message, "SIGSEGV") != NULL);
	CHECK_STR(mg_last_error()->function, "crash");
	/* The context is gone after it; calls now fail at once. */
	CHECK_EQ(mg_call(c, "add", &reply, "ii", (int64_t)1, (int64_t)1), MG_EDISCONNECT);
	mg_context_free(c);
	mg_router_free(r);
}

TEST(sigkill_during_a_call_is_a_disconnect)
{
	struct mg_router *r = master();
	struct mg_context *c = fork_child(r, 1, "child-1");
	struct mg_receiver *rx;
	struct mg_msg *reply;
	int64_t t0;

	CHECK_OK(mg_call_async(c, "sleep_ms", &rx, "i", (int64_t)10000));
	usleep(20000);
	t0 = mg__now_ns();
	kill(c->pid, SIGKILL);
	CHECK_EQ(mg_call_wait(rx, 5000, &reply), MG_EDISCONNECT);
	printf("    disconnect reported %.2f ms after SIGKILL\n", (mg__now_ns() - t0) / 1e6);
	mg_receiver_free(rx);
	mg_context_free(c);
	mg_router_free(r);
}

TEST(chain_failure_fails_later_calls_without_running_them)
{
	struct mg_router *r = master();
	struct mg_context *c = fork_child(r, 1, "child-1");
	struct mg_chain *ch;
	struct mg_msg *reply;
	int64_t v;

	CHECK_OK(mg_chain_new(c, &ch));
	CHECK_OK(mg_chain_call_no_reply(ch, "mark", ""));
	CHECK_OK(mg_chain_call_no_reply(ch, "fail_value", ""));
	CHECK_OK(mg_chain_call_no_reply(ch, "mark", ""));
	CHECK_EQ(mg_chain_call(ch, "get_mark", &reply, ""), MG_EREMOTE);
	CHECK_STR(mg_last_error()->type, "ValueError");
	CHECK_STR(mg_last_error()->function, "fail_value");
	/* Only the first mark ran. */
	CHECK_OK(mg_call(c, "get_mark", &reply, ""));
	CHECK_OK(mg_msg_read(reply, "i", &v));
	mg_msg_free(reply);
	CHECK_EQ(v, 1);
	/* A reset chain runs again. */
	mg_chain_reset(ch);
	CHECK_OK(mg_chain_call_no_reply(ch, "mark", ""));
	CHECK_OK(mg_chain_call(ch, "get_mark", &reply, ""));
	CHECK_OK(mg_msg_read(reply, "i", &v));
	mg_msg_free(reply);
	CHECK_EQ(v, 2);
	mg_chain_free(ch);
	mg_context_free(c);
	mg_router_free(r);
}

TEST(senders_stream_values_back_and_select_waits_on_them)
{
	struct mg_router *r = master();
	struct mg_context *c1 = fork_child(r, 1, "child-1"), *c2 = fork_child(r, 2, "child-2");
	struct mg_receiver *rx1, *rx2, *got, *calls[2];
	struct mg_sender *s1, *s2;
	struct mg_select *sel;
	int64_t next[2] = {0, 0};
	int closed = 0, i;
	struct mg_msg *m;

	CHECK_OK(mg_receiver_new(r, MG_NO_RESPONDENT, MG_POLICY_ANY, &rx1));
	CHECK_OK(mg_receiver_new(r, MG_NO_RESPONDENT, MG_POLICY_ANY, &rx2));
	CHECK_OK(mg_receiver_to_sender(rx1, &s1));
	CHECK_OK(mg_receiver_to_sender(rx2, &s2));
	CHECK_OK(mg_select_new(&sel));
	CHECK_OK(mg_select_add(sel, rx1));
	CHECK_OK(mg_select_add(sel, rx2));
	CHECK_OK(mg_call_async(c1, "count_to", &calls[0], "hi", s1, (int64_t)500));
	CHECK_OK(mg_call_async(c2, "count_to", &calls[1], "hi", s2, (int64_t)300));
	while (closed < 2) {
		int rc = mg_select_get(sel, 5000, &got, &m);
		int k = got == rx1 ? 0 : 1;
		int64_t v;
		if (rc == MG_ECLOSED) {
			CHECK_EQ(next[k], k == 0 ? 500 : 300);
			mg_select_remove(sel, got);
			closed++;
			continue;
		}
		CHECK_OK(rc);
		CHECK_OK(mg_msg_read(m, "i", &v));
		CHECK_EQ(v, next[k]);
		next[k]++;
		mg_msg_free(m);
	}
	for (i = 0; i < 2; i++) {
		CHECK_OK(mg_call_wait(calls[i], 5000, &m));
		mg_msg_free(m);
		mg_receiver_free(calls[i]);
	}
	mg_select_free(sel);
	mg_sender_free(s1);
	mg_sender_free(s2);
	mg_receiver_free(rx1);
	mg_receiver_free(rx2);
	mg_context_free(c1);
	mg_context_free(c2);
	mg_router_free(r);
}

struct seen_logs {
	pthread_mutex_t lock;
	int stdout_line, stderr_line, user_line;
};

static void log_cb(void *arg, const struct mg_log_record *rec)
{
	struct seen_logs *s = arg;

	pthread_mutex_lock(&s->lock);
	if (strcmp(rec->context, "talker") == 0) {
		if (strcmp(rec->logger, "stdout") == 0 && strcmp(rec->message, "hi there") == 0)
			s->stdout_line++;
		if (strcmp(rec->logger, "stderr") == 0 &&
		    strcmp(rec->message, "err: hi there") == 0)
			s->stderr_line++;
		if (strcmp(rec->logger, "user") == 0 &&
		    strcmp(rec->message, "logged: hi there") == 0)
			s->user_line++;
	}
	pthread_mutex_unlock(&s->lock);
}

TEST(child_output_and_logs_reach_the_master_tagged)
{
	struct seen_logs s = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
	struct mg_router *r;
	struct mg_context *c;
	struct mg_msg *reply;
	int done = 0;

	mg_log_set_handler(log_cb, &s, MG_LOG_INFO);
	r = master();
	c = fork_child(r, 1, "talker");
	CHECK_OK(mg_call(c, "say", &reply, "s", "hi there"));
	mg_msg_free(reply);
	UTIL_WAIT_FOR((pthread_mutex_lock(&s.lock),
	               done = s.stdout_line && s.stderr_line && s.user_line,
	               pthread_mutex_unlock(&s.lock), done),
	              5000);
	CHECK_EQ(s.stdout_line, 1);
	CHECK_EQ(s.stderr_line, 1);
	CHECK_EQ(s.user_line, 1);
	mg_context_free(c);
	mg_router_free(r);
	mg_log_set_handler(NULL, NULL, MG_LOG_WARNING);
}

TEST_T(ten_thousand_calls_in_flight_across_a_hundred_contexts, 120)
{
	enum { N = 100, CALLS = 10000 };
	struct mg_router *r = master();
	struct mg_context *c[N];
	struct mg_receiver **rx = calloc(CALLS, sizeof(*rx));
	int i;

	for (i = 0; i < N; i++) {
		char name[32];
		snprintf(name, sizeof(name), "c%d", i);
		c[i] = fork_child(r, (uint32_t)(i + 1), name);
	}
	for (i = 0; i < CALLS; i++)
		CHECK_OK(
		        mg_call_async(c[i % N], "add", &rx[i], "ii", (int64_t)i, (int64_t)(i % N)));
	for (i = 0; i < CALLS; i++) {
		struct mg_msg *m;
		int64_t v;
		CHECK_OK(mg_call_wait(rx[i], 30000, &m));
		CHECK_OK(mg_msg_read(m, "i", &v));
		CHECK_EQ(v, i + i % N);
		mg_msg_free(m);
		mg_receiver_free(rx[i]);
	}
	for (i = 0; i < N; i++)
		mg_context_free(c[i]);
	free(rx);
	mg_router_free(r);
}

TEST(a_killed_master_takes_its_descendants_down)
{
	int p[2];
	pid_t m, child;
	int64_t t0;

	/* We adopt orphans so the grandchild can be reaped here. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	CHECK_EQ(pipe(p), 0);
	m = fork();
	CHECK(m >= 0);
	if (m == 0) {
		struct mg_router *r = master();
		struct mg_context *c = fork_child(r, 1, "orphan");
		struct mg_msg *reply;
		int64_t pid;

		/* The child must not die with its parent's death signal: only
		 * the lost stream should end it. */
		if (mg_call(c, "getpid_fn", &reply, "") != 0 || mg_msg_read(reply, "i", &pid) != 0)
			_exit(1);
		kill((pid_t)pid, 0);
		if (write(p[1], &pid, sizeof(pid)) != sizeof(pid))
			_exit(1);
		pause();
		_exit(0);
	}
	close(p[1]);
	{
		int64_t pid;
		CHECK_EQ(read(p[0], &pid, sizeof(pid)), (ssize_t)sizeof(pid));
		child = (pid_t)pid;
	}
	close(p[0]);
	kill(m, SIGKILL);
	waitpid(m, NULL, 0);
	t0 = mg__now_ms();
	/* The orphan is ours now: it must exit on its own. */
	CHECK_EQ(waitpid(child, NULL, 0), child);
	printf("    descendant exited %lld ms after its master was killed\n",
	       (long long)(mg__now_ms() - t0));
}

TEST(a_hostile_child_is_cut_off_alone)
{
	struct mg_router *r = master();
	struct mg_context *bad = fork_child(r, 1, "bad"), *good = fork_child(r, 2, "good");
	struct mg_receiver *rx;
	struct mg_msg *m;

	/* Forged ids are dropped: the receiver sees nothing. */
	CHECK_OK(mg_receiver_new(r, MG_NO_RESPONDENT, MG_POLICY_ANY, &rx));
	CHECK_OK(mg_call(bad, "forge_source", &m, "ii", (int64_t)mg_context_id(good),
	                 (int64_t)mg_receiver_handle(rx)));
	mg_msg_free(m);
	CHECK_EQ(mg_receiver_get(rx, 200, &m), -ETIMEDOUT);
	/* Garbage disconnects the sender only. */
	CHECK_EQ(mg_call(bad, "send_garbage", &m, ""), MG_EDISCONNECT);
	CHECK(mg_context_is_gone(bad));
	CHECK_OK(mg_call(good, "add", &m, "ii", (int64_t)20, (int64_t)22));
	{
		int64_t v;
		CHECK_OK(mg_msg_read(m, "i", &v));
		CHECK_EQ(v, 42);
	}
	mg_msg_free(m);
	mg_receiver_free(rx);
	mg_context_free(bad);
	mg_context_free(good);
	mg_router_free(r);
}

TEST(a_child_cannot_call_its_parent)
{
	struct mg_router *r = master();
	struct mg_context *c = fork_child(r, 1, "child");
	struct mg_msg *m;

	/* The master has no dispatcher; and the child cannot reach handle
	 * CALL_FUNCTION anywhere above it with authority.  Ask the child to
	 * try: it reports what the master answered. */
	CHECK_EQ(mg_call(c, "call_parent", &m, ""), MG_EREMOTE);
	CHECK(strstr(mg_last_error()->message, "handle closed") != NULL ||
	      strstr(mg_last_error()->message, "refused") != NULL);
	mg_context_free(c);
	mg_router_free(r);
}

/* ---- a hostile grandchild behind a gateway ------------------------------ */

/* master -> gateway -> {hostile, sibling}, and another child of the
 * master beside the gateway; all forks of this program. */
struct htree {
	struct mg_router *r;
	struct mg_context *gw, *bad, *sib, *other;
};

static void htree_build(struct htree *t, bool unidirectional)
{
	struct mg_connect_opts o;

	t->r = util_router(0, "master", 0, 0, unidirectional);
	t->gw = fork_child(t->r, 0, "gateway");
	t->other = fork_child(t->r, 0, "other");
	mg_connect_opts_init(&o, MG_METHOD_FORK);
	o.via = t->gw;
	o.name = "hostile";
	CHECK_OK(mg_connect(t->r, &o, &t->bad));
	o.name = "sibling";
	CHECK_OK(mg_connect(t->r, &o, &t->sib));
}

static void htree_free(struct htree *t)
{
	mg_context_free(t->bad);
	mg_context_free(t->sib);
	mg_context_free(t->other);
	mg_context_free(t->gw);
	mg_router_free(t->r);
	CHECK_EQ(cu_wait_no_children(5000), 0);
}

/* Has c poke (dst, handle) and expects a refusal naming want. */
static void expect_poke_refused(struct mg_context *c, uint32_t dst, uint32_t handle,
                                const char *want)
{
	struct mg_msg *m;

	CHECK_EQ(mg_call(c, "poke", &m, "ii", (int64_t)dst, (int64_t)handle), MG_EREMOTE);
	CHECK_STR(mg_last_error()->type, "Refused");
	if (strstr(mg_last_error()->message, want) == NULL)
		mg_test_fail(__FILE__, __LINE__, "poke %u/%u: \"%s\" lacks \"%s\"", dst, handle,
		             mg_last_error()->message, want);
}

static int64_t peer_of(struct mg_context *c, uint32_t id)
{
	struct mg_msg *m;
	int64_t peer;

	CHECK_OK(mg_call(c, "route_peer", &m, "i", (int64_t)id));
	CHECK_OK(mg_msg_read(m, "i", &peer));
	mg_msg_free(m);
	return peer;
}

static void expect_alive(struct mg_context *c)
{
	struct mg_msg *m;
	int64_t v;

	CHECK_OK(mg_call(c, "add", &m, "ii", (int64_t)40, (int64_t)2));
	CHECK_OK(mg_msg_read(m, "i", &v));
	CHECK_EQ(v, 42);
	mg_msg_free(m);
}

TEST(a_hostile_grandchild_cannot_call_or_shut_down_upward_or_sideways)
{
	struct htree t;
	uint32_t gw, sib, other;

	htree_build(&t, false);
	gw = mg_context_id(t.gw);
	sib = mg_context_id(t.sib);
	other = mg_context_id(t.other);
	/* Calls: the gateway and the siblings refuse by policy; the master
	 * runs no calls at all. */
	expect_poke_refused(t.bad, gw, MG_HANDLE_CALL_FUNCTION, "refused by policy");
	expect_poke_refused(t.bad, sib, MG_HANDLE_CALL_FUNCTION, "refused by policy");
	expect_poke_refused(t.bad, other, MG_HANDLE_CALL_FUNCTION, "refused by policy");
	expect_poke_refused(t.bad, 0, MG_HANDLE_CALL_FUNCTION, "no handler");
	/* Shut-downs likewise; everyone is still there afterwards. */
	expect_poke_refused(t.bad, gw, MG_HANDLE_SHUTDOWN, "refused by policy");
	expect_poke_refused(t.bad, sib, MG_HANDLE_SHUTDOWN, "refused by policy");
	expect_poke_refused(t.bad, other, MG_HANDLE_SHUTDOWN, "refused by policy");
	expect_poke_refused(t.bad, 0, MG_HANDLE_SHUTDOWN, "no handler");
	expect_alive(t.gw);
	expect_alive(t.sib);
	expect_alive(t.other);
	expect_alive(t.bad);
	htree_free(&t);
}

TEST(a_hostile_grandchild_cannot_forge_ids_through_its_gateway)
{
	struct htree t;
	struct mg_receiver *rx;
	struct mg_msg *m;
	uint32_t victims[3];
	size_t i;

	htree_build(&t, false);
	victims[0] = mg_context_id(t.sib);
	victims[1] = mg_context_id(t.gw);
	victims[2] = mg_context_id(t.other);
	/* Frames to a master receiver claiming a sibling's, the gateway's,
	 * a cousin's and then the master's id: had the gateway passed them
	 * on, the master would take them (they come on the gateway's stream,
	 * which routes back to the sibling and the gateway). */
	CHECK_OK(mg_receiver_new(t.r, MG_NO_RESPONDENT, MG_POLICY_ANY, &rx));
	for (i = 0; i < 3; i++) {
		CHECK_OK(mg_call(t.bad, "forge_source", &m, "ii", (int64_t)victims[i],
		                 (int64_t)mg_receiver_handle(rx)));
		mg_msg_free(m);
	}
	CHECK_EQ(mg_receiver_get(rx, 300, &m), -ETIMEDOUT);
	/* A forged frame is dropped, not a reason to cut the child off. */
	expect_alive(t.bad);
	mg_receiver_free(rx);
	htree_free(&t);
}

TEST(a_hostile_grandchild_cannot_announce_routes_it_does_not_own)
{
	struct htree t;
	uint32_t gw, bad, sib, other, stranger = 4000000000u;
	struct mg_context *later;
	struct mg_connect_opts o;
	struct mg_msg *m;
	int64_t gw_peer_for_other;

	htree_build(&t, false);
	gw = mg_context_id(t.gw);
	bad = mg_context_id(t.bad);
	sib = mg_context_id(t.sib);
	other = mg_context_id(t.other);
	gw_peer_for_other = peer_of(t.gw, other);
	/* Its sibling, its gateway, the master, the gateway's cousin, and an
	 * id nobody was given. */
	{
		uint32_t ids[] = {sib, gw, 0, other, stranger};
		for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
			CHECK_OK(mg_call(t.bad, "announce", &m, "i", (int64_t)ids[i]));
			mg_msg_free(m);
		}
	}
	/* A call through both routers after the announcements: they were
	 * handled first (one stream, in order). */
	expect_alive(t.bad);
	expect_alive(t.gw);
	/* The gateway kept its sibling route and took none of the others it
	 * can judge... */
	CHECK_EQ(peer_of(t.gw, sib), sib);
	CHECK_EQ(peer_of(t.gw, gw), -1);
	CHECK_EQ(peer_of(t.gw, 0), 0); /* its parent stream */
	CHECK_EQ(peer_of(t.gw, bad), bad);
	/* ... and the master, which knows every id it gave, took none. */
	CHECK(!mg__router_has_route(t.r, stranger));
	{
		struct mg_stream *s;
		pthread_mutex_lock(&t.r->lock);
		s = mg__idmap_get(&t.r->routes, other);
		CHECK(s != NULL && s->peer_id == other);
		s = mg__idmap_get(&t.r->routes, sib);
		CHECK(s != NULL && s->peer_id == gw);
		pthread_mutex_unlock(&t.r->lock);
	}
	/* (The gateway cannot tell that the cousin is not below the hostile
	 * child: it takes that claim, see route.c.) */
	(void)gw_peer_for_other;
	expect_alive(t.sib);
	expect_alive(t.other);
	/* The master's next context through the gateway is not taken over
	 * either: announcing the id it will get is refused, and the connect
	 * works. */
	CHECK_OK(mg_call(t.bad, "announce", &m, "i", (int64_t)(other + 3)));
	mg_msg_free(m);
	expect_alive(t.bad);
	CHECK(!mg__router_has_route(t.r, other + 3));
	mg_connect_opts_init(&o, MG_METHOD_FORK);
	o.via = t.gw;
	CHECK_OK(mg_connect(t.r, &o, &later));
	CHECK_EQ(mg_context_id(later), other + 3);
	expect_alive(later);
	mg_context_free(later);
	htree_free(&t);
}

TEST(unidirectional_keeps_a_hostile_grandchild_from_every_sibling)
{
	struct htree t;
	struct mg_receiver *rx;
	struct mg_msg *m;

	htree_build(&t, true);
	/* Its own sibling is refused at the gateway, its cousin at the
	 * master; the master and its own parent are still reachable (and
	 * refuse calls by policy). */
	expect_poke_refused(t.bad, mg_context_id(t.sib), MG_HANDLE_CALL_FUNCTION,
	                    "unidirectional mode forbids");
	expect_poke_refused(t.bad, mg_context_id(t.other), MG_HANDLE_CALL_FUNCTION,
	                    "unidirectional mode forbids");
	expect_poke_refused(t.bad, mg_context_id(t.gw), MG_HANDLE_CALL_FUNCTION,
	                    "refused by policy");
	/* Any handle, not only calls: a master receiver open to all gets a
	 * message from it, a sibling's does not. */
	CHECK_OK(mg_receiver_new(t.r, MG_NO_RESPONDENT, MG_POLICY_ANY, &rx));
	{
		struct mg_msg *r;
		CHECK_EQ(mg_call(t.bad, "poke", &r, "ii", (int64_t)0,
		                 (int64_t)mg_receiver_handle(rx)),
		         MG_EREMOTE);
	}
	CHECK_OK(mg_receiver_get(rx, 5000, &m));
	CHECK_EQ(mg_msg_src(m), mg_context_id(t.bad));
	mg_msg_free(m);
	mg_receiver_free(rx);
	expect_alive(t.sib);
	expect_alive(t.other);
	htree_free(&t);
}

TEST(packed_arguments_call_as_the_format_would)
{
	struct mg_router *r = master();
	struct mg_context *c = fork_child(r, 1, "child-1");
	static const uint8_t two_three[] = {0x92, 0x02, 0x03}, one[] = {0x91, 0x07};
	static const uint8_t not_array[] = {0x02}, truncated[] = {0x92, 0x02};
	struct mg_receiver *rx;
	struct mg_msg *reply;
	int64_t sum;

	CHECK_OK(mg_context_wait_ready(c, 1000));
	CHECK_OK(mg_call_packed_async(c, "add", two_three, sizeof(two_three), &rx));
	CHECK_OK(mg_call_wait(rx, 5000, &reply));
	mg_receiver_free(rx);
	CHECK_OK(mg_msg_read(reply, "i", &sum));
	CHECK_EQ(sum, 5);
	mg_msg_free(reply);
	/* Arguments that do not fit the function are the callee's ArgumentError. */
	CHECK_OK(mg_call_packed_async(c, "add", one, sizeof(one), &rx));
	CHECK_EQ(mg_call_wait(rx, 5000, &reply), MG_EARGS);
	mg_receiver_free(rx);
	/* What is not one whole array never leaves. */
	CHECK_EQ(mg_call_packed_async(c, "add", not_array, sizeof(not_array), &rx), -EINVAL);
	CHECK_EQ(mg_call_packed_async(c, "add", truncated, sizeof(truncated), &rx), -EINVAL);
	CHECK_EQ(mg_call_packed_async(c, "add", NULL, 0, &rx), -EINVAL);
	CHECK_OK(mg_context_shutdown(c, 2000));
	mg_context_free(c);
	mg_router_free(r);
}
