/*
 * wire_vectors.c: our half of the msgpack-python conformance check, driven
 * by tests/conformance/check_python.py.
 *
 *   wire_vectors emit    prints one line per vector:
 *                        name TAB our-encoding-hex TAB python-expression
 *                        TAB options ("f32": pack floats as float 32)
 *   wire_vectors check   reads "name TAB hex" lines (Python's encodings of
 *                        the same values) on stdin, decodes each with our
 *                        reader against the value meant, checks the bytes
 *                        equal ours, and prints "ok"/"FAIL" per vector.
 *                        Exits 0 only when every vector was checked and
 *                        passed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpvalue.h"

struct vector {
	char name[48];
	struct mpv v;
	bool f32;
	bool seen;
};

#define MAX_VECTORS 400
#define BIG 65536

static struct vector vecs[MAX_VECTORS];
static int n_vecs;
static char text[BIG + 16];       /* str/bin/ext bodies: printable, valid UTF-8 */
static struct mpv items[2 * BIG]; /* container elements */

static void add(const char *name, struct mpv v, bool f32)
{
	if (n_vecs == MAX_VECTORS) {
		fprintf(stderr, "wire_vectors: too many vectors\n");
		exit(2);
	}
	snprintf(vecs[n_vecs].name, sizeof(vecs[n_vecs].name), "%s", name);
	vecs[n_vecs].v = v;
	vecs[n_vecs].f32 = f32;
	n_vecs++;
}

static void build(void)
{
	static const uint64_t us[] = {
	        0,         1,     127,         128,           255,       256,
	        65535,     65536, 4294967295u, 4294967296ull, INT64_MAX, (uint64_t)INT64_MAX + 1,
	        UINT64_MAX};
	static const int64_t is[] = {-1,
	                             -31,
	                             -32,
	                             -33,
	                             -127,
	                             -128,
	                             -129,
	                             -32767,
	                             -32768,
	                             -32769,
	                             INT32_MIN,
	                             (int64_t)INT32_MIN - 1,
	                             -4294967296ll,
	                             INT64_MIN + 1,
	                             INT64_MIN};
	static const double ds[] = {0.0,   -0.0,   1.5,       -2.25,     0.1,
	                            1e300, 5e-324, 1.0 / 0.0, -1.0 / 0.0};
	static const double fs[] = {
	        0.0,      -0.0, 1.5, -2.25, 0.1, 3.4028234663852886e38, 1.401298464324817e-45,
	        1.0 / 0.0};
	static const size_t lens[] = {0, 1, 31, 32, 255, 256, 65535, 65536};
	static const size_t ext_lens[] = {0, 1, 2, 3, 4, 5, 8, 16, 17, 255, 256, 65535, 65536};
	static const size_t counts[] = {0, 1, 15, 16, 65535, 65536};
	static const struct {
		int64_t s;
		uint32_t ns;
	} ts[] = {
	        {0, 0},
	        {1, 0},
	        {4294967295ll, 0},
	        {4294967296ll, 0},
	        {0, 1},
	        {1, 999999999},
	        {17179869183ll, 999999999},
	        {17179869184ll, 0},
	        {-1, 0},
	        {-1, 999999999},
	        {INT64_MIN, 0},
	        {INT64_MAX, 999999999},
	};
	static struct mpv nested_leaf[4], nested_kv[6], nested_top[5];
	char name[48];
	size_t k, i;

	for (i = 0; i < sizeof(text); i++)
		text[i] = (char)('!' + i % 90);
	for (i = 0; i < 2 * BIG; i++)
		items[i] = i % 2 ? MPV_INTV(-(int64_t)(i % 1000)) : MPV_UINTV(i / 2);

	add("nil", MPV_NILV, false);
	add("true", MPV_BOOLV(1), false);
	add("false", MPV_BOOLV(0), false);
	for (k = 0; k < sizeof(us) / sizeof(us[0]); k++) {
		snprintf(name, sizeof(name), "uint_%zu", k);
		add(name, MPV_UINTV(us[k]), false);
	}
	for (k = 0; k < sizeof(is) / sizeof(is[0]); k++) {
		snprintf(name, sizeof(name), "int_%zu", k);
		add(name, MPV_INTV(is[k]), false);
	}
	for (k = 0; k < sizeof(ds) / sizeof(ds[0]); k++) {
		snprintf(name, sizeof(name), "f64_%zu", k);
		add(name, MPV_F64V(ds[k]), false);
	}
	add("f64_nan", MPV_F64V(__builtin_nan("")), false);
	for (k = 0; k < sizeof(fs) / sizeof(fs[0]); k++) {
		snprintf(name, sizeof(name), "f32_%zu", k);
		add(name, MPV_F32V(fs[k]), true);
	}
	for (k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
		snprintf(name, sizeof(name), "str_%zu", lens[k]);
		add(name, MPV_STRN(text, lens[k]), false);
		snprintf(name, sizeof(name), "bin_%zu", lens[k]);
		add(name, MPV_BINN(text, lens[k]), false);
	}
	add("str_utf8", MPV_STRV("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80"), false);
	/* msgpack-python takes ext types 0..127 only. */
	for (k = 0; k < sizeof(ext_lens) / sizeof(ext_lens[0]); k++) {
		snprintf(name, sizeof(name), "ext_%zu", ext_lens[k]);
		add(name, MPV_EXTN((int8_t)(k * 37 % 128), text, ext_lens[k]), false);
	}
	add("ext_context", MPV_EXTN(1, "\x00\x00\x00\x07", 4), false);
	add("ext_sender", MPV_EXTN(2, "\x00\x00\x00\x07\x00\x00\x03\xeb", 8), false);
	add("ext_error",
	    MPV_EXTN(3,
	             "\x94\xa1T\xa1m\xa1"
	             "c\xa1"
	             "f",
	             9),
	    false);
	for (k = 0; k < sizeof(ts) / sizeof(ts[0]); k++) {
		snprintf(name, sizeof(name), "ts_%zu", k);
		add(name, MPV_TSV(ts[k].s, ts[k].ns), false);
	}
	for (k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
		snprintf(name, sizeof(name), "array_%zu", counts[k]);
		add(name, MPV_ARR(counts[k], items), false);
		/* Map keys are the even items: distinct uints, as a dict needs. */
		snprintf(name, sizeof(name), "map_%zu", counts[k]);
		add(name, MPV_MAPV(counts[k], items), false);
	}
	nested_leaf[0] = MPV_INTV(-5);
	nested_leaf[1] = MPV_STRV("deep");
	nested_leaf[2] = MPV_TSV(1, 2);
	nested_leaf[3] = MPV_MAPV(0, NULL);
	nested_kv[0] = MPV_STRV("a");
	nested_kv[1] = MPV_ARR(4, nested_leaf);
	nested_kv[2] = MPV_INTV(300);
	nested_kv[3] = MPV_BINN("\x00\x01", 2);
	nested_kv[4] = MPV_STRV("m");
	nested_kv[5] = MPV_MAPV(1, nested_kv);
	nested_top[0] = MPV_MAPV(3, nested_kv);
	nested_top[1] = MPV_NILV;
	nested_top[2] = MPV_BOOLV(1);
	nested_top[3] = MPV_UINTV(UINT64_MAX);
	nested_top[4] = MPV_ARR(0, NULL);
	add("nested", MPV_ARR(5, nested_top), false);
}

static int encode(const struct mpv *v, struct mg_buf *b)
{
	struct mg_mpw w;

	mg__buf_init(b, 1 << 24);
	mg__mpw_init(&w, b);
	mpv_write(&w, v);
	return w.err;
}

/* Our helpers for the ext types must give the bytes the plain ext does. */
static int self_check(void)
{
	struct mg_mp_error e = {{"T", 1}, {"m", 1}, {"c", 1}, {"f", 1}};
	struct mg_buf a, b;
	struct mg_mpw w;
	int bad = 0, k;

	for (k = 0; k < n_vecs; k++) {
		const char *n = vecs[k].name;

		if (strcmp(n, "ext_context") && strcmp(n, "ext_sender") && strcmp(n, "ext_error"))
			continue;
		mg__buf_init(&a, 1024);
		mg__mpw_init(&w, &a);
		if (!strcmp(n, "ext_context"))
			mg__mpw_context(&w, 7);
		else if (!strcmp(n, "ext_sender"))
			mg__mpw_sender(&w, 7, 1003);
		else
			mg__mpw_error(&w, &e);
		if (w.err != 0 || encode(&vecs[k].v, &b) != 0 || a.len != b.len ||
		    memcmp(a.data, b.data, a.len) != 0) {
			printf("FAIL %s: the helper's encoding differs\n", n);
			bad = 1;
		}
		mg__buf_fini(&a);
		mg__buf_fini(&b);
	}
	return bad;
}

static int emit(void)
{
	size_t cap = 16 << 20, i;
	char *py = malloc(cap);
	struct mg_buf b;
	int k;

	if (py == NULL)
		return 2;
	for (k = 0; k < n_vecs; k++) {
		if (encode(&vecs[k].v, &b) != 0 || mpv_python(&vecs[k].v, py, cap) != 0) {
			fprintf(stderr, "wire_vectors: cannot encode %s\n", vecs[k].name);
			return 2;
		}
		printf("%s\t", vecs[k].name);
		for (i = 0; i < b.len; i++)
			printf("%02x", b.data[i]);
		printf("\t%s\t%s\n", py, vecs[k].f32 ? "f32" : "");
		mg__buf_fini(&b);
	}
	free(py);
	return 0;
}

static int unhex(const char *h, size_t n, uint8_t *out)
{
	size_t i;
	unsigned v;

	for (i = 0; i + 1 < n; i += 2) {
		if (sscanf(h + i, "%2x", &v) != 1)
			return -1;
		out[i / 2] = (uint8_t)v;
	}
	return i == n ? 0 : -1;
}

static int check(void)
{
	char *line = NULL, *tab;
	size_t cap = 0, hexlen;
	ssize_t len;
	int bad = 0, k, checked = 0;

	while ((len = getline(&line, &cap, stdin)) > 0) {
		struct vector *vec = NULL;
		struct mg_buf ours;
		struct mg_mpr r;
		const char *why;
		uint8_t *bytes;

		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0)
			continue;
		if ((tab = strchr(line, '\t')) == NULL) {
			printf("FAIL malformed line\n");
			bad = 1;
			continue;
		}
		*tab++ = '\0';
		for (k = 0; k < n_vecs; k++)
			if (strcmp(vecs[k].name, line) == 0)
				vec = &vecs[k];
		hexlen = strlen(tab);
		bytes = malloc(hexlen / 2 + 1);
		if (vec == NULL || bytes == NULL || unhex(tab, hexlen, bytes) != 0) {
			printf("FAIL %s: unknown vector or bad hex\n", line);
			bad = 1;
			free(bytes);
			continue;
		}
		vec->seen = true;
		checked++;
		mg__mpr_init(&r, bytes, hexlen / 2);
		if ((why = mpv_check(&r, &vec->v)) != NULL) {
			printf("FAIL %s: our reader on Python's bytes: %s\n", line, why);
			bad = 1;
		} else if (!mg__mpr_at_end(&r)) {
			printf("FAIL %s: %zu bytes left over\n", line, r.len - r.off);
			bad = 1;
		} else if (encode(&vec->v, &ours) != 0 || ours.len != hexlen / 2 ||
		           memcmp(ours.data, bytes, ours.len) != 0) {
			printf("FAIL %s: Python's bytes differ from ours\n", line);
			bad = 1;
			mg__buf_fini(&ours);
		} else {
			printf("ok   %s\n", line);
			mg__buf_fini(&ours);
		}
		free(bytes);
	}
	free(line);
	for (k = 0; k < n_vecs; k++)
		if (!vecs[k].seen) {
			printf("FAIL %s: Python sent nothing for it\n", vecs[k].name);
			bad = 1;
		}
	printf("%d vectors checked from Python's side\n", checked);
	return bad;
}

int main(int argc, char **argv)
{
	build();
	if (argc == 2 && strcmp(argv[1], "emit") == 0)
		return emit();
	if (argc == 2 && strcmp(argv[1], "check") == 0)
		return self_check() | check();
	fprintf(stderr, "usage: wire_vectors emit | check\n");
	return 2;
}
