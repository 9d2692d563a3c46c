#!/usr/bin/env bash
# Emulated hosts on one machine: N Linux network namespaces ("hosts"), each with its own network
# stack and one address in the benchmarking range 198.18.0.0/15, joined by a bridge that lives in
# a namespace of its own (nothing is added to the machine's own network namespace). Links can be
# shaped with tc tbf; faults are nft rules inside a host. Needs root, ip (iproute2), tc, nft.
# No latency or loss emulation: netem is not available in every kernel (not in the test machine's).
#
# Usage:
#   cluster/emulate.sh up --hosts N [--bandwidth RATE]   N hosts (2…200), every link shaped to RATE
#                                                        in each direction (tc syntax: 100mbit, 1gbit)
#   cluster/emulate.sh run [training options…]           coordinator on host 0, workers on hosts 1…N−1,
#                                                        TCP with CURVE; first shows that plain TCP is
#                                                        refused there; compares the model with one process
#   cluster/emulate.sh drill NAME…|all                   scripted faults during a run (see below)
#   cluster/emulate.sh measure [CONFIG…]                 step times at 100mbit/1gbit vs tributary simulate
#   cluster/emulate.sh status | down                     what is up; remove everything (idempotent)
#   cluster/emulate.sh check                             exit 0 if this machine can emulate hosts, else 77
# Drills (each ends with the model byte-identical to `tributary train` in one process):
#   partition          one worker's traffic dropped both ways for PARTITION_S seconds, then healed
#   isolate-short      the coordinator cut off for less than the heartbeat timeout
#   isolate-long       the coordinator cut off for longer than the heartbeat timeout
#   one-way            worker → coordinator dropped only, then healed
#   straggler          one worker's link throttled to 10mbit
#   kill-host          SIGKILL of every process of a worker host, then a new worker there
#   kill-coordinator   SIGKILL of the coordinator host after a checkpoint, rerun with --resume
#   score              a scoring job with one worker partitioned: output = one process's, every row once
# A drill with no cluster up brings up 4 hosts at 1gbit and removes them when it ends.
# Environment: EMULATE_DIR (state, keys and logs; default out/emulate), TRIBUTARY (the binary),
#   STEPS (drill training steps, default 4000), TIME_LIMIT (seconds per drill, default 120),
#   QUEUE (how long a shaped link may queue, tbf latency, default 20ms), MEASURE_RATES
#   (default "100mbit 1gbit"), MEASURE_STEPS (default 24 for tab16, 8 for wide64).
# Exit status: 0 done/PASS, 1 FAIL, 64 usage, 77 the machine cannot emulate hosts (not root,
# a tool missing) — one line says which.
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 64; }
[ $# -ge 1 ] || usage
command=$1
shift
cd "$(dirname "$0")/.."

# Any signal ends the script through its EXIT trap, which removes what it started.
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

state_dir=${EMULATE_DIR:-out/emulate}
state_file=$state_dir/cluster.env
heartbeat_ms=100          # a peer silent for 8 intervals (0.8 s) is dead
port=5570

# Exits 77 with one line when the machine cannot run the emulator.
check_machine() {
    if [ "$(id -u)" -ne 0 ]; then echo "emulated hosts need root (ip netns, tc, nft); skipped"; exit 77; fi
    local tool
    for tool in ip tc nft; do
        command -v "$tool" >/dev/null 2>&1 || { echo "emulated hosts need '$tool' (Debian: iproute2, nftables); skipped"; exit 77; }
    done
    if ! ip netns list >/dev/null 2>&1; then echo "emulated hosts need network namespaces (ip netns failed); skipped"; exit 77; fi
}

find_binary() {
    if [ -n "${TRIBUTARY:-}" ]; then bin=$(cd "$(dirname "$TRIBUTARY")" && pwd)/$(basename "$TRIBUTARY"); return; fi
    bin=$(pwd)/.build/release/tributary
    if [ ! -x "$bin" ]; then
        echo "building the release binary (swift build -c release)…"
        swift build -c release
    fi
}

ns() { echo "trib-$suffix-$1"; }                 # ns h0, ns br
address() { echo "198.18.0.$(($1 + 1))"; }      # host i's address
endpoint() { echo "tcp://$(address 0):${1:-$port}"; }
in_host() { local host=$1; shift; ip netns exec "$(ns "h$host")" "$@"; }
log() { printf '[emulate %6.1fs] %s\n' "$(( $(date +%s%N) / 1000000 - start_ms ))e-3" "$*"; }
start_ms=$(( $(date +%s%N) / 1000000 ))

# Namespaces of a run (by suffix), and removal of them with every process inside.
namespaces_of() { ip netns list 2>/dev/null | awk '{print $1}' | grep "^trib-$1-" || true; }
remove_run() {
    local run=$1 name pids
    for name in $(namespaces_of "$run"); do
        pids=$(ip netns pids "$name" 2>/dev/null || true)
        # shellcheck disable=SC2086
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
    done
    for name in $(namespaces_of "$run"); do
        for _ in $(seq 50); do [ -z "$(ip netns pids "$name" 2>/dev/null)" ] && break; sleep 0.1; done
        ip netns del "$name" 2>/dev/null || true
    done
}

load_state() {
    if [ ! -f "$state_file" ]; then echo "no emulated cluster is up; run: cluster/emulate.sh up --hosts N" >&2; exit 1; fi
    # shellcheck disable=SC1090
    source "$state_file"
    [ -n "$(namespaces_of "$suffix")" ] || { echo "$state_file names run $suffix, whose namespaces are gone; run: cluster/emulate.sh down" >&2; exit 1; }
}

# tbf on both ends of host i's link: the host's eth0 shapes what it sends, the bridge's v$i what it receives.
shape() {
    local host=$1 rate=$2 bits burst queue=${QUEUE:-20ms}
    bits=$(rate_bits "$rate")
    burst=$(( bits / 8 / 1000 ))                   # 1 ms of traffic, and at least a GSO segment
    [ $burst -lt 65536 ] && burst=65536
    tc -n "$(ns "h$host")" qdisc replace dev eth0 root tbf rate "$rate" burst "$burst" latency "$queue"
    tc -n "$(ns br)" qdisc replace dev "v$host" root tbf rate "$rate" burst "$burst" latency "$queue"
}
unshape() {
    tc -n "$(ns "h$1")" qdisc del dev eth0 root 2>/dev/null || true
    tc -n "$(ns br)" qdisc del dev "v$1" root 2>/dev/null || true
}
rate_bits() {
    local value=${1%[kmg]bit} unit=${1##*[0-9.]}
    case $unit in kbit) echo $(( value * 1000 )) ;; mbit) echo $(( value * 1000000 )) ;; gbit) echo $(( value * 1000000000 )) ;; esac
}

cmd_up() {
    local hosts= bandwidth=
    while [ $# -gt 0 ]; do
        case $1 in
            --hosts) hosts=${2:-}; shift 2 || usage ;;
            --bandwidth) bandwidth=${2:-}; shift 2 || usage ;;
            *) echo "up: unknown option $1" >&2; exit 64 ;;
        esac
    done
    if ! [[ $hosts =~ ^[0-9]+$ ]] || [ "$hosts" -lt 2 ] || [ "$hosts" -gt 200 ]; then
        echo "up: --hosts must be 2…200 (a coordinator host and at least one worker host), found '${hosts}'" >&2; exit 64
    fi
    if [ -n "$bandwidth" ] && ! [[ $bandwidth =~ ^[1-9][0-9]*(kbit|mbit|gbit)$ ]]; then
        echo "up: --bandwidth must look like 100mbit or 1gbit, found '$bandwidth'" >&2; exit 64
    fi
    check_machine
    if [ -f "$state_file" ]; then
        # shellcheck disable=SC1090
        (source "$state_file"; [ -z "$(namespaces_of "$suffix")" ]) ||
            { echo "up: a cluster is already up ($state_file); run: cluster/emulate.sh down" >&2; exit 1; }
    fi
    mkdir -p "$state_dir"
    suffix=$(printf '%04x%04x' $(( $$ & 0xffff )) $RANDOM)
    trap 'status=$?; [ $status -ne 0 ] && remove_run "$suffix"; exit $status' EXIT
    ip netns add "$(ns br)"
    ip -n "$(ns br)" link set lo up
    ip -n "$(ns br)" link add br0 type bridge
    ip -n "$(ns br)" link set br0 up
    local i
    for ((i = 0; i < hosts; i++)); do
        ip netns add "$(ns "h$i")"
        ip -n "$(ns br)" link add "v$i" type veth peer name eth0 netns "$(ns "h$i")"
        ip -n "$(ns br)" link set "v$i" master br0 up
        ip -n "$(ns "h$i")" link set lo up
        ip -n "$(ns "h$i")" addr add "$(address "$i")/24" dev eth0
        ip -n "$(ns "h$i")" link set eth0 up
        [ -n "$bandwidth" ] && shape "$i" "$bandwidth"
    done
    printf 'suffix=%s\nhosts=%s\nbandwidth=%s\n' "$suffix" "$hosts" "$bandwidth" > "$state_file"
    trap - EXIT
    echo "up: $hosts hosts (namespaces trib-$suffix-h0…h$((hosts - 1)), bridge in trib-$suffix-br), addresses $(address 0)…$(address $((hosts - 1)))/24, links ${bandwidth:-unshaped}"
}

cmd_down() {
    if [ ! -f "$state_file" ]; then echo "down: nothing is up"; return 0; fi
    # shellcheck disable=SC1090
    source "$state_file"
    check_machine
    remove_run "$suffix"
    rm -f "$state_file"
    echo "down: removed run $suffix (namespaces and every process in them)"
}

cmd_status() {
    load_state
    echo "run $suffix: $hosts hosts, links ${bandwidth:-unshaped}"
    local i
    for ((i = 0; i < hosts; i++)); do
        echo "  host $i  $(address "$i")  $(ns "h$i")  processes: $(ip netns pids "$(ns "h$i")" | wc -l)"
    done
}

# --- processes on hosts --------------------------------------------------------------------
pids=()
stop_processes() {
    local pid
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    local i
    for ((i = 0; i < ${hosts:-0}; i++)); do
        local left
        left=$(ip netns pids "$(ns "h$i")" 2>/dev/null || true)
        # shellcheck disable=SC2086
        [ -n "$left" ] && kill -KILL $left 2>/dev/null || true
    done
}

# Keys for one job: the coordinator's pair, one pair per worker host, the allow-list.
make_keys() {
    local dir=$1 i
    mkdir -p "$dir"
    "$bin" keygen --out "$dir" --name coordinator > /dev/null
    for ((i = 1; i < hosts; i++)); do
        "$bin" keygen --out "$dir" --name "host$i" > /dev/null
        cat "$dir/host$i.pub" >> "$dir/authorized_keys"
    done
}

# start_coordinator LOGNAME ARGS… — `tributary ARGS` on host 0 with CURVE; sets coordinator.
start_coordinator() {
    local name=$1; shift
    coordinator_log=$name
    in_host 0 "$bin" "$@" --key "$keys/coordinator.key" --authorized-keys "$keys/authorized_keys" \
        --heartbeat-ms "$heartbeat_ms" > "$rundir/$name.out" 2> "$rundir/$name.log" &
    coordinator=$!
    pids+=("$coordinator")
}
declare -A worker_pid=()
worker_runs=0
start_worker() {
    local host=$1 endpoint=${2:-$(endpoint)}
    worker_runs=$((worker_runs + 1))
    in_host "$host" "$bin" worker --connect "$endpoint" --name "host$host" \
        --key "$keys/host$host.key" --server-key "$keys/coordinator.pub" \
        > /dev/null 2> "$rundir/worker-host$host-$worker_runs.log" &
    worker_pid[$host]=$!
    pids+=($!)
}
alive() { kill -0 "$1" 2>/dev/null; }
current_step() { tail -n 1 "$metrics" 2>/dev/null | sed -n 's/^{"step":\([0-9]*\).*/\1/p' | grep . || echo 0; }

# wait_for_exit PID SECONDS — 0 if it exited (with status 0) in time.
wait_for_exit() {
    local pid=$1 limit=$2 deadline
    deadline=$(( $(date +%s) + limit ))
    while alive "$pid"; do
        [ "$(date +%s)" -ge "$deadline" ] && { log "pid $pid still running after $limit s"; return 1; }
        sleep 0.05
    done
    wait "$pid"
}
# wait_until_step N — waits for the coordinator's metrics to pass step N (fails if it ends first).
wait_until_step() {
    local deadline=$(( $(date +%s) + time_limit ))
    while [ "$(current_step)" -lt "$1" ]; do
        alive "$coordinator" || { log "the coordinator ended before step $1"; return 1; }
        [ "$(date +%s)" -ge "$deadline" ] && { log "step $1 not reached in $time_limit s"; return 1; }
        sleep 0.02
    done
}

# nft rules inside one host: drop [both|out|in] [all|PEER-ADDRESS]; heal removes them.
drop() {
    local host=$1 direction=$2 peer=$3 match_in match_out
    if [ "$peer" = all ]; then match_in='iifname != "lo"'; match_out='oifname != "lo"'; else match_in="ip saddr $peer"; match_out="ip daddr $peer"; fi
    local rules="table inet tributary_drill {"
    [ "$direction" != out ] && rules+=" chain input { type filter hook input priority 0; policy accept; $match_in drop; };"
    [ "$direction" != in ] && rules+=" chain output { type filter hook output priority 0; policy accept; $match_out drop; };"
    rules+=" }"
    in_host "$host" nft -f - <<< "$rules"
}
heal() { in_host "$1" nft delete table inet tributary_drill; }

# --- run: one training job over CURVE, plain TCP refused first -----------------------------
train_options=(--data moons --rows 4096 --batch 256 --micro-batch 32 --couplings 4 --hidden 32 --seed 7)

cmd_run() {
    load_state
    check_machine
    find_binary
    rundir=$state_dir/run-$suffix-$(date +%H%M%S)
    mkdir -p "$rundir"
    rundir=$(cd "$rundir" && pwd)
    keys=$rundir/keys
    make_keys "$keys"
    local options=("$@")
    [ ${#options[@]} -eq 0 ] && options=("${train_options[@]}" --steps 1000)
    trap 'status=$?; stop_processes; exit $status' EXIT
    time_limit=${TIME_LIMIT:-300}

    # Plain TCP on a non-loopback address: both sides refuse before any traffic.
    local status=0
    in_host 0 timeout 30 "$bin" coordinator --bind "$(endpoint)" --min-workers 1 "${options[@]}" \
        --out "$rundir/plain.safetensors" > /dev/null 2> "$rundir/plain-coordinator.log" || status=$?
    if [ $status -eq 0 ] || [ $status -eq 124 ] || ! grep -q -- --insecure "$rundir/plain-coordinator.log"; then
        log "FAIL: a plain-TCP coordinator on $(endpoint) was not refused (exit $status)"; exit 1
    fi
    log "plain TCP refused (coordinator, exit $status): $(grep -m1 -- --insecure "$rundir/plain-coordinator.log")"
    status=0
    in_host 1 timeout 30 "$bin" worker --connect "$(endpoint)" > /dev/null 2> "$rundir/plain-worker.log" || status=$?
    if [ $status -eq 0 ] || [ $status -eq 124 ] || ! grep -q -- --insecure "$rundir/plain-worker.log"; then
        log "FAIL: a plain-TCP worker to $(endpoint) was not refused (exit $status)"; exit 1
    fi
    log "plain TCP refused (worker, exit $status): $(grep -m1 -- --insecure "$rundir/plain-worker.log")"

    log "reference: tributary train in one process"
    "$bin" train "${options[@]}" --out "$rundir/reference.safetensors" > /dev/null 2> "$rundir/reference.log"
    metrics=$rundir/metrics.jsonl
    start_coordinator coordinator coordinator --bind "$(endpoint)" --min-workers $((hosts - 1)) "${options[@]}" \
        --out "$rundir/cluster.safetensors" --metrics "$metrics"
    local i
    for ((i = 1; i < hosts; i++)); do start_worker "$i"; done
    log "coordinator on host 0 ($(endpoint)), workers on hosts 1…$((hosts - 1)), CURVE on; logs in $rundir"
    if ! wait_for_exit "$coordinator" "$time_limit"; then log "FAIL: the coordinator failed; see $rundir/coordinator.log"; exit 1; fi
    for ((i = 1; i < hosts; i++)); do wait_for_exit "${worker_pid[$i]}" 10 || { log "FAIL: worker on host $i did not exit"; exit 1; }; done
    if cmp "$rundir/reference.safetensors" "$rundir/cluster.safetensors"; then
        log "PASS: trained over CURVE on $((hosts - 1)) worker hosts; the model is the bytes of one process"
    else
        log "FAIL: the cluster's model differs from one process's"; exit 1
    fi
}

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

# --- measure: step times on shaped links beside `tributary simulate` ------------------------
# Median seconds between consecutive steps of a metrics file, from its third step on (the first
# steps also carry the rows).
median_step() {
    python3 - "$1" <<'PY'
import json, sys
t = [json.loads(l)["elapsed_s"] for l in open(sys.argv[1]) if l.startswith("{")]
d = sorted(b - a for a, b in zip(t[2:], t[3:]))
print(d[len(d) // 2] if d else "nan")
PY
}

cmd_measure() {
    local configs=("$@")
    [ ${#configs[@]} -eq 0 ] && configs=(tab16 wide64)
    check_machine
    find_binary
    [ ! -f "$state_file" ] || { echo "measure: a cluster is up ($state_file); run: cluster/emulate.sh down" >&2; exit 1; }
    local out_dir
    out_dir=$state_dir/measure-$(date +%Y%m%d-%H%M%S)
    mkdir -p "$out_dir"
    out_dir=$(cd "$out_dir" && pwd)
    trap 'status=$?; stop_processes 2>/dev/null; [ -f "$state_file" ] && cmd_down > /dev/null; exit $status' EXIT
    heartbeat_ms=1000    # a 10 MB message takes 0.8 s at 100 Mbit/s: 8 s before a peer counts as dead
    time_limit=${TIME_LIMIT:-600}
    echo "load before: $(uptime | sed 's/.*load average/load average/')"
    echo "config  link     workers  measured ms  projected ms  projected/measured"
    local config rate workers
    for config in "${configs[@]}"; do
        local shape steps
        case $config in
            tab16) shape=(--data mixture:16 --couplings 10 --hidden 128 --batch 1024); steps=${MEASURE_STEPS:-24} ;;
            wide64) shape=(--data mixture:64 --couplings 8 --hidden 512 --batch 1024); steps=${MEASURE_STEPS:-8} ;;
            *) echo "measure: config must be tab16 or wide64, found '$config'" >&2; exit 64 ;;
        esac
        for rate in ${MEASURE_RATES:-100mbit 1gbit}; do
            local gbit
            gbit=$(python3 -c "print($(rate_bits "$rate") / 1e9)")
            # Costs measured now, on this machine, by the simulator itself.
            "$bin" simulate --config "$config" --workers 1,2,4 --bandwidth-gbit "$gbit" --link-efficiency 0.9564 --json > "$out_dir/simulate-$config-$rate.jsonl"
            for workers in 1 2 4; do
                cmd_up --hosts $((workers + 1)) --bandwidth "$rate" > /dev/null
                load_state
                rundir=$out_dir/$config-$rate-$workers
                mkdir -p "$rundir"
                keys=$rundir/keys
                make_keys "$keys"
                metrics=$rundir/metrics.jsonl
                pids=()
                start_coordinator coordinator coordinator --bind "$(endpoint)" --min-workers "$workers" "${shape[@]}" \
                    --micro-batch 256 --rows 8192 --steps "$steps" --eval-every 1000 --seed 1 \
                    --out "$rundir/model.safetensors" --metrics "$metrics"
                local i
                for ((i = 1; i <= workers; i++)); do start_worker "$i"; done
                wait_for_exit "$coordinator" "$time_limit" || { echo "measure: $config $rate $workers workers failed; see $rundir" >&2; exit 1; }
                stop_processes
                cmd_down > /dev/null
                local measured projected
                measured=$(median_step "$metrics")
                projected=$(python3 -c "import json,sys; print([json.loads(l)['step_seconds'] for l in open(sys.argv[1]) if json.loads(l)['workers'] == $workers][0])" "$out_dir/simulate-$config-$rate.jsonl")
                python3 -c "import sys; m, p = float(sys.argv[1]), float(sys.argv[2]); print(f'{sys.argv[3]:7} {sys.argv[4]:8} {sys.argv[5]:>7}  {m*1000:11.1f}  {p*1000:12.1f}  {p/m:17.2f}')" \
                    "$measured" "$projected" "$config" "$rate" "$workers" | tee -a "$out_dir/table.txt"
            done
        done
    done
    echo "load after: $(uptime | sed 's/.*load average/load average/')"
    echo "(details in $out_dir)"
}

case $command in
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    run) cmd_run "$@" ;;
    drill) cmd_drill "$@" ;;
    measure) cmd_measure "$@" ;;
    check) check_machine; echo "this machine can emulate hosts (root, ip netns, tc, nft)" ;;
    -h|--help|help) usage ;;
    *) echo "unknown command '$command'" >&2; usage ;;
esac
