declare module 'sluice:flow/types@0.1.0' {
  /**
   * A JSON document as UTF-8 text. The host checks that JSON it receives parses.
   */
  export type Json = string;
  /**
   * Data a step consumes or produces: a JSON document, or raw bytes
   * (a file, a CSV export) whose meaning is given by a content type.
   */
  export type Data = DataJson | DataBytes;
  export interface DataJson {
    tag: 'json',
    val: Json,
  }
  export interface DataBytes {
    tag: 'bytes',
    val: Uint8Array,
  }
  /**
   * What an action, or a code-native flow, returns.
   * 
   * `status`, `headers` and `content-type` matter when this is the last step of a
   * synchronous invocation: they shape the HTTP response the caller receives.
   */
  export interface Output {
    data: Data,
    /**
     * MIME type of `data`; `application/json` is assumed for JSON data when absent.
     */
    contentType?: string,
    /**
     * HTTP status for a synchronous response (default 200).
     */
    status?: number,
    /**
     * Extra response headers for a synchronous response.
     */
    headers: Array<[string, string]>,
    /**
     * The branch to follow, for actions that branch.
     */
    branch?: string,
  }
  /**
   * A connection or credential problem, reported so the host can flag the connection.
   */
  export interface ConnectionProblem {
    /**
     * Config-variable key of the connection at fault (empty when unknown).
     */
    key: string,
    message: string,
  }
  /**
   * Why a guest call failed. Each kind tells the host what to do next.
   */
  export type Error = ErrorInvalidInput | ErrorConnection | ErrorRetryable | ErrorFatal;
  /**
   * The input does not satisfy the action: retrying the same input cannot succeed.
   */
  export interface ErrorInvalidInput {
    tag: 'invalid-input',
    val: string,
  }
  /**
   * Credentials are missing, expired or refused by the remote service.
   */
  export interface ErrorConnection {
    tag: 'connection',
    val: ConnectionProblem,
  }
  /**
   * A transient failure (rate limit, 5xx, timeout): the host may retry.
   */
  export interface ErrorRetryable {
    tag: 'retryable',
    val: string,
  }
  /**
   * Any other failure: do not retry.
   */
  export interface ErrorFatal {
    tag: 'fatal',
    val: string,
  }
  /**
   * Who and what an execution is. Identical to what `context.current` returns.
   */
  export interface ExecutionContext {
    executionId: string,
    tenantId: string,
    customerId?: string,
    customerExternalId?: string,
    integrationId: string,
    instanceId: string,
    /**
     * Name of the flow being executed.
     */
    flowName: string,
    /**
     * Key of the step being executed, when the call is a step of a flow.
     */
    step?: string,
    /**
     * 1 for the first attempt, 2 for the first retry, and so on.
     */
    attempt: number,
    /**
     * When the execution started, in milliseconds since the Unix epoch.
     */
    startedAtMs: bigint,
    /**
     * Webhook URL of each flow of the instance, keyed by flow name.
     */
    webhookUrls: Array<[string, string]>,
  }
  /**
   * An HTTP request received by a webhook trigger.
   */
  export interface HttpRequest {
    method: string,
    /**
     * Path after the webhook URL ("" when the URL was called as is).
     */
    path: string,
    query: Array<[string, string]>,
    /**
     * Header names are lower-cased; a name may repeat.
     */
    headers: Array<[string, string]>,
    body: Uint8Array,
  }
  /**
   * An HTTP response a trigger sends back to the webhook caller.
   */
  export interface HttpResponse {
    status: number,
    headers: Array<[string, string]>,
    contentType?: string,
    body: Uint8Array,
  }
  /**
   * A trigger accepted the request: the flow runs with `payload`.
   */
  export interface TriggerAccept {
    /**
     * What later steps see as the trigger's result (the request body, possibly rewritten).
     */
    payload: Data,
    /**
     * The branch to follow, for triggers that branch.
     */
    branch?: string,
    /**
     * Response for the caller; when absent the host answers with the execution id.
     */
    response?: HttpResponse,
  }
  /**
   * What a trigger decided about a request.
   */
  export type TriggerOutcome = TriggerOutcomeAccept | TriggerOutcomeRespond;
  /**
   * Run the flow.
   */
  export interface TriggerOutcomeAccept {
    tag: 'accept',
    val: TriggerAccept,
  }
  /**
   * Do not run the flow; answer the caller with this response
   * (a rejected signature, or a verification challenge).
   */
  export interface TriggerOutcomeRespond {
    tag: 'respond',
    val: HttpResponse,
  }
}
