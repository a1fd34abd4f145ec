// The context every handler receives: who and what the execution is, logging, state
// in four scopes, connections and config. Host failures become errors of the right
// kind, as in the Rust SDK.

import * as state from 'sluice:flow/state@0.1.0';
import * as connections from 'sluice:flow/connections@0.1.0';
import * as config from 'sluice:flow/config@0.1.0';
import type { ExecutionContext } from 'sluice:flow/types@0.1.0';
import { ConnectionError, Fatal, InvalidInput, Retryable, SluiceError, witPayload } from './errors.js';
import { log, type Logger } from './log.js';

export type Scope = state.Scope;

function stateError(thrown: unknown, what: string): SluiceError {
  const error = witPayload<state.StateError>(thrown);
  if (!error) {
    return new Fatal(`${what}: ${String(thrown)}`);
  }
  // The same kinds as the Rust SDK: only an unreachable store is worth retrying.
  switch (error.tag) {
    case 'unavailable':
      return new Retryable(`${what}: state store unavailable: ${error.val}`);
    case 'too-large':
      return new Fatal(`${what}: too large: ${error.val}`);
    case 'quota-exceeded':
      return new Fatal(`${what}: quota exceeded: ${error.val}`);
    default:
      return new Fatal(`${what}: ${error.val}`);
  }
}

function parseStored(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Fatal(`${what}: stored value is not JSON: ${String(e)}`);
  }
}

function toJson(value: unknown, what: string): string {
  const text = JSON.stringify(value);
  if (text === undefined) {
    throw new InvalidInput(`${what}: ${typeof value} is not a JSON value`);
  }
  return text;
}

/** Persisted key/value state of one scope. Values are any JSON values. */
export class StateScope {
  constructor(readonly scope: Scope) {}

  /** The value of `key`, or `undefined` when it is absent. */
  get<T = unknown>(key: string): T | undefined {
    const what = `reading ${this.scope} state \`${key}\``;
    let text: string | undefined;
    try {
      text = state.get(this.scope, key);
    } catch (e) {
      throw stateError(e, what);
    }
    return text === undefined ? undefined : (parseStored(text, what) as T);
  }

  set(key: string, value: unknown): void {
    const what = `writing ${this.scope} state \`${key}\``;
    const text = toJson(value, what);
    try {
      state.set(this.scope, key, text);
    } catch (e) {
      throw stateError(e, what);
    }
  }

  /** Deletes `key`; returns whether it existed. */
  delete(key: string): boolean {
    try {
      return state.delete(this.scope, key);
    } catch (e) {
      throw stateError(e, `deleting ${this.scope} state \`${key}\``);
    }
  }

  /**
   * Replaces the value of `key` with `next` when the current value equals `expected`
   * (`undefined`: the key must be absent; `next` of `undefined` deletes it). Returns
   * whether the swap happened. Values compare as canonical JSON.
   */
  compareAndSwap(key: string, expected: unknown, next: unknown): boolean {
    const what = `compare-and-swap of ${this.scope} state \`${key}\``;
    const expectedText = expected === undefined ? undefined : toJson(expected, what);
    const nextText = next === undefined ? undefined : toJson(next, what);
    try {
      return state.compareAndSwap(this.scope, key, expectedText, nextText);
    } catch (e) {
      throw stateError(e, what);
    }
  }

  /**
   * Read-modify-write that is safe against concurrent executions: calls `f` with the
   * current value until a compare-and-swap of its result succeeds. `f` returning
   * `undefined` deletes the key. Returns what was stored.
   */
  update<T>(key: string, f: (current: T | undefined) => T | undefined, maxAttempts = 100): T | undefined {
    for (let attempt = 0; attempt < maxAttempts; attempt++) {
      const current = this.get<T>(key);
      const next = f(current);
      if (this.compareAndSwap(key, current, next)) {
        return next;
      }
    }
    throw new Retryable(`updating ${this.scope} state \`${key}\`: still contended after ${maxAttempts} attempts`);
  }
}

/** The four state scopes. */
export class State {
  /** This execution only: an accumulator across the steps of one run. */
  readonly execution = new StateScope('execution');
  /** This flow of this instance, across executions. */
  readonly flow = new StateScope('flow');
  /** Every flow of the instance; instance hooks use this one. */
  readonly instance = new StateScope('instance');
  /** Every instance of the integration, across customers. */
  readonly integration = new StateScope('integration');

  scope(scope: Scope): StateScope {
    return this[scope];
  }
}

export interface OAuthToken {
  accessToken: string;
  tokenType: string;
  /** Expiry in milliseconds since the Unix epoch, when known. */
  expiresAtMs?: number;
  scopes: string[];
}

/** A connection (credential) of the instance. */
export class Connection {
  readonly key: string;
  readonly kind: string;
  /** The connection's input fields. */
  readonly fields: Record<string, unknown>;
  readonly token?: OAuthToken;

  constructor(raw: connections.Connection) {
    this.key = raw.key;
    this.kind = raw.kind;
    let fields: unknown;
    try {
      fields = JSON.parse(raw.fields);
    } catch {
      fields = undefined;
    }
    if (!fields || typeof fields !== 'object' || Array.isArray(fields)) {
      throw new ConnectionError(raw.key, `the fields of connection \`${raw.key}\` are not a JSON object`);
    }
    this.fields = fields as Record<string, unknown>;
    if (raw.token) {
      this.token = {
        accessToken: raw.token.accessToken,
        tokenType: raw.token.tokenType,
        expiresAtMs: raw.token.expiresAtMs === undefined ? undefined : Number(raw.token.expiresAtMs),
        scopes: raw.token.scopes,
      };
    }
  }

  /** A field; `undefined` when absent. */
  field<T = unknown>(name: string): T | undefined {
    return this.fields[name] as T | undefined;
  }

  /** A string field that must be set: a connection error otherwise. */
  requireString(name: string): string {
    const value = this.fields[name];
    if (typeof value !== 'string' || value.trim() === '') {
      throw new ConnectionError(this.key, `connection \`${this.key}\` has no \`${name}\``);
    }
    return value;
  }

  /** The OAuth access token: a connection error when the host supplied none. */
  bearerToken(): string {
    if (!this.token) {
      throw new ConnectionError(this.key, `connection \`${this.key}\` has no OAuth token`);
    }
    return this.token.accessToken;
  }
}

/** The instance's connections, by config-variable key. */
export const connectionsApi = {
  /** The connection `key`; a missing, expired or unreachable one is a connection error. */
  get(key: string): Connection {
    let raw: connections.Connection;
    try {
      raw = connections.get(key);
    } catch (e) {
      const error = witPayload<connections.ConnectionError>(e);
      switch (error?.tag) {
        case 'not-found':
          throw new ConnectionError(key, `no connection \`${key}\` is configured: ${error.val}`);
        case 'expired':
          throw new ConnectionError(key, `connection \`${key}\` expired: ${error.val}`);
        case 'unavailable':
          throw new ConnectionError(key, `connection \`${key}\` is unavailable: ${error.val}`);
        default:
          throw new ConnectionError(key, `connection \`${key}\`: ${String(e)}`);
      }
    }
    return new Connection(raw);
  },
};

/** The instance's config variables. */
export const configApi = {
  /** The value of config variable `key`, or `undefined`. */
  get<T = unknown>(key: string): T | undefined {
    const text = config.get(key);
    return text === undefined ? undefined : (JSON.parse(text) as T);
  },
  /** A config variable that must be set: an invalid-input error otherwise. */
  require<T = unknown>(key: string): T {
    const value = configApi.get<T>(key);
    if (value === undefined || value === null) {
      throw new InvalidInput(`config variable \`${key}\` is not set`);
    }
    return value;
  },
  /** Every config variable, by key. */
  all(): Record<string, unknown> {
    const all: Record<string, unknown> = {};
    for (const [key, text] of config.all()) {
      all[key] = JSON.parse(text);
    }
    return all;
  },
};

/** Who and what the current execution is, plus the host's services. */
export class Context {
  readonly executionId: string;
  readonly tenantId: string;
  readonly customerId?: string;
  readonly customerExternalId?: string;
  readonly integrationId: string;
  readonly instanceId: string;
  /** Name of the flow being executed. */
  readonly flowName: string;
  /** Key of the step being executed, when the call is a step of a flow. */
  readonly step?: string;
  /** 1 for the first attempt, 2 for the first retry, and so on. */
  readonly attempt: number;
  /** When the execution started, in milliseconds since the Unix epoch. */
  readonly startedAtMs: number;
  /** Webhook URL of each flow of the instance, keyed by flow name. */
  readonly webhookUrls: Record<string, string>;
  /** The raw execution context, as the WIT declares it. */
  readonly raw: ExecutionContext;

  readonly log: Logger = log;
  readonly state = new State();
  readonly connections = connectionsApi;
  readonly config = configApi;

  constructor(raw: ExecutionContext) {
    this.raw = raw;
    this.executionId = raw.executionId;
    this.tenantId = raw.tenantId;
    this.customerId = raw.customerId;
    this.customerExternalId = raw.customerExternalId;
    this.integrationId = raw.integrationId;
    this.instanceId = raw.instanceId;
    this.flowName = raw.flowName;
    this.step = raw.step;
    this.attempt = raw.attempt;
    this.startedAtMs = Number(raw.startedAtMs);
    this.webhookUrls = Object.fromEntries(raw.webhookUrls);
  }

  /** The webhook URL of flow `name`, when the instance has one. */
  webhookUrl(name: string): string | undefined {
    return this.webhookUrls[name];
  }

  /** This flow's own webhook URL (what a deploy hook registers); fatal when absent. */
  ownWebhookUrl(): string {
    const url = this.webhookUrl(this.flowName);
    if (url === undefined) {
      throw new Fatal(`the host gave no webhook URL for flow \`${this.flowName}\``);
    }
    return url;
  }
}
