#!/usr/bin/env bash
# Builds the code-step engine (engine.js) into a component with componentize-js, the
# version package-lock.json pins. Usage: build.sh [OUT.wasm]
# [default: ${CARGO_TARGET_DIR:-<repo>/target}/code-engine/sluice-code.wasm].
# Give the result to `sluice serve --code-engine OUT.wasm`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:-${CARGO_TARGET_DIR:-$repo/target}/code-engine/sluice-code.wasm}"

if ! command -v npm >/dev/null 2>&1; then
    echo "build.sh: npm is needed to build the code engine (Node.js 20 or later)" >&2
    exit 1
fi
cd "$here"
# Two builds at once (two test processes) take turns over node_modules.
exec 9>"$here/.build.lock"
flock 9
# `npm ci` installs exactly the lockfile; skipped when that install is already there.
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.sluice-lock; then
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json node_modules/.sluice-lock
fi
mkdir -p "$(dirname "$out")"
# Written next to its destination, then renamed: a reader never sees half a file.
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
npx --no-install componentize-js --wit "$repo/wit" --world-name component \
    --out "$tmp" engine.js >&2
mv "$tmp" "$out"
echo "$out"
