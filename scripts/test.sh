#!/usr/bin/env bash
# Installs the system packages if missing, builds (release, with testing enabled: the tests
# that train need optimised code), and runs every test, then the emulated-hosts drills (as root
# with ip netns, tc and nft; skipped with one line otherwise). Where PyTorch is installed, also runs
# the cross-check against the PyTorch reference model.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/setup.sh
ensure_system_packages
ensure_python_test_packages

echo "== build"
swift build -c release -Xswiftc -enable-testing --build-tests

echo "== cross-check against the PyTorch reference"
if python3 -c "import torch, numpy" >/dev/null 2>&1 && [ -d "${PEERS_DIR:-../shared/bench/peers}" ]; then
    python3 scripts/crosscheck_pytorch.py --tributary "$(swift build -c release -Xswiftc -enable-testing --show-bin-path)/tributary"
else
    echo "skipped: PyTorch or the reference model (../shared/bench/peers) is not available"
fi

echo "== tests"
swift test -c release -Xswiftc -enable-testing --skip-build

echo "== emulated hosts (network namespaces; root only)"
TRIBUTARY="$(swift build -c release -Xswiftc -enable-testing --show-bin-path)/tributary" bash scripts/test_emulate.sh
