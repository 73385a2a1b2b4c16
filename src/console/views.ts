/**
 * The console's read models (issue #16 items 1, 2): plain JSON built from the outbox and the
 * worker at request time, for the page and for anyone with curl. Nothing here writes.
 */
import type { EndpointConfig } from '../config/types.js';
import type { LaneHead, OutboxRow, OutboxStore } from '../deliver/store.js';
import type { EndpointHealth } from '../deliver/outbox-state.js';
import { maskHeaders, maskUrl } from './mask.js';

export interface ConsoleSources {
  readonly store: OutboxStore;
  readonly worker: { healthOf(endpoint: string): EndpointHealth | undefined };
  /** The endpoints as configured now (a reload changes them). */
  endpoints(): readonly EndpointConfig[];
}

export type EndpointState = 'ok' | 'failing' | 'paused' | 'disabled';
export const ENDPOINT_STATES: readonly EndpointState[] = ['ok', 'failing', 'paused', 'disabled'];

/** `h`: the worker's health of the endpoint, undefined when the worker does not send to it (disabled, removed). */
export function endpointState(h: EndpointHealth | undefined): EndpointState {
  if (h === undefined) return 'disabled';
  if (h.pausedAt !== null) return 'paused';
  return h.failingSince !== null ? 'failing' : 'ok';
}

export interface EndpointView {
  readonly name: string;
  readonly state: EndpointState;
  readonly url: string;
  readonly depth: number;
  /** Seconds since the oldest undelivered webhook was queued; null when it owes nothing. */
  readonly oldestUndeliveredSeconds: number | null;
  readonly lastDeliveredAt: number | null;
  readonly lastError: { at: number; status: number | null; code: string | null; error: string; webhook: number } | null;
  readonly attemptsPerMinute: number;
  readonly dead: number;
  readonly failingSince: number | null;
  readonly pausedAt: number | null;
  readonly nextProbeAt: number | null;
}

/** Every configured endpoint, and any the outbox still holds webhooks for (removed from the config). */
export async function endpointsView(s: ConsoleSources, now: number): Promise<EndpointView[]> {
  const owed = await s.store.undeliveredByEndpoint();
  const configured = new Map(s.endpoints().map((e) => [e.name, e]));
  const names = [...new Set([...configured.keys(), ...owed.keys()])];
  const activity = await Promise.all(names.map((name) => s.store.endpointActivity(name, now - 60_000)));
  return names.map((name, i) => {
    const cfg = configured.get(name);
    // The worker knows what it sends to: the enabled endpoints and the built-in pbxhook.notify.
    const h = s.worker.healthOf(name);
    const o = owed.get(name);
    const a = activity[i]!;
    return {
      name,
      state: endpointState(h),
      url: cfg ? maskUrl(cfg.url) : h ? '(built in)' : '(not configured)',
      depth: o?.depth ?? 0,
      oldestUndeliveredSeconds: o ? Math.max(0, (now - o.oldestCreatedAt) / 1000) : null,
      lastDeliveredAt: a.lastDeliveredAt,
      lastError: a.lastError,
      attemptsPerMinute: a.attemptsSince,
      dead: a.dead,
      failingSince: h?.failingSince ?? null,
      pausedAt: h?.pausedAt ?? null,
      nextProbeAt: h?.nextProbeAt ?? null,
    };
  });
}

/** Why a webhook has not gone yet, and when it will (issue #16 item 2). */
export type Wait =
  | { readonly reason: 'done' }
  | { readonly reason: 'sending' }
  | { readonly reason: 'due'; readonly at: number }
  | { readonly reason: 'schedule' | 'retry-after'; readonly at: number; readonly step: number }
  | { readonly reason: 'behind'; readonly seq: number; readonly id: number }
  | { readonly reason: 'paused'; readonly at: number | null }
  | { readonly reason: 'disabled' };

/** `head`: the head of the row's lane (OutboxStore.laneHeads), read for the whole page at once. */
export function waitOf(s: ConsoleSources, row: OutboxRow, head: LaneHead | undefined, lastRetryAfterMs: number | null, now: number): Wait {
  if (row.state === 'delivered' || row.state === 'dead') return { reason: 'done' };
  if (row.state === 'in_flight') return { reason: 'sending' };
  if (head !== undefined && head.seq < row.seq) return { reason: 'behind', seq: head.seq, id: head.id };
  const h = s.worker.healthOf(row.endpoint);
  if (h === undefined) return { reason: 'disabled' };
  if (h.pausedAt !== null) return { reason: 'paused', at: h.nextProbeAt === null ? null : Math.max(h.nextProbeAt, row.nextAt) };
  if (row.state === 'pending' || row.nextAt <= now) return { reason: 'due', at: row.nextAt };
  // The wait came from Retry-After when the CRM asked for longer than the schedule's step.
  const askedFor = lastRetryAfterMs !== null && row.nextAt - row.updatedAt <= lastRetryAfterMs + 1000 && lastRetryAfterMs > 0;
  return { reason: askedFor ? 'retry-after' : 'schedule', at: row.nextAt, step: row.step };
}

/** One webhook's whole story: the request as sent (secrets masked), every attempt, what it waits for. */
export async function webhookView(s: ConsoleSources, id: string, now: number): Promise<unknown> {
  const [row] = await s.store.list({ ids: [id] }, 1);
  if (row === undefined) return undefined;
  const attempts = await s.store.attemptsOf(row.id);
  const [head] = await headsOf(s, [row]);
  const last = attempts.at(-1);
  const cfg = s.endpoints().find((e) => e.name === row.endpoint);
  return {
    id: row.id,
    webhookId: row.webhookId,
    pbx: row.pbx,
    endpoint: row.endpoint,
    call: row.callId,
    lane: row.lane,
    seq: row.seq,
    event: row.summary,
    state: row.state,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    nextAt: row.nextAt,
    error: row.lastError,
    wait: waitOf(s, row, head, last?.retryAfterMs ?? null, now),
    request: {
      method: row.method,
      url: maskUrl(row.url),
      headers: {
        ...maskHeaders(row.headers),
        // Added at each attempt (signing.ts, attempt.ts), shown as they go, secrets masked.
        'webhook-id': row.webhookId,
        ...(cfg?.signingSecrets?.length ? { 'webhook-signature': 'v1,****' } : {}),
        ...(cfg?.token !== undefined ? { authorization: 'Bearer ****' } : {}),
      },
      body: row.body,
    },
    attempts: attempts.map((a) => ({
      n: a.n,
      startedAt: a.startedAt,
      latencyMs: a.latencyMs,
      status: a.status,
      errorCode: a.errorCode,
      error: a.error,
      outcome: a.outcome,
      response: a.response,
      retryAfterMs: a.retryAfterMs,
    })),
  };
}

/** The newest webhooks (of an endpoint, a state, a call), newest first, with what each waits for. */
export async function webhooksView(s: ConsoleSources, q: { endpoint?: string; state?: string; call?: string }, limit: number, now: number): Promise<unknown[]> {
  const states = q.state !== undefined && q.state !== '' ? (q.state.split(',') as Array<OutboxRow['state']>) : undefined;
  const rows = (await s.store.list({ ...(q.endpoint ? { endpoint: q.endpoint } : {}), ...(states ? { states } : {}) }, q.call ? 2000 : limit))
    .filter((r) => !q.call || r.callId === q.call)
    .slice(0, limit);
  const heads = await headsOf(s, rows);
  return rows.map((r, i) => ({
      id: r.id,
      webhookId: r.webhookId,
      pbx: r.pbx,
      endpoint: r.endpoint,
      call: r.callId,
      lane: r.lane,
      seq: r.seq,
      event: r.summary,
      state: r.state,
      attempts: r.attempts,
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
      nextAt: r.nextAt,
      status: r.lastStatus,
      error: r.lastError,
      wait: waitOf(s, r, heads[i], null, now),
    }));
}

/** The lane head of each row still waiting (one read for them all); undefined for the others. */
async function headsOf(s: ConsoleSources, rows: readonly OutboxRow[]): Promise<Array<LaneHead | undefined>> {
  const waiting = rows.flatMap((r, i) => (r.state === 'pending' || r.state === 'failed_waiting' ? [i] : []));
  const found = waiting.length === 0 ? [] : await s.store.laneHeads(waiting.map((i) => ({ pbx: rows[i]!.pbx, lane: rows[i]!.lane })));
  const out: Array<LaneHead | undefined> = rows.map(() => undefined);
  waiting.forEach((i, k) => (out[i] = found[k]));
  return out;
}
