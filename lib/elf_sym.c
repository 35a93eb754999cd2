/*
 * elf_sym.c - looking up the function that contains an address of an
 * ELF file, from its symbol table: what pstm conflicts needs to name a
 * transaction function that its program does not export.  The file is
 * mapped read-only and read as untrusted input.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <stdbool.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elf_sym.h"

#define ELF_MAX_BYTES (1ull << 31) /* larger files are not looked at */

/* [off, off + len) lies inside a file of @size bytes */
static bool inside(uint64_t size, uint64_t off, uint64_t len)
{
	return off <= size && len <= size - off;
}

/* the lowest address of a loaded segment, page-aligned: what the
 * loader maps at the module's base */
static int first_load(const uint8_t *f, uint64_t size, const Elf64_Ehdr *eh,
		      uint64_t *base)
{
	if (eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    !inside(size, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr)))
		return -1;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(f + eh->e_phoff);
	bool found = false;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD)
			continue;
		uint64_t v = ph[i].p_vaddr & ~(uint64_t)4095;
		if (!found || v < *base)
			*base = v;
		found = true;
	}
	return found ? 0 : -1;
}

/* search symbol table section @sh (its string table is section sh_link) */
static int search(const uint8_t *f, uint64_t size, const Elf64_Ehdr *eh,
		  const Elf64_Shdr *sh, uint64_t addr, char *out, size_t n,
		  uint64_t *delta)
{
	if (sh->sh_entsize != sizeof(Elf64_Sym) || sh->sh_link >= eh->e_shnum ||
	    !inside(size, sh->sh_offset, sh->sh_size))
		return -1;
	const Elf64_Shdr *str = (const Elf64_Shdr *)(f + eh->e_shoff) + sh->sh_link;
	if (!inside(size, str->sh_offset, str->sh_size))
		return -1;
	const Elf64_Sym *sym = (const Elf64_Sym *)(f + sh->sh_offset);
	uint64_t count = sh->sh_size / sizeof(Elf64_Sym), best = UINT64_MAX;
	for (uint64_t i = 0; i < count; i++) {
		unsigned type = ELF64_ST_TYPE(sym[i].st_info);
		if ((type != STT_FUNC && type != STT_GNU_IFUNC) || !sym[i].st_value ||
		    sym[i].st_name >= str->sh_size)
			continue;
		uint64_t lo = sym[i].st_value, len = sym[i].st_size ? sym[i].st_size : 1;
		if (addr < lo || addr - lo >= len)
			continue;
		if (best == UINT64_MAX || lo > sym[best].st_value)
			best = i; /* the innermost one */
	}
	if (best == UINT64_MAX)
		return -1;
	const char *name = (const char *)(f + str->sh_offset) + sym[best].st_name;
	size_t max = str->sh_size - sym[best].st_name;
	size_t k = strnlen(name, max);
	if (k == max || k == 0 || n == 0)
		return -1; /* not terminated inside its table */
	if (k >= n)
		k = n - 1;
	memcpy(out, name, k);
	out[k] = 0;
	*delta = addr - sym[best].st_value;
	return 0;
}

int elf_symbol_at(const char *path, uint64_t off, char *out, size_t n,
		  uint64_t *delta)
{
	struct stat st;
	int rc = -1;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size < sizeof(Elf64_Ehdr) ||
	    (uint64_t)st.st_size > ELF_MAX_BYTES) {
		close(fd);
		return -1;
	}
	uint64_t size = (uint64_t)st.st_size;
	const uint8_t *f = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (f == MAP_FAILED)
		return -1;
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)f;
	uint64_t base = 0;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_shentsize != sizeof(Elf64_Shdr) ||
	    !inside(size, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr)) ||
	    first_load(f, size, eh, &base) != 0)
		goto out;
	const Elf64_Shdr *sh = (const Elf64_Shdr *)(f + eh->e_shoff);
	for (int pass = 0; pass < 2 && rc != 0; pass++) {
		uint32_t want = pass == 0 ? SHT_SYMTAB : SHT_DYNSYM;
		for (unsigned i = 0; i < eh->e_shnum && rc != 0; i++)
			if (sh[i].sh_type == want)
				rc = search(f, size, eh, &sh[i], base + off, out, n, delta);
	}
out:
	munmap((void *)f, size);
	return rc;
}
