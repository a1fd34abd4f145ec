// Errors a handler throws, one class per kind of the WIT `error` variant, and the
// mapping of anything thrown onto that variant. The kind tells the host what to do
// next: invalid input is never retried, a connection error flags the credential, a
// retryable error may be retried, anything else is fatal.

import type { Error as WitError } from 'sluice:flow/types@0.1.0';

export type ErrorKind = 'invalid-input' | 'connection' | 'retryable' | 'fatal';

/** An error with a kind the host understands. Throw one of its subclasses. */
export class SluiceError extends Error {
  readonly kind: ErrorKind;
  /** For connection errors: the config-variable key of the connection at fault. */
  readonly connectionKey: string;

  constructor(kind: ErrorKind, message: string, connectionKey = '') {
    super(message);
    this.name = new.target.name;
    this.kind = kind;
    this.connectionKey = connectionKey;
  }

  /** The same error, its message prefixed with `what` ("listing repos: ..."). */
  context(what: string): SluiceError {
    return errorOfKind(this.kind, `${what}: ${this.message}`, this.connectionKey);
  }

  /** The WIT `error` variant of this error. */
  toWit(): WitError {
    switch (this.kind) {
      case 'invalid-input':
        return { tag: 'invalid-input', val: this.message };
      case 'connection':
        return { tag: 'connection', val: { key: this.connectionKey, message: this.message } };
      case 'retryable':
        return { tag: 'retryable', val: this.message };
      default:
        return { tag: 'fatal', val: this.message };
    }
  }
}

/** The input does not satisfy the handler: retrying the same input cannot succeed. */
export class InvalidInput extends SluiceError {
  constructor(message: string) {
    super('invalid-input', message);
  }
}

/** Credentials are missing, expired or refused; `key` names the connection. */
export class ConnectionError extends SluiceError {
  constructor(key: string, message: string) {
    super('connection', message, key);
  }
}

/** A transient failure (rate limit, 5xx, timeout): the host may retry. */
export class Retryable extends SluiceError {
  constructor(message: string) {
    super('retryable', message);
  }
}

/** Any other failure: not retried. */
export class Fatal extends SluiceError {
  constructor(message: string) {
    super('fatal', message);
  }
}

export function errorOfKind(kind: ErrorKind, message: string, connectionKey = ''): SluiceError {
  switch (kind) {
    case 'invalid-input':
      return new InvalidInput(message);
    case 'connection':
      return new ConnectionError(connectionKey, message);
    case 'retryable':
      return new Retryable(message);
    default:
      return new Fatal(message);
  }
}

/** An error the host returned (an `invoke` that failed), as a [`SluiceError`]. */
export function fromWit(error: WitError): SluiceError {
  switch (error.tag) {
    case 'invalid-input':
      return new InvalidInput(error.val);
    case 'connection':
      return new ConnectionError(error.val.key, error.val.message);
    case 'retryable':
      return new Retryable(error.val);
    default:
      return new Fatal(error.val);
  }
}

/**
 * Anything a handler threw, as a [`SluiceError`]: a `SluiceError` keeps its kind;
 * any other error is fatal with its message (and its name when it is not a plain
 * `Error`, so a `TypeError` says so), instead of trapping with no message.
 */
export function toSluiceError(thrown: unknown): SluiceError {
  if (thrown instanceof SluiceError) {
    return thrown;
  }
  if (thrown instanceof Error) {
    const name = thrown.name && thrown.name !== 'Error' ? `${thrown.name}: ` : '';
    return new Fatal(`${name}${thrown.message}`);
  }
  // SpiderMonkey throws the bare string "out of memory" when an allocation fails
  // (the memory budget is spent); it is catchable, so it ends here, not as a trap.
  if (thrown === 'out of memory') {
    return new Fatal('out of memory: the execution used up its memory budget');
  }
  let text: string;
  try {
    text = typeof thrown === 'string' ? thrown : JSON.stringify(thrown) ?? String(thrown);
  } catch {
    text = String(thrown);
  }
  return new Fatal(`uncaught exception: ${text}`);
}

/** The payload of an error thrown by a WIT import that returns `result<_, E>`. */
export function witPayload<E>(thrown: unknown): E | undefined {
  if (thrown && typeof thrown === 'object' && 'payload' in thrown) {
    return (thrown as { payload: E }).payload;
  }
  return undefined;
}
