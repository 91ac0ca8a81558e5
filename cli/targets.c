/*
 * targets.c: target lists as pdsh and ClusterShell write them.  A list is
 * comma-separated items; an item may hold bracketed numeric ranges,
 * "web[01-20,25]" (several brackets multiply: "r[1-2]n[1-3]"), and zero
 * padding follows the lower bound ("[08-10]" gives 08 09 10).  Folding
 * turns names back into that form for headers and messages.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* No list may expand past this many names: a typo such as "[1-999999999]"
 * must be an error, not an exhausted machine. */
#define TARGETS_MAX 100000

struct expand {
	target_add_cb add;
	void *arg;
	size_t count;
	char *err;
	size_t errlen;
};

static int expand_item(struct expand *e, const char *item, const char *rest, struct sbuf *pre);

/* Expands one bracket body "01-03,7" at the front of *pp, the rest after
 * the closing bracket. */
static int expand_bracket(struct expand *e, const char *item, const char *body, size_t blen,
                          const char *rest, struct sbuf *pre)
{
	const char *p = body, *end = body + blen;

	if (blen == 0) {
		snprintf(e->err, e->errlen, "bad range in '%s': empty brackets", item);
		return -1;
	}
	while (p < end) {
		const char *q = memchr(p, ',', (size_t)(end - p)), *dash;
		unsigned long lo, hi, v;
		size_t plen, width = 0;
		char *stop;

		if (q == NULL)
			q = end;
		plen = (size_t)(q - p);
		dash = memchr(p, '-', plen);
		if (plen == 0 || !isdigit((unsigned char)p[0]) ||
		    (dash != NULL && (dash + 1 == q || !isdigit((unsigned char)dash[1])))) {
			snprintf(e->err, e->errlen, "bad range in '%s': '%.*s' is not N or N-M",
			         item, (int)plen, p);
			return -1;
		}
		errno = 0;
		lo = hi = strtoul(p, &stop, 10);
		if (errno == 0 && stop == (dash ? dash : q) && dash != NULL)
			hi = strtoul(dash + 1, &stop, 10);
		if (errno != 0 || stop != q) {
			snprintf(e->err, e->errlen, "bad range in '%s': '%.*s' is not N or N-M",
			         item, (int)plen, p);
			return -1;
		}
		if (lo > hi) {
			snprintf(
			        e->err, e->errlen,
			        "bad range in '%s': '%.*s' goes down (write the lower bound first)",
			        item, (int)plen, p);
			return -1;
		}
		if (hi - lo >= TARGETS_MAX) {
			snprintf(e->err, e->errlen, "bad range in '%s': more than %d names", item,
			         TARGETS_MAX);
			return -1;
		}
		if (p[0] == '0' && (dash ? (size_t)(dash - p) : plen) > 1)
			width = dash ? (size_t)(dash - p) : plen;
		for (v = lo; v <= hi; v++) {
			size_t keep = pre->len;
			int rc;

			sb_printf(pre, "%0*lu", (int)width, v);
			rc = expand_item(e, item, rest, pre);
			pre->len = keep;
			pre->p[keep] = '\0';
			if (rc != 0)
				return rc;
		}
		p = q + (q < end);
		if (q < end && p == end) {
			snprintf(e->err, e->errlen, "bad range in '%s': trailing comma", item);
			return -1;
		}
	}
	return 0;
}

/* Expands rest (which may hold brackets) after the already expanded pre. */
static int expand_item(struct expand *e, const char *item, const char *rest, struct sbuf *pre)
{
	const char *open = strchr(rest, '['), *close;
	size_t keep = pre->len;
	int rc;

	if (open == NULL) {
		if (strchr(rest, ']') != NULL) {
			snprintf(e->err, e->errlen, "bad range in '%s': ']' without '['", item);
			return -1;
		}
		sb_puts(pre, rest);
		if (pre->len == 0) {
			snprintf(e->err, e->errlen, "empty target name in '%s'", item);
			return -1;
		}
		if (++e->count > TARGETS_MAX) {
			snprintf(e->err, e->errlen, "more than %d targets", TARGETS_MAX);
			return -1;
		}
		e->add(e->arg, pre->p);
		pre->len = keep;
		pre->p[keep] = '\0';
		return 0;
	}
	if ((close = strchr(open, ']')) == NULL ||
	    memchr(open + 1, '[', (size_t)(close - open - 1))) {
		snprintf(e->err, e->errlen, "bad range in '%s': '[' without ']'", item);
		return -1;
	}
	if (memchr(rest, ']', (size_t)(open - rest)) != NULL) {
		snprintf(e->err, e->errlen, "bad range in '%s': ']' without '['", item);
		return -1;
	}
	sb_put(pre, rest, (size_t)(open - rest));
	rc = expand_bracket(e, item, open + 1, (size_t)(close - open - 1), close + 1, pre);
	pre->len = keep;
	if (pre->p != NULL)
		pre->p[keep] = '\0';
	return rc;
}

int targets_expand(const char *list, target_add_cb add, void *arg, char *err, size_t errlen)
{
	struct expand e = {add, arg, 0, err, errlen};
	struct sbuf item = {0}, pre = {0};
	const char *p = list;
	int rc = 0, depth = 0;

	/* Split at commas outside brackets. */
	for (;; p++) {
		if (*p == '[')
			depth++;
		else if (*p == ']' && depth > 0)
			depth--;
		if (*p == '\0' || (*p == ',' && depth == 0)) {
			sb_put(&item, "", 0);
			while (item.len > 0 && isspace((unsigned char)item.p[item.len - 1]))
				item.p[--item.len] = '\0';
			if (item.len == 0 && *p == ',') {
				snprintf(err, errlen, "empty target name in '%s'", list);
				rc = -1;
				break;
			}
			if (item.len > 0) {
				sb_put(&pre, "", 0);
				pre.len = 0;
				if ((rc = expand_item(&e, item.p, item.p, &pre)) != 0)
					break;
			}
			item.len = 0;
			if (*p == '\0')
				break;
			continue;
		}
		if (item.len == 0 && isspace((unsigned char)*p))
			continue;
		sb_put(&item, p, 1);
	}
	if (rc == 0 && e.count == 0) {
		snprintf(err, errlen, "no targets in '%s'", list);
		rc = -1;
	}
	sb_free(&item);
	sb_free(&pre);
	return rc;
}

int targets_file(const char *path, target_add_cb add, void *arg, char *err, size_t errlen)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	char *line = NULL, *p, *hash;
	size_t cap = 0;
	int rc = 0, lineno = 0, any = 0;
	char sub[256];

	if (f == NULL) {
		snprintf(err, errlen, "hosts file %s: %s", path, strerror(errno));
		return -1;
	}
	while (getline(&line, &cap, f) >= 0) {
		lineno++;
		if ((hash = strchr(line, '#')) != NULL)
			*hash = '\0';
		for (p = line; isspace((unsigned char)*p); p++)
			;
		p[strcspn(p, "\r\n")] = '\0';
		if (*p == '\0')
			continue;
		if (targets_expand(p, add, arg, sub, sizeof(sub)) != 0) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, sub);
			rc = -1;
			break;
		}
		any = 1;
	}
	if (rc == 0 && !any) {
		snprintf(err, errlen, "hosts file %s names no targets", path);
		rc = -1;
	}
	free(line);
	if (f != stdin)
		fclose(f);
	return rc;
}

/* ---- folding ------------------------------------------------------------ */

/* A name split around its last run of digits: head, number, tail. */
struct split {
	const char *name;
	size_t head, digits; /* lengths; digits 0 when the name has none */
	unsigned long num;
	bool used;
};

static void split_name(struct split *s, const char *name)
{
	size_t n = strlen(name), end = n, start;

	s->name = name;
	s->used = false;
	while (end > 0 && !isdigit((unsigned char)name[end - 1]))
		end--;
	start = end;
	while (start > 0 && isdigit((unsigned char)name[start - 1]))
		start--;
	/* Numbers too long for a long are left unfolded. */
	if (end == start || end - start > 9) {
		s->head = n;
		s->digits = 0;
		return;
	}
	s->head = start;
	s->digits = end - start;
	s->num = strtoul(name + start, NULL, 10);
}

/* Same head, same tail, and the same padding (a padded number keeps its
 * width; unpadded ones fold with any unpadded width). */
static bool same_group(const struct split *a, const struct split *b)
{
	bool apad = a->digits > 1 && a->name[a->head] == '0';
	bool bpad = b->digits > 1 && b->name[b->head] == '0';

	if (a->digits == 0 || b->digits == 0 || a->head != b->head ||
	    memcmp(a->name, b->name, a->head) != 0 ||
	    strcmp(a->name + a->head + a->digits, b->name + b->head + b->digits) != 0)
		return false;
	if (apad || bpad)
		return a->digits == b->digits;
	return true;
}

static int cmp_ulong(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return x < y ? -1 : x > y;
}

void targets_fold(const char *const *names, size_t n, struct sbuf *b)
{
	struct split *s = xmalloc((n ? n : 1) * sizeof(*s));
	unsigned long *nums = xmalloc((n ? n : 1) * sizeof(*nums));
	size_t i, j, k, m;

	for (i = 0; i < n; i++)
		split_name(&s[i], names[i]);
	for (i = 0; i < n; i++) {
		int width;

		if (s[i].used)
			continue;
		if (b->len > 0)
			sb_puts(b, ",");
		s[i].used = true;
		if (s[i].digits == 0) {
			sb_puts(b, s[i].name);
			continue;
		}
		m = 0;
		nums[m++] = s[i].num;
		for (j = i + 1; j < n; j++) {
			if (!s[j].used && same_group(&s[i], &s[j])) {
				s[j].used = true;
				nums[m++] = s[j].num;
			}
		}
		width = s[i].digits > 1 && s[i].name[s[i].head] == '0' ? (int)s[i].digits : 0;
		if (m == 1) {
			sb_puts(b, s[i].name);
			continue;
		}
		qsort(nums, m, sizeof(*nums), cmp_ulong);
		sb_put(b, s[i].name, s[i].head);
		sb_puts(b, "[");
		for (j = 0; j < m; j = k) {
			for (k = j + 1; k < m && nums[k] <= nums[k - 1] + 1; k++)
				;
			sb_printf(b, "%s%0*lu", j ? "," : "", width, nums[j]);
			if (nums[k - 1] != nums[j])
				sb_printf(b, "-%0*lu", width, nums[k - 1]);
		}
		sb_puts(b, "]");
		sb_puts(b, s[i].name + s[i].head + s[i].digits);
	}
	if (b->p == NULL)
		sb_put(b, "", 0);
	free(s);
	free(nums);
}
