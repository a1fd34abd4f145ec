// A connector declared once: `defineComponent` takes the component's actions,
// triggers, data sources and connection types, and returns the `connector` export
// componentize-js binds to `sluice:flow/connector`: it writes the manifest from the
// declaration, parses and checks inputs against the declared schemas, dispatches by
// key and turns whatever a handler throws into the WIT error variant.

import type {
  Error as WitError,
  ExecutionContext,
  HttpRequest,
  Output as WitOutput,
  TriggerOutcome,
} from 'sluice:flow/types@0.1.0';
import { Context } from './context.js';
import { InvalidInput, SluiceError, toSluiceError } from './errors.js';
import { jsonText, toWitOutput } from './output.js';
import { validate, type JsonSchema } from './schema.js';
import { Request, TriggerResponse } from './trigger.js';

type Awaitable<T> = T | Promise<T>;
type Result<T> = { tag: 'ok'; val: T } | { tag: 'err'; val: WitError };

interface Display {
  /** Shown in the designer; defaults to the key. */
  label?: string;
  description?: string;
}

/** An action: `run` returns any JSON value, or an `Output`. */
export interface ActionDef<I = any> extends Display {
  /** JSON Schema (draft 2020-12) of the input object; `{"type":"object"}` when absent. */
  inputs?: JsonSchema;
  /** Branches `run` may return in `Output.branch`. */
  branches?: string[];
  run(ctx: Context, input: I): Awaitable<unknown>;
}

export type SynchronousResponse = 'invalid' | 'valid' | 'required';

/** A webhook trigger, with optional instance hooks (which must be idempotent). */
export interface TriggerDef<I = any> extends Display {
  inputs?: JsonSchema;
  branches?: string[];
  /** Whether the flow may be invoked synchronously; `valid` by default. */
  synchronousResponse?: SynchronousResponse;
  run(ctx: Context, request: Request, inputs: I): Awaitable<TriggerResponse>;
  /** Runs when an instance using the trigger is deployed (e.g. registers a webhook). */
  onDeploy?(ctx: Context, inputs: I): Awaitable<void>;
  /** Runs when an instance using the trigger is removed. */
  onRemove?(ctx: Context, inputs: I): Awaitable<void>;
}

export type DataSourceType =
  | 'string'
  | 'date'
  | 'timestamp'
  | 'picklist'
  | 'schedule'
  | 'code'
  | 'boolean'
  | 'number'
  | 'objectSelection'
  | 'objectFieldMap'
  | 'jsonForm';

/** A data source: `run` returns its result as a JSON value (`picklist` by default). */
export interface DataSourceDef<I = any> extends Display {
  inputs?: JsonSchema;
  kind?: DataSourceType;
  run(ctx: Context, input: I): Awaitable<unknown>;
}

/** An entry of a picklist data source. */
export function picklistItem(key: string, label: string): { key: string; label: string } {
  return { key, label };
}

/** An OAuth 2.0 connection the host runs (docs/manifest.md). */
export interface OAuth2Def {
  grantType: 'authorizationCode' | 'clientCredentials';
  authorizeUrl?: string;
  tokenUrl: string;
  refreshUrl?: string;
  revokeUrl?: string;
  scopes?: string;
  pkce?: 'S256' | 'none';
  tokenRequest?: { body: 'form' | 'json'; clientAuth: 'basic' | 'body' };
}

/** A connection type the component accepts; the first is the default. */
export interface ConnectionTypeDef extends Display {
  key: string;
  /** Passed to the guest as `connection.kind` ("api-key", "oauth2", ...). */
  kind: string;
  /** JSON Schema of the connection's fields. */
  inputs?: JsonSchema;
  oauth2?: OAuth2Def;
}

export interface ComponentDef extends Display {
  key: string;
  version: string;
  iconPath?: string;
  actions?: Record<string, ActionDef>;
  triggers?: Record<string, TriggerDef>;
  dataSources?: Record<string, DataSourceDef>;
  connections?: ConnectionTypeDef[];
}

const OBJECT: JsonSchema = { type: 'object' };

function display(key: string, def: Display) {
  return { label: def.label ?? key, description: def.description ?? null };
}

/** Object keys in order, so the manifest reads the same however it was declared. */
function sorted<T>(map: Record<string, T> | undefined): Array<[string, T]> {
  return Object.entries(map ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The manifest of a declaration, as docs/manifest.md describes it. */
export function manifestOf(def: ComponentDef): Record<string, unknown> {
  const componentDisplay: Record<string, unknown> = display(def.key, def);
  if (def.iconPath !== undefined) {
    componentDisplay.iconPath = def.iconPath;
  }
  const branches = (names?: string[]) => ({ allowsBranching: names !== undefined, staticBranchNames: names ?? [] });
  return {
    key: def.key,
    version: def.version,
    display: componentDisplay,
    actions: Object.fromEntries(
      sorted(def.actions).map(([key, action]) => [
        key,
        { display: display(key, action), inputs: action.inputs ?? OBJECT, ...branches(action.branches) },
      ]),
    ),
    triggers: Object.fromEntries(
      sorted(def.triggers).map(([key, trigger]) => [
        key,
        {
          display: display(key, trigger),
          inputs: trigger.inputs ?? OBJECT,
          synchronousResponse: trigger.synchronousResponse ?? 'valid',
          hasInstanceHooks: trigger.onDeploy !== undefined || trigger.onRemove !== undefined,
          // As in the Rust SDK: only branching triggers carry the branch fields.
          ...(trigger.branches ? branches(trigger.branches) : {}),
        },
      ]),
    ),
    dataSources: Object.fromEntries(
      sorted(def.dataSources).map(([key, source]) => [
        key,
        { display: display(key, source), inputs: source.inputs ?? OBJECT, dataSourceType: source.kind ?? 'picklist' },
      ]),
    ),
    connections: (def.connections ?? []).map((connection) => ({
      key: connection.key,
      kind: connection.kind,
      display: display(connection.key, connection),
      inputs: connection.inputs ?? OBJECT,
      ...(connection.oauth2 ? { oauth2: connection.oauth2 } : {}),
    })),
  };
}

/** Parses a call's input and checks it against `schema` (no input or `null` is `{}`). */
export function parseInput(text: string, schema: JsonSchema | undefined, what: string): unknown {
  let value: unknown;
  try {
    value = text.trim() === '' ? null : JSON.parse(text);
  } catch (e) {
    throw new InvalidInput(`invalid input of ${what}: not JSON: ${String(e)}`);
  }
  if (value === null) {
    value = {};
  }
  const checked = validate(schema ?? OBJECT, value);
  if ('problem' in checked) {
    throw new InvalidInput(`invalid input of ${what} ${checked.problem}`);
  }
  return checked.value;
}

function lookup<T>(map: Record<string, T> | undefined, key: string, kind: string): T {
  const found = map && Object.prototype.hasOwnProperty.call(map, key) ? map[key] : undefined;
  if (found === undefined) {
    const known = Object.keys(map ?? {})
      .sort()
      .map((k) => `\`${k}\``);
    throw new InvalidInput(`unknown ${kind} \`${key}\` (known: ${known.length ? known.join(', ') : 'none'})`);
  }
  return found;
}

/** Runs `f`, turning anything it throws into the WIT error variant. */
export async function guarded<T>(f: () => Awaitable<T>): Promise<Result<T>> {
  try {
    return { tag: 'ok', val: await f() };
  } catch (e) {
    const error: SluiceError = toSluiceError(e);
    return { tag: 'err', val: error.toWit() };
  }
}

/**
 * Declares a component. Export the result as `connector`:
 * `export const connector = defineComponent({ key: 'acme', ... })`.
 */
export function defineComponent(def: ComponentDef) {
  const manifest = jsonText(manifestOf(def));
  return {
    /** The declaration, for tests and tools. */
    declaration: def,
    manifest(): string {
      return manifest;
    },
    runAction(ctx: ExecutionContext, name: string, input: string): Promise<Result<WitOutput>> {
      return guarded(async () => {
        const action = lookup(def.actions, name, 'action');
        const parsed = parseInput(input, action.inputs, `action \`${name}\``);
        return toWitOutput(await action.run(new Context(ctx), parsed));
      });
    },
    runTrigger(ctx: ExecutionContext, name: string, request: HttpRequest, inputs: string): Promise<Result<TriggerOutcome>> {
      return guarded(async () => {
        const trigger = lookup(def.triggers, name, 'trigger');
        const parsed = parseInput(inputs, trigger.inputs, `trigger \`${name}\``);
        const response = await trigger.run(new Context(ctx), new Request(request), parsed);
        if (!(response instanceof TriggerResponse)) {
          throw new TypeError(`trigger \`${name}\` must return a TriggerResponse`);
        }
        return response.toWit();
      });
    },
    runDataSource(ctx: ExecutionContext, name: string, input: string): Promise<Result<string>> {
      return guarded(async () => {
        const source = lookup(def.dataSources, name, 'data source');
        const parsed = parseInput(input, source.inputs, `data source \`${name}\``);
        return jsonText(await source.run(new Context(ctx), parsed));
      });
    },
    onInstanceDeploy(ctx: ExecutionContext, name: string, inputs: string): Promise<Result<void>> {
      return guarded(async () => {
        const trigger = lookup(def.triggers, name, 'trigger');
        const parsed = parseInput(inputs, trigger.inputs, `trigger \`${name}\``);
        await trigger.onDeploy?.(new Context(ctx), parsed);
      });
    },
    onInstanceRemove(ctx: ExecutionContext, name: string, inputs: string): Promise<Result<void>> {
      return guarded(async () => {
        const trigger = lookup(def.triggers, name, 'trigger');
        const parsed = parseInput(inputs, trigger.inputs, `trigger \`${name}\``);
        await trigger.onRemove?.(new Context(ctx), parsed);
      });
    },
  };
}
