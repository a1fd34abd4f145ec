// What actions and flows return: any JSON value, or an `Output` built for a status,
// headers, a content type, bytes or a branch.

import type { Data, Output as WitOutput } from 'sluice:flow/types@0.1.0';
import { Fatal } from './errors.js';

/** JSON text of `value` (`undefined` is `null`). */
export function jsonText(value: unknown): string {
  if (value === undefined) {
    return 'null';
  }
  const text = JSON.stringify(value);
  if (text === undefined) {
    throw new Fatal(`a ${typeof value} is not a JSON value`);
  }
  return text;
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
