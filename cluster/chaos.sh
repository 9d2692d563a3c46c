#!/usr/bin/env bash
# Fault drill: trains once in one process, then again with the same options on a coordinator
# and 3 workers while, at seeded random moments, it SIGKILLs a worker (and starts a
# replacement), SIGSTOPs another past the heartbeat deadline (then SIGCONTs it), and SIGKILLs
# the coordinator once after a checkpoint (and restarts it with --resume). The two model files
# must be the same bytes: prints PASS (exit 0) or FAIL (exit 1).
#
# Usage: cluster/chaos.sh
# Environment:
#   CHAOS_SEED   seed of the fault schedule (default: random; printed, so a run can be replayed)
#   STEPS        training steps (default 6000: about 10 s in one process, 20 s on the cluster)
#   TIME_LIMIT   seconds the cluster run (faults included) may take before the drill fails
#                (default 300)
#   LOGDIR       logs, metrics and models (default out/chaos-YYYYmmdd-HHMMSS)
#   TRIBUTARY    the binary (default the release build, built with `swift build -c release`
#                if missing)
# Every process the drill starts is stopped when it ends, however it ends.
set -euo pipefail

if [ $# -gt 0 ]; then
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 64
fi
cd "$(dirname "$0")/.."

if [ -n "${TRIBUTARY:-}" ]; then
    bin=$TRIBUTARY
else
    bin=.build/release/tributary
    if [ ! -x "$bin" ]; then
        echo "building the release binary (swift build -c release)…"
        swift build -c release
    fi
fi

seed=${CHAOS_SEED:-$(( $(date +%s%N) % 1000000 ))}
steps=${STEPS:-6000}
time_limit=${TIME_LIMIT:-300}
logdir=${LOGDIR:-out/chaos-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$logdir"
logdir=$(cd "$logdir" && pwd)
if [ ${#logdir} -lt 80 ]; then endpoint="ipc://$logdir/coordinator.ipc"; else endpoint="ipc://${TMPDIR:-/tmp}/tributary-chaos-$$.ipc"; fi
RANDOM=$seed

options=(--data moons --rows 8000 --batch 512 --micro-batch 64 --couplings 8 --hidden 64 --seed 11
         --eval-every 500 --steps "$steps")
heartbeat_ms=100   # a peer silent for 8 intervals (0.8 s) is dead
checkpoint_every=50

pids=()
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    case $endpoint in ipc://*) rm -f "${endpoint#ipc://}" ;; esac
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { printf '[chaos %5.1fs] %s\n' "$(( $(date +%s%N) / 1000000 - start_ms ))e-3" "$*"; }
start_ms=$(( $(date +%s%N) / 1000000 ))
# Whole seconds since the cluster run started.
elapsed() { echo $(( ($(date +%s%N) / 1000000 - cluster_start_ms) / 1000 )); }
# Sets `duration` to a seeded time between $1 and $2 milliseconds, in seconds for sleep. (Random
# choices are made in this shell, never in a $(…) subshell, so that the seed fixes them all.)
pick_duration() { local ms=$(( $1 + RANDOM % ($2 - $1 + 1) )); duration=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000))); }
# The step the current coordinator last reported (its metrics file is per incarnation).
current_step() { tail -n 1 "$metrics" 2>/dev/null | sed -n 's/^{"step":\([0-9]*\).*/\1/p' | grep . || echo 0; }
alive() { kill -0 "$1" 2>/dev/null; }

echo "chaos drill: seed $seed, $steps steps, logs in $logdir"
log "reference: tributary train in one process"
"$bin" train "${options[@]}" --out "$logdir/reference.safetensors" > "$logdir/reference.out" 2> "$logdir/reference.log"

incarnation=0
start_coordinator() {
    incarnation=$((incarnation + 1))
    metrics=$logdir/metrics-$incarnation.jsonl
    local extra=()
    [ $incarnation -gt 1 ] && extra=(--resume)
    "$bin" coordinator "${options[@]}" --bind "$endpoint" --min-workers 2 --heartbeat-ms "$heartbeat_ms" \
        --checkpoint-dir "$logdir/checkpoints" --checkpoint-every "$checkpoint_every" \
        --out "$logdir/cluster.safetensors" --metrics "$metrics" "${extra[@]}" \
        > "$logdir/coordinator-$incarnation.out" 2> "$logdir/coordinator-$incarnation.log" &
    coordinator=$!
    pids+=("$coordinator")
    log "coordinator #$incarnation started (pid $coordinator)${extra[*]:+ with --resume}"
}
worker_count=0
declare -A worker_pid=()
start_worker() {
    worker_count=$((worker_count + 1))
    local name=w$worker_count
    "$bin" worker --connect "$endpoint" --name "$name" > /dev/null 2> "$logdir/$name.log" &
    worker_pid[$name]=$!
    pids+=($!)
    log "worker $name started (pid $!)"
}
# Sets `victim` to a live worker's name chosen with the seeded generator (empty if none).
pick_worker() {
    local names=() name
    for name in $(printf '%s\n' "${!worker_pid[@]}" | sort); do alive "${worker_pid[$name]}" && names+=("$name"); done
    victim=
    if [ ${#names[@]} -gt 0 ]; then victim=${names[$((RANDOM % ${#names[@]}))]}; fi
}

rm -rf "$logdir/checkpoints"
cluster_start_ms=$(( $(date +%s%N) / 1000000 ))
start_coordinator
for _ in 1 2 3; do start_worker; done

# The schedule: each fault fires once the run passes a seeded step (10%…70% of the run, the
# coordinator's 20%…70%), so that every fault and its recovery happen before the end.
kill_at=$(( steps / 10 + RANDOM % (steps * 6 / 10) ))
stop_at=$(( steps / 10 + RANDOM % (steps * 6 / 10) ))
coordinator_at=$(( steps / 5 + RANDOM % (steps * 5 / 10) ))
log "schedule: SIGKILL a worker after step $kill_at, SIGSTOP one after step $stop_at, SIGKILL the coordinator after step $coordinator_at"
killed=0 stopped=0 restarted=0 failed=0
while true; do
    if ! alive "$coordinator"; then
        status=0
        wait "$coordinator" || status=$?
        if [ $status -ne 0 ]; then log "coordinator #$incarnation failed (exit $status)"; failed=1; fi
        break
    fi
    if [ "$(elapsed)" -ge "$time_limit" ]; then log "time limit of $time_limit s reached"; failed=1; break; fi
    step=$(current_step)
    if [ $killed -eq 0 ] && [ "$step" -ge $kill_at ]; then
        pick_worker
        if [ -n "$victim" ]; then
            kill -KILL "${worker_pid[$victim]}" 2>/dev/null || true
            log "SIGKILLed worker $victim at step $step"
            pick_duration 100 1500
            sleep "$duration"
            start_worker
        fi
        killed=1
    fi
    if [ $stopped -eq 0 ] && [ "$step" -ge $stop_at ]; then
        pick_worker
        if [ -n "$victim" ]; then
            kill -STOP "${worker_pid[$victim]}" 2>/dev/null || true
            pick_duration 1000 2500
            log "SIGSTOPped worker $victim at step $step for $duration s"
            sleep "$duration"
            kill -CONT "${worker_pid[$victim]}" 2>/dev/null || true
            log "SIGCONTinued worker $victim at step $(current_step)"
        fi
        stopped=1
    fi
    if [ $restarted -eq 0 ] && [ "$step" -ge $coordinator_at ] && [ -f "$logdir/checkpoints/checkpoint.safetensors" ]; then
        kill -KILL "$coordinator" 2>/dev/null || true
        wait "$coordinator" 2>/dev/null || true
        log "SIGKILLed coordinator #$incarnation at step $step"
        pick_duration 200 1500
        sleep "$duration"
        start_coordinator
        restarted=1
    fi
    sleep 0.02
done

# The workers leave when the coordinator says goodbye.
[ $failed -eq 0 ] && for name in "${!worker_pid[@]}"; do
    for _ in $(seq 50); do alive "${worker_pid[$name]}" || break; sleep 0.1; done
    if alive "${worker_pid[$name]}"; then log "worker $name did not exit after the job"; failed=1; fi
done

grep -h "resuming from" "$logdir"/coordinator-*.log | sed 's/^/    /' || true
log "faults: worker killed $killed, worker stopped $stopped, coordinator restarted $restarted"
if [ $failed -eq 0 ] && [ $killed -eq 1 ] && [ $stopped -eq 1 ] && [ $restarted -eq 1 ] &&
    cmp "$logdir/reference.safetensors" "$logdir/cluster.safetensors"; then
    echo "PASS: the cluster run survived the faults and wrote the same bytes as one process (seed $seed, logs in $logdir)"
    exit 0
fi
echo "FAIL: see $logdir (replay with CHAOS_SEED=$seed)"
exit 1
