#!/usr/bin/env bash
# run-tests.sh VARIANT BIN... -- run each cmocka test binary, sum the
# results from cmocka's summary lines, and exit non-zero on any failure.
#
# DROVER_TEST_JOBS binaries run at once (default 3): the integration tests
# spend most of their time waiting on redis-server and droverd, each on its
# own private port and directory, so running a few side by side cuts the
# wall time without loading the machine much more. A binary's output is
# printed whole when it ends, so the logs do not interleave.
set -u
variant=$1; shift
jobs=${DROVER_TEST_JOBS:-3}
case $jobs in ''|*[!0-9]*|0) echo "DROVER_TEST_JOBS: a whole number >= 1, not '$jobs'" >&2; exit 2 ;; esac
passed=0; failed=0; bad_bins=()
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# run_one I BIN: the binary's output in $work/I.log, then its exit status
# and seconds in $work/I.rc
run_one() {
    local i=$1 bin=$2 start rc
    start=$(date +%s)
    "$bin" > "$work/$i.log" 2>&1
    rc=$?
    echo "$rc $(( $(date +%s) - start ))" > "$work/$i.rc"
}

# report I BIN: print the log and add up its cmocka summary lines (a binary
# may run several groups, plain and TLS)
report() {
    local i=$1 bin=$2 name rc secs p f
    name=${bin#build/*/}
    read -r rc secs < "$work/$i.rc"
    echo "=== [$variant] $name"
    cat "$work/$i.log"
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' "$work/$i.log" |
        awk '{ s += $1 } END { if (NR) print s }')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:/\1/p' "$work/$i.log" |
        awk '{ s += $1 } END { if (NR) print s }')
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
    if [ "$rc" -ne 0 ] || [ -z "$p" ]; then
        bad_bins+=("$name (exit $rc)")
        [ -z "$f" ] && [ "$rc" -ne 0 ] && failed=$((failed + 1))
    fi
    echo "--- [$variant] $name: exit $rc in ${secs}s"
}

bins=("$@")
next=0       # the next binary to start
shown=0      # binaries reported so far, in the order given
running=0
while [ "$shown" -lt "${#bins[@]}" ]; do
    while [ "$running" -lt "$jobs" ] && [ "$next" -lt "${#bins[@]}" ]; do
        run_one "$next" "${bins[$next]}" &
        next=$((next + 1)); running=$((running + 1))
    done
    # report, in order, every binary that has ended
    while [ "$shown" -lt "$next" ] && [ -s "$work/$shown.rc" ]; do
        report "$shown" "${bins[$shown]}"
        shown=$((shown + 1))
    done
    [ "$shown" -ge "${#bins[@]}" ] && break
    if [ "$running" -gt 0 ]; then
        wait -n 2>/dev/null
        running=$(jobs -rp | wc -l)
    fi
done
wait

echo
echo "[$variant] $passed passed, $failed failed"
if [ ${#bad_bins[@]} -ne 0 ]; then
    for b in "${bad_bins[@]}"; do
        echo "[$variant] failing binary: $b"
    done
    exit 1
fi
exit 0
