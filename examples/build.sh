#!/usr/bin/env bash
# Builds every Sluice guest example for wasm32-wasip2 and prints where the .wasm files are.
# Honours CARGO_TARGET_DIR; extra arguments are passed to `cargo build`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

target=wasm32-wasip2

if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    echo "build.sh: installing the $target Rust target" >&2
    if ! rustup target add "$target"; then
        echo "build.sh: could not install the $target target with rustup;" \
            "install it by hand (rustup target add $target) and rerun" >&2
        exit 1
    fi
fi

cargo build --release "$@"

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
out="$target_dir/$target/release"
echo "Guest components in $out:"
for wasm in "$out"/*.wasm; do
    [ -e "$wasm" ] || continue
    printf '  %s (%s bytes)\n' "$wasm" "$(wc -c <"$wasm" | tr -d ' ')"
done
