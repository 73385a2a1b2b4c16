/**
 * Sends one rendered webhook request, retrying in process (p-retry) what may succeed later. The
 * daemon delivers through the durable outbox instead (outbox-worker.ts); both share attempt.ts.
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
import { setTimeout as sleep } from 'node:timers/promises';
import pRetry, { AbortError } from 'p-retry';
import type { Logger } from 'pino';
import type { RetryConfig } from '../config/types.js';
import type { WebhookRequest } from '../emit/request.js';
import { createHttpClient, urlForLog } from './attempt.js';
import { retryDelayMs } from './backoff.js';
import { DeliveryAbortedError, type DeliveryError, HttpStatusError } from './errors.js';

export { urlForLog } from './attempt.js';
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

export function createSender(opts: SenderOptions): Sender {
  const { retry, log, tokens, signal, random = Math.random } = opts;
  const stats: SenderStats = { attempts: 0, delivered: 0, retried: 0, failed: 0 };
  const http = createHttpClient({ timeoutMs: retry.timeoutMs, tokens });

  async function attemptOnce(req: WebhookRequest, attempt: number) {
    stats.attempts++;
    const outcome = await http.attempt(req);
    const retryable = !outcome.ok && outcome.error.retryable;
    const fields = {
      endpoint: req.endpoint,
      method: req.method,
      url: urlForLog(req.url),
      attempt,
      status: outcome.status,
      latencyMs: outcome.latencyMs,
      retryable,
      willRetry: retryable && attempt <= retry.retries && signal?.aborted !== true,
      ...(outcome.ok ? {} : { code: outcome.error.code, body: outcome.body }),
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

  return Object.assign(send, { stats, close: () => http.close() });
}
