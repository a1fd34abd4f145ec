/// <reference path="./sluice-flow-types.d.ts" />
declare module 'sluice:flow/connections@0.1.0' {
  export function get(key: string): Connection;
  export type Json = import('sluice:flow/types@0.1.0').Json;
  export interface OauthToken {
    accessToken: string,
    tokenType: string,
    /**
     * Expiry in milliseconds since the Unix epoch, when known.
     */
    expiresAtMs?: bigint,
    scopes: Array<string>,
  }
  export interface Connection {
    /**
     * Config-variable key of the connection.
     */
    key: string,
    /**
     * Connection type, as declared in the component manifest (e.g. "api-key", "oauth2").
     */
    kind: string,
    /**
     * The connection's input fields as a JSON object (e.g. {"apiKey": "...", "subdomain": "..."}).
     */
    fields: Json,
    token?: OauthToken,
  }
  export type ConnectionError = ConnectionErrorNotFound | ConnectionErrorExpired | ConnectionErrorUnavailable;
  /**
   * No connection with this key is configured for the instance.
   */
  export interface ConnectionErrorNotFound {
    tag: 'not-found',
    val: string,
  }
  /**
   * The credential expired and could not be refreshed.
   */
  export interface ConnectionErrorExpired {
    tag: 'expired',
    val: string,
  }
  /**
   * The credential store could not be reached.
   */
  export interface ConnectionErrorUnavailable {
    tag: 'unavailable',
    val: string,
  }
}
