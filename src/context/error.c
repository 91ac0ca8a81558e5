/*
 * error.c: remote errors.  A failed call's reply is one MessagePack ext 3
 * value (type, message, context, function); the caller turns it into a
 * struct mg_error kept per thread, and a code by its type.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "context/calls.h"
#include "wire/msgpack.h"

static _Thread_local struct mg_error last;

const struct mg_error *mg_last_error(void)
{
	return &last;
}

static const struct {
	const char *type;
	int code;
} kinds[] = {
        {MG_ERR_NOFUNC, MG_ENOFUNC},
        {MG_ERR_ARGS, MG_EARGS},
        {MG_ERR_CRASH, MG_ECRASH},
};

int mg__error_code_for(const char *type)
{
	size_t i;

	for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i].type, type) == 0)
			return kinds[i].code;
	return MG_EREMOTE;
}

static void copy_view(char *dst, size_t cap, const struct mg_mp_str *v)
{
	size_t n = v->n < cap - 1 ? v->n : cap - 1;

	if (n)
		memcpy(dst, v->p, n);
	dst[n] = '\0';
}

void mg__error_set_local(int code, const char *type, const char *context, const char *function,
                         const char *fmt, ...)
{
	va_list ap;

	last.code = code;
	snprintf(last.type, sizeof(last.type), "%s", type);
	snprintf(last.context, sizeof(last.context), "%s", context ? context : "");
	snprintf(last.function, sizeof(last.function), "%s", function ? function : "");
	va_start(ap, fmt);
	vsnprintf(last.message, sizeof(last.message), fmt, ap);
	va_end(ap);
	mg__set_errdetail("%s: %s: %s (in %s)", last.context, last.type, last.message,
	                  last.function);
}

bool mg__reply_is_error(const struct mg_msg *reply)
{
	struct mg_mpr r;
	int8_t type;

	mg__mpr_init(&r, mg_msg_data(reply), mg_msg_len(reply));
	return mg__mpr_peek_ext(&r, &type) == 0 && type == MG_MP_EXT_ERROR;
}

int mg__error_from_reply(const struct mg_msg *reply)
{
	struct mg_mp_error e;
	struct mg_mpr r;

	mg__mpr_init(&r, mg_msg_data(reply), mg_msg_len(reply));
	if (mg__mpr_error(&r, &e) != 0) {
		mg__error_set_local(MG_EDECODE, "mitogen.ProtocolError", "", "",
		                    "malformed error reply");
		return MG_EDECODE;
	}
	copy_view(last.type, sizeof(last.type), &e.type);
	copy_view(last.message, sizeof(last.message), &e.message);
	copy_view(last.context, sizeof(last.context), &e.context);
	copy_view(last.function, sizeof(last.function), &e.function);
	last.code = mg__error_code_for(last.type);
	mg__set_errdetail("%s: %s: %s (in %s)", last.context, last.type, last.message,
	                  last.function);
	return last.code;
}

int mg__error_encode(struct mg_buf *b, const char *type, const char *message, const char *context,
                     const char *function)
{
	struct mg_mp_error e = {
	        {type, strlen(type)},
	        {message, strlen(message)},
	        {context, strlen(context)},
	        {function, strlen(function)},
	};
	struct mg_mpw w;

	mg__mpw_init(&w, b);
	return mg__mpw_error(&w, &e);
}
