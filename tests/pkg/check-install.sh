#!/usr/bin/env bash
# check-install.sh -- `make install` and `make uninstall` into a throwaway
# DESTDIR, then the installed binaries at work: --version, and the
# installed droverd running jobs from the installed example config against
# a private redis-server (and a plugin built from the installed example
# source against the installed header).
set -u
cd "$(dirname "$0")/../.."
. tests/pkg/lib.sh
make=${MAKE:-make}
tmp=$(mktemp -d)
root=$tmp/root
cleanup() {
    pkg_cleanup
    [ "${DROVER_TEST_KEEP:-0}" = 1 ] || rm -rf "$tmp"
}
trap cleanup EXIT
has() { [ -e "$root$1" ] && ok "installed $1" || fail "not installed: $1"; }

# ---------------------------------------------- install, PREFIX=/usr
$make --no-print-directory install DESTDIR="$root" PREFIX=/usr >/dev/null ||
    { echo "FAIL: make install"; exit 1; }
for f in /usr/bin/droverd /usr/bin/drover /usr/include/drover/handler.h \
         /usr/share/man/man1/drover.1 /usr/share/man/man5/drover.yaml.5 \
         /usr/share/man/man8/droverd.8 /usr/lib/systemd/system/drover.service \
         /etc/drover/drover.yaml /usr/share/bash-completion/completions/drover \
         /usr/share/bash-completion/completions/droverd \
         /usr/share/doc/drover/examples/drover.yaml \
         /usr/share/doc/drover/examples/plugin/example.c \
         /usr/share/doc/drover/examples/plugin/Makefile; do
    has "$f"
done
unit=$root/usr/lib/systemd/system/drover.service
grep -qx 'ExecStart=/usr/bin/droverd -c /etc/drover/drover.yaml' "$unit" &&
    ok "unit runs /usr/bin/droverd -c /etc/drover/drover.yaml" ||
    fail "unit ExecStart: $(grep ExecStart= "$unit")"
if command -v systemd-analyze >/dev/null; then
    # the unit's syntax (ExecStart's binary is looked up on this host, so
    # point it at the installed one)
    sed "s|/usr/bin/droverd|$root/usr/bin/droverd|" "$unit" > "$tmp/drover.service"
    out=$(systemd-analyze verify --man=no "$tmp/drover.service" 2>&1 |
          grep -v -e 'Cannot add dependency job' -e 'Failed to load' \
                  -e 'No such file' -e 'network-online' -e 'redis-server')
    [ -z "$out" ] && ok "systemd-analyze verify" ||
        fail "systemd-analyze verify: $out"
fi
grep -q '"/etc/drover/drover.yaml"' \
    "$root/usr/share/bash-completion/completions/drover" &&
    ok "completion reads /etc/drover/drover.yaml" ||
    fail "completion: system config path not substituted"

pkg_versions "$root"

# ---------------------------------------------- a job, installed config
conf=$root/etc/drover/drover.yaml
pkg_start_redis "$tmp" || exit 1
pkg_run_demo "$root" "$conf" "$tmp/droverd.log"

# ---------------------------------------------- the plugin example
ex=$root/usr/share/doc/drover/examples/plugin
cp -r "$ex" "$tmp/plugin"
if $make --no-print-directory -C "$tmp/plugin" \
        CFLAGS="-O2 -Wall -Werror -I$root/usr/include" >/dev/null; then
    ok "plugin example builds against the installed header"
    cat > "$tmp/plugin.yaml" <<YAML
queues: [plugins]
jobs:
  checksum:
    handler: plugin
    library: $tmp/plugin/libexample.so
    symbol: example_blocking
    blocking: true
    result_ttl: 1h
YAML
    pkg_droverd "$root" "$tmp/plugin.yaml" "$tmp/plugin.log"
    pkg_job "$root" "$tmp/plugin.yaml" plugins fnv1a64=a430d84680aabd0b \
        checksum data=hello
    pkg_stop_droverd "$tmp/plugin.log"
else
    fail "plugin example does not build"
fi

# ---------------------------------------------- reinstall, uninstall
echo "# edited" >> "$conf"
$make --no-print-directory install DESTDIR="$root" PREFIX=/usr >/dev/null
grep -q '^# edited' "$conf" && ok "install kept an existing config" ||
    fail "install overwrote the config"
$make --no-print-directory uninstall DESTDIR="$root" PREFIX=/usr >/dev/null
left=$(cd "$root" && find . -type f | sort)
[ "$left" = "./etc/drover/drover.yaml" ] &&
    ok "uninstall removed all but the edited config" ||
    fail "after uninstall: $left"
$make --no-print-directory install DESTDIR="$root" PREFIX=/usr >/dev/null
sed -i '/^# edited/d' "$conf"
$make --no-print-directory uninstall DESTDIR="$root" PREFIX=/usr >/dev/null
left=$(cd "$root" && find . -type f | sort)
[ -z "$left" ] && ok "uninstall removed an unchanged config" ||
    fail "after uninstall: $left"

# ---------------------------------------------- the default PREFIX
$make --no-print-directory install DESTDIR="$tmp/local" >/dev/null
grep -qx 'ExecStart=/usr/local/bin/droverd -c /usr/local/etc/drover/drover.yaml' \
    "$tmp/local/usr/local/lib/systemd/system/drover.service" &&
    [ -x "$tmp/local/usr/local/bin/droverd" ] &&
    [ -f "$tmp/local/usr/local/etc/drover/drover.yaml" ] &&
    ok "PREFIX=/usr/local: /usr/local/bin, /usr/local/etc/drover" ||
    fail "default PREFIX layout"

if [ "$fails" -ne 0 ]; then
    echo "check-install: $fails failed"
    exit 1
fi
echo "check-install: ok"
