/*
 * test_files.c: file and tree transfers against real child contexts
 * (mg_fork of this test program), on real filesystems: the disk under
 * /tmp, small tmpfs mounts for a full disk, a child that drops to "nobody"
 * for permission errors, and a child killed mid-transfer.  Every failure
 * must leave the target path as it was and no temporary file behind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "connect/connect.h"
#include "internal.h"
#include "services/files.h"
#include "util.h"

static struct mg_router *r;
static char dir[256];

MG_EXPORT(become_nobody)
static int become_nobody(struct mg_call *call)
{
	if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0)
		return mg_call_fail(call, "OSError", "setresuid: %s", strerror(errno));
	return 0;
}

MG_EXPORT(my_pid)
static int my_pid(struct mg_call *call)
{
	return mg_call_return(call, "i", (int64_t)getpid());
}

/* A fork of this program as the far side; max caps the message size
 * (0: the default). */
static struct mg_context *child_max(size_t max)
{
	struct mg_context *c;

	CHECK(mg__files_services[0] != NULL);
	r = util_router(0, "master", max, 0, false);
	CHECK_OK(mg_fork(r, NULL, &c));
	snprintf(dir, sizeof(dir), "/tmp/mg-test-files-%ld", (long)getpid());
	CHECK_EQ(mkdir(dir, 0755), 0);
	return c;
}

static struct mg_context *child(void)
{
	return child_max(0);
}

/* The process id of context c. */
static pid_t pid_of(struct mg_context *c)
{
	struct mg_msg *m;
	int64_t pid;

	CHECK_OK(mg_call(c, "my_pid", &m, ""));
	CHECK_OK(mg_msg_read(m, "i", &pid));
	mg_msg_free(m);
	return (pid_t)pid;
}

static void rm_rf(const char *path)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	CHECK_EQ(system(cmd), 0);
}

static void done(struct mg_context *c)
{
	mg_context_free(c);
	mg_router_free(r);
	rm_rf(dir);
}

static const char *at(const char *name)
{
	static char paths[8][512];
	static int next;
	char *p = paths[next++ % 8];

	snprintf(p, 512, "%s/%s", dir, name);
	return p;
}

static void make_file(const char *path, size_t len, unsigned seed, mode_t mode)
{
	uint8_t *b = malloc(len + 1);
	uint64_t x = seed * 2654435761u + 1, *w = (uint64_t *)(void *)b;
	size_t i;
	int fd;

	/* Pseudo-random words: never a run of zeros a sink would make a hole. */
	for (i = 0; i < len / 8; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		w[i] = x | 1;
	}
	for (i = len / 8 * 8; i < len; i++)
		b[i] = (uint8_t)(i + seed);
	CHECK((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)) >= 0);
	CHECK_EQ(write(fd, b, len), (ssize_t)len);
	CHECK_EQ(fchmod(fd, mode), 0);
	close(fd);
	free(b);
}

static char *slurp(const char *path, size_t *lenp)
{
	struct stat st;
	char *b;
	int fd;

	CHECK((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0);
	CHECK_EQ(fstat(fd, &st), 0);
	b = malloc((size_t)st.st_size + 1);
	CHECK_EQ(read(fd, b, (size_t)st.st_size), st.st_size);
	close(fd);
	*lenp = (size_t)st.st_size;
	return b;
}

static void check_same(const char *a, const char *b)
{
	size_t la, lb;
	char *x = slurp(a, &la), *y = slurp(b, &lb);

	CHECK_EQ(la, lb);
	CHECK_MEM(x, y, la);
	free(x);
	free(y);
}

/* No ".name.mgtmp-*" left in folder d. */
static void check_no_temp(const char *d)
{
	struct dirent *e;
	DIR *dd = opendir(d);

	CHECK(dd != NULL);
	while ((e = readdir(dd)) != NULL)
		if (strstr(e->d_name, ".mgtmp-") != NULL)
			mg_test_fail(__FILE__, __LINE__, "temporary file left: %s/%s", d,
			             e->d_name);
	closedir(dd);
}

TEST(xxh64_known_values_and_streaming)
{
	static uint8_t buf[100000];
	struct mg_xxh64 h;
	size_t i, off;

	CHECK_UINT(mg__xxh64("", 0, 0), ==, 0xEF46DB3751D8E999ULL);
	CHECK_UINT(mg__xxh64("a", 1, 0), ==, 0xD24EC4F1A98C6E5BULL);
	CHECK_UINT(mg__xxh64("abc", 3, 0), ==, 0x44BC2CF5AD770999ULL);
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + (i >> 8));
	/* Fed in odd pieces it gives what it gives whole. */
	mg__xxh64_init(&h, 0);
	for (off = 0, i = 1; off < sizeof(buf); i = i * 3 % 1000 + 1) {
		size_t n = off + i > sizeof(buf) ? sizeof(buf) - off : i;
		mg__xxh64_update(&h, buf + off, n);
		off += n;
	}
	CHECK_UINT(mg__xxh64_final(&h), ==, mg__xxh64(buf, sizeof(buf), 0));
	memset(buf, 0, sizeof(buf));
	mg__xxh64_init(&h, 0);
	mg__xxh64_update(&h, buf, 5);
	mg__xxh64_zeros(&h, sizeof(buf) - 5);
	CHECK_UINT(mg__xxh64_final(&h), ==, mg__xxh64(buf, sizeof(buf), 0));
}

TEST(push_and_pull_keep_bytes_mode_mtime_and_owner)
{
	struct mg_context *c = child();
	struct timespec times[2] = {{1000000000, 123456789}, {1000000000, 123456789}};
	struct mg_file_result res;
	struct stat st;
	size_t len;
	char *data;

	make_file(at("src"), 3 * 1024 * 1024 + 17, 1, 0640);
	CHECK_EQ(utimensat(AT_FDCWD, at("src"), times, 0), 0);
	CHECK_EQ(chown(at("src"), 1234, 4321), 0);
	memset(&res, 0, sizeof(res));
	CHECK_OK(mg_file_push(c, at("src"), at("pushed"), NULL, &res));
	CHECK_EQ(res.bytes, 3 * 1024 * 1024 + 17);
	CHECK_EQ(res.files, 1);
	check_same(at("src"), at("pushed"));
	data = slurp(at("src"), &len);
	CHECK_UINT(res.hash, ==, mg__xxh64(data, len, 0));
	free(data);
	CHECK_EQ(stat(at("pushed"), &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0640);
	CHECK_EQ(st.st_mtim.tv_sec, 1000000000);
	CHECK_EQ(st.st_mtim.tv_nsec, 123456789);
	CHECK_EQ(st.st_uid, 1234);
	CHECK_EQ(st.st_gid, 4321);

	/* Pull it back over an existing file: replaced whole. */
	make_file(at("pulled"), 10, 2, 0600);
	CHECK_OK(mg_file_pull(c, at("pushed"), at("pulled"), NULL, &res));
	check_same(at("src"), at("pulled"));
	CHECK_EQ(stat(at("pulled"), &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0640);
	CHECK_EQ(st.st_mtim.tv_nsec, 123456789);
	CHECK_EQ(st.st_uid, 1234);

	/* Empty files and a chosen mode. */
	{
		struct mg_file_opts o;
		make_file(at("empty"), 0, 3, 0644);
		mg_file_opts_init(&o);
		o.mode = 0600;
		CHECK_OK(mg_file_push(c, at("empty"), at("empty2"), &o, NULL));
		CHECK_EQ(stat(at("empty2"), &st), 0);
		CHECK_EQ(st.st_size, 0);
		CHECK_EQ(st.st_mode & 07777, 0600);
	}
	check_no_temp(dir);
	done(c);
}

TEST(missing_source_and_directory_targets)
{
	struct mg_context *c = child();
	struct mg_file_result res;

	CHECK_EQ(mg_file_push(c, at("nope"), at("x"), NULL, &res), -ENOENT);
	printf("    push: %s\n", res.error);
	CHECK_EQ(mg_file_pull(c, at("nope"), at("x"), NULL, &res), -ENOENT);
	printf("    pull: %s\n", res.error);
	CHECK(strstr(res.error, "nope") != NULL);
	CHECK_EQ(access(at("x"), F_OK), -1);

	make_file(at("f"), 100, 1, 0644);
	CHECK_EQ(mkdir(at("d"), 0755), 0);
	CHECK_EQ(mg_file_push(c, at("f"), at("d"), NULL, &res), -EISDIR);
	CHECK_EQ(mg_file_pull(c, at("f"), at("d"), NULL, &res), -EISDIR);
	CHECK_EQ(mg_file_push(c, at("d"), at("g"), NULL, &res), -EISDIR);
	CHECK_EQ(mg_file_pull(c, at("d"), at("g"), NULL, &res), -EISDIR);
	CHECK_EQ(mg_file_push(c, at("f"), at("no/such/dir/f"), NULL, &res), -ENOENT);
	CHECK_EQ(access(at("g"), F_OK), -1);
	/* A FIFO (whose open would wait for a writer for ever) and an endless
	 * device are refused at once, at either end. */
	CHECK_EQ(mkfifo(at("fifo"), 0600), 0);
	CHECK_EQ(mg_file_pull(c, at("fifo"), at("g"), NULL, &res), -EINVAL);
	CHECK(strstr(res.error, "not a regular file") != NULL);
	CHECK_EQ(mg_file_push(c, at("fifo"), at("g"), NULL, &res), -EINVAL);
	CHECK(strstr(res.error, "not a regular file") != NULL);
	CHECK_EQ(mg_file_pull(c, "/dev/zero", at("g"), NULL, &res), -EINVAL);
	CHECK_EQ(access(at("g"), F_OK), -1);
	CHECK_EQ(unlink(at("fifo")), 0);
	check_no_temp(dir);
	check_no_temp(at("d"));
	done(c);
}

TEST(permission_denied)
{
	struct mg_context *c = child();
	struct mg_file_result res;
	struct mg_msg *m;

	CHECK_EQ(mkdir(at("locked"), 0755), 0);
	make_file(at("secret"), 100, 1, 0600);
	make_file(at("f"), 100, 1, 0644);
	CHECK_OK(mg_call(c, "become_nobody", &m, ""));
	mg_msg_free(m);
	CHECK_EQ(mg_file_push(c, at("f"), at("locked/f"), NULL, &res), -EACCES);
	printf("    %s\n", res.error);
	CHECK_EQ(mg_file_pull(c, at("secret"), at("copy"), NULL, &res), -EACCES);
	CHECK_EQ(access(at("locked/f"), F_OK), -1);
	CHECK_EQ(access(at("copy"), F_OK), -1);
	check_no_temp(dir);
	done(c);
}

TEST(disk_full_keeps_the_old_file)
{
	struct mg_context *c;
	struct mg_file_result res;
	size_t len;
	char *old;

	/* A private mount namespace, made before the child is forked so it
	 * shares it: the tmpfs goes away with this case's processes even when
	 * a check fails before the umount. */
	if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
		mg_test_skip("no private mount namespace: %s", strerror(errno));
	c = child();
	CHECK_EQ(mkdir(at("small"), 0755), 0);
	if (mount("tmpfs", at("small"), "tmpfs", 0, "size=1m") != 0)
		mg_test_skip("cannot mount a tmpfs: %s", strerror(errno));
	make_file(at("small/target"), 1000, 9, 0644);
	make_file(at("big"), 4 * 1024 * 1024, 1, 0644);
	CHECK_EQ(mg_file_push(c, at("big"), at("small/target"), NULL, &res), -ENOSPC);
	printf("    push: %s\n", res.error);
	CHECK_EQ(mg_file_pull(c, at("big"), at("small/target"), NULL, &res), -ENOSPC);
	printf("    pull: %s\n", res.error);
	old = slurp(at("small/target"), &len);
	CHECK_EQ(len, 1000);
	free(old);
	check_no_temp(at("small"));
	/* With room again the same push works. */
	make_file(at("big"), 200 * 1024, 1, 0644);
	CHECK_OK(mg_file_push(c, at("big"), at("small/target"), NULL, &res));
	check_same(at("big"), at("small/target"));
	/* The context's transfer threads may still hold the file open for a
	 * moment: detach the mount lazily (it goes when they let go), then
	 * stop the context and remove the folders. */
	CHECK_EQ(umount2(at("small"), MNT_DETACH), 0);
	done(c);
}

struct bg {
	struct mg_context *c;
	const char *from, *to;
	bool push;
	int rc;
};

static void *transfer(void *arg)
{
	struct bg *b = arg;
	struct mg_file_result res;

	b->rc = b->push ? mg_file_push(b->c, b->from, b->to, NULL, &res)
	                : mg_file_pull(b->c, b->from, b->to, NULL, &res);
	return NULL;
}

/* Size of the temporary file being written in d, or -1 when none yet. */
static long long temp_size(const char *d)
{
	char path[600];
	struct dirent *e;
	long long size = -1;
	struct stat st;
	DIR *dd = opendir(d);

	while (dd != NULL && (e = readdir(dd)) != NULL) {
		snprintf(path, sizeof(path), "%s/%s", d, e->d_name);
		if (strstr(e->d_name, ".mgtmp-") != NULL && stat(path, &st) == 0)
			size = st.st_size;
	}
	if (dd != NULL)
		closedir(dd);
	return size;
}

/* Bytes the master wrote towards c. */
static uint64_t sent_to(struct mg_context *c)
{
	uint64_t n = 0;

	CHECK_OK(mg__router_link_bytes_out(r, mg_context_id(c), &n));
	return n;
}

/* Kills the context mid-transfer.  named: the sinks use named temporary
 * files (the fallback), whose progress can be watched in the folder;
 * else unnamed ones, and progress is watched on the link. */
static void kill_mid_transfer(bool push, bool named)
{
	struct bg b = {NULL, NULL, NULL, push, 1};
	struct mg_context *c;
	long long got = 0;
	uint64_t base;
	int64_t pid;
	pthread_t t;
	int i;

	if (named)
		setenv("MG_FILE_NAMED_TEMP", "1", 1);
	c = child();
	b.c = c;
	b.from = at("big");
	b.to = at("copy");
	make_file(at("big"), 64 * 1024 * 1024, 5, 0644);
	pid = pid_of(c);
	base = sent_to(c);
	CHECK_EQ(pthread_create(&t, NULL, transfer, &b), 0);
	/* Cut it off once a few megabytes have landed. */
	for (i = 0; i < 20000; i++) {
		got = named ? temp_size(dir) : (long long)(sent_to(c) - base);
		if (got >= 4 * 1024 * 1024)
			break;
		usleep(500);
	}
	kill((pid_t)pid, SIGKILL);
	printf("    killed the context with %lld bytes %s\n", got, named ? "written" : "sent");
	pthread_join(t, NULL);
	CHECK_EQ(b.rc, MG_EDISCONNECT);
	CHECK_EQ(access(at("copy"), F_OK), -1);
	/* A named temporary file killed with its process stays (the next
	 * push sweeps it: see below); an unnamed one never had a name. */
	if (!push || !named)
		check_no_temp(dir);
	done(c);
}

TEST(push_cut_off_by_a_lost_context)
{
	kill_mid_transfer(true, false);
}

TEST(push_cut_off_by_a_lost_context_named_temp)
{
	kill_mid_transfer(true, true);
}

TEST(pull_cut_off_by_a_lost_context_named_temp)
{
	kill_mid_transfer(false, true);
}

TEST(trees_round_trip)
{
	struct mg_context *c = child();
	struct mg_file_result res;
	char cmd[1024], link[64];
	struct stat st;

	CHECK_EQ(mkdir(at("t"), 0750), 0);
	CHECK_EQ(mkdir(at("t/sub"), 0700), 0);
	CHECK_EQ(mkdir(at("t/sub/deeper"), 0555), 0);
	make_file(at("t/a"), 5000, 1, 0644);
	make_file(at("t/sub/b"), 300000, 2, 0600);
	make_file(at("t/sub/exe"), 10, 3, 0755);
	CHECK_EQ(symlink("sub/b", at("t/link")), 0);
	memset(&res, 0, sizeof(res));
	CHECK_OK(mg_file_push_tree(c, at("t"), at("t2"), NULL, &res));
	CHECK_EQ(res.files, 3);
	snprintf(cmd, sizeof(cmd), "diff -r '%s' '%s'", at("t"), at("t2"));
	CHECK_EQ(system(cmd), 0);
	CHECK_EQ(lstat(at("t2/sub/deeper"), &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0555);
	CHECK_EQ(lstat(at("t2"), &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0750);
	CHECK_EQ(readlink(at("t2/link"), link, sizeof(link)), 5);
	CHECK_MEM(link, "sub/b", 5);
	CHECK_EQ(lstat(at("t2/sub/exe"), &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0755);

	memset(&res, 0, sizeof(res));
	CHECK_OK(mg_file_pull_tree(c, at("t2"), at("t3"), NULL, &res));
	CHECK_EQ(res.files, 3);
	snprintf(cmd, sizeof(cmd), "diff -r '%s' '%s'", at("t"), at("t3"));
	CHECK_EQ(system(cmd), 0);
	{
		struct stat a, b;
		CHECK_EQ(stat(at("t/sub"), &a), 0);
		CHECK_EQ(stat(at("t3/sub"), &b), 0);
		CHECK_EQ(a.st_mtim.tv_sec, b.st_mtim.tv_sec);
		CHECK_EQ(a.st_mtim.tv_nsec, b.st_mtim.tv_nsec);
	}
	CHECK_EQ(mg_file_pull_tree(c, at("none"), at("t4"), NULL, &res), -ENOENT);
	CHECK_EQ(mg_file_push_tree(c, at("t/a"), at("t4"), NULL, &res), -ENOTDIR);
	done(c);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void poke(const char *path, uint64_t off, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);

	CHECK(fd >= 0);
	CHECK_EQ(pwrite(fd, text, strlen(text), (off_t)off), (ssize_t)strlen(text));
	close(fd);
}

static void check_at(const char *path, uint64_t off, const char *text)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	CHECK(fd >= 0);
	CHECK_EQ(pread(fd, buf, strlen(text), (off_t)off), (ssize_t)strlen(text));
	CHECK_STR(buf, text);
	close(fd);
}

TEST_T(files_over_four_gibibytes, 120)
{
	const uint64_t size = 5ULL << 30, four = 4ULL << 30;
	struct mg_context *c = child();
	struct mg_file_result res;
	struct stat st;
	int64_t t0;
	int fd;

	/* Sparse, with bytes at the start, across the 4 GiB line and at the
	 * end: 64-bit offsets must hold all the way. */
	CHECK((fd = open(at("huge"), O_WRONLY | O_CREAT | O_CLOEXEC, 0644)) >= 0);
	CHECK_EQ(ftruncate(fd, (off_t)size), 0);
	close(fd);
	poke(at("huge"), 0, "start");
	poke(at("huge"), four - 3, "across");
	poke(at("huge"), size - 3, "end");
	t0 = now_ms();
	CHECK_OK(mg_file_push(c, at("huge"), at("huge2"), NULL, &res));
	printf("    5 GiB sparse push in %lld ms, xxh64 %016llx\n", (long long)(now_ms() - t0),
	       (unsigned long long)res.hash);
	CHECK_EQ(stat(at("huge2"), &st), 0);
	CHECK_UINT(st.st_size, ==, size);
	/* Holes stayed holes. */
	CHECK((uint64_t)st.st_blocks * 512 < 64 * 1024 * 1024);
	check_at(at("huge2"), 0, "start");
	check_at(at("huge2"), four - 3, "across");
	check_at(at("huge2"), size - 3, "end");
	t0 = now_ms();
	CHECK_OK(mg_file_pull(c, at("huge2"), at("huge3"), NULL, &res));
	printf("    5 GiB sparse pull in %lld ms\n", (long long)(now_ms() - t0));
	CHECK_EQ(stat(at("huge3"), &st), 0);
	CHECK_UINT(st.st_size, ==, size);
	check_at(at("huge3"), four - 3, "across");
	check_at(at("huge3"), size - 3, "end");
	done(c);
}

/* ---- many targets behind a gateway ------------------------------------- */

MG_EXPORT(go_to)
static int go_to(struct mg_call *call)
{
	const char *d;

	if (mg_call_args(call, "s", &d) != 0)
		return -1;
	if (mkdir(d, 0755) != 0 || chdir(d) != 0)
		return mg__svc_fail_errno(call, errno, d);
	return 0;
}

#define KIDS 8

/* The agent's fd is made once per process and kept: make it before the
 * runner counts each case's fds (as test_connect does). */
__attribute__((constructor)) static void agent_fd_first(void)
{
	(void)mg__agent_memfd();
}

TEST_T(push_many_crosses_the_gateway_link_once, 120)
{
	const size_t size = 16 * 1024 * 1024;
	struct timespec times[2] = {{1200000000, 5}, {1200000000, 5}};
	struct mg_context *gw = child(), *kids[KIDS + 1];
	struct mg_file_result res[KIDS + 1];
	struct mg_connect_opts o;
	int codes[KIDS + 1], i;
	uint64_t before, after;
	struct stat st;
	char name[64];
	struct mg_msg *m;

	/* Forks of a fork of this program: each moves into a folder of its
	 * own, so one relative target path lands in KIDS distinct files. */
	for (i = 0; i < KIDS; i++) {
		mg_connect_opts_init(&o, MG_METHOD_FORK);
		o.via = gw;
		CHECK_OK(mg_connect(r, &o, &kids[i]));
		snprintf(name, sizeof(name), "kid%d", i);
		CHECK_OK(mg_call(kids[i], "go_to", &m, "s", at(name)));
		mg_msg_free(m);
	}
	/* And one direct child beside them, served by an ordinary push. */
	CHECK_OK(mg_fork(r, NULL, &kids[KIDS]));
	CHECK_OK(mg_call(kids[KIDS], "go_to", &m, "s", at("direct")));
	mg_msg_free(m);
	make_file(at("src"), size, 11, 0640);
	CHECK_EQ(utimensat(AT_FDCWD, at("src"), times, 0), 0);

	before = sent_to(gw);
	CHECK_OK(mg_file_push_many(kids, KIDS + 1, at("src"), "copy", NULL, codes, res));
	after = sent_to(gw);
	printf("    %d x %zu bytes behind the gateway: %llu bytes on its link\n", KIDS, size,
	       (unsigned long long)(after - before));
	CHECK_UINT(after - before, <, 2 * size);
	CHECK_UINT(after - before, >=, size);
	for (i = 0; i <= KIDS; i++) {
		CHECK_EQ(codes[i], 0);
		CHECK_EQ(res[i].files, 1);
		CHECK_UINT(res[i].hash, ==, res[0].hash);
		snprintf(name, sizeof(name), i < KIDS ? "kid%d/copy" : "direct/copy", i);
		check_same(at("src"), at(name));
		CHECK_EQ(stat(at(name), &st), 0);
		CHECK_EQ(st.st_mode & 07777, 0640);
		CHECK_EQ(st.st_mtim.tv_sec, 1200000000);
		CHECK_EQ(st.st_mtim.tv_nsec, 5);
	}

	/* Per-target errors: a child gone, a folder in the way; the others
	 * still get the file, and the gateway's link still carries it once. */
	CHECK_OK(mg_context_shutdown(kids[1], 5000));
	CHECK_EQ(mkdir(at("kid2/copy2"), 0755), 0);
	make_file(at("src"), size / 2, 12, 0600);
	before = sent_to(gw);
	CHECK(mg_file_push_many(kids, KIDS, at("src"), "copy2", NULL, codes, res) != 0);
	after = sent_to(gw);
	CHECK_UINT(after - before, <, size);
	CHECK(codes[1] != 0);
	printf("    gone: %s\n", res[1].error);
	CHECK_EQ(codes[2], -EISDIR);
	printf("    folder: %s\n", res[2].error);
	for (i = 0; i < KIDS; i++)
		if (i != 1 && i != 2) {
			CHECK_EQ(codes[i], 0);
			snprintf(name, sizeof(name), "kid%d/copy2", i);
			check_same(at("src"), at(name));
			snprintf(name, sizeof(name), "kid%d", i);
			check_no_temp(at(name));
		}

	/* A missing source fails every target before anything is sent. */
	CHECK_EQ(mg_file_push_many(kids, 2, at("nope"), "x", NULL, codes, res), -ENOENT);
	CHECK_EQ(codes[1], -ENOENT);
	CHECK(strstr(res[1].error, "nope") != NULL);
	for (i = KIDS; i >= 0; i--)
		mg_context_free(kids[i]);
	done(gw);
}

TEST_T(push_many_to_agents_behind_a_local_gateway, 120)
{
	const size_t size = 16 * 1024 * 1024;
	struct mg_context *gw, *kids[KIDS];
	struct mg_file_result res[KIDS];
	struct mg_connect_opts o;
	int codes[KIDS], i;
	uint64_t before, after;

	mg_context_free(child()); /* the router and the folder */
	CHECK_OK(mg_local(r, NULL, &gw));
	for (i = 0; i < KIDS; i++) {
		mg_connect_opts_init(&o, MG_METHOD_LOCAL);
		o.via = gw;
		CHECK_OK(mg_connect(r, &o, &kids[i]));
	}
	make_file(at("src"), size, 13, 0644);
	before = sent_to(gw);
	CHECK_OK(mg_file_push_many(kids, KIDS, at("src"), at("copy"), NULL, codes, res));
	after = sent_to(gw);
	printf("    %d agents: %llu bytes on the gateway's link for %zu\n", KIDS,
	       (unsigned long long)(after - before), size);
	CHECK_UINT(after - before, <, 2 * size);
	for (i = 0; i < KIDS; i++) {
		CHECK_EQ(codes[i], 0);
		CHECK_UINT(res[i].hash, ==, res[0].hash);
	}
	check_same(at("src"), at("copy"));
	check_no_temp(dir);
	for (i = 0; i < KIDS; i++)
		mg_context_free(kids[i]);
	done(gw);
}

static void check_meta(const char *a, const char *b)
{
	struct stat sa, sb;

	CHECK_EQ(lstat(a, &sa), 0);
	CHECK_EQ(lstat(b, &sb), 0);
	CHECK_EQ(sa.st_mode, sb.st_mode);
	CHECK_EQ(sa.st_mtim.tv_sec, sb.st_mtim.tv_sec);
	CHECK_EQ(sa.st_mtim.tv_nsec, sb.st_mtim.tv_nsec);
}

TEST_T(files_and_trees_to_and_from_a_grandchild, 60)
{
	struct mg_context *gw = child(), *gc;
	struct timespec times[2] = {{1300000000, 42}, {1300000000, 42}};
	struct mg_connect_opts o;
	char cmd[1024];

	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	o.via = gw;
	CHECK_OK(mg_connect(r, &o, &gc));
	make_file(at("f"), 2 * 1024 * 1024 + 3, 21, 0604);
	CHECK_EQ(utimensat(AT_FDCWD, at("f"), times, 0), 0);
	CHECK_OK(mg_file_push(gc, at("f"), at("f2"), NULL, NULL));
	check_same(at("f"), at("f2"));
	check_meta(at("f"), at("f2"));
	CHECK_OK(mg_file_pull(gc, at("f2"), at("f3"), NULL, NULL));
	check_same(at("f"), at("f3"));
	check_meta(at("f"), at("f3"));

	CHECK_EQ(mkdir(at("t"), 0751), 0);
	CHECK_EQ(mkdir(at("t/d"), 0700), 0);
	make_file(at("t/d/x"), 400000, 22, 0640);
	make_file(at("t/y"), 1, 23, 0755);
	CHECK_EQ(symlink("d/x", at("t/l")), 0);
	CHECK_EQ(utimensat(AT_FDCWD, at("t/d"), times, 0), 0);
	CHECK_OK(mg_file_push_tree(gc, at("t"), at("t2"), NULL, NULL));
	CHECK_OK(mg_file_pull_tree(gc, at("t2"), at("t3"), NULL, NULL));
	snprintf(cmd, sizeof(cmd), "diff -r '%s' '%s' && diff -r '%s' '%s'", at("t"), at("t2"),
	         at("t"), at("t3"));
	CHECK_EQ(system(cmd), 0);
	check_meta(at("t/d"), at("t2/d"));
	check_meta(at("t/d"), at("t3/d"));
	check_meta(at("t/d/x"), at("t3/d/x"));
	check_meta(at("t/y"), at("t3/y"));
	check_meta(at("t"), at("t3"));
	mg_context_free(gc);
	done(gw);
}

/* ---- leftovers of killed transfers ------------------------------------ */

/* Sets path's mtime an hour back. */
static void age(const char *path)
{
	struct timespec times[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};

	CHECK_EQ(utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW), 0);
}

/* The name of the one temporary file for "copy" in dir. */
static void find_temp(char *out, size_t size)
{
	struct dirent *e;
	DIR *dd = opendir(dir);

	out[0] = '\0';
	CHECK(dd != NULL);
	while ((e = readdir(dd)) != NULL)
		if (strncmp(e->d_name, ".copy.mgtmp-", 12) == 0 && strlen(e->d_name) == 18)
			snprintf(out, size, "%s/%s", dir, e->d_name);
	closedir(dd);
}

TEST_T(a_later_push_removes_leftovers_of_a_killed_one, 60)
{
	struct mg_context *c, *c2;
	struct bg b;
	char left[600], live[600], recent[600], other[600];
	struct flock fl;
	int64_t pid;
	pthread_t t;
	int i, lfd, fd;

	/* Only named temporary files can be left over (files_sink.c). */
	setenv("MG_FILE_NAMED_TEMP", "1", 1);
	c = child();
	b = (struct bg){c, at("big"), at("copy"), true, 1};
	make_file(at("big"), 64 * 1024 * 1024, 5, 0644);
	pid = pid_of(c);
	CHECK_EQ(pthread_create(&t, NULL, transfer, &b), 0);
	for (i = 0; i < 20000 && temp_size(dir) < 1024 * 1024; i++)
		usleep(500);
	kill((pid_t)pid, SIGKILL);
	pthread_join(t, NULL);
	CHECK_EQ(b.rc, MG_EDISCONNECT);
	/* SIGKILL gave the sink no chance: its temporary file is there. */
	find_temp(left, sizeof(left));
	CHECK(left[0] != '\0');
	printf("    left over: %s\n", left);
	age(left);

	/* Beside it: one a running transfer holds (old, but locked), one just
	 * made (unlocked, but new), and one for another target. */
	snprintf(live, sizeof(live), "%s/.copy.mgtmp-LIVE00", dir);
	snprintf(recent, sizeof(recent), "%s/.copy.mgtmp-NEW000", dir);
	snprintf(other, sizeof(other), "%s/.other.mgtmp-OLD000", dir);
	CHECK((lfd = open(live, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) >= 0);
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	CHECK_EQ(fcntl(lfd, F_OFD_SETLK, &fl), 0);
	age(live);
	CHECK((fd = open(recent, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) >= 0);
	close(fd);
	CHECK((fd = open(other, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) >= 0);
	close(fd);
	age(other);

	CHECK_OK(mg_fork(r, NULL, &c2));
	make_file(at("small"), 1000, 6, 0644);
	CHECK_OK(mg_file_push(c2, at("small"), at("copy"), NULL, NULL));
	check_same(at("small"), at("copy"));
	CHECK_EQ(access(left, F_OK), -1);
	CHECK_EQ(access(live, F_OK), 0);
	CHECK_EQ(access(recent, F_OK), 0);
	CHECK_EQ(access(other, F_OK), 0);
	/* Once its holder lets go (and it is old), the next push takes it. */
	close(lfd);
	CHECK_OK(mg_file_push(c2, at("small"), at("copy"), NULL, NULL));
	CHECK_EQ(access(live, F_OK), -1);
	CHECK_EQ(access(recent, F_OK), 0);
	unlink(recent);
	unlink(other);
	check_no_temp(dir);
	mg_context_free(c2);
	done(c);
}

/* ---- big folders ------------------------------------------------------ */

TEST_T(a_listing_of_100000_entries_comes_in_pages, 300)
{
	/* Messages of at most 1 MiB: a listing in one message would need
	 * about 4 MiB. */
	struct mg_context *c = child_max(1024 * 1024);
	struct mg_file_result res;
	char path[600];
	struct dirent *e;
	struct stat st;
	long n = 0;
	DIR *dd;
	int i;

	/* 200,000 folders are made and removed: on a tmpfs when there is
	 * one, as a disk's journal makes that take minutes. */
	if (access("/dev/shm", W_OK) == 0) {
		rm_rf(dir);
		snprintf(dir, sizeof(dir), "/dev/shm/mg-test-files-%ld", (long)getpid());
		CHECK_EQ(mkdir(dir, 0755), 0);
	}
	CHECK_EQ(mkdir(at("big"), 0755), 0);
	for (i = 0; i < 100000; i++) {
		snprintf(path, sizeof(path), "%s/d%06d", at("big"), i);
		CHECK_EQ(mkdir(path, 0700 | (i % 2 ? 050 : 0)), 0);
	}
	memset(&res, 0, sizeof(res));
	CHECK_OK(mg_file_pull_tree(c, at("big"), at("copy"), NULL, &res));
	CHECK((dd = opendir(at("copy"))) != NULL);
	while ((e = readdir(dd)) != NULL)
		n += e->d_name[0] != '.';
	closedir(dd);
	CHECK_EQ(n, 100000);
	snprintf(path, sizeof(path), "%s/d099999", at("copy"));
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0750);
	/* Errors still fail the call: a missing folder, a file. */
	CHECK_EQ(mg_file_pull_tree(c, at("none"), at("x"), NULL, &res), -ENOENT);
	printf("    %s\n", res.error);
	make_file(at("f"), 10, 1, 0644);
	CHECK_EQ(mg_file_pull_tree(c, at("f"), at("x"), NULL, &res), -ENOTDIR);
	done(c);
}

TEST_T(a_sink_whose_caller_is_lost_removes_its_temporary_file, 60)
{
	/* master -> gateway -> grandchild: killing the gateway takes the
	 * pushing side away from the grandchild's sink, and the grandchild's
	 * parent with it, so the grandchild exits too; neither may leave the
	 * temporary file behind. */
	struct mg_context *gw = child(), *gc;
	struct mg_connect_opts o;
	struct bg b = {NULL, at("big"), at("copy"), true, 1};
	uint64_t base;
	int64_t pid;
	pthread_t t;
	int i;

	mg_connect_opts_init(&o, MG_METHOD_FORK);
	o.via = gw;
	CHECK_OK(mg_connect(r, &o, &gc));
	b.c = gc;
	make_file(at("big"), 64 * 1024 * 1024, 5, 0644);
	pid = pid_of(gw);
	base = sent_to(gw);
	CHECK_EQ(pthread_create(&t, NULL, transfer, &b), 0);
	for (i = 0; i < 20000 && sent_to(gw) - base < 4 * 1024 * 1024; i++)
		usleep(500);
	kill((pid_t)pid, SIGKILL);
	pthread_join(t, NULL);
	CHECK_EQ(b.rc, MG_EDISCONNECT);
	/* The grandchild exits within a second or so of losing its parent,
	 * whatever its sink was doing: nothing may be left. */
	usleep(1500 * 1000);
	check_no_temp(dir);
	CHECK_EQ(access(at("copy"), F_OK), -1);
	mg_context_free(gc);
	done(gw);
}
