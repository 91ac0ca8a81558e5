/*
 * test_router.c: routing semantics between real routers joined by
 * socketpairs: delivery, every dead-message cause, policies, the
 * reverse-path check, route announcements, unidirectional mode, and the
 * waiting objects (receivers, senders, latches, selects).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>

#include "internal.h"
#include "util.h"

/* Expects the next message on rx to be dead with the given code. */
static void expect_dead(struct mg_receiver *rx, int code, const char *reason_part)
{
	struct mg_msg *m = NULL;
	int rc = mg_receiver_get(rx, 5000, &m);

	CHECK_EQ(rc, code);
	if (reason_part != NULL && strstr(mg_errdetail(), reason_part) == NULL)
		mg_test_fail(__FILE__, __LINE__, "reason \"%s\" lacks \"%s\"", mg_errdetail(),
		             reason_part);
}

TEST(send_and_reply_between_two_routers)
{
	struct mg_router *a = util_router(0, "a", 0, 0, false),
	                 *b = util_router(1, "b", 0, 0, false);
	struct mg_receiver *rxa, *rxb;
	struct mg_msg *m;
	const char *s;
	int64_t v;

	util_join(a, b);
	CHECK_OK(mg_receiver_new(a, MG_NO_RESPONDENT, MG_POLICY_ANY, &rxa));
	CHECK_OK(mg_receiver_new(b, MG_NO_RESPONDENT, MG_POLICY_ANY, &rxb));
	CHECK_OK(mg_msg_pack(&m, "(is)", (int64_t)42, "hello"));
	mg_msg_set_reply_to(m, mg_receiver_handle(rxa));
	CHECK_OK(mg_router_send(a, 1, mg_receiver_handle(rxb), m));
	CHECK_OK(mg_receiver_get(rxb, 5000, &m));
	CHECK_EQ(mg_msg_src(m), 0);
	CHECK_EQ(mg_msg_auth(m), 0);
	CHECK_EQ(mg_msg_dst(m), 1);
	CHECK_EQ(mg_msg_reply_to(m), mg_receiver_handle(rxa));
	CHECK_OK(mg_msg_read(m, "(is)", &v, &s));
	CHECK_EQ(v, 42);
	CHECK_STR(s, "hello");
	CHECK(mg_msg_at_end(m));
	/* Answer to where it came from. */
	{
		struct mg_msg *reply;
		CHECK_OK(mg_msg_pack(&reply, "i", v + 1));
		CHECK_OK(mg_router_send(b, mg_msg_src(m), mg_msg_reply_to(m), reply));
	}
	mg_msg_free(m);
	CHECK_OK(mg_receiver_get(rxa, 5000, &m));
	CHECK_OK(mg_msg_read(m, "i", &v));
	CHECK_EQ(v, 43);
	mg_msg_free(m);
	mg_receiver_free(rxa);
	mg_receiver_free(rxb);
	mg_router_free(b);
	mg_router_free(a);
}

TEST(dead_no_route)
{
	struct mg_router *a = util_router(0, "a", 0, 0, false);
	struct mg_receiver *rx;
	struct mg_msg *m;

	CHECK_OK(mg_receiver_new(a, MG_NO_RESPONDENT, MG_POLICY_ANY, &rx));
	CHECK_OK(mg_msg_new(&m));
	mg_msg_set_reply_to(m, mg_receiver_handle(rx));
	CHECK_OK(mg_router_send(a, 77, 1234, m));
	expect_dead(rx, MG_ENOROUTE, "no route");
	mg_receiver_free(rx);
	mg_router_free(a);
}

TEST(dead_closed_handle_remote)
{
	struct mg_router *a = util_router(0, "a", 0, 0, false),
	                 *b = util_router(1, "b", 0, 0, false);
	struct mg_receiver *rx;
	struct mg_msg *m;

	util_join(a, b);
	CHECK_OK(mg_receiver_new(a, MG_NO_RESPONDENT, MG_POLICY_ANY, &rx));
	CHECK_OK(mg_msg_new(&m));
	mg_msg_set_reply_to(m, mg_receiver_handle(rx));
	CHECK_OK(mg_router_send(a, 1, 4321, m));
	expect_dead(rx, MG_ECLOSED, "no handler for handle 4321");
	mg_receiver_free(rx);
	mg_router_free(b);
	mg_router_free(a);
}

TEST(dead_refused_by_policy)
{
	struct mg_router *a = util_router(0, "parent", 0, 0, false);
	struct mg_router *b = util_router(1, "child", 0, 0, false);
	struct mg_receiver *guarded, *rx;
	struct mg_msg *m;

	util_join(a, b);
	/* The parent's handle only accepts parent authority: the child has none. */
	CHECK_OK(mg_receiver_new(a, MG_NO_RESPONDENT, MG_POLICY_PARENT, &guarded));
	CHECK_OK(mg_receiver_new(b, MG_NO_RESPONDENT, MG_POLICY_ANY, &rx));
	CHECK_OK(mg_msg_new(&m));
	mg_msg_set_reply_to(m, mg_receiver_handle(rx));
	CHECK_OK(mg_router_send(b, 0, mg_receiver_handle(guarded), m));
	expect_dead(rx, MG_EREFUSED, "refused by policy");
	CHECK_EQ(mg_receiver_get(guarded, 50, &m), -ETIMEDOUT);
	/* The parent itself passes the same policy on the child's side. */
	mg_receiver_free(guarded);
	CHECK_OK(mg_receiver_new(b, MG_NO_RESPONDENT, MG_POLICY_PARENT, &guarded));
	CHECK_OK(mg_msg_new(&m));
	CHECK_OK(mg_router_send(a, 1, mg_receiver_handle(guarded), m));
	CHECK_OK(mg_receiver_get(guarded, 5000, &m));
	mg_msg_free(m);
	mg_receiver_free(guarded);
	mg_receiver_free(rx);
	mg_router_free(b);
	mg_router_free(a);
}

TEST(dead_too_large_then_stream_still_usable)
{
	struct mg_router *a = util_router(0, "a", 1000, 0, false);
	struct mg_router *b = util_router(1, "b", 1000, 0, false);
	struct mg_receiver *rxa, *rxb;
	struct mg_msg *m;

	util_join(a, b);
	CHECK_OK(mg_receiver_new(a, MG_NO_RESPONDENT, MG_POLICY_ANY, &rxa));
	CHECK_OK(mg_receiver_new(b, MG_NO_RESPONDENT, MG_POLICY_ANY, &rxb));
	CHECK_OK(mg_msg_new_size(1001, &m));
	mg_msg_set_reply_to(m, mg_receiver_handle(rxa));
	CHECK_OK(mg_router_send(a, 1, mg_receiver_handle(rxb), m));
	expect_dead(rxa, MG_ETOOBIG, "larger than the maximum");
	CHECK_OK(mg_msg_new_size(1000, &m));
	memset(mg_msg_data_mut(m), 7, 1000);
	CHECK_OK(mg_router_send(a, 1, mg_receiver_handle(rxb), m));
	CHECK_OK(mg_receiver_get(rxb, 5000, &m));
	CHECK_EQ(mg_msg_len(m), 1000);
	CHECK_EQ(((const uint8_t *)mg_msg_data(m))[999], 7);
	mg_msg_free(m);
	mg_receiver_free(rxa);
	mg_receiver_free(rxb);
	mg_router_free(b);
	mg_router_free(a);
}

struct closer {
	struct mg_router *r;
	int delay_ms;
};

static void *free_router_later(void *arg)
{
	struct closer *c = arg;

	usleep((useconds_t)c->delay_ms * 1000);
	mg_router_free(c->r);
	return NULL;
}

TEST(dead_stream_gone_wakes_blocked_receiver)
{
	struct mg_router *a = util_router(0, "a", 0, 0, false),
	                 *b = util_router(1, "b", 0, 0, false);
	struct mg_receiver *rx;
	struct closer c = {b, 100};
	pthread_t t;
	struct mg_msg *m;
	int64_t t0;

	util_join(a, b);
	/* A reply is awaited from context 1, which goes away meanwhile. */
	CHECK_OK(mg_receiver_new(a, 1, MG_POLICY_ANY, &rx));
	CHECK_EQ(pthread_create(&t, NULL, free_router_later, &c), 0);
	t0 = mg__now_ms();
	CHECK_EQ(mg_receiver_get(rx, 10000, &m), MG_EDISCONNECT);
	CHECK(strstr(mg_errdetail(), "context 1 disconnected") != NULL);
	CHECK_INT(mg__now_ms() - t0, <, 5000);
	pthread_join(t, NULL);
	CHECK(!mg__router_has_route(a, 1));
	/* With the route gone, sending there is now "no route". */
	mg_receiver_free(rx);
	CHECK_OK(mg_receiver_new(a, MG_NO_RESPONDENT, MG_POLICY_ANY, &rx));
	CHECK_OK(mg_msg_new(&m));
	mg_msg_set_reply_to(m, mg_receiver_handle(rx));
	CHECK_OK(mg_router_send(a, 1, 2000, m));
	expect_dead(rx, MG_ENOROUTE, NULL);
	mg_receiver_free(rx);
	mg_router_free(a);
}

TEST(dead_for_messages_queued_on_a_lost_stream)
{
	struct mg_router *a = util_router(0, "a", 0, 64 * 1024, false);
	struct mg_receiver *rx;
	int sv[2], i, dead = 0;
	struct mg_msg *m;

	/* A peer that never reads: messages pile up in the output queue. */
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	CHECK_OK(mg_router_attach(a, sv[0], sv[0], 5, 0));
	CHECK_OK(mg_receiver_new(a, MG_NO_RESPONDENT, MG_POLICY_ANY, &rx));
	for (i = 0; i < 8; i++) {
		/* Larger than the socket holds (the library asks for 512 KiB of
		 * send buffer, which the kernel doubles), so it stays queued. */
		CHECK_OK(mg_msg_new_size(4u << 20, &m));
		mg_msg_set_reply_to(m, mg_receiver_handle(rx));
		/* The high-water mark would block us: send from the queue's view
		 * only while it has room, then kill the peer. */
		CHECK_OK(mg_router_send(a, 5, 3000, m));
		if (i == 0)
			break;
	}
	close(sv[1]);
	while (dead < 1) {
		CHECK_EQ(mg_receiver_get(rx, 5000, &m), MG_EDISCONNECT);
		dead++;
	}
	mg_receiver_free(rx);
	mg_router_free(a);
}

/* The library asks for a 512 KiB send buffer on AF_UNIX streams (fewer
 * wake-ups per large payload); the kernel doubles what is asked and caps
 * it at net.core.wmem_max. */
TEST(unix_socket_streams_get_a_larger_send_buffer)
{
	struct mg_router *a = util_router(0, "a", 0, 0, false);
	int sv[2], before = 0, after = 0;
	long max = 0, want;
	socklen_t len = sizeof(int);
	FILE *f = fopen("/proc/sys/net/core/wmem_max", "r");

	CHECK(f != NULL);
	CHECK_INT(fscanf(f, "%ld", &max), ==, 1);
	fclose(f);
	want = 2 * (max < 512 * 1024 ? max : 512 * 1024);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	CHECK_EQ(getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &before, &len), 0);
	CHECK_OK(mg_router_attach(a, sv[0], sv[0], 5, 0));
	CHECK_EQ(getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &after, &len), 0);
	CHECK_INT(after, ==, before > want ? before : want);
	close(sv[1]);
	mg_router_free(a);
}

TEST(sender_close_wakes_receiver_with_closed)
{
	struct mg_router *a = util_router(0, "a", 0, 0, false),
	                 *b = util_router(1, "b", 0, 0, false);
	struct mg_receiver *rx;
	struct mg_sender *s;
	struct mg_msg *m;
	int64_t v;

	util_join(a, b);
	CHECK_OK(mg_receiver_new(a, MG_NO_RESPONDENT, MG_POLICY_ANY, &rx));
	CHECK_OK(mg_sender_new(b, 0, mg_receiver_handle(rx), &s));
	CHECK_OK(mg_sender_sendf(s, "i", (int64_t)1));
	CHECK_OK(mg_sender_sendf(s, "i", (int64_t)2));
	CHECK_OK(mg_sender_close(s));
	CHECK_EQ(mg_sender_sendf(s, "i", (int64_t)3), MG_ECLOSED);
	CHECK_OK(mg_receiver_get(rx, 5000, &m));
	CHECK_OK(mg_msg_read(m, "i", &v));
	CHECK_EQ(v, 1);
	mg_msg_free(m);
	CHECK_OK(mg_receiver_get(rx, 5000, &m));
	CHECK_OK(mg_msg_read(m, "i", &v));
	CHECK_EQ(v, 2);
	mg_msg_free(m);
	CHECK_EQ(mg_receiver_get(rx, 5000, &m), MG_ECLOSED);
	CHECK_STR(mg_errdetail(), "sender closed");
	mg_sender_free(s);
	mg_receiver_free(rx);
	mg_router_free(b);
	mg_router_free(a);
}

TEST(sender_reference_travels_in_a_message)
{
	struct mg_router *a = util_router(0, "a", 0, 0, false),
	                 *b = util_router(1, "b", 0, 0, false);
	struct mg_receiver *rxa, *rxb;
	struct mg_sender *s, *got;
	struct mg_msg *m;
	int64_t v;

	util_join(a, b);
	CHECK_OK(mg_receiver_new(a, MG_NO_RESPONDENT, MG_POLICY_ANY, &rxa));
	CHECK_OK(mg_receiver_new(b, MG_NO_RESPONDENT, MG_POLICY_ANY, &rxb));
	CHECK_OK(mg_receiver_to_sender(rxa, &s));
	CHECK_OK(mg_msg_pack(&m, "h", s));
	CHECK_OK(mg_router_send(a, 1, mg_receiver_handle(rxb), m));
	CHECK_OK(mg_receiver_get(rxb, 5000, &m));
	CHECK_OK(mg_msg_read(m, "h", &got));
	mg_msg_free(m);
	CHECK_EQ(mg_sender_context(got), 0);
	CHECK_EQ(mg_sender_handle(got), mg_receiver_handle(rxa));
	/* The child streams values back through it. */
	for (v = 0; v < 10; v++)
		CHECK_OK(mg_sender_sendf(got, "i", v));
	CHECK_OK(mg_sender_close(got));
	for (v = 0; v < 10; v++) {
		int64_t x;
		CHECK_OK(mg_receiver_get(rxa, 5000, &m));
		CHECK_OK(mg_msg_read(m, "i", &x));
		CHECK_EQ(x, v);
		mg_msg_free(m);
	}
	CHECK_EQ(mg_receiver_get(rxa, 5000, &m), MG_ECLOSED);
	mg_sender_free(got);
	mg_sender_free(s);
	mg_receiver_free(rxa);
	mg_receiver_free(rxb);
	mg_router_free(b);
	mg_router_free(a);
}

TEST(receiver_timeout_and_close)
{
	struct mg_router *a = util_router(0, "a", 0, 0, false);
	struct mg_receiver *rx;
	struct mg_msg *m;
	int64_t t0 = mg__now_ms();

	CHECK_OK(mg_receiver_new(a, MG_NO_RESPONDENT, MG_POLICY_ANY, &rx));
	CHECK_EQ(mg_receiver_get(rx, 100, &m), -ETIMEDOUT);
	CHECK_INT(mg__now_ms() - t0, >=, 99);
	mg_receiver_close(rx);
	CHECK_EQ(mg_receiver_get(rx, -1, &m), MG_ECLOSED);
	/* Messages to a closed receiver's handle come back dead. */
	{
		struct mg_receiver *rx2;
		CHECK_OK(mg_receiver_new(a, MG_NO_RESPONDENT, MG_POLICY_ANY, &rx2));
		CHECK_OK(mg_msg_new(&m));
		mg_msg_set_reply_to(m, mg_receiver_handle(rx2));
		CHECK_OK(mg_router_send(a, 0, mg_receiver_handle(rx), m));
		expect_dead(rx2, MG_ECLOSED, NULL);
		mg_receiver_free(rx2);
	}
	mg_receiver_free(rx);
	mg_router_free(a);
}

/* Several threads block on one receiver while messages arrive one by one:
 * each message is taken exactly once and none is left sleeping (a lost
 * wake-up hangs the test), and closing wakes every waiter at once. */
#define WAITERS 4
#define WAITER_MSGS 3000

struct waiter {
	struct mg_receiver *rx;
	atomic_int *taken;
	int timeout_ms;
	int last_rc;
};

static void *wait_loop(void *arg)
{
	struct waiter *w = arg;
	struct mg_msg *m;
	int rc;

	while ((rc = mg_receiver_get(w->rx, w->timeout_ms, &m)) == 0) {
		atomic_fetch_add(w->taken, 1);
		mg_msg_free(m);
	}
	w->last_rc = rc;
	return NULL;
}

TEST(receiver_many_waiters_each_message_once)
{
	struct mg_router *a = util_router(0, "a", 0, 0, false);
	struct waiter w[WAITERS];
	pthread_t t[WAITERS];
	struct mg_receiver *rx;
	atomic_int taken = 0;
	int64_t until;
	int i;

	CHECK_OK(mg_receiver_new(a, MG_NO_RESPONDENT, MG_POLICY_ANY, &rx));
	for (i = 0; i < WAITERS; i++) {
		/* Every other waiter sleeps with a deadline: both kinds of sleep. */
		w[i] = (struct waiter){rx, &taken, i % 2 ? -1 : 20000, 0};
		CHECK_EQ(pthread_create(&t[i], NULL, wait_loop, &w[i]), 0);
	}
	for (i = 0; i < WAITER_MSGS; i++) {
		struct mg_msg *m;
		CHECK_OK(mg_msg_pack(&m, "i", (int64_t)i));
		CHECK_OK(mg_router_send(a, 0, mg_receiver_handle(rx), m));
		if (i % 64 == 0)
			usleep(100); /* let the waiters fall asleep now and then */
	}
	until = mg__now_ms() + 10000;
	while (atomic_load(&taken) < WAITER_MSGS && mg__now_ms() < until)
		usleep(1000);
	CHECK_EQ(atomic_load(&taken), WAITER_MSGS);
	mg_receiver_close(rx);
	for (i = 0; i < WAITERS; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(w[i].last_rc, MG_ECLOSED);
	}
	mg_receiver_free(rx);
	mg_router_free(a);
}

TEST(router_free_wakes_waiters_with_shutdown)
{
	struct mg_router *a = util_router(0, "a", 0, 0, false);
	struct closer c = {a, 50};
	struct mg_receiver *rx;
	struct mg_msg *m;
	pthread_t t;

	CHECK_OK(mg_receiver_new(a, MG_NO_RESPONDENT, MG_POLICY_ANY, &rx));
	CHECK_EQ(pthread_create(&t, NULL, free_router_later, &c), 0);
	CHECK_EQ(mg_receiver_get(rx, 10000, &m), MG_ESHUTDOWN);
	pthread_join(t, NULL);
	mg_receiver_free(rx); /* after the router: still safe */
}

struct counter {
	atomic_int n;
	atomic_bool on_broker;
	struct mg_router *r;
};

static void count_cb(void *arg, struct mg_msg *m)
{
	struct counter *c = arg;

	atomic_store(&c->on_broker, mg__broker_on_thread(c->r->broker));
	atomic_fetch_add(&c->n, 1);
	mg_msg_free(m);
}

TEST(handler_callbacks_run_on_the_broker)
{
	struct mg_router *a = util_router(0, "a", 0, 0, false),
	                 *b = util_router(1, "b", 0, 0, false);
	struct counter c = {.r = NULL};
	uint32_t h;
	struct mg_msg *m;
	int i;

	c.r = b;
	util_join(a, b);
	CHECK_OK(mg_router_add_handler(b, 0, MG_POLICY_ANY, count_cb, &c, &h));
	CHECK_INT(h, >=, MG_HANDLE_FIRST_DYNAMIC);
	CHECK_EQ(mg_router_add_handler(b, h, MG_POLICY_ANY, count_cb, &c, NULL), -EEXIST);
	for (i = 0; i < 100; i++) {
		CHECK_OK(mg_msg_new(&m));
		CHECK_OK(mg_router_send(a, 1, h, m));
	}
	UTIL_WAIT_FOR(atomic_load(&c.n) == 100, 5000);
	CHECK_EQ(atomic_load(&c.n), 100);
	CHECK(atomic_load(&c.on_broker));
	/* A local send also runs the handler on the broker. */
	atomic_store(&c.on_broker, false);
	CHECK_OK(mg_msg_new(&m));
	CHECK_OK(mg_router_send(b, 1, h, m));
	UTIL_WAIT_FOR(atomic_load(&c.n) == 101, 5000);
	CHECK(atomic_load(&c.on_broker));
	CHECK_OK(mg_router_del_handler(b, h));
	CHECK_EQ(mg_router_del_handler(b, h), MG_ECLOSED);
	mg_router_free(b);
	mg_router_free(a);
}

/* master(0) - gateway(1) - leaf(2), and a sibling(3) under the master. */
struct tree {
	struct mg_router *m, *g, *leaf, *sib;
};

static void tree_build(struct tree *t, bool unidirectional)
{
	t->m = util_router(0, "master", 0, 0, unidirectional);
	t->g = util_router(1, "gateway", 0, 0, false);
	t->leaf = util_router(2, "leaf", 0, 0, false);
	t->sib = util_router(3, "sibling", 0, 0, false);
	/* The master gave id 2 to the gateway (as a via connect would). */
	CHECK_OK(mg__router_delegate(t->m, 2, 3, 1));
	util_join(t->m, t->g);
	util_join(t->m, t->sib);
	util_join(t->g, t->leaf);
	{
		uint32_t anc[] = {1, 0};
		mg__router_set_ancestors(t->leaf, anc, 2);
	}
	UTIL_WAIT_FOR(mg__router_has_route(t->m, 2), 5000);
	CHECK(mg__router_has_route(t->m, 2));
}

static void tree_free(struct tree *t)
{
	mg_router_free(t->leaf);
	mg_router_free(t->sib);
	mg_router_free(t->g);
	mg_router_free(t->m);
}

TEST(add_route_lets_the_master_reach_a_grandchild)
{
	struct tree t;
	struct mg_receiver *rx, *back;
	struct mg_msg *m;

	tree_build(&t, false);
	CHECK_OK(mg_receiver_new(t.leaf, MG_NO_RESPONDENT, MG_POLICY_PARENT, &rx));
	CHECK_OK(mg_receiver_new(t.m, 2, MG_POLICY_ANY, &back));
	CHECK_OK(mg_msg_pack(&m, "s", "down two hops"));
	mg_msg_set_reply_to(m, mg_receiver_handle(back));
	CHECK_OK(mg_router_send(t.m, 2, mg_receiver_handle(rx), m));
	CHECK_OK(mg_receiver_get(rx, 5000, &m));
	CHECK_EQ(mg_msg_src(m), 0);
	CHECK_EQ(mg_msg_auth(m), 0); /* the master's authority passes the policy */
	{
		struct mg_msg *reply;
		CHECK_OK(mg_msg_pack(&reply, "s", "and back"));
		CHECK_OK(mg_router_send(t.leaf, 0, mg_msg_reply_to(m), reply));
	}
	mg_msg_free(m);
	CHECK_OK(mg_receiver_get(back, 5000, &m));
	CHECK_EQ(mg_msg_src(m), 2);
	mg_msg_free(m);
	/* Losing the gateway's child: DEL_ROUTE reaches the master, whose
	 * waiter on context 2 wakes. */
	mg_router_free(t.leaf);
	t.leaf = NULL;
	CHECK_EQ(mg_receiver_get(back, 5000, &m), MG_EDISCONNECT);
	UTIL_WAIT_FOR(!mg__router_has_route(t.m, 2), 5000);
	CHECK(!mg__router_has_route(t.m, 2));
	mg_receiver_free(rx);
	mg_receiver_free(back);
	t.leaf = util_router(9, "unused", 0, 0, false);
	tree_free(&t);
}

TEST(sibling_traffic_and_unidirectional_mode)
{
	struct tree t;
	struct mg_receiver *rx, *back;
	struct mg_msg *m;

	/* Bidirectional: the sibling reaches the leaf through the master. */
	tree_build(&t, false);
	CHECK_OK(mg_receiver_new(t.leaf, MG_NO_RESPONDENT, MG_POLICY_ANY, &rx));
	CHECK_OK(mg_receiver_new(t.sib, MG_NO_RESPONDENT, MG_POLICY_ANY, &back));
	CHECK_OK(mg_msg_new(&m));
	mg_msg_set_reply_to(m, mg_receiver_handle(back));
	CHECK_OK(mg_router_send(t.sib, 2, mg_receiver_handle(rx), m));
	CHECK_OK(mg_receiver_get(rx, 5000, &m));
	CHECK_EQ(mg_msg_src(m), 3);
	mg_msg_free(m);
	mg_receiver_free(rx);
	mg_receiver_free(back);
	tree_free(&t);

	/* Unidirectional: the master refuses to carry it. */
	tree_build(&t, true);
	CHECK_OK(mg_receiver_new(t.leaf, MG_NO_RESPONDENT, MG_POLICY_ANY, &rx));
	CHECK_OK(mg_receiver_new(t.sib, MG_NO_RESPONDENT, MG_POLICY_ANY, &back));
	CHECK_OK(mg_msg_new(&m));
	mg_msg_set_reply_to(m, mg_receiver_handle(back));
	CHECK_OK(mg_router_send(t.sib, 2, mg_receiver_handle(rx), m));
	expect_dead(back, MG_EREFUSED, "unidirectional");
	CHECK_EQ(mg_receiver_get(rx, 100, &m), -ETIMEDOUT);
	/* The master itself still reaches both. */
	CHECK_OK(mg_msg_new(&m));
	CHECK_OK(mg_router_send(t.m, 2, mg_receiver_handle(rx), m));
	CHECK_OK(mg_receiver_get(rx, 5000, &m));
	mg_msg_free(m);
	mg_receiver_free(rx);
	mg_receiver_free(back);
	tree_free(&t);
}

/* Writes one hand-made frame on fd. */
static void write_frame(int fd, uint32_t dst, uint32_t src, uint32_t auth, uint32_t handle,
                        uint32_t reply_to, const void *payload, uint32_t len)
{
	struct mg_frame_hdr h = {MG_ENC_RAW, dst, src, auth, handle, reply_to, len};
	uint8_t buf[MG_FRAME_HDR_LEN];

	mg__frame_encode(&h, buf);
	CHECK_EQ(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	if (len)
		CHECK_EQ(write(fd, payload, len), (ssize_t)len);
}

TEST(forged_source_is_dropped)
{
	struct mg_router *a = util_router(0, "a", 0, 0, false);
	struct mg_receiver *rx;
	struct mg_msg *m;
	int sv[2], sib[2];

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sib), 0);
	CHECK_OK(mg_router_attach(a, sv[0], sv[0], 5, 0));
	CHECK_OK(mg_router_attach(a, sib[0], sib[0], 6, 0));
	CHECK_OK(mg_receiver_new(a, MG_NO_RESPONDENT, MG_POLICY_ANY, &rx));
	/* Child 5 claims to be 6, then to be the master itself. */
	write_frame(sv[1], 0, 6, 6, mg_receiver_handle(rx), 0, "x", 1);
	write_frame(sv[1], 0, 0, 0, mg_receiver_handle(rx), 0, "y", 1);
	write_frame(sv[1], 0, 5, 6, mg_receiver_handle(rx), 0, "z", 1);
	/* An honest one from 5 still arrives, and only it. */
	write_frame(sv[1], 0, 5, 5, mg_receiver_handle(rx), 0, "ok", 2);
	CHECK_OK(mg_receiver_get(rx, 5000, &m));
	CHECK_EQ(mg_msg_len(m), 2);
	CHECK_MEM(mg_msg_data(m), "ok", 2);
	mg_msg_free(m);
	CHECK_EQ(mg_receiver_get(rx, 100, &m), -ETIMEDOUT);
	close(sv[1]);
	close(sib[1]);
	mg_receiver_free(rx);
	mg_router_free(a);
}

TEST(child_cannot_announce_routes_it_does_not_own)
{
	struct mg_router *a = util_router(0, "a", 0, 0, false);
	struct mg_msg *m;
	int sv[2], sib[2];
	uint8_t buf[16];
	size_t n;

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sib), 0);
	CHECK_OK(mg_router_attach(a, sv[0], sv[0], 5, 0));
	CHECK_OK(mg_router_attach(a, sib[0], sib[0], 6, 0));
	CHECK_OK(mg__router_delegate(a, 7, 8, 5));
	/* Child 5 tries to take over its sibling 6, then the master's own id. */
	CHECK_OK(mg_msg_pack(&m, "u", (uint64_t)6));
	n = mg_msg_len(m);
	memcpy(buf, mg_msg_data(m), n);
	mg_msg_free(m);
	write_frame(sv[1], 0, 5, 5, MG_HANDLE_ADD_ROUTE, 0, buf, (uint32_t)n);
	CHECK_OK(mg_msg_pack(&m, "u", (uint64_t)0));
	n = mg_msg_len(m);
	memcpy(buf, mg_msg_data(m), n);
	mg_msg_free(m);
	write_frame(sv[1], 0, 5, 5, MG_HANDLE_ADD_ROUTE, 0, buf, (uint32_t)n);
	/* A legitimate announcement of its own child 7 is taken. */
	CHECK_OK(mg_msg_pack(&m, "u", (uint64_t)7));
	n = mg_msg_len(m);
	memcpy(buf, mg_msg_data(m), n);
	mg_msg_free(m);
	write_frame(sv[1], 0, 5, 5, MG_HANDLE_ADD_ROUTE, 0, buf, (uint32_t)n);
	UTIL_WAIT_FOR(mg__router_has_route(a, 7), 5000);
	CHECK(mg__router_has_route(a, 7));
	/* 6 still routes to the sibling's stream: a message for 6 arrives there. */
	CHECK_OK(mg_msg_new_raw("s", 1, &m));
	CHECK_OK(mg_router_send(a, 6, 2000, m));
	{
		uint8_t hdr[MG_FRAME_HDR_LEN];
		struct mg_frame_hdr h;
		CHECK_EQ(read(sib[1], hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
		CHECK_OK(mg__frame_decode(hdr, 1 << 20, &h));
		CHECK_EQ(h.dst_id, 6);
	}
	close(sv[1]);
	close(sib[1]);
	mg_router_free(a);
}

TEST(bad_magic_disconnects_only_that_stream)
{
	struct mg_router *a = util_router(0, "a", 0, 0, false),
	                 *b = util_router(1, "b", 0, 0, false);
	struct mg_receiver *rx, *watch;
	struct mg_msg *m;
	int sv[2];
	char c;

	util_join(a, b);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	CHECK_OK(mg_router_attach(a, sv[0], sv[0], 5, 0));
	CHECK_OK(mg_receiver_new(a, 5, MG_POLICY_ANY, &watch));
	CHECK_EQ(write(sv[1], "GET / HTTP/1.0\r\n\r\n.....................", 40), 40);
	/* The bad stream is closed: its peer reads EOF. */
	CHECK_EQ(read(sv[1], &c, 1), 0);
	CHECK_EQ(mg_receiver_get(watch, 5000, &m), MG_EDISCONNECT);
	close(sv[1]);
	/* The good one goes on. */
	CHECK_OK(mg_receiver_new(b, MG_NO_RESPONDENT, MG_POLICY_ANY, &rx));
	CHECK_OK(mg_msg_new_raw("still here", 10, &m));
	CHECK_OK(mg_router_send(a, 1, mg_receiver_handle(rx), m));
	CHECK_OK(mg_receiver_get(rx, 5000, &m));
	CHECK_MEM(mg_msg_data(m), "still here", 10);
	mg_msg_free(m);
	mg_receiver_free(watch);
	mg_receiver_free(rx);
	mg_router_free(b);
	mg_router_free(a);
}

TEST(oversized_incoming_frame_disconnects_before_allocating)
{
	struct mg_router *a = util_router(0, "a", 1024, 0, false);
	int sv[2];
	char c;

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	CHECK_OK(mg_router_attach(a, sv[0], sv[0], 5, 0));
	/* Claims 4 GiB - 1: must be refused from the header alone. */
	{
		struct mg_frame_hdr h = {0, 0, 5, 5, 2000, 0, UINT32_MAX};
		uint8_t hdr[MG_FRAME_HDR_LEN];
		mg__frame_encode(&h, hdr);
		CHECK_EQ(write(sv[1], hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
	}
	CHECK_EQ(read(sv[1], &c, 1), 0);
	CHECK_INT(util_rss_kib(), <, 512 * 1024);
	close(sv[1]);
	mg_router_free(a);
}

TEST(latch_put_get_timeout_close)
{
	struct mg_latch *l;
	void *item;
	int x = 1, y = 2;

	CHECK_OK(mg_latch_new(&l));
	CHECK_EQ(mg_latch_get(l, 10, &item), -ETIMEDOUT);
	CHECK_OK(mg_latch_put(l, &x));
	CHECK_OK(mg_latch_put(l, &y));
	CHECK_EQ(mg_latch_size(l), 2);
	CHECK_OK(mg_latch_get(l, 0, &item));
	CHECK(item == &x);
	mg_latch_close(l);
	CHECK_EQ(mg_latch_put(l, &x), MG_ECLOSED);
	CHECK_OK(mg_latch_get(l, 0, &item)); /* queued items still come out */
	CHECK(item == &y);
	CHECK_EQ(mg_latch_get(l, -1, &item), MG_ECLOSED);
	mg_latch_free(l);
	mg_latch_free(NULL);
}

TEST(select_over_many_receivers)
{
	struct mg_router *a = util_router(0, "a", 0, 0, false),
	                 *b = util_router(1, "b", 0, 0, false);
	enum { N = 50 };
	struct mg_receiver *rx[N], *got;
	struct mg_select *sel;
	int seen[N] = {0}, i;
	struct mg_msg *m;

	util_join(a, b);
	CHECK_OK(mg_select_new(&sel));
	CHECK_EQ(mg_select_get(sel, 10, &got, &m), MG_ECLOSED);
	for (i = 0; i < N; i++) {
		CHECK_OK(mg_receiver_new(a, MG_NO_RESPONDENT, MG_POLICY_ANY, &rx[i]));
		CHECK_OK(mg_select_add(sel, rx[i]));
	}
	CHECK_EQ(mg_select_add(sel, rx[0]), MG_ELIMIT);
	CHECK_EQ(mg_select_get(sel, 20, &got, &m), -ETIMEDOUT);
	for (i = N - 1; i >= 0; i--) {
		CHECK_OK(mg_msg_pack(&m, "i", (int64_t)i));
		CHECK_OK(mg_router_send(b, 0, mg_receiver_handle(rx[i]), m));
	}
	for (i = 0; i < N; i++) {
		int64_t v;
		int j;
		CHECK_OK(mg_select_get(sel, 5000, &got, &m));
		CHECK_OK(mg_msg_read(m, "i", &v));
		CHECK_INT(v, >=, 0);
		CHECK_INT(v, <, N);
		for (j = 0; j < N && rx[j] != got; j++)
			;
		CHECK_EQ(j, v);
		seen[v]++;
		mg_msg_free(m);
	}
	for (i = 0; i < N; i++)
		CHECK_EQ(seen[i], 1);
	CHECK_EQ(mg_select_get(sel, 20, &got, &m), -ETIMEDOUT);
	/* A dead message comes out of the select with its receiver. */
	{
		struct mg_sender *s;
		CHECK_OK(mg_sender_new(b, 0, mg_receiver_handle(rx[7]), &s));
		CHECK_OK(mg_sender_close(s));
		mg_sender_free(s);
		CHECK_EQ(mg_select_get(sel, 5000, &got, &m), MG_ECLOSED);
		CHECK(got == rx[7]);
	}
	for (i = 0; i < N; i++) {
		CHECK_OK(mg_select_remove(sel, rx[i]));
		mg_receiver_free(rx[i]);
	}
	CHECK_EQ(mg_select_get(sel, 10, &got, &m), MG_ECLOSED);
	mg_select_free(sel);
	mg_router_free(b);
	mg_router_free(a);
}

TEST(attach_rejects_duplicates_and_bad_arguments)
{
	struct mg_router *a = util_router(0, "a", 0, 0, false);
	int sv[2], sv2[2];

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv2), 0);
	CHECK_OK(mg_router_attach(a, sv[0], sv[0], 5, 0));
	CHECK_EQ(mg_router_attach(a, sv2[0], sv2[0], 5, 0), -EEXIST);
	CHECK_EQ(mg_router_attach(a, sv2[0], sv2[0], 0, 0), -EEXIST);
	CHECK_EQ(mg_router_attach(a, -1, sv2[0], 9, 0), -EINVAL);
	CHECK_EQ(mg_router_attach(a, sv2[0], sv2[0], 9, 0x80), -EINVAL);
	close(sv2[0]);
	close(sv2[1]);
	close(sv[1]);
	mg_router_free(a);
}

TEST(strerror_names_every_code)
{
	int c;

	for (c = MG_EFIRST; c >= MG_ELAST; c--)
		CHECK(strcmp(mg_strerror(c), "unknown error") != 0);
	CHECK_STR(mg_strerror(0), "success");
	CHECK_STR(mg_strerror(-ENOENT), "No such file or directory");
	CHECK_STR(mg_strerror(12345), "unknown error");
}

/* ---- a waiting thread reading its stream itself (stream_wait.c) --------- */

/* The stream of r that routes to peer, referenced, or NULL. */
static struct mg_stream *route_stream(struct mg_router *r, uint32_t peer)
{
	struct mg_stream *s;

	pthread_mutex_lock(&r->lock);
	s = mg__idmap_get(&r->routes, peer);
	if (s != NULL)
		mg__stream_ref(s);
	pthread_mutex_unlock(&r->lock);
	return s;
}

/* Who has the input of r's stream to peer (enum mg_stream_in), -1 if none. */
static int input_state(struct mg_router *r, uint32_t peer)
{
	struct mg_stream *s = route_stream(r, peer);
	int st;

	if (s == NULL)
		return -1;
	pthread_mutex_lock(&s->lock);
	st = s->in_state;
	pthread_mutex_unlock(&s->lock);
	mg__stream_unref(s);
	return st;
}

/* How many frames threads other than the broker delivered on that stream;
 * read once the input is back with the broker. */
static uint64_t thread_msgs(struct mg_router *r, uint32_t peer)
{
	struct mg_stream *s = route_stream(r, peer);
	uint64_t n = 0;

	if (s == NULL)
		return 0;
	UTIL_WAIT_FOR(input_state(r, peer) == MG_IN_IDLE, 5000);
	pthread_mutex_lock(&s->lock);
	n = s->in_thread_msgs;
	pthread_mutex_unlock(&s->lock);
	mg__stream_unref(s);
	return n;
}

/* Answers every message on rx with its own payload, until rx closes. */
static void *echo_loop(void *arg)
{
	struct mg_receiver *rx = arg;
	struct mg_router *r = rx->router;
	struct mg_msg *m;

	while (mg_receiver_get(rx, -1, &m) == 0) {
		struct mg_msg *reply;
		int64_t who, seq;

		if (mg_msg_read(m, "(ii)", &who, &seq) == 0 &&
		    mg_msg_pack(&reply, "(ii)", who, seq) == 0)
			mg_router_send(r, mg_msg_src(m), mg_msg_reply_to(m), reply);
		mg_msg_free(m);
	}
	return NULL;
}

#define CALLERS 4
#define CALLS_EACH 300

struct caller {
	struct mg_router *a;
	uint32_t echo_handle;
	int who, bad;
};

/* Synchronous calls, one at a time, each answer checked against its call:
 * a reply lost, doubled or delivered to the wrong waiter shows. */
static void *call_loop(void *arg)
{
	struct caller *c = arg;
	struct mg_receiver *rx;
	int i;

	if (mg_receiver_new(c->a, 1, MG_POLICY_ANY, &rx) != 0) {
		c->bad = -1;
		return NULL;
	}
	for (i = 0; i < CALLS_EACH && c->bad == 0; i++) {
		struct mg_msg *m;
		int64_t who, seq;

		if (mg_msg_pack(&m, "(ii)", (int64_t)c->who, (int64_t)i) != 0) {
			c->bad = -2;
			break;
		}
		mg_msg_set_reply_to(m, mg_receiver_handle(rx));
		if (mg_router_send(c->a, 1, c->echo_handle, m) != 0 ||
		    mg_receiver_get(rx, 10000, &m) != 0) {
			c->bad = i + 1;
			break;
		}
		if (mg_msg_read(m, "(ii)", &who, &seq) != 0 || who != c->who || seq != i)
			c->bad = i + 1;
		mg_msg_free(m);
	}
	mg_receiver_free(rx);
	return NULL;
}

TEST(reading_waiters_get_their_own_replies_under_concurrent_callers)
{
	struct mg_router *a = util_router(0, "a", 0, 0, false),
	                 *b = util_router(1, "b", 0, 0, false);
	struct caller c[CALLERS];
	pthread_t t[CALLERS], echo;
	struct mg_receiver *rxb;
	int i;

	util_join(a, b);
	CHECK_OK(mg_receiver_new(b, MG_NO_RESPONDENT, MG_POLICY_ANY, &rxb));
	CHECK_EQ(pthread_create(&echo, NULL, echo_loop, rxb), 0);
	for (i = 0; i < CALLERS; i++) {
		c[i] = (struct caller){a, mg_receiver_handle(rxb), i, 0};
		CHECK_EQ(pthread_create(&t[i], NULL, call_loop, &c[i]), 0);
	}
	for (i = 0; i < CALLERS; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(c[i].bad, 0);
	}
	/* Both sides' waiters took replies and calls off the stream (the echo
	 * thread holds b's input while it waits: count once it has gone). */
	CHECK_INT(thread_msgs(a, 1), >, 0);
	mg_receiver_close(rxb);
	pthread_join(echo, NULL);
	CHECK_INT(thread_msgs(b, 0), >, 0);
	mg_receiver_free(rxb);
	mg_router_free(b);
	mg_router_free(a);
}

#define MIXED_MSGS 3000

struct mixed {
	struct mg_router *b;
	uint32_t h1, h2, h3;
	pthread_mutex_t lock;
	int64_t seen[MIXED_MSGS / 3];
	int nseen;
	bool off_broker;
	struct mg_router *a;
};

/* Sends MIXED_MSGS numbered messages, in turn to a's rx1 (where a waiter
 * reads the stream itself), rx2 (nobody waits) and a handler (the broker
 * must take the input back for each), now and then pausing so the waiter
 * holds the input when the next one comes. */
static void *mixed_send(void *arg)
{
	struct mixed *x = arg;
	int i;

	for (i = 0; i < MIXED_MSGS; i++) {
		uint32_t handle = i % 3 == 0 ? x->h1 : i % 3 == 1 ? x->h2 : x->h3;
		struct mg_msg *m;

		if (mg_msg_pack(&m, "i", (int64_t)i) != 0 ||
		    mg_router_send(x->b, 0, handle, m) != 0)
			break;
		if (i % 50 == 0)
			usleep(200);
	}
	return NULL;
}

static void mixed_cb(void *arg, struct mg_msg *m)
{
	struct mixed *x = arg;
	int64_t v = -1;

	mg_msg_read(m, "i", &v);
	pthread_mutex_lock(&x->lock);
	if (!mg__broker_on_thread(x->a->broker))
		x->off_broker = true;
	if (x->nseen < MIXED_MSGS / 3)
		x->seen[x->nseen++] = v;
	pthread_mutex_unlock(&x->lock);
	mg_msg_free(m);
}

static int mixed_count(struct mixed *x)
{
	int n;

	pthread_mutex_lock(&x->lock);
	n = x->nseen;
	pthread_mutex_unlock(&x->lock);
	return n;
}

/* Each receiver sees its messages once and in order, and handlers still
 * run on the broker, however the input passes between the waiter and the
 * broker. */
TEST(a_reading_waiter_hands_other_messages_on_in_order)
{
	struct mg_router *a = util_router(0, "a", 0, 0, false),
	                 *b = util_router(1, "b", 0, 0, false);
	static struct mixed x;
	struct mg_receiver *rx1, *rx2;
	struct mg_msg *m;
	pthread_t t;
	int64_t v;
	int i;

	memset(&x, 0, sizeof(x));
	pthread_mutex_init(&x.lock, NULL);
	x.a = a;
	x.b = b;
	util_join(a, b);
	CHECK_OK(mg_receiver_new(a, 1, MG_POLICY_ANY, &rx1));
	CHECK_OK(mg_receiver_new(a, MG_NO_RESPONDENT, MG_POLICY_ANY, &rx2));
	CHECK_OK(mg_router_add_handler(a, 0, MG_POLICY_ANY, mixed_cb, &x, &x.h3));
	x.h1 = mg_receiver_handle(rx1);
	x.h2 = mg_receiver_handle(rx2);
	CHECK_EQ(pthread_create(&t, NULL, mixed_send, &x), 0);
	for (i = 0; i < MIXED_MSGS; i += 3) {
		CHECK_OK(mg_receiver_get(rx1, 10000, &m));
		CHECK_OK(mg_msg_read(m, "i", &v));
		CHECK_EQ(v, i);
		mg_msg_free(m);
	}
	pthread_join(t, NULL);
	for (i = 1; i < MIXED_MSGS; i += 3) {
		CHECK_OK(mg_receiver_get(rx2, 10000, &m));
		CHECK_OK(mg_msg_read(m, "i", &v));
		CHECK_EQ(v, i);
		mg_msg_free(m);
	}
	CHECK_EQ(mg_receiver_get(rx2, 0, &m), -ETIMEDOUT);
	CHECK_EQ(mg_receiver_get(rx1, 0, &m), -ETIMEDOUT);
	UTIL_WAIT_FOR(mixed_count(&x) == MIXED_MSGS / 3, 10000);
	CHECK_EQ(mixed_count(&x), MIXED_MSGS / 3);
	for (i = 0; i < MIXED_MSGS / 3; i++)
		CHECK_EQ(x.seen[i], 3 * i + 2);
	CHECK(!x.off_broker);
	CHECK_INT(thread_msgs(a, 1), >, 0);
	mg_receiver_free(rx1);
	mg_receiver_free(rx2);
	mg_router_free(b);
	mg_router_free(a);
	pthread_mutex_destroy(&x.lock);
}

struct held_wait {
	struct mg_receiver *rx;
	int rc;
};

static void *held_wait_get(void *arg)
{
	struct held_wait *w = arg;
	struct mg_msg *m = NULL;

	w->rc = mg_receiver_get(w->rx, 10000, &m);
	if (w->rc == 0)
		mg_msg_free(m);
	return NULL;
}

/* Starts a thread waiting for a message from peer on a new receiver of a,
 * and waits until that thread reads the stream to peer itself. */
static void start_held_wait(struct mg_router *a, uint32_t peer, struct held_wait *w, pthread_t *t)
{
	*w = (struct held_wait){NULL, 1};
	CHECK_OK(mg_receiver_new(a, peer, MG_POLICY_ANY, &w->rx));
	CHECK_EQ(pthread_create(t, NULL, held_wait_get, w), 0);
	UTIL_WAIT_FOR(input_state(a, peer) == MG_IN_THREAD, 5000);
	CHECK_EQ(input_state(a, peer), MG_IN_THREAD);
}

/* The stream a waiter reads goes away under it: the peer's end (EOF on
 * the fd the waiter sleeps on) and our own end (the broker closes the
 * stream, taking the input back first). */
TEST(a_stream_closes_while_a_waiter_reads_it)
{
	struct mg_router *a = util_router(0, "a", 0, 0, false),
	                 *b = util_router(1, "b", 0, 0, false), *c;
	struct held_wait w;
	pthread_t t;

	util_join(a, b);
	start_held_wait(a, 1, &w, &t);
	mg_router_free(b);
	pthread_join(t, NULL);
	CHECK_EQ(w.rc, MG_EDISCONNECT);
	mg_receiver_free(w.rx);

	c = util_router(2, "c", 0, 0, false);
	util_join(a, c);
	start_held_wait(a, 2, &w, &t);
	mg_router_free(a);
	pthread_join(t, NULL);
	CHECK(w.rc == MG_EDISCONNECT || w.rc == MG_ESHUTDOWN);
	mg_receiver_free(w.rx);
	mg_router_free(c);
}
