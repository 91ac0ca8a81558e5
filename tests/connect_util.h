/*
 * connect_util.h: helpers for the connect suites: where the build put its
 * programs, and what a case left behind (child processes, temporary
 * files).
 */
#ifndef MG_TEST_CONNECT_UTIL_H
#define MG_TEST_CONNECT_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mitogen.h"
#include "runner.h"

/* The build directory: $MG_BINARY_DIR (set by ctest), else the parent of
 * the directory holding this test program. */
static inline const char *cu_build_dir(void)
{
	static char dir[4096];
	const char *env = getenv("MG_BINARY_DIR");
	char exe[4096];
	ssize_t n;

	if (env != NULL && *env != '\0')
		return env;
	if (dir[0] != '\0')
		return dir;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	CHECK(n > 0);
	exe[n] = '\0';
	snprintf(dir, sizeof(dir), "%s", dirname(dirname(exe)));
	return dir;
}

/* This test program's own path. */
static inline const char *cu_self_exe(void)
{
	static char exe[4096];
	ssize_t n;

	if (exe[0] == '\0') {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		CHECK(n > 0);
		exe[n] = '\0';
	}
	return exe;
}

/* Counts this process's children, zombies included, from /proc. */
static inline int cu_count_children(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	CHECK(d != NULL);
	while ((e = readdir(d)) != NULL) {
		char path[300], buf[512], *p;
		FILE *f;
		int ppid;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		p = fgets(buf, sizeof(buf), f);
		fclose(f);
		/* The command may hold spaces and parentheses: skip to the last ')'. */
		if (p == NULL || (p = strrchr(buf, ')')) == NULL)
			continue;
		if (sscanf(p + 1, " %*c %d", &ppid) == 1 && ppid == getpid())
			n++;
	}
	closedir(d);
	return n;
}

/* Waits up to ms for every child to be gone. */
static inline int cu_wait_no_children(int ms)
{
	int n = cu_count_children();

	for (; n > 0 && ms > 0; ms -= 5) {
		usleep(5000);
		n = cu_count_children();
	}
	return n;
}

/* Counts entries of the temporary directory the agent fallback would use. */
static inline int cu_count_tmp_agents(void)
{
	const char *tmp = getenv("TMPDIR");
	DIR *d = opendir(tmp && *tmp ? tmp : "/tmp");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		if (strncmp(e->d_name, "mitogen-agent-", 14) == 0)
			n++;
	closedir(d);
	return n;
}

/* Raises the soft fd limit to the hard one (many contexts at once). */
static inline void cu_raise_nofile(void)
{
	struct rlimit rl;

	CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = rl.rlim_max;
	CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

/* Makes memfd_create fail with ENOSYS in this process and everything it
 * starts, as on a kernel older than 3.17: a seccomp filter, inherited
 * across fork and exec. */
static inline void cu_forbid_memfd(void)
{
	struct sock_filter code[] = {
	        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
	        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_memfd_create, 0, 1),
	        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
	        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {sizeof(code) / sizeof(code[0]), code};

	CHECK_EQ(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	CHECK_EQ(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
	errno = 0;
	CHECK_EQ(memfd_create("probe", MFD_CLOEXEC), -1);
	CHECK_EQ(errno, ENOSYS);
}

/* Whether the writable memory of process pid (stack, heap, data, anonymous
 * mappings) holds the bytes of needle: how a case checks that a secret was
 * wiped after use.  Read-only mappings are skipped (a program's own string
 * constants live there).  Needs ptrace access to pid (the suites run as
 * root).  Returns 1 when found, 0 when not, -1 when the memory could not
 * be read at all. */
static inline int cu_memory_holds(pid_t pid, const char *needle)
{
	char path[64], line[512];
	size_t n = strlen(needle), chunk = 1 << 20;
	char *buf;
	FILE *maps;
	int fd, found = 0, readable = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	if ((maps = fopen(path, "r")) == NULL)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || (buf = malloc(chunk + n)) == NULL) {
		if (fd >= 0)
			close(fd);
		fclose(maps);
		return -1;
	}
	while (!found && fgets(line, sizeof(line), maps) != NULL) {
		unsigned long lo, hi, at;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[1] != 'w' ||
		    strstr(line, "[vvar]") != NULL || strstr(line, "[vsyscall]") != NULL)
			continue;
		/* Chunks overlap by n bytes so a needle across a boundary counts. */
		for (at = lo; !found && at < hi; at += chunk) {
			size_t want = hi - at < chunk + n ? hi - at : chunk + n;
			ssize_t got = pread(fd, buf, want, (off_t)at);

			if (got <= 0)
				break;
			readable = 1;
			found = memmem(buf, (size_t)got, needle, n) != NULL;
		}
	}
	free(buf);
	close(fd);
	fclose(maps);
	return found ? 1 : readable ? 0 : -1;
}

/* What mg.sysinfo in c says: the user (into user[len]) and the pid
 * (into *pidp unless NULL). */
/* Calls mg.ping in c; fails unless it answers true. */
static inline void cu_ping(struct mg_context *c)
{
	struct mg_msg *reply;
	bool b = false;

	CHECK_OK(mg_call(c, "mg.ping", &reply, ""));
	CHECK_OK(mg_msg_read(reply, "b", &b));
	CHECK(b);
	mg_msg_free(reply);
}

static inline void cu_sysinfo(struct mg_context *c, char *user, size_t len, int64_t *pidp)
{
	struct mg_msg *reply;
	const char *key, *s;
	size_t pairs, i;
	int64_t iv;
	bool b;

	user[0] = '\0';
	CHECK_OK(mg_call(c, "mg.sysinfo", &reply, ""));
	CHECK_OK(mg_msg_read(reply, "m", &pairs));
	for (i = 0; i < pairs; i++) {
		CHECK_OK(mg_msg_read(reply, "s", &key));
		if (strcmp(key, "pid") == 0 || strcmp(key, "uid") == 0) {
			CHECK_OK(mg_msg_read(reply, "i", &iv));
			if (strcmp(key, "pid") == 0 && pidp != NULL)
				*pidp = iv;
		} else if (strcmp(key, "wsl") == 0) {
			CHECK_OK(mg_msg_read(reply, "b", &b));
		} else {
			CHECK_OK(mg_msg_read(reply, "s", &s));
			if (strcmp(key, "user") == 0)
				snprintf(user, len, "%s", s);
		}
	}
	mg_msg_free(reply);
}

#endif
