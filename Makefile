# hvgate build. `make` builds the libraries and programs into $(BUILD)/;
# `make check` runs the Check unit tests (no root); `make test` is the whole
# suite (deps, build, lint, unit, sanitizers, network-namespace integration).
# Each source folder may add rules in its own module.mk (included below).

BUILD   ?= build
CC      ?= cc
SAN     ?=
PKGS    := libnftnl libmnl libnetfilter_queue libnetfilter_log libpcre2-8 \
           libconfig libsodium libcrypto libedit libpcap libgit2 \
           libmicrohttpd libsystemd check
CFLAGS_BASE := -std=gnu11 -g -O2 -Wall -Wextra -Werror -D_GNU_SOURCE \
           -fno-strict-aliasing -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
ifeq ($(SAN),1)
CFLAGS_BASE += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
CFLAGS  := $(CFLAGS_BASE) $(EXTRA_CFLAGS)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread

# Libraries: every .c in the folder except files named main*.c.
lib_srcs = $(filter-out $(1)/main%.c,$(wildcard $(1)/*.c))
lib_objs = $(patsubst %.c,$(BUILD)/%.o,$(call lib_srcs,$(1)))

POLICY_OBJS    := $(call lib_objs,policy)
NAT_OBJS       := $(call lib_objs,nat)
VPN_OBJS       := $(call lib_objs,vpn)
# appliance/ has parts of its own: kernel/ (all netlink I/O) and fastpath/ (the
# inspection fast path); their objects go into the same library.
APPLIANCE_OBJS := $(call lib_objs,appliance) $(call lib_objs,appliance/kernel) \
                  $(call lib_objs,appliance/fastpath)
CLI_OBJS       := $(call lib_objs,cli)

# In the order of the calls (cli -> appliance -> {vpn, nat} -> policy): no
# library calls one listed before it, so the linker needs one pass.
LIBS := $(BUILD)/libhvappliance.a $(BUILD)/libhvvpn.a $(BUILD)/libhvnat.a $(BUILD)/libhvpolicy.a

PROGRAMS := $(BUILD)/hvgate $(BUILD)/hvgated

# Unit tests: tests/<module>/test_*.c, each its own Check runner.
TEST_SRCS := $(wildcard tests/*/test_*.c)
TEST_BINS := $(patsubst %.c,$(BUILD)/%,$(TEST_SRCS))
TEST_LIB_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/lib/*.c))

.PHONY: all deps check test asan integration bench demo lint layers format fuzz fuzz-bins fuzz-smoke replay-fuzz clean
all: $(PROGRAMS) $(TEST_BINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libhvpolicy.a: $(POLICY_OBJS)
$(BUILD)/libhvnat.a: $(NAT_OBJS)
$(BUILD)/libhvvpn.a: $(VPN_OBJS)
$(BUILD)/libhvappliance.a: $(APPLIANCE_OBJS)
$(BUILD)/lib%.a:
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^ $(if $^,,$(BUILD)/empty.o)

$(BUILD)/hvgate: $(CLI_OBJS) $(BUILD)/cli/main.o $(LIBS)
	$(CC) $(LDFLAGS) -o $@ $(BUILD)/cli/main.o $(CLI_OBJS) $(LIBS) $(LDLIBS)

$(BUILD)/hvgated: $(BUILD)/appliance/main.o $(LIBS)
	$(CC) $(LDFLAGS) -o $@ $(BUILD)/appliance/main.o $(LIBS) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_LIB_OBJS) $(LIBS)
	$(CC) $(LDFLAGS) -o $@ $< $(TEST_LIB_OBJS) $(LIBS) $(LDLIBS)

$(BUILD)/empty.o:
	@mkdir -p $(BUILD)
	echo 'int hvgate_empty_archive_member;' | $(CC) -x c -c - -o $@
$(LIBS): | $(BUILD)/empty.o

-include $(wildcard */module.mk)
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

deps:
	./tests/lib/deps.sh

check: all
	./tests/run-unit.sh $(BUILD)
	./tests/replay/run.sh $(BUILD)

asan:
	$(MAKE) BUILD=build-asan SAN=1 all
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    CK_TIMEOUT_MULTIPLIER=$${CK_TIMEOUT_MULTIPLIER:-4} ./tests/run-unit.sh build-asan

integration: all
	./tests/run-net.sh $(BUILD)

test: deps
	$(MAKE) all
	$(MAKE) lint
	$(MAKE) check
	$(MAKE) asan
	$(MAKE) fuzz-smoke
	$(MAKE) integration
	./tests/summary.sh

bench: deps
	$(MAKE) all
	./tests/bench/run.sh $(BUILD)

demo: deps
	$(MAKE) all
	./tests/demo.sh $(BUILD)

# cppcheck must be clean, and every C file must be as clang-format
# (.clang-format) writes it: the files that differ are listed and lint
# fails; `make format` rewrites them.
lint: layers
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
	    --suppress=missingIncludeSystem -I. policy nat vpn appliance cli
	@n=0; for f in $$(find policy nat vpn appliance cli tests -name '*.[ch]' | sort); do \
	    if clang-format --dry-run "$$f" 2>&1 | grep -q warning; then \
	        echo "lint: $$f differs from .clang-format (make format)"; n=$$((n+1)); fi; done; \
	    [ $$n -eq 0 ] || { echo "lint: $$n file(s) differ from .clang-format"; exit 1; }; \
	    echo "lint: cppcheck clean, every C file as clang-format writes it"

# Includes run one way (docs/architecture.md): cli -> appliance -> {vpn, nat}
# -> policy. Lists every include that points back up.
layers:
	@bad=$$( (grep -n '#include "\(cli\|appliance\|vpn\|nat\)/' policy/*.[ch]; \
	          grep -n '#include "\(cli\|appliance\|vpn\)/' nat/*.[ch]; \
	          grep -n '#include "\(cli\|appliance\|nat\|policy\)/' vpn/*.[ch]; \
	          grep -rn '#include "cli/' appliance) 2>/dev/null); \
	    if [ -n "$$bad" ]; then echo "layers: includes pointing back up:"; echo "$$bad"; exit 1; fi; \
	    echo "layers: includes run cli -> appliance -> {vpn, nat} -> policy"

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz

# Fuzz targets: tests/fuzz/fuzz_*.c, each defining LLVMFuzzerTestOneInput,
# built with clang's libFuzzer against the libraries. `make fuzz-smoke` runs
# each for a bounded time on its seed corpus (tests/fuzz/corpus/NAME/).
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_FLAGS := -fsanitize=fuzzer-no-link,address,undefined -DHVGATE_FUZZ=1
fuzz:
	$(MAKE) BUILD=build-fuzz CC=clang EXTRA_CFLAGS="$(FUZZ_FLAGS)" \
	    LDFLAGS="-fsanitize=address,undefined" fuzz-bins
fuzz-bins: $(patsubst %.c,$(BUILD)/%,$(FUZZ_SRCS))
$(BUILD)/tests/fuzz/fuzz_%: $(BUILD)/tests/fuzz/fuzz_%.o $(LIBS)
	$(CC) -fsanitize=fuzzer,address,undefined -o $@ $< $(LIBS) $(LDLIBS)
# The generated differential of the replay (root): many random policies and
# packets through the kernel and the evaluator (tests/net/replay_live.sh).
replay-fuzz: all
	HVGATE_BUILD=$(CURDIR)/$(BUILD) REPLAY_RANDOM_CASES=$${REPLAY_RANDOM_CASES:-200} \
	    REPLAY_RANDOM_SEED=$${REPLAY_RANDOM_SEED:-$$(date +%s)} sh tests/net/replay_live.sh
fuzz-smoke: fuzz
	./tests/run-fuzz.sh build-fuzz $${FUZZ_SECONDS:-10}
