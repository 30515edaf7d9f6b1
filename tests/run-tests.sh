#!/usr/bin/env bash
# run-tests.sh VARIANT BIN... -- run each cmocka test binary, sum the
# results from cmocka's summary lines, and exit non-zero on any failure.
set -u
variant=$1; shift
passed=0; failed=0; bad_bins=()
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
for bin in "$@"; do
    name=${bin#build/*/}
    echo "=== [$variant] $name"
    log=$(mktemp)
    start=$(date +%s)
    "$bin" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    # a binary may run several groups (plain and TLS): add them up
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' "$log" |
        awk '{ s += $1 } END { if (NR) print s }')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:/\1/p' "$log" |
        awk '{ s += $1 } END { if (NR) print s }')
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
    if [ "$rc" -ne 0 ] || [ -z "$p" ]; then
        bad_bins+=("$name (exit $rc)")
        [ -z "$f" ] && [ "$rc" -ne 0 ] && failed=$((failed + 1))
    fi
    echo "--- [$variant] $name: exit $rc in $(( $(date +%s) - start ))s"
    rm -f "$log"
done
echo
echo "[$variant] $passed passed, $failed failed"
if [ ${#bad_bins[@]} -ne 0 ]; then
    printf '[%s] failing binary: %s\n' "$variant" "${bad_bins[@]}"
    exit 1
fi
exit 0
