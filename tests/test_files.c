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

static struct mg_context *child(void)
{
	struct mg_context *c;

	CHECK(mg__files_services[0] != NULL);
	r = util_router(0, "master", 0, 0, false);
	CHECK_OK(mg_fork(r, NULL, &c));
	snprintf(dir, sizeof(dir), "/tmp/mg-test-files-%ld", (long)getpid());
	CHECK_EQ(mkdir(dir, 0755), 0);
	return c;
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

static void kill_mid_transfer(bool push)
{
	struct mg_context *c = child();
	struct bg b = {c, at("big"), at("copy"), push, 1};
	struct mg_msg *m;
	int64_t pid;
	pthread_t t;

	long long got;
	int i;

	make_file(at("big"), 64 * 1024 * 1024, 5, 0644);
	CHECK_OK(mg_call(c, "my_pid", &m, ""));
	CHECK_OK(mg_msg_read(m, "i", &pid));
	mg_msg_free(m);
	CHECK_EQ(pthread_create(&t, NULL, transfer, &b), 0);
	/* Cut it off once a few megabytes have landed. */
	for (i = 0; i < 20000 && (got = temp_size(dir)) < 4 * 1024 * 1024; i++)
		usleep(500);
	kill((pid_t)pid, SIGKILL);
	printf("    killed the context with %lld bytes written\n", got);
	pthread_join(t, NULL);
	CHECK_EQ(b.rc, MG_EDISCONNECT);
	CHECK_EQ(access(at("copy"), F_OK), -1);
	if (!push)
		check_no_temp(dir);
	done(c);
}

TEST(push_cut_off_by_a_lost_context)
{
	kill_mid_transfer(true);
}

TEST(pull_cut_off_by_a_lost_context)
{
	kill_mid_transfer(false);
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
