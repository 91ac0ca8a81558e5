/*
 * test_cli.c: the mitogen command-line tool, driven as a user drives it
 * (tests/cli_util.h): its command line, and runs on local contexts.  The
 * ssh, sudo, su and doas cases are in test_cli_ssh.c.
 */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_util.h"

/* ---- command line ------------------------------------------------------- */

TEST(cli_malformed_arguments)
{
	const struct {
		const char *const *argv;
		const char *says;
	} cases[] = {
	        {ARGV("run", "-H", "web[05-01]", "true"), "bad range in 'web[05-01]'"},
	        {ARGV("run", "-H", "web[1-3", "true"), "'[' without ']'"},
	        {ARGV("run", "-H", "web[a-b]", "true"), "is not N or N-M"},
	        {ARGV("run", "--frobnicate", "true"), "unknown option '--frobnicate'"},
	        {ARGV("run", "-Z", "true"), "unknown option '-Z'"},
	        {ARGV("call", "--local", "1", "mg.echo", "{\"a\": 1"), "argument 1 is not JSON"},
	        {ARGV("call", "--local", "1", "mg.echo", "[1,]"), "argument 1 is not JSON"},
	        {ARGV("run", "--local", "2"), "no command given"},
	        {ARGV("call"), "no function given"},
	        {ARGV("frob"), "unknown verb 'frob'"},
	        {ARGV("run", "--local", "0", "true"), "--local wants a count"},
	        {ARGV("run", "-b", "--json", "true"), "-b and --json"},
	        {ARGV("run", "-T", "soon", "true"), "bad --timeout"},
	        {ARGV("ping", "-T", "3"), "unknown option '-T'"},
	        {ARGV("run", "-f"), "needs a value"},
	        {ARGV("put", "/nonexistent/file", "/tmp/x"), "/nonexistent/file"},
	        {ARGV("get", "/etc/hostname"), "wants REMOTE and LOCALDIR"},
	        /* put takes options after its operands too. */
	        {ARGV("put", "/etc/hostname", "/tmp/x", "--frob"), "unknown option '--frob'"},
	        /* By host part and by whole name: nothing left, nothing started. */
	        {ARGV("run", "-H", "u@h1,h2", "-x", "h1", "-x", "h2", "true"),
	         "--exclude left no target"},
	        {ARGV("run", "-x", "a[1-", "true"), "'[' without ']'"},
	};
	struct result *r = malloc(sizeof(*r));
	size_t i;

	CHECK(r != NULL);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_cli(r, NULL, cases[i].argv);
		CHECK_RUN(r, r->status == 2);
		CHECK_RUN(r, strstr(r->err, cases[i].says) != NULL);
		/* One message and one hint, nothing on stdout. */
		CHECK_RUN(r, count_lines_with(r->err, "\n") == 2);
		CHECK_RUN(r, r->outlen == 0);
	}
	run_cli(r, NULL, (const char *const[]){"mitogen", NULL});
	CHECK_RUN(r, r->status == 2 && strstr(r->err, "no verb given") != NULL);
	free(r);
}

TEST(cli_help_and_version)
{
	struct result *r = malloc(sizeof(*r));

	CHECK(r != NULL);
	run_cli(r, NULL, ARGV("--version"));
	CHECK_RUN(r, r->status == 0 && strncmp(r->out, "mitogen " MG_VERSION_STRING, 13) == 0);
	run_cli(r, NULL, ARGV("--help"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "run ") && strstr(r->out, "Exit status"));
	run_cli(r, NULL, ARGV("run", "--help"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "mitogen run [options]") &&
	                     strstr(r->out, "--timeout") && strstr(r->out, "130 interrupted"));
	run_cli(r, NULL, ARGV("ping", "--help"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "--count") && !strstr(r->out, "--timeout"));
	free(r);
}

/* ---- local targets ------------------------------------------------------ */

/* --stdin: every command gets the whole of the tool's input; without it
 * their stdin is /dev/null, whatever the tool's is. */
TEST(cli_run_stdin)
{
	struct result *r = malloc(sizeof(*r));
	char path[] = "/tmp/mg-cli-stdin-XXXXXX", want[64], cmd[96];
	struct spawn sp = {.stdin_path = path};
	static char data[300000];
	size_t i;
	int fd;

	CHECK(r != NULL);
	for (i = 0; i < sizeof(data); i++)
		data[i] = (char)('a' + i % 26 + (i % 997 == 0 ? -32 : 0));
	CHECK((fd = mkstemp(path)) >= 0);
	CHECK(write(fd, data, sizeof(data)) == (ssize_t)sizeof(data));
	close(fd);
	run_cli(r, &sp, ARGV("run", "--local", "3", "--stdin", "--", "wc -c"));
	snprintf(want, sizeof(want), ": %zu\n", sizeof(data));
	CHECK_RUN(r, r->status == 0 && count_lines_with(r->out, want) == 3);
	/* The same bytes: local targets see the file they came from. */
	snprintf(cmd, sizeof(cmd), "cmp - %s && echo same", path);
	run_cli(r, &sp, ARGV("run", "--local", "2", "--stdin", "--", cmd));
	CHECK_RUN(r, r->status == 0 && count_lines_with(r->out, ": same\n") == 2);
	run_cli(r, &sp, ARGV("run", "--local", "1", "--", "wc -c"));
	CHECK_RUN(r, r->status == 0 && strcmp(r->out, "local: 0\n") == 0);
	/* Only one thing can read the tool's stdin. */
	run_cli(r, &sp, ARGV("run", "--stdin", "--hostfile", "-", "true"));
	CHECK_RUN(r, r->status == 2 && strstr(r->err, "both want standard input") != NULL);
	CHECK(unlink(path) == 0);
	free(r);
}

TEST(cli_run_prefixes_lines)
{
	struct result *r = malloc(sizeof(*r));

	CHECK(r != NULL);
	run_cli(r, NULL, ARGV("run", "--local", "3", "--", "echo out-$((40+2)); echo err >&2"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r, strstr(r->out, "local1: out-42\n") && strstr(r->out, "local2: out-42\n") &&
	                     strstr(r->out, "local3: out-42\n"));
	CHECK_RUN(r, count_lines_with(r->out, "\n") == 3);
	CHECK_RUN(r, strstr(r->err, "local1: err\n") && strstr(r->err, "local3: err\n"));
	CHECK_RUN(r, count_lines_with(r->err, "\n") == 3);

	/* A failing command: its status on stderr, exit status 1. */
	run_cli(r, NULL, ARGV("run", "--local", "2", "printf partial; exit 7"));
	CHECK_RUN(r, r->status == 1);
	CHECK_RUN(r, strstr(r->out, "local1: partial\n") && strstr(r->out, "local2: partial\n"));
	CHECK_RUN(r, strstr(r->err, "mitogen: local1: exit status 7") &&
	                     strstr(r->err, "mitogen: local2: exit status 7"));

	/* -S (as pdsh and clush): the largest status, 128 + N for signal N. */
	run_cli(r, NULL, ARGV("run", "--local", "2", "-S", "exit 7"));
	CHECK_RUN(r, r->status == 7);
	run_cli(r, NULL, ARGV("run", "--local", "1", "-S", "kill -TERM $$"));
	CHECK_RUN(r, r->status == 128 + SIGTERM);
	run_cli(r, NULL, ARGV("run", "--local", "2", "-S", "true"));
	CHECK_RUN(r, r->status == 0);

	/* A command timeout kills it. */
	run_cli(r, NULL, ARGV("run", "--local", "1", "-T", "0.3", "sleep 30"));
	CHECK_RUN(r, r->status == 1 && strstr(r->err, "timed out"));

	/* -N: the lines as they are (pdsh -N). */
	run_cli(r, NULL, ARGV("run", "--local", "2", "-N", "echo hi; echo oops >&2"));
	CHECK_RUN(r, r->status == 0 && strcmp(r->out, "hi\nhi\n") == 0);
	CHECK_RUN(r, strcmp(r->err, "oops\noops\n") == 0);

	/* 200 MB with no newline: the tool keeps at most a bounded part of a
	 * line (printed in parts, each prefixed), not all of it (peak RSS:
	 * ~6 MB here, ~42 MB under TSan; it was over 200 MB); with -N the
	 * bytes go out as they are. */
	{
		char path[] = "/tmp/mg-cli-long-XXXXXX";
		struct spawn sp = {.stdout_path = path};
		struct stat st;
		int fd = mkstemp(path);

		CHECK(fd >= 0 && close(fd) == 0);
		run_cli(r, &sp, ARGV("run", "--local", "1", "head -c 200000000 /dev/zero"));
		CHECK_RUN(r, r->status == 0 && r->maxrss_kb < 100 * 1024);
		CHECK(stat(path, &st) == 0 && st.st_size > 200000000);
		run_cli(r, &sp,
		        ARGV("run", "--local", "1", "-N", "head -c 10000000 /dev/zero; echo"));
		CHECK_RUN(r, r->status == 0);
		CHECK(stat(path, &st) == 0 && st.st_size == 10000001);
		CHECK(unlink(path) == 0);
	}

	/* Options end at the command: these are echo's words. */
	run_cli(r, NULL, ARGV("run", "--local", "1", "echo", "-N", "-H", "x"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, ": -N -H x\n") != NULL);
	free(r);
}

TEST(cli_exclude_leaves_targets_out)
{
	struct result *r = malloc(sizeof(*r));

	CHECK(r != NULL);
	run_cli(r, NULL,
	        ARGV("run", "--local", "4", "-x", "local2", "--exclude", "local[3-3]", "--",
	             "echo hi"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r, strstr(r->out, "local1: hi\n") && strstr(r->out, "local4: hi\n"));
	CHECK_RUN(r, count_lines_with(r->out, "\n") == 2);
	free(r);
}

TEST(cli_gather_identical_output)
{
	struct result *r = malloc(sizeof(*r));

	CHECK(r != NULL);
	run_cli(r, NULL, ARGV("run", "--local", "4", "-b", "echo same; echo two >&2"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r, strcmp(r->out, "---------------\nlocal[1-4] (4)\n---------------\n"
	                            "same\ntwo\n") == 0 ||
	                     strcmp(r->out, "---------------\nlocal[1-4] (4)\n---------------\n"
	                                    "two\nsame\n") == 0);
	free(r);
}

TEST(cli_json_lines)
{
	struct result *r = malloc(sizeof(*r));
	char *line, *save = NULL;
	int n = 0;

	CHECK(r != NULL);
	run_cli(r, NULL,
	        ARGV("run", "--local", "2", "--json", "printf '%s\\n' 'hi\\there'; exit 3"));
	CHECK_RUN(r, r->status == 1);
	CHECK_RUN(r, r->errlen == 0);
	for (line = strtok_r(r->out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		CHECK(line[0] == '{' && line[strlen(line) - 1] == '}');
		CHECK(strstr(line, "\"target\":\"local1\"") ||
		      strstr(line, "\"target\":\"local2\""));
		CHECK(strstr(line, "\"status\":\"failed\",\"ok\":false"));
		CHECK(strstr(line, "\"exit_code\":3"));
		CHECK(strstr(line, "\"stdout\":\"hi\\\\there\\n\""));
		n++;
	}
	CHECK_EQ(n, 2);
	free(r);
}

TEST(cli_call_with_json_arguments)
{
	struct result *r = malloc(sizeof(*r));

	CHECK(r != NULL);
	run_cli(r, NULL,
	        ARGV("call", "--local", "2", "mg.echo",
	             "{\"k\": [1, -2, 2.5, null, true, \"\\u00e9\\ud83d\\ude00\"], \"e\": {}}"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r,
	          strstr(r->out, "local1: {\"k\":[1,-2,2.5,null,true,\"\xc3\xa9\xf0\x9f\x98\x80\"],"
	                         "\"e\":{}}\n") != NULL);
	CHECK_RUN(r, strstr(r->out, "local2: {\"k\""));

	run_cli(r, NULL, ARGV("call", "--local", "1", "--json", "mg.ping"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "\"result\":true}\n"));

	/* A remote error keeps its type and message. */
	run_cli(r, NULL,
	        ARGV("call", "--local", "1", "mg.fail", "\"KeyError\"", "\"no such key\""));
	CHECK_RUN(r, r->status == 1 && strstr(r->err, "local: KeyError: no such key"));
	free(r);
}

TEST(cli_ping)
{
	struct result *r = malloc(sizeof(*r));

	CHECK(r != NULL);
	run_cli(r, NULL, ARGV("ping", "--local", "3", "-c", "5"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r, count_lines_with(r->out, ": ok: connect ") == 3);
	CHECK_RUN(r, strstr(r->out, "local2: ok: connect ") && strstr(r->out, "ms (mean)"));
	run_cli(r, NULL, ARGV("ping", "--local", "1", "--json"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "\"rtt_ms\":"));
	free(r);
}

TEST(cli_put_get_round_trip)
{
	struct result *r = malloc(sizeof(*r));
	char dir[] = "/tmp/mg-cli-XXXXXX", src[128], dst[160], back[128], got[200], buf[8192];
	unsigned char data[5000];
	size_t i;
	int fd, n;

	CHECK(r != NULL);
	CHECK(mkdtemp(dir) != NULL);
	snprintf(src, sizeof(src), "%s/src.bin", dir);
	snprintf(dst, sizeof(dst), "%s/remote/", dir);
	snprintf(back, sizeof(back), "%s/back", dir);
	for (i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)(i * 7 + (i >> 8));
	CHECK((fd = open(src, O_WRONLY | O_CREAT | O_CLOEXEC, 0640)) >= 0);
	CHECK(write(fd, data, sizeof(data)) == (ssize_t)sizeof(data));
	close(fd);
	snprintf(got, sizeof(got), "%s/remote", dir);
	CHECK(mkdir(got, 0700) == 0 && mkdir(back, 0700) == 0);

	run_cli(r, NULL, ARGV("put", "--local", "2", src, dst));
	CHECK_RUN(r, r->status == 0 && r->outlen == 0);
	snprintf(dst, sizeof(dst), "%s/remote/src.bin", dir);
	/* Options after the operands count for get (as for cp). */
	run_cli(r, NULL, ARGV("get", dst, back, "--local", "2"));
	CHECK_RUN(r, r->status == 0);
	for (i = 1; i <= 2; i++) {
		snprintf(got, sizeof(got), "%s/src.bin.local%zu", back, i);
		CHECK((fd = open(got, O_RDONLY | O_CLOEXEC)) >= 0);
		n = (int)read(fd, buf, sizeof(buf));
		close(fd);
		CHECK_EQ(n, sizeof(data));
		CHECK_MEM(buf, data, sizeof(data));
		CHECK(unlink(got) == 0);
	}
	/* A missing remote file: a clear error per target, status 1. */
	run_cli(r, NULL, ARGV("get", "--local", "1", "/nonexistent/x", back));
	/* The target is named once, not again as the context the error came from. */
	CHECK_RUN(r, r->status == 1 &&
	                     strstr(r->err, "mitogen: local: get /nonexistent/x: [Errno 2] "));
	CHECK(unlink(dst) == 0 && unlink(src) == 0);
	snprintf(got, sizeof(got), "%s/remote", dir);
	CHECK(rmdir(got) == 0 && rmdir(back) == 0 && rmdir(dir) == 0);
	free(r);
}

/* Makes a small file holding text; 0 or -1. */
static int write_small(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
	return close(fd) == 0 && ok ? 0 : -1;
}

/* Reads a small file whole into buf (NUL-ended); its length, or -1. */
static int read_small(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), n;

	if (fd < 0)
		return -1;
	n = (int)read(fd, buf, size - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return n;
}

/* -r: a folder with a subfolder and a symlink goes out and comes back. */
TEST(cli_put_get_recursive)
{
	struct result *r = malloc(sizeof(*r));
	char dir[] = "/tmp/mg-cli-XXXXXX", src[64], dst[64], back[64], p[200], buf[64];
	int i;

	CHECK(r != NULL);
	CHECK(mkdtemp(dir) != NULL);
	snprintf(src, sizeof(src), "%s/src", dir);
	snprintf(dst, sizeof(dst), "%s/tree", dir);
	snprintf(back, sizeof(back), "%s/back", dir);
	CHECK(mkdir(src, 0755) == 0 && mkdir(back, 0700) == 0);
	snprintf(p, sizeof(p), "%s/sub", src);
	CHECK(mkdir(p, 0750) == 0);
	snprintf(p, sizeof(p), "%s/sub/b", src);
	CHECK(write_small(p, "deep\n") == 0);
	snprintf(p, sizeof(p), "%s/a", src);
	CHECK(write_small(p, "top\n") == 0);
	snprintf(p, sizeof(p), "%s/link", src);
	CHECK(symlink("a", p) == 0);

	run_cli(r, NULL, ARGV("put", "-r", "--json", "--local", "1", src, dst));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "\"files\":2"));
	snprintf(p, sizeof(p), "%s/sub/b", dst);
	CHECK(read_small(p, buf, sizeof(buf)) == 5 && strcmp(buf, "deep\n") == 0);
	snprintf(p, sizeof(p), "%s/link", dst);
	CHECK(readlink(p, buf, sizeof(buf)) == 1 && buf[0] == 'a');

	run_cli(r, NULL, ARGV("get", "--recursive", "--local", "2", dst, back));
	CHECK_RUN(r, r->status == 0 && r->outlen == 0);
	for (i = 1; i <= 2; i++) {
		snprintf(p, sizeof(p), "%s/tree.local%d/a", back, i);
		CHECK(read_small(p, buf, sizeof(buf)) == 4 && strcmp(buf, "top\n") == 0);
		snprintf(p, sizeof(p), "%s/tree.local%d/sub/b", back, i);
		CHECK(read_small(p, buf, sizeof(buf)) == 5);
	}

	/* A folder needs -r, and -r needs a folder. */
	run_cli(r, NULL, ARGV("put", "--local", "1", src, dst));
	CHECK_RUN(r, r->status == 2 && strstr(r->err, "a directory (-r copies it)"));
	snprintf(p, sizeof(p), "%s/a", src);
	run_cli(r, NULL, ARGV("put", "-r", "--local", "1", p, dst));
	CHECK_RUN(r, r->status == 2 && strstr(r->err, "not a directory"));
	run_cli(r, NULL, ARGV("get", "--local", "1", dst, back));
	CHECK_RUN(r, r->status == 1 && strstr(r->err, "Is a directory") &&
	                     strstr(r->err, "(-r copies a folder)"));
	/* A file put onto a folder: the hint to copy into it. */
	snprintf(p, sizeof(p), "%s/a", src);
	run_cli(r, NULL, ARGV("put", "--local", "1", p, dst));
	CHECK_RUN(r, r->status == 1 && strstr(r->err, "(end REMOTE with / to copy into it)"));
	run_cli(r, NULL, ARGV("run", "-r", "true"));
	CHECK_RUN(r, r->status == 2 && strstr(r->err, "unknown option '-r'"));

	snprintf(p, sizeof(p), "rm -rf '%s'", dir);
	CHECK(system(p) == 0);
	free(r);
}

TEST(cli_progress_only_on_a_terminal)
{
	struct result *r = malloc(sizeof(*r));
	struct spawn sp = {.pty_stderr = true};

	CHECK(r != NULL);
	run_cli(r, &sp, ARGV("run", "--local", "3", "sleep 1; echo hi"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r, strstr(r->err, "mitogen run: ") && strstr(r->err, "3 running"));
	CHECK_RUN(r, strstr(r->err, "\r\033[K") && strstr(r->err, "\033[32m"));
	CHECK_RUN(r, count_lines_with(r->out, ": hi\n") == 3);

	/* NO_COLOR: the line stays, the colours go. */
	sp.env = (const char *const[]){"NO_COLOR=1", NULL};
	run_cli(r, &sp, ARGV("run", "--local", "2", "sleep 1"));
	CHECK_RUN(r, r->status == 0 && strstr(r->err, "2 running") && !strstr(r->err, "\033[3"));

	/* --no-progress, and stderr on a pipe: nothing at all. */
	sp.env = NULL;
	run_cli(r, &sp, ARGV("run", "--local", "2", "--no-progress", "sleep 1"));
	CHECK_RUN(r, r->status == 0 && r->errlen == 0);
	run_cli(r, NULL, ARGV("run", "--local", "3", "sleep 1; echo hi"));
	CHECK_RUN(r, r->status == 0 && r->errlen == 0);
	free(r);
}

TEST(cli_interrupt_stops_everything)
{
	struct result *r = malloc(sizeof(*r));
	struct spawn sp = {.interrupt_marker = ": started\n", .interrupt_after = 3};
	char sleep_cmd[64], cmd[128];

	CHECK(r != NULL);
	/* A sleep no other process runs, to look for leftovers. */
	snprintf(sleep_cmd, sizeof(sleep_cmd), "sleep 4%d.5", (int)getpid() % 1000);
	snprintf(cmd, sizeof(cmd), "echo started; %s; echo finished", sleep_cmd);
	run_cli(r, &sp, ARGV("run", "--local", "3", cmd));
	CHECK_RUN(r, r->status == 130);
	CHECK_RUN(r, strstr(r->err, "interrupted: 3 of 3 targets did not finish: local[1-3]"));
	CHECK_RUN(r, !strstr(r->out, "finished"));
	CHECK(process_gone(sleep_cmd, 3000));
	CHECK_EQ(cu_wait_no_children(3000), 0);
	free(r);
}

/* Output nobody reads any more (`mitogen run -- yes | head`): the commands
 * are stopped and the tool dies of SIGPIPE, quietly, as a pipeline's
 * writer does.  Output that cannot be written (a full disk) is an error,
 * status 1. */
TEST(cli_output_closed_or_failing)
{
	struct result *r = malloc(sizeof(*r));
	struct spawn head = {.close_stdout_after = 100}, full = {.stdout_path = "/dev/full"};
	char yes_cmd[64];

	CHECK(r != NULL);
	snprintf(yes_cmd, sizeof(yes_cmd), "yes mg-cli-%d", (int)getpid());
	run_cli(r, &head, ARGV("run", "--local", "2", yes_cmd));
	CHECK_RUN(r, r->status == 128 + SIGPIPE && r->errlen == 0);
	CHECK(process_gone(yes_cmd, 3000));
	/* Gathered output, more than the pipe holds, goes at the end: the same. */
	run_cli(r, &head, ARGV("run", "--local", "2", "-b", "seq 1 100000"));
	CHECK_RUN(r, r->status == 128 + SIGPIPE && r->errlen == 0);
	run_cli(r, &full, ARGV("run", "--local", "2", "echo hi"));
	CHECK_RUN(r, r->status == 1 &&
	                     strstr(r->err, "cannot write the output: No space left on device"));
	CHECK_EQ(cu_wait_no_children(3000), 0);
	free(r);
}

/* --outdir / --errdir: each target's stdout and stderr, as they came, in
 * DIR/TARGET, beside the usual output; a file that cannot be written
 * fails its target (a full tmpfs, in a mount namespace of the case's own). */
TEST(cli_run_outdir_and_errdir)
{
	struct result *r = malloc(sizeof(*r));
	char dir[] = "/tmp/mg-cli-out-XXXXXX", out[64], err[64], path[128], buf[256];
	struct spawn quiet = {.stdout_path = "/dev/null"};
	int i;

	CHECK(r != NULL && mkdtemp(dir) != NULL);
	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(err, sizeof(err), "%s/err", dir);
	CHECK(mkdir(out, 0700) == 0 && mkdir(err, 0700) == 0);
	run_cli(r, NULL,
	        ARGV("run", "--local", "2", "--outdir", out, "--errdir", err, "--",
	             "echo one; echo two >&2; printf 'no newline'"));
	CHECK_RUN(r, r->status == 0 && count_lines_with(r->out, ": one\n") == 2);
	for (i = 1; i <= 2; i++) {
		snprintf(path, sizeof(path), "%s/local%d", out, i);
		CHECK(read_small(path, buf, sizeof(buf)) >= 0 &&
		      strcmp(buf, "one\nno newline") == 0);
		CHECK(unlink(path) == 0);
		snprintf(path, sizeof(path), "%s/local%d", err, i);
		CHECK(read_small(path, buf, sizeof(buf)) >= 0 && strcmp(buf, "two\n") == 0);
		CHECK(unlink(path) == 0);
	}
	run_cli(r, NULL, ARGV("run", "--local", "1", "--outdir", "/etc/hostname", "true"));
	CHECK_RUN(r, r->status == 2 && strstr(r->err, "--outdir /etc/hostname: not a folder"));
	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
	    mount("tmpfs", out, "tmpfs", 0, "size=64k") != 0) {
		int e = errno;

		CHECK(rmdir(out) == 0 && rmdir(err) == 0 && rmdir(dir) == 0);
		mg_test_skip("no tmpfs in a mount namespace of our own: %s", strerror(e));
	}
	run_cli(r, &quiet,
	        ARGV("run", "--local", "1", "--outdir", out, "head -c 1000000 /dev/zero"));
	CHECK_RUN(r, r->status == 1 && strstr(r->err, "/out/local: No space left on device"));
	CHECK(umount(out) == 0);
	CHECK(rmdir(out) == 0 && rmdir(err) == 0 && rmdir(dir) == 0);
	free(r);
}

/* A context that dies under its command (here the command kills it): the
 * library's warning comes in the tool's own form, on a line of its own
 * beside the target's failure (in either order). */
TEST(cli_context_killed_under_its_command)
{
	struct result *r = malloc(sizeof(*r));

	CHECK(r != NULL);
	run_cli(r, NULL, ARGV("run", "--local", "1", "sleep 0.1; kill -9 $PPID; sleep 1"));
	CHECK_RUN(r, r->status == 1);
	CHECK_RUN(r, strstr(r->err, "mitogen: warning: local: the context's process ended: "
	                            "killed by signal 9") != NULL);
	/* Lost while it ran; or, on a slow machine, before the start's answer. */
	CHECK_RUN(r, strstr(r->err, "mitogen: local: lost the command: ") != NULL ||
	                     strstr(r->err, "mitogen: local: cannot run the command: ") != NULL);
	CHECK_RUN(r, count_lines_with(r->err, "\n") == 2 && r->outlen == 0);
	free(r);
}

/* Whether pid runs: an orphan's zombie, left to whoever adopted it,
 * does not. */
static bool pid_alive(int pid)
{
	char path[64], stat[256], *p;
	FILE *f;
	bool alive = false;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	if (fgets(stat, sizeof(stat), f) != NULL && (p = strrchr(stat, ')')) != NULL)
		alive = p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
	fclose(f);
	return alive;
}

/* Interrupted while every worker waits for a connect: each is woken and
 * the tool ends at once, long before the connects' 60 s.  The connects
 * hang on a ProxyCommand that says it started (a file named after its
 * host, holding its pid) and then reads its input, never answering. */
TEST(cli_interrupt_while_connecting)
{
	struct result *r = malloc(sizeof(*r));
	char dir[] = "/tmp/mg-cli-stuck-XXXXXX", proxy[256], path[300];
	struct spawn sp = {.interrupt_dir = dir, .interrupt_after = 2};
	const char *hosts[] = {"stuck1", "stuck2"};

	CHECK(r != NULL && mkdtemp(dir) != NULL);
	/* cat keeps ssh's end open on fd 3 (its stdout is /dev/null). */
	snprintf(proxy, sizeof(proxy),
	         "ProxyCommand=sh -c 'echo $$ > %s/%%h; exec 3>&1 cat > /dev/null'", dir);
	run_cli(r, &sp,
	        ARGV("run", "-H", "stuck[1-2]", "--ssh-config", "/dev/null", "-o", proxy, "-t",
	             "60", "--no-progress", "true"));
	CHECK_RUN(r, r->status == 130);
	CHECK_RUN(r, strstr(r->err, "interrupted: 2 of 2 targets did not finish: stuck[1-2]"));
	for (size_t i = 0; i < 2; i++) {
		FILE *f;
		int pid = 0, ms;

		snprintf(path, sizeof(path), "%s/%s", dir, hosts[i]);
		CHECK((f = fopen(path, "r")) != NULL);
		CHECK(fscanf(f, "%d", &pid) == 1 && pid > 0);
		fclose(f);
		/* The proxy goes with its ssh (its input ends). */
		for (ms = 0; ms < 3000 && pid_alive(pid); ms += 50)
			usleep(50000);
		CHECK(!pid_alive(pid));
		CHECK_EQ(unlink(path), 0);
	}
	CHECK_EQ(rmdir(dir), 0);
	CHECK_EQ(cu_wait_no_children(3000), 0);
	free(r);
}
