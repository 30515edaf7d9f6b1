# lib.sh -- helpers of the tests/pkg scripts (sourced).
#
#   pkg_start_redis DIR     a private redis-server on DIR/redis.sock; sets
#                           PKG_REDIS_URL; pkg_cleanup stops it
#   pkg_run_demo ROOT CONF LOG
#                           the droverd under ROOT (stderr to LOG) runs a
#                           demo-echo and a demo-exec job of CONF (the
#                           example config), enqueued with ROOT's drover;
#                           it stops on SIGTERM with exit 0
#   pkg_wait_result BIN CONF QUEUE ID
#                           the job's status once final ("none" after 30 s)
#   ok MSG / fail MSG       report; fail counts into $fails

fails=0
pkg_dpid=
pkg_redis_pid=
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

pkg_cleanup() {
    [ -n "$pkg_dpid" ] && kill -KILL "$pkg_dpid" 2>/dev/null
    [ -n "$pkg_redis_pid" ] && kill "$pkg_redis_pid" 2>/dev/null
    return 0
}

pkg_start_redis() {
    local dir=$1
    redis-server --port 0 --unixsocket "$dir/redis.sock" --save '' \
        --appendonly no --daemonize yes --pidfile "$dir/redis.pid" \
        --dir "$dir" --logfile "$dir/redis.log" >/dev/null ||
        { echo "FAIL: redis-server did not start"; return 1; }
    for _ in $(seq 100); do
        redis-cli -s "$dir/redis.sock" ping 2>/dev/null | grep -q PONG && break
        sleep 0.1
    done
    pkg_redis_pid=$(cat "$dir/redis.pid")
    PKG_REDIS_URL=unix://$dir/redis.sock
}

pkg_wait_result() {
    local bin=$1 conf=$2 queue=$3 id=$4 st
    for _ in $(seq 300); do
        st=$("$bin" -c "$conf" --redis "$PKG_REDIS_URL" result "$queue" \
             "$id" --field status 2>/dev/null)
        case $st in ok|dead|failed) echo "$st"; return ;; esac
        sleep 0.1
    done
    echo "none"
}

# pkg_job ROOT CONF QUEUE WANT JOB FIELD=VALUE... -- enqueue with ROOT's
# drover, wait, compare the result with WANT
pkg_job() {
    local drover=$1/usr/bin/drover conf=$2 queue=$3 want=$4 id st res
    shift 4
    id=$("$drover" -c "$conf" --redis "$PKG_REDIS_URL" enqueue "$queue" \
         "$@") || { fail "enqueue $*"; return; }
    st=$(pkg_wait_result "$drover" "$conf" "$queue" "$id")
    res=$("$drover" -c "$conf" --redis "$PKG_REDIS_URL" result "$queue" \
          "$id" --field result 2>/dev/null)
    [ "$st" = ok ] && [ "$res" = "$want" ] && ok "$1 ran: $res" ||
        fail "$1: status $st, result '$res'"
}

# pkg_droverd ROOT CONF LOG -- start ROOT's droverd in the background
pkg_droverd() {
    "$1/usr/bin/droverd" -c "$2" --redis "$PKG_REDIS_URL" 2>"$3" &
    pkg_dpid=$!
}

# pkg_stop_droverd LOG -- SIGTERM, expect exit 0
pkg_stop_droverd() {
    local rc
    kill -TERM "$pkg_dpid"
    wait "$pkg_dpid"; rc=$?
    pkg_dpid=
    [ "$rc" = 0 ] && ok "droverd stopped on SIGTERM, exit 0" ||
        { fail "droverd exit $rc"; cat "$1"; }
}

pkg_run_demo() {
    local root=$1 conf=$2 log=$3
    pkg_droverd "$root" "$conf" "$log"
    pkg_job "$root" "$conf" default '{"hello":"installed"}' \
        demo-echo hello=installed
    pkg_job "$root" "$conf" low 'hello package' demo-exec name=package
    pkg_stop_droverd "$log"
}

# pkg_versions ROOT -- both binaries' --version and --version --verbose
pkg_versions() {
    local b out
    for b in droverd drover; do
        out=$("$1/usr/bin/$b" --version) &&
            [[ $out =~ ^$b\ [0-9]+\.[0-9]+\.[0-9]+ ]] &&
            ok "$b --version: $out" || fail "$b --version: '$out'"
        out=$("$1/usr/bin/$b" --version --verbose) &&
            grep -q '^  hiredis ' <<<"$out" &&
            grep -q '^  libevent ' <<<"$out" &&
            grep -q '^  libyaml ' <<<"$out" &&
            grep -q '^  libcurl ' <<<"$out" &&
            ok "$b --version --verbose" ||
            fail "$b --version --verbose: '$out'"
    done
}
