/*
 * su.c: contexts as another user through su, which runs the first stage
 * (bootstrap.c) with the target user's shell: `su [-l] [-m] [args] -c
 * <first stage> -- <user>`.
 *
 * su authenticates through PAM's text conversation, which prints the
 * prompt on stderr and reads the answer from stdin, not from a terminal.
 * So su gets no pty: the connector watches its stderr pipe for the prompt
 * and types the password into the channel, which is su's stdin.  Nothing
 * else is sent there before the first stage speaks, so su's read takes
 * the password line alone.
 *
 * su's prompt cannot be chosen, and PAM translates it, so it is recognised
 * in the languages below (the translations Linux-PAM ships; ASCII letters
 * lower-cased, as the prompt matcher compares them).  A prompt without a
 * password fails at once; su does not ask twice, it prints PAM's
 * "Authentication failure" (translated too) and exits, and the connect
 * fails with that text and "authentication failed" in front.  A password
 * is never retried.
 */
#include "connect/connect.h"

static const char *const su_marks[] = {
        "password:",      /* en, it, and what other PAM modules print */
        "passwort:",      /* de */
        "mot de passe :", /* fr */
        "mot de passe:",
        "contraseña:",                                                  /* es */
        "senha:",                                                       /* pt_BR */
        "palavra-passe:",                                               /* pt */
        "\xd0\x9f\xd0\xb0\xd1\x80\xd0\xbe\xd0\xbb\xd1\x8c:",            /* ru, uk: Пароль: */
        "\xd0\xbf\xd0\xb0\xd1\x80\xd0\xbe\xd0\xbb\xd1\x8c:",            /* пароль: */
        "\xe3\x83\x91\xe3\x82\xb9\xe3\x83\xaf\xe3\x83\xbc\xe3\x83\x89", /* ja: パスワード */
        "\xe5\xaf\x86\xe7\xa0\x81",                                     /* zh_CN: 密码 */
        "\xe5\xaf\x86\xe7\xa2\xbc",                                     /* zh_TW: 密碼 */
        "\xec\x95\x94\xed\x98\xb8:",                                    /* ko: 암호: */
        "has\xc5\x82o:",                                                /* pl: Hasło: */
        "heslo:",                                                       /* cs */
        "wachtwoord:",                                                  /* nl */
        "l\xc3\xb6senord:",                                             /* sv: Lösenord: */
        "parola:",                                                      /* tr */
        NULL,
};

/* su's complaints; PAM's "Authentication failure" as Linux-PAM translates
 * it, then util-linux su's own messages. */
static const struct mg_err_text su_errors[] = {
        {"Authentication failure", "authentication failed"},
        {"Fehler bei Authentifizierung", "authentication failed"}, /* de */
        {"chec de l\xe2\x80\x99"
         "authentification",
         "authentication failed"},                                        /* fr */
        {"Fallo de autenticaci\xc3\xb3n", "authentication failed"},       /* es */
        {"Falha de autentica\xc3\xa7\xc3\xa3o", "authentication failed"}, /* pt */
        {"Autenticazione non riuscita", "authentication failed"},         /* it */
        /* ru: Сбой при проверке подлинности */
        {"\xd0\xa1\xd0\xb1\xd0\xbe\xd0\xb9 \xd0\xbf\xd1\x80\xd0\xb8 "
         "\xd0\xbf\xd1\x80\xd0\xbe\xd0\xb2\xd0\xb5\xd1\x80\xd0\xba\xd0\xb5",
         "authentication failed"},
        {"\xe8\xaa\x8d\xe8\xa8\xbc\xe5\xa4\xb1\xe6\x95\x97", "authentication failed"},  /* ja */
        {"\xe9\x89\xb4\xe5\xae\x9a\xe6\x95\x85\xe9\x9a\x9c", "authentication failed"},  /* zh_CN */
        {"\xe9\xa9\x97\xe8\xad\x89\xe5\xa4\xb1\xe6\x95\x97", "authentication failed"},  /* zh_TW */
        {"\xec\x9d\xb8\xec\xa6\x9d \xec\x8b\xa4\xed\x8c\xa8", "authentication failed"}, /* ko */
        {"Uwierzytelnienie si\xc4\x99 nie powiod\xc5\x82o", "authentication failed"},   /* pl */
        {"Authenticatiefout", "authentication failed"},                                 /* nl */
        {"Autentiseringsfel", "authentication failed"},                                 /* sv */
        {"Selh\xc3\xa1n\xc3\xad autentizace", "authentication failed"},                 /* cs */
        {"Yetkilendirme hatas\xc4\xb1", "authentication failed"},                       /* tr */
        {"su: Sorry", "authentication failed"},
        {"incorrect password", "authentication failed"},
        {"does not exist", "unknown user"},
        {"unknown user", "unknown user"},
        {"must be run from a terminal", "su needs a terminal"},
};

MG_EXPLAIN_FN(su_explain, su_errors)

static int su_argv(const struct mg_connect_opts *o, char ***argvp)
{
	size_t n = 0;
	int r;

	r = mg__argv_addn(argvp, &n, o->su_path != NULL ? o->su_path : "su", NULL);
	if (r == 0 && o->login_shell)
		r = mg__argv_addn(argvp, &n, "-l", NULL);
	if (r == 0 && o->preserve_env)
		r = mg__argv_addn(argvp, &n, "-m", NULL);
	if (r == 0)
		r = mg__argv_addl(argvp, &n, o->su_args);
	/* "--": a user name cannot be taken for an option. */
	if (r == 0)
		r = mg__argv_addn(argvp, &n, "-c", mg__bootstrap_script(), "--",
		                  o->username != NULL ? o->username : "root", NULL);
	return r;
}

void mg__su_start(struct mg_context *c, const struct mg_connect_opts *o, mg_conn_done_cb done,
                  void *done_arg)
{
	struct mg_cmd cmd = {.marks = su_marks, .explain = su_explain, .prompt_stderr = true};

	mg__cmd_start_or_fail(c, o, &cmd, su_argv(o, &cmd.argv), done, done_arg);
}
