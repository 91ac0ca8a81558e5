/*
 * fmt.h: the format-string engine behind mg_msg_append() and mg_msg_read().
 * The letters are documented in include/mitogen.h; this is how the engine
 * treats them.
 *
 *  - A format is checked whole before any argument is taken or any byte
 *    written: unknown letters, unbalanced or crossed brackets, a '{ }' with
 *    an odd number of items, nesting deeper than MG_FMT_MAX_DEPTH, and 'h'
 *    (or 's' when unpacking) without the hook it needs are MG_EFORMAT.
 *  - '(' and '{' count the items directly inside them; 'a' and 'm' count as
 *    one item there (the container they open), and their elements are the
 *    items that follow, so "(s a) ii" is ["x", [1, 2]].
 *  - 's' unpacks a str holding no NUL byte (MG_EDECODE otherwise, since a
 *    C string would silently lose its tail); 'S' takes any str.
 *  - Unpacking into a NULL out-parameter checks the value and discards it
 *    (no copy is made, no sender created).
 */
#ifndef MG_WIRE_FMT_H
#define MG_WIRE_FMT_H

#include "wire/msgpack.h"

/* Brackets nested deeper than this are MG_EFORMAT. */
#define MG_FMT_MAX_DEPTH 32

/* How the engine reaches the objects of the layers above it. */
struct mg_fmt_hooks {
	void *arg;
	/* 'h' pack: turns the const struct mg_sender * argument into
	 * (context id, handle).  Returns 0 or an error, which pack returns. */
	int (*sender_ref)(void *arg, const void *sender, uint32_t *ctxp, uint32_t *handlep);
	/* 'h' unpack: makes a new sender object from (ctx, handle), stored
	 * into the struct mg_sender ** argument.  Returns 0 or an error. */
	int (*sender_new)(void *arg, uint32_t ctx, uint32_t handle, void **senderp);
	/* Undoes sender_new when a later step fails. */
	void (*sender_free)(void *arg, void *sender);
	/* 's' unpack: returns a NUL-terminated copy of n bytes that lives as
	 * long as the message; NULL means -ENOMEM. */
	char *(*str_copy)(void *arg, const char *p, size_t n);
};

/* Appends fmt's values, taken from *ap, to b.  Returns 0, MG_EFORMAT,
 * MG_ELIMIT (b's maximum, or a length or count over 2^32-1), MG_EDECODE
 * (a 'v' argument that is not exactly one complete value no deeper than
 * MG_MP_MAX_DEPTH), -EINVAL (a NULL view with a non-zero length, a NULL
 * timespec or sender, a tv_nsec outside 0..999999999), -ENOMEM, or what
 * hooks->sender_ref returned.  On failure b->len is as it was (nothing
 * appended).  On success *ap is advanced past the arguments used (on
 * failure, by an unspecified amount: use a copy).  hooks may be NULL when
 * fmt has no 'h'.  Borrows everything. */
int mg__fmt_vpack(struct mg_buf *b, const char *fmt, va_list *ap, const struct mg_fmt_hooks *hooks);

/* Reads fmt's values from data[*offp..len), advancing *offp on success.
 * Returns 0, MG_EFORMAT, MG_EDECODE (the data does not match fmt), -ENOMEM,
 * or what a hook returned.  On failure nothing is written to any
 * out-parameter, *offp is unchanged, and every sender made is freed again;
 * strings copied by str_copy before the failure stay with the message.
 * The hooks are called only once the whole of fmt has matched the data.
 * Views ('S', 'y', 'v') point into data.  *ap is advanced on success. */
int mg__fmt_vunpack(const uint8_t *data, size_t len, size_t *offp, const char *fmt, va_list *ap,
                    const struct mg_fmt_hooks *hooks);

/* Shared by fmt.c and fmt_unpack.c.  mg__fmt_scan() checks fmt as said
 * above (without the hooks) and counts its 's' and 'h' letters;
 * mg__fmt_items() counts the items directly inside the bracket that opens
 * just before p, in a format mg__fmt_scan() accepted. */
int mg__fmt_scan(const char *fmt, unsigned *n_strp, unsigned *n_senderp);
size_t mg__fmt_items(const char *p);
static inline bool mg__fmt_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

#endif
