/*
 * calls.h: what the call machinery shares inside the context layer.
 *
 * A CALL_FUNCTION message's payload is: an array header of 3, the function
 * name (str), the chain id (int, 0 for none), then the arguments as one
 * array.  A reply is the function's return values, or one ext 3 Error.
 */
#ifndef MG_CALLS_H
#define MG_CALLS_H

#include "context/context.h"

#define MG_ERR_NOFUNC "mitogen.NoSuchFunction"
#define MG_ERR_ARGS "mitogen.ArgumentError"
#define MG_ERR_CRASH "mitogen.Crash"
#define MG_ERR_CALL "mitogen.CallError"

/* The function that forgets a chain's failure (handled by the dispatcher). */
#define MG_FORGET_CHAIN "mg.forget_chain"

struct mg_call {
	struct mg_router *router;
	struct mg_msg *msg;   /* the CALL_FUNCTION message; borrowed */
	const char *function; /* NUL-terminated copy owned by msg */
	int64_t chain;
	struct mg_msg *reply; /* values set by mg_call_return() */
	bool failed;
	bool deferred; /* the function replies later, by itself */
	char err_type[64];
	char err_message[512];
};

/* The running function will send its reply itself, later (to the call's
 * src_id and reply_to, read before returning): the dispatcher sends none
 * when it returns 0.  Thread: the dispatcher, inside the function. */
void mg__call_defer(struct mg_call *call);
/* Returns "(" fmt ")": in small when it fits in size bytes, else in memory
 * the caller frees with mg__free() when it differs from small; NULL on
 * -ENOMEM.  Call arguments travel as one array. */
char *mg__call_wrap_fmt(const char *fmt, char *small, size_t size);

/* error.c */
int mg__error_code_for(const char *type);
void mg__error_set_local(int code, const char *type, const char *context, const char *function,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));
bool mg__reply_is_error(const struct mg_msg *reply);
/* Fills mg_last_error() from an error reply; returns its code. */
int mg__error_from_reply(const struct mg_msg *reply);
/* Appends one ext 3 Error value. */
int mg__error_encode(struct mg_buf *b, const char *type, const char *message, const char *context,
                     const char *function);

/* dispatch.c: the child's call queue and the thread that runs it. */
int mg__dispatch_start(struct mg_router *r);
/* Runs calls on this thread until mg__dispatch_stop(). */
void mg__dispatch_run(void);
void mg__dispatch_stop(void);

/* crash.c: reports a crash inside a call as that call's error. */
void mg__crash_install(struct mg_router *r);
void mg__crash_enter(uint32_t src, uint32_t reply_to, const char *function);
void mg__crash_leave(void);

/* logfwd.c */
/* Master and gateways: accept FORWARD_LOG from children. */
int mg__logfwd_listen(struct mg_router *r);
/* Child: send every record at or above level to the parent. */
void mg__logfwd_start(struct mg_router *r, int level);

/* stdio.c: turns the child's fds 1 and 2 into pipes read as log records. */
int mg__stdio_capture(struct mg_router *r);

/* context.c: the handlers and the disconnect hook every process that
 * has or is a child context needs, added once per router. */
int mg__context_services(struct mg_router *r);

/* child.c: told of every lost context; ends this process's context when
 * it is the parent that was lost.  No-op outside a child.  Broker thread. */
void mg__child_lost(struct mg_router *r, uint32_t id);

/* ids.c */
int mg__ids_listen(struct mg_router *r);

#endif
