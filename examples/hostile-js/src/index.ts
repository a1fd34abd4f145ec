// `hostile-js`: each action misbehaves in one way, so runtime/tests/hostile_js.rs can
// check that the sandbox stops a JavaScript guest with the right typed outcome, and
// what a large output costs.

import { Output, defineComponent, jsonText } from '@sluice/sdk';

function recurse(depth: number): number {
  return recurse(depth + 1) + 1;
}

export const connector = defineComponent({
  key: 'hostile-js',
  version: '0.1.0',
  label: 'Hostile JavaScript',
  description: 'Misbehaves on purpose, for the sandbox tests.',
  actions: {
    spin: {
      description: 'Loops forever.',
      run() {
        let n = 0;
        for (;;) {
          n = (n + 1) | 0;
        }
      },
    },
    memoryBomb: {
      description: 'Keeps allocating 1 MiB buffers and never lets one go.',
      run() {
        const kept: Uint8Array[] = [];
        for (;;) {
          const buffer = new Uint8Array(1 << 20);
          buffer.fill(kept.length & 0xff);
          kept.push(buffer);
        }
      },
    },
    deepRecursion: {
      description: 'Recurses without end.',
      run() {
        return recurse(0);
      },
    },
    output: {
      description: 'Returns a JSON string of `size` characters (`raw: true`: `size` raw bytes).',
      inputs: {
        type: 'object',
        properties: { size: { type: 'integer', minimum: 0 }, raw: { type: 'boolean', default: false } },
        required: ['size'],
      },
      run(_ctx, input: { size: number; raw: boolean }) {
        if (input.raw) {
          return Output.bytes(new Uint8Array(input.size).fill(120), 'application/octet-stream');
        }
        return 'x'.repeat(input.size);
      },
    },
    records: {
      description: 'Returns an array of `count` small objects (realistic JSON output).',
      inputs: { type: 'object', properties: { count: { type: 'integer', minimum: 0 } }, required: ['count'] },
      run(_ctx, input: { count: number }) {
        const records = [];
        for (let i = 0; i < input.count; i++) {
          records.push({ id: i, name: `record ${i}`, tags: ['a', 'b'], active: i % 2 === 0 });
        }
        return records;
      },
    },
    jsonFidelity: {
      description: "Compares the SDK's serializer with JSON.stringify; returns the differences.",
      run() {
        const long = 'ab"\\\n\u0001é😀'.repeat(20000) + '😀';
        const records = Array.from({ length: 2500 }, (_, i) => ({ id: i, s: `r${i}`, n: i % 3 ? null : [i, -0, 1.5] }));
        const samples: unknown[] = [
          null, true, 0, -0, 1e21, NaN, Infinity, 'plain', long, [long], { long },
          [1, undefined, () => 1, 'x'], { a: undefined, b: () => 1, c: 1 }, [, 2], new Date(0),
          { date: new Date(86400000), nested: { deeper: { deepest: { leaf: [1, { x: long.slice(0, 70000) }] } } } },
          records, { records }, { 2: 'b', 1: 'a', z: 'z', y: { toJSON: () => 'custom' } }, Object.create(null),
          new Map([[1, 2]]), [[[[[[1]]]]]],
        ];
        const differences: number[] = [];
        samples.forEach((sample, i) => {
          if (jsonText(sample) !== (JSON.stringify(sample) ?? 'null')) {
            differences.push(i);
          }
        });
        return { checked: samples.length, differences };
      },
    },
    throws: {
      description: 'Throws a plain TypeError (not a Sluice error).',
      run() {
        const missing = undefined as unknown as { field: string };
        return missing.field;
      },
    },
    console: {
      description: 'Writes to console.log and console.error.',
      run() {
        console.log('to stdout');
        console.error('to stderr');
        return null;
      },
    },
  },
});
