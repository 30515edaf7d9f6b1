#!/usr/bin/env bash
# check-man.sh BINDIR -- the man pages match the programs.
#
#  - mandoc -Tlint (warnings and worse) and man/groff (what lintian runs)
#    report nothing for man/*.[158];
#  - every option droverd --help prints appears in droverd.8;
#  - every command drover --help lists has an item in drover.1's
#    COMMANDS, and every option of drover --help and of each
#    `drover COMMAND --help` appears in drover.1;
#  - every config key the loader's key tables accept (pkg/config), every
#    section and every handler is an item in drover.yaml.5.
# Then it removes one option and one key from copies of the pages and
# checks that the same checks fail, so a missing entry cannot go unseen.
set -u
bindir=${1:?usage: check-man.sh BINDIR}
cd "$(dirname "$0")/../.."
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# render PAGE -- the page as plain text
render() { mandoc -Tascii "$1" | col -b; }

# long and short options in a help text
options_of() {
    grep -oE -- '(^|[][ ,|(])--?[a-zA-Z][a-zA-Z-]*' | sed 's/^[][ ,|(]//' |
        sort -u
}

# check_options PAGE WHAT -- every option on stdin appears in PAGE
check_options() {
    local page=$1 what=$2 text opt bad=0
    text=$(render "$page")
    while read -r opt; do
        [ -n "$opt" ] || continue
        if ! grep -qE -- "(^|[^a-zA-Z-])$opt([^a-zA-Z-]|\$)" <<<"$text"; then
            echo "  $page lacks $opt ($what)"; bad=1
        fi
    done
    return $bad
}

# the commands of drover --help, one a line
commands() {
    "$bindir/drover" --help | awk '/^commands:/ { on = 1; next }
        /^[^ ]/ { on = 0 } on && /^  [a-z]/ { print $1 }' | sort -u
}

# check_commands PAGE -- each command is an item of COMMANDS, and each
# command's options appear in PAGE
check_commands() {
    local page=$1 text cmd bad=0 n=0
    text=$(render "$page" | awk '/^COMMANDS/ { on = 1; next }
                                 /^[A-Z]/ { on = 0 } on')
    for cmd in $(commands); do
        n=$((n + 1))
        grep -qE "^     $cmd( |\$)" <<<"$text" ||
            { echo "  $page: no item for command $cmd"; bad=1; }
        "$bindir/drover" "$cmd" --help | options_of |
            check_options "$page" "drover $cmd --help" || bad=1
        # sub-commands written as usage lines: "drover dead list ..."
        for sub in $("$bindir/drover" "$cmd" --help |
                     sed -n "s/^\(usage:\)\{0,1\} *drover $cmd \([a-z][a-z-]*\) .*/\2/p" |
                     sort -u); do
            grep -qE "^     $cmd $sub( |\$)" <<<"$text" ||
                { echo "  $page: no item for $cmd $sub"; bad=1; }
        done
    done
    [ "$n" -ge 8 ] || { echo "  found only $n commands in drover --help"; bad=1; }
    return $bad
}

# config keys the loader accepts: the names in its key tables (rows that
# open with `{.name = "KEY"` or with a row macro `NAME("KEY",`; a lone
# field such as the weight of the map form of queues names a value, not
# a key), the sections, the handlers
config_keys() {
    sed -n 's/.*{\.name = "\([a-z_]*\)".*/\1/p' pkg/config/*.c
    sed -n 's/^ *[A-Z_]*("\([a-z_]*\)",.*/\1/p' pkg/config/*.c
    sed -n 's/^ *\[SEC_[A-Z_]*\] = "\([a-z_]*\)".*/\1/p' pkg/config/*.c
}
handlers() {
    sed -n 's/^ *\[DRV_HANDLER_[A-Z]*\] = "\([a-z]*\)".*/\1/p' pkg/config/*.c
}

# check_keys PAGE -- each key is an `.It Ic KEY` item (or a `.Ss KEY`
# section), each handler an `.It Cm NAME` item
check_keys() {
    local page=$1 key bad=0 n=0
    for key in $(config_keys | sort -u); do
        n=$((n + 1))
        grep -qE "^\.(It( .*)? Ic $key( |\$)|Ss $key\$)" "$page" ||
            { echo "  $page: no item for config key $key"; bad=1; }
    done
    [ "$n" -ge 25 ] || { echo "  found only $n config keys in pkg/config"; bad=1; }
    for key in $(handlers); do
        grep -qE "^\.It Cm $key\$" "$page" ||
            { echo "  $page: no item for handler $key"; bad=1; }
    done
    return $bad
}

# ---------------------------------------------------------------- lint
for page in man/droverd.8 man/drover.1 man/drover.yaml.5; do
    out=$(mandoc -Tlint -W warning "$page" 2>&1) ||
        fail "mandoc -Tlint $page: $out"
    [ -z "$out" ] || fail "mandoc -Tlint $page: $out"
    # what lintian runs (its groff-message check)
    out=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 \
          man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null)
    [ -z "$out" ] || fail "man --warnings $page: $out"
done

# ---------------------------------------------------------------- match
"$bindir/droverd" --help | options_of | check_options man/droverd.8 \
    "droverd --help" || fail "droverd.8 misses options"
"$bindir/drover" --help | options_of | check_options man/drover.1 \
    "drover --help" || fail "drover.1 misses global options"
check_commands man/drover.1 || fail "drover.1 misses commands"
check_keys man/drover.yaml.5 || fail "drover.yaml.5 misses config keys"

# ------------------------------------------------- the checks can fail
sed 's/-redis/-gone/g' man/droverd.8 > "$tmp/droverd.8"
"$bindir/droverd" --help | options_of |
    check_options "$tmp/droverd.8" self-test >/dev/null &&
    fail "self-test: a droverd.8 without --redis passed"
sed '/^\.It Cm dead purge/d' man/drover.1 > "$tmp/drover.1"
check_commands "$tmp/drover.1" >/dev/null &&
    fail "self-test: a drover.1 without dead purge passed"
sed 's/-count/-gone/g' man/drover.1 > "$tmp/drover.1"
check_commands "$tmp/drover.1" >/dev/null &&
    fail "self-test: a drover.1 without --count passed"
sed '/^\.It Ic visibility_timeout/d' man/drover.yaml.5 > "$tmp/drover.yaml.5"
check_keys "$tmp/drover.yaml.5" >/dev/null &&
    fail "self-test: a drover.yaml.5 without visibility_timeout passed"

if [ "$fails" -ne 0 ]; then
    echo "check-man: $fails failed"
    exit 1
fi
echo "check-man: ok (lint clean; options, commands and config keys documented)"
