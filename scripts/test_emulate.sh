#!/usr/bin/env bash
# The emulated-hosts tests (cluster/emulate.sh, docs/operations.md "Emulated hosts"): a training
# run over CURVE across four network stacks, every fault drill, four of them again under the
# sharded exchange, the refusals of bad commands, and an interrupted drill — and after each, no
# namespace and no process of the run is left.
# Needs root, ip netns, tc and nft; otherwise prints one line saying why and exits 0 (skipped).
# Takes about three minutes on the 2-core test machine. Environment: TRIBUTARY (the binary).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh

if [ "$(id -u)" -ne 0 ]; then echo "skipped: emulated hosts need root (ip netns, tc, nft)"; exit 0; fi
ensure_emulation_packages
status=0
cluster/emulate.sh check > /tmp/tributary-emulate-check.$$ || status=$?
if [ $status -eq 77 ]; then echo "skipped: $(cat /tmp/tributary-emulate-check.$$)"; rm -f /tmp/tributary-emulate-check.$$; exit 0; fi
rm -f /tmp/tributary-emulate-check.$$
[ $status -eq 0 ] || exit $status

export EMULATE_DIR=${EMULATE_DIR:-out/test-emulate-$$}
emulate() { timeout --signal=TERM --kill-after=10 "$1" cluster/emulate.sh "${@:2}"; }
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# Namespaces of the emulator (trib-SUFFIX-…) that exist now.
namespaces() { ip netns list | awk '{print $1}' | grep '^trib-' | sort || true; }
# Processes whose command line names the test's state folder (every process a run starts does).
processes() { pgrep -f -- "$(cd "$EMULATE_DIR" 2>/dev/null && pwd || echo "$EMULATE_DIR")" || true; }
before=$(namespaces)
# Asserts that nothing the tests started is left: no new namespace, no process.
assert_clean() {
    local now left
    now=$(namespaces)
    left=$(comm -13 <(echo "$before") <(echo "$now") | grep . || true)
    [ -z "$left" ] || fail "$1: namespaces left behind: $(echo $left)"
    left=$(processes)
    [ -z "$left" ] || fail "$1: processes left behind: $(echo $left)"
}
cleanup() {
    local status=$?
    cluster/emulate.sh down > /dev/null 2>&1 || true
    assert_clean "at exit"
    [ $failures -eq 0 ] && [ $status -eq 0 ] && rm -rf "$EMULATE_DIR"
    [ $failures -eq 0 ] || status=1
    exit $status
}
trap cleanup EXIT

echo "-- refusals"
out=$(cluster/emulate.sh up --hosts 1 2>&1) && fail "up --hosts 1 was accepted"
[[ $out == *"--hosts must be 2…200"* ]] || fail "up --hosts 1: unexpected message: $out"
out=$(cluster/emulate.sh up --hosts 3 --bandwidth fast 2>&1) && fail "up --bandwidth fast was accepted"
[[ $out == *"--bandwidth must look like"* ]] || fail "up --bandwidth fast: unexpected message: $out"
out=$(cluster/emulate.sh run 2>&1) && fail "run with no cluster up was accepted"
[[ $out == *"no emulated cluster is up"* ]] || fail "run without up: unexpected message: $out"
out=$(cluster/emulate.sh drill nonsense 2>&1) && fail "drill nonsense was accepted"
[[ $out == *"unknown drill 'nonsense'"* ]] || fail "drill nonsense: unexpected message: $out"
assert_clean "refusals"

echo "-- up --hosts 4 --bandwidth 1gbit, run (CURVE, plain TCP refused), down, down"
emulate 60 up --hosts 4 --bandwidth 1gbit || fail "up"
out=$(cluster/emulate.sh up --hosts 2 2>&1) && fail "a second up was accepted"
[[ $out == *"already up"* ]] || fail "second up: unexpected message: $out"
emulate 300 run || fail "run"
emulate 60 down || fail "down"
[[ $(cluster/emulate.sh down) == "down: nothing is up" ]] || fail "a second down was not a no-op"
assert_clean "run"

echo "-- every drill (on a cluster of its own)"
emulate 900 drill all || fail "drills"
assert_clean "drills"

echo "-- drills under the sharded exchange (owners lost, the coordinator cut off: back to its copy, --resume)"
out=$(EXCHANGE=ring cluster/emulate.sh drill partition 2>&1) && fail "EXCHANGE=ring was accepted"
[[ $out == *"EXCHANGE must be star or sharded"* ]] || fail "EXCHANGE=ring: unexpected message: $out"
EXCHANGE=sharded emulate 600 drill partition isolate-long kill-host kill-coordinator || fail "sharded drills"
assert_clean "sharded drills"

echo "-- a drill interrupted by SIGTERM removes its hosts and processes"
cluster/emulate.sh drill partition > "$EMULATE_DIR/interrupted.log" 2>&1 &
drill=$!
for _ in $(seq 300); do pgrep -f -- "$(cd "$EMULATE_DIR" && pwd)/drills-.*/keys/coordinator" > /dev/null && break; sleep 0.1; done
kill -TERM $drill
wait $drill && fail "the interrupted drill exited 0"
assert_clean "interrupted drill"

if [ $failures -eq 0 ]; then echo "PASS: emulated hosts"; fi
