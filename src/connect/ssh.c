/*
 * ssh.c: contexts on other hosts through the system's OpenSSH client, so
 * that the user's ~/.ssh/config, ProxyJump, agent and known_hosts all
 * apply.  The remote command is the first stage (bootstrap.c); ssh's stdin
 * and stdout are the channel.
 *
 * Without a password ssh runs with BatchMode, so it fails at once rather
 * than waiting for a prompt nobody answers.  With one, ssh gets a pty as
 * its controlling terminal (it reads passwords and passphrases from
 * /dev/tty only) and the connector types the password at the first
 * prompt; a second prompt means it was refused.  ControlMaster is off: a
 * master started by us would outlive the context.
 *
 * Failures are told apart by ssh's own messages, which go to its stderr
 * (LogLevel ERROR keeps them) and end up in the error text whole.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connect/connect.h"

extern char **environ;

/* What ends ssh's password and passphrase prompts, lower-cased. */
static const char *const ssh_marks[] = {"password:", "passphrase for", "password for", NULL};

/* ssh's messages, first match wins: its stderr keeps the details. */
static const struct mg_err_text ssh_errors[] = {
        {"Permission denied (", "authentication failed"},
        {"Permission denied, please try again", "authentication failed"},
        {"Too many authentication failures", "authentication failed"},
        {"REMOTE HOST IDENTIFICATION HAS CHANGED", "host key changed"},
        {"Host key verification failed", "host key unknown or changed"},
        {"Connection refused", "connection refused"},
        {"No route to host", "host unreachable"},
        {"Network is unreachable", "host unreachable"},
        {"Could not resolve hostname", "unknown host name"},
        {"timed out", "timed out"},
        {"Connection closed", "connection closed by the remote host"},
        /* The remote shell's own complaints: no sh, a noexec /tmp. */
        {": not found", "the remote program failed to start"},
        {": Permission denied", "the remote program failed to start"},
};

MG_EXPLAIN_FN(ssh_explain, ssh_errors)

/* Appends "-o name=value". */
static int add_opt(char ***argvp, size_t *np, const char *name, const char *value)
{
	char buf[256];
	int r;

	snprintf(buf, sizeof(buf), "%s=%s", name, value);
	if ((r = mg__argv_add(argvp, np, "-o")) != 0)
		return r;
	return mg__argv_add(argvp, np, buf);
}

/* This process's environment without what would send ssh's prompt
 * elsewhere than our pty (an askpass program on a display). */
static int env_for_prompt(char ***envp)
{
	static const char *const drop[] = {
	        "DISPLAY=", "SSH_ASKPASS=", "SSH_ASKPASS_REQUIRE=", NULL};
	size_t n = 0, i, j;
	int r;

	for (i = 0; environ != NULL && environ[i] != NULL; i++) {
		for (j = 0; drop[j] != NULL; j++)
			if (strncmp(environ[i], drop[j], strlen(drop[j])) == 0)
				break;
		if (drop[j] == NULL && (r = mg__argv_add(envp, &n, environ[i])) != 0)
			return r;
	}
	if (*envp == NULL && (*envp = mg__calloc(1, sizeof(char *))) == NULL)
		return -ENOMEM;
	return 0;
}

static int ssh_argv(const struct mg_connect_opts *o, char ***argvp)
{
	static const char *const policy[] = {"yes", "accept-new", "no"};
	char num[32];
	size_t n = 0, i;
	int r = 0;

#define ADD(s)                                               \
	do {                                                 \
		if ((r = mg__argv_add(argvp, &n, (s))) != 0) \
			return r;                            \
	} while (0)
#define OPT(k, v)                                            \
	do {                                                 \
		if ((r = add_opt(argvp, &n, (k), (v))) != 0) \
			return r;                            \
	} while (0)
	ADD(o->ssh_path != NULL ? o->ssh_path : "ssh");
	ADD("-T");
	if (o->username != NULL) {
		ADD("-l");
		ADD(o->username);
	}
	if (o->port > 0) {
		snprintf(num, sizeof(num), "%d", o->port);
		ADD("-p");
		ADD(num);
	}
	if (o->identity_file != NULL) {
		ADD("-i");
		ADD(o->identity_file);
	}
	OPT("BatchMode", o->password != NULL ? "no" : "yes");
	OPT("ControlMaster", "no");
	OPT("StrictHostKeyChecking", policy[o->host_key_policy]);
	if (o->host_key_policy == MG_HOST_KEY_IGNORE) {
		/* Otherwise a changed key still disables password logins. */
		OPT("UserKnownHostsFile", "/dev/null");
		OPT("GlobalKnownHostsFile", "/dev/null");
	}
	snprintf(num, sizeof(num), "%d", (o->connect_timeout_ms + 999) / 1000);
	OPT("ConnectTimeout", num);
	if (o->compression)
		OPT("Compression", "yes");
	if (o->keepalive_s > 0) {
		snprintf(num, sizeof(num), "%d", o->keepalive_s);
		OPT("ServerAliveInterval", num);
		OPT("ServerAliveCountMax", "3");
	}
	for (i = 0; o->ssh_args != NULL && o->ssh_args[i] != NULL; i++)
		ADD(o->ssh_args[i]);
	/* "--": a host name cannot be taken for an option. */
	ADD("--");
	ADD(o->hostname);
	ADD(mg__bootstrap_command());
#undef ADD
#undef OPT
	return 0;
}

void mg__ssh_start(struct mg_context *c, const struct mg_connect_opts *o, mg_conn_done_cb done,
                   void *done_arg)
{
	struct mg_cmd cmd = {.marks = ssh_marks, .explain = ssh_explain};
	int r;

	if ((r = ssh_argv(o, &cmd.argv)) == 0 && o->password != NULL)
		r = env_for_prompt(&cmd.envp);
	mg__cmd_start_or_fail(c, o, &cmd, r, done, done_arg);
}
