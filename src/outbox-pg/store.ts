/**
 * The outbox on PostgreSQL (issue #17): the store interface (src/deliver/store.ts) for a database
 * any number of processes share. Each pump is one transaction of a few batched statements (pump.ts);
 * each operator action one statement. Nothing about the rows is kept in memory: other processes
 * change them at any time, so every answer is read from the database.
 *
 * Claims carry the pump's holder and lease (`claimed_by`, `claim_until`); a lease that runs out is
 * taken back by whichever process pumps next (at most every `reclaimEveryMs`) or starts.
 */
import type pg from 'pg';
import {
  type ClaimAsk, type Expired, type FinishedAttempt, LANE_TOUCH_MS, type LaneRef, LIVE_CALL_KEY_PREFIX, type OutboxRow, type OutboxStore,
  type Pump, type PumpResult, type Selection,
} from '../deliver/store.js';
import { type EndpointHealth, IllegalTransitionError, type OutboxState, STATES, TRANSITIONS } from '../deliver/outbox-state.js';
import { type Serialised, claimHeads, finishAttempts, insertWebhooks, nextDue, reclaimExpired, renewLeases, saveLiveState, serialise } from './pump.js';
import { inTransaction, openPool, where } from './pool.js';
import { migrate } from './migrations.js';
import { UNDELIVERED_SQL, inList, perEndpoint, selectionSql } from './rows.js';
import { OutboxReads } from './reads.js';
import { isUnavailable } from './unavailable.js';

/**
 * forgetIdleLanes' statement ($1: the written activity at or before which a lane is idle; $2
 * LIVE_CALL_KEY_PREFIX: a lane whose call its PBX still follows is kept). Exported for test/62's
 * plan check.
 */
export const FORGET_IDLE_LANES_SQL = `DELETE FROM lanes l WHERE l.updated_at <= $1 AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.pbx = l.pbx AND w.lane = l.lane)
  AND NOT EXISTS (SELECT 1 FROM live_state s WHERE s.pbx = l.pbx AND s.key = $2 || substr(l.lane, length(l.endpoint) + 2))`;

/** See stateCounts. */
const DELIVERED_COUNT_EVERY_MS = 60_000;

export interface PgStoreOptions {
  /** This process's PBX (`pbx.name`): its webhooks' rows and its live calls carry it. */
  readonly pbx: string;
  /** How often a pump looks for expired leases (default every second). */
  readonly reclaimEveryMs?: number;
  /** How old the count of delivered webhooks in `stateCounts` may be (default a minute; 0: counted every time). */
  readonly deliveredCountEveryMs?: number;
  readonly poolMax?: number;
  /** An idle connection failed (the server restarted): told, never thrown. */
  readonly onIdleError?: (err: Error) => void;
}

/**
 * A pump's transaction is opened with its access paths pinned, so that the planner's statistics,
 * stale by nature on a queue table (its rows turn over between two analyzes), cannot change them:
 * - no sorts and no bitmap scans: the claim and the next-due read walk the due index in its order
 *   and stop at the rows they need. With the partial indexes counted by a vacuum when almost
 *   nothing was pending, PostgreSQL sorted every due row instead, or read them all through two
 *   bitmaps (a 100k 1-worker drain 1,625/s against 3,065/s, the next-due read up to 0.4 s a call);
 * - plans generic, planned once per connection as the statements' names (pump.ts) mean them to be:
 *   left to choose, PostgreSQL planned the claim and the next-due read anew at every call, which
 *   cost it twice their running time (pg_stat_statements with track_planning);
 * - no JIT: with a backlog in the statistics, the claim's generic plan is estimated above
 *   jit_above_cost (160,649 at 100,000 pending), and each call then compiled it (20–26 ms, where
 *   the claim runs in under 1 ms): in the 3rd of three 100k 1-worker drains on one database, 1,680
 *   and 1,768/s with it, 2,242/s without.
 * bench/fleet-profile.ts measured each, test/62 checks the plans under such statistics. SET LOCAL:
 * the operators' reads on the same pool keep the planner's own choice. One round trip with the
 * BEGIN (simple protocol, no parameters).
 */
export const PUMP_BEGIN = 'BEGIN; SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off; SET LOCAL jit = off';

interface Outcome {
  lostEvents: Array<[number, unknown]>;
  unrecorded: Array<[number, unknown]>;
  unclaimed: Array<[string, unknown]>;
  claimed: OutboxRow[];
  nextDueAt: Map<string, number>;
}

export class PgStore extends OutboxReads implements OutboxStore {
  readonly pbx: string;
  /** The host and database, never the URL (it may hold a password). */
  readonly location: string;
  private readonly reclaimEveryMs: number;
  private nextReclaimAt = 0;
  private readonly deliveredCountEveryMs: number;
  private delivered: { n: number; at: number } | undefined;

  private constructor(pool: pg.Pool, url: string, opts: PgStoreOptions) {
    super(pool);
    this.pbx = opts.pbx;
    this.location = `postgres ${where(url)}`;
    this.reclaimEveryMs = opts.reclaimEveryMs ?? 1_000;
    this.deliveredCountEveryMs = opts.deliveredCountEveryMs ?? DELIVERED_COUNT_EVERY_MS;
  }

  /** Connects and brings the schema up to date (migrations.ts); throws if the database cannot be used. */
  static async open(url: string, opts: PgStoreOptions): Promise<PgStore> {
    const pool = openPool(url, { max: opts.poolMax ?? 4, applicationName: `pbxhook ${opts.pbx}`, ...(opts.onIdleError ? { onIdleError: opts.onIdleError } : {}) });
    try {
      const client = await pool.connect();
      try {
        await migrate(client);
      } finally {
        client.release();
      }
    } catch (err) {
      await pool.end().catch(() => undefined);
      throw err;
    }
    return new PgStore(pool, url, opts);
  }

  isUnavailable(err: unknown): boolean {
    return isUnavailable(err);
  }

  /**
   * One transaction: the events' webhooks, the finished attempts, the live calls, the holder's
   * leases renewed, expired leases taken back, then the claims (which see the attempts just finished: a delivered head's successor
   * is claimable at once) and when each endpoint's next head is due. Each kind is one statement for
   * all its rows. Only when one fails for a reason of its own (not the database being unavailable)
   * is the pump done again item by item, each in a savepoint, to keep the rest.
   */
  async commitPump(p: Pump, now: number): Promise<PumpResult> {
    const reclaim = now >= this.nextReclaimAt;
    const lease = { holder: p.holder, until: now + p.leaseMs };
    // A request that cannot be stored (headers JSON cannot hold) is lost on its own, before any SQL.
    const events: Array<[number, Serialised[]]> = [];
    const lostEvents: Array<[number, unknown]> = [];
    p.enqueue.forEach((reqs, i) => {
      try {
        events.push([i, serialise(reqs)]);
      } catch (err) {
        lostEvents.push([i, err]);
      }
    });
    const run = (careful: boolean) =>
      inTransaction(this.pool, async (client) => {
        const out: Outcome = { lostEvents: [...lostEvents], unrecorded: [], unclaimed: [], claimed: [], nextDueAt: new Map() };
        if (careful) await this.carefully(client, p, events, now, lease.until, out);
        else {
          await insertWebhooks(client, this.pbx, events.flatMap(([, reqs]) => reqs), now);
          this.unrecorded(p.finished, await finishAttempts(client, p.finished, now), 0, out);
        }
        if (p.liveState.size > 0) await saveLiveState(client, this.pbx, p.liveState);
        // Before taking back expired claims: this holder's own, still being sent, are not.
        await renewLeases(client, p.holder, p.renew ?? [], lease.until);
        if (reclaim) await reclaimExpired(client, now);
        if (!careful) out.claimed = await claimHeads(client, p.holder, p.claims, now, lease.until);
        out.nextDueAt = await nextDue(client, this.mayHaveMore(p.claims, out.claimed));
        for (const c of p.claims) if (!out.nextDueAt.has(c.endpoint) && c.limit > 0 && this.claimedOf(c.endpoint, out.claimed) >= c.limit) out.nextDueAt.set(c.endpoint, now);
        return out;
      }, PUMP_BEGIN);
    let out: Outcome;
    try {
      out = await run(false);
    } catch (err) {
      if (isUnavailable(err)) throw err;
      out = await run(true);
    }
    if (reclaim) this.nextReclaimAt = now + this.reclaimEveryMs;
    const { lostEvents: lost, unrecorded, unclaimed, claimed, nextDueAt } = out;
    return { claimed, lease, lostEvents: lost.sort((a, b) => a[0] - b[0]), unrecorded, unclaimed, nextDueAt };
  }

  private claimedOf(endpoint: string, claimed: readonly OutboxRow[]): number {
    return claimed.filter((r) => r.endpoint === endpoint).length;
  }

  /**
   * The endpoints whose next due head must be read: an endpoint that got every claim it asked for
   * likely has more due now (said without a read: a backlog's scan is what the claim just did).
   */
  private mayHaveMore(asks: readonly ClaimAsk[], claimed: readonly OutboxRow[]): string[] {
    return asks.filter((c) => c.limit <= 0 || this.claimedOf(c.endpoint, claimed) < c.limit).map((c) => c.endpoint);
  }

  /** The pump item by item, each in its own savepoint: what fails is reported, the rest commits. */
  private async carefully(client: pg.PoolClient, p: Pump, events: Array<[number, Serialised[]]>, now: number, until: number, out: Outcome): Promise<void> {
    const alone = async (fn: () => Promise<void>, failed: (err: unknown) => void) => {
      await client.query('SAVEPOINT item');
      try {
        await fn();
        await client.query('RELEASE SAVEPOINT item');
      } catch (err) {
        if (isUnavailable(err)) throw err;
        await client.query('ROLLBACK TO SAVEPOINT item');
        failed(err);
      }
    };
    for (const [i, reqs] of events) await alone(() => insertWebhooks(client, this.pbx, reqs, now), (err) => out.lostEvents.push([i, err]));
    for (const [i, f] of p.finished.entries()) {
      await alone(async () => this.unrecorded([f], await finishAttempts(client, [f], now), i, out), (err) => out.unrecorded.push([i, err]));
    }
    for (const c of p.claims) {
      await alone(async () => void out.claimed.push(...(await claimHeads(client, p.holder, [c], now, until))), (err) => out.unclaimed.push([c.endpoint, err]));
    }
  }

  /** Finished attempts whose row did not move: their lease was taken over, or they were recorded already. */
  private unrecorded(finished: readonly FinishedAttempt[], moved: ReadonlySet<number>, first: number, out: Outcome): void {
    finished.forEach((f, i) => {
      if (!moved.has(f.webhook.id)) out.unrecorded.push([first + i, new IllegalTransitionError(f.webhook.id, 'deliver', 'a claim this attempt no longer holds')]);
    });
  }

  /** Start-up: claims whose lease ran out by `now` are pending again (same webhook-id, same step). */
  async recover(now: number): Promise<number> {
    return inTransaction(this.pool, (client) => reclaimExpired(client, now));
  }

  /** `pbxhook outbox retry`: dead or waiting webhooks back to pending with a fresh schedule. */
  async retry(sel: Selection, now: number): Promise<number> {
    const states = (sel.states ?? TRANSITIONS.retry.from).filter((s) => (TRANSITIONS.retry.from as readonly string[]).includes(s));
    const { where: w, params } = selectionSql({ ...sel, states }, 2);
    const r = await this.pool.query(
      `UPDATE webhooks SET state = '${TRANSITIONS.retry.to}', updated_at = $1, next_at = $1, step = 0, last_error = NULL WHERE ${w}`,
      [now, ...params],
    );
    return r.rowCount ?? 0;
  }

  /** A paused endpoint answered its probe: everything it owes is due now, in order. */
  async resumeEndpoint(endpoint: string, now: number): Promise<number> {
    const r = await this.pool.query(`UPDATE webhooks SET next_at = $1 WHERE endpoint = $2 AND state = 'failed_waiting' AND next_at > $1`, [now, endpoint]);
    return r.rowCount ?? 0;
  }

  /** "Retry this lane now": its head, waiting for its next retry, is due at once; the step is kept. */
  async retryLaneNow(lane: LaneRef, now: number): Promise<number> {
    const r = await this.pool.query(
      `UPDATE webhooks SET next_at = $1 WHERE pbx = $2 AND lane = $3 AND state = 'failed_waiting' AND next_at > $1`,
      [now, lane.pbx, lane.lane],
    );
    return r.rowCount ?? 0;
  }

  /** max_age: undelivered webhooks (not in flight) created before `cutoff` are dead. Per endpoint, how many. */
  async expireOlderThan(cutoff: number, now: number): Promise<Expired> {
    const { rows } = await this.pool.query<{ endpoint: string }>(
      `UPDATE webhooks SET state = '${TRANSITIONS.expire.to}', updated_at = $1, last_error = $2
       WHERE state IN (${inList(TRANSITIONS.expire.from)}) AND created_at < $3 RETURNING endpoint`,
      [now, 'PBXHOOK_OUTBOX_EXPIRED: older than delivery.max_age', cutoff],
    );
    return perEndpoint(rows);
  }

  /**
   * max_rows: beyond it, the oldest undelivered webhooks are dead. Counted over the whole shared
   * outbox: the limit protects the database, whichever PBX filled it.
   */
  async enforceMaxRows(maxRows: number, now: number): Promise<Expired> {
    const over = (await this.depth()) - maxRows;
    if (over <= 0) return new Map();
    const { rows } = await this.pool.query<{ endpoint: string }>(
      `UPDATE webhooks SET state = '${TRANSITIONS.expire.to}', updated_at = $1, last_error = $2
       WHERE id IN (SELECT id FROM webhooks WHERE state IN (${inList(TRANSITIONS.expire.from)}) ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
       RETURNING endpoint`,
      [now, 'PBXHOOK_OUTBOX_FULL: more than delivery.max_rows undelivered', over],
    );
    return perEndpoint(rows);
  }

  /** Deletes delivered or dead webhooks (and their attempts) last changed before `before`. */
  async purge(state: 'delivered' | 'dead', before: number, sel: Omit<Selection, 'states'> = {}): Promise<number> {
    const { where: w, params } = selectionSql(sel, 3);
    const r = await this.pool.query(`DELETE FROM webhooks WHERE state IN ('delivered', 'dead') AND state = $1 AND updated_at < $2 AND ${w}`, [state, before, ...params]);
    return r.rowCount ?? 0;
  }

  /** Forgets lanes with no webhooks left, no activity since `before` and no live call (webhook-sequence never starts over for a call). */
  async forgetIdleLanes(before: number): Promise<number> {
    const r = await this.pool.query(FORGET_IDLE_LANES_SQL, [before - LANE_TOUCH_MS, LIVE_CALL_KEY_PREFIX]);
    return r.rowCount ?? 0;
  }

  async saveHealth(endpoint: string, h: EndpointHealth): Promise<void> {
    if (h.failingSince === null && h.pausedAt === null) {
      await this.pool.query(`DELETE FROM endpoint_health WHERE endpoint = $1`, [endpoint]);
      return;
    }
    await this.pool.query(
      `INSERT INTO endpoint_health (endpoint, failing_since, paused_at, next_probe_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (endpoint) DO UPDATE SET failing_since = excluded.failing_since, paused_at = excluded.paused_at, next_probe_at = excluded.next_probe_at`,
      [endpoint, h.failingSince, h.pausedAt, h.nextProbeAt],
    );
  }

  /** This PBX's live calls as the last run left them: key → JSON text, keys sorted bytewise (as SQLite's). */
  async liveState(): Promise<Array<[string, string]>> {
    const { rows } = await this.pool.query<{ key: string; value: string }>(`SELECT key, value FROM live_state WHERE pbx = $1 ORDER BY key COLLATE "C"`, [this.pbx]);
    return rows.map((r) => [r.key, r.value]);
  }

  /** Webhooks not yet delivered or dead, whichever PBX they came from: the partial lane index. */
  async depth(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(`SELECT count(*) AS n FROM webhooks WHERE state IN (${UNDELIVERED_SQL})`);
    return rows[0]?.n ?? 0;
  }

  /**
   * Webhooks per state, every state present: read at every scrape and status page refresh, by
   * every daemon of a fleet. The undelivered and the dead are counted each time through their
   * partial indexes (a few ms at 500,000 rows); the delivered, most of a kept outbox, only every
   * `deliveredCountEveryMs`: counting them reads every row (290 ms of the server's time at 500,000
   * rows, with two parallel workers; the whole table grouped by state took 350 ms per scrape).
   */
  async stateCounts(): Promise<Map<OutboxState, number>> {
    const { rows } = await this.pool.query<{ state: OutboxState; n: number }>({
      name: 'pbxhook-state-counts',
      text: `SELECT state, count(*) AS n FROM webhooks WHERE state IN (${UNDELIVERED_SQL}) GROUP BY state
       UNION ALL SELECT 'dead', count(*) FROM webhooks WHERE state = 'dead'`,
    });
    const out = new Map<OutboxState, number>(STATES.map((s) => [s, 0]));
    for (const r of rows) out.set(r.state, r.n);
    out.set('delivered', await this.deliveredCount());
    return out;
  }

  private async deliveredCount(): Promise<number> {
    const at = performance.now();
    if (this.delivered === undefined || at - this.delivered.at >= this.deliveredCountEveryMs) {
      const { rows } = await this.pool.query<{ n: number }>(`SELECT count(*) AS n FROM webhooks WHERE state = 'delivered'`);
      this.delivered = { n: rows[0]?.n ?? 0, at };
    }
    return this.delivered.n;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
