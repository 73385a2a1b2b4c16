/**
 * The durable outbox: SQLite (WAL, synchronous=NORMAL) in the state directory. Every rendered webhook
 * is a row here before any attempt is made; every attempt is a row in `attempts`. Each method is one
 * named transition (outbox-state.ts) in one transaction, guarded by `WHERE state IN (from)`.
 *
 * Order: a lane is one call at one endpoint (WebhookRequest.orderKey). `lanes.head_at` is when the
 * lane's first undelivered webhook may be tried, NULL while it is in flight or the lane is idle, so
 * claiming is one index range scan and a later webhook can never overtake an earlier one.
 */
import Database from 'better-sqlite3';
import type { WebhookRequest } from '../emit/request.js';
import {
  type EndpointHealth,
  IllegalTransitionError,
  type OutboxState,
  TRANSITIONS,
  type TransitionName,
  UNDELIVERED,
  callOf,
  newWebhookId,
  summarise,
} from './outbox-state.js';
import { MIGRATIONS, type OutboxRow, type RawRow, type Selection, inList, rowOf, selectionSql } from './outbox-schema.js';
import type { Decision } from './schedule.js';

export type { OutboxRow, Selection } from './outbox-schema.js';

export interface AttemptRecord {
  readonly latencyMs: number;
  readonly status: number | undefined;
  readonly errorCode: string | undefined;
  readonly error: string | undefined;
}

export interface AttemptRow extends Omit<AttemptRecord, 'status' | 'errorCode' | 'error'> {
  readonly n: number;
  readonly startedAt: number;
  readonly status: number | null;
  readonly errorCode: string | null;
  readonly error: string | null;
  readonly outcome: string | null;
}

/** Which webhooks an operator means: ids (row numbers or webhook-ids), an endpoint, states. */
export interface StateCount {
  readonly endpoint: string;
  readonly state: OutboxState;
  readonly count: number;
  readonly oldest: number;
}

/** Per endpoint, how many webhooks a limit moved to dead. */
export type Expired = Map<string, number>;

/** Lanes due this recently are live traffic; see claim(). */
const FRESH_MS = 5_000;

export class OutboxStore {
  readonly file: string;
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();

  /** Opens (creating if needed) and migrates the outbox; throws if the file is from a newer pbxhook. */
  constructor(file: string) {
    this.file = file;
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // WAL + NORMAL: a commit survives a crash or kill -9 of the daemon (it is in the WAL the OS
    // holds); only an OS crash or power loss can lose the last commits. FULL syncs the disk on
    // every commit, which capped delivery at a few hundred webhooks/s (BENCHMARKS.md).
    this.db.pragma('synchronous = NORMAL');
    // `pbxhook outbox …` may write while the daemon runs; wait for the lock instead of failing.
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
    this.migrate();
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > MIGRATIONS.length) {
      throw new Error(`${this.file}: outbox schema version ${version} is newer than this pbxhook knows (${MIGRATIONS.length})`);
    }
    this.db.transaction(() => {
      for (let v = version; v < MIGRATIONS.length; v++) this.db.exec(MIGRATIONS[v]!);
      this.db.pragma(`user_version = ${MIGRATIONS.length}`);
    })();
  }

  private sql(text: string): Database.Statement {
    let s = this.statements.get(text);
    if (s === undefined) {
      s = this.db.prepare(text);
      this.statements.set(text, s);
    }
    return s;
  }

  /** The lane's head_at from its rows: NULL while one is in flight, else its first undelivered one's next_at. */
  private refreshLane(lane: string, now: number): void {
    this.sql(
      `UPDATE lanes SET updated_at = @now, head_at = CASE
         WHEN EXISTS (SELECT 1 FROM webhooks w WHERE w.lane = lanes.lane AND w.state = 'in_flight') THEN NULL
         ELSE (SELECT w.next_at FROM webhooks w WHERE w.lane = lanes.lane AND w.state IN (${inList(TRANSITIONS.claim.from)})
               ORDER BY w.seq LIMIT 1) END
       WHERE lane = @lane`,
    ).run({ lane, now });
  }

  /** One PBX event's webhooks, in one transaction: all of them are on disk, or none. */
  insert(reqs: readonly WebhookRequest[], now: number): Array<{ id: number; webhookId: string; seq: number }> {
    return this.db.transaction(() => {
      const added = reqs.map((r) => {
        const { last_seq: seq } = this.sql(
          `INSERT INTO lanes (lane, endpoint, last_seq, head_at, updated_at) VALUES (@lane, @endpoint, 1, NULL, @now)
           ON CONFLICT (lane) DO UPDATE SET last_seq = last_seq + 1, updated_at = @now RETURNING last_seq`,
        ).get({ lane: r.orderKey, endpoint: r.endpoint, now }) as { last_seq: number };
        const webhookId = newWebhookId(now);
        const { lastInsertRowid } = this.sql(
          `INSERT INTO webhooks (webhook_id, endpoint, lane, seq, call_id, summary, method, url, headers, body, state,
                                 next_at, created_at, updated_at)
           VALUES (@webhookId, @endpoint, @lane, @seq, @callId, @summary, @method, @url, @headers, @body, 'pending',
                   @now, @now, @now)`,
        ).run({
          webhookId,
          endpoint: r.endpoint,
          lane: r.orderKey,
          seq,
          callId: callOf(r),
          summary: summarise(r),
          method: r.method,
          url: r.url,
          headers: JSON.stringify(r.headers),
          body: r.body,
          now,
        });
        return { id: Number(lastInsertRowid), webhookId, seq };
      });
      // One PBX event often adds several webhooks to a lane: its head is computed once.
      for (const lane of new Set(reqs.map((r) => r.orderKey))) this.refreshLane(lane, now);
      return added;
    })();
  }

  /** Up to `limit` due lane heads of `endpoint`, oldest due first, moved to in_flight with an open attempt row. */
  /** Runs several named transitions as one transaction (each stays atomic as a savepoint). */
  inTransaction(fn: () => void): void {
    this.db.transaction(fn)();
  }

  /**
   * Due lanes, in order of due time, except that lanes that became due in the last FRESH_MS go
   * first: after a CRM outage the backlog must not hold up the webhooks of calls happening now.
   * Within a lane order never changes; only which lane is served first.
   */
  claim(endpoint: string, limit: number, now: number): OutboxRow[] {
    if (limit <= 0) return [];
    return this.db.transaction(() => {
      const fresh = this.sql(`SELECT lane FROM lanes WHERE endpoint = ? AND head_at <= ? AND head_at > ? ORDER BY head_at LIMIT ?`)
        .all(endpoint, now, now - FRESH_MS, limit) as Array<{ lane: string }>;
      const lanes =
        fresh.length >= limit
          ? fresh
          : fresh.concat(
              this.sql(`SELECT lane FROM lanes WHERE endpoint = ? AND head_at <= ? ORDER BY head_at LIMIT ?`)
                .all(endpoint, now - FRESH_MS, limit - fresh.length) as Array<{ lane: string }>,
            );
      const claimed: OutboxRow[] = [];
      for (const { lane } of lanes) {
        const raw = this.sql(
          `UPDATE webhooks SET state = '${TRANSITIONS.claim.to}', attempts = attempts + 1, updated_at = @now
           WHERE id = (SELECT id FROM webhooks WHERE lane = @lane AND state IN (${inList(UNDELIVERED)}) ORDER BY seq LIMIT 1)
             AND state IN (${inList(TRANSITIONS.claim.from)})
           RETURNING *`,
        ).get({ lane, now }) as RawRow | undefined;
        if (raw === undefined) {
          this.refreshLane(lane, now); // head_at was stale: recompute it rather than claim out of order
          continue;
        }
        this.sql(`INSERT INTO attempts (webhook, n, started_at) VALUES (?, ?, ?)`).run(raw.id, raw.attempts, now);
        // Its head is now in flight, which is what a NULL head_at says: no need to recompute it.
        this.sql(`UPDATE lanes SET head_at = NULL, updated_at = ? WHERE lane = ?`).run(now, lane);
        claimed.push(rowOf(raw));
      }
      return claimed;
    })();
  }

  /** Records the attempt and applies the decision: deliver, fail (wait), kill (dead) or requeue. */
  finish(row: Pick<OutboxRow, 'id' | 'lane' | 'attempts' | 'step'>, attempt: AttemptRecord, decision: Decision, now: number): void {
    const name: TransitionName = { delivered: 'deliver', retry: 'fail', dead: 'kill', requeue: 'requeue' }[decision.kind] as TransitionName;
    const error = decision.kind === 'dead' ? decision.reason : (attempt.error ?? null);
    this.db.transaction(() => {
      this.move(name, row.id, {
        step: decision.kind === 'retry' ? decision.step : row.step,
        nextAt: decision.kind === 'retry' ? decision.at : now,
        status: attempt.status ?? null,
        error: decision.kind === 'delivered' ? null : error,
        now,
      });
      this.sql(
        `UPDATE attempts SET latency_ms = @latencyMs, status = @status, error_code = @errorCode, error = @error, outcome = @outcome
         WHERE webhook = @id AND n = @n`,
      ).run({
        id: row.id,
        n: row.attempts,
        latencyMs: attempt.latencyMs,
        status: attempt.status ?? null,
        errorCode: attempt.errorCode ?? null,
        error: attempt.error ?? null,
        outcome: decision.kind,
      });
      this.refreshLane(row.lane, now);
    })();
  }

  private move(name: TransitionName, id: number, set: { step: number; nextAt: number; status: number | null; error: string | null; now: number }): void {
    const t = TRANSITIONS[name];
    const info = this.sql(
      `UPDATE webhooks SET state = '${t.to}', step = @step, next_at = @nextAt, last_status = @status, last_error = @error,
              updated_at = @now
       WHERE id = @id AND state IN (${inList(t.from)})`,
    ).run({ id, ...set });
    if (info.changes !== 1) {
      const found = this.sql(`SELECT state FROM webhooks WHERE id = ?`).get(id) as { state: string } | undefined;
      throw new IllegalTransitionError(id, name, found?.state);
    }
  }

  /** Start-up: attempts that never finished (kill -9, power loss) are sent again, same webhook-id. */
  recover(now: number): number {
    return this.db.transaction(() => {
      this.sql(
        `UPDATE attempts SET outcome = 'interrupted', error_code = 'PBXHOOK_INTERRUPTED',
                error = 'pbxhook stopped before the answer came' WHERE outcome IS NULL`,
      ).run();
      return count(this.bulk('recover', `1`, {}, now, { next_at: '@now' }));
    })();
  }

  /** `pbxhook outbox retry`: dead or waiting webhooks back to pending with a fresh schedule. */
  retry(sel: Selection, now: number): number {
    const states = (sel.states ?? TRANSITIONS.retry.from).filter((s) => (TRANSITIONS.retry.from as readonly string[]).includes(s));
    const { where, params } = selectionSql({ ...sel, states });
    return this.db.transaction(() => count(this.bulk('retry', where, params, now, { next_at: '@now', step: '0', last_error: 'NULL' })))();
  }

  /** A paused endpoint answered its probe: everything it owes is due now, in order. */
  resumeEndpoint(endpoint: string, now: number): number {
    return this.db.transaction(() => {
      const lanes = this.sql(
        `UPDATE webhooks SET next_at = @now WHERE endpoint = @endpoint AND state = 'failed_waiting' AND next_at > @now RETURNING lane`,
      ).all({ endpoint, now }) as Array<{ lane: string }>;
      const unique = new Set(lanes.map((l) => l.lane));
      for (const lane of unique) this.refreshLane(lane, now);
      return lanes.length;
    })();
  }

  /** max_age: undelivered webhooks created before `cutoff` are dead (the caller logs it). */
  expireOlderThan(cutoff: number, now: number): Expired {
    const reason = 'PBXHOOK_OUTBOX_EXPIRED: older than delivery.max_age';
    return this.db.transaction(() => this.bulk('expire', `created_at < @cutoff`, { cutoff }, now, { last_error: `'${reason}'` }))();
  }

  /** max_rows: beyond it, the oldest undelivered webhooks are dead (the caller logs it). */
  enforceMaxRows(maxRows: number, now: number): Expired {
    const over = this.depth() - maxRows;
    if (over <= 0) return new Map();
    const reason = 'PBXHOOK_OUTBOX_FULL: more than delivery.max_rows undelivered';
    return this.db.transaction(() =>
      this.bulk(
        'expire',
        `id IN (SELECT id FROM webhooks WHERE state IN (${inList(TRANSITIONS.expire.from)}) ORDER BY id LIMIT @over)`,
        { over },
        now,
        { last_error: `'${reason}'` },
      ),
    )();
  }

  /** Applies a transition to every row matching `where`; refreshes their lanes; counts per endpoint. */
  private bulk(name: TransitionName, where: string, params: object, now: number, set: Record<string, string>): Expired {
    const t = TRANSITIONS[name];
    const assignments = Object.entries(set).map(([k, v]) => `, ${k} = ${v}`).join('');
    const rows = this.sql(
      `UPDATE webhooks SET state = '${t.to}', updated_at = @now${assignments}
       WHERE state IN (${inList(t.from)}) AND (${where}) RETURNING lane, endpoint`,
    ).all({ ...params, now }) as Array<{ lane: string; endpoint: string }>;
    const byEndpoint: Expired = new Map();
    for (const r of rows) byEndpoint.set(r.endpoint, (byEndpoint.get(r.endpoint) ?? 0) + 1);
    for (const lane of new Set(rows.map((r) => r.lane))) this.refreshLane(lane, now);
    return byEndpoint;
  }

  /** Deletes delivered or dead webhooks (and their attempts) last changed before `before`. */
  purge(state: 'delivered' | 'dead', before: number, sel: Omit<Selection, 'states'> = {}): number {
    const { where, params } = selectionSql({ ...sel, states: [state] });
    return this.sql(`DELETE FROM webhooks WHERE updated_at < @before AND ${where}`).run({ ...params, before }).changes;
  }

  /**
   * Forgets lanes with no webhooks left and no activity since `before`. A lane outlives its rows
   * while its call may still send, so webhook-sequence never starts over for a call.
   */
  forgetIdleLanes(before: number): number {
    return this.sql(
      `DELETE FROM lanes WHERE head_at IS NULL AND updated_at < ? AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.lane = lanes.lane)`,
    ).run(before).changes;
  }

  /** Webhooks not yet delivered or dead. */
  depth(): number {
    return (this.sql(`SELECT count(*) AS n FROM webhooks WHERE state IN (${inList(UNDELIVERED)})`).get() as { n: number }).n;
  }

  /** When the endpoint's next lane head is due; undefined when it owes nothing claimable. */
  nextDueAt(endpoint: string): number | undefined {
    const r = this.sql(`SELECT min(head_at) AS at FROM lanes WHERE endpoint = ?`).get(endpoint) as { at: number | null };
    return r.at ?? undefined;
  }

  counts(): StateCount[] {
    return this.sql(
      `SELECT endpoint, state, count(*) AS count, min(created_at) AS oldest FROM webhooks GROUP BY endpoint, state ORDER BY endpoint, state`,
    ).all() as StateCount[];
  }

  list(sel: Selection, limit: number): OutboxRow[] {
    const { where, params } = selectionSql(sel);
    const raws = this.sql(`SELECT * FROM webhooks WHERE ${where} ORDER BY id DESC LIMIT @limit`).all({ ...params, limit }) as RawRow[];
    return raws.map(rowOf);
  }

  attemptsOf(id: number): AttemptRow[] {
    return this.sql(
      `SELECT n, started_at AS startedAt, latency_ms AS latencyMs, status, error_code AS errorCode, error, outcome
       FROM attempts WHERE webhook = ? ORDER BY n`,
    ).all(id) as AttemptRow[];
  }

  health(): Map<string, EndpointHealth> {
    const rows = this.sql(`SELECT * FROM endpoint_health`).all() as Array<{
      endpoint: string;
      failing_since: number | null;
      paused_at: number | null;
      next_probe_at: number | null;
    }>;
    return new Map(rows.map((r) => [r.endpoint, { failingSince: r.failing_since, pausedAt: r.paused_at, nextProbeAt: r.next_probe_at }]));
  }

  saveHealth(endpoint: string, h: EndpointHealth): void {
    if (h.failingSince === null && h.pausedAt === null) {
      this.sql(`DELETE FROM endpoint_health WHERE endpoint = ?`).run(endpoint);
      return;
    }
    this.sql(
      `INSERT INTO endpoint_health (endpoint, failing_since, paused_at, next_probe_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (endpoint) DO UPDATE SET failing_since = excluded.failing_since, paused_at = excluded.paused_at,
         next_probe_at = excluded.next_probe_at`,
    ).run(endpoint, h.failingSince, h.pausedAt, h.nextProbeAt);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function count(m: Expired): number {
  let n = 0;
  for (const v of m.values()) n += v;
  return n;
}
