/*
 * progress.c: the status line on a terminal's stderr ("12/100 done,
 * 1 failed, 87 running, 2.3s"), redrawn in place by the main thread and
 * wiped before any other output reaches the terminal.  Never drawn when
 * stderr is not a terminal, so logs and pipes stay clean.  Colour only on
 * a terminal and only without NO_COLOR (https://no-color.org).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static bool enabled, colour, shown;

bool use_colour(int fd)
{
	const char *no = getenv("NO_COLOR"), *term = getenv("TERM");

	return isatty(fd) && (no == NULL || *no == '\0') &&
	       (term == NULL || strcmp(term, "dumb") != 0);
}

void progress_init(bool on, bool col)
{
	enabled = on;
	colour = col;
}

bool progress_enabled(void)
{
	return enabled;
}

void progress_clear(void)
{
	if (shown) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		shown = false;
	}
}

void progress_draw(struct cli *cli)
{
	size_t i, ok = 0, failed = 0, running = 0;
	double elapsed = (double)(now_ns() - cli->t0) / 1e9;

	/* A run that ends at once should not flash a line. */
	if (!enabled || elapsed < 0.2)
		return;
	for (i = 0; i < cli->ntargets; i++) {
		struct target *t = &cli->targets[i];
		int st = atomic_load(&t->state);

		if (st == T_DONE && t->result == RES_OK)
			ok++;
		else if (st == T_DONE)
			failed++;
		else if (st != T_WAITING)
			running++;
	}
	fprintf(stderr,
	        "\r\033[Kmitogen %s: %s%s%zu/%zu done%s, %s%zu failed%s, %zu running, %.1fs",
	        cli->verb->name, cli->cancelled ? "stopping: " : "", colour ? "\033[32m" : "", ok,
	        cli->ntargets, colour ? "\033[0m" : "", colour && failed ? "\033[31m" : "", failed,
	        colour && failed ? "\033[0m" : "", running, elapsed);
	fflush(stderr);
	shown = true;
}
