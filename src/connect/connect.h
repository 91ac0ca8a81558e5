/*
 * connect.h: starting children.  One file per connection method (local.c,
 * fork.c, ssh.c, sudo.c, su.c, doas.c, and via.c with its options codec
 * via_opts.c) over shared parts: the agent's bytes (agent_image.c), the
 * handshake (handshake.c, boot.c), process spawning (spawn.c) and the
 * connector, the state machine on the broker thread that waits for a new
 * child's ready marker (connector.c).
 */
#ifndef MG_CONNECT_H
#define MG_CONNECT_H

#include "context/context.h"

/* ------------------------------------------------------------------------ */
/* The handshake (handshake.c).  See docs/PROTOCOL.md, "Bootstrap". */

/* Parent -> child: "MGBOOT vvvvvvvv\n" (the protocol version, 8 decimal
 * digits), a u32 BE length, then that many bytes of boot map. */
#define MG_HS_BOOT_MAGIC "MGBOOT "
#define MG_HS_BOOT_LINE_LEN 16u
#define MG_HS_BOOT_MAX 65536u
/* Child -> parent: "MGREADY vvvvvvvv pppppppppp\n" (version, pid). */
#define MG_HS_READY_MAGIC "MGREADY "
#define MG_HS_READY_LEN 28u

/* Appends the parent's side of the handshake for boot to out.  Thread:
 * any.  0, MG_ELIMIT, -ENOMEM. */
int mg__hs_boot_build(const struct mg_boot *boot, struct mg_buf *out);

/* Formats the ready marker for (version, pid) into out[MG_HS_READY_LEN]. */
void mg__hs_ready_format(uint32_t version, uint32_t pid, char *out);

/* Parses a ready marker.  0 and the fields, or MG_EPROTOCOL when it is not
 * one (with a description in why[whylen]), or MG_ECONNECT for a version
 * other than MG_PROTOCOL_VERSION (why names both). */
int mg__hs_ready_parse(const char *in, uint32_t *versionp, uint32_t *pidp, char *why,
                       size_t whylen);

/* Writes the ready marker for this process to wfd (blocking).  0 or
 * -errno.  Thread: any. */
int mg__hs_write_ready(int wfd);

/* The child's side: reads the parent's handshake from rfd (blocking),
 * decodes the boot parameters into *bootp and writes the ready marker to
 * wfd.  A version mismatch or a malformed handshake is refused with a line
 * on stderr and MG_EPROTOCOL; the parent then reports that text.  Neither
 * fd is closed.  Thread: any (normally main, before anything else). */
int mg__connect_child_boot(int rfd, int wfd, struct mg_boot *bootp);

/* ------------------------------------------------------------------------ */
/* The agent's bytes (agent_image.c). */

/* The stock agent's executable image: embedded in the library, or in the
 * agent itself read once from /proc/self/exe.  *datap is borrowed for the
 * life of the process.  0, or -errno / MG_ECONNECT when there is none.
 * Thread: any. */
int mg__agent_image(const uint8_t **datap, size_t *lenp);

/* mitogen-unpack, which a first stage writes and runs (agent/unpack.c):
 * embedded in the library, or found after the agent's own image (see
 * agent_image.c).  *datap is borrowed for the life of the process.  0, or
 * MG_ECONNECT when there is none.  Thread: any. */
int mg__unpack_image(const uint8_t **datap, size_t *lenp);

/* Writes the trailer that follows the agent and the unpacker in a running
 * agent's image ("MGU1", the two lengths, 0; agent_image.c).  Thread:
 * any. */
#define MG_IMAGE_TRAILER_LEN 16
void mg__image_trailer(uint8_t t[MG_IMAGE_TRAILER_LEN], size_t unpack_len, size_t agent_len);

/* A read-only, sealed, close-on-exec fd holding the agent (with the
 * unpacker behind it, agent_image.c), made once and
 * cached (a memfd, or an unlinked private temporary file where memfd_create
 * is missing); exec it with execveat(fd, "", ..., AT_EMPTY_PATH).  Borrowed:
 * never close it.  Returns the fd or a negative code.  Thread: any. */
int mg__agent_memfd(void);

/* The fallback behind mg__agent_memfd(): writes len bytes of data to a
 * private (0700) file in a private directory under $TMPDIR (or /tmp),
 * opens it read-only and removes both at once.  Returns the fd (caller
 * closes) or -errno.  Thread: any. */
int mg__agent_tmpfile(const uint8_t *data, size_t len);

/* Forgets the cached fd without closing it: for a forked child that has
 * just closed every fd it inherited.  Thread: the only one. */
void mg__agent_forget(void);

/* ------------------------------------------------------------------------ */
/* Spawning (spawn.c). */

struct mg_spawn {
	/* In: what to run.  exec_fd >= 0 runs that fd (execveat), else path. */
	int exec_fd;
	const char *path;
	char *const *argv;
	char *const *envp;
	int chan_fd; /* becomes the child's fd 0 and 1 */
	int err_fd;  /* becomes the child's fd 2 */
	/* With ctty set, the child makes a new session whose controlling
	 * terminal is ctty_fd (a pty slave), for programs that prompt. */
	bool ctty;
	int ctty_fd;
	/* Out. */
	pid_t pid;
	int pidfd; /* -1 when the kernel has no pidfds */
};

/* Starts a child with vfork semantics (clone(CLONE_VM|CLONE_VFORK)): it
 * shares nothing but memory until it execs, so this costs little more
 * than the exec itself.  The child gets chan_fd on 0 and 1, err_fd on 2,
 * every other fd closed at exec, default signal handling, an empty signal
 * mask, and SIGKILL when this thread exits (PR_SET_PDEATHSIG).  Returns 0
 * with pid and pidfd set, or -errno when the child could not be made or
 * could not exec (the child is then already reaped).  Blocks until the
 * child has exec'd.  Thread: the one whose exit should kill the child
 * (the broker's). */
int mg__spawn(struct mg_spawn *sp);

/* Resets signal handlers that call functions to SIG_DFL, and ignored
 * signals whose bit (1 << (n - 1) for signal n) is in unignore too, and
 * empties the signal mask.  Plain system calls only: for a new child
 * between clone or fork and exec.  Thread: the only one.  The exec
 * service's children share it (declared again in services/svc.h, the one
 * header the services see). */
void mg__spawn_reset_signals(uint64_t unignore);

/* Closes the channel pair and the stderr pipe of a launch that failed;
 * entries already -1 (handed on or never made) are skipped. */
void mg__spawn_close_fds(int chan[2], int err[2]);

/* Waits up to ms (< 0: forever) for the child to exit and reaps it.  0 and
 * its wait status, -ETIMEDOUT, or -errno.  Thread: any. */
int mg__proc_wait(pid_t pid, int pidfd, int ms, int *statusp);

/* Describes a wait status ("exited with status 1", "killed by signal 9
 * (Killed)") into buf. */
void mg__proc_describe(int status, char *buf, size_t len);

/* ------------------------------------------------------------------------ */
/* The connector (connector.c): a started child on its way to ready, and
 * afterwards its process (reaping, stderr). */

struct mg_conn;

/* Told once when a connect finishes, after c was marked ready (code 0) or
 * failed (code and text).  Thread: broker, or the starter's when the
 * launch could not even be posted. */
typedef void (*mg_conn_done_cb)(void *arg, struct mg_context *c, int code, const char *text);

/* Makes the connector of c, which must be new and connecting: sets c->ops
 * and c->conn.  The connect's deadline runs from now.  done may be NULL.
 * 0, or -ENOMEM once c is failed and done told.  Thread: any. */
int mg__conn_new(struct mg_context *c, int timeout_ms, mg_conn_done_cb done, void *done_arg);

/* Posts the method's launch command fn(arg) to c's broker; the connector
 * knows a launch is pending so freeing c waits for it.  0 or the post's
 * error (fn will not run).  Thread: any. */
int mg__conn_post(struct mg_context *c, mg_cmd_cb fn, void *arg);
/* mg__conn_post() to the broker's helper thread (mg__broker_post_helper()),
 * for a launch that would hold the broker up; fn reports back to the broker
 * with mg__broker_post_force().  Thread: any. */
int mg__conn_post_helper(struct mg_context *c, mg_cmd_cb fn, void *arg);

/* The launch command started the child: chan is the parent's end of the
 * channel, errfd the read end of its stderr pipe, pidfd -1 when the kernel
 * has none.  Takes ownership of the fds; from here the connector waits for
 * the ready marker, attaches chan to c's router and marks c ready, or kills
 * the child and marks c failed with its stderr.  Thread: broker. */
void mg__conn_launched(struct mg_context *c, int chan, int errfd, pid_t pid, int pidfd);

/* The launch failed before any child existed: marks c failed with
 * "<name>: <text>".  Thread: broker, or any when the launch was never
 * posted. */
void mg__conn_launch_failed(struct mg_context *c, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Says what a failed program's stderr (and pty) text means, e.g.
 * "authentication failed" for ssh's "Permission denied", or NULL. */
typedef const char *(*mg_conn_explain_cb)(const char *err);

struct mg_bootstrap;
struct mg_prompt;

/* What methods that boot through the first stage or answer a prompt hand
 * the connector besides the child (ownership of every member passes; the
 * struct is cleared). */
struct mg_conn_extra {
	struct mg_bootstrap *bs;   /* NULL: the child reads the handshake at once */
	struct mg_prompt *prompt;  /* NULL: nothing to answer */
	int pty_master, pty_slave; /* the child's controlling terminal, or -1 */
	mg_conn_explain_cb explain;
	/* The prompt shows on the child's stderr and is answered on the
	 * channel (su's PAM conversation), not on a pty. */
	bool prompt_stderr;
};

/* mg__conn_launched() for such methods.  Thread: broker. */
void mg__conn_launched_ex(struct mg_context *c, int chan, int errfd, pid_t pid, int pidfd,
                          struct mg_conn_extra *x);

/* The ops every local and fork child uses. */
extern const struct mg_conn_ops mg__conn_ops;

/* ------------------------------------------------------------------------ */
/* Little-endian fields of the first stage's headers and the image's
 * trailer (bootstrap.c, agent_image.c, agent/unpack.c's format). */
static inline void mg__put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++, v >>= 8)
		p[i] = (uint8_t)v;
}

static inline uint64_t mg__get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	while (n-- > 0)
		v = v << 8 | p[n];
	return v;
}

/* The first stage (bootstrap.c): see the comment there. */

/* The flag the first stage execs the agent with: delete your own file. */
#define MG_BOOTSTRAP_RM_FLAG "--mitogen-rm"

/* The first stage's POSIX sh text (no single quote in it).  Static. */
const char *mg__bootstrap_script(void);

/* The n bytes at p as the line the first stage reads and gives printf as
 * its format (mitogen-unpack's line, bootstrap.c), newline included, in
 * *lenp bytes; NULL on -ENOMEM.  Caller frees.  Thread: any. */
char *mg__bootstrap_printf_line(const uint8_t *p, size_t n, size_t *lenp);

/* How many of mitogen-unpack's ulen bytes at u go as the printf line: its
 * head, which its one program header loads (agent/unpack.ld); the rest
 * follows raw.  0 when u is not such a program.  Thread: any. */
size_t mg__unpack_head_len(const uint8_t *u, size_t ulen);

/* The master's side of a first stage, with hs (the MGBOOT handshake) moved
 * in (hs is left empty).  Caller frees.  0 or -ENOMEM.  Thread: any. */
int mg__bootstrap_new(struct mg_buf *hs, struct mg_bootstrap **bp);
void mg__bootstrap_free(struct mg_bootstrap *b);

/* Takes n bytes the target wrote.  0, or MG_EPROTOCOL / MG_ECONNECT (no
 * agent for its OS/arch) with the reason in why. */
int mg__bootstrap_input(struct mg_bootstrap *b, const char *p, size_t n, char *why, size_t whylen);

/* The bytes waiting to go to the target (borrowed until the next call),
 * false when none; mg__bootstrap_wrote() says how many went. */
bool mg__bootstrap_output(struct mg_bootstrap *b, const void **pp, size_t *lenp);
void mg__bootstrap_wrote(struct mg_bootstrap *b, size_t n);

/* The target runs the caching first stage (mg__bootstrap_cache_script):
 * it answers "hit" or "miss" rather than "nocache". */
void mg__bootstrap_set_cache(struct mg_bootstrap *b);

/* The caching first stage, and it as one remote command line (sh -c
 * '<script>'); NULL when this build has no program hash.  Static. */
const char *mg__bootstrap_cache_script(void);
const char *mg__bootstrap_cache_command(void);

/* True once the handshake went out: next comes the ready marker. */
bool mg__bootstrap_done(const struct mg_bootstrap *b);

/* Bytes sent so far (marker answers, program, handshake). */
uint64_t mg__bootstrap_sent(const struct mg_bootstrap *b);

/* A command that leads to a first stage (ssh, sudo, a local sh): argv[0]
 * is the program, found on PATH.  Every member is owned by the command. */
struct mg_cmd {
	char **argv;              /* NULL-ended, each string and the array allocated */
	char **envp;              /* NULL: this process's environment */
	char *secret;             /* typed at a prompt on a pty; NULL: no pty */
	const char *const *marks; /* static: what ends a prompt (lower case) */
	mg_conn_explain_cb explain;
	/* The program prompts on its stderr and reads the answer from its
	 * stdin (PAM's text conversation, as su does): no pty, and a prompt
	 * is watched for even without a secret, to fail at once. */
	bool prompt_stderr;
};

/* Starts c with cmd (consumed: freed and its secret wiped whatever
 * happens); failures are reported through c.  Thread: any but the
 * broker. */
void mg__cmd_start(struct mg_context *c, const struct mg_connect_opts *o, struct mg_cmd *cmd,
                   mg_conn_done_cb done, void *done_arg);

/* Frees what cmd holds, wiping the secret. */
void mg__cmd_fini(struct mg_cmd *cmd);

/* A NULL-ended argv under construction: mg__argv_add copies s.  0 or
 * -ENOMEM (the argv is kept whole for freeing). */
int mg__argv_add(char ***argvp, size_t *np, const char *s);
void mg__argv_free(char **argv);

/* The first stage as one remote command line: sh -c '<script>'.  Static. */
const char *mg__bootstrap_command(void);

/* ------------------------------------------------------------------------ */
/* Pseudo-terminals and prompts (pty.c). */

/* A new pty: both ends O_CLOEXEC, the slave O_NOCTTY.  0 or -errno. */
int mg__pty_open(int *masterp, int *slavep);

/* Answers the first prompt that shows one of marks (static; lower case in
 * ASCII, other bytes as the program prints them) with secret (copied; NULL
 * when none was given).  Caller frees.  0 or -ENOMEM. */
int mg__prompt_new(const char *secret, const char *const *marks, struct mg_prompt **pp);
/* True once the secret was typed. */
bool mg__prompt_answered(const struct mg_prompt *p);
/* Wipes the secret and frees; NULL is a no-op. */
void mg__prompt_free(struct mg_prompt *p);
/* Takes text the program printed; types the secret into fd (the pty's
 * master, or the channel) at the first prompt.  0, MG_EREFUSED at a second
 * prompt (the secret was refused), -ENOKEY at a prompt with no secret, or
 * -errno when typing failed.  p NULL: 0. */
int mg__prompt_feed(struct mg_prompt *p, int fd, const char *data, size_t n);

/* ------------------------------------------------------------------------ */
/* Methods. */

/* Makes context id for o (method, name, ...) and starts connecting it,
 * telling done (may be NULL) when it finishes.  Returns 0 and the context
 * (caller frees), or an error when not even a context could be made; later
 * failures are the context's.  Thread: any but the broker. */
int mg__connect_start_id(struct mg_router *r, const struct mg_connect_opts *o, uint32_t id,
                         mg_conn_done_cb done, void *done_arg, struct mg_context **cp);

/* Start the local / fork method for c, just made in the connecting state;
 * failures are reported through c.  Thread: any but the broker. */
void mg__local_start(struct mg_context *c, const struct mg_connect_opts *o, mg_conn_done_cb done,
                     void *done_arg);
void mg__fork_start(struct mg_context *c, const struct mg_connect_opts *o, mg_conn_done_cb done,
                    void *done_arg);
/* The ssh and sudo methods, and local with first_stage (ssh.c, sudo.c,
 * bootstrap.c). */
void mg__ssh_start(struct mg_context *c, const struct mg_connect_opts *o, mg_conn_done_cb done,
                   void *done_arg);
void mg__sudo_start(struct mg_context *c, const struct mg_connect_opts *o, mg_conn_done_cb done,
                    void *done_arg);
/* The su and doas methods (su.c, doas.c). */
void mg__su_start(struct mg_context *c, const struct mg_connect_opts *o, mg_conn_done_cb done,
                  void *done_arg);
void mg__doas_start(struct mg_context *c, const struct mg_connect_opts *o, mg_conn_done_cb done,
                    void *done_arg);
/* Starts cmd for c, with a copy of o->password as its secret, or reports
 * why its argv could not be built (r): the tail every command method
 * shares.  Thread: any but the broker. */
void mg__cmd_start_or_fail(struct mg_context *c, const struct mg_connect_opts *o,
                           struct mg_cmd *cmd, int r, mg_conn_done_cb done, void *done_arg);

/* mg__argv_add() for each string up to the NULL (mg__argv_addn), or of a
 * NULL-ended list (mg__argv_addl; NULL adds nothing).  0 or -ENOMEM. */
int mg__argv_addn(char ***argvp, size_t *np, ...) __attribute__((sentinel));
int mg__argv_addl(char ***argvp, size_t *np, const char *const *list);
void mg__first_stage_local_start(struct mg_context *c, const struct mg_connect_opts *o,
                                 mg_conn_done_cb done, void *done_arg);

/* Finds a program named without a slash on PATH, as execvp would; a copy
 * (caller frees) or NULL. */
char *mg__find_program(const char *name);
/* Connects c through o->via by calling "mg.connect" there.  Thread: any
 * but the broker. */
void mg__via_start(struct mg_context *c, const struct mg_connect_opts *o);

/* The options of a connect through a gateway, as a MessagePack map of
 * name -> value (via_opts.c): every option of every method but via, each
 * given only when it differs from mg_connect_opts_init()'s default.
 * Appends to b.  0, MG_ELIMIT, -ENOMEM. */
int mg__via_opts_encode(const struct mg_connect_opts *o, struct mg_buf *b);

/* What decoding keeps alive: the NUL-terminated strings and the arrays
 * the decoded options point to.  Wiped and freed by _fini. */
struct mg_via_opts {
	struct mg_connect_opts o;
	char *strs; /* the strings, NUL-terminated, one after another */
	size_t strs_len;
	const char **slots; /* the lists, each NULL-ended */
	size_t nslots;
};

/* Decodes p[0..n) (one map) into v->o over mg_connect_opts_init(method)'s
 * defaults.  0, or MG_EDECODE / MG_ELIMIT / -ENOMEM with the reason in
 * why[whylen] (an unknown, repeated, ill-typed or oversized option).  Call
 * mg__via_opts_fini() whatever it returns.  Thread: any. */
int mg__via_opts_decode(const void *p, size_t n, struct mg_via_opts *v, char *why, size_t whylen);
void mg__via_opts_fini(struct mg_via_opts *v);

/* Forgets the contexts this process started for its parent through
 * mg.connect: for a fork child, where they are the parent's.  Thread: the
 * only one. */
void mg__via_forget(void);

/* Puts the channel on fds 0 and 1 and err_fd on 2 in a new child, moving
 * sources below 3 out of the way first.  0 or -1 with errno.  Thread: the
 * new child's only one. */
int mg__spawn_child_fds(int chan_fd, int err_fd);

/* The process's own executable path, for ship self. */
#define MG_SELF_EXE "/proc/self/exe"
/* The environment variable a ship-self child finds set. */
#define MG_CONTEXT_ENV "MITOGEN_CONTEXT"

/* A tool's error text and what it means, for the explain hooks: returns
 * the meaning of the first entry whose text occurs in err, or NULL. */
struct mg_err_text {
	const char *text, *what;
};
const char *mg__explain_text(const struct mg_err_text *table, size_t n, const char *err);
/* Defines the explain hook fn over table. */
#define MG_EXPLAIN_FN(fn, table)                                                       \
	static const char *fn(const char *err)                                         \
	{                                                                              \
		return mg__explain_text(table, sizeof(table) / sizeof(table[0]), err); \
	}

#endif
