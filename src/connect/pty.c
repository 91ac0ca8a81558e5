/*
 * pty.c: pseudo-terminals for the methods whose programs ask for a secret
 * (ssh's password and passphrase prompts, sudo's), and the answering of
 * that prompt.
 *
 * Such programs read secrets from their controlling terminal (/dev/tty),
 * never from stdin, so the child gets the pty's slave as its controlling
 * terminal while stdin/stdout stay the channel.  su is the exception: PAM's
 * text conversation (misc_conv) prompts on stderr and reads the answer from
 * stdin, so for it the connector watches the stderr pipe and types into the
 * channel, before the first stage has said anything there.
 *
 * The secret is typed once: a prompt seen after the answer means it was
 * refused, and retrying would only lock the account sooner.  A prompt when
 * there is no secret fails at once instead of waiting for the deadline.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "connect/connect.h"

int mg__pty_open(int *masterp, int *slavep)
{
	char name[64];
	int m, s;

	m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (m < 0)
		return -errno;
	if (grantpt(m) != 0 || unlockpt(m) != 0 || ptsname_r(m, name, sizeof(name)) != 0)
		goto fail;
	if ((s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0)
		goto fail;
	*masterp = m;
	*slavep = s;
	return 0;
fail:
	s = -errno;
	close(m);
	return s;
}

struct mg_prompt {
	char *secret; /* wiped and freed with the prompt; NULL: none given */
	size_t len;
	const char *const *marks; /* lower-case substrings that end a prompt */
	bool answered;
	char seen[256]; /* the end of what the pty printed since the answer */
	size_t nseen;
};

int mg__prompt_new(const char *secret, const char *const *marks, struct mg_prompt **pp)
{
	struct mg_prompt *p = mg__calloc(1, sizeof(*p));

	if (p == NULL)
		return -ENOMEM;
	p->marks = marks;
	if (secret == NULL) {
		*pp = p;
		return 0;
	}
	p->len = strlen(secret);
	if ((p->secret = mg__malloc(p->len + 2)) == NULL) {
		mg__free(p);
		return -ENOMEM;
	}
	/* The line discipline (canonical mode) hands the line over at NL. */
	memcpy(p->secret, secret, p->len);
	p->secret[p->len++] = '\n';
	*pp = p;
	return 0;
}

void mg__prompt_free(struct mg_prompt *p)
{
	if (p == NULL)
		return;
	if (p->secret != NULL)
		explicit_bzero(p->secret, p->len);
	mg__free(p->secret);
	explicit_bzero(p, sizeof(*p));
	mg__free(p);
}

bool mg__prompt_answered(const struct mg_prompt *p)
{
	return p != NULL && p->answered;
}

/* True when the text seen so far holds one of the prompt marks. */
static bool prompt_seen(const struct mg_prompt *p)
{
	size_t i;

	for (i = 0; p->marks[i] != NULL; i++)
		if (strstr(p->seen, p->marks[i]) != NULL)
			return true;
	return false;
}

int mg__prompt_feed(struct mg_prompt *p, int fd, const char *data, size_t n)
{
	size_t i, keep;
	ssize_t w;

	if (p == NULL)
		return 0;
	/* Keep the last bytes, lower-cased, so a prompt split across reads
	 * is still found. */
	for (i = 0; i < n; i++) {
		if (p->nseen == sizeof(p->seen) - 1) {
			keep = sizeof(p->seen) / 2;
			memmove(p->seen, p->seen + p->nseen - keep, keep);
			p->nseen = keep;
		}
		p->seen[p->nseen++] = (char)tolower((unsigned char)data[i]);
	}
	p->seen[p->nseen] = '\0';
	if (!prompt_seen(p))
		return 0;
	if (p->answered)
		return MG_EREFUSED;
	if (p->secret == NULL)
		return -ENOKEY;
	/* A tty or an empty socket takes a short line at once; a partial
	 * write is an error.  A socket whose peer is gone must not raise
	 * SIGPIPE. */
	while ((w = send(fd, p->secret, p->len, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (w < 0 && errno == ENOTSOCK)
		while ((w = write(fd, p->secret, p->len)) < 0 && errno == EINTR)
			;
	p->answered = true;
	p->nseen = 0;
	p->seen[0] = '\0';
	return w == (ssize_t)p->len ? 0 : w < 0 ? -errno : -EIO;
}
