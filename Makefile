# drover -- plain GNU Makefile.
#
#   make            build bin/droverd, bin/drover (release variant)
#   make run        install what is missing, build, run droverd on config/drover.yaml
#   make test       install what is missing, build, run every test in three builds:
#                   release, ASan+UBSan, and TSan (threaded unit tests)
#   make bench      benchmark (see README "Performance")
#
# VARIANT selects the build: release (default), asan, tsan. Objects go to
# build/$(VARIANT)/; the release binaries are also at bin/.

VARIANT ?= release
B := build/$(VARIANT)

CC := gcc
PKGS_PC := libevent libevent_pthreads hiredis yaml-0.1 libcurl
PC_CFLAGS := $(shell pkg-config --cflags $(PKGS_PC) 2>/dev/null)
PC_LIBS := $(shell pkg-config --libs $(PKGS_PC) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

WARN := -Wall -Wextra -Wformat=2 -Wstrict-prototypes -Wwrite-strings -Werror
CFLAGS_COMMON := -std=c11 -D_GNU_SOURCE -g $(WARN) -Iinclude -MMD -MP \
                 -pthread $(PC_CFLAGS)

ifeq ($(VARIANT),release)
  OPT := -O2
  BINDIR := bin
else ifeq ($(VARIANT),asan)
  OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
         -fno-sanitize-recover=all
  BINDIR := $(B)/bin
else ifeq ($(VARIANT),tsan)
  OPT := -O1 -fsanitize=thread
  BINDIR := $(B)/bin
else
  $(error VARIANT must be release, asan or tsan)
endif

CFLAGS := $(CFLAGS_COMMON) $(OPT) $(EXTRA_CFLAGS)

# Building needs the libraries; say so instead of failing at link time.
pc-check:
	@pkg-config --exists $(PKGS_PC) || { \
	  echo "pkg-config cannot find: $(PKGS_PC)"; \
	  echo "run 'make deps' (as root) or 'make run' / 'make test'," \
	       "which install what is missing"; exit 1; }
LDFLAGS := $(OPT) -pthread
LDLIBS := $(PC_LIBS) -ldl -lm

# ---------------------------------------------------------------- sources
PKG_SRCS := $(sort $(wildcard pkg/*/*.c))
PKG_OBJS := $(PKG_SRCS:%.c=$(B)/%.o)
LIB := $(B)/libdrover.a

CMDS := $(notdir $(wildcard cmd/*))
CMD_BINS := $(CMDS:%=$(BINDIR)/%)

HARNESS_SRCS := $(sort $(wildcard tests/harness/*.c))
HARNESS_OBJS := $(HARNESS_SRCS:%.c=$(B)/%.o)

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:%.c=$(B)/%)
INTEG_SRCS := $(sort $(wildcard tests/integration/test_*.c))
INTEG_BINS := $(INTEG_SRCS:%.c=$(B)/%)

# Extra programs tests need (helpers, plugins); each tests/progs/X.c -> binary
PROG_SRCS := $(sort $(wildcard tests/progs/*.c))
PROG_BINS := $(PROG_SRCS:%.c=$(B)/%)

# Example and test plugins: tests/plugins/X.c -> $(B)/plugins/libX.so
PLUGIN_SRCS := $(sort $(wildcard tests/plugins/*.c))
PLUGIN_LIBS := $(PLUGIN_SRCS:tests/plugins/%.c=$(B)/plugins/lib%.so)

# The dashboard's page (cmd/drover/web/) is compiled into bin/drover: a C
# file generated from the files' bytes (xxd -i), no files at run time.
WEB_ASSETS := $(sort $(wildcard cmd/drover/web/*.html cmd/drover/web/*.js \
                cmd/drover/web/*.css cmd/drover/web/*.svg))
WEB_ASSETS_C := $(B)/gen/cmd/drover/web_assets.c
CMD_GEN_OBJS_drover := $(WEB_ASSETS_C:.c=.o)

ALL_OBJS := $(PKG_OBJS) $(HARNESS_OBJS) $(CMD_GEN_OBJS_drover) \
            $(foreach c,$(CMDS),$(patsubst %.c,$(B)/%.o,$(wildcard cmd/$(c)/*.c)))

.PHONY: all build tests deps run test check check-unit bench bench-run clean pc-check
.DEFAULT_GOAL := all

all: build
build: $(CMD_BINS)
tests: $(UNIT_BINS) $(INTEG_BINS) $(PROG_BINS) $(PLUGIN_LIBS)

$(B)/%.o: %.c | pc-check
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(WEB_ASSETS_C): $(WEB_ASSETS) cmd/drover/web/embed.sh
	@mkdir -p $(dir $@)
	cmd/drover/web/embed.sh $@ $(WEB_ASSETS)

$(B)/gen/%.o: $(B)/gen/%.c | pc-check
	$(CC) $(CFLAGS) -Icmd/drover -c -o $@ $<

# Test callbacks implement fixed signatures and often ignore arguments; the
# library and the binaries mark each ignored parameter with (void) instead.
$(B)/tests/%.o: CFLAGS += -Itests/harness -Wno-unused-parameter

.SECONDARY:

$(LIB): $(PKG_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

define CMD_RULE
$(BINDIR)/$(1): $(patsubst %.c,$(B)/%.o,$(wildcard cmd/$(1)/*.c)) \
               $(CMD_GEN_OBJS_$(1)) $(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach c,$(CMDS),$(eval $(call CMD_RULE,$(c))))

$(B)/tests/unit/%: $(B)/tests/unit/%.o $(HARNESS_OBJS) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CMOCKA_LIBS)

$(B)/tests/integration/%: $(B)/tests/integration/%.o $(HARNESS_OBJS) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CMOCKA_LIBS)

$(B)/tests/progs/%: $(B)/tests/progs/%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# -z defs: a plugin links against nothing of drover (handler.h's promise);
# every symbol it uses must come from libc or its own object.
$(B)/plugins/lib%.so: tests/plugins/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -shared -Wl,-z,defs -o $@ $<

-include $(ALL_OBJS:.o=.d) $(UNIT_SRCS:%.c=$(B)/%.d) \
         $(INTEG_SRCS:%.c=$(B)/%.d) $(PROG_SRCS:%.c=$(B)/%.d) \
         $(PLUGIN_LIBS:%.so=%.d)

# ---------------------------------------------------------------- packages
DEB_PKGS := gcc make pkg-config libevent-dev libhiredis-dev libyaml-dev \
            libcmocka-dev redis-server redis-tools libcurl4-openssl-dev \
            xxd python3 chromium chromium-driver

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	    grep -q '^install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends $$missing \
	      >/dev/null || exit 1; \
	  else \
	    echo "missing Debian packages:$$missing"; \
	    echo "run as root, or: sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi

# ---------------------------------------------------------------- tests
# check: build and run every unit and integration test of this VARIANT.
TEST_ENV := DROVER_BIN_DIR=$(BINDIR) DROVER_PROG_DIR=$(B)/tests/progs \
            DROVER_PLUGIN_DIR=$(B)/plugins

# The browser test (headless chromium driving the dashboard) runs in the
# release build only; it saves a screenshot of the page to
# $(B)/dashboard.png (doc/dashboard.png is one of those).
BROWSER_TESTS := $(if $(filter release,$(VARIANT)),\
                   $(sort $(wildcard tests/browser/test_*.py)))

check: build tests
	$(TEST_ENV) DROVER_SCREENSHOT=$(B)/dashboard.png \
	  tests/run-tests.sh $(VARIANT) $(UNIT_BINS) $(INTEG_BINS) \
	  $(BROWSER_TESTS)

# check-unit: unit tests only (the TSan run: they hold the threaded tests).
check-unit: $(UNIT_BINS) $(PROG_BINS) $(PLUGIN_LIBS)
	$(TEST_ENV) \
	  tests/run-tests.sh $(VARIANT) $(UNIT_BINS)

test: deps
	$(MAKE) --no-print-directory VARIANT=release check
	$(MAKE) --no-print-directory VARIANT=asan check
	$(MAKE) --no-print-directory VARIANT=tsan check-unit
	@echo "make test: all variants passed"

# ---------------------------------------------------------------- bench
# bench: the release droverd plus the bench tools (tests/bench/*.c, hiredis
# only) in $(B)/bench/, then tests/bench/bench.sh: a private redis-server,
# every case, one table on stdout, the same as JSON in bench-results/.
# BENCH_RUNS, BENCH_SLOW_RUNS, BENCH_N, BENCH_CASES tune it (README).
BENCH_DIR := $(B)/bench
BENCH_TOOLS := $(patsubst tests/bench/%.c,$(BENCH_DIR)/%,\
                 $(wildcard tests/bench/*.c))

$(BENCH_DIR)/%: tests/bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS) \
	  $(shell pkg-config --libs hiredis 2>/dev/null) -lm

bench: deps
	@[ "$(VARIANT)" = release ] || \
	  { echo "make bench measures the release build (no VARIANT=)"; exit 2; }
	@$(MAKE) --no-print-directory VARIANT=release bench-run

bench-run: build $(BENCH_TOOLS)
	tests/bench/bench.sh $(BINDIR)/droverd $(BENCH_DIR)

# ---------------------------------------------------------------- run
# run and bench install packages first, then build in a fresh make: the
# pkg-config answers above are computed when this Makefile is read, which on
# a new machine is before deps has installed anything.
run: deps
	@$(MAKE) --no-print-directory VARIANT=release build
	@deploy/run-local.sh

clean:
	rm -rf build bin
