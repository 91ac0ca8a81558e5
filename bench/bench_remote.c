/*
 * bench_remote.c: what reaching other hosts and users costs, against the
 * loopback sshd, sudo rules and users of tests/infra (run `sudo
 * tests/infra/env.sh up` first; needs root), beside Python Mitogen doing the
 * same in the same run and beside the operating system's floor (DESIGN.md
 * section 8):
 *
 *   ssh start        mg_ssh() to mgtest@127.0.0.1 until ready vs
 *                    router.ssh(); floor: `ssh host true`
 *   ssh start, cached  the same with opts.cache (the program is already in
 *                    the target's ~/.cache/mitogen-c)
 *   call round trip  mg_call("mg.ping") over that ssh context, one at a
 *                    time, vs context.call(ping)
 *   sudo via ssh     mg_sudo() through the ssh context to mgtest3 (NOPASSWD)
 *                    vs router.sudo(via=...); floor: `sudo -n -u mgtest3 true`
 *                    run as mgtest
 *   call floor       one byte ping-ponged through `ssh host cat`
 *   sudo start       mg_sudo() from the master (root) to mgtest2 vs
 *                    router.sudo(); floor: `sudo -n -u mgtest2 true` as
 *                    root; and the same with opts.cache
 *   bytes per boot   what the master wrote to the first stage until the
 *                    handshake went (the connector's debug log), first time
 *                    and cached, plus the remote command line
 *
 * The Mitogen half is bench/mitogen_remote_ref.py (run after ours, with our
 * router gone).  Medians are reported; a figure is never asserted.  Each
 * start is timed right after one run of its floor, and the median of those
 * pairs' differences is printed too ("paired_diff" in the JSON): this
 * machine's floor drifts by tens of ms within a minute, which the two
 * medians alone carry into the gap.  The
 * infra lock is held shared for the run, so an `env.sh down` elsewhere waits.
 * Output: a table, then one JSON document (also to -j FILE).  -t prints
 * every log record (MITOGEN_LOG=debug for the io logger too) with the ms
 * since its connect began: where a start's time goes.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "connect/connect.h"
#include "mitogen.h"

extern char **environ;

static int starts = 10, calls = 5000, warmup = 500;
static const char *json_path, *only;
static bool no_ref;

/* ---- the infra's settings ---------------------------------------------- */

static char user[64], user2[64], user3[64], ssh_config[512];

static void infra_load(void)
{
	if (bench_infra_get(NULL, "MG_INFRA_USER", user, sizeof(user)) == NULL ||
	    bench_infra_get(NULL, "MG_INFRA_SSH_CONFIG", ssh_config, sizeof(ssh_config)) == NULL) {
		fprintf(stderr, "bench_remote: no infra.env with the users and ssh config "
		                "(run `tests/infra/env.sh up` as root)\n");
		exit(2);
	}
	if (bench_infra_get(NULL, "MG_INFRA_USER2", user2, sizeof(user2)) == NULL)
		snprintf(user2, sizeof(user2), "mgtest2");
	if (bench_infra_get(NULL, "MG_INFRA_USER3", user3, sizeof(user3)) == NULL)
		snprintf(user3, sizeof(user3), "mgtest3");
}

/* ---- samples ------------------------------------------------------------ */

struct fig {
	bool ok;
	double median, min, max;
	int n;
	char why[300];
};

static double clock_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int by_value(const void *a, const void *b)
{
	double d = *(const double *)a - *(const double *)b;

	return (d > 0) - (d < 0);
}

static void fig_set(struct fig *f, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), by_value);
	f->ok = n > 0;
	f->n = n;
	if (n > 0) {
		f->min = v[0];
		f->max = v[n - 1];
		f->median = n & 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	}
}

static void fig_fail(struct fig *f, int rc, const char *what)
{
	f->ok = false;
	snprintf(f->why, sizeof(f->why), "%s: %s: %s", what, mg_strerror(rc), mg_errdetail());
	fprintf(stderr, "bench_remote: %s\n", f->why);
}

/* ---- floors: commands run and waited for -------------------------------- */

/* Wall time in ms of one run of argv, stdin and stdout on /dev/null, or
 * -1 when it fails. */
static double floor_once(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	double t0 = clock_now();
	int status, rc;
	pid_t pid;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return -1;
	return (clock_now() - t0) * 1e3;
}

/* The floor argv, `starts` times after one untimed run. */
static bool floor_cmd(char *const argv[], struct fig *f)
{
	double v[256];
	int i, n = starts < 256 ? starts : 256;

	for (i = -1; i < n; i++) {
		double ms = floor_once(argv);

		if (ms < 0) {
			snprintf(f->why, sizeof(f->why), "%s ... failed", argv[0]);
			return false;
		}
		if (i >= 0)
			v[i] = ms;
	}
	fig_set(f, v, n);
	return true;
}

/* Round trips of one byte through `ssh host cat`, in us: what any
 * protocol pays for the two ssh processes in the path. */
static bool floor_ssh_echo(char *const ssh_cat[], struct fig *f)
{
	int in[2], out[2], i, n = calls, status;
	double *v = malloc(sizeof(double) * (size_t)n);
	char c = 'x';
	pid_t pid;
	bool ok = false;

	if (v == NULL || pipe2(in, O_CLOEXEC) != 0) {
		free(v);
		return false;
	}
	if (pipe2(out, O_CLOEXEC) != 0) {
		close(in[0]);
		close(in[1]);
		free(v);
		return false;
	}
	if ((pid = fork()) == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		execvp(ssh_cat[0], ssh_cat);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	for (i = -warmup; pid > 0 && i < n; i++) {
		double t0 = clock_now();

		if (write(in[1], &c, 1) != 1 || read(out[0], &c, 1) != 1)
			break;
		if (i >= 0)
			v[i] = (clock_now() - t0) * 1e6;
	}
	if (i == n) {
		fig_set(f, v, n);
		ok = true;
	} else {
		snprintf(f->why, sizeof(f->why), "ssh ... cat failed");
	}
	close(in[1]);
	close(out[0]);
	if (pid > 0)
		waitpid(pid, &status, 0);
	free(v);
	return ok;
}

/* ---- ours ---------------------------------------------------------------- */

static _Atomic long boot_bytes;
static bool trace; /* -t: every record, with ms since the connect began */
static _Atomic int64_t trace_t0;

static void log_cb(void *arg, const struct mg_log_record *rec)
{
	const char *p = strstr(rec->message, "the bootstrap sent ");

	if (trace)
		fprintf(stderr, "%9.3f ms [%s] %s\n",
		        (double)(rec->time_ns - atomic_load(&trace_t0)) / 1e6, rec->context,
		        rec->message);
	if (p != NULL)
		boot_bytes = atol(p + strlen("the bootstrap sent "));
	else if (rec->level >= MG_LOG_WARNING && !trace)
		fprintf(stderr, "bench_remote: [%s] %s\n", rec->context, rec->message);
}

static const char *ssh_args[3];

static void ssh_opts(struct mg_connect_opts *o, bool cache)
{
	mg_connect_opts_init(o, MG_METHOD_SSH);
	o->hostname = "127.0.0.1";
	o->username = user;
	ssh_args[0] = "-F";
	ssh_args[1] = ssh_config;
	o->ssh_args = ssh_args;
	o->cache = cache;
}

/* Times `starts` connects with o; each context is shut down untimed.
 * With floor_argv, a run of it goes before each connect (into ff): on a
 * shared machine the load drifts, and interleaving keeps the two
 * comparable. */
static int time_connects(struct mg_router *r, const struct mg_connect_opts *o, struct fig *f,
                         long *bytesp, char *const *floor_argv, struct fig *ff, struct fig *pf)
{
	double v[256], fv[256];
	int i, rc, n = starts < 256 ? starts : 256;

	for (i = 0; i < n; i++) {
		struct mg_context *c;
		double t0;
		struct timespec rt;

		if (floor_argv != NULL && (fv[i] = floor_once(floor_argv)) < 0) {
			snprintf(ff->why, sizeof(ff->why), "%s ... failed", floor_argv[0]);
			floor_argv = NULL;
		}
		t0 = clock_now();
		clock_gettime(CLOCK_REALTIME, &rt);
		atomic_store(&trace_t0, (int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec);
		boot_bytes = 0;
		if ((rc = mg_connect(r, o, &c)) != 0) {
			fig_fail(f, rc, "connect");
			return rc;
		}
		v[i] = (clock_now() - t0) * 1e3;
		if (bytesp != NULL)
			*bytesp = boot_bytes;
		mg_context_shutdown(c, 5000);
		mg_context_free(c);
	}
	if (floor_argv != NULL && pf != NULL) {
		double d[256];

		for (i = 0; i < n; i++)
			d[i] = v[i] - fv[i];
		fig_set(pf, d, n);
	}
	fig_set(f, v, n);
	if (floor_argv != NULL)
		fig_set(ff, fv, n);
	return 0;
}

static int time_calls(struct mg_context *c, struct fig *f)
{
	double *v = malloc(sizeof(double) * (size_t)calls);
	struct mg_msg *m;
	int i, rc = 0;

	if (v == NULL)
		return -ENOMEM;
	for (i = -warmup; i < calls; i++) {
		double t0 = clock_now();

		if ((rc = mg_call(c, "mg.ping", &m, "")) != 0) {
			fig_fail(f, rc, "mg.ping");
			break;
		}
		mg_msg_free(m);
		if (i >= 0)
			v[i] = (clock_now() - t0) * 1e6;
	}
	if (rc == 0)
		fig_set(f, v, calls);
	free(v);
	return rc;
}

enum {
	SSH_START,
	SSH_CACHED,
	RTT_SSH,
	SUDO_VIA_SSH,
	SUDO_START,
	SUDO_CACHED,
	BYTES_FIRST,
	BYTES_CACHED,
	NROWS
};

struct row {
	const char *key, *what, *unit;
	double target; /* NAN: none; relative to the floor when rel */
	bool rel;
	struct fig ours, ref, floor;
	struct fig paired; /* ours minus the floor taken just before it */
};

static struct row rows[NROWS] = {
        [SSH_START] = {"ssh_start_ms", "start an ssh context", "ms", 10, true},
        [SSH_CACHED] = {"ssh_start_cached_ms", "start an ssh context, cached", "ms", 10, true},
        [RTT_SSH] = {"rtt_ssh_us", "call round trip over ssh", "us", 30, false},
        [SUDO_VIA_SSH] = {"sudo_via_ssh_ms", "sudo through an ssh context", "ms", 5, true},
        [SUDO_START] = {"sudo_start_ms", "sudo from the master (root)", "ms", 5, true},
        [SUDO_CACHED] = {"sudo_start_cached_ms", "sudo from the master, cached", "ms", 5, true},
        [BYTES_FIRST] = {"boot_bytes_first", "bytes sent to boot, first", "B", 65536, false},
        [BYTES_CACHED] = {"boot_bytes_cached", "bytes sent to boot, cached", "B", 1024, false},
};

static bool wanted(int i)
{
	return only == NULL || strstr(only, rows[i].key) != NULL;
}

/* One untimed connect: it fills the target's cache. */
static int warm(struct mg_router *r, const struct mg_connect_opts *o, struct fig *f)
{
	struct mg_context *c;
	int rc = mg_connect(r, o, &c);

	if (rc != 0) {
		fig_fail(f, rc, "connect");
		return rc;
	}
	mg_context_shutdown(c, 5000);
	mg_context_free(c);
	return 0;
}

static void byte_fig(struct fig *f, long n)
{
	double v = (double)n;

	if (n > 0)
		fig_set(f, &v, 1);
}

/* Removes the cache this run made in who's home, and ~/.cache when that
 * is empty then. */
static void cache_clear(const char *who)
{
	struct passwd *pw = getpwnam(who);
	char *argv[] = {
	        "sh", "-c", "rm -rf \"$1/.cache/mitogen-c\"; rmdir \"$1/.cache\" 2>/dev/null",
	        "sh", NULL, NULL};
	pid_t pid;

	if (pw == NULL)
		return;
	argv[4] = pw->pw_dir;
	if (posix_spawnp(&pid, "sh", NULL, NULL, argv, environ) == 0)
		waitpid(pid, NULL, 0);
}

/* A floor that had no connect to go beside (ours failed) runs alone. */
static void floor_alone(struct row *w, char *const *argv)
{
	if (!w->floor.ok && !floor_cmd(argv, &w->floor))
		fprintf(stderr, "bench_remote: floor: %s\n", w->floor.why);
}

static char ssh_dst[128];
static char *ssh_true[] = {"ssh", "-F", ssh_config, "-o", "BatchMode=yes", ssh_dst, "true", NULL};
static char *sudo_as_user[] = {"setpriv",     "--reuid", user,   "--regid", user, "--init-groups",
                               "--reset-env", "--",      "sudo", "-n",      "-u", user3,
                               "true",        NULL};
static char *sudo_root[] = {"sudo", "-n", "-u", user2, "true", NULL};
static char *ssh_cat[] = {"ssh", "-F", ssh_config, "-o", "BatchMode=yes", ssh_dst, "cat", NULL};

static void run_ours(void)
{
	struct mg_connect_opts o, so;
	struct mg_context *ssh = NULL;
	struct mg_router *r;
	long first = 0, cached = 0;
	int rc;

	snprintf(ssh_dst, sizeof(ssh_dst), "%s@127.0.0.1", user);
	mg_log_set_handler(log_cb, NULL, MG_LOG_DEBUG);
	if ((rc = mg_router_new(NULL, &r)) != 0) {
		fprintf(stderr, "bench_remote: router: %s\n", mg_strerror(rc));
		exit(1);
	}
	ssh_opts(&o, false);
	if (wanted(SSH_START) || wanted(BYTES_FIRST))
		time_connects(r, &o, &rows[SSH_START].ours, &first, ssh_true,
		              &rows[SSH_START].floor, &rows[SSH_START].paired);
	byte_fig(&rows[BYTES_FIRST].ours, first);
	if (wanted(SSH_CACHED) || wanted(BYTES_CACHED)) {
		cache_clear(user);
		ssh_opts(&o, true);
		if (warm(r, &o, &rows[SSH_CACHED].ours) == 0 &&
		    time_connects(r, &o, &rows[SSH_CACHED].ours, &cached, ssh_true,
		                  &rows[SSH_CACHED].floor, &rows[SSH_CACHED].paired) == 0)
			byte_fig(&rows[BYTES_CACHED].ours, cached);
		cache_clear(user);
		ssh_opts(&o, false);
	}
	if ((wanted(RTT_SSH) || wanted(SUDO_VIA_SSH)) && (rc = mg_connect(r, &o, &ssh)) != 0) {
		fig_fail(&rows[RTT_SSH].ours, rc, "ssh connect");
		fig_fail(&rows[SUDO_VIA_SSH].ours, rc, "ssh connect");
	}
	if (ssh != NULL && wanted(RTT_SSH)) {
		time_calls(ssh, &rows[RTT_SSH].ours);
		if (!floor_ssh_echo(ssh_cat, &rows[RTT_SSH].floor))
			fprintf(stderr, "bench_remote: floor: %s\n", rows[RTT_SSH].floor.why);
	}
	if (ssh != NULL && wanted(SUDO_VIA_SSH)) {
		mg_connect_opts_init(&so, MG_METHOD_SUDO);
		so.via = ssh;
		so.username = user3;
		time_connects(r, &so, &rows[SUDO_VIA_SSH].ours, NULL, sudo_as_user,
		              &rows[SUDO_VIA_SSH].floor, &rows[SUDO_VIA_SSH].paired);
	}
	if (ssh != NULL) {
		mg_context_shutdown(ssh, 5000);
		mg_context_free(ssh);
	}
	if (wanted(SUDO_START)) {
		mg_connect_opts_init(&so, MG_METHOD_SUDO);
		so.username = user2;
		time_connects(r, &so, &rows[SUDO_START].ours, NULL, sudo_root,
		              &rows[SUDO_START].floor, &rows[SUDO_START].paired);
	}
	if (wanted(SUDO_CACHED)) {
		cache_clear(user2);
		mg_connect_opts_init(&so, MG_METHOD_SUDO);
		so.username = user2;
		so.cache = true;
		if (warm(r, &so, &rows[SUDO_CACHED].ours) == 0)
			time_connects(r, &so, &rows[SUDO_CACHED].ours, NULL, sudo_root,
			              &rows[SUDO_CACHED].floor, &rows[SUDO_CACHED].paired);
		cache_clear(user2);
	}
	mg_router_free(r);
	mg_log_set_handler(NULL, NULL, MG_LOG_WARNING);
	if (wanted(SSH_START))
		floor_alone(&rows[SSH_START], ssh_true);
	if (wanted(SUDO_VIA_SSH))
		floor_alone(&rows[SUDO_VIA_SSH], sudo_as_user);
	if (wanted(SUDO_START))
		floor_alone(&rows[SUDO_START], sudo_root);
	if (wanted(SUDO_CACHED))
		floor_alone(&rows[SUDO_CACHED], sudo_root);
}

/* ---- Mitogen ------------------------------------------------------------ */

/* The median of key in the reference's JSON, when there. */
static void ref_pick(const char *json, struct fig *f, const char *key)
{
	char pat[96];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\": {\"median\": ", key);
	if ((p = strstr(json, pat)) == NULL) {
		snprintf(pat, sizeof(pat), "\"%s\": \"", key);
		if ((p = strstr(json, pat)) != NULL)
			snprintf(f->why, sizeof(f->why), "%.200s", p + strlen(pat));
		return;
	}
	f->median = strtod(p + strlen(pat), NULL);
	f->ok = true;
}

static void run_ref(void)
{
	char cmd[8192], *json = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *p;

	snprintf(cmd, sizeof(cmd),
	         "/usr/bin/python3 '%s/mitogen_remote_ref.py' --user '%s' --user2 '%s' "
	         "--user3 '%s' --ssh-config '%s' --starts %d --calls %d --warmup %d",
	         MG_BENCH_SRC, user, user2, user3, ssh_config, starts, calls < 2000 ? calls : 2000,
	         warmup < 200 ? warmup : 200);
	fprintf(stderr, "bench_remote: running %s\n", cmd);
	if ((p = popen(cmd, "r")) == NULL)
		return;
	len = getdelim(&json, &cap, '\0', p);
	pclose(p);
	if (len <= 0) {
		free(json);
		return;
	}
	ref_pick(json, &rows[SSH_START].ref, "ssh_start_ms");
	ref_pick(json, &rows[RTT_SSH].ref, "rtt_ssh_us");
	ref_pick(json, &rows[SUDO_VIA_SSH].ref, "sudo_via_ssh_ms");
	ref_pick(json, &rows[SUDO_START].ref, "sudo_start_ms");
	free(json);
}

/* ---- output --------------------------------------------------------------- */

static bool row_met(const struct row *w)
{
	if (!w->ours.ok)
		return false;
	if (w->rel)
		return w->floor.ok && w->ours.median <= w->floor.median + w->target;
	return w->ours.median <= w->target;
}

static void cellf(char *buf, size_t n, const struct fig *f)
{
	if (!f->ok)
		snprintf(buf, n, "-");
	else
		snprintf(buf, n, "%.*f", f->median >= 100 ? 0 : f->median >= 10 ? 1 : 2, f->median);
}

static void print_table(void)
{
	char a[32], b[32], c[32], t[48];
	int i;

	printf("%-32s %4s %10s %10s %10s  %-14s %s\n", "", "unit", "ours", "Mitogen", "floor",
	       "target", "met");
	for (i = 0; i < NROWS; i++) {
		const struct row *w = &rows[i];

		cellf(a, sizeof(a), &w->ours);
		cellf(b, sizeof(b), &w->ref);
		cellf(c, sizeof(c), &w->floor);
		if (w->rel)
			snprintf(t, sizeof(t), "floor + %g", w->target);
		else
			snprintf(t, sizeof(t), "<= %g", w->target);
		printf("%-32s %4s %10s %10s %10s  %-14s %s\n", w->what, w->unit, a, b, c, t,
		       row_met(w) ? "yes" : "no");
	}
	for (i = 0; i < NROWS; i++)
		if (rows[i].paired.ok)
			printf("%s: ours minus the floor run just before it, median of %d pairs: "
			       "%+.1f %s (%+.1f to %+.1f)\n",
			       rows[i].what, rows[i].paired.n, rows[i].paired.median, rows[i].unit,
			       rows[i].paired.min, rows[i].paired.max);
	printf("remote command line: %zu bytes (%zu with the cache)\n",
	       strlen(mg__bootstrap_command()),
	       mg__bootstrap_cache_command() ? strlen(mg__bootstrap_cache_command()) : 0);
}

static void json_fig(FILE *f, const char *name, const struct fig *g)
{
	if (g->ok && g->n == 0) /* the reference's median: its own JSON has the rest */
		fprintf(f, "\"%s\": {\"median\": %.3f}", name, g->median);
	else if (g->ok)
		fprintf(f, "\"%s\": {\"median\": %.3f, \"min\": %.3f, \"max\": %.3f, \"n\": %d}",
		        name, g->median, g->min, g->max, g->n);
	else
		fprintf(f, "\"%s\": null", name);
}

static void print_json(FILE *f)
{
	int i;

	fprintf(f, "{\"bench\": \"remote\", \"starts\": %d, \"calls\": %d, ", starts, calls);
	fprintf(f, "\"argv_bytes\": %zu, \"metrics\": {", strlen(mg__bootstrap_command()));
	for (i = 0; i < NROWS; i++) {
		fprintf(f, "%s\"%s\": {", i ? ", " : "", rows[i].key);
		json_fig(f, "ours", &rows[i].ours);
		fputs(", ", f);
		json_fig(f, "mitogen", &rows[i].ref);
		fputs(", ", f);
		json_fig(f, "floor", &rows[i].floor);
		fputs(", ", f);
		json_fig(f, "paired_diff", &rows[i].paired);
		fprintf(f, ", \"met\": %s}", row_met(&rows[i]) ? "true" : "false");
	}
	fputs("}}\n", f);
}

int main(int argc, char **argv)
{
	int opt, lock;

	while ((opt = getopt(argc, argv, "n:c:w:j:o:Rth")) != -1) {
		switch (opt) {
		case 'n':
			starts = atoi(optarg);
			break;
		case 'c':
			calls = atoi(optarg);
			break;
		case 'w':
			warmup = atoi(optarg);
			break;
		case 'j':
			json_path = optarg;
			break;
		case 'o':
			only = optarg;
			break;
		case 'R':
			no_ref = true;
			break;
		case 't':
			trace = true;
			break;
		default:
			fprintf(stderr,
			        "usage: bench_remote [-n STARTS] [-c CALLS] [-w WARMUP] [-o KEYS] "
			        "[-R (no Mitogen)] [-t (trace)] [-j JSON]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	if (starts < 1 || starts > 200 || calls < 1 || warmup < 0) {
		fprintf(stderr, "bench_remote: bad -n/-c/-w\n");
		return 2;
	}
	infra_load();
	/* Shared, as tests/infra/floors.sh: a `down` elsewhere waits for us. */
	lock = bench_infra_hold();
	signal(SIGPIPE, SIG_IGN);
	run_ours();
	if (!no_ref)
		run_ref();
	print_table();
	print_json(stdout);
	if (json_path != NULL) {
		FILE *f = fopen(json_path, "w");

		if (f == NULL) {
			perror(json_path);
			return 1;
		}
		print_json(f);
		fclose(f);
	}
	if (lock >= 0)
		close(lock);
	return rows[SSH_START].ours.ok && rows[RTT_SSH].ours.ok ? 0 : 1;
}
