#!/usr/bin/env bash
# run-fuzz.sh SECONDS DIR TARGET... -- run each libFuzzer target DIR/fuzz_T
# for SECONDS at the lowest CPU priority, FUZZ_JOBS targets at once (default:
# one per core); each target's report is printed whole, in the order given.
#
# Corpus: new inputs go to DIR/corpus/T/ (kept between runs), the checked-in
# seeds tests/fuzz/corpus/T/ are read only. A crash, a sanitizer report, a
# leak or an input slower than 10 s stops that target; its input is saved
# as DIR/artifacts/T-crash-<sha1> (or -leak-, -timeout-, -oom-) and the
# script prints the command that replays it. Exits 1 if any target failed.
# A summary line per target is appended to DIR/results.tsv.
set -u
secs=$1; dir=$2; shift 2
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir/artifacts" "$dir/logs"
# A 16 MB quarantine (default 256) still catches a use after free within
# an input and the next ones, and makes the allocation-heavy targets
# (config: libyaml's parser buffers) about three times faster.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:quarantine_size_mb=16}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

jobs=${FUZZ_JOBS:-$(nproc)}
case $jobs in ''|*[!0-9]*|0) echo "FUZZ_JOBS: a whole number >= 1, not '$jobs'" >&2; exit 2 ;; esac
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# run_target T: run one target; its report in $out/T.txt, its summary line
# in $out/T.line, and $out/T.failed when it failed
run_target() {
    local t=$1 bin seeds work log start rc took execs eps cov ncorp result art
    bin="$dir/fuzz_$t"
    seeds="$here/corpus/$t"
    work="$dir/corpus/$t"
    log="$dir/logs/$t.log"
    mkdir -p "$work"
    exec > "$out/$t.txt" 2>&1
    echo "=== [fuzz] $t: ${secs}s"
    start=$(date +%s)
    nice -n 19 "$bin" -max_total_time="$secs" -timeout=10 -max_len=8192 \
        -print_final_stats=1 -artifact_prefix="$dir/artifacts/$t-" \
        "$work" "$seeds" > "$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    cov=$(sed -n 's/^#[0-9]*.*cov: \([0-9]*\).*/\1/p' "$log" | tail -1)
    ncorp=$(ls "$work" | wc -l)
    if [ "$rc" -eq 0 ]; then
        result=ok
    else
        result="FAILED (exit $rc)"
        : > "$out/$t.failed"
        echo "--- [fuzz] $t failed; what it found ($log):"
        grep -m 8 -E 'check failed|property failed|ERROR:|runtime error|'`
            `'SUMMARY|DRV_ASSERT|assertion' "$log"
        echo "--- [fuzz] the end of the log:"
        tail -n 40 "$log"
        art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        if [ -n "$art" ]; then
            echo "--- [fuzz] reproducer: $art"
            echo "--- [fuzz] replay it: $bin $art"
        fi
    fi
    printf '%-12s %8s %12s %10s %6s %7s  %s' "$t" "$took" \
        "${execs:-?}" "${eps:-?}" "${cov:-?}" "$ncorp" "$result" > "$out/$t.line"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" \
        "$took" "${execs:-}" "${eps:-}" "${cov:-}" "$ncorp" "$result" \
        > "$out/$t.tsv"
    echo "--- [fuzz] $(cat "$out/$t.line")"
}

for t in "$@"; do
    [ -d "$here/corpus/$t" ] || { echo "run-fuzz: no seed corpus $here/corpus/$t" >&2; exit 2; }
done
targets=("$@")
i=0
while [ "$i" -lt "${#targets[@]}" ]; do
    batch=("${targets[@]:i:jobs}")
    for t in "${batch[@]}"; do run_target "$t" & done
    wait
    i=$((i + jobs))
done
failed=()
printf '%-12s %8s %12s %10s %6s %7s  %s\n' target seconds execs 'execs/s' \
    cov corpus result > "$dir/summary.txt"
for t in "${targets[@]}"; do
    cat "$out/$t.txt"
    cat "$out/$t.line" >> "$dir/summary.txt"; echo >> "$dir/summary.txt"
    cat "$out/$t.tsv" >> "$dir/results.tsv"
    [ -e "$out/$t.failed" ] && failed+=("$t")
done
echo
cat "$dir/summary.txt"
if [ ${#failed[@]} -ne 0 ]; then
    echo "[fuzz] failing targets: ${failed[*]} (artifacts in $dir/artifacts/)"
    exit 1
fi
echo "[fuzz] all targets passed"
