# Sourced by scripts/demo.sh and scripts/test.sh: makes sure the system libraries and the Swift
# toolchain are there, installing the Debian packages if they are missing.
ensure_system_packages() {
    local missing=()
    for package in libzmq3-dev libopenblas-dev pkg-config; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]} (Debian packages)"
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if ! command -v swift >/dev/null 2>&1; then
        if [ -x /opt/swift/usr/bin/swift ]; then
            export PATH="/opt/swift/usr/bin:$PATH"
        else
            echo "error: the Swift toolchain (6.0 or later) is not installed; see README.md" >&2
            exit 1
        fi
    fi
}

# The tools of the emulated hosts (cluster/emulate.sh): ip and tc (Debian iproute2), nft
# (nftables). Installed only when running as root, the only case where they can be used.
ensure_emulation_packages() {
    [ "$(id -u)" -eq 0 ] || return 0
    local missing=()
    command -v ip >/dev/null 2>&1 && command -v tc >/dev/null 2>&1 || missing+=(iproute2)
    command -v nft >/dev/null 2>&1 || missing+=(nftables)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]} (Debian packages, for the emulated hosts)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
            echo "could not install ${missing[*]}; the emulated-hosts tests will be skipped"
    fi
}

# Python packages some tests use as independent peers (pyzmq: a rogue ZeroMQ peer; safetensors:
# Hugging Face's reader of our model files; tensorboard and prometheus_client: the readers of
# --tensorboard and --prometheus-textfile). Installed from PyPI when missing; a failed install
# only makes those tests skip, each with its own line.
ensure_python_test_packages() {
    command -v python3 >/dev/null 2>&1 || return 0
    local missing=()
    python3 -c "import numpy" >/dev/null 2>&1 || missing+=(numpy)
    python3 -c "import zmq" >/dev/null 2>&1 || missing+=(pyzmq)
    python3 -c "import safetensors" >/dev/null 2>&1 || missing+=(safetensors)
    python3 -c "import tensorboard.backend.event_processing.event_accumulator" >/dev/null 2>&1 || missing+=(tensorboard)
    python3 -c "import prometheus_client.parser" >/dev/null 2>&1 || missing+=(prometheus_client)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]} (Python packages, for the interoperability tests)"
        python3 -m pip install -q --disable-pip-version-check "${missing[@]}" >/dev/null 2>&1 ||
            echo "could not install ${missing[*]}; the tests that need them will be skipped"
    fi
}
