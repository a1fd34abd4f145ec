#!/usr/bin/env bash
# Cranelift (opt levels none and speed) against Winch on the compile bomb's core module
# at growing shapes, each compile in its own process under a CPU and address-space
# limit, with and without epoch interruption. Prints one line per compile.
#
#   benches/contenders/winch/run.sh [--quick]
#   benches/contenders/winch/run.sh --component FILE.wasm [RUNS]   # a real component:
#       compile time, artifact size, instantiate + manifest() per compiler
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}/winch-probe"
cargo build --release --quiet --manifest-path "$here/Cargo.toml"
probe="$CARGO_TARGET_DIR/release/sluice-winch-probe"
if [[ "${1:-}" == "--component" ]]; then
    file="${2:?usage: run.sh --component FILE.wasm [RUNS]}"
    runs="${3:-200}"
    for compiler in cranelift-speed winch; do
        "$probe" component "$compiler" "$file" "$runs"
    done
    exit 0
fi
shapes=(1000x6000 2000x12000 4000x24000 10000x60000)
[[ "${1:-}" == "--quick" ]] && shapes=(100x300 1000x6000)
cpu_limit=120
# 8 GiB of address space: past it the compile fails instead of taking the machine.
as_limit_kib=$((8 << 20))
for shape in "${shapes[@]}"; do
    for compiler in cranelift-none cranelift-speed winch; do
        for epochs in 1 0; do
            if ! ( ulimit -t "$cpu_limit" -v "$as_limit_kib"; "$probe" "$compiler" "$shape" "$epochs" ) 2>/tmp/winch-probe.err; then
                printf '%-16s epochs=%s %12s  stopped: %s (limits: %s CPU-s, 8 GiB)\n' \
                    "$compiler" "$epochs" "$shape" "$(tail -c 200 /tmp/winch-probe.err | tr '\n' ' ')" "$cpu_limit"
            fi
        done
    done
done
