/**
 * What only the PostgreSQL outbox has to prove (issue #17 items 1, 2, 5): migrations applied once
 * however many processes start at once, several stores on one database never claiming the same
 * lane and keeping each lane in order, a dead holder's claims coming back once they expire, rows
 * and live calls carrying their PBX. A throwaway cluster on 127.0.0.1 (test/support/postgres.ts).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebhookRequest } from '../src/emit/request.js';
import { MIGRATIONS, VERSION_TABLE, SchemaTooNewError, migrate } from '../src/outbox-pg/migrations.js';
import { PgOutboxStore, type Finish } from '../src/outbox-pg/store.js';
import type { PgOutboxRow } from '../src/outbox-pg/rows.js';
import { postgresRequirement, startPostgres, type TestPostgres } from './support/postgres.js';

const T0 = Date.parse('2026-01-01T10:00:00Z');
const CLAIM_MS = 15_000;

const req = (call: string, n: number, endpoint = 'crm'): WebhookRequest => ({
  endpoint,
  method: 'POST',
  url: 'http://127.0.0.1:9/hook',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ event: `e${n}`, call }),
  orderKey: `${endpoint}:${call}`,
});

const delivered = (row: PgOutboxRow): Finish => ({
  row,
  attempt: { latencyMs: 2, status: 200, errorCode: undefined, error: undefined },
  decision: { kind: 'delivered' },
});

describe(`the PostgreSQL outbox in a fleet${postgresRequirement.note}`, { skip: postgresRequirement.skip }, () => {
  let server: TestPostgres;
  beforeAll(async () => {
    postgresRequirement.check();
    server = await startPostgres();
  });
  afterAll(() => server?.stop());

  it('applies the migrations once, however many clients start at once, and again finds nothing to do', async () => {
    const url = server.createDatabase('migrations');
    const clients = Array.from({ length: 6 }, () => new pg.Client({ connectionString: url }));
    await Promise.all(clients.map((c) => c.connect()));
    try {
      const applied = await Promise.all(clients.map((c) => migrate(c)));
      // Exactly one of them applied every version; the others waited for its lock and found them.
      expect(applied.filter((a) => a.length > 0)).toEqual([MIGRATIONS.map((_, i) => i + 1)]);
      expect(await migrate(clients[0]!)).toEqual([]);
      const { rows } = await clients[0]!.query(`SELECT version FROM ${VERSION_TABLE} ORDER BY version`);
      expect(rows.map((r: { version: number }) => r.version)).toEqual(MIGRATIONS.map((_, i) => i + 1));
      // A pbxhook that knows fewer versions refuses the database rather than misread it.
      await expect(migrate(clients[1]!, MIGRATIONS.slice(0, 0))).rejects.toBeInstanceOf(SchemaTooNewError);
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it('opens stores concurrently on a fresh database', async () => {
    const url = server.createDatabase('concurrent_open');
    const stores = await Promise.all(Array.from({ length: 4 }, (_, i) => PgOutboxStore.open(url, { pbx: `pbx${i}`, claimMs: CLAIM_MS })));
    try {
      expect(new Set(stores.map((s) => s.holder)).size).toBe(4);
      expect(stores[0]!.file).not.toContain('pbxhook@'); // host and database only, never the URL's user or password
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('two stores on one database never claim the same lane, and each lane goes strictly in order', async () => {
    const url = server.createDatabase('two_claimers');
    const writer = await PgOutboxStore.open(url, { pbx: 'berlin', claimMs: CLAIM_MS });
    const a = await PgOutboxStore.open(url, { pbx: 'worker-a', claimMs: CLAIM_MS });
    const b = await PgOutboxStore.open(url, { pbx: 'worker-b', claimMs: CLAIM_MS });
    try {
      const CALLS = 40;
      const PER_CALL = 5;
      // Interleaved across calls, as a PBX's events are.
      const events: WebhookRequest[][] = [];
      for (let n = 0; n < PER_CALL; n++) for (let c = 0; c < CALLS; c++) events.push([req(`c${c}`, n)]);
      await writer.pump({ inserts: events, finishes: [], claims: [] }, T0);

      const sent: Array<{ lane: string; seq: number; by: string }> = [];
      const inFlight = new Map<string, string>();
      const held: Record<string, PgOutboxRow[]> = { a: [], b: [] };
      // Each round: both stores finish what they hold and claim more, at the same time.
      for (let round = 0; round < 200 && sent.length < CALLS * PER_CALL; round++) {
        const turns = await Promise.all(
          (['a', 'b'] as const).map(async (who) => {
            const store = who === 'a' ? a : b;
            const finishing = held[who]!;
            const r = await store.pump({ inserts: [], finishes: finishing.map(delivered), claims: [{ endpoint: 'crm', limit: 7 }] }, T0 + 1 + round);
            expect(r.finished.every((e) => e === undefined)).toBe(true);
            return { who, finishing, claimed: r.claimed };
          }),
        );
        for (const t of turns) for (const row of t.finishing) inFlight.delete(row.lane);
        for (const t of turns) {
          for (const row of t.claimed) {
            // Never two claims of one lane at once, whichever store holds them.
            expect(inFlight.get(row.lane), `lane ${row.lane} claimed twice`).toBeUndefined();
            inFlight.set(row.lane, t.who);
            sent.push({ lane: row.lane, seq: row.seq, by: t.who });
          }
          held[t.who] = t.claimed;
        }
      }
      expect(sent).toHaveLength(CALLS * PER_CALL);
      await a.pump({ inserts: [], finishes: held['a']!.map(delivered), claims: [] }, T0 + 1000);
      await b.pump({ inserts: [], finishes: held['b']!.map(delivered), claims: [] }, T0 + 1000);
      const byLane = new Map<string, number[]>();
      for (const s of sent) byLane.set(s.lane, [...(byLane.get(s.lane) ?? []), s.seq]);
      for (const seqs of byLane.values()) expect(seqs).toEqual([1, 2, 3, 4, 5]);
      // Both took part: the lanes were shared out, not all taken by one.
      expect(new Set(sent.map((s) => s.by))).toEqual(new Set(['a', 'b']));
      expect(await writer.depth()).toBe(0);
    } finally {
      await Promise.all([writer.close(), a.close(), b.close()]);
    }
  });

  it("a dead holder's claims come back once they expire, with an interrupted attempt; its late answer is refused", async () => {
    const url = server.createDatabase('expiry');
    const dead = await PgOutboxStore.open(url, { pbx: 'berlin', claimMs: CLAIM_MS });
    const alive = await PgOutboxStore.open(url, { pbx: 'berlin', claimMs: CLAIM_MS, reclaimEveryMs: 0 });
    try {
      const first = await dead.pump({ inserts: [[req('x', 0), req('x', 1)]], finishes: [], claims: [{ endpoint: 'crm', limit: 8 }] }, T0);
      expect(first.claimed.map((r) => r.seq)).toEqual([1]);
      // Before the claim expires, nobody else may take the lane.
      const early = await alive.pump({ inserts: [], finishes: [], claims: [{ endpoint: 'crm', limit: 8 }] }, T0 + CLAIM_MS - 1);
      expect(early.claimed).toEqual([]);
      const late = await alive.pump({ inserts: [], finishes: [], claims: [{ endpoint: 'crm', limit: 8 }] }, T0 + CLAIM_MS + 1);
      expect(late.reclaimed).toBe(1);
      expect(late.claimed.map((r) => [r.seq, r.webhookId, r.attempts])).toEqual([[1, first.claimed[0]!.webhookId, 2]]);
      const attempts = await alive.attemptsOf(first.claimed[0]!.id);
      expect(attempts[0]).toMatchObject({ n: 1, errorCode: 'PBXHOOK_INTERRUPTED', outcome: 'interrupted' });
      // The first holder comes back to life with its answer: too late, the row is not its own any more.
      const refused = await dead.pump({ inserts: [], finishes: [delivered(first.claimed[0]!)], claims: [] }, T0 + CLAIM_MS + 2);
      expect(refused.finished[0]).toBeInstanceOf(Error);
      expect((await alive.list({ ids: [String(first.claimed[0]!.id)] }, 1))[0]!.state).toBe('in_flight');
    } finally {
      await Promise.all([dead.close(), alive.close()]);
    }
  });

  it('rows, lanes and live calls are per PBX: the same call id at two PBXes is two lanes', async () => {
    const url = server.createDatabase('per_pbx');
    const berlin = await PgOutboxStore.open(url, { pbx: 'berlin', claimMs: CLAIM_MS });
    const paris = await PgOutboxStore.open(url, { pbx: 'paris', claimMs: CLAIM_MS });
    try {
      const ids = await berlin.pump({ inserts: [[req('1700000000.1', 0)]], finishes: [], liveState: new Map([['call:1', '{"b":1}']]), claims: [] }, T0);
      const idp = await paris.pump({ inserts: [[req('1700000000.1', 0)]], finishes: [], liveState: new Map([['call:1', '{"p":1}']]), claims: [] }, T0);
      // Each PBX's call starts its own sequence.
      expect(ids.inserted[0]![0]!.seq).toBe(1);
      expect(idp.inserted[0]![0]!.seq).toBe(1);
      const rows = await berlin.list({}, 10);
      expect(rows.map((r) => r.pbx).sort()).toEqual(['berlin', 'paris']);
      expect(await berlin.undeliveredByPbx()).toEqual(new Map([['berlin', 1], ['paris', 1]]));
      // Both heads are claimable at once: different lanes.
      const claimed = await berlin.pump({ inserts: [], finishes: [], claims: [{ endpoint: 'crm', limit: 8 }] }, T0 + 1);
      expect(claimed.claimed.map((r) => r.pbx).sort()).toEqual(['berlin', 'paris']);
      expect(await berlin.liveState()).toEqual([['call:1', '{"b":1}']]);
      expect(await paris.liveState()).toEqual([['call:1', '{"p":1}']]);
    } finally {
      await Promise.all([berlin.close(), paris.close()]);
    }
  });
});
