/*
 * test_infra.c: the real ssh/sudo/su/doas test infrastructure
 * (tests/infra/env.sh) comes up, passes its smoke check (check.sh), is
 * idempotent both ways, and leaves nothing behind when it goes down: no
 * sshd, no process of its users, no users, no rules, no files.  It does not
 * take over what it did not make, and a down waits for a case using it.
 * Needs root.  Each case holds the infra lock exclusively and runs up and
 * down inside itself; an infra that was up before the case is up again
 * after it (its port may differ).
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "infra/infra.h"

#define SUDOERS "/etc/sudoers.d/mitogen-test"
#define DOAS "/etc/doas.conf"
#define STATE "/var/lib/mitogen-test"
#define MARK "# Made by mitogen-c tests/infra/env.sh"

static const char *const users[] = {"mgtest", "mgtest2", "mgtest3"};

/* Starts a case: skips unless root; takes the infra lock exclusively for
 * the whole case (waiting for cases, of any checkout, that use the infra)
 * and tells env.sh that we hold it; takes a running infra down, so the case
 * starts from nothing.  Returns the lock's fd; *was_upp says whether the
 * infra was up. */
static int begin(int *was_upp)
{
	struct mg_test_infra inf;
	int fd;

	if (geteuid() != 0)
		mg_test_skip("needs root: the test infra adds users, sudo/doas rules and an sshd");
	CHECK((fd = open(MG_TEST_INFRA_LOCK, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) >= 0);
	CHECK_EQ(flock(fd, LOCK_EX), 0);
	CHECK_EQ(setenv("MG_INFRA_LOCK_HELD", "1", 1), 0);
	*was_upp = mg_test_infra_load(&inf) == 0;
	if (*was_upp)
		mg_test_infra_down();
	return fd;
}

/* Ends a case: releases the lock, and brings the infra back up if it was
 * up before, for the suites that run after this one. */
static void end(int fd, int was_up)
{
	close(fd);
	CHECK_EQ(unsetenv("MG_INFRA_LOCK_HELD"), 0);
	if (was_up)
		CHECK_EQ(mg_test_infra_run("env.sh", "up"), 0);
}

/* Reads a whole small file into buf (NUL-terminated); returns its length
 * or -1. */
static ssize_t slurp(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, got = 0;

	if (fd < 0)
		return -1;
	while ((size_t)got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += n;
	close(fd);
	buf[got] = '\0';
	return got;
}

/* Counts processes that are one of our sshd listeners (by the config path
 * in their command line) or that run as one of the given uids. */
static int count_leftovers(const uid_t *uids, int nuids)
{
	char path[300], cmd[1024], pat[256];
	struct dirent *e;
	struct stat st;
	DIR *d = opendir("/proc");
	int n = 0, i;
	ssize_t len, k;

	CHECK(d != NULL);
	snprintf(pat, sizeof(pat), "/usr/sbin/sshd -f %s/sshd_config.", mg_test_infra_dir());
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s", e->d_name);
		if (stat(path, &st) != 0)
			continue;
		for (i = 0; i < nuids; i++)
			if (st.st_uid == uids[i]) {
				fprintf(stderr, "    left running as uid %u: pid %s\n",
				        (unsigned)st.st_uid, e->d_name);
				n++;
			}
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		if ((len = slurp(path, cmd, sizeof(cmd))) <= 0)
			continue;
		for (k = 0; k < len; k++)
			if (cmd[k] == '\0')
				cmd[k] = ' ';
		if (strstr(cmd, pat) != NULL) {
			fprintf(stderr, "    left running: pid %s: %s\n", e->d_name, cmd);
			n++;
		}
	}
	closedir(d);
	return n;
}

/* True when something accepts TCP connections on addr:port. */
static int listening(const char *addr, int port)
{
	struct sockaddr_in sa;
	int fd, r;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	CHECK_EQ(inet_pton(AF_INET, addr, &sa.sin_addr), 1);
	CHECK((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) >= 0);
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return r == 0;
}

static int exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* What up made, read back so the checks after down know what to look for. */
struct made {
	int port;
	uid_t uids[3];
};

static void bring_up(struct made *m)
{
	struct mg_test_infra inf;
	struct passwd *pw;
	size_t i;

	CHECK_EQ(mg_test_infra_run("env.sh", "up"), 0);
	CHECK_EQ(mg_test_infra_load(&inf), 0);
	CHECK_INT(inf.naddrs, >=, 50);
	m->port = inf.port;
	for (i = 0; i < 3; i++) {
		CHECK((pw = getpwnam(users[i])) != NULL);
		m->uids[i] = pw->pw_uid;
	}
	CHECK(listening("127.0.0.1", m->port));
	CHECK(listening("127.0.0.37", m->port));
	CHECK(exists(SUDOERS));
	CHECK(exists(DOAS));
}

/* Nothing up made is left: processes, port, users, homes, rules, files. */
static void check_gone(const struct made *m, int doas_before)
{
	char home[64];
	size_t i;

	CHECK_EQ(count_leftovers(m->uids, 3), 0);
	CHECK(!listening("127.0.0.1", m->port));
	CHECK(!listening("127.0.0.37", m->port));
	for (i = 0; i < 3; i++) {
		snprintf(home, sizeof(home), "/home/%s", users[i]);
		CHECK(getpwnam(users[i]) == NULL);
		CHECK(!exists(home));
	}
	CHECK(!exists(SUDOERS));
	CHECK_EQ(exists(DOAS), doas_before);
	CHECK(!exists(mg_test_infra_dir()));
	CHECK(!exists(STATE));
}

/* Reads the pids of our sshd instances from their pid files. */
static void sshd_pids(char *buf, size_t len)
{
	char path[512], one[32];
	int i;

	buf[0] = '\0';
	for (i = 0;; i++) {
		snprintf(path, sizeof(path), "%s/sshd.%d.pid", mg_test_infra_dir(), i);
		if (slurp(path, one, sizeof(one)) <= 0)
			break;
		strncat(buf, one, len - strlen(buf) - 1);
	}
}

TEST_T(infra_up_check_down_twice, 900)
{
	char pids1[256], pids2[256];
	struct made m, m2;
	int was_up, fd = begin(&was_up), doas_before = exists(DOAS);

	bring_up(&m);

	/* A second up keeps the running sshd, its pids and its port. */
	sshd_pids(pids1, sizeof(pids1));
	CHECK(pids1[0] != '\0');
	bring_up(&m2);
	sshd_pids(pids2, sizeof(pids2));
	CHECK_EQ(m2.port, m.port);
	CHECK_STR(pids2, pids1);
	CHECK_EQ(mg_test_infra_run("env.sh", "status"), 0);

	CHECK_EQ(mg_test_infra_run("check.sh", NULL), 0);

	mg_test_infra_down();
	check_gone(&m, doas_before);
	CHECK_INT(mg_test_infra_run("env.sh", "status"), !=, 0);
	/* down again is a no-op. */
	mg_test_infra_down();
	check_gone(&m, doas_before);

	/* And the whole cycle once more. */
	bring_up(&m2);
	CHECK_EQ(mg_test_infra_run("check.sh", NULL), 0);
	mg_test_infra_down();
	check_gone(&m2, doas_before);
	end(fd, was_up);
}

TEST_T(infra_restores_foreign_doas_conf, 300)
{
	static const char foreign[] = "# someone else's rules\npermit nopass root as root\n";
	char got[4096];
	struct stat st;
	struct made m;
	int fd, was_up, lock = begin(&was_up);

	if (exists(DOAS)) {
		end(lock, was_up);
		mg_test_skip("%s exists; not replacing a real one to test this", DOAS);
	}
	CHECK((fd = open(DOAS, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400)) >= 0);
	CHECK_EQ(write(fd, foreign, sizeof(foreign) - 1), (ssize_t)sizeof(foreign) - 1);
	close(fd);

	bring_up(&m);
	/* While up: our rules after the foreign ones (doas takes the last
	 * match). */
	CHECK(slurp(DOAS, got, sizeof(got)) > 0);
	CHECK(strstr(got, MARK) != NULL);
	CHECK(strstr(got, foreign) != NULL);
	CHECK(strstr(got, "permit mgtest as mgtest2") > strstr(got, foreign));
	CHECK_EQ(stat(DOAS, &st), 0);
	CHECK_UINT(st.st_mode & 07777, ==, 0400);
	/* Idempotent: a second up does not back up our own file. */
	bring_up(&m);

	mg_test_infra_down();
	check_gone(&m, 1);
	CHECK(slurp(DOAS, got, sizeof(got)) > 0);
	CHECK_STR(got, foreign);
	CHECK_EQ(stat(DOAS, &st), 0);
	CHECK_UINT(st.st_mode & 07777, ==, 0400);
	CHECK_EQ(unlink(DOAS), 0);
	end(lock, was_up);
}

TEST_T(infra_refuses_a_foreign_user, 300)
{
	struct passwd *pw;
	int was_up, fd = begin(&was_up);

	if (getpwnam("mgtest2") != NULL) {
		end(fd, was_up);
		mg_test_skip("a user mgtest2 exists already");
	}
	CHECK_EQ(system("useradd -M -c 'not the infra' mgtest2"), 0);

	/* up refuses before changing anything, and undoes nothing of theirs. */
	CHECK_INT(mg_test_infra_run("env.sh", "up"), !=, 0);
	CHECK((pw = getpwnam("mgtest2")) != NULL);
	CHECK_STR(pw->pw_gecos, "not the infra");
	CHECK(getpwnam("mgtest") == NULL);
	CHECK(!exists(SUDOERS));
	CHECK(!exists(mg_test_infra_dir()));
	CHECK_EQ(count_leftovers(NULL, 0), 0);
	/* Nor does down touch it. */
	mg_test_infra_down();
	CHECK(getpwnam("mgtest2") != NULL);
	CHECK_EQ(system("userdel mgtest2"), 0);
	end(fd, was_up);
}

TEST_T(infra_down_waits_for_a_case_using_it, 300)
{
	struct mg_test_infra inf;
	char path[1024];
	int was_up, fd = begin(&was_up), status;
	struct made m;
	pid_t pid;

	bring_up(&m);
	close(fd);
	CHECK_EQ(unsetenv("MG_INFRA_LOCK_HELD"), 0);

	/* A case of some suite holds the infra; a down started meanwhile
	 * waits for it. */
	mg_test_infra_up(&inf);
	CHECK_EQ(inf.port, m.port);
	mg_test_infra_path("env.sh", path, sizeof(path));
	CHECK((pid = fork()) >= 0);
	if (pid == 0) {
		execl("/bin/bash", "bash", path, "down", (char *)NULL);
		_exit(127);
	}
	sleep(2);
	CHECK_EQ(waitpid(pid, &status, WNOHANG), 0);
	CHECK(listening("127.0.0.1", m.port));
	CHECK_EQ(mg_test_infra_run("env.sh", "status"), 0);

	mg_test_infra_put(&inf);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	check_gone(&m, exists(DOAS));
	if (was_up)
		CHECK_EQ(mg_test_infra_run("env.sh", "up"), 0);
}
