/// <reference path="./sluice-flow-types.d.ts" />
declare module 'sluice:flow/connector@0.1.0' {
  /**
   * JSON manifest: key, version, display, actions, triggers and data sources with
   * their input schemas, and accepted connection types. See docs/manifest.md.
   */
  export function manifest(): Json;
  export function runAction(ctx: ExecutionContext, action: string, input: Json): Output;
  /**
   * Handles a webhook request for `trigger`: verify, reject, rewrite, branch or respond.
   */
  export function runTrigger(ctx: ExecutionContext, trigger: string, request: HttpRequest, inputs: Json): TriggerOutcome;
  /**
   * Returns the data source's result (e.g. a picklist) as JSON.
   */
  export function runDataSource(ctx: ExecutionContext, name: string, input: Json): Json;
  /**
   * Runs when an instance using `trigger` is deployed. Must be idempotent.
   */
  export function onInstanceDeploy(ctx: ExecutionContext, trigger: string, inputs: Json): void;
  /**
   * Runs when an instance using `trigger` is removed.
   */
  export function onInstanceRemove(ctx: ExecutionContext, trigger: string, inputs: Json): void;
  export type Json = import('sluice:flow/types@0.1.0').Json;
  export type Output = import('sluice:flow/types@0.1.0').Output;
  export type Error = import('sluice:flow/types@0.1.0').Error;
  export type ExecutionContext = import('sluice:flow/types@0.1.0').ExecutionContext;
  export type HttpRequest = import('sluice:flow/types@0.1.0').HttpRequest;
  export type TriggerOutcome = import('sluice:flow/types@0.1.0').TriggerOutcome;
}
