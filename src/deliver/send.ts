/**
 * Sends one rendered webhook request, retrying what may succeed later.
 *
 *   2xx                       delivered
 *   3xx                       failed for good; never followed (PBXHOOK_HTTP_REDIRECT)
 *   408, 429, 5xx             retried, honouring Retry-After within [min, max]
 *   other 4xx                 failed for good (PBXHOOK_HTTP_STATUS, retryable false)
 *   timeout, reset, refused…  retried (PBXHOOK_HTTP_TIMEOUT / PBXHOOK_HTTP_NETWORK)
 *
 * Errors come back as values in DeliveryResult, never as rejections. One log line per
 * attempt; headers are never logged (they hold the bearer token), URLs lose their query.
 */
import http from 'node:http';
import https from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import axios, { type AxiosResponse } from 'axios';
import pRetry, { AbortError } from 'p-retry';
import type { Logger } from 'pino';
import type { RetryConfig } from '../config/types.js';
import type { WebhookRequest } from '../emit/request.js';
import { parseRetryAfter, retryDelayMs } from './backoff.js';
import {
  DeliveryAbortedError,
  type DeliveryError,
  HttpNetworkError,
  HttpRedirectError,
  HttpStatusError,
  HttpTimeoutError,
} from './errors.js';

export { createOrderedDispatcher, type OrderedDispatcher, type SendFn } from './ordered.js';

export type DeliveryResult =
  | { readonly ok: true; readonly endpoint: string; readonly status: number; readonly attempts: number }
  | { readonly ok: false; readonly endpoint: string; readonly error: DeliveryError; readonly attempts: number };

export interface SenderOptions {
  readonly retry: RetryConfig;
  readonly log: Logger;
  /** Endpoint name → bearer token. */
  readonly tokens: ReadonlyMap<string, string>;
  /** Shutdown: no new attempts or waits after abort; undelivered requests resolve as failed. */
  readonly signal?: AbortSignal;
  /** Jitter source; tests pass a constant. */
  readonly random?: () => number;
}

/** Counters for metrics and tests. */
export interface SenderStats {
  attempts: number;
  delivered: number;
  retried: number;
  failed: number;
}

export interface Sender {
  (req: WebhookRequest): Promise<DeliveryResult>;
  readonly stats: Readonly<SenderStats>;
  /** Closes idle keep-alive sockets. */
  close(): void;
}

/** Client-side faults that the same request would hit again. */
const PERMANENT_NETWORK_CODES = new Set([
  'ERR_INVALID_URL',
  'ERR_BAD_OPTION',
  'ERR_BAD_OPTION_VALUE',
  'ERR_NOT_SUPPORT',
  'ERR_INVALID_CHAR',
  'ERR_INVALID_HTTP_TOKEN',
  'ERR_UNESCAPED_CHARACTERS',
]);

type Outcome = { readonly ok: true; readonly status: number } | { readonly ok: false; readonly error: DeliveryError };

export function createSender(opts: SenderOptions): Sender {
  const { retry, log, tokens, signal, random = Math.random } = opts;
  const stats: SenderStats = { attempts: 0, delivered: 0, retried: 0, failed: 0 };
  const httpAgent = new http.Agent({ keepAlive: true });
  const httpsAgent = new https.Agent({ keepAlive: true });
  const client = axios.create({
    httpAgent,
    httpsAgent,
    maxRedirects: 0,
    validateStatus: () => true,
    // axios's timeout is a socket idle timer; the AbortSignal per attempt bounds the whole exchange.
    timeout: retry.timeoutMs,
    transitional: { clarifyTimeoutError: true },
    // The body is already the exact wire text; the answer is only logged, never parsed.
    transformRequest: [(data: unknown) => data],
    transformResponse: [(data: unknown) => data],
    responseType: 'text',
  });

  async function attemptOnce(req: WebhookRequest, attempt: number): Promise<Outcome> {
    stats.attempts++;
    const started = performance.now();
    const deadline = AbortSignal.timeout(retry.timeoutMs);
    let outcome: Outcome;
    let response: AxiosResponse<unknown> | undefined;
    try {
      const res = await client.request<unknown>({
        method: req.method,
        url: req.url,
        headers: withAuthorization(req, tokens.get(req.endpoint)),
        data: req.body === '' ? undefined : req.body,
        signal: deadline,
      });
      response = res;
      outcome = classifyResponse(req.endpoint, res);
    } catch (err) {
      outcome = { ok: false, error: classifyFailure(req.endpoint, err, deadline.aborted, retry.timeoutMs) };
    }
    const retryable = !outcome.ok && outcome.error.retryable;
    const fields = {
      endpoint: req.endpoint,
      method: req.method,
      url: urlForLog(req.url),
      attempt,
      status: response?.status,
      latencyMs: Math.round(performance.now() - started),
      retryable,
      willRetry: retryable && attempt <= retry.retries && signal?.aborted !== true,
      ...(outcome.ok ? {} : { code: outcome.error.code, body: bodyForLog(response, req, tokens) }),
    };
    if (outcome.ok) log.info(fields, 'webhook delivered');
    else log.warn(fields, 'webhook attempt failed');
    return outcome;
  }

  async function send(req: WebhookRequest): Promise<DeliveryResult> {
    let attempts = 0;
    let last: DeliveryError | undefined;
    try {
      const status = await pRetry(
        async (attempt) => {
          if (signal?.aborted) throw new AbortError(last ?? new DeliveryAbortedError(req.endpoint));
          attempts = attempt;
          const outcome = await attemptOnce(req, attempt);
          if (outcome.ok) return outcome.status;
          last = outcome.error;
          throw outcome.error.retryable ? outcome.error : new AbortError(outcome.error);
        },
        {
          retries: retry.retries,
          // The wait is ours (onFailedAttempt): `retry` fixes its timeouts up front and so
          // cannot honour a Retry-After that only arrives with the response.
          minTimeout: 0,
          maxTimeout: 0,
          onFailedAttempt: async (err) => {
            if (err.retriesLeft <= 0 || signal?.aborted) return;
            stats.retried++;
            const retryAfter = err instanceof HttpStatusError ? err.retryAfterMs : undefined;
            await sleep(retryDelayMs(err.attemptNumber, retry, retryAfter, random), undefined, { signal }).catch(
              () => undefined, // aborted: the next attempt sees the signal and stops
            );
          },
        },
      );
      stats.delivered++;
      return { ok: true, endpoint: req.endpoint, status, attempts };
    } catch {
      // p-retry rejects with the most frequent error, not the latest; report the latest.
      stats.failed++;
      return { ok: false, endpoint: req.endpoint, error: last ?? new DeliveryAbortedError(req.endpoint), attempts };
    }
  }

  return Object.assign(send, {
    stats,
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  });
}

/** A renderer may have set Authorization itself; then it is left alone. */
function withAuthorization(req: WebhookRequest, token: string | undefined): Record<string, string> {
  const headers: Record<string, string> = { ...req.headers };
  const has = (name: string) => Object.keys(headers).some((k) => k.toLowerCase() === name);
  if (token !== undefined && !has('authorization')) headers['Authorization'] = `Bearer ${token}`;
  if (!has('user-agent')) headers['User-Agent'] = 'pbxhook';
  return headers;
}

function classifyResponse(endpoint: string, res: AxiosResponse<unknown>): Outcome {
  const { status } = res;
  if (status >= 200 && status < 300) return { ok: true, status };
  if (status >= 300 && status < 400) {
    const location = header(res, 'location');
    return { ok: false, error: new HttpRedirectError(endpoint, status, location && urlForLog(location)) };
  }
  const retryAfter = parseRetryAfter(header(res, 'retry-after'), Date.now());
  return { ok: false, error: new HttpStatusError(endpoint, status, retryAfter) };
}

function classifyFailure(endpoint: string, err: unknown, deadlinePassed: boolean, timeoutMs: number): DeliveryError {
  const code = (err as { code?: unknown }).code;
  if (deadlinePassed || code === 'ETIMEDOUT') return new HttpTimeoutError(endpoint, timeoutMs);
  const name = typeof code === 'string' ? code : 'UNKNOWN';
  return new HttpNetworkError(endpoint, name, !PERMANENT_NETWORK_CODES.has(name));
}

function header(res: AxiosResponse<unknown>, name: string): string | undefined {
  const value: unknown = res.headers[name];
  return typeof value === 'string' ? value : undefined;
}

/** Scheme, host and path only: userinfo and query strings may carry credentials. */
export function urlForLog(url: string): string {
  if (!URL.canParse(url)) return '(invalid URL)';
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

/** The start of an error answer helps debugging; any token echoed back is masked. */
function bodyForLog(
  res: AxiosResponse<unknown> | undefined,
  req: WebhookRequest,
  tokens: ReadonlyMap<string, string>,
): string | undefined {
  if (typeof res?.data !== 'string' || res.data === '') return undefined;
  let text = res.data.slice(0, 200);
  const auth = Object.entries(req.headers).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
  const secrets = [tokens.get(req.endpoint), auth?.replace(/^\S+\s+/, '')]
    .filter((x): x is string => x !== undefined && x.length >= 4)
    .sort((a, b) => b.length - a.length); // longest first, so a prefix cannot leave a tail behind
  for (const s of secrets) text = text.replaceAll(s, '***');
  return text;
}
