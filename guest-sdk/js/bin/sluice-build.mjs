#!/usr/bin/env node
// sluice-build: turns a TypeScript/JavaScript project into a Sluice component.
//
//   npx sluice-build [project-dir] [--entry src/index.ts] [--world component|flow]
//                    [--out dist/NAME.wasm] [--wit DIR]
//
// 1. esbuild bundles the entry (TypeScript or JavaScript, with its npm dependencies)
//    into one ES module; `sluice:*` and `wasi:*` imports stay as imports, because
//    componentize-js binds them to the component's WIT imports.
// 2. componentize-js 0.23.0 builds the component for the world (`component` exports
//    `connector`, `flow` exports `codeFlow`) of the WIT in `--wit`: by default this
//    package's `wit/`, a link to the Sluice repository's `wit/` directory.
//
// Defaults come from the project's package.json: {"sluice": {"entry", "world", "out"}}.

import { mkdir, readFile, writeFile, stat } from 'node:fs/promises';
import { dirname, join, resolve, basename } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const sdkDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');

function fail(message) {
  console.error(`sluice-build: ${message}`);
  process.exit(1);
}

async function exists(path) {
  return stat(path).then(
    () => true,
    () => false,
  );
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    entry: { type: 'string' },
    world: { type: 'string' },
    out: { type: 'string' },
    wit: { type: 'string' },
    quiet: { type: 'boolean', short: 'q' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (values.help) {
  console.log('usage: sluice-build [project-dir] [--entry FILE] [--world component|flow] [--out FILE.wasm] [--wit DIR]');
  process.exit(0);
}

const projectDir = resolve(positionals[0] ?? '.');
let pkg = {};
if (await exists(join(projectDir, 'package.json'))) {
  pkg = JSON.parse(await readFile(join(projectDir, 'package.json'), 'utf8'));
}
const config = pkg.sluice ?? {};
const world = values.world ?? config.world ?? 'component';
if (world !== 'component' && world !== 'flow') {
  fail(`--world must be \`component\` or \`flow\`, not \`${world}\``);
}
let entry = values.entry ?? config.entry;
if (!entry) {
  for (const candidate of ['src/index.ts', 'src/index.js', 'index.ts', 'index.js']) {
    if (await exists(join(projectDir, candidate))) {
      entry = candidate;
      break;
    }
  }
}
if (!entry) {
  fail(`no entry point in ${projectDir}: pass --entry or create src/index.ts`);
}
entry = resolve(projectDir, entry);
const name = (pkg.name ?? basename(projectDir)).replace(/^@[^/]+\//, '');
const out = resolve(projectDir, values.out ?? config.out ?? join('dist', `${name}.wasm`));
const wit = resolve(projectDir, values.wit ?? config.wit ?? join(sdkDir, 'wit'));
if (!(await exists(join(wit, 'worlds.wit')))) {
  fail(`no Sluice WIT at ${wit} (expected worlds.wit there); pass --wit DIR`);
}
await mkdir(dirname(out), { recursive: true });
const log = values.quiet ? () => {} : (message) => console.error(message);

// 1. Bundle.
const started = Date.now();
const esbuild = await import('esbuild');
const bundle = out.replace(/\.wasm$/, '') + '.bundle.js';
const built = await esbuild.build({
  entryPoints: [entry],
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  mainFields: ['module', 'main'],
  target: 'es2022',
  external: ['sluice:*', 'wasi:*'],
  outfile: bundle,
  logLevel: 'warning',
  // Names stay readable in stack traces and error messages.
  minify: false,
  metafile: true,
});
const bundleBytes = Object.values(built.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
log(`bundled ${entry} into ${bundle} (${bundleBytes} bytes) in ${Date.now() - started} ms`);

// 2. Componentize. componentize-js exports only "."; its splicer module is reached
// by path so that the bindings it generates can be patched (below).
const componentizeUrl = import.meta.resolve('@bytecodealliance/componentize-js');
const { componentize } = await import(componentizeUrl);
const { splicer } = await import(new URL('../lib/spidermonkey-embedding-splicer.js', componentizeUrl).href);

// Every string the guest hands to the host (an action's JSON output above all) goes
// through the bindings' `_utf8AllocateAndEncode`, which first counts the UTF-8 length
// in a JavaScript loop over each UTF-16 unit. StarlingMonkey interprets that loop
// (no JIT in a component), at about 2,600 fuel per character: a 1 MB result cost
// 2.6 billion fuel and 5 MB ran out of the default 10 billion. Encoding with the
// native TextEncoder first and copying the bytes costs a few fuel per byte; the
// result is the same (lone surrogates become U+FFFD either way: 3 bytes).
const SLOW_ENCODER = 'function _utf8AllocateAndEncode(s, realloc, memory) {';
const FAST_ENCODER = `function _utf8AllocateAndEncode(s, realloc, memory) {
  if (typeof s !== 'string') {
    throw new TypeError('expected a string, received [' + typeof s + ']');
  }
  if (s.length === 0) { return { ptr: 1, len: 0 }; }
  const bytes = TEXT_ENCODER_UTF8.encode(s);
  const len = bytes.length;
  const ptr = realloc(0, 0, 1, len);
  new Uint8Array(memory.buffer, ptr, len).set(bytes);
  return { ptr, len };
}
function _utf8AllocateAndEncodeByLoop(s, realloc, memory) {`;
const splice = splicer.spliceBindings;
splicer.spliceBindings = (...args) => {
  const result = splice(...args);
  if (!result.jsBindings.includes(SLOW_ENCODER) || !result.jsBindings.includes('const TEXT_ENCODER_UTF8')) {
    throw new Error(
      'the componentize-js bindings changed: the string encoder sluice-build speeds up is not there; ' +
        'update bin/sluice-build.mjs for this componentize-js version',
    );
  }
  result.jsBindings = result.jsBindings.replace(SLOW_ENCODER, FAST_ENCODER);
  return result;
};

const componentizeStarted = Date.now();
let component;
try {
  ({ component } = await componentize({
    sourcePath: bundle,
    witPath: wit,
    worldName: world,
  }));
} catch (e) {
  fail(`componentize-js failed for world \`${world}\`: ${e?.message ?? e}`);
}
await writeFile(out, component);
log(
  `built ${out} (world ${world}, ${(component.length / 1048576).toFixed(1)} MiB) in ${Date.now() - componentizeStarted} ms`,
);
