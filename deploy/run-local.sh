#!/usr/bin/env bash
#
# deploy/run-local.sh -- what `make run` does after `deps build`.
#
#   deploy/run-local.sh            (from anywhere; works in the repository root)
#   DROVER_CONFIG=FILE deploy/run-local.sh
#
# 1. Reads redis.url (and redis.prefix, queues, job types) from the config:
#    $DROVER_CONFIG, else config/drover.yaml.
# 2. If that Redis answers PING, uses it (and never stops it).
#    Otherwise starts a private redis-server that listens only on the unix
#    socket run/redis.sock (port 0; pidfile, log and append-only file in
#    run/, so the demo's jobs survive a restart), and points droverd at it
#    with --redis unix://$PWD/run/redis.sock.
# 3. Prints copy-pasteable redis-cli lines that enqueue demo jobs and the
#    commands that show what happened.
# 4. Starts the dashboard, bin/drover web, on $DROVER_WEB_LISTEN (default
#    127.0.0.1:8080; a free port when that one is taken) and prints its URL
#    with the redis-cli lines; it is stopped when droverd stops.
# 5. Runs bin/droverd. Ctrl-C (SIGINT) or SIGTERM reaches droverd exactly
#    once per signal: the first is a graceful stop (drain up to
#    worker.shutdown_timeout, then requeue; exit 0), a second one stops it at
#    once. Then the private redis-server, if this script started it, is shut
#    down. Exits with droverd's exit status.
#
# droverd runs in its own process group and this script forwards signals to
# it, so a Ctrl-C is delivered once (not once by the terminal and once more
# by the script, which droverd would read as "stop now").

# shellcheck disable=SC2317  # cleanup/forward run from traps
set -u -o pipefail

die() { printf 'run-local: %s\n' "$*" >&2; exit 1; }
note() { printf 'run-local: %s\n' "$*" >&2; }

# ---------------------------------------------------------------- paths
config_in=${DROVER_CONFIG:-config/drover.yaml}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd) || exit 1
root=$(cd "$here/.." && pwd) || exit 1
# resolve the config against the caller's directory, then work in the root
case $config_in in
/*) config=$config_in ;;
*)  if [ -e "$config_in" ]; then
        config=$(cd "$(dirname "$config_in")" && pwd)/$(basename "$config_in")
    else
        config=$root/$config_in
    fi ;;
esac
cd "$root" || exit 1
[ -r "$config" ] || die "cannot read config $config"
# shown in the printed commands: relative to the root when inside it
config_show=${config#"$root"/}

droverd=$root/bin/droverd
drover_show=bin/drover
[ -x "$droverd" ] || die "bin/droverd is missing: run 'make build' first"
command -v redis-cli >/dev/null || die "redis-cli not found (apt-get install redis-tools)"

# ---------------------------------------------------------------- config
# A small reader for the few keys needed here (not a YAML parser: it expects
# the layout of config/drover.yaml -- block mappings, one key per line).
# Prints KEY=VALUE lines: url, prefix, queue (the first), echo, echo_ttl,
# exec, exec_fields (space-separated {field} names of exec's command), and
# first, first_handler (the first job type, for configs with neither echo
# nor exec).
read_config() {
    awk '
    function clean(s) {
        sub(/^[ \t]+/, "", s)
        if (s ~ /^"/) { sub(/^"/, "", s); sub(/".*$/, "", s); return s }
        if (s ~ /^\x27/) { sub(/^\x27/, "", s); sub(/\x27.*$/, "", s); return s }
        sub(/[ \t]+#.*$/, "", s); sub(/[ \t]+$/, "", s)
        return s
    }
    function key_of(s) { s = clean(s); sub(/:.*$/, "", s); return clean(s) }
    function val_of(s) {
        sub(/^[ \t]*("[^"]*"|\x27[^\x27]*\x27|[^:]*):[ \t]*/, "", s)
        return clean(s)
    }
    function indent(s) { match(s, /^[ \t]*/); return RLENGTH }
    function fields(s,   f, out) {
        gsub(/\{\{|\}\}/, "", s)
        while (match(s, /\{[^{}]+\}/)) {
            f = substr(s, RSTART + 1, RLENGTH - 2)
            if (index(" " cmdf " ", " " f " ") == 0) cmdf = cmdf (cmdf == "" ? "" : " ") f
            s = substr(s, RSTART + RLENGTH)
        }
    }
    function flush() {
        if (job == "") return
        if (handler == "echo" && echo == "") { echo = job; echo_ttl = ttl }
        if (handler == "exec" && exec == "") { exec = job; exec_fields = cmdf }
        if (first == "") { first = job; first_handler = handler }
        job = ""; handler = ""; ttl = ""; cmdf = ""; incmd = 0
    }
    /^[ \t]*(#|$)/ { next }
    /^[^ \t]/ {
        flush()
        section = key_of($0); jind = 0; incmd = 0
        if (section == "queues") {
            v = val_of($0)
            if (v ~ /^\[/) { sub(/^\[[ \t]*/, "", v); sub(/[ \t]*[],].*$/, "", v);
                             if (queue == "") queue = clean(v) }
        }
        next
    }
    section == "redis" {
        k = key_of($0)
        if (k == "url") url = val_of($0)
        if (k == "prefix") prefix = val_of($0)
        next
    }
    section == "queues" {
        if (queue == "" && $0 ~ /^[ \t]*-/) { v = $0; sub(/^[ \t]*-[ \t]*/, "", v); queue = clean(v) }
        next
    }
    section == "jobs" {
        ind = indent($0)
        if (jind == 0 || ind <= jind) { flush(); jind = ind; job = key_of($0); next }
        if (incmd && ind > cind) { fields($0); next }
        incmd = 0
        k = key_of($0); v = val_of($0)
        if (k == "handler") handler = v
        else if (k == "result_ttl") ttl = v
        else if (k == "command") { cind = ind; if (v == "") incmd = 1; else fields(v) }
        next
    }
    END {
        flush()
        printf "url=%s\nprefix=%s\nqueue=%s\n", url, prefix, queue
        printf "echo=%s\necho_ttl=%s\nexec=%s\nexec_fields=%s\n", echo, echo_ttl, exec, exec_fields
        printf "first=%s\nfirst_handler=%s\n", first, first_handler
    }' "$config"
}

url=; prefix=; queue=; echo_job=; echo_ttl=; exec_job=; exec_fields=
first_job=; first_handler=
while IFS='=' read -r k v; do
    case $k in
    url) url=$v ;;
    prefix) prefix=$v ;;
    queue) queue=$v ;;
    echo) echo_job=$v ;;
    echo_ttl) echo_ttl=$v ;;
    exec) exec_job=$v ;;
    exec_fields) exec_fields=$v ;;
    first) first_job=$v ;;
    first_handler) first_handler=$v ;;
    esac
done < <(read_config)
url=${url:-redis://127.0.0.1:6379/0}     # the defaults of config.h
prefix=${prefix:-drover}
queue=${queue:-default}

# ---------------------------------------------------------------- redis
# cli_args URL: the redis-cli connection options for URL, one per line.
cli_args() {
    local u=$1 rest path db
    case $u in
    unix://*)
        rest=${u#unix://}
        case $rest in /*) ;; *) rest=/${rest#*@/} ;; esac   # drop user:pass@
        path=${rest%%\?*}
        db=
        case $rest in *\?db=*) db=${rest##*\?db=} ;; esac
        printf '%s\n' -s "$(printf '%b' "${path//%/\\x}")"
        [ -n "$db" ] && printf '%s\n' -n "$db"
        ;;
    *)  printf '%s\n' -u "$u" ;;
    esac
    return 0
}

# ping URL: 0 if that Redis answers PONG (3 s at most). Uses
# $DROVER_REDIS_PASSWORD as droverd would, when the URL has no password.
ping_redis() {
    local -a a
    local out
    mapfile -t a < <(cli_args "$1")
    if [ -n "${DROVER_REDIS_PASSWORD:-}" ]; then
        out=$(REDISCLI_AUTH=$DROVER_REDIS_PASSWORD \
              timeout 3 redis-cli --no-auth-warning "${a[@]}" PING 2>&1) || true
    else   # an empty REDISCLI_AUTH would still send AUTH
        out=$(env -u REDISCLI_AUTH \
              timeout 3 redis-cli --no-auth-warning "${a[@]}" PING 2>&1) || true
    fi
    [ "$out" = PONG ] && return 0
    ping_error=${out:-no answer}
    return 1
}

# quote for a copy-pasteable shell line
q() {
    case $1 in
    *[!A-Za-z0-9_./:=@%+,-]*|'') printf "'%s'" "${1//\'/\'\\\'\'}" ;;
    *) printf '%s' "$1" ;;
    esac
}

run=$root/run
sock=$run/redis.sock
pidfile=$run/redis.pid
started_redis=0      # 1 = this script started the redis-server: stop it
redis_pid=
droverd_pid=
web_pid=             # the dashboard (bin/drover web), when it started
web_url=
ping_error=

stop_redis() {
    [ "$started_redis" = 1 ] || return 0
    started_redis=0
    note "stopping the private redis-server (pid ${redis_pid:-?})"
    redis-cli -s "$sock" SHUTDOWN NOSAVE >/dev/null 2>&1 || true
    for _ in $(seq 50); do
        [ -n "$redis_pid" ] && kill -0 "$redis_pid" 2>/dev/null || return 0
        sleep 0.1
    done
    note "redis-server did not stop: SIGTERM to pid $redis_pid"
    kill -TERM "$redis_pid" 2>/dev/null || true
}

stop_web() {
    [ -n "$web_pid" ] || return 0
    kill -TERM "$web_pid" 2>/dev/null
    wait "$web_pid" 2>/dev/null
    web_pid=
}

cleanup() {
    stop_web
    if [ -n "$droverd_pid" ] && kill -0 "$droverd_pid" 2>/dev/null; then
        # the script itself is going away (an error, or killed): do not
        # leave a worker behind
        kill -TERM "$droverd_pid" 2>/dev/null
        wait "$droverd_pid" 2>/dev/null
    fi
    stop_redis
}
trap cleanup EXIT

# forward a signal to droverd, once per signal received
forward() {
    if [ -n "$droverd_pid" ]; then
        kill -s "$1" "$droverd_pid" 2>/dev/null || true
    else
        exit 130          # before droverd started: just clean up
    fi
}
trap 'forward INT' INT
trap 'forward TERM' TERM
trap 'forward TERM' HUP   # a closed terminal: stop (droverd reads HUP as "reopen logs")

if ping_redis "$url"; then
    redis_url=$url
    redis_note="the Redis of $config_show ($url), not managed by this script"
else
    note "the Redis of $config_show ($url) does not answer: ${ping_error//$'\n'/ }"
    command -v redis-server >/dev/null ||
        die "redis-server not found (apt-get install redis-server)"
    mkdir -p "$run" || die "cannot create $run"
    [ ${#sock} -lt 104 ] ||
        die "the socket path $sock is too long for a unix socket (max 103 bytes); move the checkout to a shorter path"
    # percent-encode what a URL path cannot hold as is
    enc=${sock//%/%25}; enc=${enc//\?/%3F}; enc=${enc//#/%23}; enc=${enc// /%20}
    redis_url=unix://$enc
    # DROVER_REDIS_PASSWORD is for the configured Redis; the private one has
    # no password, and AUTH against it would fail
    unset DROVER_REDIS_PASSWORD
    if ping_redis "$redis_url"; then
        # left over from a run that could not clean up (kill -9): reuse it,
        # but it is not ours to stop
        redis_pid=$(cat "$pidfile" 2>/dev/null || true)
        redis_note="a private redis-server already running on run/redis.sock (pid ${redis_pid:-?}); stop it with: redis-cli -s run/redis.sock SHUTDOWN"
    else
        note "starting a private redis-server on run/redis.sock (log: run/redis.log)"
        rm -f "$pidfile"
        redis-server --port 0 --unixsocket "$sock" --unixsocketperm 700 \
            --dir "$run" --pidfile "$pidfile" --logfile "$run/redis.log" \
            --daemonize yes --appendonly yes --save '' \
            --protected-mode yes </dev/null ||
            die "redis-server failed to start; see run/redis.log"
        started_redis=1
        for _ in $(seq 100); do       # up to 10 s (an AOF may be loading)
            [ -z "$redis_pid" ] && redis_pid=$(cat "$pidfile" 2>/dev/null || true)
            ping_redis "$redis_url" && break
            sleep 0.1
        done
        if ! ping_redis "$redis_url"; then
            tail -n 20 "$run/redis.log" >&2 2>/dev/null
            die "the private redis-server does not answer PING on $sock"
        fi
        redis_note="a private redis-server on run/redis.sock (pid ${redis_pid:-?}; data in run/, kept between runs), stopped when droverd stops"
    fi
fi

# ---------------------------------------------------------------- dashboard
# start_web LISTEN: run bin/drover web in its own process group (Ctrl-C is
# for droverd) and wait for the URL it prints; 1 if it did not start.
start_web() {
    mkdir -p "$run" || return 1
    : > "$run/web.log"
    set -m
    "$root/bin/drover" -c "$config" --redis "$redis_url" web --listen "$1" \
        </dev/null >"$run/web.log" 2>&1 &
    web_pid=$!
    set +m
    for _ in $(seq 50); do
        web_url=$(sed -n 's/^drover web: dashboard at \([^ ]*\).*/\1/p' "$run/web.log")
        [ -n "$web_url" ] && return 0
        kill -0 "$web_pid" 2>/dev/null || break
        sleep 0.1
    done
    stop_web
    return 1
}
if [ -x "$root/bin/drover" ]; then
    start_web "${DROVER_WEB_LISTEN:-127.0.0.1:8080}" || start_web 127.0.0.1:0 ||
        note "the dashboard did not start; see run/web.log"
fi

# ---------------------------------------------------------------- help text
mapfile -t cli < <(cli_args "$redis_url")
if [ "${cli[0]}" = -s ]; then
    cli[1]=${cli[1]#"$root"/}         # run/redis.sock: paste from the root
fi
redis_cli="redis-cli"
for a in "${cli[@]}"; do redis_cli+=" $(q "$a")"; done
if [ -n "${DROVER_REDIS_PASSWORD:-}" ]; then
    redis_cli="REDISCLI_AUTH=\"\$DROVER_REDIS_PASSWORD\" $redis_cli"
fi
drover_cli="$drover_show -c $(q "$config_show") --redis $(q "$redis_url")"
stream=$(q "$prefix:{$queue}:jobs")

{
    echo
    echo "drover: droverd on $config_show"
    echo "  Redis: $redis_note"
    if [ -n "$web_url" ]; then
        echo "  Dashboard: $web_url (log: run/web.log)"
    fi
    echo
    if [ -n "$echo_job$exec_job$first_job" ]; then
        echo "Enqueue demo jobs (from another terminal, in $root):"
    fi
    if [ -z "$echo_job$exec_job" ] && [ -n "$first_job" ]; then
        # neither echo nor exec: a job of the first type, with the fields
        # its handler reads
        case $first_handler in
        sleep|block) args=" ms 500" ;;
        fail) args=" error 'demo failure'" ;;
        *) args= ;;
        esac
        echo "  $redis_cli XADD $stream '*' job $(q "$first_job")$args"
    fi
    if [ -n "$echo_job" ]; then
        if [ -n "$echo_ttl" ] && [ "$echo_ttl" != 0 ]; then
            echo "  $redis_cli XADD $stream '*' job $(q "$echo_job") id demo-echo-1 msg hello"
        else
            echo "  $redis_cli XADD $stream '*' job $(q "$echo_job") msg hello"
        fi
    fi
    if [ -n "$exec_job" ]; then
        line="  $redis_cli XADD $stream '*' job $(q "$exec_job") id demo-exec-1"
        for f in $exec_fields; do
            case $f in
            ms) v=100 ;;
            *) v=drover ;;
            esac
            line+=" $(q "$f") $v"
        done
        echo "$line"
    fi
    echo
    echo "See what happened:"
    echo "  $drover_cli stats"
    echo "  $redis_cli HGETALL $(q "$prefix:{$queue}:stats")"
    if [ -n "$echo_job" ] && [ -n "$echo_ttl" ] && [ "$echo_ttl" != 0 ]; then
        echo "  $drover_cli result $(q "$queue") demo-echo-1"
    fi
    if [ -n "$exec_job" ]; then
        echo "  $drover_cli result $(q "$queue") demo-exec-1"
        echo "  $redis_cli HGETALL $(q "$prefix:{$queue}:result:demo-exec-1")"
    fi
    echo
    echo "Ctrl-C stops droverd gracefully (a second Ctrl-C: at once)."
    echo
} >&2

# ---------------------------------------------------------------- droverd
# Its own process group (set -m), so the terminal's Ctrl-C reaches only this
# script, which forwards it once; stdin is not droverd's business.
set -m
"$droverd" -c "$config" --redis "$redis_url" </dev/null &
droverd_pid=$!
set +m

rc=0
while :; do
    wait "$droverd_pid"
    rc=$?
    # > 128 with droverd still there: wait was interrupted by a signal this
    # script trapped (and forwarded); keep waiting
    if [ "$rc" -gt 128 ] && kill -0 "$droverd_pid" 2>/dev/null; then
        continue
    fi
    break
done
# the status bash recorded for droverd (the loop's rc may be the
# interruption's, when droverd exited at the same moment)
wait "$droverd_pid" 2>/dev/null
rc2=$?
[ "$rc2" -ne 127 ] && rc=$rc2
droverd_pid=
note "droverd exited with status $rc"
stop_web
stop_redis
exit "$rc"
