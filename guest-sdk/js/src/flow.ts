// Code-native flows (world `flow`): `defineFlow` returns the `codeFlow` export, and
// its handler gets a `FlowContext`: a `Context` plus calls into components and other
// flows (sluice:flow/invoker). This module is a separate entry point
// (`@sluice/sdk/flow`) because only the `flow` world may import the invoker: a
// connector that imported it would be refused.

import * as invoker from 'sluice:flow/invoker@0.1.0';
import type { Error as WitError, ExecutionContext, Output as WitOutput } from 'sluice:flow/types@0.1.0';
import { Context } from './context.js';
import { Fatal, fromWit, witPayload } from './errors.js';
import { guarded, parseInput } from './component.js';
import { dataValue, jsonText, toWitOutput } from './output.js';

type Awaitable<T> = T | Promise<T>;

/** What an invoked action or flow returned. */
export class InvokeResult {
  constructor(readonly raw: WitOutput) {}

  /** The data: a parsed JSON value, or a `Uint8Array`. */
  get value(): unknown {
    return dataValue(this.raw.data);
  }

  get branch(): string | undefined {
    return this.raw.branch;
  }

  get status(): number | undefined {
    return this.raw.status;
  }
}

function invokeError(thrown: unknown, what: string): Error {
  const error = witPayload<WitError>(thrown);
  // The callee's kind is kept, so a retryable failure stays retryable.
  return error ? fromWit(error).context(what) : new Fatal(`${what}: ${String(thrown)}`);
}

/** A `Context` plus calls into components and flows; each call is a step of the execution. */
export class FlowContext extends Context {
  /** Runs `action` of `component` (a component key the flow declares) with `input`. */
  invoke(component: string, action: string, input: unknown = {}): InvokeResult {
    try {
      return new InvokeResult(invoker.invoke(component, action, jsonText(input)));
    } catch (e) {
      throw invokeError(e, `invoking ${component}.${action}`);
    }
  }

  /** Runs an action and returns its JSON output. */
  invokeJson<T = unknown>(component: string, action: string, input: unknown = {}): T {
    return this.invoke(component, action, input).value as T;
  }

  /** Runs flow `name` of the same instance with `payload` and waits for its result. */
  invokeFlow(name: string, payload: unknown = {}): InvokeResult {
    try {
      return new InvokeResult(invoker.invokeFlow(name, jsonText(payload)));
    } catch (e) {
      throw invokeError(e, `invoking flow \`${name}\``);
    }
  }

  /** Queues flow `name` with `payload`; returns the child execution's id at once. */
  invokeFlowAsync(name: string, payload: unknown = {}): string {
    try {
      return invoker.invokeFlowAsync(name, jsonText(payload));
    } catch (e) {
      throw invokeError(e, `queueing flow \`${name}\``);
    }
  }
}

export type FlowTrigger =
  | { type: 'webhook' }
  | { type: 'schedule'; cron: string; timezone?: string }
  | { type: 'instance-deploy' }
  | { type: 'instance-remove' }
  | { type: 'flow' };

export interface FlowDef<P = any> {
  name: string;
  description?: string;
  /** `{type: 'webhook'}` by default. */
  trigger?: FlowTrigger;
  /** JSON Schema the payload is checked against; any JSON value when absent. */
  payload?: Record<string, unknown>;
  /** Returns any JSON value, or an `Output`. */
  run(ctx: FlowContext, payload: P): Awaitable<unknown>;
}

/**
 * Declares a code-native flow. Export the result as `codeFlow`:
 * `export const codeFlow = defineFlow({ name: 'sync', run: async (ctx, payload) => ... })`.
 */
export function defineFlow<P = any>(def: FlowDef<P>) {
  const manifest = jsonText({
    name: def.name,
    description: def.description ?? '',
    trigger: def.trigger ?? { type: 'webhook' },
  });
  return {
    declaration: def,
    manifest(): string {
      return manifest;
    },
    onExecution(ctx: ExecutionContext, payload: string) {
      return guarded(async () => {
        let parsed: unknown;
        if (def.payload) {
          parsed = parseInput(payload, def.payload, `flow \`${def.name}\``);
        } else {
          try {
            parsed = JSON.parse(payload);
          } catch {
            parsed = payload;
          }
        }
        return toWitOutput(await def.run(new FlowContext(ctx), parsed as P));
      });
    },
  };
}

export * from './index.js';
