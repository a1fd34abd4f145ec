#!/usr/bin/env node
// Regenerates src/wit/ (TypeScript declarations of the WIT imports and exports) from
// wit/ with `jco guest-types`, for both worlds. The output is committed, so building a
// guest needs no jco; rerun this (`npm run types`) when wit/ changes.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'src', 'wit');
rmSync(out, { recursive: true, force: true });
for (const world of ['component', 'flow']) {
  // jco's WASI file access resolves paths against the working directory.
  const run = spawnSync(
    'npx',
    ['jco', 'guest-types', 'wit', '--world-name', world, '-o', out, '-q'],
    { cwd: root, stdio: 'inherit' },
  );
  if (run.status !== 0) {
    process.exit(run.status ?? 1);
  }
}
