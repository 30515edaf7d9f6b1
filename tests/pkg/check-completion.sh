#!/usr/bin/env bash
# check-completion.sh BINDIR -- the bash completion of drover and droverd,
# driven like bash drives it: COMP_WORDS/COMP_CWORD set, the function
# registered with `complete -p` called, COMPREPLY compared.
set -u
bindir=$(cd "${1:?usage: check-completion.sh BINDIR}" && pwd)
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0

# the file as installed, with a system config that does not exist
sed "s|@SYSCONFDIR@|$tmp/etc|g" deploy/bash-completion/drover > "$tmp/drover.bash"

cat > "$tmp/conf.yaml" <<'YAML'
# a config with every shape of queues the completion reads
redis:
  url: redis://127.0.0.1:6379/0
queues:
  - critical   # first
  - "default"
jobs:
  resize:
    handler: exec
    command: [convert, "{path}"]
  notify: {handler: noop}
  'send-mail':
    handler: echo
pipelines:
  thumbnail:
    steps: [resize, notify]
YAML
printf 'queues: [fast, slow]\njobs: {a: {handler: noop}}\n' > "$tmp/flow.yaml"
mkdir -p "$tmp/etc/drover"

# complete EXPECTED WORD... -- complete the last WORD (may be empty) and
# compare the sorted replies with EXPECTED (space-separated)
complete_words() {
    local expected=$1; shift
    local got
    got=$(PATH="$bindir:$PATH" bash --norc --noprofile -c '
        source "$1"; shift
        spec=$(complete -p "$1") || exit 3
        fn=${spec#*-F }; fn=${fn%% *}
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        "$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
        printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "
    ' check "$tmp/drover.bash" "$@")
    got=${got% }
    if [ "$got" != "$expected" ]; then
        echo "FAIL: complete '$*': got '$got', want '$expected'"
        fails=$((fails + 1))
    else
        echo "ok: complete '$*' -> $got"
    fi
}

c="-c $tmp/conf.yaml"
cmds=$("$bindir/drover" --help | awk '/^commands:/ { on = 1; next }
        /^[^ ]/ { on = 0 } on && /^  [a-z]/ { print $1 }' | sort -u |
        tr '\n' ' ')
complete_words "${cmds% }" drover ""
complete_words "dead" drover $c de
complete_words "list purge retry" drover $c dead ""
complete_words "critical default" drover $c dead list ""
complete_words "critical default" drover $c pause ""
complete_words "critical" drover $c stats cr
complete_words "notify resize send-mail" drover $c enqueue critical ""
complete_words "notify resize send-mail" drover enqueue --config "$tmp/conf.yaml" default ""
complete_words "thumbnail" drover $c enqueue default --pipeline ""
complete_words "" drover $c enqueue default resize ""
complete_words "" drover $c enqueue default --delay ""
complete_words "fast slow" drover -c "$tmp/flow.yaml" resume ""
complete_words "a" drover -c "$tmp/flow.yaml" enqueue fast ""
complete_words "--delay" drover $c enqueue q j --d
complete_words "--pipeline" drover $c enqueue q --pi
complete_words "--config --count" drover dead list q --co
complete_words "--verbose --version" drover --ver
complete_words "enqueue" drover help enq
complete_words "schedules" drover $c sche
complete_words "--json" drover $c schedules --j
complete_words "" drover $c schedules ""
# no -c and no system config: no queue names, no error
complete_words "" drover pause ""
# the system config when -c is absent
cp "$tmp/flow.yaml" "$tmp/etc/drover/drover.yaml"
complete_words "fast slow" drover pause ""
complete_words "$tmp/conf.yaml" drover -c "$tmp/con"
complete_words "$tmp/conf.yaml" drover check-config "$tmp/con"
complete_words "debug error info warn" droverd --log-level ""
complete_words "--concurrency --config" droverd --co
complete_words "critical default" droverd -c "$tmp/conf.yaml" --queues ""

# both are registered
bash --norc -c 'source "$1"; complete -p drover && complete -p droverd' \
    check "$tmp/drover.bash" >/dev/null ||
    { echo "FAIL: complete -p"; fails=$((fails + 1)); }

if [ "$fails" -ne 0 ]; then
    echo "check-completion: $fails failed"
    exit 1
fi
echo "check-completion: ok"
