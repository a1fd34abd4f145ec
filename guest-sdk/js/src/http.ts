// Outbound HTTP on the runtime's `fetch` (StarlingMonkey's, over wasi:http): the host
// checks each request against the instance's allow-list and never follows redirects.
// `http` adds what connectors need on top: bearer auth from a connection, JSON bodies,
// query parameters, and statuses mapped onto error kinds as the Rust SDK does.

import { ConnectionError, Fatal, Retryable, SluiceError } from './errors.js';
import type { Connection } from './context.js';

export type HeaderList = Record<string, string> | Array<[string, string]>;
export type QueryList = Record<string, string | number | boolean | undefined> | Array<[string, string]>;

export interface RequestOptions {
  headers?: HeaderList;
  query?: QueryList;
  /** A JSON body (sets `content-type: application/json`). */
  json?: unknown;
  /** A raw body; set a `content-type` header to say what it is. */
  body?: string | Uint8Array;
  /** Sends `authorization: Bearer <token>`. */
  bearer?: string;
  /** Sends the connection's OAuth token and names it in a 401/403 error. */
  connection?: Connection;
  /** Names the connection a 401/403 flags, without sending its token. */
  connectionKey?: string;
  /** Gives up after this long (a retryable error). */
  timeoutMs?: number;
}

/** Up to 200 characters of a body, for error messages. */
function bodyPrefix(body: Uint8Array): string {
  if (body.length === 0) {
    return '(empty body)';
  }
  const window = body.subarray(0, 800);
  const text = new TextDecoder().decode(window);
  const chars = Array.from(text);
  const prefix = chars.slice(0, 200).join('');
  return chars.length > 200 || window.length < body.length ? `${prefix}…` : prefix;
}

/** The URL without its query, for messages (query strings can carry secrets). */
function redacted(url: string): string {
  const cut = url.search(/[?#]/);
  return cut < 0 ? url : url.slice(0, cut);
}

/** The error of a response status, or `undefined` below 400. */
export function statusError(status: number, what: string, body: Uint8Array, connectionKey?: string): SluiceError | undefined {
  if (status < 400) {
    return undefined;
  }
  const message = `${what} returned HTTP ${status}: ${bodyPrefix(body)}`;
  if (status === 401 || status === 403) {
    return new ConnectionError(connectionKey ?? '', message);
  }
  if (status === 408 || status === 425 || status === 429 || status >= 500) {
    return new Retryable(message);
  }
  return new Fatal(message);
}

/** A response read whole. */
export class HttpResponse {
  constructor(
    readonly status: number,
    readonly headers: Headers,
    readonly body: Uint8Array,
    /** "METHOD url", for messages. */
    readonly what: string,
    readonly connectionKey?: string,
  ) {}

  get ok(): boolean {
    return this.status < 400;
  }

  header(name: string): string | undefined {
    return this.headers.get(name) ?? undefined;
  }

  text(): string {
    return new TextDecoder().decode(this.body);
  }

  json<T = unknown>(): T {
    try {
      return JSON.parse(this.text()) as T;
    } catch (e) {
      throw new Fatal(`response of ${this.what} is not JSON: ${String(e)}`);
    }
  }

  /** This response, or the error its status means (4xx/5xx). */
  errorForStatus(): this {
    const error = statusError(this.status, this.what, this.body, this.connectionKey);
    if (error) {
      throw error;
    }
    return this;
  }
}

function appendQuery(url: string, query?: QueryList): string {
  if (!query) {
    return url;
  }
  const pairs: Array<[string, string]> = Array.isArray(query)
    ? query
    : Object.entries(query)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, String(v)]);
  if (pairs.length === 0) {
    return url;
  }
  const encoded = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
  return url + (url.includes('?') ? '&' : '?') + encoded;
}

/**
 * Sends a request and reads the whole response; the status is not checked (see
 * [`HttpResponse.errorForStatus`]). A failure to send is retryable (the host could
 * not connect, or it timed out).
 */
export async function send(method: string, url: string, options: RequestOptions = {}): Promise<HttpResponse> {
  const target = appendQuery(url, options.query);
  const what = `${method} ${redacted(target)}`;
  const headers = new Headers();
  if (options.headers) {
    const list = Array.isArray(options.headers) ? options.headers : Object.entries(options.headers);
    for (const [name, value] of list) {
      headers.append(name, value);
    }
  }
  let connectionKey = options.connectionKey;
  let bearer = options.bearer;
  if (options.connection) {
    connectionKey = options.connection.key;
    bearer = options.connection.bearerToken();
  }
  if (bearer !== undefined) {
    headers.set('authorization', `Bearer ${bearer}`);
  }
  let body: string | Uint8Array | undefined = options.body;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    if (!headers.has('content-type')) {
      headers.set('content-type', 'application/json');
    }
  }
  const init: RequestInit = { method, headers, body: body as BodyInit | undefined, redirect: 'manual' };
  if (options.timeoutMs !== undefined && typeof AbortSignal.timeout === 'function') {
    init.signal = AbortSignal.timeout(options.timeoutMs);
  }
  let response: Response;
  try {
    response = await fetch(target, init);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    throw new Retryable(`${what} failed: ${message}`);
  }
  const bytes = new Uint8Array(await response.arrayBuffer());
  return new HttpResponse(response.status, response.headers, bytes, what, connectionKey);
}

/** Sends a request, checks its status and parses its JSON body. */
async function sendJson<T = unknown>(method: string, url: string, options?: RequestOptions): Promise<T> {
  const response = await send(method, url, options);
  return response.errorForStatus().json<T>();
}

/** The HTTP client. `http.get(url).then(r => r.json())`, or `http.json('GET', url)`. */
export const http = {
  send,
  json: sendJson,
  get: (url: string, options?: RequestOptions) => send('GET', url, options),
  post: (url: string, options?: RequestOptions) => send('POST', url, options),
  put: (url: string, options?: RequestOptions) => send('PUT', url, options),
  patch: (url: string, options?: RequestOptions) => send('PATCH', url, options),
  delete: (url: string, options?: RequestOptions) => send('DELETE', url, options),
};
