/// <reference path="./sluice-flow-types.d.ts" />
declare module 'sluice:flow/code-flow@0.1.0' {
  /**
   * JSON manifest of the flow: name, description, trigger.
   */
  export function manifest(): Json;
  /**
   * Runs one execution with the trigger's payload.
   */
  export function onExecution(ctx: ExecutionContext, payload: Json): Output;
  export type Json = import('sluice:flow/types@0.1.0').Json;
  export type Output = import('sluice:flow/types@0.1.0').Output;
  export type Error = import('sluice:flow/types@0.1.0').Error;
  export type ExecutionContext = import('sluice:flow/types@0.1.0').ExecutionContext;
}
