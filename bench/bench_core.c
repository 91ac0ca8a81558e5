/*
 * bench_core.c: what the router costs over the bare socket it runs on.
 *
 * Each figure has a floor measured in the same run on an AF_UNIX
 * socketpair inside this process, so the only difference between a figure
 * and its floor is the library:
 *
 *   rtt floor      a small message ping-ponged between two threads with
 *                  blocking read/write: the least a round trip can cost.
 *   rtt router     the same bytes between two routers (A id 0, B id 1, B's
 *                  parent is A): A's main thread sends to a receiver on B, a
 *                  thread on B answers to src/reply_to, A waits for it.
 *   bulk floor     64 MiB payloads written with writev and read with read
 *                  between two threads, each side reusing one buffer that
 *                  is already faulted in, in transparent huge pages where
 *                  the kernel allows them (as the library's large payloads
 *                  are: fewer TLB misses make the copy itself faster), over
 *                  a socketpair with the send buffer the library gives its
 *                  own (FLOOR_SNDBUF).
 *   bulk router    the same payloads sent router to router as raw messages;
 *                  the receiver checks their length and samples their bytes.
 *   bulk floor,    the floor again, but the reader takes a new malloc'd
 *   new buffers    buffer for every payload: it shows what page faults
 *                  alone cost on this machine, and what the router would
 *                  cost without its reuse of large payload buffers.
 *
 * Floors and figures run in alternating rounds, so a noisy neighbour or a
 * scheduler mood hits both alike.  The program prints a table and one JSON
 * object and never asserts a time: the targets (round trip within 3x the
 * floor, throughput at least half the floor) are reported, not enforced.
 * The exit status is non-zero only when something failed to work.
 *
 * Usage: bench_core [-r | -t] [-n round_trips] [-m bulk_messages] [-s bulk_mib]
 *                   [-b small_bytes] [-k rounds]
 *   -r  round trips only      -t  throughput only
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "mitogen.h"

/* Targets from the project brief: figures outside them are reported. */
#define TARGET_RTT_RATIO 3.0
#define TARGET_BULK_RATIO 0.5

/* The router's frame header is 28 bytes; the floors send as many before
 * each payload so both move the same bytes. */
#define HDR_BYTES 28

/* The send buffer the library asks for on its AF_UNIX streams
 * (src/core/stream.c): the floors' sockets get it too, so both run on the
 * same socket.  With the default 208 KiB a payload crosses in ~150 KiB
 * turns, and whenever the two ends sit on different CPUs the floor itself
 * fell to a third of its speed: not the cheapest the kernel can do. */
#define FLOOR_SNDBUF (512 * 1024)

struct config {
	bool rtt, bulk;    /* which halves to run */
	int rounds;        /* alternating floor/router rounds */
	int round_trips;   /* timed round trips in all, after warm-up */
	int warmup;        /* untimed round trips per round: caches, allocator */
	int bulk_messages; /* timed bulk payloads in all */
	size_t bulk_size;  /* bytes per bulk payload */
	size_t small_size; /* bytes per round-trip payload */
};

/* ---- helpers --------------------------------------------------------------- */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bench_core: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Library calls either work or end the run: the timing of a failure means
 * nothing. */
#define MUST(expr)                                                                             \
	do {                                                                                   \
		int must_r_ = (expr);                                                          \
		if (must_r_ != 0)                                                              \
			die("%s:%d: %s: %s", __FILE__, __LINE__, #expr, mg_strerror(must_r_)); \
	} while (0)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL)
		die("out of memory for %zu bytes", n);
	return p;
}

static void make_pair(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		die("socketpair: %s", strerror(errno));
}

/* A socketpair for a floor, with the send buffer the library would give
 * it (the routers' pair is left as it comes: the library sizes it). */
static void make_floor_pair(int sv[2])
{
	int size = FLOOR_SNDBUF, i;

	make_pair(sv);
	for (i = 0; i < 2; i++) {
		if (setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size)) != 0)
			die("SO_SNDBUF: %s", strerror(errno));
	}
}

static void start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	int r = pthread_create(t, NULL, fn, arg);

	if (r != 0)
		die("pthread_create: %s", strerror(r));
}

/* Reads exactly n bytes; false on EOF. */
static bool read_full(int fd, void *buf, size_t n)
{
	char *p = buf;

	while (n > 0) {
		ssize_t r = read(fd, p, n);

		if (r == 0)
			return false;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("read: %s", strerror(errno));
		}
		p += r;
		n -= (size_t)r;
	}
	return true;
}

/* Writes every byte of iov[0..n), advancing through partial writes (the
 * array is consumed). */
static void writev_full(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("writev: %s", strerror(errno));
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct latency {
	double min_us, median_us, p99_us;
};

/* Sorts the samples in place; percentiles by nearest rank. */
static struct latency summarise(uint64_t *ns, int n)
{
	struct latency l;
	int p99 = (int)((double)n * 0.99);

	qsort(ns, (size_t)n, sizeof(*ns), cmp_u64);
	l.min_us = (double)ns[0] / 1e3;
	l.median_us = (double)ns[n / 2] / 1e3;
	l.p99_us = (double)ns[p99 < n ? p99 : n - 1] / 1e3;
	return l;
}

static double mib_per_s(size_t bytes, uint64_t ns)
{
	return ((double)bytes / (1024.0 * 1024.0)) / ((double)ns / 1e9);
}

/* ---- round trips: the floor ------------------------------------------------- */

struct echo_fd {
	int fd;
	size_t size;
};

static void *floor_echo(void *arg)
{
	struct echo_fd *e = arg;
	char *buf = xmalloc(e->size);
	struct iovec iov;

	while (read_full(e->fd, buf, e->size)) {
		iov = (struct iovec){buf, e->size};
		writev_full(e->fd, &iov, 1);
	}
	free(buf);
	return NULL;
}

/* Runs warmup + n round trips, storing n samples in ns. */
static void rtt_floor_round(const struct config *c, int n, uint64_t *ns)
{
	char *buf = xmalloc(c->small_size);
	struct echo_fd e;
	pthread_t t;
	int sv[2], i;

	make_floor_pair(sv);
	e = (struct echo_fd){sv[1], c->small_size};
	memset(buf, 'x', c->small_size);
	start_thread(&t, floor_echo, &e);
	for (i = -c->warmup; i < n; i++) {
		struct iovec iov = {buf, c->small_size};
		uint64_t t0 = now_ns();

		writev_full(sv[0], &iov, 1);
		if (!read_full(sv[0], buf, c->small_size))
			die("floor echo: unexpected EOF");
		if (i >= 0)
			ns[i] = now_ns() - t0;
	}
	close(sv[0]); /* EOF ends the echo thread */
	pthread_join(t, NULL);
	close(sv[1]);
	free(buf);
}

/* ---- two routers joined by a socketpair ------------------------------------ */

struct pair {
	struct mg_router *a, *b; /* a is id 0, b is id 1 with a as its parent */
};

static struct mg_router *router(uint32_t id, const char *name, size_t max)
{
	struct mg_router_opts o;
	struct mg_router *r;

	mg_router_opts_init(&o);
	o.context_id = id;
	o.name = name;
	if (o.max_message_size < max)
		o.max_message_size = max;
	MUST(mg_router_new(&o, &r));
	return r;
}

static void pair_open(struct pair *p, size_t max)
{
	int sv[2];

	p->a = router(0, "bench-a", max);
	p->b = router(1, "bench-b", max);
	make_pair(sv);
	MUST(mg_router_attach(p->a, sv[0], sv[0], 1, 0));
	MUST(mg_router_attach(p->b, sv[1], sv[1], 0, MG_STREAM_PARENT));
}

static void pair_close(struct pair *p)
{
	mg_router_free(p->b);
	mg_router_free(p->a);
}

/* ---- round trips: the routers ---------------------------------------------- */

struct echo_rx {
	struct mg_router *r;
	struct mg_receiver *rx;
};

/* Answers every message with a new one of the same bytes, as a service
 * would: to the sender's context and reply handle. */
static void *router_echo(void *arg)
{
	struct echo_rx *e = arg;
	struct mg_msg *m, *reply;

	while (mg_receiver_get(e->rx, -1, &m) == 0) {
		MUST(mg_msg_new_raw(mg_msg_data(m), mg_msg_len(m), &reply));
		MUST(mg_router_send(e->r, mg_msg_src(m), mg_msg_reply_to(m), reply));
		mg_msg_free(m);
	}
	return NULL;
}

static void rtt_router_round(const struct config *c, int n, uint64_t *ns)
{
	char *buf = xmalloc(c->small_size);
	struct mg_receiver *rxa, *rxb;
	struct echo_rx e;
	struct pair p;
	pthread_t t;
	int i;

	memset(buf, 'x', c->small_size);
	pair_open(&p, 0);
	MUST(mg_receiver_new(p.a, MG_NO_RESPONDENT, MG_POLICY_ANY, &rxa));
	MUST(mg_receiver_new(p.b, MG_NO_RESPONDENT, MG_POLICY_ANY, &rxb));
	e = (struct echo_rx){p.b, rxb};
	start_thread(&t, router_echo, &e);
	for (i = -c->warmup; i < n; i++) {
		struct mg_msg *m;
		uint64_t t0 = now_ns();

		MUST(mg_msg_new_raw(buf, c->small_size, &m));
		mg_msg_set_reply_to(m, mg_receiver_handle(rxa));
		MUST(mg_router_send(p.a, 1, mg_receiver_handle(rxb), m));
		MUST(mg_receiver_get(rxa, 10000, &m));
		if (i >= 0)
			ns[i] = now_ns() - t0;
		if (mg_msg_len(m) != c->small_size)
			die("router echo: got %zu bytes, sent %zu", mg_msg_len(m), c->small_size);
		mg_msg_free(m);
	}
	mg_receiver_close(rxb); /* wakes the echo thread with MG_ECLOSED */
	pthread_join(t, NULL);
	mg_receiver_free(rxa);
	mg_receiver_free(rxb);
	pair_close(&p);
	free(buf);
}

/* ---- bulk: the floors -------------------------------------------------------- */

struct bulk_reader {
	int fd;
	size_t size;
	int count;
	bool fresh;              /* a new, untouched buffer per payload */
	pthread_barrier_t ready; /* the reader is set up: start the clock */
	uint64_t done_ns;        /* when the last byte arrived */
};

static void *floor_reader(void *arg)
{
	struct bulk_reader *br = arg;
	char hdr[HDR_BYTES], *buf = NULL;
	int i;

	if (!br->fresh) {
		/* Touch the buffer first: this floor is the copy, not faults. */
		buf = mmap(NULL, br->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		           0);
		if (buf == MAP_FAILED)
			die("mmap: %s", strerror(errno));
		(void)madvise(buf, br->size, MADV_HUGEPAGE);
		memset(buf, 0, br->size);
	}
	pthread_barrier_wait(&br->ready);
	for (i = 0; i < br->count; i++) {
		if (br->fresh)
			buf = xmalloc(br->size);
		if (!read_full(br->fd, hdr, sizeof(hdr)) || !read_full(br->fd, buf, br->size))
			die("floor reader: unexpected EOF");
		if (br->fresh) {
			free(buf);
			buf = NULL;
		}
	}
	br->done_ns = now_ns();
	if (buf != NULL)
		munmap(buf, br->size);
	return NULL;
}

/* Sends count payloads and returns the time until the reader has the last
 * byte. */
static uint64_t bulk_floor_round(const char *payload, size_t size, int count, bool fresh)
{
	struct bulk_reader br;
	char hdr[HDR_BYTES] = {0};
	uint64_t t0;
	pthread_t t;
	int sv[2], i;

	make_floor_pair(sv);
	br.fd = sv[1];
	br.size = size;
	br.count = count;
	br.fresh = fresh;
	pthread_barrier_init(&br.ready, NULL, 2);
	start_thread(&t, floor_reader, &br);
	pthread_barrier_wait(&br.ready);
	t0 = now_ns();
	for (i = 0; i < count; i++) {
		struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)payload, size}};
		writev_full(sv[0], iov, 2);
	}
	pthread_join(t, NULL);
	pthread_barrier_destroy(&br.ready);
	close(sv[0]);
	close(sv[1]);
	return br.done_ns - t0;
}

/* ---- bulk: the routers ------------------------------------------------------- */

struct bulk_sink {
	struct mg_receiver *rx;
	const uint8_t *sent; /* the payload sent, to check what arrives */
	size_t size;
	int count;
	uint64_t done_ns;
};

/* Compares 64 bytes in every MiB and the last 64: cheap beside the copy
 * (the floors check nothing), and enough to see misplaced or stale bytes
 * in a patterned payload. */
static bool same_samples(const uint8_t *got, const uint8_t *want, size_t n)
{
	size_t off;

	for (off = 0; off + 64 <= n; off += (size_t)1 << 20) {
		if (memcmp(got + off, want + off, 64) != 0)
			return false;
	}
	return n < 64 || memcmp(got + n - 64, want + n - 64, 64) == 0;
}

static void *router_sink(void *arg)
{
	struct bulk_sink *s = arg;
	struct mg_msg *m;
	int i;

	for (i = 0; i < s->count; i++) {
		int r = mg_receiver_get(s->rx, 30000, &m);

		/* At a few hundred MiB/s a payload takes well under a second:
		 * thirty seconds of nothing is a stalled stream, not a slow one. */
		if (r != 0)
			die("router sink: payload %d of %d: %s (%s): output stream stalled?", i + 1,
			    s->count, mg_strerror(r), mg_errdetail());
		if (mg_msg_len(m) != s->size)
			die("router sink: got %zu bytes, want %zu", mg_msg_len(m), s->size);
		if (!same_samples(mg_msg_data(m), s->sent, s->size))
			die("router sink: payload %d arrived with other bytes", i + 1);
		if (i == s->count - 1)
			s->done_ns = now_ns();
		mg_msg_free(m);
	}
	return NULL;
}

static uint64_t bulk_router_round(struct mg_msg *payload, int count)
{
	struct bulk_sink s;
	struct pair p;
	uint64_t t0;
	pthread_t t;
	int i;

	pair_open(&p, mg_msg_len(payload));
	MUST(mg_receiver_new(p.b, MG_NO_RESPONDENT, MG_POLICY_ANY, &s.rx));
	s.sent = mg_msg_data(payload);
	s.size = mg_msg_len(payload);
	s.count = count;
	start_thread(&t, router_sink, &s);
	t0 = now_ns();
	/* One filled message sent again and again by reference: its payload is
	 * immutable once sent, and this keeps filling it out of the figure. */
	for (i = 0; i < count; i++)
		MUST(mg_router_send(p.a, 1, mg_receiver_handle(s.rx), mg_msg_ref(payload)));
	pthread_join(t, NULL);
	mg_receiver_free(s.rx);
	pair_close(&p);
	return s.done_ns - t0;
}

/* ---- the runs ---------------------------------------------------------------- */

struct results {
	struct latency rtt_floor, rtt_router;
	double bulk_floor, bulk_router, bulk_fresh; /* MiB/s */
};

static void run_rtt(const struct config *c, struct results *res)
{
	int per = c->round_trips / c->rounds, n = per * c->rounds, k;
	uint64_t *fl = xmalloc(sizeof(*fl) * (size_t)n), *rt = xmalloc(sizeof(*rt) * (size_t)n);

	for (k = 0; k < c->rounds; k++) {
		rtt_floor_round(c, per, fl + k * per);
		rtt_router_round(c, per, rt + k * per);
	}
	res->rtt_floor = summarise(fl, n);
	res->rtt_router = summarise(rt, n);
	free(fl);
	free(rt);
}

static void run_bulk(const struct config *c, struct results *res)
{
	int per = c->bulk_messages / c->rounds > 0 ? c->bulk_messages / c->rounds : 1, k;
	uint64_t fl = 0, rt = 0, fr = 0;
	struct mg_msg *payload;
	uint8_t *fill;
	size_t bytes, i;

	MUST(mg_msg_new_size(c->bulk_size, &payload));
	/* A pattern that differs from one 64-byte block to the next. */
	fill = mg_msg_data_mut(payload);
	for (i = 0; i < c->bulk_size; i++)
		fill[i] = (uint8_t)(((uint32_t)(i >> 6) * 2654435761u) >> 24) ^ (uint8_t)i;
	/* Warm-up, untimed: a round each way.  The floor's reader faults its
	 * buffer in before its clock starts; the router's large-payload cache
	 * needs a round's worth of payloads (two or three buffers in flight)
	 * to hold as much, or its first timed round pays for first touches of
	 * fresh memory that the floor never pays for. */
	bulk_floor_round(mg_msg_data(payload), c->bulk_size, per, false);
	bulk_router_round(payload, per);
	for (k = 0; k < c->rounds; k++) {
		fl += bulk_floor_round(mg_msg_data(payload), c->bulk_size, per, false);
		rt += bulk_router_round(payload, per);
		fr += bulk_floor_round(mg_msg_data(payload), c->bulk_size, per, true);
	}
	mg_msg_free(payload);
	bytes = c->bulk_size * (size_t)per * (size_t)c->rounds;
	res->bulk_floor = mib_per_s(bytes, fl);
	res->bulk_router = mib_per_s(bytes, rt);
	res->bulk_fresh = mib_per_s(bytes, fr);
}

/* ---- report ------------------------------------------------------------------ */

static const char *verdict(bool ok)
{
	return ok ? "meets target" : "MISSES target";
}

static void print_table(const struct config *c, const struct results *r)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	printf("bench_core: %ld cpus, %d rounds\n", cpus, c->rounds);
	if (c->rtt) {
		double ratio = r->rtt_router.median_us / r->rtt_floor.median_us;

		printf("\n%-34s %10s %10s %10s\n", "round trip, us", "min", "median", "p99");
		printf("%-34s %10.2f %10.2f %10.2f\n", "socketpair floor", r->rtt_floor.min_us,
		       r->rtt_floor.median_us, r->rtt_floor.p99_us);
		printf("%-34s %10.2f %10.2f %10.2f\n", "router to router", r->rtt_router.min_us,
		       r->rtt_router.median_us, r->rtt_router.p99_us);
		printf("%-34s %10.2fx %9.2fx %9.2fx\n", "router / floor",
		       r->rtt_router.min_us / r->rtt_floor.min_us, ratio,
		       r->rtt_router.p99_us / r->rtt_floor.p99_us);
		printf("(%d round trips of %zu bytes; median target <= %.0fx: %s)\n",
		       c->round_trips, c->small_size, TARGET_RTT_RATIO,
		       verdict(ratio <= TARGET_RTT_RATIO));
	}
	if (c->bulk) {
		double ratio = r->bulk_router / r->bulk_floor;

		printf("\n%-34s %10s %10s\n", "throughput", "MiB/s", "/ floor");
		printf("%-34s %10.0f %9.2fx\n", "socketpair floor", r->bulk_floor, 1.0);
		printf("%-34s %10.0f %9.2fx\n", "router to router", r->bulk_router, ratio);
		printf("%-34s %10.0f %9.2fx\n", "floor, new buffer per payload", r->bulk_fresh,
		       r->bulk_fresh / r->bulk_floor);
		printf("(%d payloads of %zu MiB; target >= %.1fx: %s)\n", c->bulk_messages,
		       c->bulk_size >> 20, TARGET_BULK_RATIO, verdict(ratio >= TARGET_BULK_RATIO));
	}
	printf("\n");
}

static void print_latency_json(const char *name, const struct latency *l)
{
	printf("\"%s\":{\"min\":%.3f,\"median\":%.3f,\"p99\":%.3f},", name, l->min_us, l->median_us,
	       l->p99_us);
}

static void print_json(const struct config *c, const struct results *r)
{
	printf("{\"bench\":\"core\",\"cpus\":%ld,\"rounds\":%d,", sysconf(_SC_NPROCESSORS_ONLN),
	       c->rounds);
	if (c->rtt) {
		double ratio = r->rtt_router.median_us / r->rtt_floor.median_us;

		printf("\"round_trips\":%d,\"small_bytes\":%zu,", c->round_trips, c->small_size);
		print_latency_json("rtt_floor_us", &r->rtt_floor);
		print_latency_json("rtt_router_us", &r->rtt_router);
		printf("\"rtt_ratio\":%.3f,\"rtt_ratio_p99\":%.3f,\"rtt_target\":%.1f,"
		       "\"rtt_ok\":%s,",
		       ratio, r->rtt_router.p99_us / r->rtt_floor.p99_us, TARGET_RTT_RATIO,
		       ratio <= TARGET_RTT_RATIO ? "true" : "false");
	}
	if (c->bulk) {
		double ratio = r->bulk_router / r->bulk_floor;

		printf("\"bulk_messages\":%d,\"bulk_bytes\":%zu,\"bulk_floor_mib_s\":%.1f,"
		       "\"bulk_router_mib_s\":%.1f,\"bulk_fresh_floor_mib_s\":%.1f,"
		       "\"bulk_ratio\":%.3f,\"bulk_target\":%.1f,\"bulk_ok\":%s,",
		       c->bulk_messages, c->bulk_size, r->bulk_floor, r->bulk_router, r->bulk_fresh,
		       ratio, TARGET_BULK_RATIO, ratio >= TARGET_BULK_RATIO ? "true" : "false");
	}
	printf("\"version\":\"%s\"}\n", MG_VERSION_STRING);
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_core [-r | -t] [-n round_trips] [-m bulk_messages] "
	                "[-s bulk_mib] [-b small_bytes] [-k rounds]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct config c = {true, true, 4, 20000, 500, 16, (size_t)64 << 20, 32};
	struct results r;
	int opt;

	while ((opt = getopt(argc, argv, "rtn:m:s:b:k:")) != -1) {
		long v = optarg != NULL ? strtol(optarg, NULL, 10) : 1;

		if (v <= 0)
			usage();
		switch (opt) {
		case 'r':
			c.bulk = false;
			break;
		case 't':
			c.rtt = false;
			break;
		case 'n':
			c.round_trips = (int)v;
			break;
		case 'm':
			c.bulk_messages = (int)v;
			break;
		case 's':
			c.bulk_size = (size_t)v << 20;
			break;
		case 'b':
			c.small_size = (size_t)v;
			break;
		case 'k':
			c.rounds = (int)v;
			break;
		default:
			usage();
		}
	}
	if (!c.rtt && !c.bulk)
		usage();
	if (c.round_trips < c.rounds)
		c.round_trips = c.rounds;
	/* Shutdown chatter would only disturb the figures. */
	mg_log_set_handler(NULL, NULL, MG_LOG_ERROR);

	memset(&r, 0, sizeof(r));
	if (c.rtt)
		run_rtt(&c, &r);
	if (c.bulk)
		run_bulk(&c, &r);
	print_table(&c, &r);
	print_json(&c, &r);
	return 0;
}
