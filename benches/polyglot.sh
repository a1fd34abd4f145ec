#!/usr/bin/env bash
# The same trivial job (one log line, the input returned) on a fresh sandbox per
# execution, in a Rust guest, a TypeScript guest (componentize-js), a Python guest
# (componentize-py) and an inline code step (the code engine), beside Node's `vm` and
# isolated-vm, each contender in its own process, in one run; prints the suite's table
# (median, p99, executions per second, peak RSS, ratios to the Rust guest) and the
# per-execution targets of issue 14. All limits are on (Sluice's default Limits).
#
#   benches/polyglot.sh [--quick]
#
# Installs what it needs the first time: isolated-vm (npm ci), the JS SDK (npm ci), a
# venv with componentize-py. Output also goes to target/bench-polyglot/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
benches="$root/benches"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/bench-polyglot"
mkdir -p "$out"
results="$out/results.jsonl"
log="$out/run.log"
: > "$results"
: > "$log"

if [[ "${1:-}" == "--quick" ]]; then
    protocol=(--warmup 50 --samples 500 --seconds 1 --threads 1)
else
    protocol=(--warmup 300 --samples 3000 --seconds 3 --threads 1,2)
fi

step() { echo "==> $*" >&2; }
fail() {
    echo "polyglot.sh: $*" >&2
    tail -n 30 "$log" >&2 || true
    exit 1
}

node_dir="$benches/contenders/node"
if ! (cd "$node_dir" && node -e 'require("isolated-vm")' > /dev/null 2>&1); then
    step "installing isolated-vm (npm ci; it compiles a native addon)"
    (cd "$node_dir" && npm ci --no-audit --no-fund) >> "$log" 2>&1 || fail "npm ci failed"
fi

step "building the contenders benchmark (release; the first time takes minutes)"
(cd "$root" && cargo bench -p sluice-benches --bench contenders --no-run --message-format=json-render-diagnostics) \
    > "$out/build.json" 2>> "$log" || fail "cargo bench --no-run failed"
contenders_bin="$(grep '"kind":\["bench"\]' "$out/build.json" | grep '"name":"contenders"' \
    | grep -o '"executable":"[^"]*"' | tail -n 1 | sed 's/^"executable":"//; s/"$//')"
[[ -x $contenders_bin ]] || fail "the contenders executable is missing"
contenders() { (cd "$benches" && "$contenders_bin" --bench "$@"); }

started="$(date -u '+%Y-%m-%d %H:%M UTC')"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
for contender in sluice sluice-ts sluice-py sluice-code; do
    step "contender: $contender (its guest is built the first time)"
    contenders contender "$contender" "${protocol[@]}" >> "$results" 2>> "$log" \
        || fail "$contender failed"
done
for contender in vm isolated-vm; do
    step "contender: node $contender"
    node "$node_dir/bench.js" "$contender" "${protocol[@]}" >> "$results" 2>> "$log" \
        || fail "$contender failed"
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

{
    echo "The same job in Rust, TypeScript, Python and an inline code step, beside Node"
    echo "command:   benches/polyglot.sh ${1:-}"
    echo "date:      $started"
    echo "machine:   $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) CPUs"
    echo "load:      $load_before before, $load_after after (1, 5, 15 min)"
    echo "protocol:  ${protocol[*]}"
    echo
    contenders report "$results"
} | tee "$out/summary.txt"
