#!/usr/bin/env bash
# check-deb.sh -- `make deb-build` (dpkg-buildpackage, then lintian, whose
# errors fail the build), then the package itself: its control data
# (shlibs-derived Depends, the conffile, the system user and the unit
# enabled but not started in postinst), and its contents unpacked into a
# throwaway root, where the binaries run: --version, and droverd running
# jobs from the packaged config against a private redis-server.
set -u
cd "$(dirname "$0")/../.."
. tests/pkg/lib.sh
make=${MAKE:-make}
tmp=$(mktemp -d)
cleanup() {
    pkg_cleanup
    [ "${DROVER_TEST_KEEP:-0}" = 1 ] || rm -rf "$tmp"
}
trap cleanup EXIT

# no -dbgsym package: nothing here looks at it
if ! DEB_BUILD_OPTIONS="parallel=2 noddebs" \
        $make --no-print-directory deb-build > "$tmp/build.log" 2>&1; then
    tail -n 40 "$tmp/build.log"
    echo "FAIL: make deb-build"
    exit 1
fi
ok "make deb-build"
deb=$(ls build/deb/drover_*.deb)
grep -E '^(E|W): ' build/deb/lintian.txt | sed 's/^/lintian: /'
grep -q '^E: ' build/deb/lintian.txt && fail "lintian errors" ||
    ok "lintian: no errors"

# ---------------------------------------------- control data
dpkg-deb -e "$deb" "$tmp/control"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libhiredis libevent-2.1 libevent-pthreads libyaml libcurl libc6 \
           adduser; do
    grep -q "$lib" <<<"$depends" && ok "Depends has $lib" ||
        fail "Depends lacks $lib: $depends"
done
grep -qx /etc/drover/drover.yaml "$tmp/control/conffiles" &&
    ok "conffile /etc/drover/drover.yaml" || fail "conffiles: $(cat "$tmp/control/conffiles")"
post=$tmp/control/postinst
sh -n "$post" && ok "postinst parses" || fail "postinst syntax"
grep -q 'adduser --system' "$post" && ok "postinst creates the system user" ||
    fail "postinst: no adduser --system"
grep -q "deb-systemd-helper enable 'drover.service'" "$post" &&
    ok "postinst enables drover.service" || fail "postinst does not enable"
grep -q 'deb-systemd-invoke.*start' "$post" &&
    fail "postinst starts the service" || ok "postinst does not start it"

# ---------------------------------------------- contents, run
root=$tmp/root
dpkg-deb -x "$deb" "$root"
unit=$(ls "$root"/lib/systemd/system/drover.service \
          "$root"/usr/lib/systemd/system/drover.service 2>/dev/null | head -1)
grep -qx 'ExecStart=/usr/bin/droverd -c /etc/drover/drover.yaml' "$unit" &&
    grep -qx 'User=drover' "$unit" &&
    ok "unit: /usr/bin/droverd -c /etc/drover/drover.yaml as user drover" ||
    fail "unit: $(grep -E 'ExecStart|User' "$unit")"
for f in usr/share/man/man8/droverd.8.gz usr/share/man/man1/drover.1.gz \
         usr/share/man/man5/drover.yaml.5.gz usr/include/drover/handler.h \
         usr/share/bash-completion/completions/drover \
         usr/share/doc/drover/copyright usr/share/doc/drover/doc; do
    [ -e "$root/$f" ] && ok "packaged /$f" || fail "not packaged: /$f"
done
pkg_versions "$root"
pkg_start_redis "$tmp" || exit 1
cp "$root/etc/drover/drover.yaml" "$tmp/drover.yaml"
pkg_run_demo "$root" "$tmp/drover.yaml" "$tmp/droverd.log"

if [ "$fails" -ne 0 ]; then
    echo "check-deb: $fails failed"
    exit 1
fi
echo "check-deb: ok"
