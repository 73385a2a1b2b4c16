/**
 * Issue #17: a pump's statements are planned once per connection, not at every pump. They are
 * named (prepared) for that, but PostgreSQL may still choose a custom plan at each execution when
 * its estimate says the generic plan costs more; it did for the claim's locking statement and the
 * next-due read, and planning them cost more than running them (bench/fleet-profile.ts, 20k
 * backlog: 1.0 s of planning against 0.59 s of running). The store opens a pump's transaction with
 * the plans forced generic (store.ts PUMP_BEGIN). Counted by pg_stat_statements: plans, not time.
 * A throwaway cluster on 127.0.0.1 (test/support/postgres.ts) with the extension loaded.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgStore } from '../src/outbox-pg/store.js';
import { T0, enqueue, finished, pumpOf, req } from './support/outboxSteps.js';
import { postgresRequirement, startPostgres, type TestPostgres } from './support/postgres.js';

const PUMPS = 40;

describe(`the PostgreSQL pump's plans${postgresRequirement.note}`, { skip: postgresRequirement.skip }, () => {
  let server: TestPostgres;
  beforeAll(async () => {
    postgresRequirement.check();
    server = await startPostgres(['shared_preload_libraries=pg_stat_statements', 'pg_stat_statements.track=all', 'pg_stat_statements.track_planning=on']);
  });
  afterAll(() => server?.stop());

  it('claims, finishes and next-due reads are planned once per connection, however many pumps', async () => {
    const url = server.createDatabase('plans');
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    const store = await PgStore.open(url, { pbx: 'berlin', poolMax: 1 });
    try {
      await db.query('CREATE EXTENSION pg_stat_statements');
      // A backlog of lanes of 3, as a drain sees it: a claim walks past the in-flight lanes' later rows.
      const lanes = Array.from({ length: PUMPS * 2 }, (_, i) => [req(`c${i}`, `c${i}-1`), req(`c${i}`, `c${i}-2`), req(`c${i}`, `c${i}-3`)]);
      await enqueue(store, T0, ...lanes);
      await db.query('SELECT pg_stat_statements_reset()');
      const first = await store.commitPump(pumpOf({ claims: [{ endpoint: 'crm', limit: 4 }] }), T0 + 1);
      let inFlight = first.claimed.map((row) => ({ row, lease: first.lease }));
      for (let i = 0; i < PUMPS; i++) {
        // Every other pump: two answers recorded, their two slots filled again; the others have
        // nothing to record and no slot free, and only ask when the next head is due.
        const done = i % 2 === 0 ? inFlight.slice(0, 2) : [];
        const r = await store.commitPump(
          pumpOf({ finished: done.map((f) => finished(f.row, f.lease, { kind: 'delivered' })), claims: [{ endpoint: 'crm', limit: done.length }] }),
          T0 + 2 + i,
        );
        expect(r.unrecorded).toEqual([]);
        inFlight = inFlight.slice(done.length).concat(r.claimed.map((row) => ({ row, lease: r.lease })));
        expect(inFlight).toHaveLength(4);
      }
      const { rows } = await db.query<{ q: string; calls: number; plans: number }>(
        `SELECT left(query, 30) AS q, calls::int AS calls, plans::int AS plans FROM pg_stat_statements
         WHERE query LIKE 'WITH asked AS%' OR query LIKE 'UPDATE webhooks w SET state%' OR query LIKE 'WITH f AS%' OR query LIKE 'SELECT e.endpoint, d.at%'`,
      );
      expect(rows.length, 'the claim (2 statements), the finish and the next-due read ran').toBe(4);
      for (const r of rows) {
        expect(r.calls, r.q).toBeGreaterThanOrEqual(10);
        expect(r.plans, `${r.q}: planned once on the pump's one connection, not at each of its ${r.calls} calls`).toBe(1);
      }
    } finally {
      await store.close();
      await db.end();
    }
  });
});
