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
        {"unknown user", "unknown user"},
};

static const char *sudo_explain(const char *err)
{
	return mg__explain_text(sudo_errors, sizeof(sudo_errors) / sizeof(sudo_errors[0]), err);
}

static int sudo_argv(const struct mg_connect_opts *o, char ***argvp)
{
	size_t n = 0, i;
	int r;

#define ADD(s)                                               \
	do {                                                 \
		if ((r = mg__argv_add(argvp, &n, (s))) != 0) \
			return r;                            \
	} while (0)
	ADD(o->sudo_path != NULL ? o->sudo_path : "sudo");
	if (o->password == NULL)
		ADD("-n");
	ADD("-p");
	ADD(SUDO_PROMPT);
	ADD("-u");
	ADD(o->username != NULL ? o->username : "root");
	for (i = 0; o->sudo_args != NULL && o->sudo_args[i] != NULL; i++)
		ADD(o->sudo_args[i]);
	ADD("--");
	ADD("sh");
	ADD("-c");
	ADD(mg__bootstrap_script());
#undef ADD
	return 0;
}

void mg__sudo_start(struct mg_context *c, const struct mg_connect_opts *o, mg_conn_done_cb done,
                    void *done_arg)
{
	struct mg_cmd cmd = {.marks = sudo_marks, .explain = sudo_explain};
	int r;

	if ((r = sudo_argv(o, &cmd.argv)) != 0)
		goto fail;
	if (o->password != NULL && (cmd.secret = mg__strdup(o->password)) == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	mg__cmd_start(c, o, &cmd, done, done_arg);
	return;
fail:
	mg__cmd_fini(&cmd);
	mg__context_set_failed(c, r, "%s: %s", c->name, mg_strerror(r));
	if (done != NULL)
		done(done_arg, c, r, mg_strerror(r));
}
