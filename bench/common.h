/*
 * common.h: what several benchmarks share — where the files beside them
 * are, and the settings of tests/infra (the loopback sshd and test users)
 * the ssh and sudo rows run against.  bench/CMakeLists.txt links common.c
 * into every bench_*.c program.
 */
#ifndef MG_BENCH_COMMON_H
#define MG_BENCH_COMMON_H

#include <stddef.h>

/* out = the path of bench/NAME (mitogen_ref.py, chart.gnuplot, ...): the
 * folder of this source, which CMake compiles by absolute path. */
void bench_source_path(char *out, size_t size, const char *name);

/* Copies KEY's value from the infra's environment file into buf and
 * returns buf, or NULL when the file or the key is missing.  env_path NULL:
 * $MG_INFRA_DIR/infra.env, by default /run/mitogen-test/infra.env. */
const char *bench_infra_get(const char *env_path, const char *key, char *buf, size_t len);

/* Holds the infra's lock shared for as long as the process runs (as a test
 * case does), so an `env.sh down` elsewhere waits; the fd, or -1. */
int bench_infra_hold(void);

#endif
