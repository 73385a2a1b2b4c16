/**
 * The outbox store suite's vocabulary (test/support/outboxStoreSuite.ts): a fake clock's start,
 * requests, attempts, and the worker's steps spoken through the store interface only.
 */
import type { WebhookRequest } from '../../src/emit/request.js';
import type { AttemptRecord, FinishedAttempt, Lease, OutboxRow, OutboxStore, Pump } from '../../src/deliver/store.js';
import type { Decision } from '../../src/deliver/schedule.js';

export const T0 = Date.parse('2026-01-01T10:00:00Z');
export const HOLDER = 'test-holder';
export const LEASE_MS = 30_000;

export function req(call: string, body: string, endpoint = 'crm'): WebhookRequest {
  return { endpoint, method: 'POST', url: 'https://crm.example.com/hook', headers: { 'content-type': 'application/json' }, body, orderKey: `${endpoint}:${call}` };
}

export const delivered: AttemptRecord = { latencyMs: 5, status: 200, errorCode: undefined, error: undefined };
export const http500: AttemptRecord = { latencyMs: 5, status: 500, errorCode: 'PBXHOOK_HTTP_STATUS', error: 'crm: HTTP 500', response: 'down for maintenance' };

/** A pump with nothing but what the test names; claims default to none. */
export function pumpOf(p: Partial<Pump>): Pump {
  return { enqueue: [], finished: [], liveState: new Map(), claims: [], holder: HOLDER, leaseMs: LEASE_MS, ...p };
}

export const enqueue = (s: OutboxStore, at: number, ...events: WebhookRequest[][]) => s.commitPump(pumpOf({ enqueue: events }), at);

export const claim = async (s: OutboxStore, at: number, limit = 10, endpoint = 'crm') =>
  (await s.commitPump(pumpOf({ claims: [{ endpoint, limit }] }), at)).claimed;

export const finished = (row: OutboxRow, lease: Lease, decision: Decision, attempt: AttemptRecord = delivered): FinishedAttempt => ({ webhook: row, lease, attempt, decision });

/** Claims and finishes each claimed row with `decision`; returns the bodies claimed. */
export async function sendAll(s: OutboxStore, at: number, decision: Decision, attempt = delivered, endpoint = 'crm'): Promise<string[]> {
  const r = await s.commitPump(pumpOf({ claims: [{ endpoint, limit: 100 }] }), at);
  await s.commitPump(pumpOf({ finished: r.claimed.map((row) => finished(row, r.lease, decision, attempt)) }), at);
  return r.claimed.map((row) => row.body);
}

/** Claims what is due at `at` and finishes each row with the decision `decide` picks for its body. */
export async function sendEach(s: OutboxStore, at: number, decide: (body: string) => Decision | 'keep', attempt = delivered, endpoint = 'crm'): Promise<readonly OutboxRow[]> {
  const r = await s.commitPump(pumpOf({ claims: [{ endpoint, limit: 100 }] }), at);
  const done = r.claimed.flatMap((row) => {
    const d = decide(row.body);
    return d === 'keep' ? [] : [finished(row, r.lease, d, d.kind === 'delivered' ? delivered : attempt)];
  });
  await s.commitPump(pumpOf({ finished: done }), at);
  return r.claimed;
}

export const bodies = (rows: readonly { body: string }[]) => rows.map((r) => r.body);
