#!/usr/bin/env bash
#
# tests/bench/callgrind-http.sh -- user-space instructions per http job, a
# measure that does not move with the machine's load (make bench's CPU
# times do).
#
#   tests/bench/callgrind-http.sh DROVERD TOOLS_DIR [N] [OUT]
#
# Starts a private redis-server and tools/httpserver (answers after 20 ms),
# runs DROVERD under valgrind --tool=callgrind with instrumentation off,
# turns it on once droverd reads, XADDs N http POST jobs (default 3000;
# concurrency 500, the job type of make bench's webhook cases), turns it
# off once the stream is empty, and prints the instructions per job and
# the callgrind file (OUT, default callgrind-http.out) for
# callgrind_annotate. Needs valgrind. Slow: about 30 s for 3,000 jobs.
# CALLGRIND_HTTP_HOST=localhost puts a host name in the job type's URL
# (default 127.0.0.1; the server listens there only).
set -u -o pipefail

die() { printf 'callgrind-http: %s\n' "$*" >&2; exit 1; }

[ $# -ge 2 ] || die "usage: callgrind-http.sh DROVERD TOOLS_DIR [N] [OUT]"
droverd=$1
tools=$2
n=${3:-3000}
out=${4:-callgrind-http.out}
host=${CALLGRIND_HTTP_HOST:-127.0.0.1}
command -v valgrind >/dev/null || die "valgrind not found"
command -v redis-server >/dev/null || die "redis-server not found"

dir=$(mktemp -d "${TMPDIR:-/tmp}/drover-cg.XXXXXX") || die "mktemp failed"
rpid="" spid="" dpid=""
cleanup() {
    for p in $dpid $spid $rpid; do
        kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    rm -rf "$dir"
}
trap cleanup EXIT

cat >"$dir/redis.conf" <<EOF
port 0
unixsocket $dir/redis.sock
dir $dir
save ""
appendonly no
logfile $dir/redis.log
EOF
redis-server "$dir/redis.conf" &
rpid=$!
"$tools/httpserver" --delay-ms 20 >"$dir/server.log" 2>&1 &
spid=$!
port=""
for _ in $(seq 200); do
    port=$(sed -n 's/^listening 127.0.0.1://p' "$dir/server.log")
    [ -n "$port" ] && redis-cli -s "$dir/redis.sock" PING >/dev/null 2>&1 && break
    sleep 0.05
done
[ -n "$port" ] || die "httpserver or redis-server did not start"
cat >"$dir/http.yaml" <<EOF
redis:
  url: unix://$dir/redis.sock
  prefix: drover
worker:
  concurrency: 500
  shutdown_timeout: 5s
queues: [bench]
jobs:
  hook:
    handler: http
    method: POST
    url: http://$host:$port/hook
    retries: 0
    timeout: 5m
EOF
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
    "$droverd" -c "$dir/http.yaml" >"$dir/droverd.log" 2>&1 &
dpid=$!
for _ in $(seq 600); do
    redis-cli -s "$dir/redis.sock" CLIENT LIST | grep -q 'cmd=xreadgroup' && break
    sleep 0.1
done
callgrind_control -i on "$dpid" >/dev/null 2>&1 || die "callgrind_control failed"
for i in $(seq 0 $((n - 1))); do
    echo "XADD drover:{bench}:jobs * job hook id j$i n $i"
done | redis-cli -s "$dir/redis.sock" >/dev/null
while [ "$(redis-cli -s "$dir/redis.sock" XLEN 'drover:{bench}:jobs')" != 0 ]; do
    kill -0 "$dpid" 2>/dev/null || die "droverd exited (see $dir/droverd.log)"
    sleep 0.2
done
callgrind_control -i off "$dpid" >/dev/null 2>&1
done_jobs=$(redis-cli -s "$dir/redis.sock" HGET 'drover:{bench}:stats' processed)
kill "$dpid"
wait "$dpid" 2>/dev/null
dpid=""
kill "$spid"
wait "$spid" 2>/dev/null
conns=$(sed -n 's/^accepted \([0-9]*\) .*/\1/p' "$dir/server.log")
spid=""
[ "$done_jobs" = "$n" ] || die "processed $done_jobs of $n jobs"
total=$(callgrind_annotate "$out" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
[ -n "$total" ] || die "no totals in $out"
printf 'jobs %s connections %s instructions %s per job %d\n' "$n" "$conns" \
    "$total" $((total / n))
printf 'callgrind_annotate %s   # the functions\n' "$out"
