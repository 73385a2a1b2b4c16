/**
 * Why a webhook delivery attempt failed. One class per failure with a stable `code`
 * (as undici does) and the one bit delivery must decide on: `retryable`.
 *
 * | code                    | retryable | when                                              |
 * |-------------------------|-----------|---------------------------------------------------|
 * | PBXHOOK_HTTP_STATUS     | 408/429/5xx yes, other 4xx no | the endpoint answered non-2xx |
 * | PBXHOOK_HTTP_REDIRECT   | no        | 3xx: never followed (the body would go elsewhere) |
 * | PBXHOOK_HTTP_TIMEOUT    | yes       | no connection / no complete answer in time        |
 * | PBXHOOK_HTTP_NETWORK    | mostly    | refused, reset, DNS…; no for a malformed request  |
 * | PBXHOOK_HTTP_ABORTED    | yes       | shutdown stopped it before it was delivered       |
 *
 * Messages carry the URL without its query string and never a header, so they are safe to log.
 */

export type DeliveryErrorCode =
  | 'PBXHOOK_HTTP_STATUS'
  | 'PBXHOOK_HTTP_REDIRECT'
  | 'PBXHOOK_HTTP_TIMEOUT'
  | 'PBXHOOK_HTTP_NETWORK'
  | 'PBXHOOK_HTTP_ABORTED';

export abstract class DeliveryError extends Error {
  abstract readonly code: DeliveryErrorCode;
  abstract readonly retryable: boolean;
  /** The endpoint (ini section) the request was for. */
  readonly endpoint: string;

  constructor(endpoint: string, message: string) {
    super(message);
    this.endpoint = endpoint;
  }
}

/** RFC 9110 §15.5.9 408 and RFC 6585 §4 429 ask the client to try again; so do 5xx. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

export class HttpStatusError extends DeliveryError {
  override readonly name = 'HttpStatusError';
  readonly code = 'PBXHOOK_HTTP_STATUS';
  readonly retryable: boolean;
  readonly status: number;
  /** The wait the endpoint asked for with Retry-After, before clamping. */
  readonly retryAfterMs: number | undefined;

  constructor(endpoint: string, status: number, retryAfterMs?: number) {
    super(endpoint, `${endpoint}: HTTP ${status}`);
    this.status = status;
    this.retryable = isRetryableStatus(status);
    this.retryAfterMs = retryAfterMs;
  }
}

export class HttpRedirectError extends DeliveryError {
  override readonly name = 'HttpRedirectError';
  readonly code = 'PBXHOOK_HTTP_REDIRECT';
  readonly retryable = false;
  readonly status: number;
  /** Where it pointed, without query string; fix the endpoint URL in webhooks.ini to this. */
  readonly location: string | undefined;

  constructor(endpoint: string, status: number, location?: string) {
    super(endpoint, `${endpoint}: HTTP ${status} redirect${location ? ` to ${location}` : ''} not followed`);
    this.status = status;
    this.location = location;
  }
}

export class HttpTimeoutError extends DeliveryError {
  override readonly name = 'HttpTimeoutError';
  readonly code = 'PBXHOOK_HTTP_TIMEOUT';
  readonly retryable = true;
  readonly timeoutMs: number;
  /** `connect`: no TCP/TLS connection (retry.connect_timeout_ms); `response`: no complete answer. */
  readonly phase: 'connect' | 'response';

  constructor(endpoint: string, timeoutMs: number, phase: 'connect' | 'response' = 'response') {
    super(endpoint, `${endpoint}: ${phase === 'connect' ? 'no connection' : 'no answer'} within ${timeoutMs} ms`);
    this.timeoutMs = timeoutMs;
    this.phase = phase;
  }
}

export class HttpNetworkError extends DeliveryError {
  override readonly name = 'HttpNetworkError';
  readonly code = 'PBXHOOK_HTTP_NETWORK';
  readonly retryable: boolean;
  /** The system or client code: ECONNREFUSED, ECONNRESET, ENOTFOUND, ERR_INVALID_URL… */
  readonly systemCode: string;

  constructor(endpoint: string, systemCode: string, retryable: boolean) {
    super(endpoint, `${endpoint}: network error ${systemCode}`);
    this.systemCode = systemCode;
    this.retryable = retryable;
  }
}

export class DeliveryAbortedError extends DeliveryError {
  override readonly name = 'DeliveryAbortedError';
  readonly code = 'PBXHOOK_HTTP_ABORTED';
  readonly retryable = true;

  constructor(endpoint: string) {
    super(endpoint, `${endpoint}: stopped by shutdown before delivery`);
  }
}
