/// <reference path="./sluice-flow-types.d.ts" />
declare module 'sluice:flow/context@0.1.0' {
  export function current(): ExecutionContext;
  export type ExecutionContext = import('sluice:flow/types@0.1.0').ExecutionContext;
}
