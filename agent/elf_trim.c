/*
 * elf_trim.c: a build tool that drops the section header table (and the
 * section names after the last segment) from the stripped agent.  The
 * kernel loads a program by its program headers alone; the section table
 * only serves tools like objdump, which have mitogen-agent.debug.  That is
 * ~1 KB of the file and ~300 bytes of what a first connect sends.
 *
 * Usage: elf_trim FILE (rewritten in place).  Only 64-bit little-endian
 * ELF, the agent's format; anything else is left alone with a message.
 */
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	static unsigned char buf[4 << 20];
	Elf64_Ehdr eh;
	Elf64_Phdr ph;
	size_t end = 0;
	ssize_t n;
	int fd, i;

	if (argc != 2 || (fd = open(argv[1], O_RDWR)) < 0) {
		fprintf(stderr, "usage: elf_trim FILE (a writable file)\n");
		return 2;
	}
	n = read(fd, buf, sizeof(buf));
	if (n < (ssize_t)sizeof(eh) || (size_t)n == sizeof(buf)) {
		fprintf(stderr, "elf_trim: %s: unexpected size\n", argv[1]);
		return 1;
	}
	memcpy(&eh, buf, sizeof(eh));
	if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_phentsize != sizeof(ph) ||
	    eh.e_phoff + (size_t)eh.e_phnum * sizeof(ph) > (size_t)n) {
		fprintf(stderr, "elf_trim: %s: not a 64-bit little-endian ELF file, left alone\n",
		        argv[1]);
		return 0;
	}
	for (i = 0; i < eh.e_phnum; i++) {
		memcpy(&ph, buf + eh.e_phoff + (size_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_offset + ph.p_filesz > end)
			end = ph.p_offset + ph.p_filesz;
	}
	if (end < eh.e_phoff + (size_t)eh.e_phnum * sizeof(ph))
		end = eh.e_phoff + (size_t)eh.e_phnum * sizeof(ph);
	if (end > (size_t)n) {
		fprintf(stderr, "elf_trim: %s: a segment runs past the end\n", argv[1]);
		return 1;
	}
	eh.e_shoff = 0;
	eh.e_shnum = 0;
	eh.e_shentsize = 0;
	eh.e_shstrndx = SHN_UNDEF;
	if (pwrite(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
	    ftruncate(fd, (off_t)end) != 0 || close(fd) != 0) {
		perror("elf_trim");
		return 1;
	}
	return 0;
}
