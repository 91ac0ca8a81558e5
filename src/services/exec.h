/*
 * exec.h: the pieces of the exec service (exec_spawn.c starts a process
 * from a spec, exec_serve.c runs it as "mg.exec", exec_client.c is the
 * caller side).  Internal to src/services.
 */
#ifndef MG_SVC_EXEC_H
#define MG_SVC_EXEC_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "services/svc.h"

/* What the caller asked for, decoded from the call and owned (copied out
 * of the call message: the job outlives the call). */
struct exec_spec {
	char **argv;      /* NULL-ended; argv[0] as given */
	char *path;       /* the program after the PATH search */
	char **envp;      /* the full environment for the process */
	char *cwd;        /* or NULL */
	void *stdin_data; /* inline stdin, or NULL */
	size_t stdin_len;
	bool stdin_stream;
	bool pty;
	int64_t timeout_ms;
	uint64_t window;
	uint64_t collect; /* > 0: one reply at the end, this much of each output */
};

struct exec_proc {
	pid_t pid;  /* also the process group id */
	int in_fd;  /* our end of its stdin, or -1 */
	int out_fd; /* its stdout (the pty master with pty) */
	int err_fd; /* its stderr, or -1 with pty */
};

/* Decodes the encoded spec map v (n bytes) into s (zeroed first).  On
 * failure the call is failed with the reason and -1 returned; s must be
 * released with exec_spec_fini() either way. */
int mg__exec_spec_read(struct mg_call *call, const void *v, size_t n, struct exec_spec *s);
void mg__exec_spec_fini(struct exec_spec *s);

/* Starts the process in a new session (so its group can be killed as a
 * whole).  0, or -errno with *whatp naming what failed (the program or the
 * folder; borrowed from s). */
int mg__exec_spawn(const struct exec_spec *s, struct exec_proc *p, const char **whatp);

/* A running command, served without threads of its own (exec_serve.c
 * starts it; exec_loop.c watches it). */
struct exec_job {
	struct exec_spec spec;
	struct exec_proc proc;
	struct mg_sender *events, *in_acks;
	struct mg_receiver *ctl_rx, *in_rx; /* in_rx: NULL when collected */
	/* A collected run: the deferred reply, and the output kept so far. */
	struct mg_sender *reply;
	struct exec_output {
		char *data;
		size_t len;
		uint64_t total;
	} out[2];
	int pidfd;   /* readable once the process exits; -1: polled */
	int stop_fd; /* eventfd: the loop stops the stdin thread */
	atomic_int refs;
	pthread_mutex_t lock; /* guards the three below */
	uint64_t acked;       /* output bytes the caller has consumed */
	bool gone;            /* the caller went away: discard output */
	bool reaped;          /* the pid may be reused: never signal it again */
	/* The loop thread's alone. */
	uint64_t sent;
	int64_t deadline, grace; /* 0: none */
	bool timed_out, exited, paused, polled;
	struct exec_watch {
		struct exec_job *job;
		int kind;
	} w[3];
	/* On the loop's list from the hand-over until the exit is sent. */
	struct exec_job *prev, *next;
	/* On the control thread's list while ctl_rx is in its select. */
	struct exec_job *cprev, *cnext;
};

/* Signals the job's process group, unless it was reaped.  Thread: any. */
void mg__exec_kill(struct exec_job *j, int sig);

/* Drops a reference; the last frees the job.  Thread: any. */
void mg__exec_unref(struct exec_job *j);

/* Starts the shared loop and control threads once per process.  0 or
 * -errno.  Thread: any. */
int mg__exec_loop_start(void);

/* Hands a started job (mg__exec_loop_start() having succeeded) to the
 * shared loop, which streams its output, ends
 * it at its timeout, reaps it, sends the exit event and closes its
 * receivers; the loop takes one reference, the control thread another
 * (acknowledgements, kill requests, the caller going away).  A job whose
 * control cannot be watched is killed, so it never runs unwatched.  Takes
 * the caller's reference: j may be freed before this returns, so neither
 * it nor its caller touches j after the hand-over.  Thread: any. */
void mg__exec_loop_add(struct exec_job *j);

/* Wakes the loop to look at paused jobs again.  Thread: any. */
void mg__exec_loop_wake(void);

#endif
