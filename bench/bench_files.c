/*
 * bench_files.c: a 1 GiB file through a local, a sudo and an ssh context,
 * each beside the cheapest way the system moves the same bytes the same
 * way, and beside Mitogen's FileService, in one run.
 *
 *   local   mg_file_push / mg_file_pull through a local context (this
 *           program started again, "ship self"), beside
 *           `cat SRC | cat > DST`: two processes and a pipe.
 *   sudo    the same through `sudo -u mgtest2` (the stock agent), beside
 *           `sudo -u mgtest2 sh -c 'cat > DST' < SRC` (push) and
 *           `sudo -u mgtest2 cat SRC > DST` (pull).
 *   ssh     the same through ssh to mgtest@127.0.0.1 (tests/infra's sshd,
 *           its ssh_config: one cipher for both), beside
 *           `ssh HOST 'cat > DST' < SRC` and `ssh HOST cat SRC > DST`.
 *   exec    mg.exec of `cat SRC` in the local context, the output streamed
 *           back and dropped, beside `cat SRC | cat > /dev/null`.
 *   mitogen bench/mitogen_files_ref.py with Debian's python3-mitogen: the
 *           child fetches the file with FileService.get(), as Mitogen's
 *           ansible plugin does (push direction only; see the script).
 *
 * Our transfers are windowed, XXH64-checked end to end, fsynced and
 * renamed into place; the floors do none of that.  Files live in a tmpfs
 * (/dev/shm by default) so the disk is not what is measured.  Rounds
 * alternate floor and figure; the best of each is kept.  The sudo and ssh
 * rows need tests/infra up (`bash tests/infra/env.sh up`); without it
 * they are skipped with the reason.  Prints a table and one JSON object;
 * never asserts a time.
 *
 * Usage: bench_files [-s mib] [-k rounds] [-d dir] [-M mitogen_mib]
 *                    [-K mitogen_rounds] [-N (no Mitogen)] [-e infra.env]
 *                    [-m local|sudo|ssh (only that one)] [-F (no floors)]
 *                    [-D push|pull (only that direction)]
 *                    [-w window_kib (mg_file_opts.window; 0: the default)]
 *                    [-j FILE.json (also write the JSON there)]
 *                    [-c FILE.png (chart with gnuplot and bench/chart.gnuplot)]
 * (-m with -F -N makes a quiet loop to profile with perf.)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "mitogen.h"

extern const char *const mg__exec_services[];
extern const char *const mg__files_services[];

enum { M_LOCAL, M_SUDO, M_SSH, NMETHODS };

static const char *const method_names[NMETHODS] = {"local", "sudo", "ssh"};

struct method {
	struct mg_context *c;
	char why[300];         /* why it is not measured */
	char floor_push[2048]; /* shell commands of the floors */
	char floor_pull[2048];
	char setup[1024];    /* the floors' own start-up and teardown */
	double push, pull;   /* best seconds, 0: none */
	double fpush, fpull; /* floors less their start-up */
	double setup_t;      /* best time of setup */
	double mitogen;      /* MiB/s, 0: none */
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int make_file(const char *path, size_t mib)
{
	size_t words = 1024 * 1024 / 8, i, m;
	uint64_t *buf = malloc(1024 * 1024), x = 88172645463325252ULL;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), rc = 0;

	if (fd < 0 || buf == NULL)
		return -1;
	for (m = 0; m < mib && rc == 0; m++) {
		for (i = 0; i < words; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			buf[i] = x;
		}
		if (write(fd, buf, 1024 * 1024) != 1024 * 1024)
			rc = -1;
	}
	fchmod(fd, 0644);
	close(fd);
	free(buf);
	return rc;
}

static double run_sh(const char *cmd)
{
	double t0 = now();

	if (system(cmd) != 0)
		return -1;
	return now() - t0;
}

static double exec_cat(struct mg_context *c, const char *src, uint64_t expect)
{
	struct mg_exec_event ev;
	struct mg_exec_opts o;
	struct mg_exec *job;
	const char *argv[] = {"cat", src, NULL};
	uint64_t got = 0;
	double t0 = now();

	mg_exec_opts_init(&o);
	o.argv = argv;
	if (mg_exec_start(c, &o, &job, NULL, 0) != 0)
		return -1;
	while (mg_exec_next(job, -1, &ev) == 0 && ev.type != MG_EXEC_EXIT)
		got += ev.len;
	mg_exec_free(job);
	return got == expect ? now() - t0 : -1;
}

/* t less its start-up cost; -1 (nothing) when either failed. */
static double less(double t, double setup)
{
	if (t <= 0 || setup < 0 || t - setup <= 0)
		return -1;
	return t - setup;
}

static void best(double *b, double t)
{
	if (t > 0 && (*b <= 0 || t < *b))
		*b = t;
}

static double json_number(const char *doc, const char *key)
{
	char pat[128];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	if ((p = strstr(doc, pat)) == NULL)
		return 0;
	return atof(p + strlen(pat));
}

static void connect_all(struct mg_router *r, struct method *m, bool have_infra, const char *ssh_cfg,
                        const char *user, const char *user2)
{
	const char *ssh_args[] = {"-F", ssh_cfg, NULL};
	struct mg_connect_opts o;
	int i;

	for (i = 0; i < NMETHODS; i++) {
		if ((i != M_LOCAL && !have_infra) || m[i].why[0] != '\0')
			continue;
		mg_connect_opts_init(&o, i == M_LOCAL  ? MG_METHOD_LOCAL
		                         : i == M_SUDO ? MG_METHOD_SUDO
		                                       : MG_METHOD_SSH);
		o.name = method_names[i];
		o.ship_self = i == M_LOCAL;
		if (i == M_SUDO)
			o.username = user2;
		if (i == M_SSH) {
			o.hostname = "127.0.0.1";
			o.username = user;
			o.ssh_args = ssh_args;
		}
		if (mg_connect(r, &o, &m[i].c) != 0)
			snprintf(m[i].why, sizeof(m[i].why), "connect: %s", mg_errdetail());
	}
}

static void run_mitogen(struct method *m, const char *src, const char *base, int rounds,
                        bool have_infra, const char *ssh_cfg, const char *user, const char *user2,
                        char *version, size_t vsize)
{
	char script[600], cmd[4096], doc[8192];
	size_t n = 0;
	FILE *p;
	int i;

	bench_source_path(script, sizeof(script), "mitogen_files_ref.py");
	if (have_infra)
		snprintf(cmd, sizeof(cmd),
		         "/usr/bin/python3 '%s' --src '%s' --dir '%s' --rounds %d --sudo-user %s "
		         "--ssh-host 127.0.0.1 --ssh-user %s --ssh-config '%s'",
		         script, src, base, rounds, user2, user, ssh_cfg);
	else
		snprintf(cmd, sizeof(cmd),
		         "/usr/bin/python3 '%s' --src '%s' --dir '%s' --rounds %d", script, src,
		         base, rounds);
	if ((p = popen(cmd, "r")) == NULL)
		return;
	n = fread(doc, 1, sizeof(doc) - 1, p);
	doc[n] = '\0';
	if (pclose(p) != 0 || strstr(doc, "\"metrics\"") == NULL) {
		fprintf(stderr, "bench_files: the Mitogen half failed: %s\n", cmd);
		return;
	}
	for (i = 0; i < NMETHODS; i++) {
		char key[64];
		snprintf(key, sizeof(key), "%s_push_mib_s", method_names[i]);
		m[i].mitogen = json_number(doc, key);
	}
	{
		const char *v = strstr(doc, "\"mitogen_version\": \"");
		if (v != NULL)
			snprintf(version, vsize, "%.*s", (int)strcspn(v + 20, "\""), v + 20);
	}
}

#define MIBS(t) ((t) > 0 ? bytes / (1024.0 * 1024.0) / (t) : 0.0)
#define RATIO(a, b) ((b) > 0 ? (a) / (b) : 0.0)

/* One cluster of the chart: ours, Mitogen's, the floor and the target
 * (issue #5: 80% of the floor), all MiB/s; "-" for a missing figure. */
static void chart_row(FILE *f, const char *what, double ours, double ref, double floor)
{
	if (ours <= 0 || floor <= 0)
		return; /* not measured: no cluster */
	fprintf(f, "%s\t%.1f\t", what, ours);
	if (ref > 0)
		fprintf(f, "%.1f\t", ref);
	else
		fprintf(f, "-\t");
	fprintf(f, "%.1f\t%.1f\n", floor, 0.8 * floor);
}

/* Writes the figures as a tab-separated table and runs gnuplot on
 * bench/chart.gnuplot with it, as bench_contexts does. */
static void render_chart(const char *out, const struct method *m, double bytes, double exec_t,
                         double pipe_null_t, const char *version)
{
	char dat[] = "/tmp/mg-bench-files-XXXXXX", script[600], cmd[2048], what[64];
	FILE *f;
	int fd, i, rc;

	if ((fd = mkstemp(dat)) < 0 || (f = fdopen(fd, "w")) == NULL) {
		fprintf(stderr, "bench_files: mkstemp: %s: no chart\n", strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	for (i = 0; i < NMETHODS; i++) {
		snprintf(what, sizeof(what), "push, %s", method_names[i]);
		chart_row(f, what, MIBS(m[i].push), m[i].mitogen, MIBS(m[i].fpush));
		snprintf(what, sizeof(what), "pull, %s", method_names[i]);
		chart_row(f, what, MIBS(m[i].pull), 0, MIBS(m[i].fpull));
	}
	chart_row(f, "mg.exec cat, local", MIBS(exec_t), 0, MIBS(pipe_null_t));
	fclose(f);
	bench_source_path(script, sizeof(script), "chart.gnuplot");
	snprintf(cmd, sizeof(cmd),
	         "gnuplot -e \"datafile='%s'; outfile='%s'; refname='Mitogen %s FileService'; "
	         "charttitle='mitogen-c moving one file beside the OS floor, MiB/s (log scale)'; "
	         "targetname='target: 80%% of the floor'; yname='MiB/s'; ymin=1; "
	         "keypos='below horizontal'\" '%s'",
	         dat, out, version, script);
	rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "bench_files: gnuplot failed (status %d): no chart\n", rc);
	else
		fprintf(stderr, "bench_files: chart written to %s\n", out);
	unlink(dat);
}

int main(int argc, char **argv)
{
	const char *dir = "/dev/shm", *env = "/run/mitogen-test/infra.env";
	const char *ssh_cfg = NULL, *user = NULL, *user2 = NULL;
	size_t mib = 1024, ref_mib = 0;
	int rounds = 3, ref_rounds = 1, opt, k, i, lockfd = -1;
	bool mitogen = true, have_infra, floors = true;
	const char *only = NULL, *json_path = NULL, *chart_path = NULL, *dir_only = NULL;
	char *json = NULL;
	size_t json_len = 0;
	FILE *jf;
	double pipe_null_t = 0, exec_t = 0, bytes;
	char src[600], ref_src[600], dst[600], cmd_null[1200], base[512], why[400] = "";
	char version[32] = "?", ssh_cfg_buf[512], user_buf[64], user2_buf[64];
	struct method m[NMETHODS];
	struct mg_router_opts ro;
	struct mg_router *r;
	struct mg_file_result res;
	struct mg_file_opts fo;

	mg_child_main(argc, argv);
	mg_file_opts_init(&fo);
	(void)mg__exec_services;
	(void)mg__files_services;
	while ((opt = getopt(argc, argv, "s:k:d:M:K:Ne:m:Fw:j:c:D:")) != -1) {
		if (opt == 's')
			mib = (size_t)atol(optarg);
		else if (opt == 'k')
			rounds = atoi(optarg);
		else if (opt == 'd')
			dir = optarg;
		else if (opt == 'M')
			ref_mib = (size_t)atol(optarg);
		else if (opt == 'K')
			ref_rounds = atoi(optarg);
		else if (opt == 'N')
			mitogen = false;
		else if (opt == 'e')
			env = optarg;
		else if (opt == 'm')
			only = optarg;
		else if (opt == 'F')
			floors = false;
		else if (opt == 'w')
			fo.window = (size_t)atol(optarg) * 1024;
		else if (opt == 'j')
			json_path = optarg;
		else if (opt == 'c')
			chart_path = optarg;
		else if (opt == 'D')
			dir_only = optarg;
		else
			return 2;
	}
	if (ref_mib == 0)
		ref_mib = mib;
	memset(m, 0, sizeof(m));
	bytes = (double)mib * 1024 * 1024;

	/* Hold tests/infra up while we use it (a shared lock, as a test case
	 * does): a `down` elsewhere waits for us. */
	if ((have_infra = bench_infra_get(env, "MG_INFRA_SSH_CONFIG", ssh_cfg_buf,
	                                  sizeof(ssh_cfg_buf)) != NULL)) {
		lockfd = bench_infra_hold();
		ssh_cfg = ssh_cfg_buf;
		user = bench_infra_get(env, "MG_INFRA_USER", user_buf, sizeof(user_buf));
		user = user ? user : "mgtest";
		user2 = bench_infra_get(env, "MG_INFRA_USER2", user2_buf, sizeof(user2_buf));
		user2 = user2 ? user2 : "mgtest2";
	} else {
		snprintf(why, sizeof(why),
		         "%s: no ssh config (is `bash tests/infra/env.sh up` done?)", env);
	}
	for (i = M_SUDO; !have_infra && i < NMETHODS; i++)
		snprintf(m[i].why, sizeof(m[i].why), "%s", why);
	for (i = 0; only != NULL && i < NMETHODS; i++)
		if (strcmp(only, method_names[i]) != 0)
			snprintf(m[i].why, sizeof(m[i].why), "not asked for (-m %s)", only);

	/* One folder every context's user may write in. */
	snprintf(base, sizeof(base), "%s/mg-bench-files-%ld", dir, (long)getpid());
	if (mkdir(base, 0700) != 0 || chmod(base, 01777) != 0) {
		perror(base);
		return 1;
	}
	snprintf(src, sizeof(src), "%s/src", base);
	snprintf(ref_src, sizeof(ref_src), "%s/src-ref", base);
	snprintf(dst, sizeof(dst), "%s/dst", base);
	snprintf(cmd_null, sizeof(cmd_null), "cat '%s' | cat > /dev/null", src);
	snprintf(m[M_LOCAL].floor_push, sizeof(m[M_LOCAL].floor_push), "cat '%s' | cat > '%s'", src,
	         dst);
	snprintf(m[M_LOCAL].floor_pull, sizeof(m[M_LOCAL].floor_pull), "%s", m[M_LOCAL].floor_push);
	if (have_infra) {
		snprintf(m[M_SUDO].floor_push, sizeof(m[M_SUDO].floor_push),
		         "sudo -u %s sh -c \"cat > '%s'\" < '%s'", user2, dst, src);
		snprintf(m[M_SUDO].floor_pull, sizeof(m[M_SUDO].floor_pull),
		         "sudo -u %s cat '%s' > '%s'", user2, src, dst);
		snprintf(m[M_SSH].floor_push, sizeof(m[M_SSH].floor_push),
		         "ssh -F '%s' %s@127.0.0.1 \"cat > '%s'\" < '%s'", ssh_cfg, user, dst, src);
		snprintf(m[M_SSH].floor_pull, sizeof(m[M_SSH].floor_pull),
		         "ssh -F '%s' %s@127.0.0.1 \"cat '%s'\" > '%s'", ssh_cfg, user, src, dst);
		snprintf(m[M_SUDO].setup, sizeof(m[M_SUDO].setup), "sudo -u %s true", user2);
		snprintf(m[M_SSH].setup, sizeof(m[M_SSH].setup), "ssh -F '%s' %s@127.0.0.1 true",
		         ssh_cfg, user);
	}
	if (make_file(src, mib) != 0) {
		perror("making the source");
		return 1;
	}
	mg_router_opts_init(&ro);
	mg_router_new(&ro, &r);
	connect_all(r, m, have_infra, ssh_cfg, user, user2);
	k = only == NULL || strcmp(only, "local") == 0 ? M_LOCAL
	    : strcmp(only, "sudo") == 0                ? M_SUDO
	                                               : M_SSH;
	if (m[k].c == NULL) {
		fprintf(stderr, "no %s context: %s\n", method_names[k], m[k].why);
		for (i = 0; i < NMETHODS; i++)
			mg_context_free(m[i].c);
		mg_router_free(r);
		unlink(src);
		rmdir(base);
		return 1;
	}
	for (k = 0; k < rounds; k++) {
		for (i = 0; i < NMETHODS; i++) {
			struct method *x = &m[i];
			double t0, setup;

			if (x->c == NULL)
				continue;
			/* Our contexts are connected before the clock starts: the
			 * floors' stream alone is their time less that of
			 * starting and ending the same command doing nothing,
			 * measured beside it. */
			if (dir_only != NULL && strcmp(dir_only, "push") != 0)
				goto pull;
			setup = x->setup[0] != '\0' && floors ? run_sh(x->setup) : 0;
			best(&x->setup_t, setup);
			if (floors)
				best(&x->fpush, less(run_sh(x->floor_push), setup));
			unlink(dst);
			t0 = now();
			if (mg_file_push(x->c, src, dst, &fo, &res) == 0)
				best(&x->push, now() - t0);
			else
				fprintf(stderr, "%s push: %s\n", method_names[i], res.error);
			unlink(dst);
		pull:
			if (dir_only != NULL && strcmp(dir_only, "pull") != 0)
				continue;
			setup = x->setup[0] != '\0' && floors ? run_sh(x->setup) : 0;
			best(&x->setup_t, setup);
			if (floors)
				best(&x->fpull, less(run_sh(x->floor_pull), setup));
			unlink(dst);
			t0 = now();
			if (mg_file_pull(x->c, src, dst, &fo, &res) == 0)
				best(&x->pull, now() - t0);
			else
				fprintf(stderr, "%s pull: %s\n", method_names[i], res.error);
			unlink(dst);
		}
		if (floors)
			best(&pipe_null_t, run_sh(cmd_null));
		if (m[M_LOCAL].c != NULL)
			best(&exec_t, exec_cat(m[M_LOCAL].c, src, (uint64_t)bytes));
	}
	for (i = 0; i < NMETHODS; i++)
		mg_context_free(m[i].c);
	mg_router_free(r);
	if (mitogen) {
		const char *from = src;
		if (ref_mib != mib) {
			make_file(ref_src, ref_mib);
			from = ref_src;
		}
		run_mitogen(m, from, base, ref_rounds, have_infra, ssh_cfg, user, user2, version,
		            sizeof(version));
		unlink(ref_src);
	}
	unlink(src);
	rmdir(base);
	if (lockfd >= 0)
		close(lockfd);

	printf("bench_files: %zu MiB, %d rounds, best of each, files in %s\n", mib, rounds, dir);
	printf("  floors: local `cat | cat`; sudo `sudo -u %s cat`; ssh `ssh %s@127.0.0.1 cat`\n",
	       user2 ? user2 : "-", user ? user : "-");
	printf("  (same sshd, same ssh_config and cipher as the ssh context); a floor's time is\n"
	       "  less that of its command doing nothing (`sudo true`: %.0f ms, `ssh true`: %.0f "
	       "ms),\n  as our contexts are connected before the clock starts\n\n",
	       m[M_SUDO].setup_t * 1000, m[M_SSH].setup_t * 1000);
	printf("%-30s %10s %12s %8s\n", "what", "MiB/s", "floor MiB/s", "ratio");
	for (i = 0; i < NMETHODS; i++) {
		char name[64];
		if (m[i].push <= 0 && m[i].why[0] != '\0') {
			printf("%-30s skipped: %s\n", method_names[i], m[i].why);
			continue;
		}
		snprintf(name, sizeof(name), "mg_file_push, %s", method_names[i]);
		printf("%-30s %10.0f %12.0f %7.2fx\n", name, MIBS(m[i].push), MIBS(m[i].fpush),
		       RATIO(MIBS(m[i].push), MIBS(m[i].fpush)));
		snprintf(name, sizeof(name), "mg_file_pull, %s", method_names[i]);
		printf("%-30s %10.0f %12.0f %7.2fx\n", name, MIBS(m[i].pull), MIBS(m[i].fpull),
		       RATIO(MIBS(m[i].pull), MIBS(m[i].fpull)));
	}
	printf("%-30s %10.0f %12.0f %7.2fx\n", "mg.exec cat, local", MIBS(exec_t),
	       MIBS(pipe_null_t), RATIO(MIBS(exec_t), MIBS(pipe_null_t)));
	for (i = 0; mitogen && i < NMETHODS; i++) {
		char name[64];
		snprintf(name, sizeof(name), "Mitogen %s FileService, %s", version,
		         method_names[i]);
		if (m[i].mitogen > 0)
			printf("%-30s %10.1f %12.0f %7.2fx  (%zu MiB, %d round%s)\n", name,
			       m[i].mitogen, MIBS(m[i].fpush),
			       RATIO(m[i].mitogen, MIBS(m[i].fpush)), ref_mib, ref_rounds,
			       ref_rounds == 1 ? "" : "s");
		else
			printf("%-30s not measured (see stderr)\n", name);
	}

	/* The JSON document: on stdout, and in -j FILE. */
	if ((jf = open_memstream(&json, &json_len)) == NULL)
		return 1;
	fprintf(jf, "{\"bench\":\"files\",\"mib\":%zu,\"rounds\":%d", mib, rounds);
	for (i = 0; i < NMETHODS; i++)
		fprintf(jf,
		        ",\"%s\":{\"push_mib_s\":%.1f,\"pull_mib_s\":%.1f,\"floor_push_mib_s\":%."
		        "1f,"
		        "\"floor_pull_mib_s\":%.1f,\"push_ratio\":%.3f,\"pull_ratio\":%.3f,"
		        "\"mitogen_push_mib_s\":%.1f,\"floor_setup_ms\":%.1f}",
		        method_names[i], MIBS(m[i].push), MIBS(m[i].pull), MIBS(m[i].fpush),
		        MIBS(m[i].fpull), RATIO(MIBS(m[i].push), MIBS(m[i].fpush)),
		        RATIO(MIBS(m[i].pull), MIBS(m[i].fpull)), m[i].mitogen,
		        m[i].setup_t * 1000);
	fprintf(jf,
	        ",\"exec_cat_mib_s\":%.1f,\"cat_pipe_null_mib_s\":%.1f,\"mitogen_mib\":%zu,"
	        "\"mitogen_rounds\":%d,\"mitogen_version\":\"%s\",\"version\":\"%s\"}\n",
	        MIBS(exec_t), MIBS(pipe_null_t), ref_mib, ref_rounds, version, MG_VERSION_STRING);
	fclose(jf);
	printf("\n%s", json);
	if (json_path != NULL &&
	    ((jf = fopen(json_path, "w")) == NULL || fputs(json, jf) < 0 || fclose(jf) != 0))
		fprintf(stderr, "bench_files: %s: %s\n", json_path, strerror(errno));
	free(json);
	if (chart_path != NULL)
		render_chart(chart_path, m, bytes, exec_t, pipe_null_t, version);
	return 0;
}
