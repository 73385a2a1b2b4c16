/**
 * The outbox on PostgreSQL (issue #17): the same states, transitions and limits as the SQLite store
 * (src/deliver/outbox-store.ts), shared by any number of processes. Each pump is one transaction
 * (pump.ts); each operator action one statement. Nothing about the rows is kept in memory: other
 * processes change them at any time, so every answer is read from the database.
 *
 * A process is one holder (`pbx@host/pid/random`): its claims are marked with it and expire at
 * `now + claimMs` (the attempt timeout and a margin), after which any process takes them back.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { WebhookRequest } from '../emit/request.js';
import type { Selection } from '../deliver/outbox-schema.js';
import { type EndpointHealth, IllegalTransitionError, type OutboxState, STATES, TRANSITIONS } from '../deliver/outbox-state.js';
import { type Added, type ClaimWish, type Finish, claimHeads, finishAttempts, insertWebhooks, reclaimExpired, saveLiveState } from './pump.js';
import { inTransaction, openPool, where } from './pool.js';
import { migrate } from './migrations.js';
import { type PgOutboxRow, UNDELIVERED_SQL, inList, perEndpoint, selectionSql } from './rows.js';
import { OutboxReads } from './reads.js';

export type { Added, ClaimWish, Finish } from './pump.js';

export interface PgStoreOptions {
  /** This process's PBX (`pbx.name`): its webhooks' rows and its live calls carry it. */
  readonly pbx: string;
  /** How long a claim holds: the attempt timeout plus a margin for the commit that records it. */
  readonly claimMs: number;
  /** How often expired claims are looked for during pumps. */
  readonly reclaimEveryMs?: number;
  readonly poolMax?: number;
  readonly onIdleError?: (err: Error) => void;
}

/** What one pump writes and asks for, all in one transaction. */
export interface PumpBatch {
  /** PBX events' webhooks, one array per event. */
  readonly inserts: ReadonlyArray<readonly WebhookRequest[]>;
  readonly finishes: readonly Finish[];
  /** What changed of the live calls since the last pump. */
  readonly liveState?: ReadonlyMap<string, string | undefined>;
  readonly claims: readonly ClaimWish[];
}

export interface PumpResult {
  /** Per event of `inserts`, its rows. */
  readonly inserted: Added[][];
  /** Per finish, undefined when recorded, else why not (its claim was no longer this holder's). */
  readonly finished: Array<Error | undefined>;
  readonly claimed: PgOutboxRow[];
  /** Claims of dead holders taken back in this pump. */
  readonly reclaimed: number;
}

export class PgOutboxStore extends OutboxReads {
  readonly holder: string;
  readonly pbx: string;
  /** What logs may say of the database: host and name, never the URL (it may hold a password). */
  readonly file: string;
  private readonly claimMs: number;
  private readonly reclaimEveryMs: number;
  private nextReclaimAt = 0;

  private constructor(pool: pg.Pool, url: string, opts: PgStoreOptions) {
    super(pool);
    this.pbx = opts.pbx;
    this.file = `postgres ${where(url)}`;
    this.claimMs = opts.claimMs;
    this.reclaimEveryMs = opts.reclaimEveryMs ?? 1_000;
    this.holder = `${opts.pbx}@${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;
  }

  /** Connects and brings the schema up to date (migrations.ts); throws if the database cannot be used. */
  static async open(url: string, opts: PgStoreOptions): Promise<PgOutboxStore> {
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
    return new PgOutboxStore(pool, url, opts);
  }

  /**
   * One transaction: the events' webhooks, the finished attempts, the live calls, then the claims
   * (which see the attempts just finished: a delivered head's successor is claimable at once).
   */
  async pump(batch: PumpBatch, now: number): Promise<PumpResult> {
    const reclaim = now >= this.nextReclaimAt;
    const result = await inTransaction(this.pool, async (client) => {
      const reqs = batch.inserts.flat();
      const added = await insertWebhooks(client, this.pbx, reqs, now);
      const moved = await finishAttempts(client, this.holder, batch.finishes, now);
      if (batch.liveState !== undefined && batch.liveState.size > 0) await saveLiveState(client, this.pbx, batch.liveState);
      const reclaimed = reclaim ? (await reclaimExpired(client, now)).length : 0;
      const claimed = await claimHeads(client, this.holder, batch.claims, now, now + this.claimMs);
      let at = 0;
      const inserted = batch.inserts.map((event) => added.slice(at, (at += event.length)));
      const finished = batch.finishes.map((f) => (moved.has(f.row.id) ? undefined : new IllegalTransitionError(f.row.id, 'deliver', 'a claim no longer held')));
      return { inserted, finished, claimed, reclaimed };
    });
    if (reclaim) this.nextReclaimAt = now + this.reclaimEveryMs;
    return result;
  }

  /** Start-up: claims whose holder is gone and whose time is up are pending again (same webhook-id). */
  async recover(now: number): Promise<number> {
    return inTransaction(this.pool, async (client) => (await reclaimExpired(client, now)).length);
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
  async retryLaneNow(lane: string, now: number): Promise<number> {
    const r = await this.pool.query(`UPDATE webhooks SET next_at = $1 WHERE lane = $2 AND state = 'failed_waiting' AND next_at > $1`, [now, lane]);
    return r.rowCount ?? 0;
  }

  /** max_age: undelivered webhooks created before `cutoff` are dead. Per endpoint, how many. */
  async expireOlderThan(cutoff: number, now: number): Promise<Map<string, number>> {
    const reason = 'PBXHOOK_OUTBOX_EXPIRED: older than delivery.max_age';
    const { rows } = await this.pool.query<{ endpoint: string }>(
      `UPDATE webhooks SET state = '${TRANSITIONS.expire.to}', updated_at = $1, last_error = $2
       WHERE state IN (${inList(TRANSITIONS.expire.from)}) AND created_at < $3 RETURNING endpoint`,
      [now, reason, cutoff],
    );
    return perEndpoint(rows);
  }

  /**
   * max_rows: beyond it, the oldest undelivered webhooks are dead. Counted over the whole shared
   * outbox: the limit protects the database, whichever PBX filled it.
   */
  async enforceMaxRows(maxRows: number, now: number): Promise<Map<string, number>> {
    const over = (await this.depth()) - maxRows;
    if (over <= 0) return new Map();
    const reason = 'PBXHOOK_OUTBOX_FULL: more than delivery.max_rows undelivered';
    const { rows } = await this.pool.query<{ endpoint: string }>(
      `UPDATE webhooks SET state = '${TRANSITIONS.expire.to}', updated_at = $1, last_error = $2
       WHERE id IN (SELECT id FROM webhooks WHERE state IN (${inList(TRANSITIONS.expire.from)}) ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
       RETURNING endpoint`,
      [now, reason, over],
    );
    return perEndpoint(rows);
  }

  /** Deletes delivered or dead webhooks (and their attempts) last changed before `before`. */
  async purge(state: 'delivered' | 'dead', before: number, sel: Omit<Selection, 'states'> = {}): Promise<number> {
    const { where: w, params } = selectionSql(sel, 3);
    const r = await this.pool.query(`DELETE FROM webhooks WHERE state = $1 AND updated_at < $2 AND ${w}`, [state, before, ...params]);
    return r.rowCount ?? 0;
  }

  /** Forgets lanes with no webhooks left and no activity since `before` (webhook-sequence never starts over for a live call). */
  async forgetIdleLanes(before: number): Promise<number> {
    const r = await this.pool.query(
      `DELETE FROM lanes l WHERE l.updated_at < $1 AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.pbx = l.pbx AND w.lane = l.lane)`,
      [before],
    );
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

  /** This PBX's live calls as the last run left them: key → JSON text. */
  async liveState(): Promise<Array<[string, string]>> {
    const { rows } = await this.pool.query<{ key: string; value: string }>(`SELECT key, value FROM live_state WHERE pbx = $1`, [this.pbx]);
    return rows.map((r) => [r.key, r.value]);
  }

  /** Webhooks not yet delivered or dead, whichever PBX they came from. */
  async depth(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(`SELECT count(*) AS n FROM webhooks WHERE state IN (${UNDELIVERED_SQL})`);
    return rows[0]?.n ?? 0;
  }

  /** Webhooks per state, every state present. */
  async stateCounts(): Promise<Map<OutboxState, number>> {
    const { rows } = await this.pool.query<{ state: OutboxState; n: number }>(`SELECT state, count(*) AS n FROM webhooks GROUP BY state`);
    const out = new Map<OutboxState, number>(STATES.map((s) => [s, 0]));
    for (const r of rows) out.set(r.state, r.n);
    return out;
  }

  /**
   * When the endpoint's next lane head not in flight is due; undefined when it owes nothing
   * claimable. A later row of a waiting lane is not due, however old.
   */
  async nextDueAt(endpoint: string): Promise<number | undefined> {
    const { rows } = await this.pool.query<{ at: number | null }>(
      `SELECT min(w.next_at) AS at FROM webhooks w WHERE w.endpoint = $1 AND w.state IN (${inList(TRANSITIONS.claim.from)})
         AND NOT EXISTS (SELECT 1 FROM webhooks x WHERE x.pbx = w.pbx AND x.lane = w.lane AND x.seq < w.seq AND x.state IN (${UNDELIVERED_SQL}))`,
      [endpoint],
    );
    return rows[0]?.at ?? undefined;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
