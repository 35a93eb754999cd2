/*
 * elf_sym.h - the function symbol at an offset of an ELF file
 * (lib/elf_sym.c), for conflict reports: transaction functions that a
 * program does not export are recorded as a module path and an offset,
 * and resolved here, by the reader, from the module's symbol table.
 */
#ifndef PSTM_ELF_SYM_H
#define PSTM_ELF_SYM_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/*
 * The function of the 64-bit ELF file at @path that contains @off, an
 * offset from the start of the file's first loaded segment as loaded
 * (dladdr's dli_fbase counts from there, for executables and shared
 * objects alike): its name into @out (@n bytes) and *delta = how far
 * into it @off lies; 0, or -1 if the file cannot be read, is no such
 * ELF file, or has no symbol there (.symtab is searched, else .dynsym).
 * The file is treated as hostile: every offset in it is checked.
 */
HIDDEN int elf_symbol_at(const char *path, uint64_t off, char *out, size_t n,
			 uint64_t *delta);

#endif /* PSTM_ELF_SYM_H */
