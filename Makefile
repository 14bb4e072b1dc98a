# cmkfs — one plain GNU Makefile for the whole tree.
#
#   make            build everything into $(BUILD)/ (default build/)
#   make test       install missing dependencies, build, run every test
#   make demo       install missing dependencies, build, run the demo
#   make bench      benchmarks (the crypto ceiling for now)
#   make asan       ASan+UBSan build in build-asan/, running the tests on it
#   make analyze    cppcheck and clang-tidy over the sources
#   make install    install into $(DESTDIR)$(PREFIX)
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
LDFLAGS += $(SANFLAGS)

# Libraries, always through pkg-config.  Evaluated lazily so that `make
# clean` or `make test` (which installs them first) work without them.
pc_cflags = $(shell $(PKG_CONFIG) --cflags $(1))
pc_libs = $(shell $(PKG_CONFIG) --libs $(1))

# --- modules ---------------------------------------------------------------
# Each module is a static library; only its own sources see its libraries'
# headers (crypto/ alone gets OpenSSL's flags).

CRYPTO_SRC := crypto/secmem.c crypto/sector.c crypto/cipher_openssl.c
CRYPTO_LIB := $(BUILD)/libcmkfs-crypto.a
CRYPTO_PKGS := libcrypto

CLI_SRC := cli/main.c cli/util.c
CMKFS := $(BUILD)/cmkfs

BENCH_SRC := bench/crypto_speed.c
BENCH_CRYPTO := $(BUILD)/cmkfs-crypto-speed

UNIT_TESTS := $(BUILD)/tests/unit/test_crypto
TEST_TOOLS := $(BUILD)/tests/xts-check

PROGRAMS := $(CMKFS) $(BENCH_CRYPTO)
TEST_UTIL_SRC := tests/tools/hex.c
ALL_SRC := $(CRYPTO_SRC) $(CLI_SRC) $(BENCH_SRC) $(TEST_UTIL_SRC) \
	tests/unit/test_crypto.c tests/tools/xts-check.c

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

.PHONY: all test run-tests demo bench asan analyze install clean deps \
	format check-format

all: $(PROGRAMS) $(UNIT_TESTS) $(TEST_TOOLS)

# Per-directory include paths and library flags.
$(BUILD)/obj/crypto/%.o: MOD_CFLAGS = -Icrypto $(call pc_cflags,$(CRYPTO_PKGS))
$(BUILD)/obj/cli/%.o: MOD_CFLAGS = -Icrypto -Icli
$(BUILD)/obj/bench/%.o: MOD_CFLAGS = -Icrypto
$(BUILD)/obj/tests/%.o: MOD_CFLAGS = -Icrypto -Itests/tools \
	$(call pc_cflags,cmocka)

$(BUILD)/obj/%.o: %.c
	$(call msg,CC,$<)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(BASE_CFLAGS) $(CFLAGS) $(MOD_CFLAGS) -c -o $@ $<

$(CRYPTO_LIB): $(call obj,$(CRYPTO_SRC))
	$(call msg,AR,$@)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

CRYPTO_LDLIBS = $(CRYPTO_LIB) $(call pc_libs,$(CRYPTO_PKGS))

$(CMKFS): $(call obj,$(CLI_SRC)) $(CRYPTO_LIB)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(call obj,$(CLI_SRC)) $(CRYPTO_LDLIBS)

$(BENCH_CRYPTO): $(call obj,$(BENCH_SRC)) $(CRYPTO_LIB)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(call obj,$(BENCH_SRC)) $(CRYPTO_LDLIBS)

TEST_UTIL_OBJ := $(call obj,$(TEST_UTIL_SRC))

$(BUILD)/tests/unit/test_crypto: $(call obj,tests/unit/test_crypto.c) \
		$(TEST_UTIL_OBJ) $(CRYPTO_LIB)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(CRYPTO_LDLIBS) \
		$(call pc_libs,cmocka)

$(BUILD)/tests/xts-check: $(call obj,tests/tools/xts-check.c) \
		$(TEST_UTIL_OBJ) $(CRYPTO_LIB)
	$(call msg,LD,$@)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(CRYPTO_LDLIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

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

bench: all
	@BUILD=$(BUILD) bench/crypto.sh

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan SAN=1 run-tests

# Static analysis.  cppcheck sees the whole tree; clang-tidy each file with
# the flags it is compiled with.
analyze:
	cppcheck --quiet --error-exitcode=1 --inline-suppr \
		--enable=warning,performance,portability --std=c11 \
		-D_GNU_SOURCE -Icrypto -Icli -Itests/tools $(ALL_SRC)
	clang-tidy --quiet $(ALL_SRC) -- -std=gnu11 -D_GNU_SOURCE \
		-DCMKFS_VERSION='"$(VERSION)"' -Icrypto -Icli -Itests/tools \
		$(call pc_cflags,cmocka $(CRYPTO_PKGS))

format:
	clang-format -i $(ALL_SRC) $(wildcard */*.h)

check-format:
	clang-format --dry-run --Werror $(ALL_SRC) $(wildcard */*.h)

install: $(CMKFS)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(CMKFS) $(DESTDIR)$(PREFIX)/bin/cmkfs

clean:
	rm -rf build build-asan
