#!/usr/bin/env bash
#
# tests/bench/bench.sh -- what `make bench` runs after building.
#
#   tests/bench/bench.sh DROVERD TOOLS_DIR [drvbench options...]
#
# Starts a private redis-server (unix socket only, port 0, no RDB, no AOF)
# in a temporary directory, runs drvbench (every case, medians of several
# runs; see tests/bench/drvbench.c), prints the table and writes it as
# JSON to bench-results/bench-YYYYmmdd-HHMMSS.json (and a copy of the
# table next to it). Stops the server and removes the directory on exit,
# unless DROVER_BENCH_KEEP=1 (then droverd's configs, logs and traces stay).
#
# Environment: BENCH_RUNS (runs of the quick cases, default 5),
# BENCH_SLOW_RUNS (runs of the 10-second cases and of the webhook cases,
# default 3), BENCH_N (jobs of the drain case, default 200000), BENCH_CASES
# (e.g. 1,2,3; "http" names the webhook cases: BENCH_CASES=http runs only
# them, 1,http case 1 and them), BENCH_HTTP_N (jobs of each webhook case,
# default 20000), BENCH_HTTP_BATCH (their worker.batch, default drover's).
set -u -o pipefail

die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

[ $# -ge 2 ] || die "usage: bench.sh DROVERD TOOLS_DIR [drvbench options...]"
droverd=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
tools=$(cd "$2" && pwd)
shift 2
[ -x "$droverd" ] || die "$droverd is missing"
[ -x "$tools/drvbench" ] || die "$tools/drvbench is missing"
command -v redis-server >/dev/null || die "redis-server not found (apt-get install redis-server)"

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mkdir -p "$root/bench-results"
stamp=$(date +%Y%m%d-%H%M%S)
json=$root/bench-results/bench-$stamp.json
table=$root/bench-results/bench-$stamp.txt

dir=$(mktemp -d "${TMPDIR:-/tmp}/drover-bench.XXXXXX") || die "mktemp failed"
sock=$dir/redis.sock
pid=""
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    if [ "${DROVER_BENCH_KEEP:-0}" = 1 ]; then
        printf 'bench: kept %s\n' "$dir" >&2
    else
        rm -rf "$dir"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$dir/redis.conf" <<EOF
port 0
unixsocket $sock
unixsocketperm 700
dir $dir
save ""
appendonly no
daemonize no
logfile $dir/redis.log
EOF
redis-server "$dir/redis.conf" &
pid=$!
for _ in $(seq 200); do
    [ -S "$sock" ] && redis-cli -s "$sock" PING >/dev/null 2>&1 && break
    sleep 0.05
done
redis-cli -s "$sock" PING >/dev/null 2>&1 || die "redis-server did not start (see $dir/redis.log)"

rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$root" status --porcelain -- pkg cmd include 2>/dev/null)" ]; then
    rev="$rev+dirty"
fi
info="libevent $(pkg-config --modversion libevent 2>/dev/null || echo ?)"
info="$info, $(gcc --version | head -1 | sed 's/ (.*)//'), drover $rev"

# the webhook cases (tests/bench/httpbench.c): a local HTTP server, alone
# and against droverd's http handler
run_http() {
    echo
    "$tools/httpbench" --sock "$sock" --droverd "$droverd" --tools "$tools" \
        --work "$dir" --json "${json%.json}-http.json" \
        --runs "${BENCH_SLOW_RUNS:-3}" --n "${BENCH_HTTP_N:-20000}" \
        ${BENCH_HTTP_BATCH:+--batch "$BENCH_HTTP_BATCH"} |
        tee -a "$table"
    [ "${PIPESTATUS[0]}" -eq 0 ] || die "httpbench failed; DROVER_BENCH_KEEP=1 keeps $dir"
}
if [ "${BENCH_CASES:-}" = http ]; then
    run_http
    exit 0
fi

cases=()
[ -n "${BENCH_CASES:-}" ] && cases=(--cases "$BENCH_CASES")
"$tools/drvbench" --sock "$sock" --droverd "$droverd" --tools "$tools" \
    --work "$dir" --json "$json" --info "$info" \
    --runs "${BENCH_RUNS:-5}" --slow-runs "${BENCH_SLOW_RUNS:-3}" \
    --n "${BENCH_N:-200000}" "${cases[@]}" "$@" | tee "$table"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] || die "drvbench failed (exit $rc); DROVER_BENCH_KEEP=1 keeps $dir"
# graph pipelines against the same work as plain jobs (tests/bench/graphbench.c)
echo
"$tools/graphbench" --sock "$sock" --droverd "$droverd" --work "$dir" \
    --runs "${BENCH_RUNS:-5}" | tee -a "$table"
[ "${PIPESTATUS[0]}" -eq 0 ] || die "graphbench failed; DROVER_BENCH_KEEP=1 keeps $dir"
case ",${BENCH_CASES:-http}," in
*,http,*) run_http ;;
esac
