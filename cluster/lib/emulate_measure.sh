# Sourced by cluster/emulate.sh: `cluster/emulate.sh measure`, step times on shaped links
# beside `tributary simulate` (docs/operations.md, "The simulator, checked").
# shellcheck shell=bash disable=SC2154

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
    echo "exchange: ${exchange:-star (the default under CURVE)}"
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
            "$bin" simulate --config "$config" --workers 1,2,4 --bandwidth-gbit "$gbit" --link-efficiency 0.9564 \
                --exchange "${exchange:-star}" --json > "$out_dir/simulate-$config-$rate.jsonl"
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
