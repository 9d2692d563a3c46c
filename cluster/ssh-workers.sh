#!/usr/bin/env bash
# Starts one `tributary worker` per host over ssh and stops them all when interrupted.
#
# Usage: cluster/ssh-workers.sh HOSTS_FILE ENDPOINT [worker options…]
#   HOSTS_FILE  one host per line (user@host allowed; blank lines and # comments ignored)
#   ENDPOINT    the coordinator's endpoint as the workers see it, e.g. tcp://10.0.0.5:5570
#   options     passed to every worker, e.g. --threads 4 --insecure
# Each host needs `tributary` on its PATH (or set TRIBUTARY=/path/to/tributary). Worker output
# goes to ${LOGDIR:-out/ssh-workers}/HOST.log on this machine. With PEER_PORT=N (for a
# coordinator with --exchange sharded) each worker listens for the others on port N of its
# host's first address (`hostname -I`).
set -euo pipefail

if [ $# -lt 2 ]; then
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 64
fi
hosts_file=$1
endpoint=$2
shift 2
bin=${TRIBUTARY:-tributary}
logdir=${LOGDIR:-out/ssh-workers}
mkdir -p "$logdir"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

while read -r host; do
    host=${host%%#*}
    host=$(echo "$host" | tr -d '[:space:]')
    [ -z "$host" ] && continue
    # -tt: the remote worker gets a terminal, so it dies with the ssh session when we stop.
    peer=""
    [ -n "${PEER_PORT:-}" ] && peer="--peer-endpoint tcp://\$(hostname -I | cut -d' ' -f1):$PEER_PORT"
    ssh -tt -o BatchMode=yes "$host" "exec $bin worker --connect '$endpoint' --name '$host' $peer $*" \
        > "$logdir/${host//[^A-Za-z0-9_.-]/_}.log" 2>&1 < /dev/null &
    pids+=($!)
    echo "started a worker on $host (log: $logdir)"
done < "$hosts_file"

echo "${#pids[@]} workers running; Ctrl-C stops them all"
wait
