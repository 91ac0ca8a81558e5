/*
 * exec.h: the pieces of the exec service (exec_spawn.c starts a process
 * from a spec, exec_serve.c runs it as "mg.exec", exec_client.c is the
 * caller side).  Internal to src/services.
 */
#ifndef MG_SVC_EXEC_H
#define MG_SVC_EXEC_H

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

#endif
