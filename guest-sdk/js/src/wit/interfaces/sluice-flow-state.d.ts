/// <reference path="./sluice-flow-types.d.ts" />
declare module 'sluice:flow/state@0.1.0' {
  export function get(scope: Scope, key: string): Json | undefined;
  export function set(scope: Scope, key: string, value: Json): void;
  /**
   * Returns whether the key existed.
   */
  export { _delete as delete };
  function _delete(scope: Scope, key: string): boolean;
  /**
   * Atomically replaces the value when the current one equals `expected`
   * (`none`: the key must be absent). `new` of `none` deletes the key.
   * Returns whether the swap happened.
   */
  export function compareAndSwap(scope: Scope, key: string, expected: Json | undefined, new_: Json | undefined): boolean;
  export type Json = import('sluice:flow/types@0.1.0').Json;
  /**
   * # Variants
   * 
   * ## `"execution"`
   * 
   * This execution only: an accumulator across the steps of one run.
   * ## `"flow"`
   * 
   * One flow of one instance, across executions.
   * ## `"instance"`
   * 
   * All flows of one instance.
   * ## `"integration"`
   * 
   * All instances of the same integration, across customers.
   */
  export type Scope = 'execution' | 'flow' | 'instance' | 'integration';
  export type StateError = StateErrorTooLarge | StateErrorInvalidJson | StateErrorUnavailable | StateErrorQuotaExceeded;
  /**
   * The key or value exceeds the host's size limit; the message gives the limit.
   */
  export interface StateErrorTooLarge {
    tag: 'too-large',
    val: string,
  }
  /**
   * The value is not a JSON document.
   */
  export interface StateErrorInvalidJson {
    tag: 'invalid-json',
    val: string,
  }
  /**
   * The state store could not be reached; retrying later may succeed.
   */
  export interface StateErrorUnavailable {
    tag: 'unavailable',
    val: string,
  }
  /**
   * The write would take the instance's (or the tenant's) state past its quota
   * of bytes or keys; the message names the quota. Deleting keys frees room.
   */
  export interface StateErrorQuotaExceeded {
    tag: 'quota-exceeded',
    val: string,
  }
}
