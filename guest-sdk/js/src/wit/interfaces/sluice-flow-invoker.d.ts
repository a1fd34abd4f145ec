/// <reference path="./sluice-flow-types.d.ts" />
declare module 'sluice:flow/invoker@0.1.0' {
  /**
   * Runs `action` of `component` (a component key the flow declares) with `input`.
   */
  export function invoke(component: string, action: string, input: Json): Output;
  /**
   * Runs another flow of the same instance with `payload` and returns its result
   * (the child's response), waiting within the host's synchronous deadline. The
   * child execution records this execution as its parent.
   */
  export function invokeFlow(name: string, payload: Json): Output;
  /**
   * Queues another flow of the same instance with `payload` and returns the child
   * execution's id at once, without waiting for it to run.
   */
  export function invokeFlowAsync(name: string, payload: Json): string;
  export type Json = import('sluice:flow/types@0.1.0').Json;
  export type Output = import('sluice:flow/types@0.1.0').Output;
  export type Error = import('sluice:flow/types@0.1.0').Error;
}
