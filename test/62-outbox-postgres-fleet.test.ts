/**
 * What only the PostgreSQL outbox has to prove (issue #17 items 1, 2, 5): migrations applied once
 * however many processes start at once, several stores on one database never claiming the same
 * lane and keeping each lane in order, a dead holder's claims coming back once they expire, rows
 * and live calls carrying their PBX, the pump's walks bounded whatever the planner's statistics say,
 * the minute's idle-lanes check through its index.
 * A throwaway cluster on 127.0.0.1 (test/support/postgres.ts).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebhookRequest } from '../src/emit/request.js';
import { MIGRATIONS, VERSION_TABLE, SchemaTooNewError, migrate } from '../src/outbox-pg/migrations.js';
import { LANE_TOUCH_MS, LIVE_CALL_KEY_PREFIX, type Lease, type OutboxRow, type Pump } from '../src/deliver/store.js';
import { FORGET_IDLE_LANES_SQL, PUMP_BEGIN, PgStore } from '../src/outbox-pg/store.js';
import { CLAIM_LOCK_SQL, FINISH_SQL, NEXT_DUE_SQL, RENEW_SQL } from '../src/outbox-pg/pump.js';
import { postgresRequirement, startPostgres, type TestPostgres } from './support/postgres.js';

const T0 = Date.parse('2026-01-01T10:00:00Z');
const CLAIM_MS = 15_000;

/** The parts of EXPLAIN (ANALYZE, FORMAT JSON)'s nodes the claim's plan check reads. */
interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Index Cond'?: string;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}

/** A pump of `holder`'s with nothing but what the test names. */
const pumpOf = (holder: string, p: Partial<Pump>): Pump => ({ enqueue: [], finished: [], liveState: new Map(), claims: [], holder, leaseMs: CLAIM_MS, ...p });

const req = (call: string, n: number, endpoint = 'crm'): WebhookRequest => ({
  endpoint,
  method: 'POST',
  url: 'http://127.0.0.1:9/hook',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ event: `e${n}`, call }),
  orderKey: `${endpoint}:${call}`,
});

const delivered = (row: OutboxRow, lease: Lease) => ({
  webhook: row,
  lease,
  attempt: { latencyMs: 2, status: 200, errorCode: undefined, error: undefined },
  decision: { kind: 'delivered' as const },
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
    const stores = await Promise.all(Array.from({ length: 4 }, (_, i) => PgStore.open(url, { pbx: `pbx${i}` })));
    try {
      expect(stores[0]!.location).toBe(`postgres 127.0.0.1:${server.port}/concurrent_open`); // never the URL's user or password
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('two stores on one database never claim the same lane, and each lane goes strictly in order', async () => {
    const url = server.createDatabase('two_claimers');
    const writer = await PgStore.open(url, { pbx: 'berlin' });
    const a = await PgStore.open(url, { pbx: 'worker-a' });
    const b = await PgStore.open(url, { pbx: 'worker-b' });
    try {
      const CALLS = 40;
      const PER_CALL = 5;
      // Interleaved across calls, as a PBX's events are.
      const events: WebhookRequest[][] = [];
      for (let n = 0; n < PER_CALL; n++) for (let c = 0; c < CALLS; c++) events.push([req(`c${c}`, n)]);
      await writer.commitPump(pumpOf('writer', { enqueue: events }), T0);

      const sent: Array<{ lane: string; seq: number; by: string }> = [];
      const inFlight = new Map<string, string>();
      const held: Record<string, { rows: readonly OutboxRow[]; lease: Lease }> = { a: { rows: [], lease: { holder: 'a', until: 0 } }, b: { rows: [], lease: { holder: 'b', until: 0 } } };
      const finishing = (who: string) => held[who]!.rows.map((row) => delivered(row, held[who]!.lease));
      // Each round: both stores finish what they hold and claim more, at the same time.
      for (let round = 0; round < 200 && sent.length < CALLS * PER_CALL; round++) {
        const turns = await Promise.all(
          (['a', 'b'] as const).map(async (who) => {
            const store = who === 'a' ? a : b;
            const done = held[who]!.rows;
            const r = await store.commitPump(pumpOf(who, { finished: finishing(who), claims: [{ endpoint: 'crm', limit: 7 }] }), T0 + 1 + round);
            expect(r.unrecorded).toEqual([]);
            return { who, done, r };
          }),
        );
        for (const t of turns) for (const row of t.done) inFlight.delete(row.lane);
        for (const t of turns) {
          for (const row of t.r.claimed) {
            // Never two claims of one lane at once, whichever store holds them.
            expect(inFlight.get(row.lane), `lane ${row.lane} claimed twice`).toBeUndefined();
            inFlight.set(row.lane, t.who);
            sent.push({ lane: row.lane, seq: row.seq, by: t.who });
          }
          held[t.who] = { rows: t.r.claimed, lease: t.r.lease };
        }
      }
      expect(sent).toHaveLength(CALLS * PER_CALL);
      await a.commitPump(pumpOf('a', { finished: finishing('a') }), T0 + 1000);
      await b.commitPump(pumpOf('b', { finished: finishing('b') }), T0 + 1000);
      const byLane = new Map<string, number[]>();
      for (const x of sent) byLane.set(x.lane, [...(byLane.get(x.lane) ?? []), x.seq]);
      expect(byLane.size).toBe(CALLS);
      for (const seqs of byLane.values()) expect(seqs).toEqual([1, 2, 3, 4, 5]);
      // Both took part: the lanes were shared out, not all taken by one.
      expect(new Set(sent.map((x) => x.by))).toEqual(new Set(['a', 'b']));
      expect(await writer.depth()).toBe(0);
    } finally {
      await Promise.all([writer.close(), a.close(), b.close()]);
    }
  });

  it("a dead holder's claims come back once its lease runs out, with an interrupted attempt; its late answer is refused", async () => {
    const url = server.createDatabase('expiry');
    const dead = await PgStore.open(url, { pbx: 'berlin' });
    const alive = await PgStore.open(url, { pbx: 'berlin', reclaimEveryMs: 0 });
    const claimAll = { claims: [{ endpoint: 'crm', limit: 8 }] };
    try {
      const first = await dead.commitPump(pumpOf('dead', { enqueue: [[req('x', 0), req('x', 1)]], ...claimAll }), T0);
      expect(first.claimed.map((r) => r.seq)).toEqual([1]);
      // Until the lease runs out, nobody else may take the lane, nor recover it at start-up.
      expect(await alive.recover(T0 + CLAIM_MS - 1)).toBe(0);
      const early = await alive.commitPump(pumpOf('alive', claimAll), T0 + CLAIM_MS - 1);
      expect(early.claimed).toEqual([]);
      const late = await alive.commitPump(pumpOf('alive', claimAll), T0 + CLAIM_MS + 1);
      expect(late.claimed.map((r) => [r.seq, r.webhookId, r.attempts])).toEqual([[1, first.claimed[0]!.webhookId, 2]]);
      const attempts = await alive.attemptsOf(first.claimed[0]!.id);
      expect(attempts.map((x) => [x.n, x.errorCode, x.outcome])).toEqual([[1, 'PBXHOOK_INTERRUPTED', 'interrupted'], [2, null, null]]);
      // The first holder comes back to life with its answer: too late, the row is not its own any more.
      const refused = await dead.commitPump(pumpOf('dead', { finished: [delivered(first.claimed[0]!, first.lease)] }), T0 + CLAIM_MS + 2);
      expect(refused.unrecorded.map(([i]) => i)).toEqual([0]);
      expect((await alive.list({ ids: [String(first.claimed[0]!.id)] }, 1))[0]!.state).toBe('in_flight');
      // Its new holder's answer counts.
      const ok = await alive.commitPump(pumpOf('alive', { finished: [delivered(late.claimed[0]!, late.lease)], ...claimAll }), T0 + CLAIM_MS + 3);
      expect(ok.unrecorded).toEqual([]);
      expect(ok.claimed.map((r) => r.seq)).toEqual([2]);
    } finally {
      await Promise.all([dead.close(), alive.close()]);
    }
  });

  it('rows, lanes and live calls are per PBX: the same call id at two PBXes is two lanes', async () => {
    const url = server.createDatabase('per_pbx');
    const berlin = await PgStore.open(url, { pbx: 'berlin' });
    const paris = await PgStore.open(url, { pbx: 'paris' });
    try {
      await berlin.commitPump(pumpOf('berlin', { enqueue: [[req('1700000000.1', 0)]], liveState: new Map([['call:1', '{"b":1}']]) }), T0);
      await paris.commitPump(pumpOf('paris', { enqueue: [[req('1700000000.1', 0)]], liveState: new Map([['call:1', '{"p":1}']]) }), T0);
      const rows = await berlin.list({}, 10);
      // Each PBX's call starts its own sequence.
      expect(rows.map((r) => [r.pbx, r.seq]).sort()).toEqual([['berlin', 1], ['paris', 1]]);
      expect(await berlin.undeliveredByPbx()).toEqual(new Map([['berlin', 1], ['paris', 1]]));
      // The lane reads and retry-lane name the PBX: the same lane text is two lanes.
      const lane = rows[0]!.lane;
      const idOf = (pbx: string) => rows.find((r) => r.pbx === pbx)!.id;
      expect(await berlin.laneHeads([{ pbx: 'paris', lane }, { pbx: 'berlin', lane }])).toEqual([
        { id: idOf('paris'), seq: 1, state: 'pending' },
        { id: idOf('berlin'), seq: 1, state: 'pending' },
      ]);
      expect((await berlin.laneRows({ pbx: 'paris', lane })).map((r) => r.id)).toEqual([idOf('paris')]);
      // Both heads are claimable at once: different lanes.
      const claimed = await berlin.commitPump(pumpOf('berlin', { claims: [{ endpoint: 'crm', limit: 8 }] }), T0 + 1);
      expect(claimed.claimed.map((r) => r.pbx).sort()).toEqual(['berlin', 'paris']);
      expect(await berlin.liveState()).toEqual([['call:1', '{"b":1}']]);
      expect(await paris.liveState()).toEqual([['call:1', '{"p":1}']]);
    } finally {
      await Promise.all([berlin.close(), paris.close()]);
    }
  });
  it('forgetting idle lanes reads the lanes idle long enough through their index, not every lane', async () => {
    // One lane per call and endpoint, kept a day: every process's minute of housekeeping read them all.
    const url = server.createDatabase('idle_lanes');
    const store = await PgStore.open(url, { pbx: 'p' });
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      await c.query(`INSERT INTO lanes (pbx, lane, endpoint, last_seq, updated_at) SELECT 'p', 'crm:' || i, 'crm', 6, $1::bigint + i * 1000 FROM generate_series(1, 20000) i`, [T0]);
      await c.query('ANALYZE lanes');
      const nodes = (n: PlanNode): PlanNode[] => [n, ...(n.Plans ?? []).flatMap(nodes)];
      const { rows } = await c.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode }> }>({
        text: `EXPLAIN (FORMAT JSON) ${FORGET_IDLE_LANES_SQL}`,
        values: [T0 + 10 * 1000, LIVE_CALL_KEY_PREFIX],
      });
      const plan = nodes(rows[0]!['QUERY PLAN'][0]!.Plan);
      const shown = JSON.stringify(plan.map((n) => [n['Node Type'], n['Relation Name'], n['Index Name']]));
      expect(plan.filter((n) => n['Node Type'] === 'Seq Scan' && n['Relation Name'] === 'lanes'), shown).toEqual([]);
      expect(plan.some((n) => n['Index Name'] === 'lanes_idle'), shown).toBe(true);
      // The same cutoff as the store applies: its `before` less LANE_TOUCH_MS.
      expect(await store.forgetIdleLanes(T0 + 10 * 1000 + LANE_TOUCH_MS)).toBe(10);
    } finally {
      await c.end();
      await store.close();
    }
  });

  // A queue table's statistics are stale by nature: its rows turn over between two analyzes. Two
  // kinds were seen making a fleet drain several times slower (bench/fleet-profile.ts, issue #17):
  // the column statistics of a drained outbox (every row delivered) with a backlog that autoanalyze
  // has not seen yet, and the partial indexes counted by a vacuum when almost nothing was pending
  // (here written into pg_class, as this test's user is the cluster's superuser). With them, the
  // claim and the next-due read walked the whole lane index per candidate, or sorted every due row
  // (this claim: 91,553 buffers and 55,016 rows filtered out at 30,000 rows, against 539 and 155).
  // Rows read, not time: the counts do not depend on the machine. As the pump runs them
  // (PUMP_BEGIN: generic plans, no bitmap scans, no sorts, no JIT).
  for (const stats of ['drained', 'vacuumed-empty'] as const) {
    it(`a claim and the next-due read walk the due index, a finish and a renewal go by key, whatever the statistics say (${stats})`, async () => {
      const url = server.createDatabase(`stale_${stats.replace('-', '_')}`);
      await (await PgStore.open(url, { pbx: 'p' })).close();
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        const N = 6_000; // 1,000 calls of 6
        const fill = (state: string, from: number) =>
          c.query(
            `INSERT INTO webhooks (webhook_id, pbx, endpoint, lane, seq, call_id, summary, method, url, headers, body, state, next_at, created_at, updated_at)
             SELECT 'w' || g, 'p', 'crm', 'crm:c' || ((g - 1) / 6), (g - 1) % 6 + 1, 'c' || ((g - 1) / 6), 's', 'POST', 'http://127.0.0.1:9/', '{}'::jsonb, 'b', $1, 1000 + g, 1000, 1000
             FROM generate_series($2::int, $2::int + $3::int - 1) g`,
            [state, from, N],
          );
        await fill('delivered', 1);
        await c.query(stats === 'drained' ? 'ANALYZE webhooks' : 'VACUUM ANALYZE webhooks');
        await fill('pending', N + 1);
        if (stats === 'vacuumed-empty') {
          await c.query(`UPDATE pg_class SET reltuples = 4, relpages = pg_relation_size(oid) / 8192 WHERE relname = 'webhooks_due'`);
          await c.query(`UPDATE pg_class SET reltuples = 1332, relpages = pg_relation_size(oid) / 8192 WHERE relname = 'webhooks_lane_undelivered'`);
        }
        // 16 lanes in flight at the front of the due index: their later rows are walked past.
        const { rows: flying } = await c.query<{ id: string }>(
          `UPDATE webhooks SET state = 'in_flight', claimed_by = 'h', attempts = 1
           WHERE id IN (SELECT id FROM webhooks WHERE state = 'pending' AND seq = 1 ORDER BY id LIMIT 16) RETURNING id`,
        );
        const three = flying.slice(0, 3).map((r) => r.id);
        const arr = (x: string) => `'{${three.map(() => x).join(',')}}'`;
        const due = ['Index Scan webhooks_due', 'Index Only Scan webhooks_lane_undelivered'];
        const byKey = ['Index Scan webhooks_pkey'];
        const statements = [
          { name: 'claim', types: '(text[], int[], bigint)', sql: CLAIM_LOCK_SQL, args: `'{crm}', '{16}', 10000000`, walks: due },
          { name: 'next-due', types: '(text[])', sql: NEXT_DUE_SQL, args: `'{crm}'`, walks: due },
          // Three attempts finished, three leases renewed: by primary key, never a walk of the
          // outbox (a finish once hashed its rows against the whole lane index: 12,538 buffers for 3 rows).
          {
            name: 'finish',
            types: '(bigint, bigint[], text[], text[], int[], bigint[], int[], text[], int[], bigint[], int[], text[], text[], text[], text[], bigint[])',
            sql: FINISH_SQL,
            args: [`10000000, '{${three.join(',')}}'`, arr('h'), arr('delivered'), arr('0'), arr('10000000'), arr('200'), arr('NULL'), arr('1'), arr('1000'), arr('2'), arr('NULL'), arr('NULL'), arr('delivered'), arr('NULL'), arr('NULL')].join(', '),
            walks: byKey,
          },
          { name: 'renew', types: '(bigint[], text, bigint)', sql: RENEW_SQL, args: `'{${three.join(',')}}', 'h', 10000000`, walks: byKey },
        ];
        for (const st of statements) {
          await c.query(PUMP_BEGIN);
          // However low the cost at which PostgreSQL would compile a plan, the pump's are never compiled.
          await c.query('SET LOCAL jit_above_cost = 0');
          await c.query(`PREPARE pump_statement${st.types} AS ${st.sql}`);
          const { rows } = await c.query<{ 'QUERY PLAN': Array<{ Plan: PlanNode; JIT?: unknown }> }>(`EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE pump_statement(${st.args})`);
          await c.query('ROLLBACK'); // the claim's locks, the finish's and the renewal's changes
          await c.query('DEALLOCATE pump_statement');
          let filteredOut = 0;
          const scans: string[] = [];
          const walk = (n: PlanNode): void => {
            filteredOut += n['Rows Removed by Filter'] ?? 0;
            if (n['Node Type'] === 'Sort') scans.push('Sort');
            if (n['Relation Name'] === 'webhooks' && n['Node Type'] !== 'ModifyTable') {
              scans.push(`${n['Node Type']} ${n['Index Name'] ?? ''}`.trim());
              if (n['Index Name'] === 'webhooks_lane_undelivered') expect(n['Index Cond'] ?? '(no condition: the whole index)', st.name).toMatch(/pbx = .*lane = /);
            }
            for (const k of n.Plans ?? []) walk(k);
          };
          walk(rows[0]!['QUERY PLAN'][0]!.Plan);
          expect(rows[0]!['QUERY PLAN'][0]!.JIT, st.name).toBeUndefined();
          expect(scans.filter((x) => x === st.walks[0]).length, st.name).toBeGreaterThan(0);
          expect(scans.filter((x) => !st.walks.includes(x)), st.name).toEqual([]);
          // Past the 16 lanes in flight (80 later rows), to the heads: 155 and 80 rows filtered out here.
          expect(filteredOut, st.name).toBeLessThan(500);
        }
      } finally {
        await c.end();
      }
    });
  }
});
