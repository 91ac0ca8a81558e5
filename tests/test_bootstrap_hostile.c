/*
 * test_bootstrap_hostile.c: the first stage (src/connect/bootstrap.c) on
 * targets that make it hard: a name taken (a FIFO, a link, a file) or
 * raced to a link by another user, TMPDIR or HOME mounted noexec or named with spaces and glob
 * characters, a line that never comes whole, garbage instead of markers,
 * and the unpacker's printf line through every shell byte for byte.
 */
#include "bootstrap_util.h"

/* Makes a decoy of KIND ('p' FIFO, 'l' dangling link, 'f' file) at
 * <sandbox>/decoy, for race_shim to move to the first stage's name. */
static void make_decoy(struct sandbox *sb, char kind, char *path, size_t size)
{
	char target[400];
	int fd;

	snprintf(path, size, "%s/decoy", sb->dir);
	snprintf(target, sizeof(target), "%s/elsewhere", sb->dir);
	if (kind == 'p') {
		CHECK_EQ(mkfifo(path, 0666), 0);
	} else if (kind == 'l') {
		CHECK_EQ(symlink(target, path), 0);
	} else {
		CHECK((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) >= 0);
		CHECK_EQ(write(fd, "decoy", 5), 5);
		close(fd);
	}
}

static void check_decoy(struct sandbox *sb, char kind, const char *path)
{
	char target[400], buf[16];
	struct stat st;
	int fd;

	CHECK_EQ(lstat(path, &st), 0);
	snprintf(target, sizeof(target), "%s/elsewhere", sb->dir);
	if (kind == 'p') {
		CHECK(S_ISFIFO(st.st_mode));
	} else if (kind == 'l') {
		CHECK(S_ISLNK(st.st_mode));
		CHECK(access(target, F_OK) != 0);
	} else {
		CHECK(S_ISREG(st.st_mode));
		CHECK_INT(st.st_mode & 07777, ==, 0644);
		CHECK((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0);
		CHECK_EQ(read(fd, buf, sizeof(buf)), 5);
		CHECK(memcmp(buf, "decoy", 5) == 0);
		close(fd);
	}
}

TEST(first_stage_takes_a_tmpdir_with_a_space)
{
	struct sandbox sb;

	sandbox_init(&sb);
	sandbox_busybox(&sb);
	sandbox_spaces(&sb);
	boot_and_check(&sb, sandbox_sh(&sb));
	if (access("/usr/bin/dash", X_OK) == 0) {
		sandbox_init(&sb);
		snprintf(sb.path_env, sizeof(sb.path_env), "PATH=/usr/bin:/bin");
		sandbox_spaces(&sb);
		boot_and_check(&sb, "/usr/bin/dash");
	}
}

/* A sandbox (with spaces, see sandbox_spaces) whose shell, nsdash, runs
 * body as `dash -c` in a mount namespace of its own, with the first
 * stage's arguments; skipped without root, unshare or dash. */
static void sandbox_mount_ns(struct sandbox *sb, bool spaces, const char *body, char *nsdash,
                             size_t size)
{
	char text[1024];

	if (geteuid() != 0 || access("/usr/bin/unshare", X_OK) != 0 ||
	    access("/usr/bin/dash", X_OK) != 0)
		mg_test_skip("needs root, unshare and dash for a mount namespace");
	sandbox_init(sb);
	if (spaces)
		sandbox_spaces(sb);
	snprintf(sb->path_env, sizeof(sb->path_env), "PATH=/usr/bin:/bin");
	snprintf(text, sizeof(text),
	         "#!/usr/bin/dash\nexec /usr/bin/unshare -m /usr/bin/dash -c '%s' dash \"$@\"\n",
	         body);
	sandbox_script(sb, "nsdash", text);
	snprintf(nsdash, size, "%s/nsdash", sb->bin);
}

static void boot_noexec_tmpdir(bool spaces)
{
	struct sandbox sb;
	char nsdash[400];

	/* Hardened hosts mount /tmp noexec.  The shell's `[ -x ]` sees it
	 * (access(X_OK) fails there) and writes the unpacker to $HOME
	 * instead.  TMPDIR is a noexec tmpfs here, in a mount namespace of
	 * the shell's own. */
	sandbox_mount_ns(&sb, spaces,
	                 "/usr/bin/mount -t tmpfs -o noexec,mode=700 none \"$TMPDIR\"&&"
	                 "exec /usr/bin/dash \"$@\"",
	                 nsdash, sizeof(nsdash));
	boot_and_check_in(&sb, nsdash, sb.home);
}

TEST(first_stage_goes_to_home_where_tmpdir_is_noexec)
{
	boot_noexec_tmpdir(false);
}

TEST(first_stage_goes_to_home_where_tmpdir_is_full)
{
	struct sandbox sb;
	char nsdash[400];

	/* A full /tmp: the shell makes its file there but cannot write the
	 * line into it (ENOSPC), and goes to $HOME as it does for noexec.
	 * TMPDIR is a one-page tmpfs, filled first. */
	sandbox_mount_ns(&sb, false,
	                 "/usr/bin/mount -t tmpfs -o size=4k,mode=700 none \"$TMPDIR\"||exit 1;"
	                 "/usr/bin/head -c 8192 /dev/zero >\"$TMPDIR/fill\" 2>/dev/null;"
	                 "exec /usr/bin/dash \"$@\"",
	                 nsdash, sizeof(nsdash));
	boot_and_check_in(&sb, nsdash, sb.home);
}

TEST(cache_in_a_full_home_fails_and_keeps_nothing)
{
	struct sandbox sb;
	char nsdash[400];

	/* The cache's first copy cannot be written (HOME is a full one-page
	 * tmpfs): the connect fails with head's words for it, and the cache
	 * folder keeps no partial file or private folder.  The namespace's
	 * mount hides HOME: it looks itself, and exits 99 on a leftover. */
	sandbox_mount_ns(&sb, false,
	                 "/usr/bin/mount -t tmpfs -o size=4k,mode=700 none \"$HOME\"||exit 1;"
	                 "/usr/bin/head -c 8192 /dev/zero >\"$HOME/fill\" 2>/dev/null;"
	                 "/usr/bin/dash \"$@\";s=$?;"
	                 "find \"$HOME/.cache\" -mindepth 2|grep . >&2&&exit 99;exit $s",
	                 nsdash, sizeof(nsdash));
	connect_fails_with(&sb, nsdash, true, "status 1 ", "No space left");
}

TEST(first_stage_leaves_nothing_where_tmpdir_and_home_are_noexec)
{
	struct sandbox sb;
	char nsdash[400];

	/* Nowhere to run the program from: the connect fails, and neither
	 * folder keeps a file (a failed exec would end the shell before its
	 * rm: the first stage checks the second place as it did the first).
	 * The namespace's mounts hide the folders: it looks itself. */
	sandbox_mount_ns(&sb, false,
	                 "for d in \"$TMPDIR\" \"$HOME\";do /usr/bin/mount -t tmpfs -o "
	                 "noexec,mode=700 none \"$d\"||exit 1;done;/usr/bin/dash \"$@\";s=$?;"
	                 "find \"$TMPDIR\" \"$HOME\" -mindepth 1|grep . >&2&&exit 99;exit $s",
	                 nsdash, sizeof(nsdash));
	connect_fails(&sb, nsdash, "status 1 ", NULL);
}

TEST(first_stage_goes_to_a_home_with_a_space)
{
	boot_noexec_tmpdir(true);
}

/* The path of race_shim.so (a user of the target who wins every race). */
static const char *race_shim(void)
{
	static char shim[4200];

	snprintf(shim, sizeof(shim), "%s/tests/libmg_race_shim.so", cu_build_dir());
	if (access(shim, R_OK) != 0)
		mg_test_fail(__FILE__, __LINE__, "%s is not built", shim);
	return shim;
}

/* Connects through shell with the sandbox's env and race_shim preloaded,
 * moving (move) or linking target to the first stage's name just before
 * the shell opens it; pings and shuts the context down. */
static void connect_raced(struct sandbox *sb, const char *shell, const char *target, bool move)
{
	char preload[4300], dir_env[320], target_env[420];
	const char *env[] = {sb->path_env,
	                     sb->tmp_env,
	                     sb->home_env,
	                     preload,
	                     dir_env,
	                     target_env,
	                     move ? "MG_RACE_MOVE=1" : NULL,
	                     NULL};
	struct mg_router *r = util_router(0, "master", 0, 0, false);
	struct mg_context *c;

	snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", race_shim());
	snprintf(dir_env, sizeof(dir_env), "MG_RACE_DIR=%s", sb->tmp);
	snprintf(target_env, sizeof(target_env), "MG_RACE_TARGET=%s", target);
	if (connect_shell(r, shell, env, &c) != 0)
		mg_test_fail(__FILE__, __LINE__, "%s: connect: %s", shell, mg_errdetail());
	cu_ping(c);
	CHECK_OK(mg_context_shutdown(c, 5000));
	mg_context_free(c);
	mg_router_free(r);
}

/* The one entry of dir, as a path. */
static void only_entry(const char *dir, char *path, size_t size)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	CHECK(d != NULL);
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(path, size, "%s/%s", dir, e->d_name) >= size)
			mg_test_fail(__FILE__, __LINE__, "%s/%s: too long", dir, e->d_name);
		n++;
	}
	closedir(d);
	CHECK_EQ(n, 1);
}

TEST(first_stage_goes_around_a_taken_name)
{
	static const char *const shells[] = {"/usr/bin/dash", "/bin/bash"};
	static const char kinds[] = {'p', 'l', 'f'};
	char decoy[400], taken[800];
	struct sandbox sb;

	/* Something is already at the first stage's name when the shell
	 * opens it (no user can know the name beforehand; the shim puts a
	 * FIFO, a link or a file of another user's there all the same): the
	 * first stage must go around it, to mktemp, and leave it as it was. */
	for (size_t i = 0; i < sizeof(kinds); i++) {
		for (size_t k = 0; k < sizeof(shells) / sizeof(shells[0]); k++) {
			int hold = -1;

			if (access(shells[k], X_OK) != 0)
				continue;
			sandbox_init(&sb);
			snprintf(sb.path_env, sizeof(sb.path_env), "PATH=/usr/bin:/bin");
			make_decoy(&sb, kinds[i], decoy, sizeof(decoy));
			/* A reader, so that opening the FIFO does not block. */
			if (kinds[i] == 'p')
				CHECK((hold = open(decoy, O_RDWR | O_NONBLOCK | O_CLOEXEC)) >= 0);
			connect_raced(&sb, shells[k], decoy, true);
			only_entry(sb.tmp, taken, sizeof(taken));
			check_decoy(&sb, kinds[i], taken);
			if (hold >= 0) {
				char buf[16];

				if (read(hold, buf, sizeof(buf)) != -1 || errno != EAGAIN)
					mg_test_fail(__FILE__, __LINE__, "%s wrote into the FIFO",
					             shells[k]);
				close(hold);
			}
			rm_tree(sb.dir);
		}
	}
}

/* Runs shell (argv: shell [-o posix] -c script) with env and the n bytes at
 * in on stdin (NULL: /dev/null), stdout to the file out (or /dev/null);
 * returns the exit status.  Stderr is kept. */
static int run_shell(const char *shell, bool posix, const char *script, const char *const *env,
                     const void *in, size_t n, const char *out)
{
	char inpath[] = "/tmp/mg-bootstrap-in.XXXXXX";
	int fd = -1, st = 0;
	pid_t pid;

	if (in != NULL) {
		CHECK((fd = mkstemp(inpath)) >= 0);
		CHECK_EQ(write(fd, in, n), (ssize_t)n);
		CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
		unlink(inpath);
	}
	if ((pid = fork()) == 0) {
		/* busybox runs the applet its argv[0] names. */
		const char *argv0 = strcmp(shell, BUSYBOX) == 0 ? "sh" : shell;
		const char *argv[] = {argv0,
		                      posix ? "-o" : "-c",
		                      posix ? "posix" : script,
		                      posix ? "-c" : NULL,
		                      script,
		                      NULL};
		int o = open(out != NULL ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int i = fd >= 0 ? fd : open("/dev/null", O_RDONLY);

		if (o < 0 || i < 0 || dup2(i, 0) != 0 || dup2(o, 1) != 1)
			_exit(126);
		execve(shell, (char **)argv, (char **)env);
		_exit(127);
	}
	CHECK(pid > 0);
	if (fd >= 0)
		close(fd);
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The whole file at path; *np bytes, caller frees. */
static uint8_t *file_slurp(const char *path, size_t *np)
{
	size_t cap = 65536, n = 0;
	uint8_t *p = malloc(cap);
	ssize_t r;
	int fd;

	CHECK(p != NULL && (fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0);
	while ((r = read(fd, p + n, cap - n)) > 0)
		if ((n += (size_t)r) == cap)
			CHECK((p = realloc(p, cap *= 2)) != NULL);
	CHECK_EQ(r, 0);
	close(fd);
	*np = n;
	return p;
}

/* A de Bruijn sequence over the k bytes at a: every word of len of them
 * once; *np bytes (caller frees). */
static void debruijn_step(const uint8_t *a, int k, int len, int t, int p, int *w, uint8_t *out,
                          size_t *np)
{
	if (t > len) {
		if (len % p == 0)
			for (int j = 1; j <= p; j++)
				out[(*np)++] = a[w[j]];
		return;
	}
	w[t] = w[t - p];
	debruijn_step(a, k, len, t + 1, p, w, out, np);
	for (int j = w[t - p] + 1; j < k; j++) {
		w[t] = j;
		debruijn_step(a, k, len, t + 1, t, w, out, np);
	}
}

static uint8_t *debruijn(const uint8_t *a, int k, int len, size_t *np)
{
	size_t total = 1, n = 0;
	int w[8] = {0};
	uint8_t *out;

	for (int i = 0; i < len; i++)
		total *= (size_t)k;
	CHECK((out = malloc(total + (size_t)len)) != NULL);
	debruijn_step(a, k, len, 1, 1, w, out, &n);
	CHECK_EQ(n, total);
	memcpy(out + n, out, (size_t)len - 1); /* the words that wrap around */
	*np = n + (size_t)len - 1;
	return out;
}

/* How the first stage reads the unpacker's line and writes it (with IFS
 * empty since its start); the case checks the script has these words. */
#define READ_LINE "LC_ALL=C read -r l"
#define PRINT_LINE "LC_ALL=C printf \"$l\""

/* data, as the master's printf line, comes out of every shell's read and
 * printf as it is; what is the name in a failure. */
static void check_line_through_shells(const uint8_t *data, size_t n, const char *what)
{
	static const struct {
		const char *shell, *lang;
		bool posix;
	} runs[] = {
	        {"/usr/bin/dash", NULL, false},
	        {"/bin/bash", NULL, false},
	        {"/bin/bash", "LANG=C.UTF-8", false},
	        {"/bin/bash", "LC_ALL=C.UTF-8", false},
	        {"/bin/bash", "LC_ALL=C.UTF-8", true}, /* as /bin/sh on Fedora and Arch */
	        {BUSYBOX, NULL, false},
	};
	static const char script[] = "IFS=;" READ_LINE "&&" PRINT_LINE;
	char out[] = "/tmp/mg-bootstrap-out.XXXXXX";
	size_t len;
	char *line = mg__bootstrap_printf_line(data, n, &len);
	int fd;

	CHECK(line != NULL);
	CHECK((fd = mkstemp(out)) >= 0);
	close(fd);
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
		const char *env[] = {"PATH=/usr/bin:/bin", runs[i].lang, NULL};
		const char *shell = runs[i].shell;
		uint8_t *got;
		size_t gotn;

		if (access(shell, X_OK) != 0)
			continue;
		CHECK_EQ(run_shell(shell, runs[i].posix, script, env, line, len, out), 0);
		got = file_slurp(out, &gotn);
		if (gotn != n || memcmp(got, data, n) != 0) {
			size_t at = 0;

			while (at < n && at < gotn && got[at] == data[at])
				at++;
			mg_test_fail(__FILE__, __LINE__,
			             "%s through %s%s (%s): %zu bytes back of %zu, first "
			             "difference at %zu (sent %02x %02x %02x)",
			             what, shell, runs[i].posix ? " -o posix" : "",
			             runs[i].lang != NULL ? runs[i].lang : "no locale", gotn, n, at,
			             at > 0 ? data[at - 1] : 0, at < n ? data[at] : 0,
			             at + 1 < n ? data[at + 1] : 0);
		}
		free(got);
	}
	unlink(out);
	free(line);
}

TEST_T(unpack_line_survives_every_shell, 120)
{
	/* The bytes that mean something to printf, read, bash's quoting
	 * (0x01, 0x7f) or a UTF-8 decoder, and some that mean nothing. */
	static const uint8_t special[] = {0,    1,    0x7f, '\n', '\\', '%',  '0',  '7',
	                                  '8',  'x',  'c',  '"',  '$',  '`',  '\'', ' ',
	                                  '\t', 0x80, 0xbf, 0xc3, 0xe2, 0xf0, 0xfe, 0xff};
	static const uint8_t marks[] = {0, 1, 0x7f, '\n', '\\', '%', '0', 0x80, 0xc3};
	uint8_t all[256], *d;
	const uint8_t *u;
	size_t n;

	CHECK(strstr(mg__bootstrap_script(), "IFS=;") != NULL);
	CHECK(strstr(mg__bootstrap_script(), READ_LINE "&&{ " PRINT_LINE) != NULL);
	/* The line the master sends today. */
	CHECK_OK(mg__unpack_image(&u, &n));
	check_line_through_shells(u, n, "mitogen-unpack");
	/* Any unpacker: every pair of bytes, every three of the special
	 * ones, every four of the marks. */
	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	d = debruijn(all, 256, 2, &n);
	check_line_through_shells(d, n, "every byte pair");
	free(d);
	d = debruijn(special, (int)sizeof(special), 3, &n);
	check_line_through_shells(d, n, "every three special bytes");
	free(d);
	d = debruijn(marks, (int)sizeof(marks), 4, &n);
	check_line_through_shells(d, n, "every four marks");
	free(d);
}

TEST(first_stage_leaves_nothing_when_the_line_never_comes)
{
	static const char *const shells[] = {"/usr/bin/dash", "/bin/bash", BUSYBOX};
	char ran[400], partial[500];
	struct sandbox sb;

	/* The master refused the target (another OS, a version mismatch) or
	 * died: the shell's read meets the end of its input, with nothing
	 * or a piece of the line.  It must not write that and exec it (an
	 * empty or short file fails with ENOEXEC, on which the shell runs it
	 * as a script, and the file stays): it removes the file and fails. */
	for (size_t i = 0; i < sizeof(shells) / sizeof(shells[0]); i++) {
		if (access(shells[i], X_OK) != 0)
			continue;
		sandbox_init(&sb);
		snprintf(sb.path_env, sizeof(sb.path_env), "PATH=/usr/bin:/bin");
		snprintf(ran, sizeof(ran), "%s/ran", sb.dir);
		snprintf(partial, sizeof(partial), "echo>%s", ran);
		CHECK_EQ(run_shell(shells[i], false, mg__bootstrap_script(), sb.env, NULL, 0, NULL),
		         1);
		CHECK_EQ(run_shell(shells[i], false, mg__bootstrap_script(), sb.env, partial,
		                   strlen(partial), NULL),
		         1);
		if (access(ran, F_OK) == 0)
			mg_test_fail(__FILE__, __LINE__, "%s ran the piece of a line", shells[i]);
		/* The file is gone by the time the shell exits. */
		CHECK_EQ(count_entries(sb.tmp), 0);
		CHECK_EQ(count_entries(sb.home), 0);
		rm_tree(sb.dir);
	}
}

TEST(first_stage_without_a_file_says_why)
{
	struct sandbox sb;

	/* TMPDIR names no folder: neither the shell's own file nor mktemp's
	 * can be made.  The script ends before its marker, and the connect
	 * fails at once with what mktemp said. */
	sandbox_init(&sb);
	snprintf(sb.path_env, sizeof(sb.path_env), "PATH=/usr/bin:/bin");
	snprintf(sb.tmp_env, sizeof(sb.tmp_env), "TMPDIR=%s/none", sb.dir);
	connect_fails(&sb, "/usr/bin/dash", "mktemp", "none/mitogen-agent");
}

TEST(first_stage_never_writes_into_a_name_raced_to_a_link)
{
	static const char *const shells[] = {"/usr/bin/dash", "/bin/bash"};
	char fifo[400], buf[64];
	struct sandbox sb;
	struct stat st;

	/* A user of the target puts a link at the first stage's name right
	 * before the shell's open, to a FIFO here (for root, it could be a
	 * disk).  The shell's noclobber open follows a link to anything but a
	 * regular file: the first stage must see it has no file of its own
	 * and take a mktemp name, writing nothing there. */
	for (size_t i = 0; i < sizeof(shells) / sizeof(shells[0]); i++) {
		int fd;

		if (access(shells[i], X_OK) != 0)
			continue;
		sandbox_init(&sb);
		snprintf(sb.path_env, sizeof(sb.path_env), "PATH=/usr/bin:/bin");
		snprintf(fifo, sizeof(fifo), "%s/fifo", sb.dir);
		CHECK_EQ(mkfifo(fifo, 0600), 0);
		/* Held open, so that the shell's open of it does not block. */
		CHECK((fd = open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC)) >= 0);
		connect_raced(&sb, shells[i], fifo, false);
		/* The race happened: the link is there, left alone. */
		CHECK_EQ(count_entries(sb.tmp), 1);
		if (read(fd, buf, sizeof(buf)) != -1 || errno != EAGAIN)
			mg_test_fail(__FILE__, __LINE__, "%s wrote into the FIFO", shells[i]);
		CHECK_EQ(stat(fifo, &st), 0);
		CHECK_INT(st.st_mode & 0777, ==, 0600);
		close(fd);
		rm_tree(sb.dir);
	}
}

/* Feeds text to a fresh master side of a first stage (cache: the caching
 * one) in one piece; returns what mg__bootstrap_input returned, and the
 * bytes it then has to send in *outp. */
static int feed(bool cache, const char *text, size_t *outp)
{
	struct mg_bootstrap *b;
	struct mg_buf hs;
	char why[256] = "";
	const void *p;
	size_t len;
	int r;

	mg__buf_init(&hs, 64);
	CHECK_OK(mg__buf_put(&hs, "MGBOOT", 6));
	CHECK_OK(mg__bootstrap_new(&hs, &b));
	if (cache)
		mg__bootstrap_set_cache(b);
	r = mg__bootstrap_input(b, text, strlen(text), why, sizeof(why));
	CHECK((r == 0) == (why[0] == '\0'));
	*outp = 0;
	while (mg__bootstrap_output(b, &p, &len)) {
		*outp += len;
		mg__bootstrap_wrote(b, len);
	}
	mg__bootstrap_free(b);
	mg__buf_fini(&hs);
	return r;
}

TEST(garbage_from_the_first_stage_is_refused)
{
	char noise[70000];
	size_t out;

	/* The marker alone: the unpacker, the agent and the handshake go. */
	CHECK_EQ(feed(false, "hello\nMGSTAGE1 2 Linux x86_64 nocache\n", &out), 0);
	CHECK_UINT(out, >, 10000);
	/* Anything after the marker, before the agent is ready, is refused
	 * (the agent's answer is not the first stage's business). */
	CHECK_EQ(feed(false, "MGSTAGE1 2 Linux x86_64 nocache\nx", &out), MG_EPROTOCOL);
	CHECK_EQ(feed(false, "MGSTAGE1 2 Linux x86_64 nocache\nMGSTAGE1 2 a b nocache\n", &out),
	         MG_EPROTOCOL);
	CHECK_EQ(feed(false, "MGSTAGE1 2 Linux x86_64 hit\n", &out), MG_EPROTOCOL);
	CHECK_EQ(feed(false, "MGSTAGE1 2 Linux x86_64 nocache extra\n", &out), MG_EPROTOCOL);
	CHECK_EQ(feed(false, "MGSTAGE1 2 Linux\n", &out), MG_EPROTOCOL);
	CHECK_EQ(feed(false, "MGSTAGE1 x2 Linux x86_64 nocache\n", &out), MG_EPROTOCOL);
	CHECK_EQ(feed(false, "MGSTAGE1 99999999999 Linux x86_64 nocache\n", &out), MG_EPROTOCOL);
	CHECK_EQ(feed(false, "MGSTAGE1 3 Linux x86_64 nocache\n", &out), MG_ECONNECT);
	CHECK_EQ(feed(false, "MGSTAGE1 2 Linux aarch64 nocache\n", &out), MG_ECONNECT);
	CHECK_EQ(feed(true, "MGSTAGE1 2 Linux x86_64 nocache\n", &out), MG_EPROTOCOL);
	/* The cache: a hit sends the handshake alone; after a miss, one
	 * MGSTAGE2 and nothing else. */
	CHECK_EQ(feed(true, "MGSTAGE1 2 - - hit\n", &out), 0);
	CHECK_EQ(out, 6);
	CHECK_EQ(feed(true, "MGSTAGE1 2 Linux x86_64 miss\nMGSTAGE2\n", &out), 0);
	CHECK_EQ(feed(true, "MGSTAGE1 2 Linux x86_64 miss\nMGSTAGE2\nMGSTAGE2\n", &out),
	         MG_EPROTOCOL);
	CHECK_EQ(feed(true, "MGSTAGE1 2 Linux x86_64 miss\nsomething\n", &out), MG_EPROTOCOL);
	/* Noise without a marker ends after 64 KiB, in lines or not. */
	memset(noise, 'x', sizeof(noise) - 1);
	noise[sizeof(noise) - 1] = '\0';
	CHECK_EQ(feed(false, noise, &out), MG_EPROTOCOL);
	for (size_t i = 100; i < sizeof(noise) - 1; i += 100)
		noise[i] = '\n';
	CHECK_EQ(feed(false, noise, &out), MG_EPROTOCOL);
	CHECK_EQ(out, 0);
}
