#!/usr/bin/env bash
# Sluice's performance claims, measured side by side on this machine in one run.
#
#   benches/run.sh            # the full run (about 10 minutes once everything is built)
#   benches/run.sh --quick    # a short run: the same steps, fewer iterations
#
# Installs what it needs (bubblewrap and wrk with apt-get, the wasm32-wasip2 and
# wasm32-unknown-unknown Rust targets with rustup, isolated-vm with npm ci), builds
# every contender, runs each contender in its own process with the same iteration
# counts, and prints one table with ratios to Sluice, then Sluice's truly cold paths,
# the memory of 1,000 executions in flight, the interleaved Sluice/floor comparison of
# the cold_start benchmark, the flow engine's overhead, and the end-to-end webhook
# benchmark (sluice serve against a bare hyper server, loaded by wrk).
# benches/README.md says what each figure is; benches/RESULTS.md keeps the published run.
#
# Output also goes to target/bench-contenders/: results.jsonl (the contenders' JSON
# lines), summary.txt (what is printed), run.log (build and progress output).

set -euo pipefail

usage() {
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
}

quick=0
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument '$arg' (try --help)" >&2; exit 64 ;;
    esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
benches="$root/benches"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/bench-contenders"
mkdir -p "$out"
results="$out/results.jsonl"
summary="$out/summary.txt"
log="$out/run.log"
: > "$results"
: > "$log"

if [[ $quick == 1 ]]; then
    mode="quick"
    protocol=(--warmup 50 --samples 500 --seconds 1 --threads 1,2)
    cold=(--upload-samples 2 --restart-samples 5)
    bench_args=(--quick) # cold_start, flow_overhead and webhooks
    quiet_wait=20
else
    mode="full"
    protocol=(--warmup 500 --samples 5000 --seconds 5 --threads 1,2)
    cold=(--upload-samples 5 --restart-samples 20)
    bench_args=()
    quiet_wait=300
fi

step() { echo "==> $*" >&2; }

fail() {
    echo "run.sh: $*" >&2
    echo "--- last lines of $log:" >&2
    tail -n 30 "$log" >&2 || true
    exit 1
}

need() {
    command -v "$1" > /dev/null 2>&1 || fail "$1 is required ($2)"
}

# --- Prerequisites -------------------------------------------------------------------

need cargo "the Rust toolchain, through rustup"
need rustup "installs the wasm targets"
need node "Node.js 20 runs the vm and isolated-vm contenders"
need npm "installs isolated-vm"
need cc "builds the job of the process-per-execution contender"

if ! command -v bwrap > /dev/null 2>&1; then
    step "installing bubblewrap (apt-get)"
    if [[ $(id -u) != 0 ]]; then
        fail "bubblewrap is missing: install it with 'sudo apt-get install -y bubblewrap' and rerun"
    fi
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap; } >> "$log" 2>&1 \
        || fail "apt-get install bubblewrap failed"
fi

if ! command -v wrk > /dev/null 2>&1; then
    step "installing wrk (apt-get), the load generator of the end-to-end benchmark"
    if [[ $(id -u) != 0 ]]; then
        fail "wrk is missing: install it with 'sudo apt-get install -y wrk' and rerun"
    fi
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; } >> "$log" 2>&1 \
        || fail "apt-get install wrk failed"
fi

for wasm_target in wasm32-wasip2 wasm32-unknown-unknown; do
    if ! rustup target list --installed | grep -qx "$wasm_target"; then
        step "installing the $wasm_target Rust target (rustup)"
        rustup target add "$wasm_target" >> "$log" 2>&1 || fail "rustup target add $wasm_target failed"
    fi
done

node_dir="$benches/contenders/node"
isolated_vm_ready() {
    (cd "$node_dir" && node -e '
        const installed = require("isolated-vm/package.json").version;
        const locked = require("./package-lock.json").packages["node_modules/isolated-vm"].version;
        require("isolated-vm");
        process.exit(installed === locked ? 0 : 1);' > /dev/null 2>&1)
}
if ! isolated_vm_ready; then
    step "installing isolated-vm (npm ci; it compiles a native addon, a few minutes)"
    (cd "$node_dir" && npm ci --no-audit --no-fund) >> "$log" 2>&1 || fail "npm ci failed"
    if ! isolated_vm_ready; then
        (cd "$node_dir" && npm rebuild isolated-vm) >> "$log" 2>&1 || true
        isolated_vm_ready || fail "isolated-vm does not load after npm ci"
    fi
fi

# --- Builds --------------------------------------------------------------------------

# Prints the executable of bench target $1 from cargo's JSON messages on stdin.
bench_executable() {
    grep '"kind":\["bench"\]' | grep "\"name\":\"$1\"" | grep -o '"executable":"[^"]*"' \
        | tail -n 1 | sed 's/^"executable":"//; s/"$//'
}

# Every benchmark is built once, here, and its executable run directly below: a
# measurement never waits for a compilation, and edits made to the tree while the suite
# runs do not change what it measures.
step "building the Sluice benchmarks and the server (cargo bench --no-run; the first time takes minutes)"
(cd "$root" && cargo bench -p sluice-benches --no-run --message-format=json-render-diagnostics) \
    > "$out/build-benches.json" 2>> "$log" || fail "cargo bench -p sluice-benches --no-run failed"
(cd "$root" && cargo bench -p sluice --bench webhooks --no-run --message-format=json-render-diagnostics) \
    > "$out/build-webhooks.json" 2>> "$log" || fail "cargo bench -p sluice --bench webhooks --no-run failed"
(cd "$root" && cargo build --release -p sluice-benches --bin sluice-hyper-floor) >> "$log" 2>&1 \
    || fail "building sluice-hyper-floor failed"
contenders_bin="$(bench_executable contenders < "$out/build-benches.json")"
cold_start_bin="$(bench_executable cold_start < "$out/build-benches.json")"
flow_overhead_bin="$(bench_executable flow_overhead < "$out/build-benches.json")"
webhooks_bin="$(bench_executable webhooks < "$out/build-webhooks.json")"
floor_bin="$target/release/sluice-hyper-floor"
for built in "$contenders_bin" "$cold_start_bin" "$flow_overhead_bin" "$webhooks_bin" "$floor_bin"; do
    [[ -n $built && -x $built ]] || fail "a benchmark executable is missing after the build ('$built')"
done

extism_dir="$benches/contenders/extism"
step "building the Extism contender and its plug-in (own workspace; the first time takes minutes)"
cargo build --release --locked --manifest-path "$extism_dir/Cargo.toml" -p extism-contender >> "$log" 2>&1 \
    || fail "building the Extism contender failed"
cargo build --profile plugin --locked --manifest-path "$extism_dir/Cargo.toml" -p extism-echo-plugin \
    --target wasm32-unknown-unknown >> "$log" 2>&1 || fail "building the Extism plug-in failed"
extism_target="${CARGO_TARGET_DIR:-$extism_dir/target}"
extism_bin="$extism_target/release/extism-contender"
extism_plugin="$extism_target/wasm32-unknown-unknown/plugin/extism_echo_plugin.wasm"

step "building the job of the process-per-execution contender (cc -O2 -static)"
job="$out/job"
cc -O2 -static -o "$job" "$benches/contenders/process/job.c" >> "$log" 2>&1 || fail "cc failed"

# --- Runs ----------------------------------------------------------------------------

contenders() {
    (cd "$benches" && "$contenders_bin" --bench "$@")
}

# CPU time the whole machine spent busy, in seconds (from /proc/stat).
machine_busy() {
    awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat
}

# Sets `ours` to the CPU time of this script's finished children (everything the
# measurements ran), in seconds. Call it directly, never in $(...): a subshell would
# not see this shell's children.
our_cpu() {
    times > "$out/.times"
    ours="$(awk 'NR == 2 { total = 0; for (i = 1; i <= 2; i++) { split($i, part, "m"); sub("s", "", part[2]); total += part[1] * 60 + part[2] } printf "%.2f", total }' "$out/.times")"
}

# What else ran on the machine during each measurement: CPU the machine spent busy
# minus CPU the measurement itself used, over its wall time, in cores.
noise=()

# On a shared machine, waits (at most $quiet_wait seconds) until other processes use
# less than a quarter of a core, sampled over 2 s, so they do not skew a measurement.
wait_quiet() {
    local waited=0 before after
    while ((waited < quiet_wait)); do
        before="$(machine_busy)"
        sleep 2
        after="$(machine_busy)"
        if awk -v b0="$before" -v b1="$after" 'BEGIN { exit !((b1 - b0) / 2 < 0.25) }'; then
            return
        fi
        if ((waited == 0)); then
            echo "    (waiting for other processes to quiet down, at most ${quiet_wait} s)" >&2
        fi
        waited=$((waited + 2))
    done
    echo "    (still busy after ${quiet_wait} s; measuring anyway: see 'others' in the summary)" >&2
}

# Runs one measurement in its own process; its JSON lines go to results.jsonl.
measure() {
    local name="$1" key="$2"
    shift 2
    step "$name"
    wait_quiet
    local busy_before ours_before started
    busy_before="$(machine_busy)"
    our_cpu
    ours_before="$ours"
    started="$(date +%s.%N)"
    "$@" >> "$results" 2>> "$log" || fail "$name failed"
    local finished busy_after
    finished="$(date +%s.%N)"
    busy_after="$(machine_busy)"
    our_cpu
    noise+=("$key=$(awk -v b0="$busy_before" -v b1="$busy_after" -v o0="$ours_before" -v o1="$ours" \
        -v t0="$started" -v t1="$finished" 'BEGIN { other = (b1 - b0) - (o1 - o0); if (other < 0) other = 0; printf "%.2f", other / (t1 - t0) }')")
}

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
started="$(date -u '+%Y-%m-%d %H:%M UTC')"

measure "contender: sluice" sluice contenders contender sluice "${protocol[@]}"
measure "contender: raw wasmtime floor" floor contenders contender floor "${protocol[@]}"
measure "contender: extism" extism "$extism_bin" "$extism_plugin" "${protocol[@]}"
measure "contender: node vm" vm node "$node_dir/bench.js" vm "${protocol[@]}"
measure "contender: isolated-vm" isolated-vm node "$node_dir/bench.js" isolated-vm "${protocol[@]}"
measure "contender: bubblewrap" bwrap contenders contender bwrap --program "$job" "${protocol[@]}"
measure "cold paths (the large component is built the first time: minutes)" cold contenders cold "${cold[@]}"
measure "1,000 executions in flight" inflight contenders inflight --executions 1000

# Runs a bench executable from directory $2 with `--bench` and the rest of the
# arguments, its output to file $1.
bench_to() {
    local file="$1" dir="$2" bin="$3"
    shift 3
    (cd "$dir" && "$bin" --bench "$@" > "$file")
}
measure "Sluice against the floor, interleaved in one process (cargo bench --bench cold_start)" cold_start \
    bench_to "$out/cold_start.txt" "$benches" "$cold_start_bin" "${bench_args[@]}"
measure "flow overhead (cargo bench --bench flow_overhead)" flow_overhead \
    bench_to "$out/flow_overhead.txt" "$benches" "$flow_overhead_bin" "${bench_args[@]}"
measure "end to end: webhooks through sluice serve against bare hyper, loaded by wrk (cargo bench -p sluice --bench webhooks)" \
    webhooks bench_to "$out/webhooks.txt" "$root/host" "$webhooks_bin" --floor "$floor_bin" "${bench_args[@]}"

load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- Report --------------------------------------------------------------------------

locked() { # locked FILE NAME: the version of NAME in a Cargo.lock
    awk -v name="$2" '$0 == "name = \"" name "\"" { getline; gsub(/version = |"/, ""); print; exit }' "$1"
}

{
    echo "Sluice side by side: cold start, cold paths, memory, flow overhead, end to end ($mode run)"
    echo "command:   benches/run.sh$([[ $quick == 1 ]] && echo ' --quick')"
    echo "date:      $started"
    echo "machine:   $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
    echo "load:      $load_before before, $load_after after (1, 5, 15 min)"
    echo "others:    CPU used by other processes during each measurement, in cores (of $(nproc)), after waiting"
    echo "           up to ${quiet_wait} s for a quiet machine; kernel work a measurement causes counts here too:"
    echo "           ${noise[*]}"
    echo "versions:  $(rustc --version), wasmtime $(locked "$root/Cargo.lock" wasmtime) (Sluice and floor),"
    echo "           extism $(locked "$extism_dir/Cargo.lock" extism) (wasmtime $(locked "$extism_dir/Cargo.lock" wasmtime)), node $(node --version),"
    echo "           isolated-vm $(cd "$node_dir" && node -p 'require("isolated-vm/package.json").version'), $(bwrap --version),"
    echo "           $( (wrk -v 2>&1 || true) | head -n 1 | sed 's/ Copyright.*//'), hyper $(locked "$root/Cargo.lock" hyper) (the end-to-end floor)"
    echo "protocol:  per contender, its own process: ${protocol[*]}"
    echo "           (warm-up, then that many executions timed one by one; then executions per second on 1 and 2 threads for that many seconds each)"
    echo
    contenders report "$results" 2>> "$log" || fail "the report failed"
    echo
    echo "Sluice against the raw wasmtime floor, interleaved round by round in one process (cold_start):"
    sed -n '/^variant/,/^pooling gain/p' "$out/cold_start.txt"
    echo
    echo "Flow overhead (a declarative flow of 10 hello.echo steps vs 10 direct Runtime::execute calls):"
    sed -n '/^variant/,$p' "$out/flow_overhead.txt"
    echo
    cat "$out/webhooks.txt"
} | tee "$summary"

echo >&2
echo "results: $results; this summary: $summary; log: $log" >&2
