/*
 * unpack.c: mitogen-unpack, the first thing a first stage runs on a target
 * (src/connect/bootstrap.c).  It reads the agent from stdin, unpacks it and
 * execs it, without gzip, head or any other tool of the target's: no C
 * library, no relocations, one segment.
 *
 * The file comes in two parts (unpack.ld).  The head (~0.2 KB: an ELF
 * header written below, whose one program header loads only the head, and
 * a stub) is what the shell writes from one line of text with its own
 * printf; the shell's `read` takes that line a byte per system call, so it
 * is kept small.  The stub removes the file (when run as "PATH
 * --mitogen-rm": whatever happens next, nothing is left on disk) and reads
 * the rest of the program, ~3.5 KB, from stdin to where it belongs, raw.
 * Memory then holds the whole file.
 *
 * Then on fd 0, read exactly (nothing after it is touched: the agent's
 * handshake follows right behind):
 *   "MGP1", u32 kind, u32 payload length, u32 program length (little
 *   endian), then the payload: the program itself (kind 0) or raw deflate
 *   (RFC 1951) of the program after the x86 branch filter of
 *   branch_filter.h (kind 1).
 *
 * It writes the program's image (below) to a memfd and execs that.
 * Without memfd_create it writes the image to its own name again (0700,
 * O_EXCL) and execs it with --mitogen-rm, on which the agent removes it.
 * On a failure it says which step failed, with the errno, on stderr and
 * exits 1 ("short read" from the stub).  (The cache's first stage does not
 * use it: a miss there is rare and takes the image as it is.)
 *
 * x86_64 Linux only, as the stock agent is.
 */
#include "branch_filter.h"

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long usize;
typedef unsigned long u64;

#define HEADER_LEN 16

/* ------------------------------------------------------------------------ */
/* System calls. */

static long sys6(long nr, long a, long b, long c, long d, long e)
{
	long r;
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = 0; /* mmap's offset */

	__asm__ volatile("syscall"
	                 : "=a"(r)
	                 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
	                 : "rcx", "r11", "memory");
	return r;
}

#define SYS(nr, a, b, c) sys6(nr, (long)(a), (long)(b), (long)(c), 0, 0)
#define NR_read 0
#define NR_write 1
#define NR_open 2
#define NR_close 3
#define NR_mmap 9
#define NR_execve 59
#define NR_unlink 87
#define NR_exit_group 231
#define NR_memfd_create 319
#define NR_execveat 322

#define O_WRONLY 01
#define O_CREAT 0100
#define O_EXCL 0200
#define O_NOFOLLOW 0400000
#define O_CLOEXEC 02000000
#define MFD_CLOEXEC 1
#define AT_EMPTY_PATH 0x1000

static void put(const char *s)
{
	usize n = 0;

	while (s[n] != '\0')
		n++;
	SYS(NR_write, 2, s, n);
}

/* Says what failed and ends: "mitogen-unpack: STEP failed (errno NNN)". */
static __attribute__((noreturn)) void die(const char *step, long r)
{
	char num[] = "000)\n";
	u32 e = (u32)-r % 1000;

	num[0] = (char)(num[0] + e / 100);
	num[1] = (char)(num[1] + e / 10 % 10);
	num[2] = (char)(num[2] + e % 10);
	put("mitogen-unpack: ");
	put(step);
	put(" failed (errno ");
	put(num);
	SYS(NR_exit_group, 1, 0, 0);
	__builtin_unreachable();
}

/* Reads exactly n bytes from fd 0. */
static void read_all(u8 *p, usize n)
{
	while (n > 0) {
		long r = SYS(NR_read, 0, p, n);

		if (r == -4) /* EINTR */
			continue;
		if (r <= 0)
			die("read", r < 0 ? r : -5);
		p += r;
		n -= (usize)r;
	}
}

static long write_all(int fd, const u8 *p, usize n)
{
	while (n > 0) {
		long r = SYS(NR_write, fd, p, n);

		if (r == -4)
			continue;
		if (r <= 0)
			return r < 0 ? r : -5;
		p += r;
		n -= (usize)r;
	}
	return 0;
}

static u32 get_u32(const u8 *p)
{
	return p[0] | (u32)p[1] << 8 | (u32)p[2] << 16 | (u32)p[3] << 24;
}

/* ------------------------------------------------------------------------ */
/* Inflate (RFC 1951): canonical Huffman codes of up to FAST_BITS bits by
 * one table lookup, longer ones a bit at a time; input taken eight bytes
 * at a time.  With FAST_BITS 9 -> 10, the table filled code by code (it
 * was walked entry by entry) and the 64-bit refill the agent unpacks in
 * 0.46 ms instead of 0.61 (best of 200 here), for 128 bytes of program. */

struct inflate {
	const u8 *in, *in_end;
	u64 bitbuf;
	int bitcnt; /* below 0: bits were taken past the end of the input */
	u8 *out;
	usize pos, cap;
	int bad;
};

#define FAST_BITS 10

struct huffman {
	u16 count[16]; /* codes of each length */
	u16 sym[288];  /* symbols in code order */
	/* The codes of up to FAST_BITS bits, by the next FAST_BITS input bits:
	 * symbol | length << 9, or 0 for a longer code.  Four times faster
	 * than the walk in huffman_decode alone. */
	u16 fast[1 << FAST_BITS];
};

/* Tops a bit buffer up to 56 bits or more, or to the end of the input.
 * Eight bytes at a time where there are eight: the bits loaded beyond
 * the count are those of the next bytes, which the next load puts back
 * at the same place.  Inlined: inflate_codes keeps its buffer in locals. */
__attribute__((always_inline)) static inline void refill_from(const u8 **in, const u8 *in_end,
                                                              u64 *bitbuf, int *bitcnt)
{
	if (in_end - *in >= 8) {
		u64 v;

		__builtin_memcpy(&v, *in, 8);
		*bitbuf |= v << *bitcnt;
		*in += (63 - *bitcnt) >> 3;
		*bitcnt |= 56;
	} else {
		while (*bitcnt <= 56 && *in < in_end) {
			*bitbuf |= (u64) * (*in)++ << *bitcnt;
			*bitcnt += 8;
		}
	}
}

static void refill(struct inflate *s)
{
	refill_from(&s->in, s->in_end, &s->bitbuf, &s->bitcnt);
}

/* Takes n bits off a bit buffer (the count may go below 0: see bits). */
__attribute__((always_inline)) static inline u32 take(u64 *bitbuf, int *bitcnt, u32 n)
{
	u32 v = (u32)*bitbuf & ((1u << n) - 1);

	*bitbuf >>= n;
	*bitcnt -= (int)n;
	return v;
}

static u32 bits(struct inflate *s, int n)
{
	u32 v;

	if (s->bitcnt < n)
		refill(s);
	v = take(&s->bitbuf, &s->bitcnt, (u32)n);
	if (s->bitcnt < 0)
		s->bad = 1;
	return v;
}

/* Decodes one code from v's low bits (input order: least significant
 * first), using at most max bits: symbol | length << 9, or 0 when no code
 * of up to max bits matches.  Canonical codes of one length are
 * consecutive: walk the lengths, keeping the first code of each and where
 * its symbols start. */
static u32 huffman_walk(const struct huffman *h, u32 v, int max)
{
	int code = 0, first = 0, index = 0;

	for (int len = 1; len <= max; len++, v >>= 1) {
		code |= (int)(v & 1);
		if (code - first < h->count[len])
			return h->sym[index + code - first] | (u32)len << 9;
		index += h->count[len];
		first = (first + h->count[len]) << 1;
		code <<= 1;
	}
	return 0;
}

static void huffman_build(struct huffman *h, const u8 *lengths, int n)
{
	u16 next[16];
	int i, len;

	for (i = 0; i < 16; i++)
		h->count[i] = 0;
	for (i = 0; i < n; i++)
		h->count[lengths[i]]++;
	h->count[0] = 0;
	next[1] = 0;
	for (len = 1; len < 15; len++)
		next[len + 1] = (u16)(next[len] + h->count[len]);
	for (i = 0; i < n; i++)
		if (lengths[i] != 0)
			h->sym[next[lengths[i]]++] = (u16)i;
	/* Each code of up to FAST_BITS bits fills every entry whose low bits
	 * are the code, reversed (input order).  rev is the next code so
	 * reversed: a longer code is the shorter one followed by a 0 bit,
	 * which changes nothing reversed. */
	for (i = 0; i < 1 << FAST_BITS; i++)
		h->fast[i] = 0;
	len = 1;
	for (int rev = 0, k = 0; len <= FAST_BITS; len++)
		for (int c = h->count[len]; c > 0; c--, k++) {
			int b = 1 << (len - 1);

			for (int j = rev; j < 1 << FAST_BITS; j += 1 << len)
				h->fast[j] = (u16)(h->sym[k] | len << 9);
			while (rev & b) {
				rev ^= b;
				b >>= 1;
			}
			rev |= b;
		}
}

/* A Huffman table's entry for the code at the bottom of bb: symbol |
 * length << 9, or 0 when there is no such code. */
__attribute__((always_inline)) static inline u32 lookup(const struct huffman *h, u64 bb)
{
	u32 e = h->fast[bb & ((1 << FAST_BITS) - 1)];

	return e != 0 ? e : huffman_walk(h, (u32)bb, 15);
}

/* The next symbol, or -1 for a code the table does not have. */
static int huffman_decode(struct inflate *s, const struct huffman *h)
{
	u32 e;

	if (s->bitcnt < 15)
		refill(s);
	e = lookup(h, s->bitbuf);
	if (e == 0 || (int)(e >> 9) > s->bitcnt)
		return -1;
	take(&s->bitbuf, &s->bitcnt, e >> 9);
	return (int)(e & 511);
}

/* Base and extra bits of length symbols 257.. and distance symbols 0..,
 * made once: each group of four (two for distances) shares a count of
 * extra bits, one more than the group before. */
static u16 len_base[29], dist_base[30];
static u8 len_extra[29], dist_extra[30];

static void bases_make(void)
{
	u32 lb = 3, db = 1;

	for (int i = 0; i < 30; i++) {
		if (i < 29) {
			len_extra[i] = (u8)(i < 8 ? 0 : (i - 4) / 4);
			len_base[i] = (u16)lb;
			lb += 1u << len_extra[i];
		}
		dist_extra[i] = (u8)(i < 4 ? 0 : (i - 2) / 2);
		dist_base[i] = (u16)db;
		db += 1u << dist_extra[i];
	}
	len_base[28] = 258;
	len_extra[28] = 0;
}

/* A block's codes, to its end-of-block symbol.  One refill per turn: it
 * holds the 48 bits a length and its distance take at most (near the end
 * of the input it may hold less, and taking more than is there leaves
 * the count below 0, which ends the block as bad).  The bit buffer and
 * the output's position stay in locals: the bytes written to out could
 * alias the struct's fields, which the compiler would otherwise reload
 * after each.  A match at a distance of 8 or more goes 8 bytes at a time
 * when the output has room for the last copy's overshoot.  Those two
 * took the agent's inflate from 0.47 to 0.27 ms here (best of 300, the
 * branch filter apart), for 320 bytes of program. */
static void inflate_codes(struct inflate *s, const struct huffman *lit, const struct huffman *dist)
{
	const u8 *in = s->in;
	u8 *out = s->out;
	usize pos = s->pos, cap = s->cap;
	u64 bb = s->bitbuf;
	int bc = s->bitcnt;
	u32 e, len, d;

	for (;;) {
		refill_from(&in, s->in_end, &bb, &bc);
		if ((e = lookup(lit, bb)) == 0)
			break;
		take(&bb, &bc, e >> 9);
		e &= 511;
		if (e < 256) {
			if (pos == cap || bc < 0)
				break;
			out[pos++] = (u8)e;
			continue;
		}
		if (e == 256 || e > 285)
			break;
		e -= 257;
		len = len_base[e] + take(&bb, &bc, len_extra[e]);
		if ((e = lookup(dist, bb)) == 0 || (e & 511) > 29)
			break;
		take(&bb, &bc, e >> 9);
		e &= 511;
		d = dist_base[e] + take(&bb, &bc, dist_extra[e]);
		if (bc < 0 || d > pos || len > cap - pos)
			break;
		{
			u8 *to = out + pos;
			const u8 *from = to - d;

			pos += len;
			if (d >= 8 && cap - pos >= 8) {
				for (;;) {
					u64 v;

					__builtin_memcpy(&v, from, 8);
					__builtin_memcpy(to, &v, 8);
					if (len <= 8)
						break;
					len -= 8;
					from += 8;
					to += 8;
				}
			} else {
				while (len-- > 0)
					*to++ = *from++;
			}
		}
	}
	s->in = in;
	s->bitbuf = bb;
	s->bitcnt = bc;
	s->pos = pos;
	s->bad |= e != 256 || bc < 0;
}

static const u8 clen_order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};

static void inflate_dynamic(struct inflate *s)
{
	static struct huffman lit, dist;
	u8 lengths[320];
	int nlit = (int)bits(s, 5) + 257, ndist = (int)bits(s, 5) + 1, ncode = (int)bits(s, 4) + 4;
	int i;

	for (i = 0; i < 19; i++)
		lengths[clen_order[i]] = i < ncode ? (u8)bits(s, 3) : 0;
	huffman_build(&lit, lengths, 19);
	for (i = 0; i < nlit + ndist;) {
		int sym = huffman_decode(s, &lit), rep = 1;
		u8 v = 0;

		if (s->bad || sym < 0) {
			s->bad = 1;
			return;
		}
		if (sym < 16)
			v = (u8)sym;
		else if (sym == 16) {
			if (i == 0) {
				s->bad = 1;
				return;
			}
			v = lengths[i - 1];
			rep = 3 + (int)bits(s, 2);
		} else
			rep = sym == 17 ? 3 + (int)bits(s, 3) : 11 + (int)bits(s, 7);
		if (i + rep > nlit + ndist) {
			s->bad = 1;
			return;
		}
		while (rep-- > 0)
			lengths[i++] = v;
	}
	huffman_build(&lit, lengths, nlit);
	huffman_build(&dist, lengths + nlit, ndist);
	inflate_codes(s, &lit, &dist);
}

static void inflate_fixed(struct inflate *s)
{
	static struct huffman lit, dist;
	u8 lengths[288];
	int i;

	for (i = 0; i < 288; i++)
		lengths[i] = i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8;
	huffman_build(&lit, lengths, 288);
	for (i = 0; i < 30; i++)
		lengths[i] = 5;
	huffman_build(&dist, lengths, 30);
	inflate_codes(s, &lit, &dist);
}

static void inflate_stored(struct inflate *s)
{
	u32 len;

	/* Drops the rest of the current byte only: huffman_decode may have
	 * buffered whole bytes beyond it. */
	s->bitbuf >>= s->bitcnt & 7;
	s->bitcnt &= ~7;
	len = bits(s, 16);
	if ((bits(s, 16) ^ 0xffff) != len || len > s->cap - s->pos) {
		s->bad = 1;
		return;
	}
	while (len-- > 0 && !s->bad)
		s->out[s->pos++] = (u8)bits(s, 8);
}

static int inflate(struct inflate *s)
{
	int last;

	bases_make();
	do {
		last = (int)bits(s, 1);
		switch (bits(s, 2)) {
		case 0:
			inflate_stored(s);
			break;
		case 1:
			inflate_fixed(s);
			break;
		case 2:
			inflate_dynamic(s);
			break;
		default:
			s->bad = 1;
		}
	} while (!last && !s->bad);
	return s->bad || s->pos != s->cap ? -1 : 0;
}

/* ------------------------------------------------------------------------ */
/* Writing the program out and running it. */

/* Makes path anew (it is this program's own file: the name is ours) and
 * writes the program to it, 0700. */
static void write_file(const char *path, const u8 *p, usize n)
{
	long fd, r;

	SYS(NR_unlink, path, 0, 0);
	fd = SYS(NR_open, path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0700);
	if (fd < 0)
		die("create", fd);
	if ((r = write_all((int)fd, p, n)) != 0 || (r = SYS(NR_close, fd, 0, 0)) != 0) {
		SYS(NR_unlink, path, 0, 0);
		die("write", r);
	}
}

/* Runs the program from a memfd; returns only when that cannot be done
 * (then the caller falls back to a file).  A kernel that refuses to exec
 * a file still open for writing (ETXTBSY) takes the fallback too. */
static void run_from_memfd(const u8 *p, usize n, char **argv, char **envp)
{
	long fd = SYS(NR_memfd_create, "mitogen-agent", MFD_CLOEXEC, 0);

	if (fd < 0 || write_all((int)fd, p, n) != 0)
		return;
	sys6(NR_execveat, fd, (long)"", (long)argv, (long)envp, AT_EMPTY_PATH);
	SYS(NR_close, fd, 0, 0);
}

/* Anonymous private memory, read-write. */
static u8 *map(usize n)
{
	long p = sys6(NR_mmap, 0, (long)n + 1, 3, 0x22, -1);

	if ((unsigned long)p > -4096ul)
		die("mmap", p);
	return (u8 *)p;
}

/* The program's image: the program, this unpacker (so that the agent can
 * boot contexts of its own: src/connect/agent_image.c), and a trailer:
 * "MGU1", u32 unpacker length, u32 program length, u32 0. */
#define TRAILER_LEN 16

static void put_u32(u8 *p, u32 v)
{
	for (int k = 0; k < 4; k++, v >>= 8)
		p[k] = (u8)v;
}

/* This program's file, as it is in memory (unpack.ld). */
extern const u8 __unpack_image[], __unpack_image_end[];

static int run(int argc, char **argv, char **envp)
{
	const u8 *own = __unpack_image;
	usize ulen = (usize)(__unpack_image_end - __unpack_image);
	char *self = argv[0];
	u8 header[HEADER_LEN], *in, *out;
	u32 kind, zlen, len;

	if (argc != 2) /* else the stub has removed its file */
		die("usage: PATH --mitogen-rm;", -22);
	read_all(header, HEADER_LEN);
	kind = get_u32(header + 4);
	zlen = get_u32(header + 8);
	len = get_u32(header + 12);
	if (get_u32(header) != 0x3150474d /* "MGP1" */ || kind > 1 || (kind == 0 && zlen != len) ||
	    len == 0 || (len | zlen) >= (1u << 28))
		die("header", -71);
	out = map(len + ulen + TRAILER_LEN);
	in = kind == 0 ? out : map(zlen);
	for (usize i = 0; i < ulen; i++)
		out[len + i] = own[i];
	read_all(in, zlen);
	if (kind == 1) {
		struct inflate s = {in, in + zlen, 0, 0, out, 0, len, 0};

		if (inflate(&s) != 0)
			die("inflate", -74);
		branch_filter(out, len, 1);
	}
	put_u32(out + len + ulen, 0x3155474d /* "MGU1" */);
	put_u32(out + len + ulen + 4, (u32)ulen);
	put_u32(out + len + ulen + 8, len);
	put_u32(out + len + ulen + 12, 0);
	len += (u32)ulen + TRAILER_LEN;
	{
		char *rm_argv[] = {self, argv[1], 0};

		argv[1] = 0; /* the memfd has no file to remove */
		run_from_memfd(out, len, argv, envp);
		write_file(self, out, len);
		long r = SYS(NR_execve, self, rm_argv, envp);
		SYS(NR_unlink, self, 0, 0);
		die("exec", r);
	}
}

#ifndef UNPACK_NO_START /* tests include this file for inflate() */
/* The kernel's initial stack: argc, argv..., NULL, envp..., NULL. */
__attribute__((used)) static void start_c(long *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);

	SYS(NR_exit_group, run(argc, argv, argv + argc + 1), 0, 0);
}

/* The head: what the first stage's printf writes (unpack.ld).  An ELF
 * header and one program header that loads the head alone, read-write-
 * execute, with room for the whole image; then the stub, which reads the
 * rest of the file from stdin behind itself, exactly, and starts the C
 * code.  The rest thus travels as it is rather than as printf escapes,
 * which the shell's `read` takes a byte per system call.  Immediates are
 * pushed and popped where that avoids NUL bytes, which cost two bytes in
 * the line.  No PT_GNU_STACK: the older kernels that map the bss without
 * execute permission then make every mapping executable. */
__asm__(".section .unpack_head,\"awx\"\n"
        /* e_ident: ELF64, little endian, version 1; then the padding. */
        "  .byte 0x7f, 'E', 'L', 'F', 2, 1, 1, 0\n"
        "  .quad 0\n"
        /* ET_EXEC, EM_X86_64, EV_CURRENT, entry, phoff, shoff, flags. */
        "  .short 2, 62\n"
        "  .long 1\n"
        "  .quad _start, 64, 0\n"
        "  .long 0\n"
        /* ehsize, phentsize, phnum, shentsize, shnum, shstrndx. */
        "  .short 64, 56, 1, 0, 0, 0\n"
        /* PT_LOAD, R|W|X, offset 0, vaddr, paddr, filesz, memsz, align. */
        "  .long 1, 7\n"
        "  .quad 0, __unpack_image, __unpack_image\n"
        "  .quad __unpack_head_len, __unpack_mem_len, 0x1000\n"
        ".globl _start\n"
        "_start:\n"
        "  cmpl $2, (%rsp)\n" /* run as "PATH --mitogen-rm": its file goes */
        "  jne 0f\n"          /* at once, whatever happens next */
        "  mov 8(%rsp), %rdi\n"
        "  push $87\n"
        "  pop %rax\n" /* unlink(argv[0]) */
        "  syscall\n"
        "0:\n"
        "  mov $__unpack_tail_len, %edx\n"
        "  mov $__unpack_head_end, %esi\n"
        "1:\n"
        "  xor %edi, %edi\n"
        "  xor %eax, %eax\n" /* read(0, at, left) */
        "  syscall\n"
        "  test %rax, %rax\n"
        "  jle 2f\n"
        "  add %rax, %rsi\n"
        "  sub %eax, %edx\n"
        "  jnz 1b\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call start_c\n"
        "2:\n" /* a short read: the master is gone or sent too little */
        "  push $2\n"
        "  pop %rdi\n"
        "  lea 3f(%rip), %rsi\n"
        "  push $27\n" /* the message's length */
        "  pop %rdx\n"
        "  push $1\n"
        "  pop %rax\n" /* write(2, message, length) */
        "  syscall\n"
        "  push $1\n"
        "  pop %rdi\n"
        "  mov $231, %eax\n" /* exit_group(1) */
        "  syscall\n"
        "3: .ascii \"mitogen-unpack: short read\\n\"\n"
        "4:\n"
        ".text\n");
#endif
