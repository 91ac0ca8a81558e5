/*
 * test_wire_corpus.c: replays every fuzz corpus through its target, in
 * every build, without libFuzzer.  The target bodies are the fuzz_<name>.c
 * files in fuzz/, built into this suite with MG_FUZZ_REPLAY (see
 * tests/extra.cmake); a broken invariant aborts and fails the case.
 *
 * The corpora are found under $MG_SOURCE_DIR/tests/corpus/<target>/.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "runner.h"

typedef int (*target_fn)(const uint8_t *data, size_t size);

/* The input being replayed, named by the crash handler. */
static char current[8192];

static void on_crash(int sig)
{
	static const char msg[] = "    crashed on corpus input: ";

	(void)!write(2, msg, sizeof(msg) - 1);
	(void)!write(2, current, strlen(current));
	(void)!write(2, "\n", 1);
	signal(sig, SIG_DFL);
	raise(sig);
}

static const char *source_dir(void)
{
	const char *s = getenv("MG_SOURCE_DIR");

	if (s == NULL || *s == '\0')
		mg_test_fail(__FILE__, __LINE__, "MG_SOURCE_DIR is not set (ctest sets it)");
	return s;
}

/* Reads a whole file into a buffer of exactly its size, so ASan builds
 * catch any read past the input. */
static uint8_t *slurp(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	uint8_t *p;
	long n;

	if (f == NULL)
		mg_test_fail(__FILE__, __LINE__, "%s: %s", path, strerror(errno));
	CHECK(fseek(f, 0, SEEK_END) == 0);
	n = ftell(f);
	CHECK(n >= 0);
	rewind(f);
	p = malloc(n > 0 ? (size_t)n : 1);
	CHECK(p != NULL);
	CHECK(fread(p, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	*lenp = (size_t)n;
	return p;
}

static void replay(const char *name, target_fn fn, int min_files)
{
	char dir[4096];
	struct dirent *e;
	struct stat st;
	int files = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/tests/corpus/%s", source_dir(), name);
	signal(SIGABRT, on_crash);
	signal(SIGSEGV, on_crash);
	d = opendir(dir);
	if (d == NULL)
		mg_test_fail(__FILE__, __LINE__, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		uint8_t *p;
		size_t n;

		if (e->d_name[0] == '.')
			continue;
		snprintf(current, sizeof(current), "%s/%s", dir, e->d_name);
		if (stat(current, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		p = slurp(current, &n);
		fn(p, n);
		free(p);
		files++;
	}
	closedir(d);
	fprintf(stderr, "    %s: %d inputs replayed\n", name, files);
	CHECK_INT(files, >=, min_files);
}

TEST_T(corpus_msgpack_reader, 120)
{
	replay("msgpack_reader", mg_fuzz_msgpack_reader, 20);
}

TEST_T(corpus_fmt_unpack, 120)
{
	replay("fmt_unpack", mg_fuzz_fmt_unpack, 20);
}

TEST_T(corpus_frame_decode, 120)
{
	replay("frame_decode", mg_fuzz_frame_decode, 20);
}
