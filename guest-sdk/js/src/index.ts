// @sluice/sdk: components (connectors) for Sluice in TypeScript. Code-native flows are
// in `@sluice/sdk/flow`, which re-exports all of this too.

export { defineComponent, manifestOf, picklistItem } from './component.js';
export type {
  ActionDef,
  ComponentDef,
  ConnectionTypeDef,
  DataSourceDef,
  DataSourceType,
  OAuth2Def,
  SynchronousResponse,
  TriggerDef,
} from './component.js';
export { Connection, Context, State, StateScope } from './context.js';
export type { OAuthToken, Scope } from './context.js';
export {
  ConnectionError,
  Fatal,
  InvalidInput,
  Retryable,
  SluiceError,
  toSluiceError,
} from './errors.js';
export type { ErrorKind } from './errors.js';
export * as hmac from './hmac.js';
export { http, HttpResponse, statusError } from './http.js';
export type { RequestOptions } from './http.js';
export { log } from './log.js';
export type { Fields, Logger } from './log.js';
export { Output, jsonText } from './output.js';
export type { JsonSchema } from './schema.js';
export { Request, TriggerResponse } from './trigger.js';
export type { HttpResponse as TriggerHttpResponse } from './trigger.js';
