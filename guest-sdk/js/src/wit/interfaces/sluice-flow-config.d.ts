/// <reference path="./sluice-flow-types.d.ts" />
declare module 'sluice:flow/config@0.1.0' {
  export function get(key: string): Json | undefined;
  /**
   * Every config variable, sorted by key.
   */
  export function all(): Array<[string, Json]>;
  export type Json = import('sluice:flow/types@0.1.0').Json;
}
