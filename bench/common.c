/* common.c: see common.h. */
#include "common.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#define INFRA_LOCK "/run/lock/mitogen-test.lock"

void bench_source_path(char *out, size_t size, const char *name)
{
	const char *slash = strrchr(__FILE__, '/');

	if (slash == NULL)
		snprintf(out, size, "bench/%s", name);
	else
		snprintf(out, size, "%.*s/%s", (int)(slash - __FILE__), __FILE__, name);
}

const char *bench_infra_get(const char *env_path, const char *key, char *buf, size_t len)
{
	const char *dir = getenv("MG_INFRA_DIR");
	char path[512], line[1024];
	size_t n = strlen(key);
	FILE *f;

	if (env_path == NULL) {
		snprintf(path, sizeof(path), "%s/infra.env",
		         dir && *dir ? dir : "/run/mitogen-test");
		env_path = path;
	}
	if ((f = fopen(env_path, "re")) == NULL)
		return NULL;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, key, n) == 0 && line[n] == '=') {
			line[strcspn(line, "\n")] = '\0';
			snprintf(buf, len, "%s", line + n + 1);
			fclose(f);
			return buf;
		}
	}
	fclose(f);
	return NULL;
}

int bench_infra_hold(void)
{
	int fd = open(INFRA_LOCK, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);

	if (fd >= 0)
		flock(fd, LOCK_SH);
	return fd;
}
