/*
 * exec_serve.c: "mg.exec", run a command in this context.
 *
 *   mg.exec(spec, events, stdin_acks) -> (pid, control, stdin)
 *
 * The call returns as soon as the process runs, so the context's
 * dispatcher is free for other calls (or other commands) meanwhile.  The
 * shared threads of exec_loop.c then stream its output, take the caller's
 * acknowledgements and kill requests, enforce the timeout and send the
 * exit status.  A job with stdin has one thread of its own, which writes
 * the caller's stdin chunks to the process and acknowledges them, so stdin
 * is windowed too.  Acks and stdin travel on separate handles: a process
 * that does not read its stdin must not stop the acks that let its output
 * flow.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "services/exec.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434 /* the same number on every architecture */
#endif

const char *const mg__exec_services[] = {"mg.exec", NULL};

/* Writes all of p to the non-blocking stdin pipe, waiting for room or for
 * the loop to say stop.  0, -EPIPE, or MG_ECLOSED when told to stop. */
static int write_all(struct exec_job *j, const uint8_t *p, size_t n)
{
	struct pollfd pf[2];
	sigset_t pipe_set;
	struct timespec zero = {0, 0};
	ssize_t w;

	while (n > 0) {
		w = write(j->proc.in_fd, p, n);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno != EAGAIN) {
			/* SIGPIPE is blocked on this thread: take the pending one
			 * so it is never delivered to the process. */
			sigemptyset(&pipe_set);
			sigaddset(&pipe_set, SIGPIPE);
			sigtimedwait(&pipe_set, NULL, &zero);
			return -EPIPE;
		}
		pf[0] = (struct pollfd){.fd = j->proc.in_fd, .events = POLLOUT};
		pf[1] = (struct pollfd){.fd = j->stop_fd, .events = POLLIN};
		if (poll(pf, 2, -1) > 0 && pf[1].revents != 0)
			return MG_ECLOSED;
	}
	return 0;
}

static void *stdin_main(void *arg)
{
	struct exec_job *j = arg;
	sigset_t pipe_set;
	int64_t total = 0, tag;
	struct mg_msg *m;
	const void *p;
	size_t n;
	int rc = 0;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
	if (j->spec.stdin_data != NULL)
		rc = write_all(j, j->spec.stdin_data, j->spec.stdin_len);
	while (rc == 0 && j->spec.stdin_stream && mg_receiver_get(j->in_rx, -1, &m) == 0) {
		if (mg_msg_read(m, "ai", &n, &tag) != 0 || tag == EXEC_IN_EOF) {
			mg_msg_free(m);
			break;
		}
		if (tag == EXEC_IN_DATA && mg_msg_read(m, "y", &p, &n) == 0) {
			rc = write_all(j, p, n);
			total = rc == 0 ? total + (int64_t)n : -1;
			/* The ack tells the caller's window this much left its
			 * hands; -1 says the process closed its stdin. */
			mg_sender_sendf(j->in_acks, "(i)", total);
		}
		mg_msg_free(m);
	}
	close(j->proc.in_fd);
	j->proc.in_fd = -1;
	mg__exec_unref(j);
	return NULL;
}

void mg__exec_unref(struct exec_job *j)
{
	if (atomic_fetch_sub(&j->refs, 1) != 1)
		return;
	mg_receiver_free(j->ctl_rx);
	mg_receiver_free(j->in_rx);
	mg_sender_free(j->events);
	mg_sender_free(j->in_acks);
	mg_sender_free(j->reply);
	free(j->out[0].data);
	free(j->out[1].data);
	if (j->proc.out_fd >= 0)
		close(j->proc.out_fd);
	if (j->proc.err_fd >= 0)
		close(j->proc.err_fd);
	if (j->proc.in_fd >= 0)
		close(j->proc.in_fd);
	if (j->pidfd >= 0)
		close(j->pidfd);
	if (j->stop_fd >= 0)
		close(j->stop_fd);
	mg__exec_spec_fini(&j->spec);
	pthread_mutex_destroy(&j->lock);
	free(j);
}

MG_EXPORT_AS("mg.exec", exec_call)
static int exec_call(struct mg_call *call)
{
	struct mg_router *r = mg_call_router(call);
	struct mg_sender *ctl = NULL, *in = NULL;
	const void *spec;
	const char *what;
	struct exec_job *j;
	size_t n;
	int rc;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		return mg_call_fail(call, "MemoryError", "out of memory");
	pthread_mutex_init(&j->lock, NULL);
	atomic_init(&j->refs, 1);
	j->proc = (struct exec_proc){.pid = -1, .in_fd = -1, .out_fd = -1, .err_fd = -1};
	j->pidfd = j->stop_fd = -1;
	if (mg_call_args(call, "vhh", &spec, &n, &j->events, &j->in_acks) != 0)
		goto fail;
	if (mg__exec_spec_read(call, spec, n, &j->spec) != 0)
		goto fail;
	/* The threads that will watch the process first: a command never
	 * starts that nothing could watch. */
	rc = mg__exec_loop_start();
	if (rc == 0)
		rc = mg_receiver_new(r, mg_sender_context(j->events), MG_POLICY_ANY, &j->ctl_rx);
	/* A collected run replies once, at the end, with the status and the
	 * output: one message back instead of the reply, the output events
	 * and the exit event.  It takes no stdin stream and no acks. */
	if (rc == 0 && j->spec.collect > 0 && !j->spec.stdin_stream)
		rc = mg_call_defer(call, &j->reply);
	if (rc == 0 && j->reply == NULL)
		rc = mg_receiver_new(r, mg_sender_context(j->events), MG_POLICY_ANY, &j->in_rx);
	if (rc == 0 && (j->spec.stdin_stream || j->spec.stdin_data != NULL) &&
	    (j->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		rc = -errno;
	if (rc == 0 && j->reply == NULL)
		rc = mg_receiver_to_sender(j->ctl_rx, &ctl);
	if (rc == 0 && j->reply == NULL)
		rc = mg_receiver_to_sender(j->in_rx, &in);
	if (rc != 0) {
		mg_call_fail(call, "OSError", "cannot set up the job: %s", mg_strerror(rc));
		goto fail;
	}
	if ((rc = mg__exec_spawn(&j->spec, &j->proc, &what)) != 0) {
		mg__svc_fail_errno(call, -rc, what);
		goto fail;
	}
	/* Readable the moment the process exits (Linux 5.3+); without one the
	 * loop polls. */
	j->pidfd = (int)syscall(SYS_pidfd_open, j->proc.pid, 0);
	rc = 0;
	if (j->reply == NULL)
		rc = mg_call_return(call, "ihh", (int64_t)j->proc.pid, ctl, in);
	mg_sender_free(ctl);
	mg_sender_free(in);
	/* From here on the process runs: whatever fails, it must be reaped. */
	if (j->proc.in_fd >= 0) {
		atomic_fetch_add(&j->refs, 1);
		if (mg__svc_thread(stdin_main, j) != 0) {
			atomic_fetch_sub(&j->refs, 1);
			close(j->proc.in_fd);
			j->proc.in_fd = -1;
		}
	}
	mg__exec_loop_add(j);
	return rc;
fail:
	mg_sender_free(ctl);
	mg_sender_free(in);
	mg__exec_unref(j);
	return -1;
}
