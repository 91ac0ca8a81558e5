/*
 * sudo.c: contexts as another user on the same host.  sudo runs the first
 * stage (bootstrap.c) as the target user, with the channel on its stdin
 * and stdout.
 *
 * sudo's prompt is forced to a marker with -p, so the locale and the
 * sudoers' passprompt settings do not matter; the connector types the
 * password at it on a pty (sudo reads passwords from the terminal) and a
 * second prompt means it was refused.  Without a password sudo runs with
 * -n, so a rule that wants one fails at once instead of waiting.
 *
 * preserve_env is -E (sudoers must allow it: SETENV), login_shell is -i:
 * sudo then runs the command through the target's login shell, with every
 * character but letters, digits, '_', '-' and '$' escaped.  So a "$d" of
 * the first stage would be expanded by that shell, too early, and the
 * stage goes disguised: its '$' and '`' as '@' and '^', turned back by tr
 * and run by eval in the sh that sudo starts (whose stdin is the channel).
 */
#include <errno.h>
#include <string.h>

#include "connect/connect.h"

#define SUDO_PROMPT "MGSUDO-PROMPT:"

static const char *const sudo_marks[] = {"mgsudo-prompt:", NULL};

static const struct mg_err_text sudo_errors[] = {
        {"incorrect password", "authentication failed"},
        {"a password is required", "authentication failed: a password is required"},
        {"is not in the sudoers file", "not allowed by sudoers"},
        {"is not allowed to execute", "not allowed by sudoers"},
        {"not allowed to preserve the environment",
         "not allowed by sudoers (preserve environment)"},
        {"unknown user", "unknown user"},
};

MG_EXPLAIN_FN(sudo_explain, sudo_errors)

/* The first stage as the command for sudo -i (see above); caller frees. */
static int login_stage(char **outp)
{
	static const char pre[] = "eval \"`printf %s '", post[] = "'|tr '@^' '\\044\\140'`\"";
	const char *s = mg__bootstrap_script();
	size_t n = strlen(s), i;
	char *out, *p;

	if (strpbrk(s, "@^'") != NULL)
		return -EINVAL;
	if ((out = mg__malloc(sizeof(pre) + n + sizeof(post))) == NULL)
		return -ENOMEM;
	p = out + sizeof(pre) - 1;
	memcpy(out, pre, sizeof(pre) - 1);
	for (i = 0; i < n; i++)
		*p++ = s[i] == '$' ? '@' : s[i] == '`' ? '^' : s[i];
	memcpy(p, post, sizeof(post));
	*outp = out;
	return 0;
}

static int sudo_argv(const struct mg_connect_opts *o, char ***argvp)
{
	char *stage = NULL;
	size_t n = 0;
	int r;

	r = mg__argv_addn(argvp, &n, o->sudo_path != NULL ? o->sudo_path : "sudo", NULL);
	if (r == 0 && o->password == NULL)
		r = mg__argv_addn(argvp, &n, "-n", NULL);
	if (r == 0)
		r = mg__argv_addn(argvp, &n, "-p", SUDO_PROMPT, "-u",
		                  o->username != NULL ? o->username : "root", NULL);
	if (r == 0 && o->preserve_env)
		r = mg__argv_addn(argvp, &n, "-E", NULL);
	if (r == 0 && o->login_shell && (r = login_stage(&stage)) == 0)
		r = mg__argv_addn(argvp, &n, "-i", NULL);
	if (r == 0)
		r = mg__argv_addl(argvp, &n, o->sudo_args);
	if (r == 0)
		r = mg__argv_addn(argvp, &n, "--", "sh", "-c",
		                  stage != NULL ? stage : mg__bootstrap_script(), NULL);
	mg__free(stage);
	return r;
}

void mg__sudo_start(struct mg_context *c, const struct mg_connect_opts *o, mg_conn_done_cb done,
                    void *done_arg)
{
	struct mg_cmd cmd = {.marks = sudo_marks, .explain = sudo_explain};

	mg__cmd_start_or_fail(c, o, &cmd, sudo_argv(o, &cmd.argv), done, done_arg);
}
