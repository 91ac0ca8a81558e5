/*
 * output.c: what the tool prints.  Three shapes:
 *  - streamed (the default, as pdsh): each line as it arrives, prefixed
 *    "target: " (not with -N), stdout lines on stdout and stderr lines on
 *    stderr;
 *  - gathered (-b, as dshbak -c / clubak -b): each target's output kept
 *    whole, and targets with identical output printed once under a header
 *    naming them as folded ranges;
 *  - JSON (--json): one object per target, one per line, as each ends.
 * The tool's own messages go to stderr as "mitogen: target: what".  One
 * lock orders everything, so lines never interleave mid-line and the
 * progress line is wiped first.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static bool colour_out, colour_err, prefix;
static pthread_t main_thread;
static atomic_int failed_errno;

int output_failed(void)
{
	return atomic_load(&failed_errno);
}

/* Flushes f; a write that failed (a closed pipe, a full disk) is
 * remembered and stops the run: output that cannot be written must not
 * keep the targets going for nobody, or hang on `... | head`. */
static void flush_checked(FILE *f)
{
	int expected = 0;

	if (fflush(f) == 0 && !ferror(f))
		return;
	clearerr(f);
	if (atomic_compare_exchange_strong(&failed_errno, &expected, errno ? errno : EIO))
		pthread_kill(main_thread, SIGUSR1);
}

void output_lock(void)
{
	pthread_mutex_lock(&out_mu);
}

void output_unlock(void)
{
	pthread_mutex_unlock(&out_mu);
}

static const char *level_word(int level)
{
	return level >= MG_LOG_ERROR     ? "error"
	       : level >= MG_LOG_WARNING ? "warning"
	       : level >= MG_LOG_INFO    ? "info"
	                                 : "debug";
}

/* The library's log records (warnings and up, unless MITOGEN_LOG says
 * otherwise), in the tool's own form and through its lock, so that they
 * never cut into the progress line or a line of output:
 * "mitogen: warning: ..." from this process, "mitogen: NAME: warning: ..."
 * from a context. */
static void log_record(void *arg, const struct mg_log_record *rec)
{
	(void)arg;
	if (rec->context != NULL && strcmp(rec->context, "mitogen") != 0)
		output_error("%s: %s: %s", rec->context, level_word(rec->level), rec->message);
	else
		output_error("%s: %s", level_word(rec->level), rec->message);
}

void output_init(struct cli *cli)
{
	colour_out = use_colour(1);
	colour_err = use_colour(2);
	prefix = !cli->no_prefix;
	main_thread = cli->main_thread;
	mg_log_set_handler(log_record, NULL, mg_log_level("mitogen"));
	progress_init(cli->progress != 0 && isatty(2), colour_err);
}

void output_error(const char *fmt, ...)
{
	va_list ap;

	output_lock();
	progress_clear();
	fprintf(stderr, "%smitogen:%s ", colour_err ? "\033[31m" : "", colour_err ? "\033[0m" : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	flush_checked(stderr);
	output_unlock();
}

/* Keeps output for -b or --json, up to CLI_KEEP_MAX bytes per target. */
static void keep(struct target *t, int stream, const void *p, size_t n)
{
	struct sbuf *b = &t->kept[stream];

	if (b->len + n > CLI_KEEP_MAX) {
		n = b->len < CLI_KEEP_MAX ? CLI_KEEP_MAX - b->len : 0;
		t->truncated = true;
	}
	sb_put(b, p, n);
}

/* What emit_lines() does with an unfinished last line. */
enum { KEEP_PART, END_PART, LONG_PART };

/* Writes each complete line of t->partial[stream], prefixed.  An
 * unfinished last line stays (KEEP_PART), or is written too: at the
 * target's end with a newline added (END_PART); when it grew too long,
 * with a newline added when lines are prefixed, else as it is (LONG_PART,
 * the rest of it follows). */
static void emit_lines(struct target *t, int stream, int part)
{
	struct sbuf *b = &t->partial[stream];
	FILE *f = stream ? stderr : stdout;
	size_t start = 0, i;

	for (i = 0; i < b->len; i++) {
		if (b->p[i] != '\n')
			continue;
		if (prefix)
			fprintf(f, "%s: ", t->name);
		fwrite(b->p + start, 1, i + 1 - start, f);
		start = i + 1;
	}
	if (part != KEEP_PART && start < b->len) {
		if (prefix)
			fprintf(f, "%s: ", t->name);
		fwrite(b->p + start, 1, b->len - start, f);
		if (prefix || part == END_PART)
			fputc('\n', f);
		start = b->len;
	}
	if (start > 0) {
		memmove(b->p, b->p + start, b->len - start);
		b->len -= start;
		b->p[b->len] = '\0';
		flush_checked(f);
	}
}

/* The most of one line kept while waiting for its end: a command writing
 * without newlines must not make the tool hold all it writes.  Past it
 * the part so far is printed as a line of its own (with -N, as it is). */
#define LINE_MAX_KEPT (64u << 10)

void output_data(struct cli *cli, struct target *t, int stream, const void *p, size_t n)
{
	if (cli->json || cli->gather) {
		/* A target's buffers are its worker's alone until it is done. */
		keep(t, cli->gather ? 0 : stream, p, n);
		return;
	}
	output_lock();
	sb_put(&t->partial[stream], p, n);
	if (memchr(p, '\n', n) != NULL) {
		progress_clear();
		emit_lines(t, stream, KEEP_PART);
	}
	if (t->partial[stream].len > LINE_MAX_KEPT) {
		progress_clear();
		emit_lines(t, stream, LONG_PART);
	}
	output_unlock();
}

void output_line(struct cli *cli, struct target *t, const char *fmt, ...)
{
	struct sbuf b = {0};
	va_list ap;

	va_start(ap, fmt);
	sb_vprintf(&b, fmt, ap);
	va_end(ap);
	sb_puts(&b, "\n");
	output_data(cli, t, 0, b.p, b.len);
	sb_free(&b);
}

static const char *result_word(int result)
{
	switch (result) {
	case RES_OK:
		return "ok";
	case RES_FAILED:
		return "failed";
	case RES_UNREACHABLE:
		return "unreachable";
	default:
		return "interrupted";
	}
}

static void print_json(struct cli *cli, struct target *t)
{
	struct sbuf b = {0};

	sb_puts(&b, "{\"target\":");
	json_str(&b, t->name, strlen(t->name));
	sb_printf(&b, ",\"status\":\"%s\",\"ok\":%s,\"elapsed_ms\":%.3f", result_word(t->result),
	          t->result == RES_OK ? "true" : "false", (double)(t->t_end - t->t_start) / 1e6);
	if (t->json.len > 0)
		sb_put(&b, t->json.p, t->json.len);
	if (cli->verb == &verb_run && t->result != RES_UNREACHABLE) {
		sb_puts(&b, ",\"stdout\":");
		json_str(&b, t->kept[0].p ? t->kept[0].p : "", t->kept[0].len);
		sb_puts(&b, ",\"stderr\":");
		json_str(&b, t->kept[1].p ? t->kept[1].p : "", t->kept[1].len);
		if (t->truncated)
			sb_puts(&b, ",\"truncated\":true");
	}
	if (t->error != NULL) {
		sb_puts(&b, ",\"error\":");
		json_str(&b, t->error, strlen(t->error));
	}
	sb_puts(&b, "}\n");
	output_lock();
	progress_clear();
	fwrite(b.p, 1, b.len, stdout);
	flush_checked(stdout);
	output_unlock();
	sb_free(&b);
}

void output_target_done(struct cli *cli, struct target *t)
{
	if (cli->json) {
		print_json(cli, t);
		return;
	}
	if (!cli->gather) {
		output_lock();
		if (t->partial[0].len || t->partial[1].len)
			progress_clear();
		emit_lines(t, 0, END_PART);
		emit_lines(t, 1, END_PART);
		output_unlock();
	}
	/* Gathered mode reports failures together at the end. */
	if (!cli->gather && t->error != NULL && t->result != RES_CANCELLED)
		output_error("%s: %s", t->name, t->error);
}

/* Prints the names as one folded list, e.g. "web[01-03],db1". */
static void fold_names(struct cli *cli, const size_t *idx, size_t n, struct sbuf *b)
{
	const char **names = xmalloc(n * sizeof(*names));
	size_t i;

	for (i = 0; i < n; i++)
		names[i] = cli->targets[idx[i]].name;
	targets_fold(names, n, b);
	free(names);
}

/* Groups the targets for which same(a, b) holds, in first-seen order, and
 * calls show() once per group. */
static void group_by(struct cli *cli, bool (*member)(const struct target *),
                     bool (*same)(const struct target *, const struct target *),
                     void (*show)(struct cli *, const struct target *, const char *names, size_t n))
{
	bool *used = calloc(cli->ntargets ? cli->ntargets : 1, sizeof(bool));
	size_t *idx = xmalloc((cli->ntargets ? cli->ntargets : 1) * sizeof(*idx));
	size_t i, j, n;

	if (used == NULL)
		return;
	for (i = 0; i < cli->ntargets; i++) {
		struct sbuf names = {0};

		if (used[i] || !member(&cli->targets[i]))
			continue;
		n = 0;
		for (j = i; j < cli->ntargets; j++) {
			if (!used[j] && member(&cli->targets[j]) &&
			    same(&cli->targets[i], &cli->targets[j])) {
				used[j] = true;
				idx[n++] = j;
			}
		}
		fold_names(cli, idx, n, &names);
		show(cli, &cli->targets[i], names.p, n);
		sb_free(&names);
	}
	free(used);
	free(idx);
}

static bool ran(const struct target *t)
{
	return t->result == RES_OK || t->result == RES_FAILED;
}

static bool same_output(const struct target *a, const struct target *b)
{
	return a->kept[0].len == b->kept[0].len &&
	       (a->kept[0].len == 0 || memcmp(a->kept[0].p, b->kept[0].p, a->kept[0].len) == 0);
}

static void show_output(struct cli *cli, const struct target *t, const char *names, size_t n)
{
	const char *bar = "---------------";

	if (colour_out)
		printf("\033[36m%s\n%s (%zu)\n%s\033[0m\n", bar, names, n, bar);
	else
		printf("%s\n%s (%zu)\n%s\n", bar, names, n, bar);
	if (t->kept[0].len > 0) {
		fwrite(t->kept[0].p, 1, t->kept[0].len, stdout);
		if (t->kept[0].p[t->kept[0].len - 1] != '\n')
			putchar('\n');
	}
	if (t->truncated)
		printf("[output truncated at %u MiB]\n", CLI_KEEP_MAX >> 20);
}

static bool has_error(const struct target *t)
{
	return t->error != NULL && t->result != RES_CANCELLED;
}

static bool same_error(const struct target *a, const struct target *b)
{
	return strcmp(a->error, b->error) == 0;
}

static void show_error(struct cli *cli, const struct target *t, const char *names, size_t n)
{
	output_error("%s: %s", names, t->error);
}

void output_finish(struct cli *cli)
{
	if (!cli->gather)
		return;
	output_lock();
	progress_clear();
	group_by(cli, ran, same_output, show_output);
	flush_checked(stdout);
	output_unlock();
	group_by(cli, has_error, same_error, show_error);
}
