/**
 * What happens to a webhook after one attempt: pure, so the whole retry policy is testable without
 * sockets or clocks. The schedule is configuration (`retry.schedule`), as in Svix; the step reached
 * is stored with the webhook, so a restart continues the schedule instead of starting it over.
 */
import type { DeliveryConfig } from '../config/types.js';
import type { AttemptResult } from './attempt.js';
import { HttpStatusError } from './errors.js';

export type RetryPolicy = Pick<DeliveryConfig, 'schedule' | 'jitter' | 'retryAfterMaxMs'>;

export type Decision =
  | { readonly kind: 'delivered' }
  /** failed_waiting until `at`; `step` failed attempts so far in this schedule. */
  | { readonly kind: 'retry'; readonly at: number; readonly step: number }
  | { readonly kind: 'dead'; readonly reason: string }
  /** Cut off by shutdown: not the endpoint's fault, so pending again with the schedule untouched. */
  | { readonly kind: 'requeue' };

export interface AttemptContext {
  /** Failed attempts so far in this schedule (0 before the first retry). */
  readonly step: number;
  /** The endpoint is paused and this was its probe: a failure does not use up a step. */
  readonly probe: boolean;
  /** The endpoint's `retry_on`: 4xx statuses retried like 5xx. */
  readonly retryOn: readonly number[];
}

/** Whether a failure may succeed later: the error's own verdict, widened by the endpoint's retry_on. */
export function isRetryable(result: AttemptResult, retryOn: readonly number[]): boolean {
  if (result.ok) return false;
  const { error } = result;
  return error.retryable || (error instanceof HttpStatusError && retryOn.includes(error.status));
}

export function decide(result: AttemptResult, ctx: AttemptContext, policy: RetryPolicy, now: number, random: () => number): Decision {
  if (result.ok) return { kind: 'delivered' };
  const { error } = result;
  if (error.code === 'PBXHOOK_HTTP_ABORTED') return { kind: 'requeue' };
  if (!isRetryable(result, ctx.retryOn)) return { kind: 'dead', reason: `${error.code}: ${error.message} (permanent)` };
  if (ctx.probe) return { kind: 'retry', at: now, step: ctx.step };
  if (ctx.step >= policy.schedule.length) {
    return { kind: 'dead', reason: `${error.code}: ${error.message} (retry schedule of ${policy.schedule.length} retries used up)` };
  }
  const retryAfter = error instanceof HttpStatusError ? error.retryAfterMs : undefined;
  return { kind: 'retry', at: now + waitMs(ctx.step, policy, retryAfter, random), step: ctx.step + 1 };
}

/**
 * The wait after failed attempt `step + 1`: the schedule's step scaled by jitter (so a fleet of
 * webhooks that failed together does not retry together), or longer if Retry-After asks for it —
 * up to retryAfterMaxMs, so a broken header cannot park a webhook for days.
 */
export function waitMs(step: number, policy: RetryPolicy, retryAfterMs: number | undefined, random: () => number): number {
  const base = policy.schedule[Math.min(step, policy.schedule.length - 1)] ?? 0;
  const jittered = Math.round(base * (1 + policy.jitter * (2 * random() - 1)));
  if (retryAfterMs === undefined) return jittered;
  return Math.max(jittered, Math.min(retryAfterMs, policy.retryAfterMaxMs));
}
