# cmkfs — one plain GNU Makefile for the whole tree.
#
#   make            build everything into $(BUILD)/ (default build/)
#   make test       install missing dependencies, build, run every test
#   make demo       install missing dependencies, build, run the demo
#   make bench      benchmarks, as root: raw, cmkfs, loop and gocryptfs side
#                   by side (bench/bench.py; BENCH_ARGS='--db --repeat 5')
#   make bench-quick  the same, short (the smoke run)
#   make bench-crypto the sector cipher against openssl speed, alone
#   make asan       ASan+UBSan build in build-asan/, running the tests on it
#   make analyze    cppcheck and clang-tidy over the sources, pyflakes over
#                   the Python
#   make install    install into $(DESTDIR)$(PREFIX); `cmkfs bench` runs the
#                   installed benchmark; the token plugin into libcryptsetup's
#                   token directory (TOKENDIR=DIR to choose another)
#   make deb        the Debian package, checked by lintian, into build/deb/
#   make clean
#
# V=1 shows full command lines; WERROR=1 (or CI=true) turns warnings into
# errors; T=PATTERN runs only the tests whose name matches.

VERSION := 0.1.0
BUILD ?= build
PREFIX ?= /usr/local
DESTDIR ?=

CC ?= cc
PKG_CONFIG ?= pkg-config

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-7s %s\n' $(1) $(2)
endif

CFLAGS ?= -O2 -g
WARNINGS := -Wall -Wextra -Wvla -Wcast-qual -Wmissing-prototypes \
	-Wstrict-prototypes -Wwrite-strings -Wformat=2 -Wshadow
ifeq ($(CI),true)
WERROR ?= 1
endif
ifeq ($(WERROR),1)
WARNINGS += -Werror
endif
ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all \
	-fno-omit-frame-pointer
endif

BASE_CFLAGS := -std=gnu11 -D_GNU_SOURCE $(WARNINGS) $(SANFLAGS) -MMD -MP \
	-DCMKFS_VERSION='"$(VERSION)"'
# Full RELRO, and every symbol bound at startup: besides the hardening, no
# lazy-binding trampoline runs later, and it saves all vector registers on
# the stack (xsave) — key bytes an AES or memcpy left in a register would
# land in a dead stack frame.
LDFLAGS += $(SANFLAGS) -Wl,-z,relro,-z,now

# Libraries, always through pkg-config.  Evaluated lazily so that `make
# clean` or `make test` (which installs them first) work without them.
pc_cflags = $(shell $(PKG_CONFIG) --cflags $(1))
pc_libs = $(shell $(PKG_CONFIG) --libs $(1))

# --- modules ---------------------------------------------------------------
# Each module is a static library.  Its one public header lives in
# include/<module>/, its internal headers beside its code.  A module's
# sources are compiled with the include paths of its own folder and of the
# public headers of the modules below it, nothing else, so an include
# against the layering fails to build:
#
#   cli -> volume -> fs, kms, luks2, crypto
#   token -> volume -> kms, luks2, crypto
#   fs -> crypto, obs;  kms -> crypto;  kms/kmsd -> obs;  luks2 -> crypto
#
# Only a module's own sources see its libraries' headers: crypto/ alone
# OpenSSL's, crypto/luks2/ libcryptsetup's, kms/ curl's and libmicrohttpd's,
# fs/ libfuse's, liburing's and libblkid's; token/ (the libcryptsetup token
# plugin) libcryptsetup's too, for the token ABI and its log.

CRYPTO_SRC := $(wildcard crypto/*.c)
CRYPTO_LIB := $(BUILD)/libcmkfs-crypto.a
CRYPTO_PKGS := libcrypto
CRYPTO_INC := -Iinclude/crypto

# crypto/luks2/: the LUKS2 volume format over libcryptsetup.
LUKS2_SRC := $(wildcard crypto/luks2/*.c)
LUKS2_LIB := $(BUILD)/libcmkfs-luks2.a
LUKS2_PKGS := libcryptsetup json-c
LUKS2_INC := -Iinclude/luks2

# obs/: the metrics the daemons show (Prometheus text, a local HTTP
# endpoint, a file); libc alone.
OBS_SRC := $(wildcard obs/*.c)
OBS_LIB := $(BUILD)/libcmkfs-obs.a
OBS_INC := -Iinclude/obs

# kms/: the client and what it shares with the service (SigV4, errors).
KMS_SRC := $(wildcard kms/*.c)
KMS_LIB := $(BUILD)/libcmkfs-kms.a
KMS_PKGS := json-c libcurl
KMS_INC := -Iinclude/kms

# kms/kmsd/: the local KMS service, a library plus its main().
KMSD_SRC := $(filter-out kms/kmsd/main.c,$(wildcard kms/kmsd/*.c))
KMSD_LIB := $(BUILD)/libcmkfs-kmsd.a
KMSD_PKGS := json-c libmicrohttpd
KMSD := $(BUILD)/cmkfs-kmsd

# fs/: the FUSE daemon and mount orchestration.
FS_SRC := $(wildcard fs/*.c)
FS_LIB := $(BUILD)/libcmkfs-fs.a
FS_PKGS := fuse3 liburing blkid
FS_INC := -Iinclude/fs

# volume/: the volume as users know it, the one place LUKS2 meets KMS.
VOLUME_SRC := $(wildcard volume/*.c)
VOLUME_LIB := $(BUILD)/libcmkfs-volume.a
VOLUME_PKGS := json-c
VOLUME_INC := -Iinclude/volume

CLI_SRC := $(wildcard cli/*.c)
CMKFS := $(BUILD)/cmkfs

# token/: the external LUKS2 token plugins that let cryptsetup and
# systemd-cryptsetup open a volume through its key, one for each token type
# (libcryptsetup loads libcryptsetup-token-TYPE.so), built from one source
# (TOKEN_TYPE says which).  Shared objects, so they and what they link are
# built position-independent (the PIC tree below).
TOKEN_SRC := token/plugin.c
TOKEN_TYPES := aws-kms kmip
TOKEN_SOS := $(foreach t,$(TOKEN_TYPES),$(BUILD)/libcryptsetup-token-$(t).so)
TOKEN_PKGS := libcryptsetup json-c
TOKEN_SYM := token/libcryptsetup-token.sym
# The test's shim: libcryptsetup 2.6 asks crypt_token_external_path()
# where plugins are, with no option to say another place.
TOKEN_PATH_SHIM := $(BUILD)/tests/token-path.so
# A test plugin that always wants a PIN (tests/tools/pin-token.c).
PIN_TOKEN := $(BUILD)/tests/pin-token.so
# Where libcryptsetup looks for token plugins, as it says itself
# (token/tokendir.c, run by `make install`); TOKENDIR= installs elsewhere.
TOKENDIR_PROBE := $(BUILD)/tokendir

BENCH_SRC := bench/crypto_speed.c
BENCH_CRYPTO := $(BUILD)/cmkfs-crypto-speed

TEST_UTIL_SRC := tests/tools/hex.c
TEST_TOOL_SRC := tests/tools/xts-check.c tests/tools/creds-probe.c \
	tests/tools/kms-probe.c tests/tools/vol-tool.c tests/tools/keyed.c \
	tests/tools/kmip-probe.c
UNIT_SRC := $(wildcard tests/unit/test_*.c)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)

UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRC))
TEST_TOOLS := $(BUILD)/tests/xts-check $(BUILD)/tests/creds-probe \
	$(BUILD)/tests/kms-probe $(BUILD)/tests/vol-tool $(BUILD)/tests/keyed \
	$(BUILD)/tests/kmip-probe
FUZZERS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))

PROGRAMS := $(CMKFS) $(KMSD) $(BENCH_CRYPTO)
MAN_PAGES := $(BUILD)/man/cmkfs.8 $(BUILD)/man/cmkfs-kmsd.8 \
	$(BUILD)/man/cmkfs.conf.5
ALL_SRC := $(CRYPTO_SRC) $(LUKS2_SRC) $(KMS_SRC) $(KMSD_SRC) \
	kms/kmsd/main.c $(FS_SRC) $(VOLUME_SRC) $(CLI_SRC) $(TOKEN_SRC) \
	$(OBS_SRC) $(BENCH_SRC) $(TEST_UTIL_SRC) $(TEST_TOOL_SRC) $(UNIT_SRC) $(FUZZ_SRC) \
	tests/tools/token-path.c tests/tools/pin-token.c \
	token/tokendir.c
# Tests see everything, internal headers included.
PUBLIC_INC := $(CRYPTO_INC) $(LUKS2_INC) $(KMS_INC) $(FS_INC) $(VOLUME_INC) \
	$(OBS_INC)
INCLUDES := $(PUBLIC_INC) -Icrypto -Icrypto/luks2 -Ikms -Ikms/kmsd -Ifs \
	-Ivolume -Icli -Iobs -Itests/tools

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

# Objects reached through pattern rules are not intermediate: keep them.
.SECONDARY:

.PHONY: all test run-tests demo demo-kmip bench bench-quick bench-crypto asan analyze \
	install clean deps format check-format fuzz programs deb

all: $(PROGRAMS) $(UNIT_TESTS) $(TEST_TOOLS) $(FUZZERS) $(TOKEN_SOS) \
	$(TOKEN_PATH_SHIM) $(PIN_TOKEN) $(TOKENDIR_PROBE) $(MAN_PAGES)

# Per-directory include paths and library flags (the more specific pattern
# wins: crypto/luks2/ over crypto/, kms/kmsd/ over kms/), the same in the
# normal object tree ($(BUILD)/obj) and the position-independent one
# ($(BUILD)/pic-obj) that shared objects are linked from.
$(BUILD)/obj/crypto/%.o $(BUILD)/pic-obj/crypto/%.o: MOD_CFLAGS = \
	$(CRYPTO_INC) -Icrypto $(call pc_cflags,$(CRYPTO_PKGS))
$(BUILD)/obj/crypto/luks2/%.o $(BUILD)/pic-obj/crypto/luks2/%.o: MOD_CFLAGS = \
	$(CRYPTO_INC) $(LUKS2_INC) -Icrypto/luks2 \
	$(call pc_cflags,$(LUKS2_PKGS))
$(BUILD)/obj/kms/%.o $(BUILD)/pic-obj/kms/%.o: MOD_CFLAGS = \
	$(CRYPTO_INC) $(KMS_INC) -Ikms $(call pc_cflags,$(KMS_PKGS))
$(BUILD)/obj/kms/kmsd/%.o: MOD_CFLAGS = $(CRYPTO_INC) $(KMS_INC) -Ikms \
	-Ikms/kmsd $(OBS_INC) $(call pc_cflags,$(KMSD_PKGS))
$(BUILD)/obj/fs/%.o: MOD_CFLAGS = $(CRYPTO_INC) $(FS_INC) -Ifs $(OBS_INC) \
	$(call pc_cflags,$(FS_PKGS))
$(BUILD)/obj/obs/%.o: MOD_CFLAGS = $(OBS_INC) -Iobs
$(BUILD)/obj/volume/%.o $(BUILD)/pic-obj/volume/%.o: MOD_CFLAGS = \
	$(CRYPTO_INC) $(LUKS2_INC) $(KMS_INC) $(FS_INC) $(VOLUME_INC) \
	-Ivolume $(call pc_cflags,$(VOLUME_PKGS))
$(BUILD)/pic-obj/token/%.o: MOD_CFLAGS = $(CRYPTO_INC) $(LUKS2_INC) \
	$(KMS_INC) $(FS_INC) $(VOLUME_INC) -Itoken \
	$(call pc_cflags,$(TOKEN_PKGS))
$(BUILD)/obj/cli/%.o: MOD_CFLAGS = $(PUBLIC_INC) -Icli \
	$(call pc_cflags,json-c)
$(BUILD)/obj/bench/%.o: MOD_CFLAGS = $(CRYPTO_INC)
$(BUILD)/obj/tests/%.o $(BUILD)/pic-obj/tests/%.o: MOD_CFLAGS = \
	$(INCLUDES) $(call pc_cflags,cmocka json-c)
$(BUILD)/obj/token/tokendir.o $(BUILD)/pic-obj/tests/tools/token-path.o: \
	MOD_CFLAGS = $(call pc_cflags,libcryptsetup)

$(BUILD)/obj/%.o: %.c
	$(call msg,CC,$<)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(BASE_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(MOD_CFLAGS) -c -o $@ $<

$(BUILD)/pic-obj/%.o: %.c
	$(call msg,CC,$<)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(BASE_CFLAGS) $(CPPFLAGS) $(CFLAGS) -fPIC $(MOD_CFLAGS) \
		-c -o $@ $<

%.a:
	$(call msg,AR,$@)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(CRYPTO_LIB): $(call obj,$(CRYPTO_SRC))
$(LUKS2_LIB): $(call obj,$(LUKS2_SRC))
$(KMS_LIB): $(call obj,$(KMS_SRC))
$(KMSD_LIB): $(call obj,$(KMSD_SRC))
$(FS_LIB): $(call obj,$(FS_SRC))
$(OBS_LIB): $(call obj,$(OBS_SRC))
$(VOLUME_LIB): $(call obj,$(VOLUME_SRC))

# The same modules position-independent, for the token plugin.
picobj = $(patsubst %.c,$(BUILD)/pic-obj/%.o,$(1))
PIC_CRYPTO_LIB := $(BUILD)/pic/libcmkfs-crypto.a
PIC_LUKS2_LIB := $(BUILD)/pic/libcmkfs-luks2.a
PIC_KMS_LIB := $(BUILD)/pic/libcmkfs-kms.a
PIC_VOLUME_LIB := $(BUILD)/pic/libcmkfs-volume.a
$(PIC_CRYPTO_LIB): $(call picobj,$(CRYPTO_SRC))
$(PIC_LUKS2_LIB): $(call picobj,$(LUKS2_SRC))
$(PIC_KMS_LIB): $(call picobj,$(KMS_SRC))
$(PIC_VOLUME_LIB): $(call picobj,$(VOLUME_SRC))

# Link order: dependants before dependencies.
CRYPTO_LDLIBS = $(CRYPTO_LIB) $(call pc_libs,$(CRYPTO_PKGS))
LUKS2_LDLIBS = $(LUKS2_LIB) $(call pc_libs,$(LUKS2_PKGS)) $(CRYPTO_LDLIBS)
KMS_LDLIBS = $(KMS_LIB) $(call pc_libs,$(KMS_PKGS)) $(CRYPTO_LDLIBS) \
	-lpthread
KMSD_LDLIBS = $(KMSD_LIB) $(OBS_LIB) $(call pc_libs,$(KMSD_PKGS)) \
	$(KMS_LDLIBS)
# Everything cmkfs links (the libraries twice over is harmless: the linker
# takes each archive member once).
CMKFS_LIBS := $(VOLUME_LIB) $(FS_LIB) $(OBS_LIB) $(KMS_LIB) $(LUKS2_LIB) \
	$(CRYPTO_LIB)
CMKFS_LDLIBS = $(VOLUME_LIB) $(FS_LIB) $(OBS_LIB) $(call pc_libs,$(FS_PKGS) \
	$(VOLUME_PKGS)) $(KMS_LIB) $(call pc_libs,$(KMS_PKGS)) \
	$(LUKS2_LDLIBS) -lpthread
ALL_LIBS := $(CMKFS_LIBS) $(KMSD_LIB)
ALL_LDLIBS = $(VOLUME_LIB) $(FS_LIB) $(OBS_LIB) $(call pc_libs,$(FS_PKGS)) \
	$(KMSD_LDLIBS) $(LUKS2_LDLIBS)

$(CMKFS): $(call obj,$(CLI_SRC)) $(CMKFS_LIBS)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(CMKFS_LDLIBS)

$(KMSD): $(call obj,kms/kmsd/main.c) $(KMSD_LIB) $(OBS_LIB) $(KMS_LIB) \
		$(CRYPTO_LIB)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(KMSD_LDLIBS)

# Man pages: the commands and options are the programs' own help, turned
# into roff (scripts/manpage.py), the rest is written in man/*.in.
$(BUILD)/man/cmkfs.8: man/cmkfs.8.in $(CMKFS) scripts/manpage.py bench/bench.py
$(BUILD)/man/cmkfs-kmsd.8: man/cmkfs-kmsd.8.in $(KMSD) scripts/manpage.py
$(BUILD)/man/cmkfs.conf.5: man/cmkfs.conf.5.in $(CMKFS) scripts/manpage.py
$(BUILD)/man/cmkfs.8: PAGE = cmkfs
$(BUILD)/man/cmkfs-kmsd.8: PAGE = kmsd
$(BUILD)/man/cmkfs.conf.5: PAGE = plain
$(MAN_PAGES):
	$(call msg,MAN,$@)
	$(Q)mkdir -p $(@D)
	$(Q)python3 scripts/manpage.py $(PAGE) $< $(word 2,$^) > $@.tmp
	$(Q)mv $@.tmp $@

$(BENCH_CRYPTO): $(call obj,$(BENCH_SRC)) $(CRYPTO_LIB)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(CRYPTO_LDLIBS)

# The plugin: the six symbols of the version script exported, everything
# else local (so nothing of ours can collide with the host's symbols);
# -z defs fails the link on an undefined symbol instead of the dlopen() at
# boot; -z nodelete keeps it mapped after libcryptsetup dlclose()s it at
# exit, because it leaves callbacks behind in libcurl, which the host may
# also use (kms/http.c installs wiping frees as curl's allocator).
TOKEN_LDLIBS = $(PIC_VOLUME_LIB) $(PIC_KMS_LIB) $(PIC_LUKS2_LIB) \
	$(PIC_CRYPTO_LIB) $(call pc_libs,$(TOKEN_PKGS) $(VOLUME_PKGS) \
	$(KMS_PKGS) $(LUKS2_PKGS) $(CRYPTO_PKGS)) -lpthread
# A static pattern: only these objects (a pattern alone would also offer
# to make plugin-X.d.o, which make's built-in link rule then asks for when
# it looks for a way to remake the included plugin-X.d).
TOKEN_OBJS := $(foreach t,$(TOKEN_TYPES),$(BUILD)/pic-obj/token/plugin-$(t).o)
$(TOKEN_OBJS): $(BUILD)/pic-obj/token/plugin-%.o: token/plugin.c
	$(call msg,CC,$< [$*])
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(BASE_CFLAGS) $(CPPFLAGS) $(CFLAGS) -fPIC $(MOD_CFLAGS) \
		-DTOKEN_TYPE='"$*"' -c -o $@ $<
$(BUILD)/libcryptsetup-token-%.so: $(BUILD)/pic-obj/token/plugin-%.o \
		$(PIC_VOLUME_LIB) $(PIC_KMS_LIB) $(PIC_LUKS2_LIB) \
		$(PIC_CRYPTO_LIB) $(TOKEN_SYM)
	$(call msg,LD,$@)
	$(Q)$(CC) -shared $(LDFLAGS) -Wl,-z,defs -Wl,-z,nodelete \
		-Wl,--version-script=$(TOKEN_SYM) -o $@ $(filter %.o,$^) \
		$(TOKEN_LDLIBS)

TEST_UTIL_OBJ := $(call obj,$(TEST_UTIL_SRC))

$(BUILD)/tests/unit/%: $(BUILD)/obj/tests/unit/%.o $(TEST_UTIL_OBJ) $(ALL_LIBS)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(ALL_LDLIBS) \
		$(call pc_libs,cmocka)

$(BUILD)/tests/xts-check: $(call obj,tests/tools/xts-check.c) \
		$(TEST_UTIL_OBJ) $(KMS_LIB) $(CRYPTO_LIB)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(KMS_LDLIBS)

$(BUILD)/tests/creds-probe $(BUILD)/tests/kms-probe \
		$(BUILD)/tests/kmip-probe: \
		$(BUILD)/tests/%: $(BUILD)/obj/tests/tools/%.o $(KMS_LIB) $(CRYPTO_LIB)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(KMS_LDLIBS)

$(BUILD)/tests/vol-tool: $(call obj,tests/tools/vol-tool.c) $(LUKS2_LIB) \
		$(CRYPTO_LIB)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LUKS2_LDLIBS)

$(BUILD)/tests/keyed: $(call obj,tests/tools/keyed.c) $(TEST_UTIL_OBJ) \
		$(KMS_LIB) $(CRYPTO_LIB)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(KMS_LDLIBS)

$(TOKEN_PATH_SHIM): $(BUILD)/pic-obj/tests/tools/token-path.o
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -shared $(LDFLAGS) -o $@ $^

$(PIN_TOKEN): $(BUILD)/pic-obj/tests/tools/pin-token.o $(TOKEN_SYM)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -shared $(LDFLAGS) -Wl,-z,defs \
		-Wl,--version-script=$(TOKEN_SYM) -o $@ $(filter %.o,$^)

$(TOKENDIR_PROBE): $(call obj,token/tokendir.c)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(call pc_libs,libcryptsetup)

# Fuzz targets: libFuzzer needs clang; the code under test is rebuilt with
# coverage and sanitizers into $(BUILD)/fuzz-obj.  `make fuzz` runs each for
# FUZZ_SECONDS; the test suite runs a short smoke of each.
FUZZ_CC := clang
FUZZ_FLAGS := -fsanitize=fuzzer-no-link,address,undefined -g -O1
# volume/token.c: the aws-kms token parser (fuzz_luks2_json).
FUZZ_LIB_SRC := $(CRYPTO_SRC) $(LUKS2_SRC) $(KMS_SRC) $(KMSD_SRC) $(OBS_SRC) \
	volume/token.c
FUZZ_PKGS := $(KMSD_PKGS) $(KMS_PKGS) $(LUKS2_PKGS) $(CRYPTO_PKGS)
fuzzobj = $(patsubst %.c,$(BUILD)/fuzz-obj/%.o,$(1))
FUZZ_SECONDS ?= 60

$(BUILD)/fuzz-obj/%.o: %.c
	$(call msg,FUZZCC,$<)
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) -std=gnu11 -D_GNU_SOURCE -MMD -MP $(FUZZ_FLAGS) \
		$(INCLUDES) $(call pc_cflags,$(FUZZ_PKGS)) -c -o $@ $<

$(BUILD)/fuzz/%: $(BUILD)/fuzz-obj/tests/fuzz/%.o $(call fuzzobj,$(FUZZ_LIB_SRC))
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) -fsanitize=fuzzer,address,undefined -o $@ $^ \
		$(call pc_libs,$(FUZZ_PKGS)) -lpthread

fuzz: $(FUZZERS)
	@for f in $(FUZZERS); do \
		echo "fuzz: $$f for $(FUZZ_SECONDS)s"; \
		mkdir -p $(BUILD)/fuzz-corpus/$$(basename $$f); \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			$(BUILD)/fuzz-corpus/$$(basename $$f) \
			tests/fuzz/corpus/$$(basename $$f) || exit 1; \
	done

-include $(shell find $(BUILD)/obj $(BUILD)/pic-obj $(BUILD)/fuzz-obj \
	-name '*.d' 2>/dev/null)

# --- running ---------------------------------------------------------------

# Install missing packages first, so each of `make test` and `make demo`
# works alone on a fresh Debian 12 machine.
deps:
	@scripts/deps.sh --check 2>/dev/null || scripts/deps.sh

test: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) tests/run.sh $(T)

# The tests on an existing build, without the dependency check (used by asan).
run-tests: all
	@BUILD=$(BUILD) tests/run.sh $(T)

demo: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) scripts/demo.sh

# The same promise with a KMIP key server (PyKMIP) holding the key.
demo-kmip: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) scripts/demo-kmip.sh

# The benchmark suite needs root (tmpfs, FUSE, loop devices) and Debian's
# python3.  CMKFS_BENCH_CMKFS=PATH runs another cmkfs binary.
BENCH_ARGS ?=
bench: deps
	@$(MAKE) --no-print-directory all
	@/usr/bin/python3 bench/bench.py --build $(BUILD) $(BENCH_ARGS)

bench-quick: deps
	@$(MAKE) --no-print-directory all
	@/usr/bin/python3 bench/bench.py --build $(BUILD) --quick $(BENCH_ARGS)

bench-crypto: all
	@BUILD=$(BUILD) bench/crypto.sh

asan: deps
	@LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
		$(MAKE) --no-print-directory BUILD=build-asan SAN=1 run-tests

# Static analysis.  cppcheck sees the whole tree; clang-tidy each file with
# the flags it is compiled with; pyflakes the Python (Debian's pyflakes3).
PY_SRC := $(wildcard bench/*.py tests/tools/*.py scripts/*.py)
analyze:
	pyflakes3 $(PY_SRC)
	cppcheck --quiet --error-exitcode=1 --inline-suppr \
		--enable=warning,performance,portability --std=c11 \
		-D_GNU_SOURCE $(INCLUDES) $(ALL_SRC)
	clang-tidy --quiet $(ALL_SRC) -- -std=gnu11 -D_GNU_SOURCE \
		-DCMKFS_VERSION='"$(VERSION)"' $(INCLUDES) \
		$(call pc_cflags,cmocka $(CRYPTO_PKGS) $(LUKS2_PKGS) $(KMS_PKGS) \
		$(KMSD_PKGS) $(FS_PKGS))

format:
	clang-format -i $(ALL_SRC) $(wildcard */*.h */*/*.h)

check-format:
	clang-format --dry-run --Werror $(ALL_SRC) $(wildcard */*.h */*/*.h)

# What `make install` and the package ship.
programs: $(CMKFS) $(KMSD) $(BENCH_CRYPTO) $(TOKEN_SOS) $(TOKENDIR_PROBE) \
	$(MAN_PAGES)

# The systemd unit names the binary by its installed path.  `cmkfs bench`
# finds the benchmark in $(PREFIX)/lib/cmkfs, relative to its own binary
# (cli/bench.c).  The unit and the modprobe.d file go below $(PREFIX)/lib
# unless told otherwise: the Debian package puts them in /lib, where
# Debian 12's packages keep them.
BENCH_LIBDIR = $(DESTDIR)$(PREFIX)/lib/cmkfs
UNITDIR ?= $(PREFIX)/lib/systemd/system
MODPROBEDIR ?= $(PREFIX)/lib/modprobe.d
# The token plugin goes where libcryptsetup looks, whatever PREFIX is.
TOKENDIR ?= $(shell $(TOKENDIR_PROBE))
install: programs
	@test -n "$(TOKENDIR)" || { echo "install: libcryptsetup has no \
		token directory (external tokens disabled); set TOKENDIR=" >&2; \
		exit 1; }
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(PREFIX)/share/doc/cmkfs $(BENCH_LIBDIR)/bench/fio
	install -m 0755 $(CMKFS) $(DESTDIR)$(PREFIX)/bin/cmkfs
	install -m 0755 $(KMSD) $(DESTDIR)$(PREFIX)/bin/cmkfs-kmsd
	sed 's|/usr/local/bin/|$(PREFIX)/bin/|g' systemd/cmkfs@.service \
		> $(DESTDIR)$(UNITDIR)/cmkfs@.service
	install -m 0644 systemd/cmkfs.conf.example \
		$(DESTDIR)$(PREFIX)/share/doc/cmkfs/cmkfs.conf.example
	install -m 0755 $(BENCH_CRYPTO) $(BENCH_LIBDIR)/cmkfs-crypto-speed
	install -m 0755 bench/bench.py $(BENCH_LIBDIR)/bench/bench.py
	install -m 0644 bench/fio/workloads.fio \
		$(BENCH_LIBDIR)/bench/fio/workloads.fio
	install -d $(DESTDIR)$(PREFIX)/share/man/man8 \
		$(DESTDIR)$(PREFIX)/share/man/man5
	install -m 0644 $(filter %.8,$(MAN_PAGES)) \
		$(DESTDIR)$(PREFIX)/share/man/man8
	install -m 0644 $(filter %.5,$(MAN_PAGES)) \
		$(DESTDIR)$(PREFIX)/share/man/man5
	install -d $(DESTDIR)$(MODPROBEDIR)
	install -m 0644 modprobe/cmkfs.conf $(DESTDIR)$(MODPROBEDIR)/cmkfs.conf
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 0644 completion/cmkfs.bash \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/cmkfs
	ln -sf cmkfs \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/cmkfs-kmsd
	install -d $(DESTDIR)$(TOKENDIR)
	install -m 0644 $(TOKEN_SOS) $(DESTDIR)$(TOKENDIR)

# The Debian package (debian/), built from a copy of the tree in
# $(DEB_OUT)/src — so that nothing lands beside the tree and no build of
# ours leaks into it — then checked by lintian, which fails the target on
# any error.  The .deb is left in $(DEB_OUT).
DEB_OUT ?= $(BUILD)/deb
DEB_VERSION = $(shell dpkg-parsechangelog -S Version -l debian/changelog)
deb: deps
	@test "$(DEB_VERSION)" = "$(VERSION)" || { echo "deb: debian/changelog \
		is at $(DEB_VERSION), the Makefile at $(VERSION)" >&2; exit 1; }
	rm -rf $(DEB_OUT)/src && mkdir -p $(DEB_OUT)/src/cmkfs-$(VERSION)
	tar -c --exclude=./.git --exclude='./build' --exclude='./build-*' \
		--exclude=node_modules --exclude=./bench/results . | \
		tar -x -C $(DEB_OUT)/src/cmkfs-$(VERSION)
	cd $(DEB_OUT)/src/cmkfs-$(VERSION) && \
		env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
		dpkg-buildpackage -b -us -uc -J$(DEB_JOBS)
	lintian --fail-on error $(DEB_OUT)/src/cmkfs_$(VERSION)_*.changes
	mv $(DEB_OUT)/src/cmkfs_$(VERSION)_*.deb $(DEB_OUT)/
	@echo "deb: $$(ls $(DEB_OUT)/cmkfs_$(VERSION)_*.deb | grep -v dbgsym)"
DEB_JOBS ?= $(shell nproc)

clean:
	rm -rf build build-asan
