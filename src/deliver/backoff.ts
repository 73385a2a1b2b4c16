/**
 * How long to wait before the next delivery attempt: exponential backoff with jitter, or
 * what the endpoint asked for in Retry-After, always within [minTimeoutMs, maxTimeoutMs]
 * so a hostile or broken header can neither hammer the endpoint nor park the queue for a day.
 */
import type { RetryConfig } from '../config/types.js';

/** RFC 9110 §10.2.3: `Retry-After = HTTP-date / delay-seconds`. Returns milliseconds, or undefined. */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

/**
 * Wait after failed attempt `attempt` (1-based). Same shape as the `retry` package's
 * randomized timeouts that p-retry uses: min · 2^(attempt-1) · [1, 2), capped at max.
 */
export function retryDelayMs(
  attempt: number,
  retry: Pick<RetryConfig, 'minTimeoutMs' | 'maxTimeoutMs'>,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  const { minTimeoutMs: min, maxTimeoutMs: max } = retry;
  if (retryAfterMs !== undefined) return Math.min(max, Math.max(min, retryAfterMs));
  const base = min * 2 ** Math.max(0, attempt - 1);
  return Math.min(max, Math.round(base * (1 + random())));
}
