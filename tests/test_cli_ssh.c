/*
 * test_cli_ssh.c: the mitogen command-line tool against the loopback sshd
 * of tests/infra (user mgtest), through gateways and with sudo, su and
 * doas, driven as test_cli.c drives it (tests/cli_util.h).  The cases skip
 * unless run as root.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_util.h"
#include "infra/infra.h"

/* ---- ssh and sudo ------------------------------------------------------- */

/* A case on the infra: held from begin to end, with a result buffer and
 * the ssh_config every ssh target is reached with. */
struct infra_case {
	struct mg_test_infra inf;
	struct result *r;
	const char *cfg;
};

static void infra_begin(struct infra_case *c)
{
	c->r = malloc(sizeof(*c->r));
	CHECK(c->r != NULL);
	mg_test_infra_up(&c->inf);
	c->cfg = mg_test_infra_get(&c->inf, "MG_INFRA_SSH_CONFIG");
	CHECK(c->cfg != NULL);
}

static void infra_end(struct infra_case *c)
{
	mg_test_infra_put(&c->inf);
	free(c->r);
}

TEST_T(cli_ssh_unreachable_among_reachable, 240)
{
	struct infra_case c;
	struct result *r;
	char hostfile[64];
	FILE *f;

	infra_begin(&c);
	r = c.r;
	/* Two from -H, two from a hosts file (with a comment and a blank). */
	snprintf(hostfile, sizeof(hostfile), "/tmp/mg-cli-hosts-%d", (int)getpid());
	CHECK((f = fopen(hostfile, "w")) != NULL);
	fputs("# the hosts\n\n127.0.0.3, 127.0.0.99  # .99 has no sshd\n", f);
	CHECK(fclose(f) == 0);
	run_cli(r, NULL,
	        ARGV("run", "-H", "127.0.0.[1-2]", "--hostfile", hostfile, "-l", "mgtest",
	             "--ssh-config", c.cfg, "-t", "60", "id -un"));
	CHECK(unlink(hostfile) == 0);
	CHECK_RUN(r, r->status == 3);
	CHECK_RUN(r, strstr(r->out, "127.0.0.1: mgtest\n") &&
	                     strstr(r->out, "127.0.0.2: mgtest\n") &&
	                     strstr(r->out, "127.0.0.3: mgtest\n"));
	CHECK_RUN(r, strstr(r->err, "mitogen: 127.0.0.99: unreachable: ") &&
	                     strstr(r->err, "refused"));
	CHECK_RUN(r, count_lines_with(r->err, "\n") == 1);
	/* With -S a target not reached counts 255, as ssh exits. */
	run_cli(r, NULL,
	        ARGV("run", "-S", "-H", "127.0.0.[98-99]", "-l", "mgtest", "--ssh-config", c.cfg,
	             "-t", "60", "true"));
	CHECK_RUN(r, r->status == 255);
	infra_end(&c);
}

TEST_T(cli_ssh_gather_groups_by_output, 240)
{
	struct infra_case c;
	struct result *r;

	infra_begin(&c);
	r = c.r;
	/* sshd reports the address it was reached on: .1-.2 say low, .3-.4 high. */
	run_cli(r, NULL,
	        ARGV("run", "-b", "-H", "mgtest@127.0.0.[1-4]", "--ssh-config", c.cfg, "-t", "60",
	             "set -- $SSH_CONNECTION; case $3 in *.[12]) echo low;; *) echo high;; esac"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r, strstr(r->out, "---------------\nmgtest@127.0.0.[1-2] (2)\n---------------\n"
	                            "low\n") &&
	                     strstr(r->out, "---------------\nmgtest@127.0.0.[3-4] (2)\n"
	                                    "---------------\nhigh\n"));
	{
		/* --stdin through ssh: the same 200 KB for every target. */
		char path[] = "/tmp/mg-cli-stdin-XXXXXX";
		struct spawn sp = {.stdin_path = path};
		int fd = mkstemp(path);

		CHECK(fd >= 0 && ftruncate(fd, 204800) == 0 && close(fd) == 0);
		run_cli(r, &sp,
		        ARGV("run", "-b", "-H", "mgtest@127.0.0.[1-4]", "--ssh-config", c.cfg, "-t",
		             "60", "--stdin", "--", "wc -c"));
		CHECK(unlink(path) == 0);
		CHECK_RUN(r, r->status == 0 && strstr(r->out, "mgtest@127.0.0.[1-4] (4)\n"
		                                              "---------------\n204800\n"));
	}
	infra_end(&c);
}

/* The inode of the one program kept in dir, 0 unless there is exactly
 * one. */
static ino_t kept_inode(const char *dir)
{
	char path[1300];
	struct dirent *e;
	struct stat st;
	ino_t ino = 0;
	int n = 0;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		n++;
		ino = stat(path, &st) == 0 ? st.st_ino : 0;
	}
	closedir(d);
	return n == 1 ? ino : 0;
}

/* --cache: the first run leaves the agent in the user's ~/.cache, the
 * next one boots from it; without it nothing stays. */
TEST_T(cli_ssh_cache, 240)
{
	struct infra_case c;
	struct result *r;
	struct passwd *pw;
	char dir[1024], cmd[2200];
	struct stat st;
	ino_t ino;

	infra_begin(&c);
	r = c.r;
	CHECK((pw = getpwnam("mgtest")) != NULL);
	snprintf(dir, sizeof(dir), "%s/.cache/mitogen-c", pw->pw_dir);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'; rmdir '%s/.cache' 2>/dev/null; true", dir,
	         pw->pw_dir);
	CHECK_EQ(system(cmd), 0);
	run_cli(r, NULL, ARGV("run", "-H", "mgtest@127.0.0.5", "--ssh-config", c.cfg, "echo one"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "127.0.0.5: one\n"));
	CHECK(stat(dir, &st) != 0); /* not asked for: nothing kept */
	run_cli(r, NULL,
	        ARGV("run", "--cache", "-H", "mgtest@127.0.0.5,mgtest@127.0.0.6", "--ssh-config",
	             c.cfg, "echo two"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "127.0.0.5: two\n") &&
	                     strstr(r->out, "127.0.0.6: two\n"));
	CHECK_EQ(stat(dir, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0700);
	CHECK_EQ(st.st_uid, pw->pw_uid);
	CHECK((ino = kept_inode(dir)) != 0);
	/* The next run boots from the kept program: the file is not written
	 * again (a miss would replace it with a new one). */
	run_cli(r, NULL,
	        ARGV("run", "--cache", "-H", "mgtest@127.0.0.5", "--ssh-config", c.cfg,
	             "echo three"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "127.0.0.5: three\n"));
	CHECK_EQ(kept_inode(dir), ino);
	CHECK_EQ(system(cmd), 0);
	infra_end(&c);
}

TEST_T(cli_ssh_interrupt, 240)
{
	struct infra_case c;
	struct result *r;
	struct spawn sp = {.interrupt_marker = ": started\n", .interrupt_after = 2};
	char sleep_cmd[64], cmd[128];

	infra_begin(&c);
	r = c.r;
	snprintf(sleep_cmd, sizeof(sleep_cmd), "sleep 5%d.5", (int)getpid() % 1000);
	snprintf(cmd, sizeof(cmd), "echo started; %s; echo finished", sleep_cmd);
	run_cli(r, &sp,
	        ARGV("run", "-H", "mgtest@127.0.0.[5-6]", "--ssh-config", c.cfg, "-t", "60", cmd));
	CHECK_RUN(r, r->status == 130);
	CHECK_RUN(r, strstr(r->err, "did not finish: mgtest@127.0.0.[5-6]"));
	CHECK(process_gone(sleep_cmd, 5000));
	CHECK_EQ(cu_wait_no_children(3000), 0);
	infra_end(&c);
}

TEST_T(cli_sudo_password, 240)
{
	struct infra_case c;
	struct result *r;
	static char good[256];
	struct spawn sp = {.user = "mgtest",
	                   .env = (const char *const[]){"MITOGEN_SUDO_PASSWORD=wrong-pw", NULL}};

	infra_begin(&c);
	r = c.r;
	/* mgtest may sudo to mgtest2 with its own password. */
	run_cli(r, &sp, ARGV("run", "--sudo=mgtest2", "id -un"));
	CHECK_RUN(r, r->status == 3);
	CHECK_RUN(r, strstr(r->err, "mitogen: local: sudo: ") && strstr(r->err, "password"));
	CHECK_RUN(r, !strstr(r->err, "wrong-pw") && r->outlen == 0);

	snprintf(good, sizeof(good), "MITOGEN_SUDO_PASSWORD=%s",
	         mg_test_infra_get(&c.inf, "MG_INFRA_PASSWORD"));
	sp.env = (const char *const[]){good, NULL};
	run_cli(r, &sp, ARGV("run", "--local", "2", "--sudo=mgtest2", "id -un"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r, strstr(r->out, "local1: mgtest2\n") && strstr(r->out, "local2: mgtest2\n"));

	/* --ask-sudo-pass reads it from the terminal, without echo. */
	sp.env = NULL;
	sp.tty_answer = mg_test_infra_get(&c.inf, "MG_INFRA_PASSWORD");
	run_cli(r, &sp, ARGV("run", "--ask-sudo-pass", "--sudo=mgtest2", "id -un"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "local: mgtest2\n"));
	CHECK(strstr(r->tty, "sudo password: ") != NULL);
	CHECK(strstr(r->tty, sp.tty_answer) == NULL);
	/* Without a terminal it is a usage error. */
	sp.tty_answer = NULL;
	run_cli(r, &sp, ARGV("run", "--ask-sudo-pass", "--sudo=mgtest2", "id -un"));
	CHECK_RUN(r, r->status == 2 && strstr(r->err, "--ask-sudo-pass needs a terminal"));
	infra_end(&c);
}

TEST_T(cli_via_gateway, 240)
{
	struct infra_case c;
	struct result *r;
	static char pw[256];
	struct spawn sp = {0};

	infra_begin(&c);
	r = c.r;
	/* Local contexts started by the gateway run as its user. */
	run_cli(r, NULL,
	        ARGV("run", "--local", "2", "--via", "mgtest@127.0.0.7", "--ssh-config", c.cfg,
	             "-t", "60", "id -un"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r, strstr(r->out, "local1: mgtest\n") && strstr(r->out, "local2: mgtest\n"));
	/* A gateway that cannot be reached: said once, status 3. */
	run_cli(r, NULL,
	        ARGV("run", "--local", "2", "--via", "mgtest@127.0.0.99", "--ssh-config", c.cfg,
	             "true"));
	CHECK_RUN(r, r->status == 3 && strstr(r->err, "mitogen: gateway mgtest@127.0.0.99: "));
	/* ssh through the gateway, then sudo on the target: ssh, ssh, sudo. */
	snprintf(pw, sizeof(pw), "MITOGEN_BECOME_PASSWORD=%s",
	         mg_test_infra_get(&c.inf, "MG_INFRA_PASSWORD"));
	sp.env = (const char *const[]){pw, NULL};
	run_cli(r, &sp,
	        ARGV("run", "-H", "mgtest@127.0.0.[8-9]", "--via", "mgtest@127.0.0.7",
	             "--ssh-config", c.cfg, "-t", "60", "--sudo=mgtest2", "id -un"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r, strstr(r->out, "mgtest@127.0.0.8: mgtest2\n") &&
	                     strstr(r->out, "mgtest@127.0.0.9: mgtest2\n"));
	infra_end(&c);
}

TEST_T(cli_su_and_doas, 240)
{
	struct infra_case c;
	struct result *r;
	static char good[256];
	struct spawn sp = {.user = "mgtest",
	                   .env = (const char *const[]){"MITOGEN_BECOME_PASSWORD=wrong-pw", NULL}};

	infra_begin(&c);
	r = c.r;
	/* su wants the target user's password: a wrong one is a clear
	 * failure that does not show it. */
	run_cli(r, &sp, ARGV("run", "--su=mgtest2", "id -un"));
	CHECK_RUN(r, r->status == 3);
	CHECK_RUN(r, strstr(r->err, "mitogen: local: su: ") != NULL);
	CHECK_RUN(r, !strstr(r->err, "wrong-pw") && r->outlen == 0);
	snprintf(good, sizeof(good), "MITOGEN_BECOME_PASSWORD=%s",
	         mg_test_infra_get(&c.inf, "MG_INFRA_PASSWORD2"));
	sp.env = (const char *const[]){good, NULL};
	run_cli(r, &sp, ARGV("run", "--local", "2", "--su=mgtest2", "id -un"));
	CHECK_RUN(r, r->status == 0);
	CHECK_RUN(r, strstr(r->out, "local1: mgtest2\n") && strstr(r->out, "local2: mgtest2\n"));
	/* doas to mgtest3 is a nopass rule. */
	sp.env = NULL;
	run_cli(r, &sp, ARGV("run", "--doas=mgtest3", "id -un"));
	CHECK_RUN(r, r->status == 0 && strstr(r->out, "local: mgtest3\n"));
	/* Two ways to become at once is a usage error. */
	run_cli(r, &sp, ARGV("run", "--su", "--doas=mgtest3", "true"));
	CHECK_RUN(r, r->status == 2 && strstr(r->err, "--su and --doas do not go together"));
	infra_end(&c);
}
