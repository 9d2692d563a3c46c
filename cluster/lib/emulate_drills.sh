# Sourced by cluster/emulate.sh: the fault drills (`cluster/emulate.sh drill NAME…|all`).
# Uses its helpers (hosts, processes, nft rules) and globals (bin, hosts, suffix, rundir).
# shellcheck shell=bash disable=SC2154

# --- drills --------------------------------------------------------------------------------
# Fails the drill unless the coordinator is still running (the fault happened mid-run).
still_running() { alive "$coordinator" || { log "the run ended during the fault (raise STEPS)"; return 1; }; }
trigger_step() { echo $(( steps / 10 )); }
# How many times host $1 has joined the current coordinator.
joins() { tr '\r' '\n' < "$rundir/$coordinator_log.log" | { grep -o "(host$1) joined" || true; } | wc -l; }
# Waits until host $1 has joined more than $2 times, while the run goes on (a worker still cut
# off when the job ends never hears goodbye and keeps reconnecting).
wait_rejoin() {
    local deadline=$(( $(date +%s) + time_limit ))
    while [ "$(joins "$1")" -le "$2" ]; do
        alive "$coordinator" || { log "host $1 had not rejoined when the run ended (raise STEPS)"; return 1; }
        [ "$(date +%s)" -ge "$deadline" ] && { log "host $1 did not rejoin in $time_limit s"; return 1; }
        sleep 0.05
    done
    log "host $1 rejoined at step $(current_step)"
}

fault_partition() {
    wait_until_step "$(trigger_step)" || return 1
    local before
    before=$(joins 1)
    drop 1 both all
    log "partitioned host 1 ($(address 1)) at step $(current_step) for ${PARTITION_S:-2} s"
    sleep "${PARTITION_S:-2}"
    still_running || return 1
    heal 1
    log "healed host 1 at step $(current_step)"
    wait_rejoin 1 "$before"
}
fault_isolate() {
    local seconds=$1
    wait_until_step "$(trigger_step)" || return 1
    local before
    before=$(joins 1)
    drop 0 both all
    log "isolated the coordinator's host at step $(current_step) for $seconds s (heartbeat timeout $((8 * heartbeat_ms)) ms)"
    sleep "$seconds"
    still_running || return 1
    heal 0
    log "healed host 0 at step $(current_step)"
    [ "$2" = rejoin ] && wait_rejoin 1 "$before"
    return 0
}
fault_isolate_short() { fault_isolate 0.3 stay; }
fault_isolate_long() { fault_isolate 2.5 rejoin; }
fault_one_way() {
    wait_until_step "$(trigger_step)" || return 1
    local before
    before=$(joins 1)
    drop 1 out "$(address 0)"
    log "dropping host 1 → coordinator only, at step $(current_step), for 2 s"
    sleep 2
    still_running || return 1
    heal 1
    log "healed host 1 at step $(current_step)"
    wait_rejoin 1 "$before"
}
fault_straggler() {
    wait_until_step "$(trigger_step)" || return 1
    shape 1 10mbit
    log "throttled host 1's link to 10mbit at step $(current_step) for 3 s"
    sleep 3
    still_running || return 1
    if [ -n "$bandwidth" ]; then shape 1 "$bandwidth"; else unshape 1; fi
    log "host 1's link back to ${bandwidth:-unshaped} at step $(current_step)"
}
fault_kill_host() {
    wait_until_step "$(trigger_step)" || return 1
    local before
    before=$(joins 1)
    # shellcheck disable=SC2046
    kill -KILL $(ip netns pids "$(ns h1)")
    log "SIGKILLed every process of host 1 at step $(current_step)"
    sleep 0.5
    still_running || return 1
    start_worker 1
    log "new worker on host 1 at step $(current_step)"
    wait_rejoin 1 "$before"
}
fault_kill_coordinator() {
    wait_until_step "$(trigger_step)" || return 1
    while [ ! -f "$rundir/checkpoints/checkpoint.safetensors" ]; do still_running || return 1; sleep 0.02; done
    # shellcheck disable=SC2046
    kill -KILL $(ip netns pids "$(ns h0)")
    wait "$coordinator" 2>/dev/null || true
    log "SIGKILLed every process of host 0 (the coordinator) at step $(current_step)"
    sleep 0.5
    metrics=$rundir/metrics-2.jsonl
    start_coordinator coordinator-2 "${coordinator_args[@]}" --metrics "$metrics" --resume
    log "coordinator rerun with --resume"
}

# The coordinator's log lines that show a fault (the progress display's control codes removed).
events() {
    sed 's/\x1b\[2K//g' "$@" | tr '\r' '\n' | grep -E "lost|slower than its backups|resuming" | head -n 4 | sed 's/^/    /' || true
}

train_drill() {
    local name=$1
    rundir=$drills_dir/$name
    rm -rf "$rundir"
    mkdir -p "$rundir"
    metrics=$rundir/metrics.jsonl
    coordinator_args=(coordinator --bind "$(endpoint)" --min-workers $((hosts - 1)) "${train_options[@]}" --steps "$steps"
                      --out "$rundir/model.safetensors" --checkpoint-dir "$rundir/checkpoints" --checkpoint-every 50)
    start_coordinator coordinator "${coordinator_args[@]}" --metrics "$metrics"
    local i
    for ((i = 1; i < hosts; i++)); do start_worker "$i"; done
    "fault_${name//-/_}" || return 1
    wait_for_exit "$coordinator" "$time_limit" || { log "the coordinator failed; see $rundir"; return 1; }
    for ((i = 1; i < hosts; i++)); do wait_for_exit "${worker_pid[$i]}" 10 || { log "worker on host $i did not exit"; return 1; }; done
    events "$rundir"/coordinator*.log
    cmp "$reference" "$rundir/model.safetensors" || return 1
    log "$name: the model is the bytes of one process"
}

score_drill() {
    rundir=$drills_dir/score
    rm -rf "$rundir"
    mkdir -p "$rundir"
    local rows=${SCORE_ROWS:-1200000} i
    "$bin" dataset moons --rows "$rows" --seed 5 --dtype float32 --output "$rundir/input.npy" > /dev/null
    "$bin" score --model "$reference" --input "$rundir/input.npy" --chunk 4096 \
        --output "$rundir/reference.npy" > /dev/null 2> "$rundir/reference.log"
    # Slow links pace the job (its compute is tiny) so that the partition falls in its middle.
    for ((i = 0; i < hosts; i++)); do shape "$i" 10mbit; done
    start_coordinator score score --bind "$(endpoint 5571)" --model "$reference" \
        --input "$rundir/input.npy" --chunk 4096 --output "$rundir/cluster.npy"
    for ((i = 1; i < hosts; i++)); do start_worker "$i" "$(endpoint 5571)"; done
    local status=0
    {
        sleep 1.5
        still_running || return 1
        local before
        before=$(joins 1)
        drop 1 both all
        log "partitioned host 1 during scoring for 2 s"
        sleep 2
        still_running || return 1
        heal 1
        log "healed host 1"
        wait_rejoin 1 "$before"
        wait_for_exit "$coordinator" "$time_limit"
    } || status=$?
    for ((i = 0; i < hosts; i++)); do if [ -n "$bandwidth" ]; then shape "$i" "$bandwidth"; else unshape "$i"; fi; done
    [ $status -eq 0 ] || { log "the scoring coordinator failed; see $rundir"; return 1; }
    for ((i = 1; i < hosts; i++)); do wait_for_exit "${worker_pid[$i]}" 10 || { log "worker on host $i did not exit"; return 1; }; done
    cmp "$rundir/reference.npy" "$rundir/cluster.npy" || return 1
    events "$rundir/score.log"
    log "score: $rows rows, the output is the bytes of one process (every row once, in order)"
}

all_drills=(partition isolate-short isolate-long one-way straggler kill-host kill-coordinator score)
cmd_drill() {
    [ $# -ge 1 ] || usage
    local names=("$@") name
    [ "$1" = all ] && names=("${all_drills[@]}")
    for name in "${names[@]}"; do
        [[ " ${all_drills[*]} " == *" $name "* ]] || { echo "drill: unknown drill '$name' (one of: ${all_drills[*]}, all)" >&2; exit 64; }
    done
    check_machine
    find_binary
    owns_cluster=0
    # shellcheck disable=SC2317
    finish() {
        local status=$?
        stop_processes
        [ "$owns_cluster" -eq 1 ] && cmd_down > /dev/null
        exit "$status"
    }
    if [ ! -f "$state_file" ]; then
        owns_cluster=1
        cmd_up --hosts 4 --bandwidth 1gbit
    fi
    trap finish EXIT
    load_state
    [ "$hosts" -ge 3 ] || { echo "drill: needs 3 hosts or more (a coordinator and two workers), this cluster has $hosts" >&2; exit 64; }
    steps=${STEPS:-4000}
    time_limit=${TIME_LIMIT:-120}
    drills_dir=$(mkdir -p "$state_dir/drills-$suffix" && cd "$state_dir/drills-$suffix" && pwd)
    rundir=$drills_dir
    keys=$drills_dir/keys
    [ -d "$keys" ] || make_keys "$keys"
    reference=$drills_dir/reference-$steps.safetensors
    if [ ! -f "$reference" ]; then
        log "reference: tributary train in one process ($steps steps)"
        "$bin" train "${train_options[@]}" --steps "$steps" --out "$reference" > /dev/null 2> "$drills_dir/reference-$steps.log"
    fi
    local failed=()
    for name in "${names[@]}"; do
        log "drill $name"
        local ok=0
        if [ "$name" = score ]; then score_drill || ok=1; else train_drill "$name" || ok=1; fi
        stop_processes
        pids=()
        local i
        for ((i = 0; i < hosts; i++)); do heal "$i" 2>/dev/null || true; done
        [ $ok -eq 0 ] && log "PASS $name" || { log "FAIL $name (logs in $drills_dir/$name)"; failed+=("$name"); }
    done
    if [ ${#failed[@]} -gt 0 ]; then echo "FAIL: ${failed[*]}"; exit 1; fi
    echo "PASS: ${names[*]}"
}
