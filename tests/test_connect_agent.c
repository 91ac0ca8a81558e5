/*
 * test_connect_agent.c: the stock agent as built: static, stripped, small,
 * embedded byte for byte in the library, runnable from the memfd and from
 * the temporary-file fallback (also forced end to end, with memfd_create
 * made to fail by a seccomp filter); and the static library keeping every
 * object's constructors (the services' exports) however little of it a
 * program uses.
 */
#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "connect/connect.h"
#include "connect_util.h"
#include "util.h"

#define AGENT_MAX_BYTES (256 * 1024)

/* Reads the agent the build made; caller frees. */
static uint8_t *read_agent(size_t *lenp)
{
	char path[4200];
	struct stat st;
	uint8_t *buf;
	size_t have = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/agent/mitogen-agent", cu_build_dir());
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		mg_test_fail(__FILE__, __LINE__, "cannot open %s: %s", path, strerror(errno));
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK((buf = malloc((size_t)st.st_size)) != NULL);
	while (have < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + have, (size_t)st.st_size - have);
		CHECK(n > 0);
		have += (size_t)n;
	}
	close(fd);
	*lenp = have;
	return buf;
}

TEST(agent_is_small_static_and_stripped)
{
	const Elf64_Ehdr *eh;
	size_t len, i;
	uint8_t *img = read_agent(&len);
	bool has_load = false;

	CHECK_UINT(len, <=, AGENT_MAX_BYTES);
	CHECK_UINT(len, >=, sizeof(*eh));
	eh = (const Elf64_Ehdr *)img;
	CHECK_MEM(eh->e_ident, ELFMAG, SELFMAG);
	CHECK_EQ(eh->e_ident[EI_CLASS], ELFCLASS64);
	CHECK(eh->e_type == ET_EXEC || eh->e_type == ET_DYN);
	CHECK_UINT(eh->e_phoff + (size_t)eh->e_phnum * sizeof(Elf64_Phdr), <=, len);
	/* Static: no interpreter to load, nothing dynamic to link. */
	for (i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(img + eh->e_phoff) + i;

		CHECK(ph->p_type != PT_INTERP);
		CHECK(ph->p_type != PT_DYNAMIC);
		has_load |= ph->p_type == PT_LOAD;
	}
	CHECK(has_load);
	/* Stripped: no symbol table section. */
	CHECK_UINT(eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr), <=, len);
	for (i = 0; i < eh->e_shnum; i++) {
		const Elf64_Shdr *sh = (const Elf64_Shdr *)(img + eh->e_shoff) + i;

		CHECK(sh->sh_type != SHT_SYMTAB);
	}
	printf("    agent: %zu bytes (%.1f KiB)\n", len, (double)len / 1024);
	free(img);
}

TEST(library_embeds_the_agent_byte_for_byte)
{
	const uint8_t *data, *unpack;
	size_t len, flen, ulen;
	uint8_t *file = read_agent(&flen), *img;
	struct stat st;
	int fd;

	CHECK_OK(mg__agent_image(&data, &len));
	CHECK_EQ(len, flen);
	CHECK_MEM(data, file, len);
	/* The cached fd holds the same bytes, then mitogen-unpack and the
	 * trailer ("MGU1", its length, the agent's, 0), read-only and
	 * sealed. */
	CHECK_OK(mg__unpack_image(&unpack, &ulen));
	CHECK((fd = mg__agent_memfd()) >= 3);
	CHECK_EQ(mg__agent_memfd(), fd);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK_EQ((size_t)st.st_size, len + ulen + 16);
	CHECK((img = malloc((size_t)st.st_size)) != NULL);
	CHECK_EQ(pread(fd, img, (size_t)st.st_size, 0), st.st_size);
	CHECK_MEM(img, data, len);
	CHECK_MEM(img + len, unpack, ulen);
	CHECK_MEM(img + len + ulen, "MGU1", 4);
	CHECK_EQ(img[len + ulen + 4] | img[len + ulen + 5] << 8, (int)(ulen & 0xffff));
	CHECK_EQ(img[len + ulen + 8] | img[len + ulen + 9] << 8 | img[len + ulen + 10] << 16,
	         (int)len);
	free(img);
	CHECK_EQ(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	CHECK_EQ(fcntl(fd, F_GET_SEALS) & F_SEAL_WRITE, F_SEAL_WRITE);
	free(file);
}

TEST(static_library_keeps_every_constructor)
{
	/* Nothing in this program refers to services/ or via.c, yet their
	 * exports are registered: libmitogen.a is one prelinked object. */
	CHECK(mg__export_find("mg.ping") != NULL);
	CHECK(mg__export_find("mg.sysinfo") != NULL);
	CHECK(mg__export_find("mg.echo") != NULL);
	CHECK(mg__export_find("mg.connect") != NULL);
}

/* Runs the agent from fd through a handshake; checks the ready marker and
 * that it goes when the channel closes. */
static void boot_agent_from(int fd)
{
	char *argv[] = {"mitogen:fallback", NULL}, *envp[] = {NULL};
	char mark[MG_HS_READY_LEN], why[160];
	struct mg_spawn sp;
	struct mg_boot boot;
	struct mg_buf hs;
	uint32_t ver, pid;
	int sv[2], ep[2], status;
	size_t have = 0;

	memset(&boot, 0, sizeof(boot));
	boot.context_id = 5;
	boot.nancestors = 1;
	snprintf(boot.name, sizeof(boot.name), "fallback");
	boot.log_level = MG_LOG_WARNING;
	boot.max_message_size = 1 << 20;
	mg__buf_init(&hs, 65536);
	CHECK_OK(mg__hs_boot_build(&boot, &hs));
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	CHECK_EQ(pipe2(ep, O_CLOEXEC), 0);
	CHECK_EQ(write(sv[0], hs.data, hs.len), (ssize_t)hs.len);
	memset(&sp, 0, sizeof(sp));
	sp.exec_fd = fd;
	sp.argv = argv;
	sp.envp = envp;
	sp.chan_fd = sv[1];
	sp.err_fd = ep[1];
	CHECK_OK(mg__spawn(&sp));
	close(sv[1]);
	close(ep[1]);
	while (have < sizeof(mark)) {
		ssize_t n = read(sv[0], mark + have, sizeof(mark) - have);
		CHECK(n > 0);
		have += (size_t)n;
	}
	CHECK_OK(mg__hs_ready_parse(mark, &ver, &pid, why, sizeof(why)));
	CHECK_EQ((pid_t)pid, sp.pid);
	close(sv[0]);
	CHECK_OK(mg__proc_wait(sp.pid, sp.pidfd, 10000, &status));
	if (sp.pidfd >= 0)
		close(sp.pidfd);
	close(ep[0]);
	mg__buf_fini(&hs);
}

TEST(agent_runs_from_the_memfd)
{
	boot_agent_from(mg__agent_memfd());
}

TEST(tmpfile_fallback_leaves_nothing_on_disk)
{
	char dir[] = "/tmp/mg-test-tmpdir-XXXXXX";
	const uint8_t *data;
	struct stat st;
	size_t len;
	int fd;

	CHECK(mkdtemp(dir) != NULL);
	CHECK_EQ(setenv("TMPDIR", dir, 1), 0);
	CHECK_OK(mg__agent_image(&data, &len));
	CHECK((fd = mg__agent_tmpfile(data, len)) >= 0);
	/* Removed at once: the directory is empty again. */
	CHECK_EQ(rmdir(dir), 0);
	CHECK_EQ(fstat(fd, &st), 0);
	CHECK_EQ((size_t)st.st_size, len);
	CHECK_EQ(st.st_nlink, 0);
	CHECK_EQ(st.st_mode & 0777, 0700);
	CHECK_EQ(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	boot_agent_from(fd);
	close(fd);
}

static void ping_ctx(struct mg_context *c)
{
	struct mg_msg *m;

	CHECK_OK(mg_call(c, "mg.ping", &m, ""));
	mg_msg_free(m);
}

/* The body of forced_fallback_boots_contexts_and_leaves_nothing, in a
 * process of its own: the agent's fd is made once per process. */
static void forced_fallback_child(const char *dir)
{
	struct mg_connect_opts o;
	struct mg_context *c1, *c2, *c3;
	struct mg_router *r;
	char link[64], target[4200];
	ssize_t n;
	int old = mg__agent_memfd(), fd;

	/* Start from nothing made, with memfd_create gone. */
	mg__agent_forget();
	close(old);
	cu_forbid_memfd();
	CHECK_EQ(setenv("TMPDIR", dir, 1), 0);
	r = util_router(0, "master", 0, 0, false);
	CHECK_OK(mg_local(r, NULL, &c1));
	ping_ctx(c1);
	/* The cached image is the unlinked private file, not a memfd. */
	CHECK((fd = mg__agent_memfd()) >= 0);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	CHECK((n = readlink(link, target, sizeof(target) - 1)) > 0);
	target[n] = '\0';
	if (strncmp(target, dir, strlen(dir)) != 0 || strstr(target, "(deleted)") == NULL)
		mg_test_fail(__FILE__, __LINE__, "agent fd is %s", target);
	/* The child boots its own children (another agent from its image, a
	 * fork) without the master's help and without memfd_create. */
	mg_connect_opts_init(&o, MG_METHOD_LOCAL);
	o.via = c1;
	CHECK_OK(mg_connect(r, &o, &c2));
	ping_ctx(c2);
	mg_connect_opts_init(&o, MG_METHOD_FORK);
	o.via = c2;
	CHECK_OK(mg_connect(r, &o, &c3));
	ping_ctx(c3);
	{
		/* Nothing on disk while they run either. */
		DIR *d = opendir(dir);
		struct dirent *e;

		CHECK(d != NULL);
		while ((e = readdir(d)) != NULL)
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
				mg_test_fail(__FILE__, __LINE__, "left in TMPDIR: %s", e->d_name);
		closedir(d);
	}
	CHECK_OK(mg_context_shutdown(c1, 5000));
	mg_context_free(c3);
	mg_context_free(c2);
	mg_context_free(c1);
	mg_router_free(r);
	_exit(0);
}

TEST(forced_fallback_boots_contexts_and_leaves_nothing)
{
	char dir[] = "/tmp/mg-test-nomemfd-XXXXXX";
	int status;
	pid_t pid;

	CHECK(mkdtemp(dir) != NULL);
	CHECK((pid = fork()) >= 0);
	if (pid == 0)
		forced_fallback_child(dir);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* Nothing left in the private TMPDIR: rmdir fails on a non-empty one. */
	CHECK_EQ(rmdir(dir), 0);
}

__attribute__((constructor)) static void prime_agent_fd(void)
{
	/* Made once per process and kept: make it before the runner counts
	 * each case's fds. */
	if (mg__agent_memfd() < 0)
		abort();
}
