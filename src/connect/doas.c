/*
 * doas.c: contexts as another user through OpenBSD's doas (Debian's
 * opendoas): `doas [-n] [args] -u <user> -- sh -c <first stage>`.
 *
 * doas reads the password from its controlling terminal, so as for sudo
 * the child gets a pty and the connector types the password at the prompt,
 * "doas (caller@host) password:"; doas's prompt is not translated.  A
 * wrong password makes doas print "Authentication failed" and exit (it
 * never asks twice; a second prompt would be taken as a refusal anyway).
 * Without a password doas runs with -n, so a rule that wants one fails at
 * once.  doas has no flags for the environment or a login shell: doas.conf
 * decides (keepenv, setenv).
 */
#include "connect/connect.h"

static const char *const doas_marks[] = {"password:", NULL};

static const struct mg_err_text doas_errors[] = {
        {"Authentication failed", "authentication failed"},
        {"Authentication required", "authentication failed: a password is required"},
        {"Operation not permitted", "not allowed by doas.conf"},
        {"unknown user", "unknown user"},
        {"a tty is required", "doas needs a terminal"},
};

MG_EXPLAIN_FN(doas_explain, doas_errors)

static int doas_argv(const struct mg_connect_opts *o, char ***argvp)
{
	size_t n = 0;
	int r;

	r = mg__argv_addn(argvp, &n, o->doas_path != NULL ? o->doas_path : "doas", NULL);
	if (r == 0 && o->password == NULL)
		r = mg__argv_addn(argvp, &n, "-n", NULL);
	if (r == 0)
		r = mg__argv_addl(argvp, &n, o->doas_args);
	if (r == 0)
		r = mg__argv_addn(argvp, &n, "-u", o->username != NULL ? o->username : "root", "--",
		                  "sh", "-c", mg__bootstrap_script(), NULL);
	return r;
}

void mg__doas_start(struct mg_context *c, const struct mg_connect_opts *o, mg_conn_done_cb done,
                    void *done_arg)
{
	struct mg_cmd cmd = {.marks = doas_marks, .explain = doas_explain};

	mg__cmd_start_or_fail(c, o, &cmd, doas_argv(o, &cmd.argv), done, done_arg);
}
