#!/usr/bin/env bash
# Builds the code-step engine (src/engine.js) into a component with the JS SDK's
# sluice-build (esbuild, then componentize-js at the version guest-sdk/js pins, with
# the SDK's cheap string encoding). Usage: build.sh [OUT.wasm]
# [default: ${CARGO_TARGET_DIR:-<repo>/target}/code-engine/sluice-code.wasm].
# Give the result to `sluice serve --code-engine OUT.wasm`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
sdk="$repo/guest-sdk/js"
out="${1:-${CARGO_TARGET_DIR:-$repo/target}/code-engine/sluice-code.wasm}"

if ! command -v npm >/dev/null 2>&1; then
    echo "build.sh: npm is needed to build the code engine (Node.js 20 or later)" >&2
    exit 1
fi
# `npm ci` installs exactly each lockfile.
(cd "$sdk" && npm ci --no-audit --no-fund --loglevel=error) >&2
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >&2
mkdir -p "$(dirname "$out")"
node "$sdk/bin/sluice-build.mjs" "$here" --out "$out" >&2
echo "$out"
