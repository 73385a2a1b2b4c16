/**
 * The outbox database: opens, tunes and migrates the SQLite file, and answers what operators ask
 * (counts, lists, attempts, endpoint health) and clean-up. The named transitions and what memory
 * knows of the rows are in outbox-store.ts, which builds on this.
 */
import Database from 'better-sqlite3';
import type { EndpointHealth, OutboxState } from './outbox-state.js';
import { type AttemptRow, type EndpointActivity, LANE_TOUCH_MS, LIVE_CALL_KEY_PREFIX, type StateCount } from './store.js';
import { FINISHED_TERM, MIGRATIONS, type OutboxRow, type RawRow, type Selection, rowOf, selectionSql } from './outbox-schema.js';

/**
 * SQLite result codes that say the database could not be written now, not that the write was
 * wrong: a full disk (SQLITE_FULL), an I/O error, a lock held too long. Whatever failed this way
 * is kept and written again later, never dropped (issue #14 item 3).
 */
const STORAGE_FAILURES = /^SQLITE_(FULL|IOERR|BUSY|LOCKED|NOMEM|READONLY|CANTOPEN|PROTOCOL)/;

export function isStorageFailure(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && STORAGE_FAILURES.test(code);
}

export type { AttemptRecord, AttemptRow, EndpointActivity, StateCount } from './store.js';
export { RESPONSE_KEEP_CHARS } from './store.js';

export class OutboxDatabase {
  readonly file: string;
  /** The PBX this outbox serves: every row's `pbx` (one SQLite outbox per PBX, so not stored per row). */
  readonly pbx: string;
  protected readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();

  /** Opens (creating if needed) and migrates the outbox; throws if the file is from a newer pbxhook. */
  constructor(file: string, pbx = '') {
    this.file = file;
    this.pbx = pbx;
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // WAL + NORMAL: a commit survives a crash or kill -9 of the daemon (it is in the WAL the OS
    // holds); only an OS crash or power loss can lose the last commits. FULL syncs the disk on
    // every commit, which capped delivery at a few hundred webhooks/s (BENCHMARKS.md).
    this.db.pragma('synchronous = NORMAL');
    // RETURNING collects its rows in a temporary table; on a temporary file (the default) that
    // tripled the cost of a claim (issue #7).
    this.db.pragma('temp_store = MEMORY');
    // `pbxhook outbox …` may write while the daemon runs; wait for the lock instead of failing.
    this.db.pragma('busy_timeout = 5000');
    this.db.pragma('foreign_keys = ON');
    // better-sqlite3 builds SQLite with a 16 MB page cache per connection (SQLite's own default is
    // 2 MB); a daemon with 10,000 calls up filled it, 13-16 MB of RSS kept for good. The pages the
    // outbox works on (lane heads, the rows just written) fit in 2 MB; the rest is in the OS's
    // page cache a read away (issue #14 item 8; README, memory).
    this.db.pragma('cache_size = -2000');
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

  /** Prepared once per text. */
  protected sql(text: string): Database.Statement {
    let s = this.statements.get(text);
    if (s === undefined) {
      s = this.db.prepare(text);
      this.statements.set(text, s);
    }
    return s;
  }

  /** Deletes delivered or dead webhooks (and their attempts) last changed before `before`: an index range, not a scan. */
  purge(state: 'delivered' | 'dead', before: number, sel: Omit<Selection, 'states'> = {}): number {
    const { where, params } = selectionSql({ ...sel, states: [state] });
    return this.sql(`DELETE FROM webhooks WHERE ${FINISHED_TERM} AND updated_at < @before AND ${where}`).run({ ...params, before }).changes;
  }

  /** The last `limit` webhooks to die, most recent first (the status page): read from the index. */
  recentDead(limit: number): OutboxRow[] {
    const raws = this.sql(`SELECT * FROM webhooks WHERE ${FINISHED_TERM} AND state = 'dead' ORDER BY updated_at DESC LIMIT ?`).all(limit) as RawRow[];
    return raws.map((r) => rowOf(r, this.pbx));
  }

  /**
   * Forgets lanes with no webhooks left, no activity since `before` and no live call. A lane
   * outlives its rows while its call may still send, so webhook-sequence never starts over for a call.
   */
  forgetIdleLanes(before: number): number {
    return this.sql(
      `DELETE FROM lanes WHERE updated_at <= ? AND NOT EXISTS (SELECT 1 FROM webhooks w WHERE w.lane = lanes.lane)
       AND NOT EXISTS (SELECT 1 FROM live_state s WHERE s.key = ? || substr(lanes.lane, length(lanes.endpoint) + 2))`,
    ).run(before - LANE_TOUCH_MS, LIVE_CALL_KEY_PREFIX).changes;
  }

  /** Webhooks per state, every state present: a read of five rows the triggers keep (schema 3). */
  stateCounts(): Map<OutboxState, number> {
    const rows = this.sql(`SELECT state, n FROM state_counts`).all() as Array<{ state: OutboxState; n: number }>;
    return new Map(rows.map((r) => [r.state, r.n]));
  }

  /** Per endpoint and state, with the oldest: a scan of the table, for operators (`pbxhook outbox stats`). */
  counts(): StateCount[] {
    return this.sql(
      `SELECT endpoint, state, count(*) AS count, min(created_at) AS oldest FROM webhooks GROUP BY endpoint, state ORDER BY endpoint, state`,
    ).all() as StateCount[];
  }

  list(sel: Selection, limit: number): OutboxRow[] {
    const { where, params } = selectionSql(sel);
    const raws = this.sql(`SELECT * FROM webhooks WHERE ${where} ORDER BY id DESC LIMIT @limit`).all({ ...params, limit }) as RawRow[];
    return raws.map((r) => rowOf(r, this.pbx));
  }

  /** Every attempt of a webhook, with the one in flight (outcome null) last. */
  attemptsOf(id: number): AttemptRow[] {
    return this.sql(
      `SELECT n, started_at AS startedAt, latency_ms AS latencyMs, status, error_code AS errorCode, error, outcome,
              response, retry_after_ms AS retryAfterMs
       FROM attempts WHERE webhook = @id
       UNION ALL
       SELECT attempts, updated_at, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM webhooks
       WHERE id = @id AND state = 'in_flight' AND NOT EXISTS (SELECT 1 FROM attempts WHERE webhook = @id AND n = webhooks.attempts)
       ORDER BY n`,
    ).all({ id }) as AttemptRow[];
  }

  /**
   * What the console shows of an endpoint beside its health (issue #16 item 1): the last delivery,
   * the last failed attempt, attempts started since `since`, dead letters. The attempt queries look
   * at the newest `window` webhooks only, so a page load stays an index range on a large outbox.
   */
  endpointActivity(endpoint: string, since: number, window = 10_000): EndpointActivity {
    const newest = (this.sql(`SELECT max(id) FROM webhooks`).pluck().get() as number | null) ?? 0;
    const from = newest - window;
    // Newest first down the finished index, stopping at this endpoint's first row.
    const lastDelivered = (this.sql(
      `SELECT updated_at FROM webhooks WHERE ${FINISHED_TERM} AND state = 'delivered' AND endpoint = ? ORDER BY updated_at DESC LIMIT 1`,
    ).pluck().get(endpoint) as number | undefined) ?? null;
    const lastError = this.sql(
      `SELECT a.started_at AS at, a.status, a.error_code AS code, a.error, w.id AS webhook FROM attempts a JOIN webhooks w ON w.id = a.webhook
       WHERE a.webhook > @from AND w.endpoint = @endpoint AND a.error IS NOT NULL ORDER BY a.webhook DESC, a.n DESC LIMIT 1`,
    ).get({ from, endpoint }) as EndpointActivity['lastError'] | undefined;
    const attempts = this.sql(
      `SELECT count(*) FROM attempts a JOIN webhooks w ON w.id = a.webhook WHERE a.webhook > @from AND w.endpoint = @endpoint AND a.started_at >= @since`,
    ).pluck().get({ from, endpoint, since }) as number;
    const dead = this.sql(`SELECT count(*) FROM webhooks WHERE ${FINISHED_TERM} AND state = 'dead' AND endpoint = ?`).pluck().get(endpoint) as number;
    return { lastDeliveredAt: lastDelivered, lastError: lastError ?? null, attemptsSince: attempts, dead };
  }

  /** A lane's webhooks in sequence order, with their states (a call's journey): the (lane, seq) index. */
  laneRows(lane: string): Array<{ id: number; state: OutboxState; summary: string }> {
    return this.sql(`SELECT id, state, summary FROM webhooks WHERE lane = ? ORDER BY seq`).all(lane) as Array<{ id: number; state: OutboxState; summary: string }>;
  }

  /** The first undelivered webhook of a lane: the one every later webhook of the lane waits behind. */
  laneHead(lane: string): { id: number; seq: number; state: OutboxState } | undefined {
    return this.sql(
      `SELECT id, seq, state FROM webhooks WHERE lane = ? AND state IN ('pending', 'in_flight', 'failed_waiting') ORDER BY seq LIMIT 1`,
    ).get(lane) as { id: number; seq: number; state: OutboxState } | undefined;
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

  /** The live state saved by the last run (issue #14 item 2): key → JSON text. */
  liveState(): Array<[string, string]> {
    return (this.sql(`SELECT key, value FROM live_state ORDER BY key`).raw().all() as Array<[string, string]>);
  }

  /** Writes what changed of the live state (undefined: gone); inside the caller's transaction. */
  saveLiveState(changes: ReadonlyMap<string, string | undefined>): void {
    for (const [key, value] of changes) {
      if (value === undefined) this.sql(`DELETE FROM live_state WHERE key = ?`).run(key);
      else this.sql(`INSERT INTO live_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(key, value);
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
