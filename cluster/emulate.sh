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
#   EXCHANGE (star or sharded: the training coordinator's --exchange; with sharded each worker
#   binds its peer socket on its host's address; default: the coordinator's rule, star under CURVE),
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
exchange=${EXCHANGE:-}
case $exchange in
    ""|star|sharded) ;;
    *) echo "EXCHANGE must be star or sharded, found '$exchange'" >&2; exit 64 ;;
esac

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
    # A caller's EXIT trap (measure brings clusters up in a loop) comes back once this one is up.
    local caller_trap
    caller_trap=$(trap -p EXIT)
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
    if [ -n "$caller_trap" ]; then eval "$caller_trap"; else trap - EXIT; fi
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
    local extra=()
    [ "$1" = coordinator ] && [ -n "$exchange" ] && extra=(--exchange "$exchange")
    in_host 0 "$bin" "$@" "${extra[@]}" --key "$keys/coordinator.key" --authorized-keys "$keys/authorized_keys" \
        --heartbeat-ms "$heartbeat_ms" > "$rundir/$name.out" 2> "$rundir/$name.log" &
    coordinator=$!
    pids+=("$coordinator")
}
declare -A worker_pid=()
worker_runs=0
# start_worker HOST [ENDPOINT] — a worker on host HOST (of the training coordinator, unless
# ENDPOINT names another); with EXCHANGE=sharded its peer socket listens on its host's address.
start_worker() {
    local host=$1 endpoint=${2:-$(endpoint)}
    local extra=()
    [ -z "${2:-}" ] && [ "$exchange" = sharded ] && extra=(--peer-endpoint "tcp://$(address "$host"):0")
    worker_runs=$((worker_runs + 1))
    in_host "$host" "$bin" worker --connect "$endpoint" --name "host$host" "${extra[@]}" \
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

source cluster/lib/emulate_drills.sh
source cluster/lib/emulate_measure.sh

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
