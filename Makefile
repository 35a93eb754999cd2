# pstm - persistent software transactional memory.  Plain GNU make.
#   make            library, CLI, examples into build/
#   make check      install missing deps, build, run all tests (prove)
#   make asan|tsan  the same tests under sanitizers (build-asan/, build-tsan/)
#   make valgrind   the test programs under memcheck
#   make torture    10,000 kill rounds, 100,000 simulated power failures
#   make fuzz       libFuzzer on the region-reading paths (needs clang)
#   make install    PREFIX=/usr/local LIBDIR=$(PREFIX)/lib DESTDIR=
#                   (the library, the tools, headers, man pages, docs; no tests)
#   make uninstall  the same variables: removes what make install put there
#   make abi-check  libpstm.so against the ABI baseline abi/libpstm.abi
#   make bench      benchmarks (see docs/benchmarks.md)

# the release, MAJOR.MINOR.PATCH: read from include/pstm.h, its one source
# (PSTM_VERSION_*; pstm_version(), pstm.pc and pstm --version follow it)
VERSION := $(shell awk '$$2 ~ /^PSTM_VERSION_(MAJOR|MINOR|PATCH)$$/ \
		{ v = v (v == "" ? "" : ".") $$3 } END { print v }' include/pstm.h)
$(if $(filter 3,$(words $(subst ., ,$(VERSION)))),,\
     $(error include/pstm.h: no PSTM_VERSION_MAJOR/MINOR/PATCH))
# the ABI (the soname), moved only by incompatible changes
SOMAJOR  = 0
PREFIX  ?= /usr/local
DESTDIR ?=
# where make install puts things (Debian multiarch: LIBDIR=/usr/lib/x86_64-linux-gnu)
LIBDIR  ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
DOCDIR  ?= $(PREFIX)/share/doc/pstm
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
B       ?= build

CC      ?= gcc
OPT     ?= -O2
WARN     = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wpointer-arith -Wformat=2 -Wvla
CFLAGS  ?= $(OPT) -g
ALLCFLAGS = -std=gnu11 $(WARN) $(CFLAGS) $(XCFLAGS) -Iinclude -Ilib -pthread
LIBDEPS  = -lpmem -lurcu-common -lz -pthread
# The library's thread-locals through TLS descriptors where the target has
# them: a shared library's access is then ~3 instructions instead of a
# __tls_get_addr call (a transaction makes four: 787 -> 742 instructions
# per transfer, callgrind), and it still works when dlopen()ed (Python).
TLSFLAGS := $(if $(filter x86_64-%,$(shell $(CC) -dumpmachine)),-mtls-dialect=gnu2)
TESTLIBS = -lcmocka
# the tools' JSON (tools/emit.c); the library does not use it
JSONC    = $(shell pkg-config --cflags --libs json-c)

LIB_SRC  = $(wildcard lib/*.c lib/ds/*.c)
LIB_OBJ  = $(LIB_SRC:lib/%.c=$(B)/lib/%.o)
LIB_HDR  = $(wildcard lib/*.h lib/*/*.h) include/*.h
# The test build of the library: the same sources with -DPSTM_TESTING plus
# the test-only machinery of lib/testing/ (power-failure simulator, the
# broken-validation switch).  Tests and pstm-crashtest link it; make
# install ships only libpstm.a/.so, which contain none of it.
TLIB_SRC = $(LIB_SRC) $(wildcard lib/testing/*.c)
TLIB_OBJ = $(TLIB_SRC:lib/%.c=$(B)/testlib/%.o)
TLIB     = $(B)/libpstm-testing.a
TEST_SRC = $(wildcard tests/test_*.c)
# C++ tests use only the public header and the shipped library
TEST_CXX = $(wildcard tests/test_*.cpp)
TESTS    = $(TEST_SRC:tests/%.c=$(B)/tests/%) $(TEST_CXX:tests/%.cpp=$(B)/tests/%)
TEST_HELP = $(B)/tests/helpers.o $(B)/tests/pstmd_util.o
# examples/crash_workload.c is a pstm-crashtest workload: a shared object
EXAMPLES = $(patsubst examples/%.c,$(B)/examples/%,$(filter-out \
               examples/crash_workload.c,$(wildcard examples/*.c))) \
           $(B)/examples/crash_workload.so
TOOLS    = $(B)/pstm $(B)/pstm-crashtest
# Perl TAP scripts; install.t links an outside program, so not under sanitizers
TEST_SCRIPTS ?= tests/cli.t tests/install.t tests/crashtest.t tests/layering.t

.PHONY: all check test asan tsan valgrind torture fuzz install uninstall abi-check \
	abi-baseline clean deps bench bench-quick demo
all: $(B)/libpstm.a $(B)/libpstm.so.$(VERSION) $(TOOLS) $(EXAMPLES) $(TESTS)

$(B)/lib/%.o: lib/%.c $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) $(TLSFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

$(B)/testlib/%.o: lib/%.c $(LIB_HDR)
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -DPSTM_TESTING -fvisibility=hidden -c $< -o $@

$(TLIB): $(TLIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/libpstm.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/libpstm.so.$(VERSION): $(LIB_OBJ)
	$(CC) $(ALLCFLAGS) -shared -Wl,-soname,libpstm.so.$(SOMAJOR) \
	    -Wl,--version-script=lib/libpstm.map -o $@ $^ $(LIBDEPS)
	ln -sf libpstm.so.$(VERSION) $(B)/libpstm.so.$(SOMAJOR)
	ln -sf libpstm.so.$(SOMAJOR) $(B)/libpstm.so

# tools and tests link the static library: they may use internal headers.
# The CLI is tools/pstm.c plus one tools/cmd_*.c per larger command.
CLI_SRC = tools/pstm.c tools/cli_util.c tools/emit.c tools/bytes.c $(wildcard tools/cmd_*.c)
$(B)/pstm: $(CLI_SRC) tools/*.h $(B)/libpstm.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -Itools $(CLI_SRC) -o $@ $(B)/libpstm.a $(LIBDEPS) $(JSONC)

# pstm-crashtest exports the API (-rdynamic, the whole archive) to the
# workload objects it loads, which therefore link no library themselves
# It links the test build of the library: its power-failure campaigns use
# the simulator.
CRASHTEST_SRC = $(wildcard tools/crashtest/*.c) tools/cli_util.c tools/emit.c
CRASHTEST_LIB = $(TLIB)
$(B)/pstm-crashtest: $(CRASHTEST_SRC) tools/crashtest/*.h tools/*.h \
		include/pstm_crashtest.h $(CRASHTEST_LIB)
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -Itools -rdynamic $(CRASHTEST_SRC) -o $@ \
	    -Wl,--whole-archive $(CRASHTEST_LIB) -Wl,--no-whole-archive $(LIBDEPS) -ldl \
	    $(JSONC)

$(B)/examples/%.so: examples/%.c include/pstm_crashtest.h
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -fPIC -shared $< -o $@

$(B)/examples/%: examples/%.c $(B)/libpstm.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) $< -o $@ $(B)/libpstm.a $(LIBDEPS)

$(B)/tests/helpers.o: tests/helpers.c tests/helpers.h
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -c $< -o $@

$(B)/tests/pstmd_util.o: tests/pstmd_util.c tests/pstmd_util.h tests/helpers.h lib/wire.h
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -c $< -o $@

CXX     ?= g++
$(B)/tests/%: tests/%.cpp $(B)/libpstm.a include/pstm.h
	@mkdir -p $(@D)
	$(CXX) -std=c++17 -Wall -Wextra -Werror $(OPT) -g $(XCFLAGS) -Iinclude -pthread \
	    $< -o $@ $(B)/libpstm.a $(LIBDEPS)

$(B)/tests/test_wire: tests/fuzz/fuzz_wire.c
$(B)/tests/%: tests/%.c $(TEST_HELP) $(TLIB) tests/helpers.h tests/pstmd_util.h
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) $< -o $@ $(TEST_HELP) $(TLIB) $(LIBDEPS) $(TESTLIBS)

# pstm conflicts --json is read with json-c
$(B)/tests/test_conflict: TESTLIBS += $(JSONC)

deps:
	@scripts/install-deps.sh

# prove runs each test binary; each prints TAP (cmocka)
test: all
	PSTM_BIN=$(B) prove -f $(TESTS) $(TEST_SCRIPTS)
	$(if $(XCFLAGS),,$(MAKE) python-test)

# the tests, then a one-minute benchmark smoke run (every baseline's
# invariant must hold; figures are not judged here)
check: deps
	$(MAKE) test
	$(MAKE) bench-quick

asan:
	$(MAKE) B=build-asan OPT=-O1 \
	    XCFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    TEST_SCRIPTS="tests/cli.t tests/crashtest.t" test

tsan:
	TSAN_OPTIONS="halt_on_error=1 $(TSAN_OPTIONS)" \
	$(MAKE) B=build-tsan OPT=-O1 XCFLAGS="-fsanitize=thread" \
	    TEST_SCRIPTS="tests/cli.t tests/crashtest.t" test

# long crash campaigns (make check runs the short versions: 200 kill rounds,
# 500 power-failure images)
torture: all
	PSTM_KILL_ROUNDS=10000 $(B)/tests/test_recovery
	PSTM_POWERFAIL_IMAGES=100000 $(B)/tests/test_powerfail
	PSTM_POWERFAIL_IMAGES=20000 $(B)/tests/test_relaxed
	PSTM_KILL_ROUNDS=4000 PSTM_POWERFAIL_IMAGES=20000 $(B)/tests/test_taskq
	$(B)/pstm-crashtest --relaxed --rounds 2000 --point-rounds 10 --powerfail 2000 \
	    /dev/shm/pstm-torture-relaxed.region
	$(B)/pstm-crashtest --rounds 5000 --point-rounds 20 shm:pstm-torture
	$(B)/pstm-crashtest --rounds 2000 --point-rounds 10 --powerfail 5000 \
	    /dev/shm/pstm-torture.region
	@echo "torture: every campaign passed"

# libFuzzer over the region-reading paths (tests/fuzz/fuzz_region.c):
# superblock validation, pstm check, fresh-boot open with log replay.
# Needs clang (Debian: clang); not part of make check.
FUZZ_SECONDS ?= 120
fuzz:
	@command -v clang >/dev/null || { echo "make fuzz needs clang (apt-get install clang)"; exit 1; }
	@mkdir -p $(B)/fuzz/corpus
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    -D_GNU_SOURCE -Iinclude -Ilib -pthread tests/fuzz/fuzz_region.c $(LIB_SRC) \
	    -o $(B)/fuzz/fuzz_region $(LIBDEPS)
	$(B)/fuzz/fuzz_region $(B)/fuzz/corpus -max_total_time=$(FUZZ_SECONDS) -timeout=10

# libFuzzer over pstmd's message parser (tests/fuzz/fuzz_wire.c), from
# the corpus kept in tests/fuzz/wire_corpus/ (make test replays it in
# tests/test_wire.c); new finds land in $(B)/fuzz/wire_corpus.
.PHONY: fuzz-wire
fuzz-wire:
	@command -v clang >/dev/null || { echo "make fuzz-wire needs clang (apt-get install clang)"; exit 1; }
	@mkdir -p $(B)/fuzz/wire_corpus
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    -D_GNU_SOURCE -Iinclude -Ilib tests/fuzz/fuzz_wire.c lib/wire.c \
	    -o $(B)/fuzz/fuzz_wire
	$(B)/fuzz/fuzz_wire $(B)/fuzz/wire_corpus tests/fuzz/wire_corpus \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=10 -max_len=8300
fuzz: fuzz-wire

# every test program under memcheck (children included: they are forks)
valgrind: all
	@for t in $(TESTS); do echo "== valgrind $$t"; \
	    PSTM_KILL_ROUNDS=30 PSTM_LARGE_WORDS=50000 PSTM_POWERFAIL_IMAGES=100 \
	    valgrind -q --error-exitcode=99 --leak-check=full \
	        --errors-for-leak-kinds=definite $$t >/dev/null || exit 1; done
	@echo "valgrind: all clean"

# ------------------------------------------------------------ install
# make install builds only what it installs: the library, the two tools
# (pstm-crashtest links the test build of the library, which needs no
# cmocka) and nothing of tests/ or examples/.  make uninstall removes
# exactly these files, and the one folder that is pstm's own, $(DOCDIR).
INST_HDR  = $(notdir $(wildcard include/*.h))
INST_MAN1 = pstm.1 pstm-crashtest.1
INST_MAN3 = pstm.3 pstm_ds.3
INST_DOC  = README.md $(notdir $(wildcard docs/*.md))
INST_LIB  = libpstm.a libpstm.so.$(VERSION) libpstm.so.$(SOMAJOR) libpstm.so
INST_BIN  = pstm pstm-crashtest
D = $(DESTDIR)

install: $(B)/libpstm.a $(B)/libpstm.so.$(VERSION) $(TOOLS)
	install -d $(D)$(INCLUDEDIR) $(D)$(LIBDIR) $(D)$(PKGCONFIGDIR) $(D)$(BINDIR) \
	    $(D)$(MANDIR)/man1 $(D)$(MANDIR)/man3 $(D)$(DOCDIR) $(D)$(BASHCOMPDIR)
	install -m 644 $(addprefix include/,$(INST_HDR)) $(D)$(INCLUDEDIR)/
	install -m 644 $(B)/libpstm.a $(D)$(LIBDIR)/
	install -m 755 $(B)/libpstm.so.$(VERSION) $(D)$(LIBDIR)/
	ln -sf libpstm.so.$(VERSION) $(D)$(LIBDIR)/libpstm.so.$(SOMAJOR)
	ln -sf libpstm.so.$(SOMAJOR) $(D)$(LIBDIR)/libpstm.so
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    lib/pstm.pc.in > $(D)$(PKGCONFIGDIR)/pstm.pc
	chmod 644 $(D)$(PKGCONFIGDIR)/pstm.pc
	install -m 755 $(addprefix $(B)/,$(INST_BIN)) $(D)$(BINDIR)/
	install -m 644 $(addprefix docs/,$(INST_MAN1)) $(D)$(MANDIR)/man1/
	install -m 644 $(addprefix docs/,$(INST_MAN3)) $(D)$(MANDIR)/man3/
	install -m 644 README.md $(addprefix docs/,$(filter-out README.md,$(INST_DOC))) \
	    $(D)$(DOCDIR)/
	install -m 644 scripts/pstm.bash-completion $(D)$(BASHCOMPDIR)/pstm
	ln -sf pstm $(D)$(BASHCOMPDIR)/pstm-crashtest

uninstall:
	rm -f $(addprefix $(D)$(INCLUDEDIR)/,$(INST_HDR)) \
	    $(addprefix $(D)$(LIBDIR)/,$(INST_LIB)) $(D)$(PKGCONFIGDIR)/pstm.pc \
	    $(addprefix $(D)$(BINDIR)/,$(INST_BIN)) \
	    $(addprefix $(D)$(MANDIR)/man1/,$(INST_MAN1)) \
	    $(addprefix $(D)$(MANDIR)/man3/,$(INST_MAN3)) \
	    $(addprefix $(D)$(DOCDIR)/,$(INST_DOC)) \
	    $(D)$(BASHCOMPDIR)/pstm $(D)$(BASHCOMPDIR)/pstm-crashtest
	-rmdir $(D)$(DOCDIR) 2>/dev/null

# ------------------------------------------------------------ pstm-kv
# The Redis-protocol server (tools/kv/: one file per concept), installed
# beside pstm; tests/kv.t drives it with redis-cli; make bench-kv compares
# it with redis-server (bench/kv.sh).
KV_SRC = $(wildcard tools/kv/*.c)
$(B)/pstm-kv: $(KV_SRC) $(wildcard tools/kv/*.h) $(B)/libpstm.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -Itools/kv $(KV_SRC) -o $@ $(B)/libpstm.a $(LIBDEPS)
all install: $(B)/pstm-kv
INST_BIN  += pstm-kv
INST_MAN1 += pstm-kv.1
TEST_SCRIPTS += tests/kv.t
.PHONY: bench-kv
bench-kv: $(B)/pstm-kv
	PSTM_BIN=$(B) sh bench/kv.sh

# -------------------------------------------------------------- pstmd
# The coordinator daemon (daemon/: one file per concept, docs/pstmd.8).
# Like the CLI it links the static library: it runs the library's own
# recovery and reads its process tables (internal headers).  With
# libsystemd (pkg-config) it sends sd_notify readiness and takes a
# socket-activated listener; without, it runs the same otherwise.
# make install puts it in SBINDIR with its systemd units (from
# daemon/pstmd.service.in, daemon/pstmd.socket.in) and pstmd(8).
SYSTEMD_CFLAGS := $(shell pkg-config --exists libsystemd 2>/dev/null && echo -DHAVE_LIBSYSTEMD)
SYSTEMD_LIBS   := $(shell pkg-config --exists libsystemd 2>/dev/null && pkg-config --libs libsystemd)
DAEMON_SRC = $(wildcard daemon/*.c)
$(B)/pstmd: $(DAEMON_SRC) $(wildcard daemon/*.h) $(B)/libpstm.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -Idaemon $(SYSTEMD_CFLAGS) $(DAEMON_SRC) -o $@ \
	    $(B)/libpstm.a $(LIBDEPS) $(SYSTEMD_LIBS)
SBINDIR ?= $(PREFIX)/sbin
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
all install: $(B)/pstmd
INST_MAN8 = pstmd.8
INST_UNITS = pstmd.service pstmd.socket
.PHONY: install-pstmd uninstall-pstmd
install: install-pstmd
install-pstmd: $(B)/pstmd
	install -d $(D)$(SBINDIR) $(D)$(MANDIR)/man8 $(D)$(SYSTEMDUNITDIR)
	install -m 755 $(B)/pstmd $(D)$(SBINDIR)/
	install -m 644 docs/pstmd.8 $(D)$(MANDIR)/man8/
	for u in $(INST_UNITS); do \
	    sed -e 's|@SBINDIR@|$(SBINDIR)|g' daemon/$$u.in > $(D)$(SYSTEMDUNITDIR)/$$u && \
	    chmod 644 $(D)$(SYSTEMDUNITDIR)/$$u || exit 1; done
uninstall: uninstall-pstmd
uninstall-pstmd:
	rm -f $(D)$(SBINDIR)/pstmd $(D)$(MANDIR)/man8/pstmd.8 \
	    $(addprefix $(D)$(SYSTEMDUNITDIR)/,$(INST_UNITS))

# ---------------------------------------------------------------- ABI
# libpstm.so against abi/libpstm.abi, the ABI of the last release (abidw
# output; types from include/ only).  Fails on any change to an existing
# symbol or public type that abi/libpstm.abignore does not allow (fields
# appended at the end of a struct, enumerators added); added symbols are
# listed, and pass.  Needs abigail-tools and a build with -g (the default).
# Not part of make check: a release refreshes the baseline with
# make abi-baseline (README, "ABI").
ABI_BASE = abi/libpstm.abi
ABI_SUPP = abi/libpstm.abignore
ABIGAIL  = abidiff --no-show-locs --drop-private-types --headers-dir2 include --suppressions $(ABI_SUPP)
abi-check: $(B)/libpstm.so.$(VERSION)
	@command -v abidiff >/dev/null || \
	    { echo "make abi-check needs abidiff (apt-get install abigail-tools)"; exit 1; }
	@rc=0; $(ABIGAIL) --no-added-syms $(ABI_BASE) $< || rc=$$?; \
	if [ $$rc -ne 0 ]; then \
	    echo "abi-check: $< breaks the ABI of $(ABI_BASE) (abidiff exit $$rc)"; exit 1; fi; \
	$(ABIGAIL) $(ABI_BASE) $< >$(B)/abi-added.txt || \
	    { cat $(B)/abi-added.txt; echo "abi-check: compatible additions only (above)"; exit 0; }; \
	echo "abi-check: $< has the ABI of $(ABI_BASE)"

abi-baseline: $(B)/libpstm.so.$(VERSION)
	@mkdir -p abi
	abidw --no-corpus-path --headers-dir include --drop-private-types $< | \
	    sed "s| comp-dir-path='[^']*'||" > $(ABI_BASE)

demo: deps all
	scripts/demo.sh

clean:
	rm -rf build build-asan build-tsan

# ------------------------------------------------------------- Python
# The CPython extension (python/, issue 17): pstm._core linked with the
# static library, beside the package's .py files in $(B)/python, so that
# PYTHONPATH=$(B)/python imports it with nothing installed.  Debian's
# python3 and python3-dev; the tests need python3-pytest.  make test runs
# them after prove, except in sanitizer builds (XCFLAGS set: a
# sanitized library cannot load into a plain interpreter).
PYTHON  ?= $(firstword $(wildcard /usr/bin/python3) python3)
PY_INC   = $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
PY_EXT  := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))' 2>/dev/null)
PY_SRC   = $(wildcard python/pstm/*.py)
PY_MOD   = $(B)/python/pstm/_core$(PY_EXT)
.PHONY: python python-test
python: $(PY_MOD) $(PY_SRC:python/%=$(B)/python/%)

$(PY_MOD): python/pstm/_core.c include/pstm.h include/pstm_ds.h $(B)/libpstm.a
	@mkdir -p $(@D)
	$(CC) $(ALLCFLAGS) -isystem $(PY_INC) -fPIC -shared -fvisibility=hidden $< \
	    -o $@ $(B)/libpstm.a $(LIBDEPS)

$(B)/python/pstm/%.py: python/pstm/%.py
	@mkdir -p $(@D)
	cp $< $@

# pytest's exit code 5 (no tests collected) fails like any other
python-test: python
	@PYTHONPATH=$(B)/python $(PYTHON) -m pytest -q -p no:cacheprovider python/tests; \
	rc=$$?; [ $$rc -ne 5 ] || echo "python-test: pytest collected no tests"; exit $$rc

# benchmark targets (bench, bench-quick) live beside the benchmarks
-include bench/bench.mk
