/*
 * bootstrap.c: getting the agent onto a target that has nothing but a
 * POSIX shell (DESIGN.md section 5), and starting the commands that lead
 * there (ssh, sudo, or a local shell for tests).
 *
 * The first stage is a short sh script passed on the command line.  It
 * needs only sh and chmod (uname where /proc/sys/kernel lacks the arch,
 * mktemp when its own file name is taken, rm to clean up when it fails):
 *
 *   1. it makes its file (below), prints "MGSTAGE1 2 <os> <arch>
 *      nocache", then runs `chmod 700` on the file while the master
 *      answers;
 *   2. the master answers with one line: the head of mitogen-unpack
 *      (agent/unpack.c: ELF header and a stub, ~0.2 KB) as a printf
 *      format, its bytes as they are but for NUL, newline, backslash and
 *      % (and two of bash's, below), which are escaped; the shell's `read
 *      -r` takes the line and its builtin printf writes it into the file,
 *      which the shell made (O_EXCL, private under umask 077);
 *   3. it execs that file with --mitogen-rm; the stub removes it at once
 *      and reads the rest of the unpacker (~3.5 KB) raw from stdin; the
 *      unpacker reads its header and the agent (deflated after a branch
 *      filter, ~59 KB), exactly, and execs the agent from a memfd
 *      (unpack.c has the details and the fallback);
 *   4. the agent reads the MGBOOT handshake and answers MGREADY.
 * The master sends the line, the rest of the unpacker, the packed agent
 * and the handshake in one go: nothing on the way reads ahead (the shell's
 * `read` takes one byte at a time from a pipe or socket, POSIX, which is
 * why the line is only the head: ~1.9 us a byte here), so each reader gets
 * its part.  No tool of the target's runs but chmod: gzip and head are not
 * needed.
 *
 * With the cache option (mg_connect_opts.cache) the first stage is another
 * script, which also needs mkdir, mv, rmdir, head and mktemp: it looks for
 * the program under ~/.cache/mitogen-c/<its SHA-256> (folder 0700).  On a
 * hit it says "hit" and execs it at once, so the master sends nothing but
 * the handshake (it skips uname too: the file is the one build there is, so
 * only a home shared with another architecture could hold it there, and
 * then its exec fails with the shell's message).  On a miss it says
 * "miss", reads a length line and copies that many bytes with `head -c` (the
 * agent's image as it runs, unpacker and trailer included, agent_image.c)
 * into a private folder beside the cache, renames it into place (atomic: a
 * concurrent first stage sees the whole file or none), says "MGSTAGE2" and
 * execs it there.  The marker is there because busybox's head reads stdin
 * through stdio, ahead of what it copies: the handshake only goes once the
 * copy is finished.  A miss is rare, so it takes the plain image rather
 * than a second unpacking path.  Without the option nothing is left on
 * disk.
 *
 * The file: the shell makes it itself, TMPDIR/mitogen-agent.<uuid>, with
 * a name from the kernel's /proc/sys/kernel/random/uuid (read with the
 * builtin), under noclobber (`set -C`), which opens with O_CREAT|O_EXCL:
 * a file nobody else can have made or swapped (TMPDIR is sticky, or
 * ours).  That saves a mktemp, a process start that costs as much as the
 * rest of the script on a busy host.  No other user can know the name
 * beforehand, so none can leave a FIFO there for the open to block on (or
 * a link to one: noclobber opens what is not a regular file) or race a
 * link in.  Should one still be there, the builtin that takes the
 * redirection is `[ -f /proc/self/fd/1 ]`, true only when what was opened
 * is a regular file, which under noclobber is one the shell created
 * (dash, bash and busybox refuse a regular file that was there), and the
 * name is written to only then; else, and where there is no /proc, the
 * script takes a mktemp name.  (`[`, not `:`: a failed redirection on a
 * special builtin ends a POSIX shell.)  chmod runs in the foreground (the
 * file is private from its creation and writing it keeps the mode), so
 * dash starts it with vfork, after the marker, so that it overlaps the
 * master's answer on its way.  In the background it cost the target ~4
 * ms more CPU per connect (the fork copies dash's page tables; 163-165
 * against 166-175 ms for the whole remote side of `mitogen run -- true`)
 * and gained no time: the exec waited for it all the same.  It runs
 * under LC_ALL=C: in a UTF-8 locale (ssh passes LANG on) it would load
 * the locale first, ~0.7 ms here, all of it on the way to the exec.  A
 * failed chmod shows at `[ -x ]` (without rm as well, the file stays:
 * no builtin removes a file); a failed mktemp ends the script before the
 * marker, and the master reports what it printed.  Where TMPDIR is
 * mounted noexec (hardened hosts do that to /tmp), `[ -x ]` says so
 * without a process (access(2) with X_OK fails there) and the program
 * goes to $HOME/.mitogen-agent.<pid> instead, checked the same way: a
 * failed exec ends a POSIX shell before its `rm`, leaving the file.  So
 * it does where TMPDIR is full (printf fails with ENOSPC).  IFS
 * is empty and globbing off (`set -f`), so a TMPDIR or HOME with spaces
 * or glob characters needs no quotes; `>|` writes past noclobber.  When
 * the line does not come whole (the master refused the target or went
 * away), `read` fails and the script removes the file and exits 1, rather
 * than exec an empty or partial file, which the shell would run as a
 * script (ENOEXEC) and leave behind.
 *
 * Lines before the first marker (a chatty shell profile) are skipped.
 * Everything here is a pure state machine over bytes, driven by the
 * connector on the broker thread; it owns no fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connect/connect.h"

/* No single quote in it: it goes on a command line inside '...'. */
static const char first_stage[] =
        "umask 77;IFS=;k=/proc/sys/kernel;t=${TMPDIR:-/tmp}/mitogen-agent;set -fC;"
        "{ read u<$k/random/uuid&&f=$t.$u&&[ -f /proc/self/fd/1 ]>$f;} 2>/dev/null||"
        "f=`mktemp $t.XXXXXX`||exit 1;"
        "{ read s<$k/ostype&&read m<$k/arch;} 2>/dev/null||s=`uname -sm` m=;"
        "echo MGSTAGE1 2 $s $m nocache;LC_ALL=C chmod 700 $f;"
        "LC_ALL=C read -r l&&"
        "{ LC_ALL=C printf \"$l\">|$f&&[ -x $f ]||{ rm -f $f;f=$HOME/.mitogen-agent.$$;true>$f&&"
        "chmod 700 $f&&LC_ALL=C printf \"$l\">|$f&&[ -x $f ];};}&&"
        "exec $f " MG_BOOTSTRAP_RM_FLAG ";rm -f $f;exit 1";

/* The caching first stage; %s is the program's hash.  No single quote. */
static const char cache_stage_fmt[] =
        "umask 77;IFS=;set -f;c=$HOME/.cache/mitogen-c;f=$c/%s;[ -x $f ]&&echo MGSTAGE1 2 - - hit&&"
        "exec $f;"
        "echo MGSTAGE1 2 `uname -sm` miss;"
        "mkdir -p $c&&chmod 700 $c&&d=`mktemp -d $c/.XXXXXX`||exit 1;g=$d/a;"
        ":>$g&&chmod 700 $g&&read n&&head -c $n>$g&&"
        "mv $g $f&&rmdir $d&&echo MGSTAGE2&&exec $f;rm -rf $d;exit 1";

/* The first stage's own version, the "2" after MGSTAGE1. */
#define STAGE_VERSION 2

/* What the master can send: the stock agent is built for one target. */
#define AGENT_OS "Linux"
#define AGENT_ARCH "x86_64"

/* Output a shell profile may print before the marker, at most. */
#define MAX_NOISE 65536

/* The kernel buffer of the channel from a command to us (see
 * cmd_launch_cb). */
#define CHAN_SNDBUF (2 * 1024 * 1024)

const char *mg__bootstrap_script(void)
{
	return first_stage;
}

/* Weak, so builds without the packed blob (the agent itself) link: they
 * send the program as it is. */
extern const uint8_t mg__agent_z_start[] __attribute__((weak));
extern const uint8_t mg__agent_z_end[] __attribute__((weak));
extern const uint8_t mg__agent_sha_start[] __attribute__((weak));
extern const uint8_t mg__agent_sha_end[] __attribute__((weak));

/* The hash names a cached program: 128 bits of its SHA-256 are plenty
 * against accidents, and the cache is the user's own. */
#define CACHE_HASH_LEN 32

static char cache_script[sizeof(cache_stage_fmt) + CACHE_HASH_LEN];
static char cache_command[sizeof(cache_script) + 16];
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_make(void)
{
	const uint8_t *p = mg__agent_sha_start, *end = mg__agent_sha_end;
	char hash[CACHE_HASH_LEN + 1];
	size_t i;

	if (p == NULL || end - p < CACHE_HASH_LEN)
		return;
	for (i = 0; i < CACHE_HASH_LEN; i++) {
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return;
		hash[i] = (char)p[i];
	}
	hash[i] = '\0';
	snprintf(cache_script, sizeof(cache_script), cache_stage_fmt, hash);
	snprintf(cache_command, sizeof(cache_command), "sh -c '%s'", cache_script);
}

const char *mg__bootstrap_cache_script(void)
{
	pthread_once(&cache_once, cache_make);
	return cache_script[0] != '\0' ? cache_script : NULL;
}

const char *mg__bootstrap_cache_command(void)
{
	return mg__bootstrap_cache_script() != NULL ? cache_command : NULL;
}

enum bs_state {
	BS_HELLO,     /* waiting for MGSTAGE1 */
	BS_PROGRAM,   /* (cache miss) sending the image; then waiting for MGSTAGE2 */
	BS_HANDSHAKE, /* sending MGBOOT (after the unpacker and program, if any) */
	BS_DONE,
};

#define MAX_PIECES 5

struct mg_bootstrap {
	enum bs_state state;
	char line[256];
	size_t nline;
	size_t noise;
	struct mg_buf hs; /* the MGBOOT handshake (owned) */
	uint8_t head[24]; /* the unpacker's header, or the cache's length line */
	uint8_t trailer[MG_IMAGE_TRAILER_LEN];
	/* Output: pieces sent in order. */
	const uint8_t *out[MAX_PIECES];
	size_t outlen[MAX_PIECES];
	int nout, iout;
	size_t off;
	bool stage2; /* MGSTAGE2 seen */
	bool cache;  /* the caching first stage runs */
	bool raw;    /* send the program unpacked even where it could go packed */
	uint64_t sent;
};

int mg__bootstrap_new(struct mg_buf *hs, struct mg_bootstrap **bp)
{
	struct mg_bootstrap *b = mg__calloc(1, sizeof(*b));

	if (b == NULL)
		return -ENOMEM;
	b->hs = *hs; /* moved */
	mg__buf_init(hs, 0);
	*bp = b;
	return 0;
}

void mg__bootstrap_free(struct mg_bootstrap *b)
{
	if (b == NULL)
		return;
	mg__buf_fini(&b->hs);
	mg__free(b);
}

void mg__bootstrap_set_cache(struct mg_bootstrap *b)
{
	b->cache = true;
}

uint64_t mg__bootstrap_sent(const struct mg_bootstrap *b)
{
	return b->sent;
}

static void queue(struct mg_bootstrap *b, const void *p, size_t n)
{
	b->out[b->nout] = p;
	b->outlen[b->nout++] = n;
}

/* mitogen-unpack's head (mg__unpack_head_len()) as the line the first
 * stage reads and hands to printf as its format, then the rest of it, sent
 * raw for the head's stub to read.  The line: every byte as it is (the
 * shells keep any byte in a variable but NUL, and `read -r` stops only at
 * a newline), but NUL, newline, backslash and %, escaped, and 0x01 and
 * 0x7f where bash would take them for its own quoting marks (CTLESC,
 * CTLNUL).  The script reads and prints it with LC_ALL=C: in a UTF-8
 * locale bash also drops a mark that comes before a byte no character can
 * start with.  Made once. */
static char *unpack_line;
static size_t unpack_line_len;
static pthread_once_t unpack_once = PTHREAD_ONCE_INIT;

/* Whether bash would misread its quoting mark (0x01 or 0x7f) before this
 * byte: one that is escaped or doubled in the line, or another mark.
 * Elsewhere the mark comes through as it is (tried on every three-byte
 * sequence of such bytes, quotes and $ in bash, dash and busybox). */
static bool bash_mark_before(uint8_t next)
{
	return next == '\0' || next == '\n' || next == '\\' || next == '%' || next == 1 ||
	       next == 0x7f;
}

char *mg__bootstrap_printf_line(const uint8_t *u, size_t ulen, size_t *lenp)
{
	size_t n = 0;
	char *line;

	if (ulen > (SIZE_MAX - 2) / 4 || (line = mg__malloc(4 * ulen + 2)) == NULL)
		return NULL;
	for (size_t i = 0; i < ulen; i++) {
		uint8_t c = u[i], next = i + 1 < ulen ? u[i + 1] : 0;

		if (c == '\0' && !(next >= '0' && next <= '7')) {
			memcpy(line + n, "\\0", 2);
			n += 2;
		} else if (c == '\0' || c == '\n' ||
		           ((c == 1 || c == 0x7f) && bash_mark_before(next))) {
			snprintf(line + n, 5, "\\%03o", c);
			n += 4;
		} else if (c == '\\' || c == '%') {
			line[n++] = (char)c;
			line[n++] = (char)c;
		} else {
			line[n++] = (char)c;
		}
	}
	line[n++] = '\n';
	*lenp = n;
	return line;
}

static const uint8_t *unpack_tail;
static size_t unpack_tail_len;

size_t mg__unpack_head_len(const uint8_t *u, size_t ulen)
{
	uint64_t phoff, filesz;

	if (ulen < 64 || memcmp(u, "\177ELF\2\1", 6) != 0)
		return 0;
	phoff = mg__get_le(u + 32, 8);
	if (phoff > ulen || ulen - phoff < 56 || mg__get_le(u + phoff + 8, 8) != 0)
		return 0;
	filesz = mg__get_le(u + phoff + 32, 8);
	return filesz >= phoff + 56 && filesz <= ulen ? (size_t)filesz : 0;
}

static void unpack_line_make(void)
{
	const uint8_t *u;
	size_t ulen, head;

	if (mg__unpack_image(&u, &ulen) != 0 || (head = mg__unpack_head_len(u, ulen)) == 0)
		return;
	unpack_line = mg__bootstrap_printf_line(u, head, &unpack_line_len);
	unpack_tail = u + head;
	unpack_tail_len = ulen - head;
}

/* Splits s at spaces into at most n words, in place; the word count, or
 * n + 1 when there are more. */
static int split_words(char *s, char **w, int n)
{
	int k = 0;

	for (;;) {
		while (*s == ' ')
			*s++ = '\0';
		if (*s == '\0')
			return k;
		if (k == n)
			return n + 1;
		w[k++] = s;
		while (*s != ' ' && *s != '\0')
			s++;
	}
}

/* A cache miss: the image as the agent runs, unpacker and trailer
 * included (agent_image.c), after its length; MGSTAGE2 then lets the
 * handshake go. */
static int queue_image(struct mg_bootstrap *b, char *why, size_t whylen)
{
	const uint8_t *prog, *u;
	size_t len, ulen;
	int r;

	if ((r = mg__agent_image(&prog, &len)) != 0 || (r = mg__unpack_image(&u, &ulen)) != 0) {
		snprintf(why, whylen, "no agent image to send: %s", mg_strerror(r));
		return MG_ECONNECT;
	}
	mg__image_trailer(b->trailer, ulen, len);
	snprintf((char *)b->head, sizeof(b->head), "%zu\n", len + ulen + sizeof(b->trailer));
	queue(b, b->head, strlen((char *)b->head));
	queue(b, prog, len);
	queue(b, u, ulen);
	queue(b, b->trailer, sizeof(b->trailer));
	b->state = BS_PROGRAM;
	return 0;
}

/* The plain first stage: the unpacker's line, its header, the program
 * (packed unless b->raw or this build has no packed form) and the
 * handshake, all at once. */
static int queue_unpack(struct mg_bootstrap *b, char *why, size_t whylen)
{
	const uint8_t *prog, *z = mg__agent_z_start, *z_end = mg__agent_z_end;
	size_t len, zlen;
	int r;

	pthread_once(&unpack_once, unpack_line_make);
	if (unpack_line == NULL) {
		snprintf(why, whylen,
		         "no mitogen-unpack to boot the target with (this context "
		         "was started without it)");
		return MG_ECONNECT;
	}
	if ((r = mg__agent_image(&prog, &len)) != 0) {
		snprintf(why, whylen, "no agent image to send: %s", mg_strerror(r));
		return MG_ECONNECT;
	}
	memcpy(b->head, "MGP1", 4);
	mg__put_le32(b->head + 12, (uint32_t)len);
	if (!b->raw && z != NULL && z_end > z) {
		zlen = (size_t)(z_end - z);
		mg__put_le32(b->head + 4, 1);
		mg__put_le32(b->head + 8, (uint32_t)zlen);
		prog = z;
		len = zlen;
	} else {
		mg__put_le32(b->head + 4, 0);
		mg__put_le32(b->head + 8, (uint32_t)len);
	}
	queue(b, unpack_line, unpack_line_len);
	queue(b, unpack_tail, unpack_tail_len);
	queue(b, b->head, 16);
	queue(b, prog, len);
	queue(b, b->hs.data, b->hs.len);
	b->state = BS_HANDSHAKE;
	return 0;
}

/* Parses "MGSTAGE1 2 <os> <arch> <cache>" and queues what goes next.
 * (By hand rather than with sscanf, which would pull musl's whole scanf
 * and float parser into the agent.) */
static int hello(struct mg_bootstrap *b, char *why, size_t whylen)
{
	const char *os, *arch, *cache;
	char words[sizeof(b->line)], *w[5];
	size_t i;
	int ver = 0, nw;

	memcpy(words, b->line, sizeof(words));
	nw = split_words(words, w, 5);
	if (nw < 2 || strcmp(w[0], "MGSTAGE1") != 0 || strlen(w[1]) > 6) {
		snprintf(why, whylen, "the first stage sent a malformed marker \"%.80s\"", b->line);
		return MG_EPROTOCOL;
	}
	for (i = 0; w[1][i] != '\0'; i++) {
		if (w[1][i] < '0' || w[1][i] > '9') {
			snprintf(why, whylen, "the first stage sent a malformed marker \"%.80s\"",
			         b->line);
			return MG_EPROTOCOL;
		}
		ver = ver * 10 + (w[1][i] - '0');
	}
	/* The version first: another version's marker may have other words. */
	if (ver != STAGE_VERSION) {
		snprintf(why, whylen,
		         "first stage version mismatch: the target runs version %d, "
		         "this side %d",
		         ver, STAGE_VERSION);
		return MG_ECONNECT;
	}
	if (nw != 5) {
		snprintf(why, whylen, "the first stage sent a malformed marker \"%.80s\"", b->line);
		return MG_EPROTOCOL;
	}
	os = w[2];
	arch = w[3];
	cache = w[4];
	if (b->cache ? strcmp(cache, "hit") != 0 && strcmp(cache, "miss") != 0
	             : strcmp(cache, "nocache") != 0) {
		snprintf(why, whylen, "the first stage sent an unexpected cache state \"%.16s\"",
		         cache);
		return MG_EPROTOCOL;
	}
	if (strcmp(cache, "hit") == 0) {
		/* The target runs its cached copy: only the handshake goes. */
		queue(b, b->hs.data, b->hs.len);
		b->state = BS_HANDSHAKE;
		return 0;
	}
	if (strcmp(os, AGENT_OS) != 0 || strcmp(arch, AGENT_ARCH) != 0) {
		snprintf(why, whylen,
		         "no agent built for the target's OS/arch %.64s/%.64s (this build has "
		         "%s/%s)",
		         os, arch, AGENT_OS, AGENT_ARCH);
		return MG_ECONNECT;
	}
	return b->cache ? queue_image(b, why, whylen) : queue_unpack(b, why, whylen);
}

/* A complete line (newline dropped) from the target. */
static int on_line(struct mg_bootstrap *b, char *why, size_t whylen)
{
	if (b->state == BS_HELLO) {
		if (strncmp(b->line, "MGSTAGE1 ", 9) == 0) {
			mg__debug("first stage: %s", b->line);
			return hello(b, why, whylen);
		}
		return 0; /* profile noise */
	}
	if (b->state == BS_PROGRAM && !b->stage2 && strcmp(b->line, "MGSTAGE2") == 0) {
		mg__debug("first stage: program received");
		b->stage2 = true;
		return 0;
	}
	snprintf(why, whylen, "unexpected output from the first stage: \"%.80s\"", b->line);
	return MG_EPROTOCOL;
}

int mg__bootstrap_input(struct mg_bootstrap *b, const char *p, size_t n, char *why, size_t whylen)
{
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		if (b->state >= BS_HANDSHAKE || (b->state == BS_PROGRAM && b->stage2)) {
			/* Nothing may come before our handshake is read. */
			snprintf(why, whylen, "unexpected output from the first stage");
			return MG_EPROTOCOL;
		}
		if (p[i] != '\n') {
			if (b->nline < sizeof(b->line) - 1)
				b->line[b->nline++] = p[i];
			if (++b->noise > MAX_NOISE) {
				snprintf(why, whylen, "no first-stage marker in %d bytes of output",
				         MAX_NOISE);
				return MG_EPROTOCOL;
			}
			continue;
		}
		b->line[b->nline] = '\0';
		b->nline = 0;
		if ((r = on_line(b, why, whylen)) != 0)
			return r;
	}
	/* The image is out and the cache has it: the handshake goes. */
	if (b->state == BS_PROGRAM && b->stage2 && b->iout == b->nout) {
		b->nout = b->iout = 0;
		b->off = 0;
		queue(b, b->hs.data, b->hs.len);
		b->state = BS_HANDSHAKE;
	}
	return 0;
}

bool mg__bootstrap_output(struct mg_bootstrap *b, const void **pp, size_t *lenp)
{
	if (b->iout >= b->nout)
		return false;
	*pp = b->out[b->iout] + b->off;
	*lenp = b->outlen[b->iout] - b->off;
	return true;
}

void mg__bootstrap_wrote(struct mg_bootstrap *b, size_t n)
{
	b->sent += n;
	b->off += n;
	if (b->off < b->outlen[b->iout])
		return;
	b->off = 0;
	if (++b->iout < b->nout)
		return;
	if (b->state == BS_HANDSHAKE)
		b->state = BS_DONE;
	else if (b->state == BS_PROGRAM && b->stage2)
		mg__bootstrap_input(b, NULL, 0, NULL, 0); /* queues the handshake */
}

bool mg__bootstrap_done(const struct mg_bootstrap *b)
{
	return b->state == BS_DONE;
}

/* ------------------------------------------------------------------------ */
/* Commands that lead to a first stage. */

static char command[sizeof(first_stage) + 16];
static pthread_once_t command_once = PTHREAD_ONCE_INIT;

static void command_make(void)
{
	snprintf(command, sizeof(command), "sh -c '%s'", first_stage);
}

const char *mg__bootstrap_command(void)
{
	pthread_once(&command_once, command_make);
	return command;
}

int mg__argv_add(char ***argvp, size_t *np, const char *s)
{
	char **a = mg__realloc(*argvp, (*np + 2) * sizeof(char *));

	if (a == NULL)
		return -ENOMEM;
	*argvp = a;
	if ((a[*np] = mg__strdup(s)) == NULL) {
		a[*np] = NULL;
		return -ENOMEM;
	}
	a[++*np] = NULL;
	return 0;
}

void mg__argv_free(char **argv)
{
	size_t i;

	for (i = 0; argv != NULL && argv[i] != NULL; i++)
		mg__free(argv[i]);
	mg__free(argv);
}

void mg__cmd_fini(struct mg_cmd *cmd)
{
	mg__argv_free(cmd->argv);
	mg__argv_free(cmd->envp);
	if (cmd->secret != NULL) {
		explicit_bzero(cmd->secret, strlen(cmd->secret));
		mg__free(cmd->secret);
	}
	memset(cmd, 0, sizeof(*cmd));
}

struct cmd_launch {
	struct mg_context *c;
	struct mg_cmd cmd;
	char *path;
	struct mg_bootstrap *bs;
	struct mg_prompt *prompt;
};

static void cmd_launch_free(struct cmd_launch *L)
{
	mg__cmd_fini(&L->cmd);
	mg__free(L->path);
	mg__bootstrap_free(L->bs);
	mg__prompt_free(L->prompt);
	mg__free(L);
}

extern char **environ;

/* Thread: broker (see local.c for why children are made there). */
static void cmd_launch_cb(void *arg)
{
	struct cmd_launch *L = arg;
	struct mg_conn_extra x = {.pty_master = -1, .pty_slave = -1};
	struct mg_spawn sp;
	int sv[2] = {-1, -1}, ep[2] = {-1, -1}, r;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0 ||
	    pipe2(ep, O_CLOEXEC) != 0) {
		r = -errno;
		goto fail;
	}
	/* Room for a burst from the command (ssh writes whatever its
	 * channel received in one go): when its write stops short, ssh
	 * keeps the rest and moves it to the front of its buffer on every
	 * later read from the network, a copy of up to a channel window
	 * each time that cost it a fifth of its CPU in a pull.  The kernel
	 * caps the request at net.core.wmem_max; memory is only used while
	 * bytes wait in it. */
	(void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &(int){CHAN_SNDBUF}, sizeof(int));
	if (L->prompt != NULL && !L->cmd.prompt_stderr &&
	    (r = mg__pty_open(&x.pty_master, &x.pty_slave)) != 0)
		goto fail;
	/* The child moves its stdio into 0..2 first: the slave must not be
	 * one of them (only possible when this process closed its own). */
	if (x.pty_slave >= 0 && x.pty_slave < 3) {
		int fd = fcntl(x.pty_slave, F_DUPFD_CLOEXEC, 3);

		if (fd < 0) {
			r = -errno;
			goto fail;
		}
		close(x.pty_slave);
		x.pty_slave = fd;
	}
	memset(&sp, 0, sizeof(sp));
	sp.exec_fd = -1;
	sp.path = L->path;
	sp.argv = L->cmd.argv;
	sp.envp = L->cmd.envp != NULL ? L->cmd.envp : environ;
	sp.chan_fd = sv[1];
	sp.err_fd = ep[1];
	sp.ctty = x.pty_slave >= 0;
	sp.ctty_fd = x.pty_slave;
	r = mg__spawn(&sp);
	close(sv[1]);
	close(ep[1]);
	sv[1] = ep[1] = -1;
	if (r != 0)
		goto fail;
	x.bs = L->bs;
	x.prompt = L->prompt;
	x.explain = L->cmd.explain;
	x.prompt_stderr = L->cmd.prompt_stderr;
	L->bs = NULL;
	L->prompt = NULL;
	mg__conn_launched_ex(L->c, sv[0], ep[0], sp.pid, sp.pidfd, &x);
	cmd_launch_free(L);
	return;
fail:
	mg__spawn_close_fds(sv, ep);
	if (x.pty_master >= 0)
		close(x.pty_master);
	if (x.pty_slave >= 0)
		close(x.pty_slave);
	mg__conn_launch_failed(L->c, MG_ECONNECT, "cannot run %s: %s", L->cmd.argv[0],
	                       mg_strerror(r));
	cmd_launch_free(L);
}

/* The methods build argv with the plain first stage (the script, or the
 * sh -c command for ssh); with the cache option it is swapped here for the
 * caching one, so every method gets the option alike. */
static int use_cache(struct mg_cmd *cmd, struct mg_bootstrap *bs)
{
	const char *script = mg__bootstrap_cache_script();
	size_t i;

	if (script == NULL) {
		mg__debug("no program hash in this build: connecting without the cache");
		return 0;
	}
	for (i = 0; cmd->argv[i] != NULL; i++) {
		const char *to = strcmp(cmd->argv[i], first_stage) == 0 ? script
		                 : strcmp(cmd->argv[i], mg__bootstrap_command()) == 0
		                         ? mg__bootstrap_cache_command()
		                         : NULL;
		char *copy;

		if (to == NULL)
			continue;
		if ((copy = mg__strdup(to)) == NULL)
			return -ENOMEM;
		mg__free(cmd->argv[i]);
		cmd->argv[i] = copy;
		mg__bootstrap_set_cache(bs);
	}
	return 0;
}

void mg__cmd_start(struct mg_context *c, const struct mg_connect_opts *o, struct mg_cmd *cmd,
                   mg_conn_done_cb done, void *done_arg)
{
	struct cmd_launch *L = NULL;
	struct mg_boot boot;
	struct mg_buf hs;
	int r;

	if (mg__conn_new(c, o->connect_timeout_ms, done, done_arg) != 0) {
		mg__cmd_fini(cmd);
		return;
	}
	mg__buf_init(&hs, MG_HS_BOOT_LINE_LEN + 4 + MG_HS_BOOT_MAX);
	if ((L = mg__calloc(1, sizeof(*L))) == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	L->c = c;
	L->cmd = *cmd;
	memset(cmd, 0, sizeof(*cmd));
	mg__boot_for_child(c->router, c->id, c->name, &boot);
	if ((r = mg__hs_boot_build(&boot, &hs)) != 0 || (r = mg__bootstrap_new(&hs, &L->bs)) != 0)
		goto fail;
	if (o->cache && (r = use_cache(&L->cmd, L->bs)) != 0)
		goto fail;
	/* A privilege change on this host (sudo and the like) moves the
	 * program through a local pipe, where unpacking (~1 ms) costs more
	 * time than the bytes it saves. */
	L->bs->raw = o->method != MG_METHOD_SSH && o->method != MG_METHOD_LOCAL;
	if ((L->cmd.secret != NULL || L->cmd.prompt_stderr) &&
	    (r = mg__prompt_new(L->cmd.secret, L->cmd.marks, &L->prompt)) != 0)
		goto fail;
	if ((L->path = mg__find_program(L->cmd.argv[0])) == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	if ((r = mg__conn_post(c, cmd_launch_cb, L)) != 0) {
		mg__conn_launch_failed(c, r, "the router is shutting down");
		cmd_launch_free(L);
	}
	return;
fail:
	mg__buf_fini(&hs);
	mg__cmd_fini(cmd);
	mg__conn_launch_failed(c, MG_ECONNECT, "cannot prepare the connect: %s", mg_strerror(r));
	if (L != NULL)
		cmd_launch_free(L);
}

void mg__first_stage_local_start(struct mg_context *c, const struct mg_connect_opts *o,
                                 mg_conn_done_cb done, void *done_arg)
{
	struct mg_cmd cmd = {0};
	size_t n = 0;
	int r;

	if ((r = mg__argv_add(&cmd.argv, &n, o->program != NULL ? o->program : "sh")) != 0 ||
	    (r = mg__argv_add(&cmd.argv, &n, "-c")) != 0 ||
	    (r = mg__argv_add(&cmd.argv, &n, first_stage)) != 0)
		goto fail;
	/* With env given, the shell gets those entries alone: the tests run
	 * it with a PATH of busybox applets only. */
	if (o->env != NULL) {
		size_t ne = 0;

		for (size_t i = 0; o->env[i] != NULL; i++)
			if ((r = mg__argv_add(&cmd.envp, &ne, o->env[i])) != 0)
				goto fail;
		if (cmd.envp == NULL && (cmd.envp = mg__calloc(1, sizeof(char *))) == NULL) {
			r = -ENOMEM;
			goto fail;
		}
	}
	mg__cmd_start(c, o, &cmd, done, done_arg);
	return;
fail:
	mg__cmd_fini(&cmd);
	mg__context_set_failed(c, r, "%s: %s", c->name, mg_strerror(r));
	if (done != NULL)
		done(done_arg, c, r, mg_strerror(r));
}
