/*
 * bench_cli.c: the mitogen tool beside clush and pdsh, and the library's
 * calls on connected targets beside Python Mitogen's.
 *
 * Targets: N (default 100) ssh aliases t001.. of the loopback sshd of
 * tests/infra (127.0.0.1..60, so some addresses serve two aliases), made
 * by a private ssh_config that every tool reads (-F), user mgtest, key
 * login.  The infra must be up (bash tests/infra/env.sh up); the bench
 * holds its lock shared, as the suites do.
 *
 *  1. One command on every target, the whole program timed from exec to
 *     exit, each tool with a fan-out of N:
 *       mitogen run -f N -H t[001-N] --ssh-config CFG -- true
 *       clush -f N -w t[001-N] -o '-F CFG' true          (Debian clustershell)
 *       pdsh -f N -R ssh -w t[001-N] true, PDSH_SSH_ARGS='-F CFG %h'  (Debian pdsh)
 *       mitogen run --cache ...   (the agent kept on the targets: filled by
 *                                  one run first, removed after the rounds)
 *     in alternating order, --rounds times; a missing tool is said so.
 *     Beside the medians, the median of our time over each other tool's
 *     in the same round: the machine's speed drifts between rounds by
 *     more than the gap between the tools, and the pairing cancels it.
 *     Beside each run's wall time, the CPU time the whole machine spent
 *     busy meanwhile (/proc/stat): ssh, sshd and the targets' processes.
 *  2. Targets already connected (what a program using the library, or
 *     Python Mitogen, keeps): `true` run on all of them (mg_exec_run_start
 *     on each, then mg_exec_run_wait on each) and one
 *     call on all of them (mg_call_async + wait), beside bench/cli_ref.py
 *     doing call_async(subprocess.call, ['true']) and call_async(os.getpid)
 *     on Python Mitogen contexts to the same targets; the two take turns
 *     round by round (who goes first alternates), both connected all along.
 *
 * Prints a table and one JSON object (also to --json FILE); --chart
 * FILE.png renders the medians with bench/chart.gnuplot, the chart
 * bench_contexts draws.  Never asserts a time; the exit status is
 * non-zero only when one of ours failed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "mitogen.h"

#define MAX_TARGETS 1000

struct stats {
	double median, min, max;
	int n;
	char error[256];
};

static int ntargets = 100, rounds = 3, call_rounds = 10;
static char cfg_path[256], tmpdir[64], hosts[64];

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void summarise(struct stats *s, double *v, int n)
{
	if (n == 0)
		return;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	s->n = n;
	s->min = v[0];
	s->max = v[n - 1];
	s->median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* A program on PATH, or NULL. */
static const char *on_path(const char *name, char *buf, size_t len)
{
	const char *path = getenv("PATH"), *p, *end;

	for (p = path ? path : "/usr/bin:/bin"; *p; p = *end ? end + 1 : end) {
		end = strchr(p, ':');
		if (end == NULL)
			end = p + strlen(p);
		snprintf(buf, len, "%.*s/%s", (int)(end - p), p, name);
		if (access(buf, X_OK) == 0)
			return buf;
	}
	return NULL;
}

/* Writes CFG: one Host block per alias, then the infra's client settings
 * (the indented lines of its ssh_config) for all of them. */
static int write_config(int naddrs)
{
	char infra_cfg[512], user[64], line[1024];
	FILE *in, *out;
	int i;

	if (bench_infra_get(NULL, "MG_INFRA_SSH_CONFIG", infra_cfg, sizeof(infra_cfg)) == NULL ||
	    bench_infra_get(NULL, "MG_INFRA_USER", user, sizeof(user)) == NULL)
		return -1;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/mg-bench-cli-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(cfg_path, sizeof(cfg_path), "%s/ssh_config", tmpdir);
	if ((in = fopen(infra_cfg, "re")) == NULL || (out = fopen(cfg_path, "we")) == NULL)
		return -1;
	for (i = 1; i <= ntargets; i++)
		fprintf(out, "Host t%03d\n  HostName 127.0.0.%d\n", i, (i - 1) % naddrs + 1);
	fprintf(out, "Host t*\n  User %s\n", user);
	while (fgets(line, sizeof(line), in) != NULL)
		if (line[0] == ' ' || line[0] == '\t')
			fputs(line, out);
	fclose(in);
	return fclose(out) == 0 ? 0 : -1;
}

/* CPU time the whole machine has spent busy (user, nice, system, irq,
 * softirq, steal), in ms, from /proc/stat; -1 when unreadable.  Around a
 * tool's run it counts ssh, sshd and every process on the targets too:
 * with 100 targets on 2 CPUs the run is CPU-bound, so this is what the
 * wall time follows. */
static double machine_busy_ms(void)
{
	unsigned long long v[8] = {0};
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/stat", "re");
	int n;

	if (f == NULL)
		return -1;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
	           &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n != 8 || hz <= 0)
		return -1;
	/* v[3] idle and v[4] iowait are not busy. */
	return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) * 1e3 / (double)hz;
}

/* Runs argv (env entries added) with output to a log; its wall time in
 * ms, or -1 (the log's tail in err) when it failed. */
static double time_cmd(const char *const *argv, const char *env, char *err, size_t errlen)
{
	char log[128];
	double t0 = now_ms(), t;
	int status, fd;
	pid_t pid;

	snprintf(log, sizeof(log), "%s/log", tmpdir);
	pid = fork();
	if (pid == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		dup2(fd, 1);
		dup2(fd, 2);
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		dup2(fd, 0);
		if (env != NULL)
			putenv((char *)env);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	t = now_ms() - t0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return t;
	if ((fd = open(log, O_RDONLY | O_CLOEXEC)) >= 0) {
		ssize_t n = read(fd, err, errlen - 1);
		err[n > 0 ? n : 0] = '\0';
		err[strcspn(err, "\n")] = '\0';
		close(fd);
	}
	if (err[0] == '\0')
		snprintf(err, errlen, "exit status %d",
		         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	return -1;
}

/* ---- part 1: the tools ---------------------------------------------------- */

enum { TOOL_MITOGEN, TOOL_CLUSH, TOOL_PDSH, TOOL_CACHED, NTOOLS };
static const char *const tool_names[NTOOLS] = {"mitogen run", "clush", "pdsh", "--cache"};
static struct stats tool_stats[NTOOLS], tool_cpu[NTOOLS];
/* Per other tool: our time over its time in the same round, so that the
 * machine's drift between rounds (tens of percent here) cancels; the same
 * for the run with --cache. */
static struct stats tool_ratio[NTOOLS], cached_ratio[NTOOLS];

/* `mitogen run [--cache] -f N -H HOSTS --ssh-config CFG -- COMMAND...`
 * into argv (room for 16). */
static void mitogen_argv(const char **argv, const char *bin, const char *fan, bool cache,
                         const char *const *command)
{
	int i = 0;

	argv[i++] = bin;
	argv[i++] = "run";
	if (cache)
		argv[i++] = "--cache";
	argv[i++] = "-f";
	argv[i++] = fan;
	argv[i++] = "-H";
	argv[i++] = hosts;
	argv[i++] = "--ssh-config";
	argv[i++] = cfg_path;
	argv[i++] = "--";
	while (*command != NULL && i < 15)
		argv[i++] = *command++;
	argv[i] = NULL;
}

static const char *const run_true[] = {"true", NULL};

/* Fills the targets' cache (one run with --cache), or empties it. */
static bool cache_prepare(const char *mitogen_bin, const char *fan, bool fill)
{
	static const char *const remove[] = {"rm -rf \"$HOME/.cache/mitogen-c\"", NULL};
	const char *argv[16];
	char err[200];

	mitogen_argv(argv, mitogen_bin, fan, fill, fill ? run_true : remove);
	if (time_cmd(argv, NULL, err, sizeof(err)) >= 0)
		return true;
	if (tool_stats[TOOL_CACHED].error[0] == '\0')
		snprintf(tool_stats[TOOL_CACHED].error, sizeof(tool_stats[0].error),
		         "%s the cache: %s", fill ? "filling" : "emptying", err);
	return false;
}

static void bench_tools(const char *mitogen_bin)
{
	char fan[16], clush_opt[300], pdsh_env[320], path[512], err[256];
	double samples[NTOOLS][64], cpu[NTOOLS][64], in_round[NTOOLS][64], ratio[NTOOLS][64];
	double cratio[NTOOLS][64];
	int n[NTOOLS] = {0}, nratio[NTOOLS] = {0}, ncratio[NTOOLS] = {0}, r, k;
	bool have[NTOOLS] = {true, true, true, true};
	const char *mit[16], *cached[16];

	snprintf(fan, sizeof(fan), "%d", ntargets);
	snprintf(clush_opt, sizeof(clush_opt), "-F %s", cfg_path);
	snprintf(pdsh_env, sizeof(pdsh_env), "PDSH_SSH_ARGS=-F %s %%h", cfg_path);
	if (on_path("clush", path, sizeof(path)) == NULL) {
		have[TOOL_CLUSH] = false;
		snprintf(tool_stats[TOOL_CLUSH].error, sizeof(tool_stats[0].error),
		         "clush not installed (apt-get install clustershell)");
	}
	if (on_path("pdsh", path, sizeof(path)) == NULL) {
		have[TOOL_PDSH] = false;
		snprintf(tool_stats[TOOL_PDSH].error, sizeof(tool_stats[0].error),
		         "pdsh not installed (apt-get install pdsh)");
	}
	mitogen_argv(mit, mitogen_bin, fan, false, run_true);
	mitogen_argv(cached, mitogen_bin, fan, true, run_true);
	have[TOOL_CACHED] = cache_prepare(mitogen_bin, fan, true);
	for (r = 0; r < rounds && r < 64; r++) {
		for (k = 0; k < NTOOLS; k++)
			in_round[k][r] = -1;
		for (k = 0; k < NTOOLS; k++) {
			int t = (k + r) % NTOOLS; /* alternate who goes first */
			const char *const clu[] = {"clush", "-f",      fan,    "-w", hosts,
			                           "-o",    clush_opt, "true", NULL};
			const char *const pd[] = {"pdsh", "-f",  fan,    "-R", "ssh",
			                          "-w",   hosts, "true", NULL};
			double ms, busy0;

			if (!have[t])
				continue;
			err[0] = '\0';
			busy0 = machine_busy_ms();
			ms = time_cmd(t == TOOL_MITOGEN  ? mit
			              : t == TOOL_CACHED ? cached
			              : t == TOOL_CLUSH  ? clu
			                                 : pd,
			              t == TOOL_PDSH ? pdsh_env : NULL, err, sizeof(err));
			fprintf(stderr, "round %d: %-11s %s\n", r + 1, tool_names[t],
			        ms < 0 ? err : "done");
			if (ms < 0) {
				snprintf(tool_stats[t].error, sizeof(tool_stats[t].error), "%s",
				         err);
				have[t] = false;
				continue;
			}
			cpu[t][n[t]] = busy0 < 0 ? 0 : machine_busy_ms() - busy0;
			samples[t][n[t]++] = ms;
			in_round[t][r] = ms;
		}
		for (k = TOOL_CLUSH; k <= TOOL_PDSH; k++) {
			if (in_round[k][r] > 0 && in_round[TOOL_MITOGEN][r] > 0)
				ratio[k][nratio[k]++] = in_round[TOOL_MITOGEN][r] / in_round[k][r];
			if (in_round[k][r] > 0 && in_round[TOOL_CACHED][r] > 0)
				cratio[k][ncratio[k]++] = in_round[TOOL_CACHED][r] / in_round[k][r];
		}
	}
	cache_prepare(mitogen_bin, fan, false);
	for (k = 0; k < NTOOLS; k++) {
		summarise(&tool_stats[k], samples[k], n[k]);
		summarise(&tool_cpu[k], cpu[k], n[k]);
		snprintf(tool_cpu[k].error, sizeof(tool_cpu[k].error), "%s", tool_stats[k].error);
		summarise(&tool_ratio[k], ratio[k], nratio[k]);
		summarise(&cached_ratio[k], cratio[k], ncratio[k]);
		if (nratio[k] == 0)
			snprintf(tool_ratio[k].error, sizeof(tool_ratio[k].error), "%s",
			         tool_stats[k].error[0] != '\0' ? tool_stats[k].error
			                                        : tool_stats[TOOL_MITOGEN].error);
		if (ncratio[k] == 0)
			snprintf(cached_ratio[k].error, sizeof(cached_ratio[k].error), "%s",
			         tool_stats[k].error[0] != '\0' ? tool_stats[k].error
			                                        : tool_stats[TOOL_CACHED].error);
	}
}

/* ---- part 2: connected targets ---------------------------------------------- */

static struct stats ours_exec, ours_call, ref_exec, ref_call;
static double ours_connect_ms, ref_connect_ms;
static char ref_version[32];

/* A number after "key": within the object after "section" (or anywhere). */
static double json_num(const char *doc, const char *section, const char *key)
{
	char pat[64];
	const char *p = doc;

	if (section != NULL) {
		snprintf(pat, sizeof(pat), "\"%s\":", section);
		if ((p = strstr(doc, pat)) == NULL)
			return -1;
	}
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	if ((p = strstr(p, pat)) == NULL)
		return -1;
	return strtod(p + strlen(pat), NULL);
}

/* ---- Python Mitogen, round by round beside ours ---------------------------- */

/* cli_ref.py --interleave: it connects, says READY, then runs one round
 * per line it reads, so the two take turns under the same load instead of
 * one after the other (this machine's load swings within minutes). */
static FILE *py_in, *py_out;
static pid_t py_pid = -1;
static double py_ex[64], py_ca[64];
static int py_n;

/* Reads one line from the script; false at EOF. */
static bool py_line(char *buf, size_t len)
{
	if (py_out == NULL || fgets(buf, (int)len, py_out) == NULL)
		return false;
	buf[strcspn(buf, "\n")] = '\0';
	return true;
}

static void py_error(const char *line)
{
	snprintf(ref_exec.error, sizeof(ref_exec.error), "%.200s",
	         *line ? line : "no output (see the log)");
}

/* Starts the script and waits until it is connected; false (the reason in
 * ref_exec.error) when it is not. */
static bool py_start(const char *script)
{
	static char names[MAX_TARGETS][16];
	const char *argv[MAX_TARGETS + 16];
	char num[16], log[128], line[8192];
	int in[2], out[2], fd, n = 0, i;

	if (access("/usr/bin/python3", X_OK) != 0) {
		py_error("no /usr/bin/python3");
		return false;
	}
	/* A script that died must not take us with it. */
	signal(SIGPIPE, SIG_IGN);
	snprintf(num, sizeof(num), "%d", call_rounds);
	argv[n++] = "/usr/bin/python3";
	argv[n++] = script;
	argv[n++] = "--ssh-config";
	argv[n++] = cfg_path;
	argv[n++] = "--rounds";
	argv[n++] = num;
	argv[n++] = "--interleave";
	for (i = 0; i < ntargets; i++) {
		snprintf(names[i], sizeof(names[i]), "t%03d", i + 1);
		argv[n++] = names[i];
	}
	argv[n] = NULL;
	snprintf(log, sizeof(log), "%s/ref.log", tmpdir);
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
		return false;
	if ((py_pid = fork()) == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		if ((fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) >= 0)
			dup2(fd, 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	py_in = fdopen(in[1], "w");
	py_out = fdopen(out[0], "r");
	while (py_line(line, sizeof(line)))
		if (strcmp(line, "READY") == 0)
			return true;
		else if (strstr(line, "\"error\"") != NULL)
			break;
	py_error(line);
	return false;
}

/* One round of the script's: false when it stopped answering. */
static bool py_round(void)
{
	char line[512];

	if (py_n >= 64 || fprintf(py_in, "go\n") < 0 || fflush(py_in) != 0 ||
	    !py_line(line, sizeof(line)) || strstr(line, "\"exec\"") == NULL) {
		py_error("the script stopped answering (see the log)");
		return false;
	}
	py_ex[py_n] = json_num(line, NULL, "exec");
	py_ca[py_n++] = json_num(line, NULL, "call");
	return true;
}

/* Ends the script; its summary line gives the connect time and version. */
static void py_finish(void)
{
	char line[8192], last[8192] = "";
	const char *p;

	if (py_in != NULL) {
		fprintf(py_in, "done\n");
		fclose(py_in);
	}
	while (py_line(line, sizeof(line)))
		snprintf(last, sizeof(last), "%s", line);
	if (py_out != NULL)
		fclose(py_out);
	if (py_pid > 0)
		waitpid(py_pid, NULL, 0);
	py_in = py_out = NULL;
	ref_connect_ms = json_num(last, NULL, "connect_ms");
	if ((p = strstr(last, "\"version\": \"")) != NULL)
		snprintf(ref_version, sizeof(ref_version), "%.*s", (int)strcspn(p + 12, "\""),
		         p + 12);
	if (py_n > 0) {
		summarise(&ref_exec, py_ex, py_n);
		summarise(&ref_call, py_ca, py_n);
	} else if (ref_exec.error[0] == '\0') {
		py_error(last);
	}
}

/* `true` on every target: started on all, then each waited for, as the
 * Python script does with call_async; 0 or the first failure. */
static int exec_round(struct mg_context **ctx)
{
	static struct mg_exec_pending *pend[MAX_TARGETS];
	const char *const argv[] = {"true", NULL};
	struct mg_exec_result res;
	struct mg_exec_opts o;
	int i, rc = 0, r;

	mg_exec_opts_init(&o);
	o.argv = argv;
	for (i = 0; i < ntargets; i++)
		if ((r = mg_exec_run_start(ctx[i], &o, 4096, &pend[i], NULL, 0)) != 0)
			pend[i] = NULL, rc = r;
	for (i = 0; i < ntargets; i++) {
		if (pend[i] == NULL)
			continue;
		r = mg_exec_run_wait(pend[i], -1, &res);
		if (r == 0 && res.status.exit_code != 0)
			r = -1;
		if (r != 0)
			rc = r;
		mg_exec_result_fini(&res);
		mg_exec_pending_free(pend[i]);
	}
	return rc;
}

/* Ours on already-connected targets; with script, Python Mitogen's
 * rounds between ours. */
static int bench_connected(const char *script)
{
	static struct mg_context *ctx[MAX_TARGETS];
	static struct mg_receiver *rx[MAX_TARGETS];
	const char *ssh_args[] = {"-F", cfg_path, NULL};
	double ex[64], ca[64], t0;
	struct mg_router *r;
	bool py_ok = false;
	int i, k, rc = 0;

	if (mg_router_new(NULL, &r) != 0)
		return -1;
	t0 = now_ms();
	for (i = 0; i < ntargets; i++) {
		struct mg_connect_opts o;
		char name[16];

		snprintf(name, sizeof(name), "t%03d", i + 1);
		mg_connect_opts_init(&o, MG_METHOD_SSH);
		o.hostname = name;
		o.ssh_args = ssh_args;
		o.connect_timeout_ms = 120000;
		if ((rc = mg_connect_start(r, &o, &ctx[i])) != 0)
			break;
	}
	for (k = 0; k < i && rc == 0; k++)
		if ((rc = mg_context_wait_ready(ctx[k], -1)) != 0)
			fprintf(stderr, "connect t%03d: %s\n", k + 1, mg_errdetail());
	ours_connect_ms = now_ms() - t0;
	py_ok = rc == 0 && script != NULL && py_start(script);
	/* One untimed round, as the script has: the first command in a
	 * context starts the exec service's threads there.  After the
	 * script's connect (a minute or more of idling for ours), right
	 * before the timed rounds, as the script's own is. */
	if (rc == 0)
		rc = exec_round(ctx);
	for (k = 0; k < call_rounds && k < 64 && rc == 0; k++) {
		/* Who goes first alternates. */
		if (py_ok && k % 2 == 1)
			py_ok = py_round();
		t0 = now_ms();
		rc = exec_round(ctx);
		ex[k] = now_ms() - t0;
		t0 = now_ms();
		for (i = 0; i < ntargets && rc == 0; i++)
			rc = mg_call_async(ctx[i], "mg.ping", &rx[i], "");
		for (i = 0; i < ntargets; i++) {
			struct mg_msg *m;

			if (rx[i] != NULL && mg_call_wait(rx[i], -1, &m) == 0)
				mg_msg_free(m);
			else
				rc = -1;
			mg_receiver_free(rx[i]);
			rx[i] = NULL;
		}
		ca[k] = now_ms() - t0;
		if (py_ok && k % 2 == 0)
			py_ok = py_round();
		/* Per round, so an outlier can be placed. */
		fprintf(stderr, "round %d: true %.1f ms, call %.1f ms", k + 1, ex[k], ca[k]);
		if (py_n > 0 && py_n == k + 1)
			fprintf(stderr, "; Python %.1f ms, %.1f ms", py_ex[k], py_ca[k]);
		fprintf(stderr, "\n");
	}
	if (script != NULL)
		py_finish();
	if (rc == 0) {
		summarise(&ours_exec, ex, k);
		summarise(&ours_call, ca, k);
	} else {
		snprintf(ours_exec.error, sizeof(ours_exec.error), "failed: %s", mg_strerror(rc));
	}
	for (i = 0; i < ntargets; i++) {
		if (ctx[i] != NULL)
			mg_context_shutdown(ctx[i], 5000);
		mg_context_free(ctx[i]);
	}
	mg_router_free(r);
	return rc;
}

/* ---- report --------------------------------------------------------------- */

/* A row of the table: times in ms, or (ratio) our time over another
 * tool's, paired by round. */
static void row_of(const char *what, const struct stats *s, bool ratio)
{
	int prec = ratio ? 3 : 1;

	if (s->n == 0)
		printf("| %-44s | %12s | %s\n", what, "-", s->error[0] ? s->error : "not measured");
	else
		printf("| %-44s | %9.*f %s | min %.*f, max %.*f, n %d\n", what, prec, s->median,
		       ratio ? "x " : "ms", prec, s->min, prec, s->max, s->n);
}

static void row(const char *what, const struct stats *s)
{
	row_of(what, s, false);
}

static void row_ratio(const char *what, const struct stats *s)
{
	row_of(what, s, true);
}

static void json_stats(FILE *f, const char *key, const struct stats *s, bool last)
{
	if (s->n == 0)
		fprintf(f, "  \"%s\": {\"error\": \"%s\"}%s\n", key, s->error, last ? "" : ",");
	else
		fprintf(f,
		        "  \"%s\": {\"median\": %.3f, \"min\": %.3f, \"max\": %.3f, \"n\": %d}%s\n",
		        key, s->median, s->min, s->max, s->n, last ? "" : ",");
}

static void print_json(FILE *f, double load)
{
	fprintf(f, "{\n  \"targets\": %d,\n  \"load_average\": %.2f,\n", ntargets, load);
	fprintf(f, "  \"python_mitogen\": \"%s\",\n", ref_version);
	fprintf(f, "  \"connect_all_ms\": {\"mitogen_c\": %.1f, \"python_mitogen\": %.1f},\n",
	        ours_connect_ms, ref_connect_ms);
	json_stats(f, "mitogen_run_true_ms", &tool_stats[TOOL_MITOGEN], false);
	json_stats(f, "clush_true_ms", &tool_stats[TOOL_CLUSH], false);
	json_stats(f, "pdsh_true_ms", &tool_stats[TOOL_PDSH], false);
	json_stats(f, "mitogen_run_over_clush_paired", &tool_ratio[TOOL_CLUSH], false);
	json_stats(f, "mitogen_run_over_pdsh_paired", &tool_ratio[TOOL_PDSH], false);
	json_stats(f, "mitogen_run_true_machine_cpu_ms", &tool_cpu[TOOL_MITOGEN], false);
	json_stats(f, "clush_true_machine_cpu_ms", &tool_cpu[TOOL_CLUSH], false);
	json_stats(f, "pdsh_true_machine_cpu_ms", &tool_cpu[TOOL_PDSH], false);
	json_stats(f, "mitogen_run_cache_true_ms", &tool_stats[TOOL_CACHED], false);
	json_stats(f, "mitogen_run_cache_over_clush_paired", &cached_ratio[TOOL_CLUSH], false);
	json_stats(f, "mitogen_run_cache_over_pdsh_paired", &cached_ratio[TOOL_PDSH], false);
	json_stats(f, "mitogen_run_cache_true_machine_cpu_ms", &tool_cpu[TOOL_CACHED], false);
	json_stats(f, "connected_exec_true_ms", &ours_exec, false);
	json_stats(f, "python_mitogen_exec_true_ms", &ref_exec, false);
	json_stats(f, "connected_call_ms", &ours_call, false);
	json_stats(f, "python_mitogen_call_ms", &ref_call, true);
	fprintf(f, "}\n");
}

/* One chart cluster: "-" where a figure is missing. */
static void chart_value(FILE *f, const struct stats *s, double scale)
{
	if (s->n > 0)
		fprintf(f, "\t%g", s->median * scale);
	else
		fprintf(f, "\t-");
}

static double fastest(const struct stats *a, const struct stats *b, double scale)
{
	if (a->n > 0 && (b->n == 0 || a->median <= b->median))
		return a->median * scale;
	return b->n > 0 ? b->median * scale : 0;
}

/* Renders the figures with bench/chart.gnuplot (bench_contexts' chart):
 * mitogen-c, Python Mitogen, and the faster of clush and pdsh as the third
 * bar; the issue's target, the fastest of the others, as the marker. */
static void render_chart(const char *png, const char *script)
{
	char dat[] = "/tmp/mg-bench-cli-XXXXXX", cmd[9000];
	const struct stats *clush = &tool_stats[TOOL_CLUSH], *pdsh = &tool_stats[TOOL_PDSH];
	const struct stats none = {.n = 0};
	FILE *f;
	int fd, rc;

	if ((fd = mkstemp(dat)) < 0 || (f = fdopen(fd, "w")) == NULL) {
		fprintf(stderr, "bench_cli: mkstemp: %s\n", strerror(errno));
		return;
	}
	if (tool_stats[TOOL_MITOGEN].n > 0 || fastest(clush, pdsh, 1) > 0) {
		fprintf(f, "one command on %d targets, exec to exit\\n(s, lower is better)",
		        ntargets);
		chart_value(f, &tool_stats[TOOL_MITOGEN], 1e-3);
		chart_value(f, &none, 1);
		fprintf(f, "\t%g\t%g\n", fastest(clush, pdsh, 1e-3), fastest(clush, pdsh, 1e-3));
	}
	fprintf(f, "connected: true on all %d\\n(ms, lower is better)", ntargets);
	chart_value(f, &ours_exec, 1);
	chart_value(f, &ref_exec, 1);
	fprintf(f, "\t-\t%g\n", ref_exec.n > 0 ? ref_exec.median : 0);
	fprintf(f, "connected: a call on all %d\\n(ms, lower is better)", ntargets);
	chart_value(f, &ours_call, 1);
	chart_value(f, &ref_call, 1);
	fprintf(f, "\t-\t%g\n", ref_call.n > 0 ? ref_call.median : 0);
	fclose(f);
	snprintf(cmd, sizeof(cmd),
	         "gnuplot -e \"datafile='%s'; outfile='%s'; refname='Python Mitogen %s'; "
	         "floorname='fastest of clush, pdsh'; targetname='target: the fastest other'; "
	         "charttitle='mitogen tool and library beside clush, pdsh and Python Mitogen "
	         "(log scale)'\" '%s'",
	         dat, png, ref_version, script);
	rc = system(cmd);
	if (rc != 0)
		fprintf(stderr,
		        "bench_cli: gnuplot failed (status %d): is gnuplot-nox installed?\n", rc);
	else
		fprintf(stderr, "bench_cli: chart written to %s\n", png);
	unlink(dat);
}

static void cleanup(void)
{
	char p[128];

	if (tmpdir[0] == '\0')
		return;
	snprintf(p, sizeof(p), "%s/log", tmpdir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/ref.log", tmpdir);
	unlink(p);
	unlink(cfg_path);
	rmdir(tmpdir);
}

int main(int argc, char **argv)
{
	char exe[4096], bin[4200], script[4200], naddrs_s[16];
	char chart_script[4200];
	const char *json_path = NULL, *chart_path = NULL;
	bool no_tools = false, no_mitogen = false;
	double load = 0;
	FILE *f;
	int i, lock, naddrs, rc;
	ssize_t n;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			ntargets = atoi(argv[++i]);
		else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (strcmp(argv[i], "--call-rounds") == 0 && i + 1 < argc)
			call_rounds = atoi(argv[++i]);
		else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
			json_path = argv[++i];
		else if (strcmp(argv[i], "--chart") == 0 && i + 1 < argc)
			chart_path = argv[++i];
		else if (strcmp(argv[i], "--no-tools") == 0)
			no_tools = true;
		else if (strcmp(argv[i], "--no-mitogen") == 0)
			no_mitogen = true;
		else {
			fprintf(stderr,
			        "usage: bench_cli [-n TARGETS] [--rounds N] [--call-rounds N]\n"
			        "                 [--json FILE] [--chart FILE.png] [--no-tools] "
			        "[--no-mitogen]\n");
			return 2;
		}
	}
	if (ntargets < 1 || ntargets > 999 || rounds < 1 || rounds > 64 || call_rounds < 1 ||
	    call_rounds > 64) {
		fprintf(stderr, "bench_cli: -n 1..999, --rounds and --call-rounds 1..64\n");
		return 2;
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[n > 0 ? n : 0] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(bin, sizeof(bin), "%s/../cli/mitogen", exe);
	bench_source_path(script, sizeof(script), "cli_ref.py");
	bench_source_path(chart_script, sizeof(chart_script), "chart.gnuplot");
	if (access(bin, X_OK) != 0) {
		fprintf(stderr, "bench_cli: %s is not built\n", bin);
		return 1;
	}
	if (bench_infra_get(NULL, "MG_INFRA_ADDRS", naddrs_s, sizeof(naddrs_s)) == NULL) {
		fprintf(stderr,
		        "bench_cli: the ssh infra is not up: run 'bash tests/infra/env.sh up' "
		        "as root first\n");
		return 1;
	}
	naddrs = atoi(naddrs_s);
	/* Hold the infra shared, so no 'env.sh down' runs under us. */
	lock = bench_infra_hold();
	if (write_config(naddrs > 0 ? naddrs : 60) != 0) {
		fprintf(stderr, "bench_cli: cannot write the ssh_config: %s\n", strerror(errno));
		cleanup();
		return 1;
	}
	snprintf(hosts, sizeof(hosts), "t[001-%03d]", ntargets);
	if ((f = fopen("/proc/loadavg", "re")) != NULL) {
		if (fscanf(f, "%lf", &load) != 1)
			load = 0;
		fclose(f);
	}
	if (!no_tools)
		bench_tools(bin);
	rc = bench_connected(no_mitogen ? NULL : script);
	if (no_mitogen)
		snprintf(ref_exec.error, sizeof(ref_exec.error), "skipped (--no-mitogen)");
	if (ref_call.n == 0)
		snprintf(ref_call.error, sizeof(ref_call.error), "%s", ref_exec.error);

	printf("\n%d ssh targets (aliases of 127.0.0.1..%d), load average %.2f at the start\n\n",
	       ntargets, naddrs, load);
	printf("| %-44s | %12s |\n|---|---:|\n", "what (median wall time)", "");
	row("mitogen run -- true, from exec to exit", &tool_stats[TOOL_MITOGEN]);
	row("clush true, from exec to exit", &tool_stats[TOOL_CLUSH]);
	row("pdsh -R ssh true, from exec to exit", &tool_stats[TOOL_PDSH]);
	row_ratio("  mitogen run / clush, same round", &tool_ratio[TOOL_CLUSH]);
	row_ratio("  mitogen run / pdsh, same round", &tool_ratio[TOOL_PDSH]);
	row("  CPU the machine spent: mitogen run", &tool_cpu[TOOL_MITOGEN]);
	row("  CPU the machine spent: clush", &tool_cpu[TOOL_CLUSH]);
	row("  CPU the machine spent: pdsh", &tool_cpu[TOOL_PDSH]);
	row("mitogen run --cache -- true, exec to exit", &tool_stats[TOOL_CACHED]);
	row_ratio("  mitogen run --cache / clush, same round", &cached_ratio[TOOL_CLUSH]);
	row_ratio("  mitogen run --cache / pdsh, same round", &cached_ratio[TOOL_PDSH]);
	row("  CPU the machine spent: mitogen run --cache", &tool_cpu[TOOL_CACHED]);
	row("connected: true on all (mitogen-c)", &ours_exec);
	row("connected: true on all (Python Mitogen)", &ref_exec);
	row("connected: a call on all (mitogen-c mg.ping)", &ours_call);
	row("connected: a call on all (Python os.getpid)", &ref_call);
	printf("connect all: mitogen-c %.0f ms (library, all at once), Python Mitogen %.0f ms "
	       "(20 threads)\n\n",
	       ours_connect_ms, ref_connect_ms);
	print_json(stdout, load);
	if (json_path != NULL && (f = fopen(json_path, "we")) != NULL) {
		print_json(f, load);
		fclose(f);
	}
	if (chart_path != NULL)
		render_chart(chart_path, chart_script);
	cleanup();
	if (lock >= 0)
		close(lock);
	return rc != 0 || tool_stats[TOOL_MITOGEN].error[0] != '\0';
}
