/*
 * target_list.c: the tool's list of targets, as the command line builds
 * it: ssh hosts from -H and --hostfile, local contexts from --local, names
 * to leave out from -x; then repeats and left-out names are dropped before
 * anything starts.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Appends a target (targets_prune() drops repeats once all are in). */
static struct target *new_target(struct cli *cli, const char *name)
{
	struct target *t;

	if (cli->ntargets == cli->targets_cap) {
		cli->targets_cap = cli->targets_cap ? cli->targets_cap * 2 : 16;
		cli->targets = xrealloc(cli->targets, cli->targets_cap * sizeof(*cli->targets));
	}
	t = &cli->targets[cli->ntargets++];
	memset(t, 0, sizeof(*t));
	t->name = xstrdup(name);
	t->exit_code = -1;
	return t;
}

void targets_add_host(void *arg, const char *name)
{
	struct target *t = new_target(arg, name);
	const char *at = strrchr(name, '@');

	if (at != NULL) {
		t->user = xstrdup(name);
		t->user[at - name] = '\0';
	}
	t->host = xstrdup(at ? at + 1 : name);
}

void targets_add_excluded(void *arg, const char *name)
{
	struct cli *cli = arg;

	if (cli->nexcluded == cli->excluded_cap) {
		cli->excluded_cap = cli->excluded_cap ? cli->excluded_cap * 2 : 16;
		cli->excluded = xrealloc(cli->excluded, cli->excluded_cap * sizeof(*cli->excluded));
	}
	cli->excluded[cli->nexcluded++] = xstrdup(name);
}

void targets_add_local(struct cli *cli, int n)
{
	char name[32];
	int i;

	for (i = 1; i <= n; i++) {
		snprintf(name, sizeof(name), n == 1 ? "local" : "local%d", i);
		new_target(cli, name);
	}
}

static const struct target *sort_targets;

/* Orders target indices by name, then by position. */
static int cmp_target(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = strcmp(sort_targets[x].name, sort_targets[y].name);

	return c != 0 ? c : (x > y) - (x < y);
}

static void free_target(struct target *t)
{
	free(t->name);
	free(t->host);
	free(t->user);
	free(t->error);
	sb_free(&t->partial[0]);
	sb_free(&t->partial[1]);
	sb_free(&t->kept[0]);
	sb_free(&t->kept[1]);
	sb_free(&t->json);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_excluded(const struct cli *cli, const char *name)
{
	return name != NULL &&
	       bsearch(&name, cli->excluded, cli->nexcluded, sizeof(char *), cmp_str) != NULL;
}

/* Sorting keeps this fast for long lists. */
void targets_prune(struct cli *cli)
{
	size_t *idx = xmalloc((cli->ntargets + 1) * sizeof(*idx));
	bool *drop = calloc(cli->ntargets + 1, sizeof(bool));
	size_t i, n = 0;

	if (drop == NULL)
		exit(CLI_EXIT_FAILED);
	for (i = 0; i < cli->ntargets; i++)
		idx[i] = i;
	sort_targets = cli->targets;
	qsort(idx, cli->ntargets, sizeof(*idx), cmp_target);
	for (i = 1; i < cli->ntargets; i++)
		if (strcmp(cli->targets[idx[i]].name, cli->targets[idx[i - 1]].name) == 0)
			drop[idx[i]] = true;
	if (cli->nexcluded > 0) {
		qsort(cli->excluded, cli->nexcluded, sizeof(char *), cmp_str);
		for (i = 0; i < cli->ntargets; i++)
			if (is_excluded(cli, cli->targets[i].name) ||
			    is_excluded(cli, cli->targets[i].host))
				drop[i] = true;
	}
	for (i = 0; i < cli->ntargets; i++) {
		if (drop[i]) {
			free_target(&cli->targets[i]);
			continue;
		}
		if (n != i)
			memcpy(&cli->targets[n], &cli->targets[i], sizeof(cli->targets[i]));
		pthread_mutex_init(&cli->targets[n++].lock, NULL);
	}
	cli->ntargets = n;
	free(idx);
	free(drop);
}

void targets_free(struct cli *cli)
{
	size_t i;

	for (i = 0; i < cli->ntargets; i++) {
		free_target(&cli->targets[i]);
		pthread_mutex_destroy(&cli->targets[i].lock);
	}
	free(cli->targets);
	for (i = 0; i < cli->nexcluded; i++)
		free(cli->excluded[i]);
	free(cli->excluded);
}
