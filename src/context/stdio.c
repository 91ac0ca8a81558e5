/*
 * stdio.c: a context's stdout and stderr become pipes that the broker reads
 * line by line, each line a log record ("stdout" or "stderr" logger, INFO)
 * tagged with the context's name.  So output from user code reaches the
 * master and can never corrupt the channel.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "context/calls.h"

#define LINE_MAX_BYTES 4096

struct capture {
	struct mg_watch watch;
	struct mg_broker *broker;
	const char *logger;
	char line[LINE_MAX_BYTES];
	size_t len;
};

static struct capture captures[2];

static void emit(struct capture *c)
{
	while (c->len > 0 && (c->line[c->len - 1] == '\n' || c->line[c->len - 1] == '\r'))
		c->len--;
	c->line[c->len] = '\0';
	mg_log(MG_LOG_INFO, c->logger, "%s", c->line);
	c->len = 0;
}

static void on_output(struct mg_watch *w, uint32_t events)
{
	struct capture *c = w->owner;
	char buf[4096];
	ssize_t n = read(w->fd, buf, sizeof(buf));
	ssize_t i;

	if (n <= 0) {
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (c->len > 0)
			emit(c);
		mg__watch_del(c->broker, w);
		close(w->fd);
		return;
	}
	for (i = 0; i < n; i++) {
		c->line[c->len++] = buf[i];
		if (buf[i] == '\n' || c->len == LINE_MAX_BYTES - 1)
			emit(c);
	}
}

struct setup {
	struct mg_router *r;
	int rc;
};

static void setup_cb(void *arg)
{
	struct setup *s = arg;
	static const char *const loggers[2] = {"stdout", "stderr"};
	int i, p[2], devnull;

	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (devnull < 0 || dup2(devnull, 0) < 0) {
		s->rc = -errno;
		return;
	}
	close(devnull);
	for (i = 0; i < 2; i++) {
		struct capture *c = &captures[i];

		if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0 || dup2(p[1], i + 1) < 0) {
			s->rc = -errno;
			return;
		}
		close(p[1]);
		/* The write end must block like an ordinary stdout would. */
		fcntl(i + 1, F_SETFL, fcntl(i + 1, F_GETFL) & ~O_NONBLOCK);
		c->logger = loggers[i];
		c->broker = s->r->broker;
		c->watch = (struct mg_watch){.fd = p[0], .cb = on_output, .owner = c};
		if ((s->rc = mg__watch_add(c->broker, &c->watch, EPOLLIN)) != 0)
			return;
	}
}

int mg__stdio_capture(struct mg_router *r)
{
	struct setup s = {r, 0};
	int rc;

	if ((rc = mg__broker_call(r->broker, setup_cb, &s)) != 0)
		return rc;
	setvbuf(stdout, NULL, _IOLBF, 0);
	return s.rc;
}
