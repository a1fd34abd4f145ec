#!/usr/bin/env bash
# Builds every Sluice example guest (the workspace members under examples/) for
# wasm32-wasip2 with the `guest` profile, and prints where the .wasm files are.
# Honours CARGO_TARGET_DIR; extra arguments are passed to `cargo build`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."

target=wasm32-wasip2
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    echo "build.sh: installing the $target Rust target" >&2
    if ! rustup target add "$target"; then
        echo "build.sh: could not install the $target target with rustup;" \
            "install it by hand (rustup target add $target) and rerun" >&2
        exit 1
    fi
fi

packages=()
while IFS= read -r manifest; do
    # Only crates that produce a component: a cdylib or a binary.
    grep -qE '^crate-type = \["cdylib"\]|^\[\[bin\]\]' "$manifest" || continue
    # Host-side tools among the examples say so (`[package.metadata.sluice] guest = false`).
    grep -qx 'guest = false' "$manifest" && continue
    packages+=(-p "$(sed -n 's/^name = "\(.*\)"$/\1/p' "$manifest" | head -n 1)")
done < <(find "$here" -name Cargo.toml -not -path '*/target/*' | sort)

cargo build --profile guest --target "$target" "${packages[@]}" "$@"

out="${CARGO_TARGET_DIR:-$PWD/target}/$target/guest"
echo "Guest components in $out:"
for wasm in "$out"/*.wasm; do
    [ -e "$wasm" ] || continue
    printf '  %s (%s bytes)\n' "$wasm" "$(wc -c <"$wasm" | tr -d ' ')"
done
