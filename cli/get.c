/*
 * get.c: `mitogen get REMOTE LOCALDIR`: a file from every target, saved
 * as LOCALDIR/<name>.<target> (as rpdcp and clush --rcopy name them), so
 * copies from many targets never overwrite each other.  With -r, REMOTE is
 * a folder and LOCALDIR/<name>.<target> a copy of it.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static int get_args(struct cli *cli, int argc, char **argv)
{
	struct stat st;

	if (argc != 2)
		return usage_error("wants REMOTE and LOCALDIR (%d argument%s given)", argc,
		                   argc == 1 ? "" : "s");
	if (argv[0][0] == '\0')
		return usage_error("REMOTE is empty");
	if (stat(argv[1], &st) != 0)
		return usage_error("%s: %s", argv[1], strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return usage_error("%s: not a directory", argv[1]);
	cli->src = argv[0];
	cli->dst = argv[1];
	return 0;
}

static void get_target(struct cli *cli, struct target *t)
{
	char *copy = xstrdup(cli->src);
	struct sbuf path = {0};
	struct mg_file_opts o;
	struct mg_file_result res;
	int rc;

	/* LOCALDIR/NAME.TARGET, NAME being the last part of REMOTE. */
	sb_printf(&path, "%s/%s.", cli->dst, basename(copy));
	sb_put_name(&path, t->name);
	mg_file_opts_init(&o);
	memset(&res, 0, sizeof(res));
	rc = cli->recursive ? mg_file_pull_tree(t->ctx, cli->src, path.p, &o, &res)
	                    : mg_file_pull(t->ctx, cli->src, path.p, &o, &res);
	if (rc == 0) {
		target_ok(t);
		json_copied(&t->json, cli, &res, path.p, path.len);
	} else {
		target_copy_failed(t, "get", cli->src, &res, rc,
		                   rc == -EISDIR && !cli->recursive ? " (-r copies a folder)" : "");
	}
	sb_free(&path);
	free(copy);
}

const struct verb verb_get = {
        .name = "get",
        .synopsis = "REMOTE LOCALDIR",
        .summary = "copy a file (-r: a folder) from every target into a local folder",
        .help = "Copies REMOTE from each target to LOCALDIR/NAME.TARGET, NAME being\n"
                "REMOTE's last component, keeping its mode and mtime; the file appears\n"
                "whole or not at all.\n"
                "Options of get:\n"
                "  -r, --recursive         REMOTE is a folder: LOCALDIR/NAME.TARGET is made\n"
                "                          a copy of it (folders, regular files and symlinks)\n",
        .opts = OPT_RECURSIVE | OPT_ANYWHERE,
        .args = get_args,
        .run = get_target,
};
