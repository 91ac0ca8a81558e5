/*
 * test_stress.c: volume and limits between two real routers: a million
 * messages of mixed sizes from several threads in both directions, a
 * 100 MiB message and the byte past the maximum, and memory staying near
 * the high-water mark when a producer outruns its consumer.
 */
#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>

#include "internal.h"
#include "util.h"

/* ---- a million messages ------------------------------------------------ */

enum { LANES_PER_SIDE = 4, TOTAL_MESSAGES = 1000000 };

/* One lane: a sender thread on one router feeding one receiver on the
 * other.  Both ends derive the k-th message's size and bytes from the lane
 * number and k, so the receiver checks content and order without any
 * bookkeeping in the payload. */
struct lane {
	int id;
	long count;
	struct mg_router *from;
	uint32_t to_ctx;
	struct mg_receiver *rx;
	long received;
	int failed;
	char why[200];
};

static uint32_t mix(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352d;
	x ^= x >> 15;
	x *= 0x846ca68b;
	x ^= x >> 16;
	return x;
}

/* Mostly small, some medium, a few up to 1 MiB. */
static size_t lane_size(int lane, long k)
{
	uint32_t r = mix((uint32_t)(lane * 7919) ^ (uint32_t)(k * 2654435761u));
	uint32_t pick = r % 10000;

	if (k == 0)
		return 0;
	if (k == 1)
		return 1 << 20;
	if (pick < 7000)
		return (r >> 14) % 65;
	if (pick < 9500)
		return 65 + (r >> 14) % 4032;
	if (pick < 9990)
		return 4097 + (r >> 14) % 12288;
	return 16385 + (r >> 12) % ((1 << 20) - 16384);
}

static uint8_t lane_byte(int lane, long k, size_t i)
{
	return (uint8_t)(k * 31 + lane * 17 + i * 131 + (i >> 8));
}

static void *lane_send(void *arg)
{
	struct lane *l = arg;
	long k;

	for (k = 0; k < l->count; k++) {
		size_t n = lane_size(l->id, k), i;
		struct mg_msg *m;
		uint8_t *p;

		if (mg_msg_new_size(n, &m) != 0) {
			l->failed = 1;
			snprintf(l->why, sizeof(l->why), "out of memory at %ld", k);
			return NULL;
		}
		p = mg_msg_data_mut(m);
		for (i = 0; i < n; i++)
			p[i] = lane_byte(l->id, k, i);
		if (mg_router_send(l->from, l->to_ctx, mg_receiver_handle(l->rx), m) != 0) {
			l->failed = 1;
			snprintf(l->why, sizeof(l->why), "send failed at %ld", k);
			return NULL;
		}
	}
	return NULL;
}

static void *lane_receive(void *arg)
{
	struct lane *l = arg;
	long k;

	for (k = 0; k < l->count; k++) {
		struct mg_msg *m;
		const uint8_t *p;
		size_t n, i;
		int rc = mg_receiver_get(l->rx, 60000, &m);

		if (rc != 0) {
			l->failed = 1;
			snprintf(l->why, sizeof(l->why), "lane %d: get %ld: %s", l->id, k,
			         mg_strerror(rc));
			return NULL;
		}
		n = mg_msg_len(m);
		p = mg_msg_data(m);
		if (n != lane_size(l->id, k)) {
			l->failed = 1;
			snprintf(l->why, sizeof(l->why),
			         "lane %d: message %ld has %zu bytes, not %zu", l->id, k, n,
			         lane_size(l->id, k));
			mg_msg_free(m);
			return NULL;
		}
		for (i = 0; i < n; i++) {
			if (p[i] != lane_byte(l->id, k, i)) {
				l->failed = 1;
				snprintf(l->why, sizeof(l->why),
				         "lane %d: message %ld differs at byte %zu (out of order?)",
				         l->id, k, i);
				mg_msg_free(m);
				return NULL;
			}
		}
		mg_msg_free(m);
		l->received++;
	}
	return NULL;
}

TEST_T(million_messages_mixed_sizes_both_ways, 600)
{
	struct mg_router *a = util_router(0, "a", 0, 0, false),
	                 *b = util_router(1, "b", 0, 0, false);
	struct lane lanes[2 * LANES_PER_SIDE];
	pthread_t st[2 * LANES_PER_SIDE], rt[2 * LANES_PER_SIDE];
	long total = 0;
	int i;

	util_join(a, b);
	for (i = 0; i < 2 * LANES_PER_SIDE; i++) {
		struct lane *l = &lanes[i];
		bool a_to_b = i < LANES_PER_SIDE;

		memset(l, 0, sizeof(*l));
		l->id = i;
		l->count = TOTAL_MESSAGES / (2 * LANES_PER_SIDE);
		l->from = a_to_b ? a : b;
		l->to_ctx = a_to_b ? 1 : 0;
		CHECK_OK(mg_receiver_new(a_to_b ? b : a, MG_NO_RESPONDENT, MG_POLICY_ANY, &l->rx));
	}
	for (i = 0; i < 2 * LANES_PER_SIDE; i++) {
		CHECK_EQ(pthread_create(&rt[i], NULL, lane_receive, &lanes[i]), 0);
		CHECK_EQ(pthread_create(&st[i], NULL, lane_send, &lanes[i]), 0);
	}
	for (i = 0; i < 2 * LANES_PER_SIDE; i++) {
		pthread_join(st[i], NULL);
		pthread_join(rt[i], NULL);
	}
	for (i = 0; i < 2 * LANES_PER_SIDE; i++) {
		if (lanes[i].failed)
			mg_test_fail(__FILE__, __LINE__, "%s", lanes[i].why);
		CHECK_EQ(lanes[i].received, lanes[i].count);
		total += lanes[i].received;
		mg_receiver_free(lanes[i].rx);
	}
	CHECK_EQ(total, TOTAL_MESSAGES);
	mg_router_free(b);
	mg_router_free(a);
}

/* ---- the largest message ----------------------------------------------- */

TEST_T(hundred_mib_passes_and_one_byte_more_is_refused, 300)
{
	const size_t max = 100u << 20;
	struct mg_router *a = util_router(0, "a", max, 0, false);
	struct mg_router *b = util_router(1, "b", max, 0, false);
	struct mg_receiver *rxa, *rxb;
	struct mg_msg *m;
	uint8_t *p;
	size_t i;

	util_join(a, b);
	CHECK_OK(mg_receiver_new(a, MG_NO_RESPONDENT, MG_POLICY_ANY, &rxa));
	CHECK_OK(mg_receiver_new(b, MG_NO_RESPONDENT, MG_POLICY_ANY, &rxb));
	CHECK_OK(mg_msg_new_size(max, &m));
	p = mg_msg_data_mut(m);
	for (i = 0; i < max; i++)
		p[i] = (uint8_t)(i * 7 + (i >> 20));
	mg_msg_set_reply_to(m, mg_receiver_handle(rxa));
	CHECK_OK(mg_router_send(a, 1, mg_receiver_handle(rxb), m));
	CHECK_OK(mg_receiver_get(rxb, 60000, &m));
	CHECK_EQ(mg_msg_len(m), max);
	p = mg_msg_data_mut(m);
	for (i = 0; i < max; i++)
		if (p[i] != (uint8_t)(i * 7 + (i >> 20)))
			mg_test_fail(__FILE__, __LINE__, "byte %zu differs", i);
	mg_msg_free(m);

	CHECK_OK(mg_msg_new_size(max + 1, &m));
	mg_msg_set_reply_to(m, mg_receiver_handle(rxa));
	CHECK_OK(mg_router_send(a, 1, mg_receiver_handle(rxb), m));
	CHECK_EQ(mg_receiver_get(rxa, 10000, &m), MG_ETOOBIG);
	CHECK(strstr(mg_errdetail(), "larger than the maximum") != NULL);

	/* The stream is still usable. */
	CHECK_OK(mg_msg_pack(&m, "s", "after"));
	CHECK_OK(mg_router_send(a, 1, mg_receiver_handle(rxb), m));
	CHECK_OK(mg_receiver_get(rxb, 10000, &m));
	{
		const char *s;
		CHECK_OK(mg_msg_read(m, "s", &s));
		CHECK_STR(s, "after");
	}
	mg_msg_free(m);
	mg_receiver_free(rxa);
	mg_receiver_free(rxb);
	mg_router_free(b);
	mg_router_free(a);
}

/* ---- backpressure ------------------------------------------------------ */

struct slow_reader {
	int fd;
	size_t expect, got;
};

/* Reads the raw stream slowly, counting bytes until it has them all. */
static void *read_slowly(void *arg)
{
	struct slow_reader *s = arg;
	static uint8_t buf[64 * 1024];

	while (s->got < s->expect) {
		ssize_t n = read(s->fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		s->got += (size_t)n;
		usleep(200);
	}
	return NULL;
}

TEST_T(producer_memory_stays_near_the_high_water_mark, 300)
{
	const size_t high_water = 1u << 20, chunk = 64u << 10;
	const int count = 4096; /* 256 MiB in all */
	struct mg_router *a = util_router(0, "a", 0, high_water, false);
	struct slow_reader rd;
	long base, peak = 0;
	pthread_t t;
	int sv[2], i;

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	CHECK_OK(mg_router_attach(a, sv[0], sv[0], 5, 0));
	rd.fd = sv[1];
	rd.got = 0;
	rd.expect = (size_t)count * (chunk + MG_FRAME_HDR_LEN);
	CHECK_EQ(pthread_create(&t, NULL, read_slowly, &rd), 0);
	base = util_rss_kib();
	for (i = 0; i < count; i++) {
		struct mg_msg *m;
		CHECK_OK(mg_msg_new_size(chunk, &m));
		memset(mg_msg_data_mut(m), i, chunk); /* touch it: count it in RSS */
		CHECK_OK(mg_router_send(a, 5, 2000, m));
		if (i % 16 == 0) {
			long rss = util_rss_kib();
			if (rss > peak)
				peak = rss;
		}
	}
	pthread_join(t, NULL);
	CHECK_UINT(rd.got, ==, rd.expect);
	/* 256 MiB went through; the producer never held more than the
	 * high-water mark plus socket buffers and allocator slack. */
	printf("    rss: base %ld KiB, peak %ld KiB, growth %ld KiB for 256 MiB sent\n", base, peak,
	       peak - base);
	CHECK_INT(peak - base, <, 32 * 1024);
	close(sv[1]);
	mg_router_free(a);
}
