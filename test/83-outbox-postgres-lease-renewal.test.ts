/**
 * Issue #17: a live delivery worker never loses a claim to another. A claim's lease covers the
 * attempt's timeout and a margin, but its answer is recorded a pump later, and on a loaded machine
 * (four workers, PostgreSQL and the receiver on two cores) a pump can be late: the lease ran out,
 * another worker took the lane back and sent its webhook again, and the first worker's answer was
 * refused ("a claim this attempt no longer holds", seen in the bench rounds that stalled). A worker
 * renews the leases of what it is still sending, half-way through; a dead one's still run out.
 * A throwaway cluster on 127.0.0.1 (test/support/postgres.ts).
 */
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeliveryConfig, EndpointConfig } from '../src/config/types.js';
import type { AttemptResult, HttpClient } from '../src/deliver/attempt.js';
import { OutboxWorker } from '../src/deliver/outbox-worker.js';
import { PgStore } from '../src/outbox-pg/store.js';
import { until } from './support/eventually.js';
import { T0, enqueue, finished, pumpOf, req } from './support/outboxSteps.js';
import { postgresRequirement, startPostgres, type TestPostgres } from './support/postgres.js';

const LEASE_MS = 15_000;
const claimAll = { claims: [{ endpoint: 'crm', limit: 8 }] };

/** Who holds a row's claim and until when, as the database has it (rows read by the store leave leases out). */
async function leaseOf(url: string, id: number): Promise<{ holder: string | null; until: number | null }> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const { rows } = await db.query<{ holder: string | null; until: string | null }>('SELECT claimed_by AS holder, claim_until AS until FROM webhooks WHERE id = $1', [id]);
    return { holder: rows[0]!.holder, until: rows[0]!.until === null ? null : Number(rows[0]!.until) };
  } finally {
    await db.end();
  }
}

const DELIVERY: DeliveryConfig = {
  schedule: [1_000], jitter: 0, retryAfterMaxMs: 60_000, connectTimeoutMs: 1_000, timeoutMs: 10_000,
  concurrency: 4, pauseAfterMs: 600_000, probeEveryMs: 60_000, stopTimeoutMs: 1_000, maxRows: 1_000, maxAgeMs: 86_400_000,
  keepDeliveredMs: 86_400_000, keepDeadMs: 86_400_000,
};
const ENDPOINT = { name: 'crm', enabled: true, url: 'http://127.0.0.1:9/hook', method: 'POST', events: [], recordingUrl: 'x', schema: '3cx', variant: 'json' } as EndpointConfig;

describe(`a live worker's claims on PostgreSQL${postgresRequirement.note}`, { skip: postgresRequirement.skip }, () => {
  let server: TestPostgres;
  beforeAll(async () => {
    postgresRequirement.check();
    server = await startPostgres();
  });
  afterAll(() => server?.stop());

  it('a renewed lease keeps the claim past its first end; a renewal never takes back what another holder took', async () => {
    const url = server.createDatabase('renew_store');
    const a = await PgStore.open(url, { pbx: 'berlin', reclaimEveryMs: 0 });
    const b = await PgStore.open(url, { pbx: 'berlin', reclaimEveryMs: 0 });
    try {
      await enqueue(a, T0, [req('x', 'x1'), req('x', 'x2')], [req('y', 'y1')]);
      const first = await a.commitPump(pumpOf({ holder: 'a', leaseMs: LEASE_MS, ...claimAll }), T0);
      const [x1, y1] = first.claimed;
      expect([x1?.body, y1?.body]).toEqual(['x1', 'y1']);
      // Half-way, `a` renews x1 only (y1's attempt it lets run out, as a dead worker would).
      await a.commitPump(pumpOf({ holder: 'a', leaseMs: LEASE_MS, renew: [x1!.id] }), T0 + 10_000);
      // Past the first lease: y1 comes back to `b`, x1 does not.
      const taken = await b.commitPump(pumpOf({ holder: 'b', leaseMs: LEASE_MS, ...claimAll }), T0 + LEASE_MS + 1);
      expect(taken.claimed.map((r) => r.body)).toEqual(['y1']);
      // `a` renewing y1 now changes nothing: it is `b`'s.
      await a.commitPump(pumpOf({ holder: 'a', leaseMs: LEASE_MS, renew: [y1!.id] }), T0 + LEASE_MS + 2);
      expect(await leaseOf(url, y1!.id)).toEqual({ holder: 'b', until: T0 + 2 * LEASE_MS + 1 });
      // x1's answer, recorded late, is still `a`'s: recorded, and x2 follows.
      const late = await a.commitPump(pumpOf({ holder: 'a', leaseMs: LEASE_MS, finished: [finished(x1!, first.lease, { kind: 'delivered' })], ...claimAll }), T0 + LEASE_MS + 3);
      expect(late.unrecorded).toEqual([]);
      expect(late.claimed.map((r) => r.body)).toEqual(['x2']);
      // A renewal is no immortality: not renewed again, x2's lease (and b's of y1) runs out like any other.
      const back = await b.commitPump(pumpOf({ holder: 'b', leaseMs: LEASE_MS, ...claimAll }), T0 + 2 * LEASE_MS + 4);
      expect(back.claimed.map((r) => r.body).sort()).toEqual(['x2', 'y1']);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('a worker whose answer comes late in its lease keeps the claim: the webhook is sent once, recorded as delivered', async () => {
    const url = server.createDatabase('renew_worker');
    const seed = await PgStore.open(url, { pbx: 'berlin' });
    const other = await PgStore.open(url, { pbx: 'berlin', reclaimEveryMs: 0 });
    const store = await PgStore.open(url, { pbx: 'berlin' });
    let now = T0;
    const sent: string[] = [];
    let answer: (r: AttemptResult) => void = () => undefined;
    const http: HttpClient = {
      attempt: (r) => (sent.push(r.body), new Promise<AttemptResult>((resolve) => (answer = resolve))),
      close: () => {},
    };
    const worker = new OutboxWorker({ store, http, log: pino({ level: 'silent' }), endpoints: [ENDPOINT], delivery: DELIVERY, now: () => now });
    try {
      await enqueue(seed, T0, [req('x', 'x1')]);
      await worker.start();
      await until(() => sent.length === 1, 'x1 claimed and sent');
      const [row] = await store.list({ states: ['in_flight'] }, 10);
      // The attempt is still running when most of the lease has gone; the worker pumps meanwhile (its poll).
      now = T0 + 9_000;
      worker.kick();
      await until(async () => (await leaseOf(url, row!.id)).until === T0 + 9_000 + LEASE_MS, "x1's lease renewed");
      // Another worker after the first lease's end: nothing to take back.
      const taken = await other.commitPump(pumpOf({ holder: 'other', leaseMs: LEASE_MS, ...claimAll }), T0 + LEASE_MS + 1);
      expect(taken.claimed).toEqual([]);
      now = T0 + LEASE_MS + 2;
      answer({ ok: true, status: 200, latencyMs: LEASE_MS });
      await until(() => worker.stats.delivered === 1, 'the late answer recorded');
      expect((await store.list({ ids: [String(row!.id)] }, 1))[0]!.state).toBe('delivered');
      expect(sent).toEqual(['x1']);
    } finally {
      await worker.stop();
      await Promise.all([seed.close(), other.close(), store.close()]);
    }
  });
});
