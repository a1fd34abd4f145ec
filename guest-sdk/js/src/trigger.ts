// Webhook triggers: the request a trigger receives, and what it decides: accept (run
// the flow with a payload, maybe on a branch, maybe answering the caller) or respond
// without running the flow (a rejected signature, a verification challenge).

import type { HttpRequest, HttpResponse as WitHttpResponse, TriggerOutcome, Data } from 'sluice:flow/types@0.1.0';
import { jsonText } from './output.js';

/** The HTTP request a webhook trigger received. */
export class Request {
  readonly method: string;
  /** Path after the webhook URL ("" when the URL was called as is). */
  readonly path: string;
  readonly query: Array<[string, string]>;
  /** Header names are lower-case; a name may repeat. */
  readonly headers: Array<[string, string]>;
  readonly body: Uint8Array;

  constructor(raw: HttpRequest) {
    this.method = raw.method;
    this.path = raw.path;
    this.query = raw.query;
    this.headers = raw.headers;
    this.body = raw.body;
  }

  /** The first value of header `name` (any case). */
  header(name: string): string | undefined {
    const lower = name.toLowerCase();
    return this.headers.find(([n]) => n === lower)?.[1];
  }

  queryParam(name: string): string | undefined {
    return this.query.find(([n]) => n === name)?.[1];
  }

  text(): string {
    return new TextDecoder().decode(this.body);
  }

  /** The body as JSON; `undefined` when it is not JSON. */
  json<T = unknown>(): T | undefined {
    try {
      return JSON.parse(this.text()) as T;
    } catch {
      return undefined;
    }
  }
}

/** An HTTP response for the webhook's caller. */
export interface HttpResponse {
  status: number;
  headers?: Array<[string, string]>;
  contentType?: string;
  body?: string | Uint8Array;
}

function toWitResponse(response: HttpResponse): WitHttpResponse {
  const body = response.body ?? new Uint8Array();
  return {
    status: response.status,
    headers: response.headers ?? [],
    contentType: response.contentType,
    body: typeof body === 'string' ? new TextEncoder().encode(body) : body,
  };
}

/** What a trigger decided about a request. */
export class TriggerResponse {
  private constructor(
    private readonly accepted: boolean,
    private readonly payload: Data | undefined,
    private branchName: string | undefined,
    private response: HttpResponse | undefined,
  ) {}

  /** Run the flow with `payload` (any JSON value). */
  static acceptJson(payload: unknown): TriggerResponse {
    return new TriggerResponse(true, { tag: 'json', val: jsonText(payload) }, undefined, undefined);
  }

  /** Run the flow with raw bytes as the payload. */
  static acceptBytes(bytes: Uint8Array): TriggerResponse {
    return new TriggerResponse(true, { tag: 'bytes', val: bytes }, undefined, undefined);
  }

  /** Run the flow with the request body as is: JSON when it parses, bytes otherwise. */
  static acceptRequest(request: Request): TriggerResponse {
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(request.body);
      JSON.parse(text);
    } catch {
      return TriggerResponse.acceptBytes(request.body);
    }
    return new TriggerResponse(true, { tag: 'json', val: text }, undefined, undefined);
  }

  /** Do not run the flow; answer `status` with a plain-text `message`. */
  static reject(status: number, message: string): TriggerResponse {
    return TriggerResponse.respond({ status, contentType: 'text/plain; charset=utf-8', body: message });
  }

  /** Do not run the flow; answer the caller with `response`. */
  static respond(response: HttpResponse): TriggerResponse {
    return new TriggerResponse(false, undefined, undefined, response);
  }

  /** The branch to follow (the trigger must declare it); ignored when the flow does not run. */
  branch(name: string): this {
    this.branchName = name;
    return this;
  }

  /** Answer the caller with `response` while the flow runs. */
  respondWith(response: HttpResponse): this {
    this.response = response;
    return this;
  }

  toWit(): TriggerOutcome {
    if (!this.accepted) {
      return { tag: 'respond', val: toWitResponse(this.response ?? { status: 200 }) };
    }
    return {
      tag: 'accept',
      val: {
        payload: this.payload ?? { tag: 'json', val: 'null' },
        branch: this.branchName,
        response: this.response && toWitResponse(this.response),
      },
    };
  }
}
