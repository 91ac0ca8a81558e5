/*
 * main.c: the mitogen command line.  `mitogen VERB [options] [args]`: the
 * verb is looked up, the options shared by every verb and the verb's own
 * are parsed with getopt_long (for run and call stopping at the first
 * operand, so that a command needs no "--"; put, get and ping take options
 * after their operands too), the targets are expanded, and pool.c
 * does the work.  Every malformed command line gets one message on stderr
 * and exit status 2 before anything is started.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const struct verb *const verbs[] = {&verb_run, &verb_put, &verb_get, &verb_call, &verb_ping};
#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

static const char common_help[] =
        "Targets:\n"
        "  -H, -w, --hosts LIST    hosts, comma-separated, with ranges: web[01-20],db1;\n"
        "                          user@host sets the user for one host (repeatable)\n"
        "      --hostfile FILE     one LIST per line, # comments; - reads stdin\n"
        "  -x, --exclude LIST      leave these out (names as given, or their host part;\n"
        "                          repeatable)\n"
        "      --local N           N local contexts on this machine (the default when\n"
        "                          no hosts are given is one: --local 1)\n"
        "  -l, --user USER         remote user for ssh\n"
        "  -p, --port PORT         ssh port\n"
        "  -i, --identity FILE     ssh identity (private key) file (first hop only)\n"
        "  -o OPTION               an ssh -o option, e.g. -o Compression=yes (repeatable)\n"
        "      --ssh-config FILE   ssh -F FILE (first hop only: ssh on a gateway uses\n"
        "                          its own configuration)\n"
        "      --host-key POLICY   enforce (default), accept-new or ignore\n"
        "      --cache             keep the agent on each target (~/.cache/mitogen-c)\n"
        "                          so later runs send nothing but a handshake\n"
        "      --via [USER@]HOST   reach the targets through this ssh gateway; repeat\n"
        "                          for a chain (the first is connected first)\n"
        "      --sudo[=USER]       then become USER (default root) with sudo\n"
        "      --su[=USER]         ... with su instead (USER's password)\n"
        "      --doas[=USER]       ... with doas instead (one of the three at most)\n"
        "      --ask-pass          ask for the ssh password on the terminal\n"
        "      --ask-become-pass   ask for the sudo, su or doas password on the terminal\n"
        "                          (--ask-sudo-pass is the same; or set\n"
        "                          MITOGEN_SSH_PASSWORD / MITOGEN_BECOME_PASSWORD;\n"
        "                          passwords are never taken on the command line)\n"
        "  -f, --fanout N          at most N targets at once (default 64)\n"
        "  -t, --connect-timeout S seconds allowed for each connect (default 30)\n"
        "Output:\n"
        "  -b, --gather            gather identical output (as dshbak -c)\n"
        "  -N, --no-prefix         streamed lines without the 'target: ' prefix\n"
        "      --json              one JSON object per target per line\n"
        "      --no-progress       no progress line (shown only when stderr is a\n"
        "                          terminal; colours follow NO_COLOR)\n"
        "  -h, --help              this help\n"
        "Exit status: 0 all targets succeeded; 1 some target failed (command exit\n"
        "status, call error, copy error); 2 bad command line; 3 some target could not\n"
        "be reached (wins over 1); 130 interrupted (the unfinished targets are named);\n"
        "killed by SIGPIPE when nothing reads the output.  run -S: the largest status\n"
        "of the commands instead.\n";

enum {
	LO_HOSTFILE = 256,
	LO_LOCAL,
	LO_SSH_CONFIG,
	LO_HOST_KEY,
	LO_VIA,
	LO_SUDO,
	LO_SU,
	LO_DOAS,
	LO_ASK_PASS,
	LO_ASK_BECOME_PASS,
	LO_JSON,
	LO_NO_PROGRESS,
	LO_CACHE,
	LO_STDIN,
	LO_OUTDIR,
	LO_ERRDIR,
	LO_VERSION,
};

static const struct option long_opts[] = {
        {"hosts", required_argument, NULL, 'H'},
        {"hostfile", required_argument, NULL, LO_HOSTFILE},
        {"exclude", required_argument, NULL, 'x'},
        {"local", required_argument, NULL, LO_LOCAL},
        {"user", required_argument, NULL, 'l'},
        {"port", required_argument, NULL, 'p'},
        {"identity", required_argument, NULL, 'i'},
        {"ssh-config", required_argument, NULL, LO_SSH_CONFIG},
        {"host-key", required_argument, NULL, LO_HOST_KEY},
        {"via", required_argument, NULL, LO_VIA},
        {"sudo", optional_argument, NULL, LO_SUDO},
        {"su", optional_argument, NULL, LO_SU},
        {"doas", optional_argument, NULL, LO_DOAS},
        {"ask-pass", no_argument, NULL, LO_ASK_PASS},
        {"ask-become-pass", no_argument, NULL, LO_ASK_BECOME_PASS},
        {"ask-sudo-pass", no_argument, NULL, LO_ASK_BECOME_PASS},
        {"fanout", required_argument, NULL, 'f'},
        {"connect-timeout", required_argument, NULL, 't'},
        {"timeout", required_argument, NULL, 'T'},
        {"count", required_argument, NULL, 'c'},
        {"recursive", no_argument, NULL, 'r'},
        {"gather", no_argument, NULL, 'b'},
        {"maxrc", no_argument, NULL, 'S'},
        {"no-prefix", no_argument, NULL, 'N'},
        {"json", no_argument, NULL, LO_JSON},
        {"no-progress", no_argument, NULL, LO_NO_PROGRESS},
        {"cache", no_argument, NULL, LO_CACHE},
        {"stdin", no_argument, NULL, LO_STDIN},
        {"outdir", required_argument, NULL, LO_OUTDIR},
        {"errdir", required_argument, NULL, LO_ERRDIR},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, LO_VERSION},
        {NULL, 0, NULL, 0},
};

static const char *verb_name = NULL;

int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mitogen%s%s: ", verb_name ? " " : "", verb_name ? verb_name : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'mitogen %s%s--help' for more information.\n",
	        verb_name ? verb_name : "", verb_name ? " " : "");
	return CLI_EXIT_USAGE;
}

static void main_help(FILE *f)
{
	size_t i;

	fprintf(f, "Usage: mitogen VERB [options] [arguments]\n"
	           "Run commands, call functions and copy files on many hosts at once.\n\n"
	           "Verbs:\n");
	for (i = 0; i < NVERBS; i++)
		fprintf(f, "  %-6s %s\n", verbs[i]->name, verbs[i]->summary);
	fprintf(f, "\n'mitogen VERB --help' describes a verb and its options;\n"
	           "'mitogen --version' prints the version.\n\n"
	           "Examples:\n"
	           "  mitogen run --local 3 -- uname -a\n"
	           "  mitogen run -H 'web[01-20],db1' -l admin -b -- uptime\n"
	           "  mitogen put -H 'web[01-20]' app.conf /etc/app.conf\n"
	           "  mitogen call -H db1 --json mg.sysinfo\n\n"
	           "Exit status: 0 all targets succeeded, 1 some failed, 2 bad command line,\n"
	           "3 some could not be reached, 130 interrupted (run -S: the commands'\n"
	           "largest).\n");
}

static void verb_help(const struct verb *v)
{
	printf("Usage: mitogen %s [options] %s\n%s\n\n%s", v->name, v->synopsis, v->summary,
	       v->help);
	printf("%s", common_help);
}

/* Parses a count in [min, max]; -1 when it is not one. */
static long parse_long(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	return v;
}

/* Parses seconds ("30", "0.5") into milliseconds; -1 when invalid. */
static int parse_seconds(const char *s)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v > 0) || v > 86400.0 * 365)
		return -1;
	return (int)(v * 1000 + 0.5) > 0 ? (int)(v * 1000 + 0.5) : 1;
}

/* Reads a secret from the terminal with echo off.  Caller frees. */
static char *read_secret(const char *prompt)
{
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	struct termios old, quiet;
	char buf[1024];
	size_t n = 0;
	char c;

	if (fd < 0)
		return NULL;
	if (tcgetattr(fd, &old) != 0) {
		close(fd);
		return NULL;
	}
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	/* Echo goes off before the prompt shows, so nothing typed in answer
	 * to it is echoed or flushed. */
	if (tcsetattr(fd, TCSAFLUSH, &quiet) != 0 || write(fd, prompt, strlen(prompt)) < 0) {
		tcsetattr(fd, TCSAFLUSH, &old);
		close(fd);
		return NULL;
	}
	while (read(fd, &c, 1) == 1 && c != '\n' && c != '\r')
		if (n + 1 < sizeof(buf))
			buf[n++] = c;
	buf[n] = '\0';
	tcsetattr(fd, TCSAFLUSH, &old);
	if (write(fd, "\n", 1) < 0) {
		/* Only the echo of a newline is lost. */
	}
	close(fd);
	char *s = xstrdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return s;
}

/* Takes a password from the environment and removes it from there, so
 * the children the tool starts do not inherit it. */
static void free_secret(char *s)
{
	if (s != NULL) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

const char *become_name(int method)
{
	return method == MG_METHOD_SU ? "su" : method == MG_METHOD_DOAS ? "doas" : "sudo";
}

/* --sudo, --su, --doas: one of them, with an optional user. */
static int set_become(struct cli *cli, int method, const char *user)
{
	if (cli->become != 0 && cli->become != method)
		return usage_error("--%s and --%s do not go together", become_name(cli->become),
		                   become_name(method));
	if (user != NULL && *user == '\0')
		return usage_error("--%s= wants a user name", become_name(method));
	cli->become = method;
	cli->become_user = user;
	return 0;
}

static char *env_secret(const char *name)
{
	const char *v = getenv(name);
	char *s;

	if (v == NULL)
		return NULL;
	s = xstrdup(v);
	unsetenv(name);
	return s;
}

static void free_cli(struct cli *cli)
{
	targets_free(cli);
	free(cli->via);
	free(cli->ssh_args);
	free(cli->command);
	sb_free(&cli->input);
	free(cli->dst_buf);
	sb_free(&cli->packed_args);
	free_secret(cli->ssh_password);
	free_secret(cli->become_password);
}

/* The options only some verbs take, and the OPT_ bit that allows each. */
static const struct {
	int code; /* as getopt_long returns it */
	unsigned opt;
	const char *name; /* for the error */
} verb_options[] = {
        {'T', OPT_TIMEOUT, "-T"},
        {'c', OPT_COUNT, "-c"},
        {'r', OPT_RECURSIVE, "-r"},
        {'S', OPT_MAXRC, "-S"},
        {LO_STDIN, OPT_STDIN, "--stdin"},
        {LO_OUTDIR, OPT_OUTDIR, "--outdir"},
        {LO_ERRDIR, OPT_OUTDIR, "--errdir"},
};

/* 0 when verb v takes option c, else the usage error's status. */
static int verb_takes(const struct verb *v, int c)
{
	for (size_t i = 0; i < sizeof(verb_options) / sizeof(verb_options[0]); i++)
		if (verb_options[i].code == c && !(v->opts & verb_options[i].opt))
			return usage_error("unknown option '%s'", verb_options[i].name);
	return 0;
}

/* --outdir DIR (stream 0) or --errdir DIR (1), DIR in optarg: a folder
 * that is there already. */
static int set_outdir(struct cli *cli, int stream)
{
	const char *name = stream ? "--errdir" : "--outdir";
	struct stat st;

	if (stat(optarg, &st) != 0)
		return usage_error("%s %s: %s", name, optarg, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return usage_error("%s %s: not a folder", name, optarg);
	cli->outdir[stream] = optarg;
	return 0;
}

static int parse(struct cli *cli, int argc, char **argv)
{
	const struct verb *v = cli->verb;
	char err[512];
	bool ask_pass = false, any_hosts = false, hostfile_stdin = false;
	const char *ask_become = NULL, *optstring;
	char *pw;
	int c, rc;
	long n;

	opterr = 0;
	optind = 1;
	/* "+": stop at the first operand; ":": report a missing value as ':'. */
	optstring = (v->opts & OPT_ANYWHERE) ? ":H:w:x:l:p:i:o:f:t:T:c:rbNSh"
	                                     : "+:H:w:x:l:p:i:o:f:t:T:c:rbNSh";
	while ((c = getopt_long(argc, argv, optstring, long_opts, NULL)) != -1) {
		if ((rc = verb_takes(v, c)) != 0)
			return rc;
		switch (c) {
		case 'H':
		case 'w':
			any_hosts = true;
			if (targets_expand(optarg, targets_add_host, cli, err, sizeof(err)) != 0)
				return usage_error("%s", err);
			break;
		case LO_HOSTFILE:
			any_hosts = true;
			hostfile_stdin |= strcmp(optarg, "-") == 0;
			if (targets_file(optarg, targets_add_host, cli, err, sizeof(err)) != 0)
				return usage_error("%s", err);
			break;
		case 'x':
			if (targets_expand(optarg, targets_add_excluded, cli, err, sizeof(err)) !=
			    0)
				return usage_error("%s", err);
			break;
		case LO_LOCAL:
			if ((n = parse_long(optarg, 1, 10000)) < 0)
				return usage_error(
				        "--local wants a count from 1 to 10000, not '%s'", optarg);
			cli->nlocal = (int)n;
			break;
		case 'l':
			cli->user = optarg;
			break;
		case 'p':
			if ((n = parse_long(optarg, 1, 65535)) < 0)
				return usage_error("bad port '%s'", optarg);
			cli->port = (int)n;
			break;
		case 'i':
			cli->identity = optarg;
			break;
		case 'o':
			cli->ssh_args =
			        xrealloc(cli->ssh_args, (cli->nssh_args + 3) * sizeof(char *));
			cli->ssh_args[cli->nssh_args++] = "-o";
			cli->ssh_args[cli->nssh_args++] = optarg;
			cli->ssh_args[cli->nssh_args] = NULL;
			break;
		case LO_SSH_CONFIG:
			cli->ssh_config = optarg;
			break;
		case LO_HOST_KEY:
			if (strcmp(optarg, "enforce") == 0)
				cli->host_key_policy = MG_HOST_KEY_ENFORCE;
			else if (strcmp(optarg, "accept-new") == 0)
				cli->host_key_policy = MG_HOST_KEY_ACCEPT_NEW;
			else if (strcmp(optarg, "ignore") == 0)
				cli->host_key_policy = MG_HOST_KEY_IGNORE;
			else
				return usage_error(
				        "--host-key wants enforce, accept-new or ignore, "
				        "not '%s'",
				        optarg);
			break;
		case LO_VIA:
			if (*optarg == '\0' || strchr(optarg, ',') || strchr(optarg, '['))
				return usage_error("--via wants one [USER@]HOST, not '%s'", optarg);
			cli->via = xrealloc(cli->via, (cli->nvia + 1) * sizeof(char *));
			cli->via[cli->nvia++] = optarg;
			break;
		case LO_SUDO:
		case LO_SU:
		case LO_DOAS:
			rc = set_become(cli,
			                c == LO_SUDO ? MG_METHOD_SUDO
			                : c == LO_SU ? MG_METHOD_SU
			                             : MG_METHOD_DOAS,
			                optarg);
			if (rc != 0)
				return rc;
			break;
		case LO_ASK_PASS:
			ask_pass = true;
			break;
		case LO_ASK_BECOME_PASS:
			ask_become = argv[optind - 1]; /* as spelt, for the error */
			break;
		case 'f':
			if ((n = parse_long(optarg, 1, 4096)) < 0)
				return usage_error(
				        "--fanout wants a count from 1 to 4096, not '%s'", optarg);
			cli->fanout = (int)n;
			break;
		case 't':
			if ((cli->connect_timeout_ms = parse_seconds(optarg)) < 0)
				return usage_error("bad --connect-timeout '%s' (seconds)", optarg);
			break;
		case 'T':
			if ((cli->timeout_ms = parse_seconds(optarg)) < 0)
				return usage_error("bad --timeout '%s' (seconds)", optarg);
			break;
		case 'c':
			if ((n = parse_long(optarg, 1, 1000000)) < 0)
				return usage_error("bad --count '%s'", optarg);
			cli->count = (int)n;
			break;
		case 'r':
			cli->recursive = true;
			break;
		case 'b':
			cli->gather = true;
			break;
		case 'S':
			cli->maxrc = true;
			break;
		case 'N':
			cli->no_prefix = true;
			break;
		case LO_JSON:
			cli->json = true;
			break;
		case LO_NO_PROGRESS:
			cli->progress = 0;
			break;
		case LO_CACHE:
			cli->cache = true;
			break;
		case LO_OUTDIR:
		case LO_ERRDIR:
			if ((rc = set_outdir(cli, c == LO_ERRDIR)) != 0)
				return rc;
			break;
		case LO_STDIN:
			cli->stdin_input = true;
			break;
		case 'h':
			verb_help(v);
			exit(0);
		case LO_VERSION:
			printf("mitogen %s\n", MG_VERSION_STRING);
			exit(0);
		case ':':
			return usage_error("option '%s' needs a value", argv[optind - 1]);
		default:
			if (optopt != 0)
				return usage_error("unknown option '-%c'", optopt);
			return usage_error("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (cli->gather && cli->json)
		return usage_error("-b and --json do not go together");
	if (cli->stdin_input && hostfile_stdin)
		return usage_error("--stdin and --hostfile - both want standard input");
	if (cli->nlocal > 0 && any_hosts)
		return usage_error("--local and hosts do not go together");
	if (!any_hosts)
		targets_add_local(cli, cli->nlocal > 0 ? cli->nlocal : 1);
	targets_prune(cli);
	if (cli->ntargets == 0)
		return usage_error("--exclude left no target");
	if ((c = v->args(cli, argc - optind, argv + optind)) != 0)
		return c;
	cli->ssh_password = env_secret("MITOGEN_SSH_PASSWORD");
	/* MITOGEN_SUDO_PASSWORD is the older name; both leave the environment. */
	cli->become_password = env_secret("MITOGEN_SUDO_PASSWORD");
	if ((pw = env_secret("MITOGEN_BECOME_PASSWORD")) != NULL) {
		free_secret(cli->become_password);
		cli->become_password = pw;
	}
	if (ask_pass) {
		free(cli->ssh_password);
		if ((cli->ssh_password = read_secret("SSH password: ")) == NULL)
			return usage_error("--ask-pass needs a terminal (or set "
			                   "MITOGEN_SSH_PASSWORD)");
	}
	if (ask_become != NULL) {
		char prompt[32];

		snprintf(prompt, sizeof(prompt), "%s password: ", become_name(cli->become));
		free_secret(cli->become_password);
		if ((cli->become_password = read_secret(prompt)) == NULL)
			return usage_error("%s needs a terminal (or set MITOGEN_BECOME_PASSWORD)",
			                   ask_become);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct cli cli;
	size_t i;
	int rc;

	if (argc < 2)
		return usage_error("no verb given (one of run, put, get, call, ping)");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		if (argc > 2)
			for (i = 0; i < NVERBS; i++)
				if (strcmp(argv[2], verbs[i]->name) == 0) {
					verb_help(verbs[i]);
					return 0;
				}
		main_help(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("mitogen %s (libmitogen %s, protocol %d)\n", MG_VERSION_STRING,
		       MG_VERSION_STRING, MG_PROTOCOL_VERSION);
		return 0;
	}
	for (i = 0; i < NVERBS; i++)
		if (strcmp(argv[1], verbs[i]->name) == 0)
			cli.verb = verbs[i];
	if (cli.verb == NULL) {
		if (argv[1][0] == '-')
			return usage_error("'%s' before the verb: write mitogen VERB [options]",
			                   argv[1]);
		return usage_error("unknown verb '%s' (one of run, put, get, call, ping)", argv[1]);
	}
	verb_name = cli.verb->name;
	cli.fanout = 64;
	cli.connect_timeout_ms = 30000;
	cli.progress = -1;
	cli.count = 1;
	cli.host_key_policy = MG_HOST_KEY_ENFORCE;
	if ((rc = parse(&cli, argc - 1, argv + 1)) == 0)
		rc = pool_run(&cli);
	free_cli(&cli);
	if (rc == CLI_EXIT_OUTPUT_CLOSED) {
		/* The targets are stopped: now go as a pipeline's writer goes. */
		signal(SIGPIPE, SIG_DFL);
		raise(SIGPIPE);
	}
	return rc;
}
