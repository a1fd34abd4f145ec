#!/usr/bin/env bash
# Builds every fuzz target of fuzz/Cargo.toml with libFuzzer on stable Rust and runs each
# for SECONDS (default 30) from its corpus. Exits non-zero when a target crashes,
# panics, times out or runs out of memory; the input that did it is written to
# fuzz/artifacts/<target>/ and the command to reproduce it is printed.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# SLUICE_FUZZ_TARGET_DIR chooses the build directory (default fuzz/target). Extra
# libFuzzer flags can be given in SLUICE_FUZZ_FLAGS (e.g. "-jobs=2 -workers=2").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

seconds="${1:-30}"
shift || true
all=(definition expression template component webhook)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

host="$(rustc -vV | sed -n 's/^host: //p')"
export CARGO_TARGET_DIR="${SLUICE_FUZZ_TARGET_DIR:-$PWD/target}"
# What `cargo fuzz build --sanitizer none` passes: libFuzzer's coverage counters and
# comparison tracing (stable `-C` flags), `cfg(fuzzing)`, and runtime checks. With an
# explicit --target the flags reach only target code, not build scripts or proc macros.
export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"
cargo build --release --locked --target "$host" --bins

bin="$CARGO_TARGET_DIR/$host/release"
failed=()
for target in "${targets[@]}"; do
    # New inputs go to a scratch corpus; the committed one (fuzz/corpus/<target>) only
    # seeds the run, so a run never dirties the checkout.
    work="$CARGO_TARGET_DIR/corpus/$target"
    mkdir -p "$work" "artifacts/$target"
    echo "== fuzz $target for ${seconds}s"
    # shellcheck disable=SC2086
    if ! "$bin/$target" "$work" "corpus/$target" \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="artifacts/$target/" ${SLUICE_FUZZ_FLAGS:-} \
        2>"$CARGO_TARGET_DIR/$target.log"; then
        tail -n 60 "$CARGO_TARGET_DIR/$target.log"
        echo "FAILED: fuzz target $target; reproduce with:"
        echo "  $bin/$target fuzz/artifacts/$target/<crash-file>"
        failed+=("$target")
    else
        grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^Done' "$CARGO_TARGET_DIR/$target.log" || true
    fi
done
passed=$((${#targets[@]} - ${#failed[@]}))
echo "fuzz: $passed passed, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
    echo "failing fuzz targets: ${failed[*]}"
    exit 1
fi
