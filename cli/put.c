/*
 * put.c: `mitogen put LOCAL REMOTE`: one local file to every target.  The
 * library writes a temporary file beside REMOTE, checks its XXH64 and
 * renames it over REMOTE, so a target holds the old file or the new one.
 * With -r, LOCAL is a folder and REMOTE is made a copy of it, file by file
 * (each file as above; what REMOTE holds that LOCAL does not stays).
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static int put_args(struct cli *cli, int argc, char **argv)
{
	struct stat st;
	size_t n;

	if (argc != 2)
		return usage_error("wants LOCAL and REMOTE (%d argument%s given)", argc,
		                   argc == 1 ? "" : "s");
	if (stat(argv[0], &st) != 0)
		return usage_error("%s: %s", argv[0], strerror(errno));
	if (cli->recursive && !S_ISDIR(st.st_mode))
		return usage_error("%s: not a directory (-r copies a folder)", argv[0]);
	if (!cli->recursive && S_ISDIR(st.st_mode))
		return usage_error("%s: a directory (-r copies it)", argv[0]);
	if (!cli->recursive && !S_ISREG(st.st_mode))
		return usage_error("%s: not a regular file", argv[0]);
	cli->src = argv[0];
	cli->dst = argv[1];
	/* "dir/" means "dir/<the local file's name>". */
	n = strlen(argv[1]);
	if (n == 0)
		return usage_error("REMOTE is empty");
	if (argv[1][n - 1] == '/') {
		char *copy = xstrdup(argv[0]);
		struct sbuf b = {0};

		sb_printf(&b, "%s%s", argv[1], basename(copy));
		free(copy);
		cli->dst_buf = b.p;
		cli->dst = b.p;
	}
	return 0;
}

static void put_target(struct cli *cli, struct target *t)
{
	struct mg_file_opts o;
	struct mg_file_result res;
	int rc;

	mg_file_opts_init(&o);
	memset(&res, 0, sizeof(res));
	rc = cli->recursive ? mg_file_push_tree(t->ctx, cli->src, cli->dst, &o, &res)
	                    : mg_file_push(t->ctx, cli->src, cli->dst, &o, &res);
	if (rc == 0) {
		target_ok(t);
		json_copied(&t->json, cli, &res, cli->dst, strlen(cli->dst));
	} else {
		/* A folder there: say how to copy into it. */
		target_copy_failed(t, "put", cli->dst, &res, rc,
		                   rc == -EISDIR && !cli->recursive
		                           ? " (end REMOTE with / to copy into it)"
		                           : "");
	}
}

const struct verb verb_put = {
        .name = "put",
        .synopsis = "LOCAL REMOTE",
        .summary = "copy a local file (-r: a folder) to every target",
        .help = "Copies the regular file LOCAL to REMOTE on each target (REMOTE ending in\n"
                "'/' means that folder, same name), keeping its mode and mtime.  The new\n"
                "file replaces the old one atomically once its checksum matches.  Nothing\n"
                "is printed for a successful copy (--json reports the bytes).\n"
                "Options of put:\n"
                "  -r, --recursive         LOCAL is a folder: REMOTE is made a copy of it\n"
                "                          (folders, regular files and symlinks; what is\n"
                "                          there and not in LOCAL stays)\n",
        .opts = OPT_RECURSIVE | OPT_ANYWHERE,
        .args = put_args,
        .run = put_target,
};
