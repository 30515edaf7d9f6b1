# drover -- plain GNU Makefile.
#
#   make            build bin/droverd, bin/drover (release variant)
#   make run        install what is missing, build, run droverd on config/drover.yaml
#   make test       install what is missing, build, run every test in three builds:
#                   release, ASan+UBSan, and TSan (threaded unit tests), then
#                   each fuzz target for a few seconds
#   make fuzz       run each libFuzzer target for FUZZ_SECONDS (doc/fuzzing.md)
#   make bench      benchmark (tests/bench/README.md)
#   make soak       a long run of mixed jobs through faults (doc/soak.md)
#
# VARIANT selects the build: release (default), asan, tsan. Objects go to
# build/$(VARIANT)/; the release binaries are also at bin/.

VARIANT ?= release
B := build/$(VARIANT)

CC := gcc
PKGS_PC := libevent libevent_pthreads libevent_openssl openssl hiredis yaml-0.1 \
           libcurl
PC_CFLAGS := $(shell pkg-config --cflags $(PKGS_PC) 2>/dev/null)
# libcurl is not linked: pkg/http/http_curl.c loads it when first used;
# nor is OpenSSL: pkg/redis/redis_ossl.c loads it for rediss:// only
PC_LIBS := $(shell pkg-config --libs $(filter-out libcurl libevent_openssl \
             openssl,$(PKGS_PC)) 2>/dev/null)
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

# the tests that are curl clients themselves (test_tls) link it
$(B)/tests/integration/%: $(B)/tests/integration/%.o $(HARNESS_OBJS) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CMOCKA_LIBS) \
	  $(shell pkg-config --libs libcurl 2>/dev/null)

$(B)/tests/progs/%: $(B)/tests/progs/%.o $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# proc_helper is the child the proc tests spawn, not code under test, and
# it uses nothing of drover: built without sanitizers in every variant, so
# its signal handlers run when a signal arrives (ThreadSanitizer defers a
# handler to the program's next intercepted call).
$(B)/tests/progs/proc_helper: tests/progs/proc_helper.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Werror -o $@ $<

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
            libssl-dev openssl \
            python3 clang-14 libclang-rt-14-dev xxd chromium chromium-driver \
            curl tzdata libfaketime

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

# The longest integration binaries start first, so that the ones that run
# side by side with them (run-tests.sh) do not leave one running alone at
# the end.
INTEG_FIRST := $(filter $(addprefix $(B)/tests/integration/,test_faults \
                 test_graph test_sentinel test_admit test_cluster test_idle),\
                 $(INTEG_BINS))

check: build tests
	$(TEST_ENV) DROVER_SCREENSHOT=$(B)/dashboard.png \
	  tests/run-tests.sh $(VARIANT) $(INTEG_FIRST) \
	  $(filter-out $(INTEG_FIRST),$(INTEG_BINS)) $(UNIT_BINS) \
	  $(BROWSER_TESTS)

# check-unit: unit tests only (the TSan run: they hold the threaded tests).
check-unit: $(UNIT_BINS) $(PROG_BINS) $(PLUGIN_LIBS)
	$(TEST_ENV) \
	  tests/run-tests.sh $(VARIANT) $(UNIT_BINS)

# The builds use every core unless a -j was given; the test binaries run
# DROVER_TEST_JOBS at once (tests/run-tests.sh), the fuzz targets FUZZ_JOBS.
TEST_J := $(if $(filter -j% --jobserver%,$(MAKEFLAGS)),,-j$(shell nproc))

test: deps
	$(MAKE) --no-print-directory $(TEST_J) VARIANT=release check
	$(MAKE) --no-print-directory $(TEST_J) VARIANT=asan check
	$(MAKE) --no-print-directory $(TEST_J) VARIANT=tsan check-unit
	$(MAKE) --no-print-directory $(TEST_J) fuzz-check
	@echo "make test: all variants passed"

# ---------------------------------------------------------------- bench
# bench: the release droverd plus the bench tools (tests/bench/*.c, hiredis
# only) in $(B)/bench/, then tests/bench/bench.sh: a private redis-server,
# every case, one table on stdout, the same as JSON in bench-results/.
# BENCH_RUNS, BENCH_SLOW_RUNS, BENCH_N, BENCH_CASES tune it (tests/bench/README.md).
BENCH_DIR := $(B)/bench
BENCH_TOOLS := $(patsubst tests/bench/%.c,$(BENCH_DIR)/%,\
                 $(wildcard tests/bench/*.c))

$(BENCH_DIR)/%: tests/bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LDFLAGS) \
	  $(shell pkg-config --libs hiredis 2>/dev/null) -lm

# libevent's own HTTP client, measured against httpload by hand
$(BENCH_DIR)/evhttpload: LDFLAGS += -levent

bench: deps
	@[ "$(VARIANT)" = release ] || \
	  { echo "make bench measures the release build (no VARIANT=)"; exit 2; }
	@$(MAKE) --no-print-directory VARIANT=release bench-run

bench-run: build $(BENCH_TOOLS)
	tests/bench/bench.sh $(BINDIR)/droverd $(BENCH_DIR)

# ---------------------------------------------------------------- soak
# soak: the release droverd and tests/soak/soak.c (hiredis, libevent), then
# one long run (doc/soak.md): SOAK_JOBS jobs (default 1,000,000) through two
# droverd with a Redis kill -9 and a droverd kill -9 on the way; the table
# on stdout, the samples in soak-results/soak-DATE.csv. Not part of test.
SOAK_BIN := $(B)/soak/soak

$(SOAK_BIN): $(B)/tests/soak/soak.o $(HARNESS_OBJS) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CMOCKA_LIBS)

.PHONY: soak soak-run
soak: deps
	@[ "$(VARIANT)" = release ] || \
	  { echo "make soak runs the release build (no VARIANT=)"; exit 2; }
	@$(MAKE) --no-print-directory VARIANT=release soak-run

soak-run: build $(SOAK_BIN)
	@mkdir -p soak-results
	nice -n 10 $(SOAK_BIN) --droverd $(BINDIR)/droverd \
	  --csv soak-results/soak-$$(date +%Y%m%d-%H%M%S).csv

# ---------------------------------------------------------------- run
# run and bench install packages first, then build in a fresh make: the
# pkg-config answers above are computed when this Makefile is read, which on
# a new machine is before deps has installed anything.
run: deps
	@$(MAKE) --no-print-directory VARIANT=release build
	@deploy/run-local.sh

clean:
	rm -rf build bin

# =============================================================== packaging
# --version, make install/uninstall, make dist, make deb, and the tests of
# all of them (man pages, completion, installed tree, Debian package). Kept
# together at the end of the file. doc/install.md describes the targets.

.PHONY: install uninstall dist deb deb-deps deb-build check-pkg test-pkg FORCE

# ---- version: VERSION file (release tarball) > git describe > changelog
# (0.0.0 when even debian/changelog is missing, as in a partial copy)
BASE_VERSION := $(or $(shell sed -n '1s/^drover (\([^)-]*\).*/\1/p' \
                  debian/changelog 2>/dev/null),0.0.0)
DROVER_VERSION := $(shell \
  if [ -f VERSION ]; then head -n1 VERSION; \
  else v=$$(git describe --tags --always --dirty --match 'v[0-9]*' \
              2>/dev/null); \
    case "$$v" in \
      (v[0-9]*) echo "$${v#v}" ;; \
      (?*) echo "$(BASE_VERSION)-dev-g$$v" ;; \
      (*) echo "$(BASE_VERSION)-dev" ;; \
    esac; \
  fi)

# The version and the libyaml version (its header has no version macro)
# go into a generated header, rewritten only when they change, so only
# version.o is rebuilt after a commit.
BUILD_H := $(B)/gen/drover_build.h
$(BUILD_H): FORCE
	@mkdir -p $(dir $@)
	@{ echo '#define DRV_BUILD_VERSION "$(DROVER_VERSION)"'; \
	   echo '#define DRV_BUILD_YAML_VERSION' \
	        '"'"$$(pkg-config --modversion yaml-0.1)"'"'; } > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi
$(B)/pkg/util/version.o: $(BUILD_H)
$(B)/pkg/util/version.o: CFLAGS += -I$(B)/gen
FORCE:

# OpenSSL's version is shown when the build links it directly.
ifneq ($(filter openssl libssl libcrypto,$(PKGS_PC)),)
CFLAGS += -DDRV_HAVE_OPENSSL
endif

# Distribution builds add their hardening flags here (debian/rules does).
LDFLAGS += $(EXTRA_LDFLAGS)

# ---- install / uninstall
# PREFIX (default /usr/local) and DESTDIR as usual; every directory below
# can be set on its own. SYSCONFDIR is /etc for PREFIX=/usr, else
# PREFIX/etc.
PREFIX ?= /usr/local
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
INST_BINDIR ?= $(PREFIX)/bin
INCLUDEDIR ?= $(PREFIX)/include
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
DOCDIR ?= $(DATADIR)/doc/drover
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
INSTALL ?= install

MAN_PAGES := man/drover.1 man/drover.yaml.5 man/droverd.8
# include/drover/handler.h includes only the C library: it is the whole
# public API
PUBLIC_HEADERS := include/drover/handler.h
CONF_DIR := $(DESTDIR)$(SYSCONFDIR)/drover
EXAMPLES := $(DESTDIR)$(DOCDIR)/examples
# what the installed files say instead of the checkout's paths
INSTALL_SED := -e 's|/usr/local/bin/|$(INST_BINDIR)/|g' \
               -e 's|/etc/drover/|$(SYSCONFDIR)/drover/|g' \
               -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
               -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g'

install: build
	$(INSTALL) -d $(DESTDIR)$(INST_BINDIR) $(DESTDIR)$(INCLUDEDIR)/drover \
	  $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
	  $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSTEMDUNITDIR) \
	  $(DESTDIR)$(BASHCOMPDIR) $(CONF_DIR) $(EXAMPLES)/plugin
	$(INSTALL) -m 0755 $(BINDIR)/droverd $(BINDIR)/drover \
	  $(DESTDIR)$(INST_BINDIR)/
	$(INSTALL) -m 0644 $(PUBLIC_HEADERS) $(DESTDIR)$(INCLUDEDIR)/drover/
	$(INSTALL) -m 0644 man/drover.1 $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL) -m 0644 man/drover.yaml.5 $(DESTDIR)$(MANDIR)/man5/
	$(INSTALL) -m 0644 man/droverd.8 $(DESTDIR)$(MANDIR)/man8/
	sed $(INSTALL_SED) deploy/drover.service > $(B)/drover.service
	$(INSTALL) -m 0644 $(B)/drover.service $(DESTDIR)$(SYSTEMDUNITDIR)/
	sed $(INSTALL_SED) deploy/bash-completion/drover > $(B)/drover.bash
	$(INSTALL) -m 0644 $(B)/drover.bash $(DESTDIR)$(BASHCOMPDIR)/drover
	ln -sf drover $(DESTDIR)$(BASHCOMPDIR)/droverd
	$(INSTALL) -m 0644 config/drover.yaml $(EXAMPLES)/drover.yaml
	$(INSTALL) -m 0644 tests/plugins/example.c $(EXAMPLES)/plugin/
	sed $(INSTALL_SED) deploy/plugin-example.mk > $(B)/plugin-Makefile
	$(INSTALL) -m 0644 $(B)/plugin-Makefile $(EXAMPLES)/plugin/Makefile
	@if [ -e $(CONF_DIR)/drover.yaml ]; then \
	  echo "kept $(CONF_DIR)/drover.yaml (it exists)"; \
	else \
	  echo "$(INSTALL) -m 0644 config/drover.yaml $(CONF_DIR)/drover.yaml"; \
	  $(INSTALL) -m 0644 config/drover.yaml $(CONF_DIR)/drover.yaml; \
	fi

# uninstall removes what install wrote; the config stays when it differs
# from the example install put there.
uninstall:
	@if [ -f $(CONF_DIR)/drover.yaml ] && \
	    ! cmp -s $(CONF_DIR)/drover.yaml $(EXAMPLES)/drover.yaml; then \
	  echo "kept $(CONF_DIR)/drover.yaml (changed since install)"; \
	else \
	  rm -f $(CONF_DIR)/drover.yaml; \
	fi
	rm -f $(DESTDIR)$(INST_BINDIR)/droverd $(DESTDIR)$(INST_BINDIR)/drover \
	  $(PUBLIC_HEADERS:include/%=$(DESTDIR)$(INCLUDEDIR)/%) \
	  $(DESTDIR)$(MANDIR)/man1/drover.1 \
	  $(DESTDIR)$(MANDIR)/man5/drover.yaml.5 \
	  $(DESTDIR)$(MANDIR)/man8/droverd.8 \
	  $(DESTDIR)$(SYSTEMDUNITDIR)/drover.service \
	  $(DESTDIR)$(BASHCOMPDIR)/drover $(DESTDIR)$(BASHCOMPDIR)/droverd \
	  $(EXAMPLES)/drover.yaml $(EXAMPLES)/plugin/example.c \
	  $(EXAMPLES)/plugin/Makefile
	rmdir $(EXAMPLES)/plugin $(EXAMPLES) $(DESTDIR)$(DOCDIR) \
	  $(DESTDIR)$(INCLUDEDIR)/drover $(CONF_DIR) 2>/dev/null || true

# ---- dist: build/dist/drover-VERSION.tar.gz from git archive, plus the
# VERSION file (the tarball has no .git to describe). Uncommitted changes
# to tracked files are included (git stash create); the version then ends
# in -dirty.
DIST_NAME := drover-$(DROVER_VERSION)
DIST_TAR := build/dist/$(DIST_NAME).tar.gz

dist:
	@mkdir -p build/dist
	rm -f build/dist/$(DIST_NAME).tar $(DIST_TAR)
	@if [ -e .git ]; then \
	  tree=$$(git stash create) && \
	  git archive --format=tar --prefix=$(DIST_NAME)/ \
	    -o build/dist/$(DIST_NAME).tar $${tree:-HEAD} && \
	  printf '%s\n' '$(DROVER_VERSION)' > build/dist/VERSION && \
	  tar -rf build/dist/$(DIST_NAME).tar -C build/dist --owner=0 \
	    --group=0 --numeric-owner \
	    --transform='s|^VERSION$$|$(DIST_NAME)/VERSION|' VERSION; \
	elif [ -f VERSION ]; then \
	  tar -cf build/dist/$(DIST_NAME).tar --owner=0 --group=0 \
	    --numeric-owner --exclude=./build --exclude=./bin \
	    --transform='s|^\.|$(DIST_NAME)|' .; \
	else \
	  echo "make dist needs a git checkout or a release tree"; exit 2; \
	fi
	gzip -9n build/dist/$(DIST_NAME).tar
	@echo "wrote $(DIST_TAR)"

# ---- deb: a binary package built by dpkg-buildpackage from the dist
# tarball in build/deb/, then checked by lintian (errors fail the build).
# The package build starts from a clean make environment (no MAKEFLAGS of
# an enclosing make). DEB_BUILD_OPTIONS passes through (default
# parallel=2).
PKG_TOOLS := debhelper dpkg-dev fakeroot lintian mandoc groff-base \
             bash-completion git
DEB_PKGS += $(PKG_TOOLS)

deb-deps: deps

deb: deb-deps
	@$(MAKE) --no-print-directory deb-build

deb-build: dist
	rm -rf build/deb && mkdir -p build/deb
	tar -xzf $(DIST_TAR) -C build/deb
	cd build/deb/$(DIST_NAME) && \
	  env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
	  DEB_BUILD_OPTIONS="$${DEB_BUILD_OPTIONS:-parallel=2}" \
	  dpkg-buildpackage -us -uc -b
	lintian --fail-on error --info build/deb/*.changes \
	  > build/deb/lintian.txt; rc=$$?; cat build/deb/lintian.txt; \
	  exit $$rc
	@ls build/deb/*.deb

# ---- tests of the above; `make test` runs them after the three builds
check-pkg: build
	tests/pkg/check-man.sh $(BINDIR)
	tests/pkg/check-completion.sh $(BINDIR)
	tests/pkg/check-doc-links.py .
	tests/pkg/check-install.sh
	tests/pkg/check-deb.sh

test: test-pkg
test-pkg: deps
	@$(MAKE) --no-print-directory VARIANT=release check-pkg

# ---------------------------------------------------------------- fuzz
# fuzz: libFuzzer targets (tests/fuzz/fuzz_<target>.c) built with Debian's
# clang and ASan+UBSan, each run for FUZZ_SECONDS from its seed corpus
# tests/fuzz/corpus/<target>/ (doc/fuzzing.md). The pkg/ sources they need
# are compiled again with clang under build/fuzz/. Found crashes go to
# build/fuzz/artifacts/; new corpus entries to build/fuzz/corpus/<target>/.
# fuzz-check is the short run of `make test` (FUZZ_CHECK_SECONDS each).
FUZZ_CC := clang-14
FUZZ_DIR := build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_CHECK_SECONDS ?= 10
FUZZ_TARGETS ?= $(patsubst tests/fuzz/fuzz_%.c,%,\
                  $(sort $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all
# -Werror stays with the gcc builds: clang's extra warnings on pkg/ are
# shown here, not fatal.
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
               -Wall -Wextra -Iinclude -MMD -MP -pthread $(PC_CFLAGS) \
               $(FUZZ_SAN)
# All of pkg/: a target links only the archive members it needs.
FUZZ_PKG_SRCS := $(PKG_SRCS)
FUZZ_PKG_OBJS := $(FUZZ_PKG_SRCS:%.c=$(FUZZ_DIR)/%.o)
FUZZ_LIB := $(FUZZ_DIR)/libdrover_fuzz.a
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-run fuzz-check

$(FUZZ_DIR)/pkg/%.o: pkg/%.c | pc-check
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

# version.c includes the generated header, as in the gcc builds
$(FUZZ_DIR)/pkg/util/version.o: $(BUILD_H)
$(FUZZ_DIR)/pkg/util/version.o: FUZZ_CFLAGS += -I$(B)/gen

$(FUZZ_LIB): $(FUZZ_PKG_OBJS)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Werror -Itests/fuzz -fsanitize=fuzzer \
	  -o $@ $< $(FUZZ_LIB) $(PC_LIBS) -ldl -lm

-include $(FUZZ_PKG_OBJS:.o=.d) $(FUZZ_BINS:=.d)

fuzz-build: $(FUZZ_BINS)

fuzz-run: fuzz-build
	tests/fuzz/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_DIR) $(FUZZ_TARGETS)

fuzz-check: fuzz-build
	tests/fuzz/run-fuzz.sh $(FUZZ_CHECK_SECONDS) $(FUZZ_DIR) $(FUZZ_TARGETS)

# deps first, then a fresh make (pkg-config is read when make starts)
fuzz: deps
	@$(MAKE) --no-print-directory fuzz-run
