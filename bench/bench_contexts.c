/*
 * bench_contexts.c: what contexts cost, beside Python Mitogen doing the same
 * work in the same run, and beside the cheapest way the operating system can
 * do each thing (DESIGN.md section 8).
 *
 *   local start     mg_local() until it returns a ready context
 *                   vs router.local(); floor: posix_spawn of a static binary
 *                   (a 151-byte ELF that writes one byte and exits) until
 *                   that byte arrives
 *   fork start      mg_fork() vs router.fork(); floor: fork until the child
 *                   has written one byte
 *   call round trip mg_call("mg.ping") to a local / a fork child, one at a
 *                   time, vs context.call(ping); floor: one byte ping-ponged
 *                   over two pipes with a forked process
 *   64 MiB echo     mg_call("mg.echo", "y", 64 MiB) vs context.call(echo,
 *                   b'x' * 64 MiB); the argument goes up and comes back and
 *                   the figure is size / wall time of the call; floor: the
 *                   same bytes written to a forked process over a socketpair,
 *                   read whole, and written back
 *   idle child RSS  VmRSS of a local child that has answered one call
 *   100 contexts    ours: 100 mg_connect_start() then wait for all; Mitogen:
 *                   100 router.local() one after another (it connects one
 *                   context at a time); floor: 100 spawns of the static
 *                   binary until all 100 have written their byte
 *
 * The Mitogen half is bench/mitogen_ref.py, run with /usr/bin/python3 (the
 * interpreter Debian's python3-mitogen is installed for) after our half, with
 * our router gone so the two never compete for the CPUs.  It prints one JSON
 * document; when python3-mitogen is missing the bench says so and reports
 * ours alone.  Medians are reported; min/max/mean/n are in the JSON.
 *
 * Output: a table and one JSON document on stdout (and in --json FILE);
 * --chart FILE.png renders the figures with gnuplot and bench/chart.gnuplot.
 * A figure is never asserted: the exit status is non-zero only when one of
 * our measurements failed to work.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "mitogen.h"

extern char **environ;

#define MIB (1024.0 * 1024.0)

/* ---- configuration ------------------------------------------------------------ */

struct config {
	int starts;       /* starts timed per method */
	int calls;        /* round trips timed per child */
	int warmup;       /* untimed round trips first */
	int bulk_mib;     /* echo argument size */
	int bulk_rounds;  /* echo calls timed */
	int rss_children; /* children whose RSS is read */
	int contexts;     /* contexts started together */
	int floor_reps;   /* repetitions of the start floors */
	const char *only; /* comma-separated metric keys, or NULL */
	const char *json_path;
	const char *chart_path;
	const char *python;
	const char *ref_script;
	const char *chart_script;
	int ref_timeout_s;
	bool ref;
};

/* ---- figures -------------------------------------------------------------------- */

struct summary {
	bool ok;
	double median, min, max, mean;
	int n;
	char err[400]; /* why it is missing, when !ok and non-empty */
};

enum unit { U_MS, U_US, U_MIB_S, U_KIB };

struct metric {
	const char *key;  /* JSON name, shared with mitogen_ref.py */
	const char *what; /* table label */
	enum unit unit;
	bool higher_better;
	double target; /* DESIGN.md section 8; NAN when none */
	const char *floor_what;
	struct summary ours, ref, floor;
};

enum { M_LOCAL_START, M_FORK_START, M_RTT_LOCAL, M_RTT_FORK, M_BULK, M_RSS, M_CONTEXTS, M_COUNT };

/* Kept by hand: clang-format would indent the initialisers with spaces. */
/* clang-format off */
static struct metric metrics[M_COUNT] = {
	[M_LOCAL_START] = {"local_start_ms", "start a local context", U_MS, false, 1.0,
			   "posix_spawn of a static binary until it runs"},
	[M_FORK_START] = {"fork_start_ms", "start a fork context", U_MS, false, 0.3,
			  "fork until the child runs"},
	[M_RTT_LOCAL] = {"rtt_local_us", "call round trip, local child", U_US, false, 12.0,
			 "pipe ping-pong between two processes"},
	/* DESIGN.md names no separate target for a fork child: a call does
	 * not care how its callee was started, so the local one applies. */
	[M_RTT_FORK] = {"rtt_fork_us", "call round trip, fork child", U_US, false, 12.0,
			"pipe ping-pong between two processes"},
	[M_BULK] = {"bulk_mib_s", "64 MiB argument up and back", U_MIB_S, true, 2048.0,
		    "socketpair: write, read whole, write back"},
	[M_RSS] = {"idle_rss_kib", "idle child RSS", U_KIB, false, 1024.0, NULL},
	[M_CONTEXTS] = {"contexts_ms", "start 100 local contexts", U_MS, false, 100.0,
			"N posix_spawns of a static binary until all run"},
};
/* clang-format on */

/* The machine's load when the run started and ended: figures taken beside
 * other work are not figures to quote, and the output says so. */
static double load_start, load_end;

static struct {
	char version[32];
	char python[32];
	char missing[400]; /* why there are no Mitogen figures, or "" */
} ref_info;

/* ---- helpers ---------------------------------------------------------------------- */

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bench_contexts: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Progress goes to stderr so stdout stays the table and the JSON. */
static void note(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bench_contexts: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL)
		die("out of memory for %zu bytes", n);
	return p;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Sorts the samples in place and fills s. */
static void summarise(struct summary *s, double *v, int n)
{
	double sum = 0;
	int i;

	if (n <= 0)
		return;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	for (i = 0; i < n; i++)
		sum += v[i];
	s->ok = true;
	s->n = n;
	s->min = v[0];
	s->max = v[n - 1];
	s->mean = sum / n;
	s->median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Records why a figure is missing; returns rc for "return fail(...)". */
static int fail(struct summary *s, int rc, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static int fail(struct summary *s, int rc, const char *fmt, ...)
{
	char what[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	s->ok = false;
	snprintf(s->err, sizeof(s->err), "%s: %s%s%s", what, mg_strerror(rc),
	         mg_errdetail()[0] ? ": " : "", mg_errdetail());
	note("%s", s->err);
	return rc;
}

static bool wanted(const struct config *cfg, int m)
{
	const char *p = cfg->only, *key = metrics[m].key;
	size_t n = strlen(key);

	if (p == NULL || *p == '\0')
		return true;
	while ((p = strstr(p, key)) != NULL) {
		bool starts = p == cfg->only || p[-1] == ',';
		bool ends = p[n] == '\0' || p[n] == ',';

		if (starts && ends)
			return true;
		p += n;
	}
	return false;
}

/* VmRSS of pid in KiB, or -1. */
static long vm_rss_kib(long pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if ((f = fopen(path, "re")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static bool read_full(int fd, void *buf, size_t n)
{
	char *p = buf;

	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	return true;
}

static bool write_full(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static double loadavg1(void)
{
	double v = NAN;
	FILE *f = fopen("/proc/loadavg", "re");

	if (f != NULL) {
		if (fscanf(f, "%lf", &v) != 1)
			v = NAN;
		fclose(f);
	}
	return v;
}

static void reap(pid_t pid)
{
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

/* ---- floors ------------------------------------------------------------------------ */

/*
 * The static binary of the spawn floor: the smallest ELF executable that
 * writes one byte to its stdout (so the parent knows it runs) and exits,
 * built here rather than found on the system, so the floor does not depend
 * on what the system's tools happen to be (on Debian they are dynamically
 * linked, and the loader would dominate).
 */
static size_t tiny_elf(unsigned char *out, size_t cap)
{
#if defined(__x86_64__)
	/* write(1, base, 1): the ELF header's first byte says "running";
	 * then exit(0). */
	static const unsigned char code[] = {
	        0xbf, 0x01, 0x00, 0x00, 0x00, /* mov edi, 1 */
	        0xbe, 0x00, 0x00, 0x40, 0x00, /* mov esi, 0x400000 */
	        0xba, 0x01, 0x00, 0x00, 0x00, /* mov edx, 1 */
	        0xb8, 0x01, 0x00, 0x00, 0x00, /* mov eax, 1 (write) */
	        0x0f, 0x05,                   /* syscall */
	        0x31, 0xff,                   /* xor edi, edi */
	        0xb8, 0x3c, 0x00, 0x00, 0x00, /* mov eax, 60 (exit) */
	        0x0f, 0x05,                   /* syscall */
	};
	const uint16_t machine = EM_X86_64;
#elif defined(__aarch64__)
	/* write(1, base, 1); exit(0) */
	static const unsigned char code[] = {
	        0x20, 0x00, 0x80, 0xd2, /* mov x0, #1 */
	        0x01, 0x08, 0xa0, 0xd2, /* mov x1, #0x400000 */
	        0x22, 0x00, 0x80, 0xd2, /* mov x2, #1 */
	        0x08, 0x08, 0x80, 0xd2, /* mov x8, #64 (write) */
	        0x01, 0x00, 0x00, 0xd4, /* svc #0 */
	        0x00, 0x00, 0x80, 0xd2, /* mov x0, #0 */
	        0xa8, 0x0b, 0x80, 0xd2, /* mov x8, #93 (exit) */
	        0x01, 0x00, 0x00, 0xd4, /* svc #0 */
	};
	const uint16_t machine = EM_AARCH64;
#else
	static const unsigned char code[1];
	const uint16_t machine = 0;
	return 0;
#endif
	const uint64_t base = 0x400000;
	size_t off = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr), total = off + sizeof(code);
	Elf64_Ehdr eh;
	Elf64_Phdr ph;

	if (total > cap)
		return 0;
	memset(&eh, 0, sizeof(eh));
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_EXEC;
	eh.e_machine = machine;
	eh.e_version = EV_CURRENT;
	eh.e_entry = base + off;
	eh.e_phoff = sizeof(Elf64_Ehdr);
	eh.e_ehsize = sizeof(Elf64_Ehdr);
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = 1;
	memset(&ph, 0, sizeof(ph));
	ph.p_type = PT_LOAD;
	ph.p_flags = PF_R | PF_X;
	ph.p_vaddr = ph.p_paddr = base;
	ph.p_filesz = ph.p_memsz = total;
	ph.p_align = 0x1000;
	memcpy(out, &eh, sizeof(eh));
	memcpy(out + sizeof(eh), &ph, sizeof(ph));
	memcpy(out + off, code, sizeof(code));
	return total;
}

/* Writes the tiny ELF into a private directory; fills path.  Falls back to
 * /bin/echo (one newline; dynamically linked) on other architectures. */
static void floor_binary(char *dir, size_t dsize, char *path, size_t psize)
{
	unsigned char elf[256];
	size_t n = tiny_elf(elf, sizeof(elf));
	int fd;

	dir[0] = '\0';
	if (n == 0) {
		note("no tiny static ELF for this architecture: the spawn floor uses /bin/echo");
		snprintf(path, psize, "/bin/echo");
		return;
	}
	snprintf(dir, dsize, "%s/mg-bench-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(dir) == NULL)
		die("mkdtemp: %s", strerror(errno));
	snprintf(path, psize, "%s/true", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700)) < 0)
		die("%s: %s", path, strerror(errno));
	if (!write_full(fd, elf, n))
		die("%s: %s", path, strerror(errno));
	close(fd);
}

/* Starts path with its stdout on out_fd. */
static pid_t spawn(const char *path, int out_fd)
{
	char *argv[] = {(char *)"floor", NULL};
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int r;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	r = posix_spawn(&pid, path, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r != 0)
		die("posix_spawn %s: %s", path, strerror(r));
	return pid;
}

static void read_bytes(int fd, size_t n)
{
	char buf[1024];

	while (n > 0) {
		size_t k = n < sizeof(buf) ? n : sizeof(buf);

		if (!read_full(fd, buf, k))
			die("floor: a child did not report");
		n -= k;
	}
}

/*
 * A start is timed until the new process has run its first instruction and
 * said so through a pipe, as a context's start is timed until its ready
 * marker arrives; reaping it is not part of the figure, as shutting a
 * context down is not.
 */
static void floor_spawn(const struct config *cfg, const char *path)
{
	double *v = xmalloc(sizeof(double) * (size_t)cfg->floor_reps), t0;
	pid_t pids[1024];
	int i, k, n = cfg->contexts < 1024 ? cfg->contexts : 1024, p[2];

	if (pipe2(p, O_CLOEXEC) != 0)
		die("pipe2: %s", strerror(errno));
	for (i = -10; i < cfg->floor_reps; i++) {
		t0 = now_s();
		pids[0] = spawn(path, p[1]);
		read_bytes(p[0], 1);
		if (i >= 0)
			v[i] = (now_s() - t0) * 1e3;
		reap(pids[0]);
	}
	summarise(&metrics[M_LOCAL_START].floor, v, cfg->floor_reps);
	for (i = 0; i < 5; i++) {
		t0 = now_s();
		for (k = 0; k < n; k++)
			pids[k] = spawn(path, p[1]);
		read_bytes(p[0], (size_t)n);
		v[i] = (now_s() - t0) * 1e3;
		for (k = 0; k < n; k++)
			reap(pids[k]);
	}
	summarise(&metrics[M_CONTEXTS].floor, v, 5);
	close(p[0]);
	close(p[1]);
	free(v);
}

static void floor_fork(const struct config *cfg)
{
	double *v = xmalloc(sizeof(double) * (size_t)cfg->floor_reps), t0;
	int i, p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) != 0)
		die("pipe2: %s", strerror(errno));
	for (i = -10; i < cfg->floor_reps; i++) {
		t0 = now_s();
		if ((pid = fork()) < 0)
			die("fork: %s", strerror(errno));
		if (pid == 0)
			_exit(write(p[1], "x", 1) == 1 ? 0 : 1);
		read_bytes(p[0], 1);
		if (i >= 0)
			v[i] = (now_s() - t0) * 1e3;
		reap(pid);
	}
	summarise(&metrics[M_FORK_START].floor, v, cfg->floor_reps);
	close(p[0]);
	close(p[1]);
	free(v);
}

static void floor_pingpong(const struct config *cfg)
{
	double *v = xmalloc(sizeof(double) * (size_t)cfg->calls), t0;
	int up[2], down[2], i;
	char c = 'x';
	pid_t pid;

	if (pipe2(up, O_CLOEXEC) != 0 || pipe2(down, O_CLOEXEC) != 0)
		die("pipe2: %s", strerror(errno));
	if ((pid = fork()) < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		close(up[1]);
		close(down[0]);
		while (read_full(up[0], &c, 1) && write_full(down[1], &c, 1))
			;
		_exit(0);
	}
	close(up[0]);
	close(down[1]);
	for (i = -cfg->warmup; i < cfg->calls; i++) {
		t0 = now_s();
		if (!write_full(up[1], &c, 1) || !read_full(down[0], &c, 1))
			die("ping-pong floor: the child went away");
		if (i >= 0)
			v[i] = (now_s() - t0) * 1e6;
	}
	close(up[1]);
	close(down[0]);
	reap(pid);
	summarise(&metrics[M_RTT_LOCAL].floor, v, cfg->calls);
	metrics[M_RTT_FORK].floor = metrics[M_RTT_LOCAL].floor;
	free(v);
}

/* Figures measured beside the bulk floor, for the JSON and the notes. */
static struct {
	double oneway_mib_s; /* best one-way streaming rate */
	double fresh_mib_s;  /* the echo with a new buffer per message per side */
} bulk_extra = {NAN, NAN};

/* A buffer in transparent huge pages where the kernel allows them, as the
 * library's large payloads are: fewer TLB misses make copies faster, so a
 * floor in 4 KiB pages would flatter the library. */
static char *huge_alloc(size_t n)
{
	char *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap of %zu bytes: %s", n, strerror(errno));
	(void)madvise(p, n, MADV_HUGEPAGE);
	return p;
}

/*
 * Echo over a socketpair, shaped like mg.echo: the child reads the whole
 * argument before it writes it back, each side with one reused buffer (in
 * huge pages, see huge_alloc()).  Two
 * variants go into the JSON: one-way streaming (the DESIGN.md floor's shape)
 * and the echo with a newly allocated buffer for each message on each side,
 * as a message layer must, which shows what first-touch page faults cost on
 * this machine.
 */
static void floor_socketpair(const struct config *cfg)
{
	size_t size = (size_t)cfg->bulk_mib << 20;
	double *v = xmalloc(sizeof(double) * (size_t)cfg->bulk_rounds), t0, dt;
	char *buf = huge_alloc(size), *fresh, ack = 0;
	int sv[2], i;
	pid_t pid;

	memset(buf, 'x', size);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		die("socketpair: %s", strerror(errno));
	if ((pid = fork()) < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		char mode, *in;

		close(sv[0]);
		/* 'e' echoes the bytes back, 'f' echoes them through a new
		 * buffer, 'o' only acknowledges them. */
		while (read_full(sv[1], &mode, 1)) {
			in = mode == 'f' ? xmalloc(size) : buf;
			if (!read_full(sv[1], in, size))
				break;
			if (mode == 'o' ? !write_full(sv[1], "k", 1) : !write_full(sv[1], in, size))
				break;
			if (in != buf)
				free(in);
		}
		_exit(0);
	}
	close(sv[1]);
	for (i = -1; i < cfg->bulk_rounds; i++) {
		t0 = now_s();
		if (!write_full(sv[0], "e", 1) || !write_full(sv[0], buf, size) ||
		    !read_full(sv[0], buf, size))
			die("socketpair floor: the child went away");
		if (i >= 0)
			v[i] = cfg->bulk_mib / (now_s() - t0);
	}
	summarise(&metrics[M_BULK].floor, v, cfg->bulk_rounds);
	for (i = 0; i < 3; i++) {
		t0 = now_s();
		if (!write_full(sv[0], "o", 1) || !write_full(sv[0], buf, size) ||
		    !read_full(sv[0], &ack, 1))
			die("socketpair floor: the child went away");
		dt = now_s() - t0;
		if (isnan(bulk_extra.oneway_mib_s) || cfg->bulk_mib / dt > bulk_extra.oneway_mib_s)
			bulk_extra.oneway_mib_s = cfg->bulk_mib / dt;
	}
	for (i = 0; i < cfg->bulk_rounds; i++) {
		t0 = now_s();
		fresh = xmalloc(size);
		if (!write_full(sv[0], "f", 1) || !write_full(sv[0], buf, size) ||
		    !read_full(sv[0], fresh, size))
			die("socketpair floor: the child went away");
		free(fresh);
		v[i] = cfg->bulk_mib / (now_s() - t0);
	}
	{
		struct summary f = {0};

		summarise(&f, v, cfg->bulk_rounds);
		bulk_extra.fresh_mib_s = f.median;
	}
	close(sv[0]);
	reap(pid);
	free(v);
	munmap(buf, size);
}

/* ---- ours ------------------------------------------------------------------------------ */

/*
 * mg_call() with a deadline: mg_call_async() + mg_call_wait() is what
 * mg_call() does, and the deadline turns a call that never comes back (a
 * library bug) into a failed figure instead of a run that hangs.  blob
 * NULL calls fn with no arguments, else with one binary argument.
 */
static int call(struct mg_context *c, const char *fn, const void *blob, size_t n, int timeout_ms,
                struct mg_msg **replyp)
{
	struct mg_receiver *rx;
	int rc;

	rc = blob != NULL ? mg_call_async(c, fn, &rx, "y", blob, n) : mg_call_async(c, fn, &rx, "");
	if (rc != 0)
		return rc;
	rc = mg_call_wait(rx, timeout_ms, replyp);
	mg_receiver_free(rx);
	return rc;
}

static int start_one(struct mg_router *r, int method, struct mg_context **cp)
{
	return method == MG_METHOD_FORK ? mg_fork(r, NULL, cp) : mg_local(r, NULL, cp);
}

static void stop_one(struct mg_context *c)
{
	mg_context_shutdown(c, 5000);
	mg_context_free(c);
}

static int ours_start(struct mg_router *r, const struct config *cfg, int method, struct summary *s)
{
	double *v = xmalloc(sizeof(double) * (size_t)cfg->starts), t0;
	struct mg_context *c;
	int i, rc;

	for (i = 0; i < cfg->starts; i++) {
		t0 = now_s();
		if ((rc = start_one(r, method, &c)) != 0) {
			free(v);
			return fail(s, rc, "%s", method == MG_METHOD_FORK ? "mg_fork" : "mg_local");
		}
		v[i] = (now_s() - t0) * 1e3;
		stop_one(c);
	}
	summarise(s, v, cfg->starts);
	free(v);
	return 0;
}

static int ours_rtt(struct mg_router *r, const struct config *cfg, int method, struct summary *s)
{
	double *v = xmalloc(sizeof(double) * (size_t)cfg->calls), t0;
	struct mg_context *c;
	struct mg_msg *reply;
	int i, rc;

	if ((rc = start_one(r, method, &c)) != 0) {
		free(v);
		return fail(s, rc, "%s", method == MG_METHOD_FORK ? "mg_fork" : "mg_local");
	}
	for (i = -cfg->warmup; i < cfg->calls; i++) {
		t0 = now_s();
		if ((rc = call(c, "mg.ping", NULL, 0, 10000, &reply)) != 0)
			break;
		if (i >= 0)
			v[i] = (now_s() - t0) * 1e6;
		mg_msg_free(reply);
	}
	stop_one(c);
	if (rc == 0)
		summarise(s, v, cfg->calls);
	free(v);
	return rc ? fail(s, rc, "mg_call mg.ping") : 0;
}

static int ours_bulk(struct mg_router *r, const struct config *cfg, struct summary *s)
{
	size_t size = (size_t)cfg->bulk_mib << 20, n;
	double *v = xmalloc(sizeof(double) * (size_t)cfg->bulk_rounds), t0;
	char *buf = xmalloc(size);
	struct mg_context *c;
	struct mg_msg *reply;
	const void *p;
	int i, rc;

	memset(buf, 'x', size);
	if ((rc = mg_local(r, NULL, &c)) != 0) {
		free(v);
		free(buf);
		return fail(s, rc, "mg_local");
	}
	/* One untimed round first: it checks the bytes come back intact, and
	 * takes the first-touch page faults of the child's buffers. */
	for (i = -1; i < cfg->bulk_rounds; i++) {
		t0 = now_s();
		if ((rc = call(c, "mg.echo", buf, size, 300000, &reply)) != 0)
			break;
		if (i >= 0)
			v[i] = cfg->bulk_mib / (now_s() - t0);
		rc = mg_msg_read(reply, "y", &p, &n);
		if (rc == 0 && (n != size || (i < 0 && memcmp(p, buf, size) != 0)))
			rc = MG_EDECODE;
		mg_msg_free(reply);
		if (rc != 0)
			break;
	}
	stop_one(c);
	if (rc == 0)
		summarise(s, v, cfg->bulk_rounds);
	free(v);
	free(buf);
	return rc ? fail(s, rc, "mg_call mg.echo of %d MiB", cfg->bulk_mib) : 0;
}

/* The pid of c, from mg.sysinfo's map. */
static int child_pid(struct mg_context *c, int64_t *pidp)
{
	struct mg_msg *reply;
	size_t pairs, i;
	const char *key;
	const void *skip;
	size_t skipn;
	int rc;

	if ((rc = call(c, "mg.sysinfo", NULL, 0, 10000, &reply)) != 0)
		return rc;
	rc = mg_msg_read(reply, "m", &pairs);
	for (i = 0; rc == 0 && i < pairs; i++) {
		if ((rc = mg_msg_read(reply, "s", &key)) != 0)
			break;
		if (strcmp(key, "pid") == 0) {
			rc = mg_msg_read(reply, "i", pidp);
			break;
		}
		rc = mg_msg_read(reply, "v", &skip, &skipn);
	}
	if (rc == 0 && i == pairs)
		rc = MG_EDECODE;
	mg_msg_free(reply);
	return rc;
}

static int ours_rss(struct mg_router *r, const struct config *cfg, struct summary *s)
{
	double *v = xmalloc(sizeof(double) * (size_t)cfg->rss_children);
	struct mg_context *c;
	int64_t pid;
	long kib;
	int i, rc;

	for (i = 0; i < cfg->rss_children; i++) {
		if ((rc = mg_local(r, NULL, &c)) != 0) {
			free(v);
			return fail(s, rc, "mg_local");
		}
		rc = child_pid(c, &pid);
		/* As the Python half does: let the child settle after its call. */
		usleep(50000);
		kib = rc == 0 ? vm_rss_kib((long)pid) : -1;
		stop_one(c);
		if (rc != 0 || kib < 0) {
			free(v);
			return fail(s, rc ? rc : -ESRCH, "mg.sysinfo / VmRSS of the child");
		}
		v[i] = (double)kib;
	}
	summarise(s, v, cfg->rss_children);
	free(v);
	return 0;
}

static int ours_contexts(struct mg_router *r, const struct config *cfg, struct summary *s)
{
	struct mg_context **cs = calloc((size_t)cfg->contexts, sizeof(*cs));
	struct mg_connect_opts o;
	int i, started = 0, rc = 0;
	double t0, dt;

	if (cs == NULL)
		die("out of memory");
	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	t0 = now_s();
	for (i = 0; i < cfg->contexts && rc == 0; i++)
		if ((rc = mg_connect_start(r, &o, &cs[i])) == 0)
			started++;
	for (i = 0; i < started && rc == 0; i++)
		rc = mg_context_wait_ready(cs[i], 60000);
	dt = (now_s() - t0) * 1e3;
	if (rc != 0)
		fail(s, rc, "context %d of %d", i, cfg->contexts);
	/* Shutting down is not part of the figure; start them all, then wait. */
	for (i = 0; i < started; i++)
		mg_context_shutdown(cs[i], 0);
	for (i = 0; i < started; i++)
		stop_one(cs[i]);
	free(cs);
	if (rc == 0)
		summarise(s, &dt, 1);
	return rc;
}

static bool run_ours(const struct config *cfg)
{
	struct mg_router_opts ro;
	struct mg_router *r;
	bool ok = true;

	mg_router_opts_init(&ro);
	/* The 64 MiB argument plus its framing must fit in one message. */
	if ((size_t)cfg->bulk_mib * 2 << 20 > ro.max_message_size)
		ro.max_message_size = (size_t)cfg->bulk_mib * 2 << 20;
	if (mg_router_new(&ro, &r) != 0)
		die("mg_router_new failed");
#define RUN(m, expr)                                          \
	do {                                                  \
		if (wanted(cfg, m)) {                         \
			note("ours: %s ...", metrics[m].key); \
			if ((expr) != 0)                      \
				ok = false;                   \
		}                                             \
	} while (0)
	RUN(M_LOCAL_START, ours_start(r, cfg, MG_METHOD_LOCAL, &metrics[M_LOCAL_START].ours));
	RUN(M_FORK_START, ours_start(r, cfg, MG_METHOD_FORK, &metrics[M_FORK_START].ours));
	RUN(M_RTT_LOCAL, ours_rtt(r, cfg, MG_METHOD_LOCAL, &metrics[M_RTT_LOCAL].ours));
	RUN(M_RTT_FORK, ours_rtt(r, cfg, MG_METHOD_FORK, &metrics[M_RTT_FORK].ours));
	RUN(M_BULK, ours_bulk(r, cfg, &metrics[M_BULK].ours));
	RUN(M_RSS, ours_rss(r, cfg, &metrics[M_RSS].ours));
	RUN(M_CONTEXTS, ours_contexts(r, cfg, &metrics[M_CONTEXTS].ours));
#undef RUN
	mg_router_free(r);
	return ok;
}

/* ---- the Mitogen half ------------------------------------------------------------------ */

/*
 * The Python half's JSON, flattened: every leaf under a dotted path
 * ("metrics.rtt_local_us.median").  A small reader is enough for a document
 * whose shape we wrote ourselves; anything it does not understand ends the
 * parse, and the bench then reports the Mitogen figures as missing.
 */
struct leaf {
	char path[128];
	bool is_num;
	double num;
	char str[400];
};

struct jdoc {
	struct leaf *v;
	size_t n, cap;
};

static const char *json_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* Reads a JSON string at p (on its quote) into out; returns the end. */
static const char *json_str(const char *p, char *out, size_t cap)
{
	size_t n = 0;

	if (*p++ != '"')
		return NULL;
	while (*p != '"') {
		char c = *p++;

		if (c == '\0')
			return NULL;
		if (c == '\\') {
			c = *p++;
			switch (c) {
			case 'n':
				c = '\n';
				break;
			case 't':
				c = '\t';
				break;
			case 'r':
				c = '\r';
				break;
			case 'b':
				c = '\b';
				break;
			case 'f':
				c = '\f';
				break;
			case 'u':
				/* Tracebacks are ASCII; anything else shows as '?'. */
				if (strlen(p) < 4)
					return NULL;
				p += 4;
				c = '?';
				break;
			case '\0':
				return NULL;
			default:
				break; /* '"', '\\', '/' stand for themselves */
			}
		}
		if (n + 1 < cap)
			out[n++] = c;
	}
	out[n] = '\0';
	return p + 1;
}

static struct leaf *json_leaf(struct jdoc *d, const char *path)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 32;
		d->v = realloc(d->v, d->cap * sizeof(*d->v));
		if (d->v == NULL)
			die("out of memory");
	}
	memset(&d->v[d->n], 0, sizeof(d->v[0]));
	snprintf(d->v[d->n].path, sizeof(d->v[0].path), "%s", path);
	return &d->v[d->n++];
}

static const char *json_value(const char *p, const char *path, struct jdoc *d, int depth)
{
	char key[128], sub[256];
	struct leaf *l;
	char *end;
	int i;

	p = json_ws(p);
	if (depth > 16)
		return NULL;
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';

		p = json_ws(p + 1);
		for (i = 0; *p != close; i++) {
			if (close == '}') {
				if ((p = json_str(p, key, sizeof(key))) == NULL)
					return NULL;
				p = json_ws(p);
				if (*p++ != ':')
					return NULL;
			} else {
				snprintf(key, sizeof(key), "%d", i);
			}
			if (snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", key) >=
			    (int)sizeof(sub))
				return NULL; /* a path this deep is not one we read */
			if ((p = json_value(p, sub, d, depth + 1)) == NULL)
				return NULL;
			p = json_ws(p);
			if (*p == ',')
				p = json_ws(p + 1);
			else if (*p != close)
				return NULL;
		}
		return p + 1;
	}
	if (*p == '"') {
		l = json_leaf(d, path);
		return json_str(p, l->str, sizeof(l->str));
	}
	if (strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
		l = json_leaf(d, path);
		l->is_num = true;
		l->num = *p == 't';
		return p + (*p == 't' ? 4 : 5);
	}
	if (strncmp(p, "null", 4) == 0)
		return p + 4;
	l = json_leaf(d, path);
	l->is_num = true;
	l->num = strtod(p, &end);
	return end == p ? NULL : end;
}

static const struct leaf *json_get(const struct jdoc *d, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static const struct leaf *json_get(const struct jdoc *d, const char *fmt, ...)
{
	char path[256];
	va_list ap;
	size_t i;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	for (i = 0; i < d->n; i++)
		if (strcmp(d->v[i].path, path) == 0)
			return &d->v[i];
	return NULL;
}

/* Runs argv with stdout captured, for at most timeout_s; returns what it
 * printed (caller frees) and its wait status in *statusp. */
static char *run_capture(char *const argv[], int timeout_s, int *statusp)
{
	size_t len = 0, cap = 1 << 16;
	char *out = xmalloc(cap);
	double deadline = now_s() + timeout_s;
	bool killed = false;
	int fds[2];
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) != 0)
		die("pipe2: %s", strerror(errno));
	if ((pid = fork()) < 0)
		die("fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(fds[1], 1);
		execv(argv[0], argv);
		fprintf(stderr, "bench_contexts: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
		int left = (int)((deadline - now_s()) * 1000);
		ssize_t r;

		if (left <= 0 && !killed) {
			note("%s ran past %d s: stopping it", argv[1], timeout_s);
			kill(pid, SIGTERM);
			killed = true;
			deadline = now_s() + 5;
			continue;
		}
		if (left <= 0) {
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&pfd, 1, left) <= 0)
			continue;
		if (len + 4096 > cap && (out = realloc(out, cap *= 2)) == NULL)
			die("out of memory");
		r = read(fds[0], out + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	out[len] = '\0';
	close(fds[0]);
	while (waitpid(pid, statusp, 0) < 0 && errno == EINTR)
		;
	return out;
}

static void run_ref(const struct config *cfg)
{
	char a[8][16], only[512];
	char *argv[24];
	const struct leaf *l;
	struct jdoc d = {0};
	const char *json;
	char *out;
	int status, i, k = 0;

	if (access(cfg->python, X_OK) != 0) {
		snprintf(ref_info.missing, sizeof(ref_info.missing), "%s: %s", cfg->python,
		         strerror(errno));
		return;
	}
	if (access(cfg->ref_script, R_OK) != 0) {
		snprintf(ref_info.missing, sizeof(ref_info.missing), "%s: %s", cfg->ref_script,
		         strerror(errno));
		return;
	}
	only[0] = '\0';
	for (i = 0; i < M_COUNT; i++)
		if (wanted(cfg, i))
			snprintf(only + strlen(only), sizeof(only) - strlen(only), "%s%s",
			         only[0] ? "," : "", metrics[i].key);
	snprintf(a[0], sizeof(a[0]), "%d", cfg->starts);
	snprintf(a[1], sizeof(a[1]), "%d", cfg->calls);
	snprintf(a[2], sizeof(a[2]), "%d", cfg->warmup);
	snprintf(a[3], sizeof(a[3]), "%d", cfg->bulk_mib);
	snprintf(a[4], sizeof(a[4]), "%d", cfg->bulk_rounds);
	snprintf(a[5], sizeof(a[5]), "%d", cfg->rss_children);
	snprintf(a[6], sizeof(a[6]), "%d", cfg->contexts);
	argv[k++] = (char *)cfg->python;
	argv[k++] = (char *)cfg->ref_script;
	argv[k++] = (char *)"--starts", argv[k++] = a[0];
	argv[k++] = (char *)"--calls", argv[k++] = a[1];
	argv[k++] = (char *)"--warmup", argv[k++] = a[2];
	argv[k++] = (char *)"--bulk-mib", argv[k++] = a[3];
	argv[k++] = (char *)"--bulk-rounds", argv[k++] = a[4];
	argv[k++] = (char *)"--rss-children", argv[k++] = a[5];
	argv[k++] = (char *)"--contexts", argv[k++] = a[6];
	argv[k++] = (char *)"--only", argv[k++] = only;
	argv[k] = NULL;

	note("Mitogen: running %s %s ...", cfg->python, cfg->ref_script);
	out = run_capture(argv, cfg->ref_timeout_s, &status);
	/* The document is the last line that starts with '{'. */
	for (json = NULL, i = 0; out[i] != '\0'; i++)
		if (out[i] == '{' && (i == 0 || out[i - 1] == '\n'))
			json = out + i;
	if (json == NULL || json_value(json, "", &d, 0) == NULL) {
		snprintf(ref_info.missing, sizeof(ref_info.missing),
		         "%s printed no JSON document (exit status %d)", cfg->ref_script,
		         WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		goto out;
	}
	if ((l = json_get(&d, "errors.import")) != NULL) {
		snprintf(ref_info.missing, sizeof(ref_info.missing), "%s", l->str);
		goto out;
	}
	if ((l = json_get(&d, "version")) != NULL)
		snprintf(ref_info.version, sizeof(ref_info.version), "%.31s", l->str);
	if ((l = json_get(&d, "python")) != NULL)
		snprintf(ref_info.python, sizeof(ref_info.python), "%.31s", l->str);
	for (i = 0; i < M_COUNT; i++) {
		struct summary *s = &metrics[i].ref;
		const struct leaf *med = json_get(&d, "metrics.%s.median", metrics[i].key);

		if (med != NULL && med->is_num) {
			s->ok = true;
			s->median = med->num;
			s->min =
			        (l = json_get(&d, "metrics.%s.min", metrics[i].key)) ? l->num : NAN;
			s->max =
			        (l = json_get(&d, "metrics.%s.max", metrics[i].key)) ? l->num : NAN;
			s->mean = (l = json_get(&d, "metrics.%s.mean", metrics[i].key)) ? l->num
			                                                                : NAN;
			s->n = (l = json_get(&d, "metrics.%s.n", metrics[i].key)) ? (int)l->num : 0;
		} else if ((l = json_get(&d, "errors.%s", metrics[i].key)) != NULL) {
			snprintf(s->err, sizeof(s->err), "%s", l->str);
		}
	}
out:
	if (ref_info.missing[0])
		note("no Mitogen figures: %s", ref_info.missing);
	free(d.v);
	free(out);
}

/* ---- output ------------------------------------------------------------------------------ */

static const char *unit_name(enum unit u)
{
	static const char *const names[] = {"ms", "us", "MiB/s", "KiB"};

	return names[u];
}

/* A value in its unit, scaled for reading (KiB shown as MiB past 1 MiB,
 * MiB/s as GiB/s past 1 GiB/s). */
static const char *fmt_value(char *buf, size_t size, double v, enum unit u)
{
	const char *unit = unit_name(u);

	if ((u == U_KIB || u == U_MIB_S) && v >= 1024) {
		v /= 1024;
		unit = u == U_KIB ? "MiB" : "GiB/s";
	}
	if (isnan(v))
		snprintf(buf, size, "-");
	else if (v >= 100)
		snprintf(buf, size, "%.0f %s", v, unit);
	else if (v >= 10)
		snprintf(buf, size, "%.1f %s", v, unit);
	else if (v >= 1)
		snprintf(buf, size, "%.2f %s", v, unit);
	else
		snprintf(buf, size, "%.3f %s", v, unit);
	return buf;
}

/* How many times better a is than b (>1: a is better). */
static double better(const struct metric *m, double a, double b)
{
	return m->higher_better ? a / b : b / a;
}

static bool met(const struct metric *m)
{
	return m->higher_better ? m->ours.median >= m->target : m->ours.median <= m->target;
}

/* A table cell: the median, or why there is none. */
static void cell(char *buf, size_t size, const struct summary *s, enum unit u, const char *failed)
{
	if (s->ok)
		fmt_value(buf, size, s->median, u);
	else
		snprintf(buf, size, "%s", s->err[0] ? failed : "-");
}

static void print_table(FILE *f)
{
	char ours[32], ref[32], flo[32], tgt[40], vs_ref[32], vs_floor[32], head[48];
	int i;

	snprintf(head, sizeof(head), "Mitogen %s", ref_info.version[0] ? ref_info.version : "");
	fprintf(f, "\n%-30s %12s %14s %12s %12s %11s %10s  %s\n", "what", "mitogen-c", head,
	        "floor", "target", "vs Mitogen", "vs floor", "target");
	for (i = 0; i < M_COUNT; i++) {
		const struct metric *m = &metrics[i];

		if (!m->ours.ok && !m->ref.ok && !m->floor.ok && !m->ours.err[0] && !m->ref.err[0])
			continue;
		cell(ours, sizeof(ours), &m->ours, m->unit, "FAILED");
		cell(ref, sizeof(ref), &m->ref, m->unit, "failed");
		cell(flo, sizeof(flo), &m->floor, m->unit, "-");
		fmt_value(vs_ref, sizeof(vs_ref), m->target, m->unit);
		snprintf(tgt, sizeof(tgt), "%s %s", m->higher_better ? ">=" : "<=", vs_ref);
		snprintf(vs_ref, sizeof(vs_ref), "-");
		snprintf(vs_floor, sizeof(vs_floor), "-");
		if (m->ours.ok && m->ref.ok)
			snprintf(vs_ref, sizeof(vs_ref), "%.1fx",
			         better(m, m->ours.median, m->ref.median));
		if (m->ours.ok && m->floor.ok)
			snprintf(vs_floor, sizeof(vs_floor), "%.1fx",
			         1 / better(m, m->ours.median, m->floor.median));
		fprintf(f, "%-30s %12s %14s %12s %12s %11s %10s  %s\n", m->what, ours, ref, flo,
		        tgt, vs_ref, vs_floor, m->ours.ok ? (met(m) ? "met" : "MISSED") : "-");
	}
	fprintf(f, "\nvs Mitogen: how many times better ours is; vs floor: how many times the OS "
	           "floor ours costs.\n");
	for (i = 0; i < M_COUNT; i++) {
		if (metrics[i].ours.err[0])
			fprintf(f, "mitogen-c %s: %s\n", metrics[i].key, metrics[i].ours.err);
		if (metrics[i].ref.err[0])
			fprintf(f, "Mitogen %s: %s\n", metrics[i].key, metrics[i].ref.err);
	}
	if (!isnan(bulk_extra.fresh_mib_s)) {
		char a[32], b[32];

		fprintf(f, "socketpair: %s one way; the echo with a new buffer per message: %s\n",
		        fmt_value(a, sizeof(a), bulk_extra.oneway_mib_s, U_MIB_S),
		        fmt_value(b, sizeof(b), bulk_extra.fresh_mib_s, U_MIB_S));
	}
	if (ref_info.missing[0])
		fprintf(f, "Mitogen figures missing: %s\n", ref_info.missing);
	if (load_start > 0.5 || load_end > 0.5)
		fprintf(f,
		        "warning: load average %.2f at the start, %.2f at the end: other work "
		        "shared the CPUs\n",
		        load_start, load_end);
	fputc('\n', f);
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_number(FILE *f, double v)
{
	if (isnan(v) || isinf(v))
		fprintf(f, "null");
	else
		fprintf(f, "%.6g", v);
}

static void json_summary(FILE *f, const char *name, const struct summary *s)
{
	fprintf(f, ",\n      ");
	json_string(f, name);
	if (!s->ok) {
		fprintf(f, ": null");
		return;
	}
	fprintf(f, ": {\"median\": ");
	json_number(f, s->median);
	fprintf(f, ", \"min\": ");
	json_number(f, s->min);
	fprintf(f, ", \"max\": ");
	json_number(f, s->max);
	fprintf(f, ", \"mean\": ");
	json_number(f, s->mean);
	fprintf(f, ", \"n\": %d}", s->n);
}

static void print_json(FILE *f, const struct config *cfg)
{
	struct utsname u;
	time_t t = time(NULL);
	char when[32];
	int i, first = 1;

	uname(&u);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	fprintf(f, "{\n  \"bench\": \"contexts\",\n  \"time\": \"%s\",\n", when);
	fprintf(f, "  \"machine\": {\"os\": ");
	json_string(f, u.sysname);
	fprintf(f, ", \"kernel\": ");
	json_string(f, u.release);
	fprintf(f, ", \"arch\": ");
	json_string(f, u.machine);
	fprintf(f, ", \"cpus\": %ld, \"loadavg_start\": ", sysconf(_SC_NPROCESSORS_ONLN));
	json_number(f, load_start);
	fprintf(f, ", \"loadavg_end\": ");
	json_number(f, load_end);
	fprintf(f, "},\n");
	fprintf(f,
	        "  \"config\": {\"starts\": %d, \"calls\": %d, \"warmup\": %d, "
	        "\"bulk_mib\": %d, \"bulk_rounds\": %d, \"rss_children\": %d, "
	        "\"contexts\": %d},\n",
	        cfg->starts, cfg->calls, cfg->warmup, cfg->bulk_mib, cfg->bulk_rounds,
	        cfg->rss_children, cfg->contexts);
	fprintf(f, "  \"mitogen\": ");
	if (ref_info.missing[0]) {
		fprintf(f, "{\"missing\": ");
		json_string(f, ref_info.missing);
		fprintf(f, "},\n");
	} else {
		fprintf(f, "{\"version\": ");
		json_string(f, ref_info.version);
		fprintf(f, ", \"python\": ");
		json_string(f, ref_info.python);
		fprintf(f, "},\n");
	}
	fprintf(f, "  \"socketpair_oneway_mib_s\": ");
	json_number(f, bulk_extra.oneway_mib_s);
	fprintf(f, ",\n  \"socketpair_echo_fresh_buffers_mib_s\": ");
	json_number(f, bulk_extra.fresh_mib_s);
	fprintf(f, ",\n  \"metrics\": {");
	for (i = 0; i < M_COUNT; i++) {
		const struct metric *m = &metrics[i];

		if (!m->ours.ok && !m->ref.ok && !m->floor.ok && !m->ours.err[0] && !m->ref.err[0])
			continue;
		fprintf(f, "%s\n    ", first ? "" : ",");
		first = 0;
		json_string(f, m->key);
		fprintf(f, ": {\n      \"what\": ");
		json_string(f, m->what);
		fprintf(f, ",\n      \"unit\": \"%s\", \"better\": \"%s\", \"target\": ",
		        unit_name(m->unit), m->higher_better ? "higher" : "lower");
		json_number(f, m->target);
		json_summary(f, "ours", &m->ours);
		json_summary(f, "mitogen", &m->ref);
		json_summary(f, "floor", &m->floor);
		fprintf(f, ",\n      \"floor_what\": ");
		if (m->floor_what != NULL)
			json_string(f, m->floor_what);
		else
			fprintf(f, "null");
		fprintf(f, ",\n      \"vs_mitogen\": ");
		json_number(f, m->ours.ok && m->ref.ok ? better(m, m->ours.median, m->ref.median)
		                                       : NAN);
		fprintf(f, ", \"vs_floor\": ");
		json_number(f, m->ours.ok && m->floor.ok
		                       ? 1 / better(m, m->ours.median, m->floor.median)
		                       : NAN);
		fprintf(f, ", \"target_met\": %s",
		        m->ours.ok ? (met(m) ? "true" : "false") : "null");
		if (m->ours.err[0]) {
			fprintf(f, ",\n      \"ours_error\": ");
			json_string(f, m->ours.err);
		}
		if (m->ref.err[0]) {
			fprintf(f, ",\n      \"mitogen_error\": ");
			json_string(f, m->ref.err);
		}
		fprintf(f, "\n    }");
	}
	fprintf(f, "\n  }\n}\n");
}

/* Writes the figures as a tab-separated table and runs gnuplot on it. */
static void render_chart(const struct config *cfg)
{
	char dat[] = "/tmp/mg-bench-chart-XXXXXX", cmd[PATH_MAX * 3 + 256], title[128];
	FILE *f;
	int fd, i, rc;

	if ((fd = mkstemp(dat)) < 0 || (f = fdopen(fd, "w")) == NULL)
		die("mkstemp: %s", strerror(errno));
	for (i = 0; i < M_COUNT; i++) {
		const struct metric *m = &metrics[i];

		if (!m->ours.ok && !m->ref.ok)
			continue;
		fprintf(f, "%s\\n(%s, %s is better)\t", m->what, unit_name(m->unit),
		        m->higher_better ? "higher" : "lower");
		if (m->ours.ok)
			fprintf(f, "%g\t", m->ours.median);
		else
			fprintf(f, "-\t");
		if (m->ref.ok)
			fprintf(f, "%g\t", m->ref.median);
		else
			fprintf(f, "-\t");
		if (m->floor.ok)
			fprintf(f, "%g\t", m->floor.median);
		else
			fprintf(f, "-\t");
		fprintf(f, "%g\n", m->target);
	}
	fclose(f);
	snprintf(title, sizeof(title), "Mitogen %s",
	         ref_info.version[0] ? ref_info.version : "(not measured)");
	snprintf(cmd, sizeof(cmd), "gnuplot -e \"datafile='%s'; outfile='%s'; refname='%s'\" '%s'",
	         dat, cfg->chart_path, title, cfg->chart_script);
	rc = system(cmd);
	if (rc != 0)
		note("gnuplot failed (status %d): no chart; is gnuplot-nox installed?", rc);
	else
		note("chart written to %s", cfg->chart_path);
	unlink(dat);
}

/* ---- main ------------------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
	        "usage: bench_contexts [options]\n"
	        "  --json FILE       also write the JSON document to FILE\n"
	        "  --chart FILE.png  render the figures with gnuplot\n"
	        "  --quick           fewer repetitions (a smoke run, not figures to quote)\n"
	        "  --no-mitogen      skip the Python Mitogen half\n"
	        "  --python PATH     interpreter for the Mitogen half (/usr/bin/python3)\n"
	        "  --only LIST       comma-separated metric keys (local_start_ms, fork_start_ms,\n"
	        "                    rtt_local_us, rtt_fork_us, bulk_mib_s, idle_rss_kib,\n"
	        "                    contexts_ms)\n"
	        "  --starts N --calls N --warmup N --bulk-mib N --bulk-rounds N\n"
	        "  --rss-children N --contexts N --timeout SECONDS (the Mitogen half)\n"
	        "  --ref-script PATH --chart-script PATH (default: beside this source)\n");
	exit(2);
}

static int positive(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end != '\0' || v <= 0 || v > 10000000)
		usage();
	return (int)v;
}

int main(int argc, char **argv)
{
	static char ref_script[PATH_MAX], chart_script[PATH_MAX], contexts_what[64];
	static const struct option longopts[] = {
	        {"json", required_argument, NULL, 'j'},
	        {"chart", required_argument, NULL, 'c'},
	        {"quick", no_argument, NULL, 'q'},
	        {"no-mitogen", no_argument, NULL, 'N'},
	        {"python", required_argument, NULL, 'p'},
	        {"only", required_argument, NULL, 'o'},
	        {"starts", required_argument, NULL, 1},
	        {"calls", required_argument, NULL, 2},
	        {"warmup", required_argument, NULL, 3},
	        {"bulk-mib", required_argument, NULL, 4},
	        {"bulk-rounds", required_argument, NULL, 5},
	        {"rss-children", required_argument, NULL, 6},
	        {"contexts", required_argument, NULL, 7},
	        {"timeout", required_argument, NULL, 8},
	        {"ref-script", required_argument, NULL, 9},
	        {"chart-script", required_argument, NULL, 10},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	struct config cfg = {
	        .starts = 20,
	        .calls = 20000,
	        .warmup = 1000,
	        .bulk_mib = 64,
	        .bulk_rounds = 5,
	        .rss_children = 3,
	        .contexts = 100,
	        .floor_reps = 200,
	        .python = "/usr/bin/python3",
	        .ref_timeout_s = 1800,
	        .ref = true,
	};
	char dir[PATH_MAX], bin[PATH_MAX + 8];
	bool ok;
	int opt;

	bench_source_path(ref_script, sizeof(ref_script), "mitogen_ref.py");
	bench_source_path(chart_script, sizeof(chart_script), "chart.gnuplot");
	cfg.ref_script = ref_script;
	cfg.chart_script = chart_script;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			cfg.json_path = optarg;
			break;
		case 'c':
			cfg.chart_path = optarg;
			break;
		case 'q':
			cfg.starts = 5, cfg.calls = 2000, cfg.warmup = 200, cfg.bulk_rounds = 1;
			cfg.rss_children = 1, cfg.contexts = 20, cfg.floor_reps = 50;
			break;
		case 'N':
			cfg.ref = false;
			break;
		case 'p':
			cfg.python = optarg;
			break;
		case 'o':
			cfg.only = optarg;
			break;
		case 1:
			cfg.starts = positive(optarg);
			break;
		case 2:
			cfg.calls = positive(optarg);
			break;
		case 3:
			cfg.warmup = positive(optarg);
			break;
		case 4:
			cfg.bulk_mib = positive(optarg);
			break;
		case 5:
			cfg.bulk_rounds = positive(optarg);
			break;
		case 6:
			cfg.rss_children = positive(optarg);
			break;
		case 7:
			cfg.contexts = positive(optarg);
			break;
		case 8:
			cfg.ref_timeout_s = positive(optarg);
			break;
		case 9:
			cfg.ref_script = optarg;
			break;
		case 10:
			cfg.chart_script = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	snprintf(contexts_what, sizeof(contexts_what), "start %d local contexts", cfg.contexts);
	metrics[M_CONTEXTS].what = contexts_what;
	signal(SIGPIPE, SIG_IGN);
	load_start = loadavg1();

	/* Floors first, in a process that has no threads yet: fork and spawn
	 * are then as cheap as this program can make them. */
	note("floors ...");
	floor_binary(dir, sizeof(dir), bin, sizeof(bin));
	if (wanted(&cfg, M_LOCAL_START) || wanted(&cfg, M_CONTEXTS))
		floor_spawn(&cfg, bin);
	if (dir[0]) {
		unlink(bin);
		rmdir(dir);
	}
	if (wanted(&cfg, M_FORK_START))
		floor_fork(&cfg);
	if (wanted(&cfg, M_RTT_LOCAL) || wanted(&cfg, M_RTT_FORK))
		floor_pingpong(&cfg);
	if (wanted(&cfg, M_BULK))
		floor_socketpair(&cfg);

	ok = run_ours(&cfg);
	if (cfg.ref)
		run_ref(&cfg);
	else
		snprintf(ref_info.missing, sizeof(ref_info.missing), "not run (--no-mitogen)");
	load_end = loadavg1();

	print_table(stdout);
	print_json(stdout, &cfg);
	if (cfg.json_path != NULL) {
		FILE *f = fopen(cfg.json_path, "w");

		if (f == NULL)
			die("%s: %s", cfg.json_path, strerror(errno));
		print_json(f, &cfg);
		if (fclose(f) != 0)
			die("%s: %s", cfg.json_path, strerror(errno));
	}
	if (cfg.chart_path != NULL)
		render_chart(&cfg);
	return ok ? 0 : 1;
}
