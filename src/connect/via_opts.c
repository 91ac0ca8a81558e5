/*
 * via_opts.c: a connect's options on their way to a gateway.
 *
 * They travel as one MessagePack map, option name -> value, driven by the
 * table below: forwarding a new option is one line there.  The encoder
 * leaves out what equals mg_connect_opts_init()'s default, so the map stays
 * small and an older gateway only meets the options a caller really set.
 * The decoder refuses what it does not know (an option a gateway ignored
 * could change what the connect does, a password or a login shell), a key
 * given twice, a value of the wrong type or out of range, a string with a
 * NUL byte or over MAX_STR bytes, a list over MAX_LIST entries and trailing
 * bytes, each with a message naming the option.  A hostile parent is
 * trusted anyway; this is about a garbled message never crashing the
 * gateway.
 *
 * Secrets: the encoder reserves the whole map's room before writing, so no
 * reallocation leaves a copy of the password behind; the decoder copies
 * strings into one block that _fini wipes.  No syscalls: fuzzable alone.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "connect/connect.h"
#include "wire/msgpack.h"

#define MAX_STR 65536u /* one path, argument or environment entry */
#define MAX_LIST 1024u /* entries of one argument list or environment */

enum kind { K_STR, K_INT, K_BOOL, K_LIST };

struct field {
	const char *key;
	enum kind kind;
	size_t off;
	int64_t min, max; /* K_INT */
};

#define F(k, kind, m, lo, hi)                                        \
	{                                                            \
		k, kind, offsetof(struct mg_connect_opts, m), lo, hi \
	}
#define STR(k, m) F(k, K_STR, m, 0, 0)
#define INT(k, m, lo, hi) F(k, K_INT, m, lo, hi)
#define BOOL(k, m) F(k, K_BOOL, m, 0, 0)
#define LIST(k, m) F(k, K_LIST, m, 0, 0)

/* Every option but via (the gateway connects directly). */
static const struct field fields[] = {
        INT("method", method, MG_METHOD_LOCAL, MG_METHOD_DOAS),
        STR("name", name),
        INT("connect_timeout_ms", connect_timeout_ms, 1, INT32_MAX),
        STR("program", program),
        BOOL("ship_self", ship_self),
        LIST("env", env),
        BOOL("first_stage", first_stage),
        BOOL("cache", cache),
        STR("hostname", hostname),
        INT("port", port, 0, 65535),
        STR("username", username),
        STR("identity_file", identity_file),
        STR("password", password),
        STR("ssh_path", ssh_path),
        LIST("ssh_args", ssh_args),
        INT("host_key_policy", host_key_policy, MG_HOST_KEY_ENFORCE, MG_HOST_KEY_IGNORE),
        BOOL("compression", compression),
        INT("keepalive_s", keepalive_s, 0, INT32_MAX),
        STR("sudo_path", sudo_path),
        LIST("sudo_args", sudo_args),
        BOOL("login_shell", login_shell),
        BOOL("preserve_env", preserve_env),
        STR("su_path", su_path),
        LIST("su_args", su_args),
        STR("doas_path", doas_path),
        LIST("doas_args", doas_args),
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))
#if defined(__x86_64__) && defined(__LP64__)
/* A new member of struct mg_connect_opts changes its size: give it a line
 * in fields[] (or say here why it stays behind), then update the size. */
_Static_assert(sizeof(struct mg_connect_opts) == 192,
               "struct mg_connect_opts changed: forward the new option in fields[]");
#endif
_Static_assert(NFIELDS <= 64, "the decoder keeps a 64-bit mask of the keys seen");

/* Typed access to a field of o. */
#define AT(o, f, type) (*(type *)((char *)(o) + (f)->off))
#define CAT(o, f, type) (*(const type *)((const char *)(o) + (f)->off))

/* True when o's value of f differs from d's (the defaults). */
static bool differs(const struct mg_connect_opts *o, const struct mg_connect_opts *d,
                    const struct field *f)
{
	if (f == &fields[0])
		return true; /* the method: always */
	switch (f->kind) {
	case K_STR:
		return CAT(o, f, char *) != NULL;
	case K_INT:
		return CAT(o, f, int) != CAT(d, f, int);
	case K_BOOL:
		return CAT(o, f, bool) != CAT(d, f, bool);
	default:
		return CAT(o, f, char *const *) != NULL;
	}
}

/* An upper bound of the bytes f's key and value take. */
static size_t field_size(const struct mg_connect_opts *o, const struct field *f)
{
	const char *const *l;
	size_t n = strlen(f->key) + 5 + 9, i;

	if (f->kind == K_STR)
		n += strlen(CAT(o, f, char *));
	for (l = f->kind == K_LIST ? CAT(o, f, char *const *) : NULL, i = 0; l && l[i]; i++)
		n += strlen(l[i]) + 5;
	return n;
}

int mg__via_opts_encode(const struct mg_connect_opts *o, struct mg_buf *b)
{
	struct mg_connect_opts d;
	struct mg_mpw w;
	size_t pairs = 0, size = 5, i, j;
	int r;

	mg_connect_opts_init(&d, o->method);
	for (i = 0; i < NFIELDS; i++)
		if (differs(o, &d, &fields[i])) {
			pairs++;
			size += field_size(o, &fields[i]);
		}
	if ((r = mg__buf_reserve(b, size)) != 0)
		return r;
	mg__mpw_init(&w, b);
	mg__mpw_map(&w, pairs);
	for (i = 0; i < NFIELDS; i++) {
		const struct field *f = &fields[i];
		const char *s;
		const char *const *l;
		size_t n = 0;

		if (!differs(o, &d, f))
			continue;
		mg__mpw_str(&w, f->key, strlen(f->key));
		switch (f->kind) {
		case K_STR:
			s = CAT(o, f, char *);
			mg__mpw_str(&w, s, strlen(s));
			break;
		case K_INT:
			mg__mpw_int(&w, CAT(o, f, int));
			break;
		case K_BOOL:
			mg__mpw_bool(&w, CAT(o, f, bool));
			break;
		case K_LIST:
			l = CAT(o, f, char *const *);
			while (l[n] != NULL)
				n++;
			if (n > MAX_LIST)
				return MG_ELIMIT;
			mg__mpw_array(&w, n);
			for (j = 0; j < n; j++)
				mg__mpw_str(&w, l[j], strlen(l[j]));
			break;
		}
	}
	return w.err;
}

/* ------------------------------------------------------------------------ */
/* Decoding. */

/* Copies a string value into the block (NUL-terminated) after checking it. */
static int take_str(struct mg_mpr *r, struct mg_via_opts *v, size_t *usedp, const char **sp,
                    const char **whyp)
{
	const char *p;
	size_t n;

	if (mg__mpr_str(r, &p, &n) != 0) {
		*whyp = "is not a string";
		return MG_EDECODE;
	}
	if (n > MAX_STR) {
		*whyp = "is too long";
		return MG_ELIMIT;
	}
	if (memchr(p, '\0', n) != NULL) {
		*whyp = "holds a NUL byte";
		return MG_EDECODE;
	}
	memcpy(v->strs + *usedp, p, n);
	v->strs[*usedp + n] = '\0';
	*sp = v->strs + *usedp;
	*usedp += n + 1;
	return 0;
}

/* Reads f's value into v->o. */
static int take_value(struct mg_mpr *r, const struct field *f, struct mg_via_opts *v, size_t *usedp,
                      size_t *slotp, const char **whyp)
{
	const char **list;
	int64_t iv;
	size_t n, i;
	bool b;
	int rc;

	switch (f->kind) {
	case K_STR:
		return take_str(r, v, usedp, &AT(&v->o, f, const char *), whyp);
	case K_INT:
		if (mg__mpr_int(r, &iv) != 0 || iv < f->min || iv > f->max) {
			*whyp = "is not an integer in range";
			return MG_EDECODE;
		}
		AT(&v->o, f, int) = (int)iv;
		return 0;
	case K_BOOL:
		if (mg__mpr_bool(r, &b) != 0) {
			*whyp = "is not a boolean";
			return MG_EDECODE;
		}
		AT(&v->o, f, bool) = b;
		return 0;
	default:
		if (mg__mpr_array(r, &n) != 0) {
			*whyp = "is not a list";
			return MG_EDECODE;
		}
		if (n > MAX_LIST) {
			*whyp = "has too many entries";
			return MG_ELIMIT;
		}
		list = v->slots + *slotp;
		*slotp += n + 1;
		for (i = 0; i < n; i++)
			if ((rc = take_str(r, v, usedp, &list[i], whyp)) != 0)
				return rc;
		list[n] = NULL;
		AT(&v->o, f, const char *const *) = list;
		return 0;
	}
}

int mg__via_opts_decode(const void *p, size_t n, struct mg_via_opts *v, char *why, size_t whylen)
{
	struct mg_mpr r;
	uint64_t seen = 0;
	size_t pairs, i, k, used = 0, slot = 0;
	const char *key, *what = NULL;
	size_t keylen = 0;
	int rc = 0;

	memset(v, 0, sizeof(*v));
	mg_connect_opts_init(&v->o, 0);
	snprintf(why, whylen, "malformed options");
	/* Every string is at most its encoded size plus a NUL, every list
	 * entry takes a byte: these bound what the values can need. */
	v->strs_len = 2 * n + 1;
	v->nslots = n + NFIELDS;
	if ((v->strs = mg__malloc(v->strs_len)) == NULL ||
	    (v->slots = mg__calloc(v->nslots, sizeof(*v->slots))) == NULL)
		return -ENOMEM;
	mg__mpr_init(&r, p, n);
	if (mg__mpr_map(&r, &pairs) != 0)
		return MG_EDECODE;
	for (i = 0; i < pairs; i++) {
		if (mg__mpr_str(&r, &key, &keylen) != 0)
			return MG_EDECODE;
		for (k = 0; k < NFIELDS; k++)
			if (strlen(fields[k].key) == keylen &&
			    memcmp(fields[k].key, key, keylen) == 0)
				break;
		if (k == NFIELDS) {
			what = "is not an option this gateway knows";
			rc = MG_EDECODE;
		} else if (seen & (UINT64_C(1) << k)) {
			what = "is given twice";
			rc = MG_EDECODE;
		} else {
			seen |= UINT64_C(1) << k;
			rc = take_value(&r, &fields[k], v, &used, &slot, &what);
		}
		if (rc != 0) {
			/* Printable names only: the key came off the wire. */
			snprintf(why, whylen, "option \"%.*s\" %s",
			         (int)(keylen > 40 ? 40 : keylen), key, what);
			for (char *c = why; *c != '\0'; c++)
				if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
					*c = '?';
			return rc;
		}
	}
	if (!mg__mpr_at_end(&r)) {
		snprintf(why, whylen, "bytes after the options");
		return MG_EDECODE;
	}
	if (!(seen & 1)) {
		snprintf(why, whylen, "no method given");
		return MG_EDECODE;
	}
	why[0] = '\0';
	return 0;
}

void mg__via_opts_fini(struct mg_via_opts *v)
{
	if (v->strs != NULL)
		explicit_bzero(v->strs, v->strs_len);
	mg__free(v->strs);
	mg__free(v->slots);
	memset(v, 0, sizeof(*v));
}
