/*
 * test_unpack.c: mitogen-unpack (agent/unpack.c) and the pack build tool
 * (agent/pack.c).  unpack.c's inflate() and branch_filter.h are compiled into
 * this suite and fed streams from real compressors (gzip, zopfli, python's
 * zlib) and malformed ones, each in a buffer of its exact size so that ASan
 * sees any access outside it.  pack.c's filter is run as the built mg_pack.
 * The built unpacker runs for real: it unpacks this very program, which
 * (with CHILD_ENV set) reports what it sees instead of running the suite.
 */
#define UNPACK_NO_START
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function" /* its main line, unused here */
#include "../agent/unpack.c"
#pragma GCC diagnostic pop
/* unpack.c spells these flags itself; the system headers define them too. */
#undef O_RDONLY
#undef O_WRONLY
#undef O_CREAT
#undef O_EXCL
#undef O_NOFOLLOW
#undef O_CLOEXEC
#undef MFD_CLOEXEC
#undef AT_EMPTY_PATH

#include <elf.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "connect_util.h"

#define CHILD_ENV "MG_TEST_UNPACK_CHILD"

struct buf {
	uint8_t *p;
	size_t n;
};

static struct buf fd_slurp(int fd)
{
	struct buf b = {malloc(65536), 0};
	size_t cap = 65536;
	ssize_t r;

	while (b.p != NULL && (r = read(fd, b.p + b.n, cap - b.n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		if ((b.n += (size_t)r) == cap)
			b.p = realloc(b.p, cap *= 2);
	}
	if (b.p == NULL)
		abort();
	return b;
}

/* The file's bytes in a buffer of exactly its size (ASan bounds). */
static struct buf file_get(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct buf b;

	if (fd < 0)
		mg_test_fail(__FILE__, __LINE__, "%s: %s", path, strerror(errno));
	b = fd_slurp(fd);
	close(fd);
	b.p = realloc(b.p, b.n + !b.n);
	return b;
}

static void write_full(int fd, const void *p, size_t n)
{
	while (n > 0) {
		ssize_t r = write(fd, p, n);

		if (r <= 0)
			return;
		p = (const char *)p + r;
		n -= (size_t)r;
	}
}

static void file_put(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "we");

	CHECK(f != NULL && fwrite(p, 1, n, f) == n && fclose(f) == 0);
}

/* When mitogen-unpack starts this program (CHILD_ENV set), it is the
 * program unpacked: it writes its argv, /proc/self/exe's target, the mode
 * of the file argv[0] names, its image and the rest of stdin to stdout, as
 * (u32 length, bytes) records, removes argv[0] as the agent would when
 * given --mitogen-rm, and ends before the runner starts. */
__attribute__((constructor)) static void unpacked_main(void)
{
	struct buf rec[5];
	char link[4096], mode[16] = "gone", *arg1;
	struct stat st;
	ssize_t n;
	int fd;

	if (getenv(CHILD_ENV) == NULL)
		return;
	if ((fd = open("/proc/self/cmdline", O_RDONLY)) < 0)
		_exit(125);
	rec[0] = fd_slurp(fd);
	close(fd);
	n = readlink("/proc/self/exe", link, sizeof(link));
	rec[1] = (struct buf){(uint8_t *)link, n > 0 ? (size_t)n : 0};
	if (stat((char *)rec[0].p, &st) == 0)
		snprintf(mode, sizeof(mode), "%o", st.st_mode & 07777);
	rec[2] = (struct buf){(uint8_t *)mode, strlen(mode)};
	if ((fd = open("/proc/self/exe", O_RDONLY)) < 0)
		_exit(125);
	rec[3] = fd_slurp(fd);
	rec[4] = fd_slurp(0);
	arg1 = (char *)rec[0].p + strlen((char *)rec[0].p) + 1;
	if (arg1 < (char *)rec[0].p + rec[0].n && strcmp(arg1, "--mitogen-rm") == 0)
		unlink((char *)rec[0].p);
	for (int i = 0; i < 5; i++) {
		uint32_t len = (uint32_t)rec[i].n;

		write_full(1, &len, 4);
		write_full(1, rec[i].p, rec[i].n);
	}
	_exit(0);
}

/* The build's file name (agent/name); borrowed until the next call. */
static const char *built(const char *name)
{
	static char path[4200];

	snprintf(path, sizeof(path), "%s/agent/%s", cu_build_dir(), name);
	if (access(path, R_OK) != 0)
		mg_test_fail(__FILE__, __LINE__, "%s is not built", path);
	return path;
}

static __attribute__((format(printf, 1, 2))) void sh(const char *fmt, ...)
{
	char cmd[16384];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st != 0)
		mg_test_fail(__FILE__, __LINE__, "`%s` exited with status %d", cmd, st);
}

static void sandbox(char *root)
{
	strcpy(root, "/tmp/mg-unpack-test.XXXXXX");
	CHECK(mkdtemp(root) != NULL);
}

static uint64_t rng_state = 88172645463325252ull;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 32);
}

/* n bytes: random (alphabet NULL), or drawn from alphabet. */
static struct buf data_random(size_t n, const char *alphabet)
{
	struct buf b = {malloc(n + !n), n};

	for (size_t i = 0; i < n; i++)
		b.p[i] = alphabet ? (uint8_t)alphabet[rng() % strlen(alphabet)] : (uint8_t)rng();
	return b;
}

static struct buf data_text(size_t n)
{
	static const char *words[] = {"the ",   "context ", "router ", "message ",
	                              "agent ", "stream ",  "of ",     "is ",
	                              "a ",     "handle ",  ".\n",     ", "};
	struct buf b = {malloc(n + !n), n};

	for (size_t i = 0; i < n;)
		for (const char *w = words[rng() % 12]; *w != '\0' && i < n; w++)
			b.p[i++] = (uint8_t)*w;
	return b;
}

/* Python's zlib in a given mode, raw deflate: "stored" (level 0), "fixed"
 * (Z_FIXED) or "flush" (Huffman-only blocks each followed by an empty
 * stored block: Z_SYNC_FLUSH every 997 bytes). */
#define PY_DEFLATE                                                                       \
	"import sys, zlib\n"                                                             \
	"m, d = sys.argv[1], open(sys.argv[2], \"rb\").read()\n"                         \
	"st = {\"fixed\": zlib.Z_FIXED, \"flush\": zlib.Z_HUFFMAN_ONLY}.get(m, 0)\n"     \
	"c = zlib.compressobj(0 if m == \"stored\" else 9, zlib.DEFLATED, -15, 9, st)\n" \
	"o, step = b\"\", 997 if m == \"flush\" else len(d) + 1\n"                       \
	"for i in range(0, len(d), step):\n"                                             \
	"    o += c.compress(d[i:i + step])\n"                                           \
	"    o += c.flush(zlib.Z_SYNC_FLUSH) if m == \"flush\" else b\"\"\n"             \
	"open(sys.argv[3], \"wb\").write(o + c.flush())\n"

/* d deflated (raw) by how: gzip1, gzip9, zopfli (gzip's format, stripped
 * by mg_pack as the build does) or one of PY_DEFLATE's modes; or pack.c's
 * branch filter of d (how "filter"). */
static struct buf transform(const char *root, const char *how, struct buf d)
{
	char in[300], out[300];

	snprintf(in, sizeof(in), "%s/in", root);
	snprintf(out, sizeof(out), "%s/out", root);
	file_put(in, d.p, d.n);
	if (strcmp(how, "gzip1") == 0 || strcmp(how, "gzip9") == 0)
		sh("gzip -n -%c -c %s > %s.gz", how[4], in, in);
	else if (strcmp(how, "zopfli") == 0)
		sh("zopfli --i1 --gzip -c %s > %s.gz", in, in);
	else if (strcmp(how, "filter") == 0)
		sh("%s filter %s %s", built("mg_pack"), in, out);
	else
		sh("/usr/bin/python3 -c '%s' %s %s %s", PY_DEFLATE, how, in, out);
	if (how[0] == 'g' || how[0] == 'z')
		sh("%s strip %s.gz %s", built("mg_pack"), in, out);
	return file_get(out);
}

/* inflate() of z into a buffer of exactly cap bytes; *outp (caller frees)
 * unless NULL. */
static int inflate_buf(struct buf z, size_t cap, uint8_t **outp)
{
	uint8_t *in = malloc(z.n + !z.n), *out = malloc(cap + !cap);
	struct inflate s = {in, in + z.n, 0, 0, out, 0, cap, 0};
	int r;

	memcpy(in, z.p, z.n);
	r = inflate(&s);
	CHECK(s.pos <= cap);
	CHECK(r == 0 || r == -1);
	free(in);
	if (outp != NULL)
		*outp = out;
	else
		free(out);
	return r;
}

/* d comes back from its deflate by how, and only into exactly d.n bytes. */
static void check_round_trip(const char *root, const char *how, struct buf d)
{
	struct buf z = transform(root, how, d);
	uint8_t *out;

	if (inflate_buf(z, d.n, &out) != 0)
		mg_test_fail(__FILE__, __LINE__, "%s of %zu bytes did not inflate", how, d.n);
	CHECK_MEM(out, d.p, d.n);
	free(out);
	CHECK_EQ(inflate_buf(z, d.n + 1, NULL), -1);
	if (d.n > 0)
		CHECK_EQ(inflate_buf(z, d.n - 1, NULL), -1);
	free(z.p);
}

/* Empty, one byte, random, text, two letters, the agent, and random data
 * across stored blocks' 64 KiB limit, each deflated by every mode. */
static void check_modes(const char *const *hows, int nhows)
{
	static const size_t lens[] = {0, 1, 100000, 65535, 65536, 65537, 131071, 131072, 200003};
	char root[64];
	struct buf sets[13];
	int n = 0;

	sandbox(root);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		sets[n++] = data_random(lens[i], i == 1 ? "x" : NULL);
	sets[n++] = data_text(300000);
	sets[n++] = data_random(30000, "ab");
	sets[n++] = file_get(built("mitogen-agent"));
	for (int h = 0; h < nhows; h++)
		for (int i = 0; i < n; i++)
			check_round_trip(root, hows[h], sets[i]);
	for (int i = 0; i < n; i++)
		free(sets[i].p);
	sh("rm -rf %s", root);
}

TEST_T(inflate_gzip_and_zopfli_streams, 120)
{
	static const char *const hows[] = {"gzip1", "gzip9", "zopfli"};

	check_modes(hows, 3);
}

TEST_T(inflate_zlib_stored_fixed_and_flushed_blocks, 120)
{
	static const char *const hows[] = {"stored", "fixed", "flush"};

	check_modes(hows, 3);
}

/* The build's own packed agent: inflate, undo the filter, the agent. */
TEST(inflate_and_the_filter_give_the_built_agent)
{
	struct buf agent = file_get(built("mitogen-agent")), z = file_get(built("mitogen-agent.z"));
	struct buf f = file_get(built("mitogen-agent.f"));
	uint8_t *out;

	CHECK(f.n == agent.n && memcmp(f.p, agent.p, f.n) != 0);
	CHECK_EQ(inflate_buf(z, agent.n, &out), 0);
	CHECK_MEM(out, f.p, f.n);
	branch_filter(out, agent.n, 1);
	CHECK_MEM(out, agent.p, agent.n);
	free(out);
	free(agent.p);
	free(z.p);
	free(f.p);
}

/* Every prefix of a stream (all of a short one, some of a long one) is
 * refused. */
TEST_T(inflate_refuses_truncated_streams, 120)
{
	static const char *const hows[] = {"gzip9", "stored", "fixed", "flush", "zopfli"};
	char root[64];
	struct buf d = data_text(40000);

	for (size_t i = 20000; i < d.n; i++) /* half text, half random */
		d.p[i] = (uint8_t)rng();
	sandbox(root);
	for (int h = 0; h < 5; h++) {
		struct buf z = transform(root, hows[h], d);
		size_t step = z.n / 1500 + 1;

		for (size_t k = 0; k < z.n; k += k + 64 < z.n ? step : 1) {
			struct buf prefix = {z.p, k};

			if (inflate_buf(prefix, d.n, NULL) != -1)
				mg_test_fail(__FILE__, __LINE__, "%s: %zu of %zu bytes inflated",
				             hows[h], k, z.n);
		}
		free(z.p);
	}
	free(d.p);
	sh("rm -rf %s", root);
}

/* Inflates a hand-made stream into cap bytes: pairs (value, n) up to
 * (0, 0); n > 0 writes a field of n bits, least significant first, n < 0
 * a Huffman code of -n bits, most significant first. */
static int handmade(size_t cap, ...)
{
	uint8_t p[64] = {0};
	size_t at = 0;
	va_list ap;
	int v, n;

	va_start(ap, cap);
	while ((v = va_arg(ap, int), n = va_arg(ap, int)) != 0)
		for (int i = 0; i < abs(n); i++, at++)
			p[at / 8] = (uint8_t)(p[at / 8] | (v >> (n > 0 ? i : -n - 1 - i) & 1)
			                                          << at % 8);
	va_end(ap);
	return inflate_buf((struct buf){p, (at + 7) / 8}, cap, NULL);
}

/* Fixed Huffman: a last block with 'a', length 3 (257) at distance
 * symbol d, the end (256). */
#define FIXED_A 1, 1, 1, 2, 0x91, -8
#define LEN3(d) 1, -7, d, -5
#define END 0, -7, 0, 0
/* A stored block of 'x' (last or not). */
#define STORED_X(last) last, 1, 0, 2, 0, 5, 1, 16, 0xfffe, 16, 'x', 8
/* A last dynamic block; its code-length code: 0 -> 0, 2 -> 10, 18 -> 11;
 * Z(n): n zero lengths; lengths 2 for 'a', 256, 257 (codes 00, 01, 10). */
#define DYN(hlit, hdist, hclen) 1, 1, 2, 2, hlit, 5, hdist, 5, hclen, 4
#define CL2 0, 3, 0, 3, 2, 3, 1, 3, 0, 30, 0, 3, 2, 3 /* order 16 17 18 0 (8..13: 0) 2 */
#define Z(n) 3, -2, n - 11, 7
#define L2 2, -2
#define LITS DYN(1, 31, 12), CL2, Z(97), L2, Z(138), Z(20), L2, L2
#define Z18(n) 1, -1, n - 11, 7                     /* n zeros (18) when 18 is code 1 */
#define A_LEN3_END 0, -2, 2, -2, 0, -2, 1, -2, 0, 0 /* 'a', 257, distance code 00, 256 */

TEST(inflate_refuses_bad_blocks)
{
	CHECK_EQ(handmade(1, STORED_X(1), 0, 0), 0);
	CHECK_EQ(handmade(0, STORED_X(1), 0, 0), -1);             /* longer than cap */
	CHECK_EQ(handmade(1, STORED_X(0), 1, 1, 1, 2, END), 0);   /* then fixed */
	CHECK_EQ(handmade(1, STORED_X(0), 1, 1, 3, 2, 0, 0), -1); /* then type 3 */
	CHECK_EQ(handmade(0, 1, 1, 3, 2, 0, 0), -1);              /* type 3 */
	CHECK_EQ(handmade(1, 1, 1, 0, 7, 1, 16, 0xffff, 16, 'x', 8, 0, 0), -1); /* bad NLEN */
	/* Distance 1 after one byte is fine; 2 reaches before the output. */
	CHECK_EQ(handmade(4, FIXED_A, LEN3(0), END), 0);
	CHECK_EQ(handmade(4, FIXED_A, LEN3(1), END), -1);
	CHECK_EQ(handmade(3, FIXED_A, LEN3(0), END), -1);
	/* Symbols the fixed code has but deflate does not use: 286, 287; 30. */
	CHECK_EQ(handmade(5, FIXED_A, LEN3(0), 0x92, -8, END), 0); /* 'b' */
	CHECK_EQ(handmade(5, FIXED_A, LEN3(0), 0xc6, -8, END), -1);
	CHECK_EQ(handmade(5, FIXED_A, LEN3(0), 0xc7, -8, END), -1);
	CHECK_EQ(handmade(4, FIXED_A, LEN3(30), END), -1);
	/* A dynamic block with distance code 00 for symbol 0, or for 30. */
	CHECK_EQ(handmade(4, LITS, L2, Z(31), A_LEN3_END), 0);
	CHECK_EQ(handmade(4, LITS, Z(30), L2, 0, -1, A_LEN3_END), -1);
	/* Code lengths: a repeat (16) with nothing before it; zeros (18) from
	 * 257 past the 258 lengths there are (and past the array's 320). */
	CHECK_EQ(handmade(300, DYN(0, 0, 0), 1, 3, 0, 3, 0, 3, 1, 3, 1, -1, 0, 0), -1);
	CHECK_EQ(handmade(300, DYN(0, 0, 0), 0, 3, 0, 3, 1, 3, 1, 3, Z18(138), Z18(119), Z18(138),
	                  0, 0),
	         -1);
}

/* Garbage is refused; valid streams with bytes changed are refused or
 * inflate to exactly cap bytes, never touching memory outside (ASan). */
TEST_T(inflate_survives_garbage_and_corruption, 120)
{
	static const char *const hows[] = {"gzip9", "fixed", "flush", "stored"};
	char root[64];
	struct buf d = data_text(3000);

	for (int i = 0; i < 3000; i++) {
		struct buf g = data_random(rng() % 300, NULL);

		CHECK_EQ(inflate_buf(g, rng() % 5000, NULL), -1);
		free(g.p);
	}
	sandbox(root);
	for (int h = 0; h < 4; h++) {
		struct buf z = transform(root, hows[h], d);

		for (int i = 0; i < 3000; i++) {
			size_t at = rng() % z.n;
			uint8_t old = z.p[at];

			z.p[at] = (uint8_t)(i % 2 ? rng() : old ^ 1u << rng() % 8);
			inflate_buf(z, d.n, NULL);
			z.p[at] = old;
		}
		free(z.p);
	}
	free(d.p);
	sh("rm -rf %s", root);
}

static void check_filter(const char *root, struct buf d, size_t at, uint32_t want)
{
	struct buf f = transform(root, "filter", d);

	CHECK_EQ(f.n, d.n);
	if (at != (size_t)-1)
		CHECK_UINT(get_u32(f.p + at), ==, want);
	branch_filter(f.p, f.n, 1);
	CHECK_MEM(f.p, d.p, d.n);
	free(f.p);
}

TEST(the_filter_is_undone)
{
	char root[64];
	struct buf d = data_random(1 << 20, NULL), agent = file_get(built("mitogen-agent"));
	uint32_t rel[] = {0x10, 0xfffffff0, 0x12345678, 0x00ffffff, 0xff000000, 0x7f, 0xfeffffff};
	uint32_t want[] = {0x79, 0x59, 0x12345678, 0xff000068, 0xff000069, 0xe8, 0xfeffffff};

	sandbox(root);
	for (size_t i = 0; i < d.n; i++) /* dense in E8/E9 and 00/FF */
		d.p[i] = i % 3 ? (uint8_t) "\xe8\xe9\x00\xff\x01"[rng() % 5] : (uint8_t)rng();
	check_filter(root, d, (size_t)-1, 0);
	memset(d.p, 0xe8, 1003); /* unchanged (top byte E8) until 00 00 E8 E8 at 1001 */
	memset(d.p + 1003, 0, 3);
	check_filter(root, (struct buf){d.p, 1006}, 1001, 0xe8e8 + 1005);
	for (int k = 0; k < 7; k++) { /* at offset 100: rel32 + 105, folded */
		memset(d.p, 0x11, 200);
		d.p[100] = (uint8_t)(0xe8 + k % 2);
		put_u32(d.p + 101, rel[k]);
		check_filter(root, (struct buf){d.p, 200}, 101, want[k]);
	}
	for (size_t tail = 1; tail <= 6; tail++) { /* E8 0 0.. near the end */
		memset(d.p, 0, 40);
		d.p[40 - tail] = 0xe8;
		check_filter(root, (struct buf){d.p, 40}, tail <= 4 ? 36 : 41 - tail,
		             tail <= 4 ? get_u32(d.p + 36) : 45 - tail);
	}
	check_filter(root, agent, (size_t)-1, 0);
	free(agent.p);
	free(d.p);
	sh("rm -rf %s", root);
}

/* One run of the built unpacker, copied to root/run (its own directory, so
 * that the case can tell it is left empty); its stdout and stderr go to
 * root/report and root/err. */
struct run {
	char root[64], dir[80], self[120], report[80], err[80];
	struct buf u; /* the built unpacker */
	size_t head;  /* of which the file holds this much, as in a first stage */
	size_t sent;  /* and stdin this much of the rest (all, unless cut) */
	int status;
};

/* The head of the unpacker: what its one program header loads. */
static size_t head_len(struct buf u)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph;

	CHECK(u.n >= sizeof(eh) + sizeof(ph));
	memcpy(&eh, u.p, sizeof(eh));
	CHECK_MEM(eh.e_ident, ELFMAG, SELFMAG);
	CHECK_EQ(eh.e_phnum, 1);
	CHECK_EQ(eh.e_phoff, sizeof(eh));
	memcpy(&ph, u.p + eh.e_phoff, sizeof(ph));
	CHECK_EQ(ph.p_type, PT_LOAD);
	CHECK_EQ(ph.p_offset, 0);
	CHECK(ph.p_filesz > eh.e_phoff + sizeof(ph) && ph.p_filesz < u.n);
	CHECK(ph.p_memsz >= u.n);
	return ph.p_filesz;
}

static void run_init(struct run *r)
{
	sandbox(r->root);
	snprintf(r->dir, sizeof(r->dir), "%s/run", r->root);
	snprintf(r->self, sizeof(r->self), "%s/mitogen-unpack", r->dir);
	snprintf(r->report, sizeof(r->report), "%s/report", r->root);
	snprintf(r->err, sizeof(r->err), "%s/err", r->root);
	CHECK_EQ(mkdir(r->dir, 0700), 0);
	r->u = file_get(built("mitogen-unpack"));
	r->head = head_len(r->u);
	r->sent = r->u.n - r->head;
	file_put(r->self, r->u.p, r->head);
	CHECK_EQ(chmod(r->self, 0700), 0);
}

static void run_fini(struct run *r)
{
	sh("rm -rf %s", r->root);
	free(r->u.p);
}

/* Header ("MGP1" unless magic says otherwise), then payload, then tail. */
static struct buf input_make(const char *magic, uint32_t kind, uint32_t zlen, uint32_t len,
                             struct buf payload, struct buf tail)
{
	struct buf b = {malloc(HEADER_LEN + payload.n + tail.n), HEADER_LEN + payload.n + tail.n};

	memcpy(b.p, magic, 4);
	put_u32(b.p + 4, kind);
	put_u32(b.p + 8, zlen);
	put_u32(b.p + 12, len);
	memcpy(b.p + HEADER_LEN, payload.p, payload.n);
	memcpy(b.p + HEADER_LEN + payload.n, tail.p, tail.n);
	return b;
}

/* Runs "argv0 [--mitogen-rm]" with the rest of the unpacker and input on
 * a pipe (written by a child of its own, so a large input cannot block
 * this one) and waits for both. */
static void run_unpacker(struct run *r, struct buf input, const char *argv0, bool rm_arg,
                         bool no_memfd)
{
	char *argv[] = {(char *)argv0, rm_arg ? (char *)"--mitogen-rm" : NULL, NULL};
	pid_t w, pid;
	int p[2];

	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	if ((w = fork()) == 0) {
		close(p[0]);
		write_full(p[1], r->u.p + r->head, r->sent);
		if (r->sent == r->u.n - r->head)
			write_full(p[1], input.p, input.n);
		_exit(0);
	}
	if ((pid = fork()) == 0) {
		int out = open(r->report, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int err = open(r->err, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (out < 0 || err < 0 || dup2(p[0], 0) != 0 || dup2(out, 1) != 1 ||
		    dup2(err, 2) != 2 || chdir(r->dir) != 0)
			_exit(126);
		if (no_memfd)
			cu_forbid_memfd();
		setenv(CHILD_ENV, "1", 1);
		execv(r->self, argv);
		_exit(127);
	}
	CHECK(w > 0 && pid > 0);
	close(p[0]);
	close(p[1]);
	CHECK_EQ(waitpid(w, NULL, 0), w);
	CHECK_EQ(waitpid(pid, &r->status, 0), pid);
	CHECK_EQ(cu_count_children(), 0);
}

static void check_text(struct buf got, const char *want)
{
	if (got.n != strlen(want) || memcmp(got.p, want, got.n) != 0)
		mg_test_fail(__FILE__, __LINE__, "got \"%.*s\", want \"%s\"", (int)got.n,
		             (char *)got.p, want);
}

static void check_file(const char *path, const char *want)
{
	struct buf b = file_get(path);

	check_text(b, want);
	free(b.p);
}

/* The unpacker runs this program (packed when kind is 1) from a memfd, or
 * from its own path again without memfd_create, and the program sees the
 * argv, image and stdin the contract says; nothing is left on disk. */
static void check_unpacked(uint32_t kind, bool no_memfd)
{
	struct buf prog = file_get(cu_self_exe()), u;
	struct buf payload = prog, tail = data_random(100000, NULL), input, rep, rec[5];
	uint8_t trailer[TRAILER_LEN];
	char argv[200];
	size_t at = 0;
	struct run r;

	run_init(&r);
	u = r.u;
	if (kind == 1) {
		struct buf f = transform(r.root, "filter", prog);

		payload = transform(r.root, "gzip1", f);
		free(f.p);
	}
	input = input_make("MGP1", kind, (uint32_t)payload.n, (uint32_t)prog.n, payload, tail);
	run_unpacker(&r, input, r.self, true, no_memfd);
	if (r.status != 0)
		check_file(r.err, ""); /* or its status, when it said nothing */
	CHECK_EQ(r.status, 0);
	rep = file_get(r.report);
	for (int i = 0; i < 5; i++) { /* the records of unpacked_main */
		uint32_t len = 0;

		CHECK(at + 4 <= rep.n);
		memcpy(&len, rep.p + at, 4);
		CHECK(at + 4 + len <= rep.n);
		rec[i] = (struct buf){rep.p + at + 4, len};
		at += 4 + len;
	}
	CHECK_EQ(at, rep.n);
	/* argv is {path} from a memfd, {path, --mitogen-rm} from the file. */
	snprintf(argv, sizeof(argv), "%s%c%s", r.self, 0, no_memfd ? "--mitogen-rm" : "");
	CHECK_EQ(rec[0].n, strlen(r.self) + 1 + (no_memfd ? 13 : 0));
	CHECK_MEM(rec[0].p, argv, rec[0].n);
	if (no_memfd) {
		check_text(rec[1], r.self);
		check_text(rec[2], "700");
	} else {
		check_text(rec[1], "/memfd:mitogen-agent (deleted)");
		check_text(rec[2], "gone"); /* removed before the program ran */
	}
	/* The image: the program, the unpacker's exact bytes, the trailer. */
	put_u32(trailer, 0x3155474d);
	put_u32(trailer + 4, (uint32_t)u.n);
	put_u32(trailer + 8, (uint32_t)prog.n);
	put_u32(trailer + 12, 0);
	CHECK_MEM(trailer, "MGU1", 4);
	CHECK_EQ(rec[3].n, prog.n + u.n + TRAILER_LEN);
	CHECK_MEM(rec[3].p, prog.p, prog.n);
	CHECK_MEM(rec[3].p + prog.n, u.p, u.n);
	CHECK_MEM(rec[3].p + prog.n + u.n, trailer, TRAILER_LEN);
	/* What followed the payload was left for the program. */
	CHECK_EQ(rec[4].n, tail.n);
	CHECK_MEM(rec[4].p, tail.p, tail.n);
	check_file(r.err, "");
	CHECK_EQ(rmdir(r.dir), 0); /* empty */
	run_fini(&r);
	if (payload.p != prog.p)
		free(payload.p);
	free(prog.p);
	free(tail.p);
	free(input.p);
	free(rep.p);
}

TEST(unpack_runs_a_plain_or_packed_program_from_a_memfd)
{
	check_unpacked(0, false);
	check_unpacked(1, false);
}

TEST(unpack_without_memfd_runs_the_program_from_its_own_path)
{
	check_unpacked(1, true);
}

/* input makes the unpacker (run as argv0, with or without --mitogen-rm,
 * sent only `sent` bytes of its rest when that is not -1) end with status
 * 1 and "mitogen-unpack: msg"; its file is left only when it was run the
 * wrong way (its stub removes it before it reads anything). */
static void check_refused(struct buf input, bool relative, bool rm_arg, long sent, const char *msg,
                          bool left)
{
	char want[200];
	struct buf rep;
	struct run r;

	run_init(&r);
	if (sent >= 0)
		r.sent = (size_t)sent;
	run_unpacker(&r, input, relative ? "mitogen-unpack" : r.self, rm_arg, false);
	snprintf(want, sizeof(want), "mitogen-unpack: %s\n", msg);
	check_file(r.err, want);
	CHECK(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 1);
	rep = file_get(r.report);
	CHECK_EQ(rep.n, 0); /* the program never ran */
	CHECK_EQ(access(r.self, F_OK) == 0, left);
	run_fini(&r);
	free(rep.p);
	free(input.p);
}

TEST(unpack_refuses_bad_input)
{
	const char *header = "header failed (errno 071)";
	const char *eof = "read failed (errno 005)";
	const char *usage = "usage: PATH --mitogen-rm; failed (errno 022)";
	struct buf p = data_random(1000, NULL), none = {(uint8_t *)"", 0}, short_header;

	check_refused(input_make("MGPX", 0, 1000, 1000, p, none), false, true, -1, header, false);
	check_refused(input_make("MGP1", 2, 1000, 1000, p, none), false, true, -1, header, false);
	check_refused(input_make("MGP1", 0, 1000, 999, p, none), false, true, -1, header, false);
	check_refused(input_make("MGP1", 1, 1000, 0, p, none), false, true, -1, header, false);
	check_refused(input_make("MGP1", 1, 1000, 1u << 28, p, none), false, true, -1, header,
	              false);
	short_header = input_make("MGP1", 0, 1000, 1000, p, none);
	short_header.n = 8;
	check_refused(short_header, false, true, -1, eof, false);
	check_refused(input_make("MGP1", 0, 2000, 2000, p, none), false, true, -1, eof, false);
	check_refused(input_make("MGP1", 1, 1000, 5000, p, none), false, true, -1,
	              "inflate failed (errno 074)", false);
	check_refused(input_make("MGP1", 0, 1000, 1000, p, none), false, true, -1,
	              "exec failed (errno 008)", false);
	/* Its own rest cut short (the master died): the stub says so, and
	 * the file is gone all the same. */
	check_refused(input_make("MGP1", 0, 1000, 1000, p, none), false, true, 0, "short read",
	              false);
	check_refused(input_make("MGP1", 0, 1000, 1000, p, none), false, true, 100, "short read",
	              false);
	/* A relative path (a relative TMPDIR) is removed as well. */
	check_refused(input_make("MGPX", 0, 1000, 1000, p, none), true, true, -1, header, false);
	/* Run the wrong way, it touches nothing. */
	check_refused(input_make("MGP1", 0, 1000, 1000, p, none), false, false, -1, usage, true);
	free(p.p);
}
