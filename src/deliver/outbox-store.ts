/**
 * The durable outbox: SQLite (WAL, synchronous=NORMAL, outbox-db.ts) in the state directory. Every
 * rendered webhook is a row here before any attempt is made; every attempt is a row in `attempts`.
 * Each method is one named transition (outbox-state.ts) in one transaction, guarded by
 * `WHERE state IN (from)`.
 *
 * Order: a lane is one call at one endpoint (WebhookRequest.orderKey); only its first undelivered
 * webhook (its head) is ever claimed. Which heads are due is kept in memory (lane-heads.ts), rebuilt
 * from the rows at start-up and whenever another connection (`pbxhook outbox retry`) committed.
 * `lanes` keeps each lane's sequence counter, so webhook-sequence never starts over for a call.
 */
import { statSync } from 'node:fs';
import type { WebhookRequest } from '../emit/request.js';
import {
  IllegalTransitionError,
  type OutboxState,
  TRANSITIONS,
  type TransitionName,
  UNDELIVERED,
  callOf,
  newWebhookId,
  summarise,
} from './outbox-state.js';
import { type OutboxRow, type RawRow, type Selection, inList, rowOf, selectionSql } from './outbox-schema.js';
import { type AttemptRecord, OutboxDatabase, RESPONSE_KEEP_CHARS } from './outbox-db.js';
import type { Decision } from './schedule.js';
import { LaneHeads } from './lane-heads.js';
import { Checkpointer, type CheckpointerOptions } from './checkpointer.js';
import { LANE_TOUCH_MS } from './store.js';

export type { OutboxRow, Selection } from './outbox-schema.js';
export type { AttemptRecord, AttemptRow, StateCount } from './outbox-db.js';

/** Per endpoint, how many webhooks a limit moved to dead. */
export type Expired = Map<string, number>;

/**
 * The write-ahead log's default bound: past it, the writing connection checkpoints itself. About as
 * long as the log grew under constant writes before (4096 pages, issue #7), so the benchmarks hold.
 */
export const WAL_LIMIT_BYTES = 16 * 1024 * 1024;

export interface SqliteOutboxOptions {
  /** The PBX this outbox serves (rows' `pbx`); '' when unknown (the CLI reading a state_dir). */
  readonly pbx?: string;
  /** The daemon: the WAL is copied on a thread of its own (checkpointer.ts). */
  readonly backgroundCheckpoints?: CheckpointerOptions;
  /**
   * The `-wal` file's bound, in bytes (default WAL_LIMIT_BYTES): after any commit that leaves it
   * longer, the store checkpoints it into the database and truncates it, so it never exceeds this
   * by more than one commit, whatever the checkpoint thread does (issue #13).
   */
  readonly walLimitBytes?: number;
}

/** What the store's own checkpoints did: counters for tests and anomalies. */
export interface WalStats {
  /** The log passed walLimitBytes and was checkpointed and truncated by the writing connection. */
  truncated: number;
  /** ... but a reader in another process held it, so it could not start over (tried again next commit). */
  blocked: number;
}

/** Lanes due this recently are live traffic; see claim(). */
const FRESH_MS = 5_000;

// Statements run per webhook, built once: a template literal makes a new string (hashed again by
// the statement cache) on every call.
const HEAD_OF_LANE = `SELECT endpoint, id, state, next_at AS at FROM webhooks WHERE lane = ? AND state IN (${inList(UNDELIVERED)}) ORDER BY seq LIMIT 1`;
const UNDELIVERED_COUNT = `SELECT coalesce(sum(n), 0) FROM state_counts WHERE state IN (${inList(UNDELIVERED)})`;
const INSERT = `INSERT INTO webhooks (webhook_id, endpoint, lane, seq, call_id, summary, method, url, headers, body, state,
                                      attempts, next_at, created_at, updated_at)
   VALUES (@webhookId, @endpoint, @lane, @seq, @callId, @summary, @method, @url, @headers, @body, @state,
           @attempts, @now, @now, @now)`;
const CLAIM = `UPDATE webhooks SET state = '${TRANSITIONS.claim.to}', attempts = attempts + 1, updated_at = @now
   WHERE id = @id AND state IN (${inList(TRANSITIONS.claim.from)}) RETURNING *`;
const MOVE = Object.fromEntries(
  Object.entries(TRANSITIONS).map(([name, t]) => [
    name,
    `UPDATE webhooks SET state = '${t.to}', step = @step, next_at = @nextAt, last_status = @status, last_error = @error, updated_at = @now
     WHERE id = @id AND state IN (${inList(t.from)})`,
  ]),
) as Record<TransitionName, string>;

export class SqliteOutbox extends OutboxDatabase {
  /**
   * What memory knows of the rows: the lane index. Built on first use; forgotten after a failed
   * transaction (memory never outlives a rollback) and when another connection committed.
   */
  private lanes: LaneHeads | undefined;
  private dataVersion = -1;
  /** Inside atomically(): named transitions run without a savepoint of their own. */
  private grouped = false;
  /** One transaction function for all: better-sqlite3 builds a wrapper per db.transaction() call. */
  private readonly runInTransaction: (fn: () => unknown) => unknown;
  /** The same, begun IMMEDIATE: the write lock first, so nobody else can commit until it ends. */
  private readonly runLocked: (fn: () => unknown) => unknown;
  /** Inside pumpTransaction(): the lane index was checked for other writers when it began. */
  private checkedThisPump = false;

  private checkpointer: Checkpointer | undefined;
  private readonly walFile: string;
  private readonly walLimitBytes: number;
  readonly wal: WalStats = { truncated: 0, blocked: 0 };

  /**
   * Opens (creating if needed) and migrates the outbox; throws if the file is from a newer pbxhook.
   * With `backgroundCheckpoints` (the daemon) the WAL is copied on a thread of its own
   * (checkpointer.ts); otherwise SQLite does it inside commits, as usual. Either way the log stays
   * within `walLimitBytes` (plus one commit).
   */
  constructor(file: string, opts: SqliteOutboxOptions = {}) {
    super(file, opts.pbx);
    const transaction = this.db.transaction((fn: () => unknown) => fn());
    this.runInTransaction = transaction;
    this.runLocked = transaction.immediate;
    this.walFile = `${file}-wal`;
    this.walLimitBytes = opts.walLimitBytes ?? WAL_LIMIT_BYTES;
    const bg = opts.backgroundCheckpoints;
    if (bg !== undefined) {
      this.db.pragma('wal_autocheckpoint = 0');
      this.checkpointer = new Checkpointer(file, {
        ...bg,
        onError: (err) => {
          // Never let the log grow unchecked: back to checkpoints inside commits.
          this.checkpointer = undefined;
          if (this.db.open) this.db.pragma('wal_autocheckpoint = 1000');
          bg.onError(err);
        },
      });
    }
  }

  /**
   * The lane index, rebuilt when another connection committed since it was last checked
   * (PRAGMA data_version changes only for other connections' commits).
   */
  private heads(checkOthers: boolean, now = Date.now()): LaneHeads {
    if (checkOthers && !this.checkedThisPump) this.forgetIfOthersWrote();
    this.lanes ??= this.loadHeads(now);
    return this.lanes;
  }

  /** PRAGMA data_version changes only when another connection (`pbxhook outbox retry`) committed. */
  private forgetIfOthersWrote(): void {
    const version = this.sql('PRAGMA data_version').pluck().get() as number;
    if (version === this.dataVersion) return;
    this.dataVersion = version;
    this.forget();
  }

  private forget(): void {
    this.lanes = undefined;
  }

  private loadHeads(now: number): LaneHeads {
    const heads = new LaneHeads(FRESH_MS);
    // SQLite gives the bare columns of the row that holds min(seq): each lane's head.
    const rows = this.sql(
      `SELECT lane, endpoint, id, state, next_at AS at, min(seq) FROM webhooks WHERE state IN (${inList(UNDELIVERED)}) GROUP BY lane`,
    ).all() as HeadRow[];
    for (const r of rows) this.setHead(heads, r.lane, r, now);
    return heads;
  }

  private setHead(heads: LaneHeads, lane: string, r: Omit<HeadRow, 'lane'> | undefined, now: number): void {
    if (r === undefined) heads.idle(lane);
    else heads.fromRow(lane, r.endpoint, r.id, r.at, r.state === 'in_flight', now);
  }

  /** Reads the lane's head from its rows; a no-op until the index is needed. */
  private refreshLane(lane: string, now: number): void {
    if (this.lanes === undefined) return;
    const r = this.sql(HEAD_OF_LANE).get(lane) as Omit<HeadRow, 'lane'> | undefined;
    this.setHead(this.lanes, lane, r, now);
  }

  /**
   * A transaction (a savepoint when nested) whose failure also drops the lane index, which may hold
   * changes that were rolled back. Inside atomically() the enclosing savepoint is enough.
   */
  private tx<T>(fn: () => T): T {
    if (this.grouped) return fn();
    const outermost = !this.db.inTransaction;
    let result: T;
    try {
      result = this.runInTransaction(fn) as T;
    } catch (err) {
      this.forget();
      throw err;
    }
    if (outermost) this.committed();
    return result;
  }

  /**
   * After each commit: the thread may copy the log; if the log passed its limit, the writing
   * connection copies the rest and truncates it now, so that it never grows past the limit by more
   * than this commit, whether the thread keeps up, lags or is gone. Under constant writes this is
   * also what lets the log start over (a PASSIVE checkpoint racing the writes never finds it empty).
   * TRUNCATE waits (busy_timeout) for readers of the log; the thread is kept out (exclusive()).
   */
  private committed(): void {
    this.checkpointer?.committed();
    const size = statSync(this.walFile, { throwIfNoEntry: false })?.size ?? 0;
    if (size <= this.walLimitBytes) return;
    const truncate = () => this.db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number }>;
    try {
      const [r] = this.checkpointer ? this.checkpointer.exclusive(truncate) : truncate();
      if (r?.busy) this.wal.blocked++;
      else this.wal.truncated++;
    } catch {
      // Committed all the same; the next commit tries again.
      this.wal.blocked++;
    }
  }

  /**
   * Several named transitions as one savepoint, without one savepoint each: if any throws, all of
   * them are undone (the caller then retries them one by one). Saves two statements per webhook.
   */
  atomically(fn: () => void): void {
    this.tx(() => {
      this.grouped = true;
      try {
        fn();
      } finally {
        this.grouped = false;
      }
    });
  }

  /**
   * One PBX event's webhooks, in one transaction: all of them are on disk, or none.
   *
   * `claim` (a pump's enqueue, issue #15): a webhook the pump's claims would take anyway is written
   * in_flight at once, claimed as claim() would (attempts 1, its start now), and added to
   * `claim.rows`: one statement per webhook instead of an INSERT, an UPDATE … RETURNING and their
   * count triggers. That is a webhook that heads an idle lane, of an endpoint with a slot left in
   * `claim.slots` (used up here) and no other lane due: then the claim would pick exactly the
   * webhooks this picks, in this order. Anything else is written pending and left to claim().
   */
  insert(reqs: readonly WebhookRequest[], now: number, claim?: ClaimOnInsert): Array<{ id: number; webhookId: string; seq: number }> {
    const heads = this.heads(false, now);
    // Only where the lane index was checked for other writers in this transaction (pumpTransaction).
    const claiming = claim !== undefined && this.checkedThisPump ? claim : undefined;
    return this.tx(() => {
      // One counter update per lane: one PBX event often adds several webhooks to the same call.
      const perLane = new Map<string, { endpoint: string; n: number; next: number }>();
      for (const r of reqs) {
        const l = perLane.get(r.orderKey);
        if (l) l.n++;
        else perLane.set(r.orderKey, { endpoint: r.endpoint, n: 1, next: 0 });
      }
      for (const [lane, l] of perLane) {
        const { last_seq: last, updated_at: touched } = this.sql(
          `INSERT INTO lanes (lane, endpoint, last_seq, updated_at) VALUES (@lane, @endpoint, @n, @now)
           ON CONFLICT (lane) DO UPDATE SET last_seq = last_seq + @n RETURNING last_seq, updated_at`,
        ).get({ lane, endpoint: l.endpoint, n: l.n, now }) as { last_seq: number; updated_at: number };
        // A statement of its own: in the upsert, SQLite would move the lane's index entry each time.
        if (now - touched >= LANE_TOUCH_MS) this.sql(`UPDATE lanes SET updated_at = @now WHERE lane = @lane`).run({ lane, now });
        l.next = last - l.n + 1;
      }
      const added = reqs.map((r) => {
        const seq = perLane.get(r.orderKey)!.next++;
        const webhookId = newWebhookId(now);
        const claimed = claiming !== undefined && this.claimable(heads, claiming.slots, r, now);
        const callId = callOf(r);
        const summary = summarise(r);
        const { lastInsertRowid } = this.sql(INSERT).run({
          webhookId,
          endpoint: r.endpoint,
          lane: r.orderKey,
          seq,
          callId,
          summary,
          method: r.method,
          url: r.url,
          headers: JSON.stringify(r.headers),
          body: r.body,
          state: claimed ? TRANSITIONS.claim.to : 'pending',
          attempts: claimed ? 1 : 0,
          now,
        });
        const id = Number(lastInsertRowid);
        heads.append(r.orderKey, r.endpoint, id, now, now);
        if (claimed) {
          heads.claimed(r.orderKey);
          claiming!.slots.set(r.endpoint, claiming!.slots.get(r.endpoint)! - 1);
          claiming!.rows.push({
            id, webhookId, pbx: this.pbx, endpoint: r.endpoint, lane: r.orderKey, seq, callId, summary, method: r.method,
            url: r.url, headers: r.headers, body: r.body, state: TRANSITIONS.claim.to, step: 0, attempts: 1, nextAt: now,
            createdAt: now, updatedAt: now, lastStatus: null, lastError: null,
          });
        }
        return { id, webhookId, seq };
      });
      return added;
    });
  }

  /** See insert(): the webhook would head an idle lane, its endpoint has a slot, and no other lane is due. */
  private claimable(heads: LaneHeads, slots: ReadonlyMap<string, number>, r: WebhookRequest, now: number): boolean {
    if ((slots.get(r.endpoint) ?? 0) <= 0 || heads.get(r.orderKey) !== undefined) return false;
    const due = heads.nextDueAt(r.endpoint);
    return due === undefined || due > now;
  }

  /** Runs several named transitions as one transaction (each stays atomic as a savepoint). */
  inTransaction<T>(fn: () => T): T {
    return this.tx(fn);
  }

  /**
   * A pump's transaction (sqlite-store.ts): begun IMMEDIATE, so no other connection can commit
   * until it ends, and the lane index is checked for other writers once, at its start, rather than
   * once per claim and again for the due times (a PRAGMA each, issue #15). Everything inside,
   * and nextDueAtOf right after it, reads the index as checked.
   */
  pumpTransaction<T>(fn: () => T): T {
    if (this.db.inTransaction) throw new Error('pumpTransaction: already in a transaction');
    let result: T;
    try {
      result = this.runLocked(() => {
        this.forgetIfOthersWrote();
        this.checkedThisPump = true;
        try {
          return fn();
        } finally {
          this.checkedThisPump = false;
        }
      }) as T;
    } catch (err) {
      this.forget();
      throw err;
    }
    this.committed();
    return result;
  }

  /**
   * Up to `limit` due lane heads of `endpoint`, moved to in_flight: lanes that became due in the
   * last FRESH_MS first, then the rest, each oldest due first (lane-heads.ts). Within a lane order
   * never changes; only which lane is served first. `updated_at` becomes the attempt's start.
   */
  claim(endpoint: string, limit: number, now: number): OutboxRow[] {
    if (limit <= 0) return [];
    const heads = this.heads(true, now);
    return this.tx(() => {
      const claimed: OutboxRow[] = [];
      for (const head of heads.due(endpoint, now, limit)) {
        const raw = this.sql(CLAIM).get({ id: head.id, now }) as RawRow | undefined;
        if (raw === undefined) {
          this.refreshLane(head.lane, now); // the index was stale: read the lane again rather than guess
          continue;
        }
        heads.claimed(head.lane);
        claimed.push(rowOf(raw, this.pbx));
      }
      return claimed;
    });
  }

  /** Records the attempt and applies the decision: deliver, fail (wait), kill (dead) or requeue. */
  finish(
    row: Pick<OutboxRow, 'id' | 'lane' | 'attempts' | 'step' | 'updatedAt'>,
    attempt: AttemptRecord,
    decision: Decision,
    now: number,
  ): void {
    const name: TransitionName = { delivered: 'deliver', retry: 'fail', dead: 'kill', requeue: 'requeue' }[decision.kind] as TransitionName;
    const error = decision.kind === 'dead' ? decision.reason : (attempt.error ?? null);
    const nextAt = decision.kind === 'retry' ? decision.at : now;
    this.tx(() => {
      this.move(name, row.id, {
        step: decision.kind === 'retry' ? decision.step : row.step,
        nextAt,
        status: attempt.status ?? null,
        error: decision.kind === 'delivered' ? null : error,
        now,
      });
      this.sql(
        `INSERT INTO attempts (webhook, n, started_at, latency_ms, status, error_code, error, outcome, response, retry_after_ms)
         VALUES (@id, @n, @startedAt, @latencyMs, @status, @errorCode, @error, @outcome, @response, @retryAfterMs)`,
      ).run({
        id: row.id,
        n: row.attempts,
        startedAt: row.updatedAt,
        latencyMs: attempt.latencyMs,
        status: attempt.status ?? null,
        errorCode: attempt.errorCode ?? null,
        error: attempt.error ?? null,
        outcome: decision.kind,
        response: attempt.response?.slice(0, RESPONSE_KEEP_CHARS) ?? null,
        retryAfterMs: attempt.retryAfterMs ?? null,
      });
      // Waiting or requeued, the webhook is still its lane's head; otherwise the next one is.
      if (this.lanes === undefined) return;
      const stays = decision.kind === 'retry' || decision.kind === 'requeue';
      const known = stays ? this.lanes.retryAt(row.lane, nextAt, now) : this.lanes.advance(row.lane, now);
      if (!known) this.refreshLane(row.lane, now);
    });
  }

  private move(name: TransitionName, id: number, set: { step: number; nextAt: number; status: number | null; error: string | null; now: number }): void {
    const info = this.sql(MOVE[name]).run({ id, ...set });
    if (info.changes !== 1) {
      const found = this.sql(`SELECT state FROM webhooks WHERE id = ?`).get(id) as { state: string } | undefined;
      throw new IllegalTransitionError(id, name, found?.state);
    }
  }

  /** Start-up: attempts that never finished (kill -9, power loss) are sent again, same webhook-id. */
  recover(now: number): number {
    return this.tx(() => {
      // An attempt's row is written when it finishes; one that never did is recorded here.
      this.sql(
        `INSERT OR IGNORE INTO attempts (webhook, n, started_at, error_code, error, outcome)
         SELECT id, attempts, updated_at, 'PBXHOOK_INTERRUPTED', 'pbxhook stopped before the answer came', 'interrupted'
         FROM webhooks WHERE state = 'in_flight'`,
      ).run();
      // Open attempt rows written by an older pbxhook (outbox schema 1 wrote them at claim).
      this.sql(
        `UPDATE attempts SET outcome = 'interrupted', error_code = 'PBXHOOK_INTERRUPTED',
                error = 'pbxhook stopped before the answer came' WHERE outcome IS NULL`,
      ).run();
      return count(this.bulk('recover', `1`, {}, now, { next_at: '@now' }));
    });
  }

  /** `pbxhook outbox retry`: dead or waiting webhooks back to pending with a fresh schedule. */
  retry(sel: Selection, now: number): number {
    const states = (sel.states ?? TRANSITIONS.retry.from).filter((s) => (TRANSITIONS.retry.from as readonly string[]).includes(s));
    const { where, params } = selectionSql({ ...sel, states });
    return this.tx(() => count(this.bulk('retry', where, params, now, { next_at: '@now', step: '0', last_error: 'NULL' })));
  }

  /** A paused endpoint answered its probe: everything it owes is due now, in order. */
  resumeEndpoint(endpoint: string, now: number): number {
    return this.tx(() => {
      const lanes = this.sql(
        `UPDATE webhooks SET next_at = @now WHERE endpoint = @endpoint AND state = 'failed_waiting' AND next_at > @now RETURNING lane`,
      ).all({ endpoint, now }) as Array<{ lane: string }>;
      const unique = new Set(lanes.map((l) => l.lane));
      for (const lane of unique) this.refreshLane(lane, now);
      return lanes.length;
    });
  }

  /**
   * max_age: undelivered webhooks created before `cutoff` are dead (the caller logs it). Runs every
   * minute: it reads only the rows from the oldest lane head on, not the delivered history before it.
   */
  expireOlderThan(cutoff: number, now: number): Expired {
    const from = this.heads(true, now).oldestId();
    if (from === undefined) return new Map();
    const reason = 'PBXHOOK_OUTBOX_EXPIRED: older than delivery.max_age';
    return this.tx(() => this.bulk('expire', `id >= @from AND created_at < @cutoff`, { from, cutoff }, now, { last_error: `'${reason}'` }));
  }

  /** max_rows: beyond it, the oldest undelivered webhooks are dead (the caller logs it). */
  enforceMaxRows(maxRows: number, now: number): Expired {
    const over = this.depth() - maxRows;
    if (over <= 0) return new Map();
    const from = this.heads(true, now).oldestId() ?? 0;
    const reason = 'PBXHOOK_OUTBOX_FULL: more than delivery.max_rows undelivered';
    return this.tx(() =>
      this.bulk(
        'expire',
        `id IN (SELECT id FROM webhooks WHERE id >= @from AND state IN (${inList(TRANSITIONS.expire.from)}) ORDER BY id LIMIT @over)`,
        { from, over },
        now,
        { last_error: `'${reason}'` },
      ),
    );
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

  /**
   * "Retry this lane now" (issue #16 item 3): the lane's head, waiting for its next retry, is due at
   * once; the schedule's step is kept. The number of webhooks made due (0 or 1).
   */
  retryLaneNow(lane: string, now: number): number {
    return this.tx(() => {
      const n = this.sql(`UPDATE webhooks SET next_at = @now WHERE lane = @lane AND state = 'failed_waiting' AND next_at > @now`).run({ lane, now }).changes;
      this.refreshLane(lane, now);
      return n;
    });
  }

  /**
   * Per endpoint, the webhooks owed and the oldest of them (the console, the oldest-undelivered
   * metric): reads only the rows from the oldest lane head on, as expireOlderThan does.
   */
  undeliveredByEndpoint(): Map<string, { depth: number; oldestCreatedAt: number }> {
    const from = this.heads(true).oldestId();
    if (from === undefined) return new Map();
    const rows = this.sql(
      `SELECT endpoint, count(*) AS depth, min(created_at) AS oldest FROM webhooks
       WHERE id >= ? AND state IN (${inList(UNDELIVERED)}) GROUP BY endpoint`,
    ).all(from) as Array<{ endpoint: string; depth: number; oldest: number }>;
    return new Map(rows.map((r) => [r.endpoint, { depth: r.depth, oldestCreatedAt: r.oldest }]));
  }

  /**
   * Per endpoint, when its oldest undelivered webhook was queued (pbxhook_outbox_oldest_undelivered_seconds
   * on every scrape): the lane heads in memory, then one row read by id per endpoint, never a scan.
   */
  oldestUndelivered(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [endpoint, id] of this.heads(true).oldestIdByEndpoint()) {
      const at = this.sql(`SELECT created_at FROM webhooks WHERE id = ?`).pluck().get(id) as number | undefined;
      if (at !== undefined) out.set(endpoint, at);
    }
    return out;
  }

  /** Webhooks not yet delivered or dead: a read of the counts the triggers keep (schema 3). */
  depth(): number {
    return this.sql(UNDELIVERED_COUNT).pluck().get() as number;
  }

  /** When the endpoint's next lane head is due; undefined when it owes nothing claimable. */
  nextDueAt(endpoint: string): number | undefined {
    return this.heads(true).nextDueAt(endpoint);
  }

  /**
   * nextDueAt of each endpoint. `checked`: right after a pumpTransaction, whose check stands (a
   * commit by another process since is found at the next pump, at most POLL_MS away); otherwise the
   * lane index is checked for other writers once for them all. `now`: the pump's clock, which says
   * which heads count as fresh if the index is rebuilt here (the store's suite runs on a fake clock:
   * the wall clock had made its heads backlog, issue #17).
   */
  nextDueAtOf(endpoints: Iterable<string>, checked = false, now?: number): Map<string, number> {
    const heads = this.heads(!checked, now);
    const due = new Map<string, number>();
    for (const endpoint of endpoints) {
      const at = heads.nextDueAt(endpoint);
      if (at !== undefined) due.set(endpoint, at);
    }
    return due;
  }

  override close(): void {
    this.checkpointer?.stop();
    this.checkpointer = undefined;
    super.close();
  }
}

/** A pump's claims, made as its webhooks are written (insert()). */
export interface ClaimOnInsert {
  /** Per endpoint, the slots left to claim: what the pump asked, less what was claimed. */
  readonly slots: Map<string, number>;
  /** The webhooks claimed, in the order written. */
  readonly rows: OutboxRow[];
}

interface HeadRow {
  readonly lane: string;
  readonly endpoint: string;
  readonly id: number;
  readonly state: OutboxState;
  readonly at: number;
}

function count(m: Expired): number {
  let n = 0;
  for (const v of m.values()) n += v;
  return n;
}
