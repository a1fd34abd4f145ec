// What actions and flows return: any JSON value, or an `Output` built for a status,
// headers, a content type, bytes or a branch.

import type { Data, Output as WitOutput } from 'sluice:flow/types@0.1.0';
import { Fatal } from './errors.js';

/** Strings longer than this are quoted in pieces (see `quoteLong`). */
const LONG_STRING = 1 << 16;
/** Arrays longer than this are serialized this many elements at a time. */
const BATCH = 1000;
/** Below this depth, plain objects and short arrays are walked (see `write`). */
const WALK_DEPTH = 3;

/** JSON text of `value` (`undefined` is `null`). */
export function jsonText(value: unknown): string {
  if (value === undefined) {
    return 'null';
  }
  const text = write(value, 0);
  if (text === undefined) {
    throw new Fatal(`a ${typeof value} is not a JSON value`);
  }
  return text;
}

/**
 * `JSON.stringify(value)`, but with memory proportional to the output.
 *
 * StarlingMonkey's `JSON.stringify` needs about 64 bytes of memory per character to
 * quote one long string (a 1 MB string peaks at 77 MiB: past the 64 MiB budget), and
 * its builder grows a large document by reallocation (5 MB of records peaked at
 * 104 MiB). So long strings are quoted 64 Ki characters at a time, and long arrays
 * 1,000 elements at a time; the pieces are joined once. Only the top levels are walked
 * here (interpreted JavaScript costs fuel per node); below them `JSON.stringify` does
 * the work natively. The text is the same as `JSON.stringify` gives.
 */
function write(value: unknown, depth: number): string | undefined {
  if (typeof value === 'string') {
    return value.length > LONG_STRING ? quoteLong(value) : JSON.stringify(value);
  }
  if (value === null || typeof value !== 'object') {
    return JSON.stringify(value);
  }
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') {
    return write(toJSON.call(value, ''), depth);
  }
  if (Array.isArray(value)) {
    if (value.length > BATCH) {
      const parts: string[] = [];
      for (let i = 0; i < value.length; i += BATCH) {
        // `[a,b]` without its brackets; a slice of an array is never empty here.
        parts.push(JSON.stringify(value.slice(i, i + BATCH)).slice(1, -1));
      }
      return `[${parts.join(',')}]`;
    }
    if (depth >= WALK_DEPTH) {
      return JSON.stringify(value);
    }
    const parts: string[] = [];
    // A loop, not `map`: holes are `null`, as `JSON.stringify` writes them.
    for (let i = 0; i < value.length; i++) {
      parts.push(write(value[i], depth + 1) ?? 'null');
    }
    return `[${parts.join(',')}]`;
  }
  const proto = Object.getPrototypeOf(value);
  if (depth >= WALK_DEPTH || (proto !== Object.prototype && proto !== null)) {
    return JSON.stringify(value);
  }
  const parts: string[] = [];
  for (const key of Object.keys(value)) {
    const text = write((value as Record<string, unknown>)[key], depth + 1);
    if (text !== undefined) {
      parts.push(`${JSON.stringify(key)}:${text}`);
    }
  }
  return `{${parts.join(',')}}`;
}

/** A long string quoted piece by piece, never splitting a surrogate pair. */
function quoteLong(text: string): string {
  const parts: string[] = [];
  for (let start = 0; start < text.length; ) {
    let end = Math.min(start + LONG_STRING, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) {
      end -= 1;
    }
    parts.push(JSON.stringify(text.slice(start, end)).slice(1, -1));
    start = end;
  }
  return `"${parts.join('')}"`;
}

/** An output with more than a JSON value. */
export class Output {
  private data: Data;
  private contentType?: string;
  private statusCode?: number;
  private headerList: Array<[string, string]> = [];
  private branchName?: string;

  private constructor(data: Data) {
    this.data = data;
  }

  static json(value: unknown): Output {
    return new Output({ tag: 'json', val: jsonText(value) });
  }

  static bytes(bytes: Uint8Array, contentType?: string): Output {
    const output = new Output({ tag: 'bytes', val: bytes });
    output.contentType = contentType;
    return output;
  }

  static text(text: string, contentType = 'text/plain; charset=utf-8'): Output {
    return Output.bytes(new TextEncoder().encode(text), contentType);
  }

  /** HTTP status for a synchronous response. */
  status(status: number): this {
    this.statusCode = status;
    return this;
  }

  header(name: string, value: string): this {
    this.headerList.push([name, value]);
    return this;
  }

  withContentType(contentType: string): this {
    this.contentType = contentType;
    return this;
  }

  /** The branch to follow (the action must declare it). */
  branch(name: string): this {
    this.branchName = name;
    return this;
  }

  toWit(): WitOutput {
    return {
      data: this.data,
      contentType: this.contentType,
      status: this.statusCode,
      headers: this.headerList,
      branch: this.branchName,
    };
  }
}

/** A handler's return value as the WIT `output`. */
export function toWitOutput(value: unknown): WitOutput {
  return value instanceof Output ? value.toWit() : Output.json(value).toWit();
}

/** Data the host returned (an invoked action's output), read as JSON or bytes. */
export function dataValue(data: Data): unknown {
  return data.tag === 'json' ? JSON.parse(data.val) : data.val;
}
