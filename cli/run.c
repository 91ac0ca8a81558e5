/*
 * run.c: `mitogen run [options] [--] COMMAND...`: a shell command on every
 * target, output streamed back as it comes.  The words are joined with
 * spaces and run by /bin/sh -c on the target, as ssh and pdsh do.  With
 * --stdin the tool's standard input is read to its end first, and every
 * command gets the same bytes on its stdin (as clush does); otherwise the
 * commands' stdin is /dev/null, as with pdsh, so a tool run in a loop that
 * reads its own stdin does not swallow it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* The most --stdin keeps in memory: every target is sent the same buffer. */
#define STDIN_MAX ((size_t)256 << 20)

/* Reads fd to its end into b: 0, or a usage error's status. */
static int read_input(int fd, struct sbuf *b)
{
	char buf[65536];
	ssize_t n;

	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n == 0)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return usage_error("--stdin: cannot read standard input: %s",
			                   strerror(errno));
		if (b->len + (size_t)n > STDIN_MAX)
			return usage_error("--stdin takes at most %zu MiB", STDIN_MAX >> 20);
		sb_put(b, buf, (size_t)n);
	}
}

/* --outdir / --errdir: a target's stdout and stderr copied, as they come,
 * to DIR/TARGET (made anew, as the user's umask says). */
struct out_files {
	int fd[2]; /* -1: not asked for, or given up after a failed write */
	struct sbuf path[2];
	int err; /* the errno of the first failure */
	int err_stream;
};

/* Opens the files asked for; 0, or -1 with the target failed. */
static int out_files_open(struct cli *cli, struct target *t, struct out_files *of)
{
	memset(of, 0, sizeof(*of));
	of->fd[0] = of->fd[1] = -1;
	for (int k = 0; k < 2; k++) {
		if (cli->outdir[k] == NULL)
			continue;
		sb_printf(&of->path[k], "%s/", cli->outdir[k]);
		sb_put_name(&of->path[k], t->name);
		of->fd[k] = open(of->path[k].p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY,
		                 0666);
		if (of->fd[k] < 0) {
			target_fail(t, RES_FAILED, "cannot write %s: %s", of->path[k].p,
			            strerror(errno));
			return -1;
		}
	}
	return 0;
}

static void out_files_write(struct out_files *of, int stream, const void *p, size_t n)
{
	const char *at = p;
	ssize_t w;

	while (of->fd[stream] >= 0 && n > 0) {
		if ((w = write(of->fd[stream], at, n)) < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (of->err == 0) {
				of->err = w < 0 ? errno : EIO;
				of->err_stream = stream;
			}
			close(of->fd[stream]);
			of->fd[stream] = -1;
			return;
		}
		at += w;
		n -= (size_t)w;
	}
}

/* Closes the files; a failed write (or close: NFS reports late) fails a
 * target that otherwise succeeded. */
static void out_files_close(struct target *t, struct out_files *of)
{
	for (int k = 0; k < 2; k++) {
		if (of->fd[k] >= 0 && close(of->fd[k]) != 0 && of->err == 0) {
			of->err = errno;
			of->err_stream = k;
		}
	}
	if (of->err != 0 && t->result == RES_OK)
		target_fail(t, RES_FAILED, "writing %s: %s", of->path[of->err_stream].p,
		            strerror(of->err));
	sb_free(&of->path[0]);
	sb_free(&of->path[1]);
}

static int run_args(struct cli *cli, int argc, char **argv)
{
	struct sbuf b = {0};
	int i;

	if (argc == 0)
		return usage_error("no command given");
	for (i = 0; i < argc; i++) {
		if (i)
			sb_puts(&b, " ");
		sb_puts(&b, argv[i]);
	}
	if (b.len == 0) {
		sb_free(&b);
		return usage_error("the command is empty");
	}
	cli->command = b.p;
	return cli->stdin_input ? read_input(0, &cli->input) : 0;
}

static void describe_exit(struct target *t, const struct mg_exec_status *st, int timeout_ms)
{
	if (st->timed_out)
		target_fail(t, RES_FAILED, "timed out after %.1fs; killed", timeout_ms / 1000.0);
	else if (st->error[0] != '\0')
		target_fail(t, RES_FAILED, "%s", st->error);
	else if (st->signal != 0)
		target_fail(t, RES_FAILED, "killed by signal %d (%s)", st->signal,
		            strsignal(st->signal));
	else if (st->exit_code != 0)
		target_fail(t, RES_FAILED, "exit status %d", st->exit_code);
	else
		target_ok(t);
}

static void run_target(struct cli *cli, struct target *t)
{
	struct mg_exec_opts o;
	struct mg_exec_event ev;
	struct mg_exec *job;
	struct out_files of;
	char err[512] = "";
	int rc;

	if (out_files_open(cli, t, &of) != 0) {
		out_files_close(t, &of);
		return;
	}
	mg_exec_opts_init(&o);
	o.command = cli->command;
	o.timeout_ms = cli->timeout_ms;
	if (cli->stdin_input) {
		o.stdin_data = cli->input.p != NULL ? cli->input.p : "";
		o.stdin_len = cli->input.len;
	}
	if ((rc = mg_exec_start(t->ctx, &o, &job, err, sizeof(err))) != 0) {
		target_fail(t, RES_FAILED, "cannot run the command: %s",
		            err[0] ? err : mg_strerror(rc));
		out_files_close(t, &of);
		return;
	}
	for (;;) {
		struct mg_msg *m;

		rc = cli_wait(cli, mg_exec_receiver(job), &m);
		if (rc == -ECANCELED) {
			/* Interrupted: the command goes, with its whole group. */
			mg_exec_kill(job, SIGKILL);
			break;
		}
		rc = mg_exec_event_from(job, rc, m, &ev);
		if (rc != 0) {
			target_fail(t, RES_FAILED, "lost the command: %s",
			            *mg_errdetail() ? mg_errdetail() : mg_strerror(rc));
			break;
		}
		if (ev.type == MG_EXEC_STDOUT || ev.type == MG_EXEC_STDERR) {
			out_files_write(&of, ev.type == MG_EXEC_STDERR, ev.data, ev.len);
			output_data(cli, t, ev.type == MG_EXEC_STDERR, ev.data, ev.len);
		} else if (ev.type == MG_EXEC_EXIT) {
			t->exit_code =
			        ev.status.signal ? 128 + ev.status.signal : ev.status.exit_code;
			describe_exit(t, &ev.status, cli->timeout_ms);
			sb_printf(&t->json, ",\"exit_code\":%d", ev.status.exit_code);
			if (ev.status.signal)
				sb_printf(&t->json, ",\"signal\":%d", ev.status.signal);
			if (ev.status.timed_out)
				sb_puts(&t->json, ",\"timed_out\":true");
			break;
		}
	}
	mg_exec_free(job);
	out_files_close(t, &of);
}

const struct verb verb_run = {
        .name = "run",
        .synopsis = "[--] COMMAND [ARG...]",
        .summary = "run a shell command on every target, output prefixed by the target",
        .help = "The words are joined with spaces and run with /bin/sh -c on each target;\n"
                "stdout and stderr lines come back as they are written, each prefixed with\n"
                "'target: ' (stdout lines on stdout, stderr lines on stderr).  A non-zero\n"
                "exit status is reported on stderr and makes the tool's exit status 1.\n"
                "Options of run:\n"
                "  -T, --timeout S         kill the command (its whole process group) after\n"
                "                          S seconds\n"
                "      --stdin             read standard input to its end and give it to every\n"
                "                          command (else their stdin is /dev/null)\n"
                "  -S, --maxrc             exit with the largest status of the commands (128+N\n"
                "                          for signal N; 255 for a target not reached)\n"
                "      --outdir DIR        also write each target's stdout to DIR/TARGET\n"
                "      --errdir DIR        also write each target's stderr to DIR/TARGET\n",
        .opts = OPT_TIMEOUT | OPT_STDIN | OPT_MAXRC | OPT_OUTDIR,
        .args = run_args,
        .run = run_target,
};
