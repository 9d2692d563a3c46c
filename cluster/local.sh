#!/usr/bin/env bash
# Trains on a local cluster: one `tributary coordinator` and N `tributary worker` processes on
# this machine, every log in one folder, every process stopped on exit, failure or Ctrl-C.
#
# Usage: cluster/local.sh N [training options…]
#   N        the number of workers (1 or more)
#   options  the options of `tributary coordinator` (see `tributary coordinator --help`), e.g.
#            --data moons --steps 2000 --couplings 8 --hidden 64 --seed 0; --out defaults to
#            LOGDIR/model.safetensors and --metrics to LOGDIR/metrics.jsonl
# Environment:
#   LOGDIR       the folder for coordinator.log, worker-I.log, metrics.jsonl
#                (default out/cluster-YYYYmmdd-HHMMSS in the repository)
#   ENDPOINT     the endpoint to bind and connect (default ipc://LOGDIR/coordinator.ipc)
#   TRIBUTARY    the binary (default the release build, built with `swift build -c release`
#                if missing)
#   WORKER_OPTS  extra options for every worker, e.g. "--threads 2"
# Relative paths (in the options, LOGDIR, ENDPOINT, TRIBUTARY) are read from the directory
# the script is run from. The model is bit-for-bit the one `tributary train` writes with the
# same options.
set -euo pipefail

if [ $# -lt 1 ] || ! [[ $1 =~ ^[1-9][0-9]*$ ]]; then
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 64
fi
workers=$1
shift
# The repository, for the default binary and log folder; the caller's directory stays the
# working directory, so relative paths mean what they meant where the script was run.
root=$(cd "$(dirname "$0")/.." && pwd)

if [ -n "${TRIBUTARY:-}" ]; then
    bin=$TRIBUTARY
else
    bin=$root/.build/release/tributary
    if [ ! -x "$bin" ]; then
        echo "building the release binary (swift build -c release)…"
        swift build -c release --package-path "$root"
    fi
fi

logdir=${LOGDIR:-$root/out/cluster-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$logdir"
logdir=$(cd "$logdir" && pwd)
if [ -n "${ENDPOINT:-}" ]; then
    endpoint=$ENDPOINT
elif [ ${#logdir} -lt 80 ]; then
    endpoint="ipc://$logdir/coordinator.ipc"
else
    # An IPC path may not exceed 107 bytes.
    endpoint="ipc://${TMPDIR:-/tmp}/tributary-local-$$.ipc"
fi

options=("$@")
has_option() {
    local option
    for option in "${options[@]}"; do
        [ "$option" = "$1" ] || [[ $option == "$1="* ]] && return 0
    done
    return 1
}
has_option --out || options+=(--out "$logdir/model.safetensors")
has_option --metrics || options+=(--metrics "$logdir/metrics.jsonl")
model=$logdir/model.safetensors
for ((i = 0; i < ${#options[@]}; i++)); do
    case ${options[$i]} in
        --out) model=${options[$((i + 1))]:-$model} ;;
        --out=*) model=${options[$i]#--out=} ;;
    esac
done

pids=()
tail_pid=
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null
    for pid in "${pids[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill -TERM "$pid" 2>/dev/null || true; done
    # Give them a second to go, then make sure.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive -eq 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    case $endpoint in ipc://*) rm -f "${endpoint#ipc://}" ;; esac
    echo "logs: $logdir (coordinator.log, worker-1…$workers.log, metrics.jsonl)"
    [ -f "$model" ] && echo "model: $model"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "coordinator on $endpoint, $workers workers; logs in $logdir"
"$bin" coordinator --bind "$endpoint" --min-workers "$workers" "${options[@]}" 2> "$logdir/coordinator.log" &
coordinator=$!
pids+=("$coordinator")
for ((i = 1; i <= workers; i++)); do
    # shellcheck disable=SC2086  # WORKER_OPTS is a list of words
    "$bin" worker --connect "$endpoint" --name "worker-$i" ${WORKER_OPTS:-} > /dev/null 2> "$logdir/worker-$i.log" &
    pids+=($!)
done
if [ -t 2 ]; then
    tail -n +1 -f "$logdir/coordinator.log" >&2 &
    tail_pid=$!
fi

status=0
wait "$coordinator" || status=$?
if [ $status -ne 0 ]; then
    echo "the coordinator failed (exit $status); see $logdir/coordinator.log" >&2
    exit $status
fi
# The workers leave when the coordinator says goodbye.
for pid in "${pids[@]:1}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
done
