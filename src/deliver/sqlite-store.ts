/**
 * The SQLite backend of the store interface (store.ts): a thin asynchronous face over the
 * synchronous SQLite outbox (outbox-store.ts, outbox-db.ts), which answers at once. A pump is one
 * synchronous transaction and one resolved promise, never an await per row, so the hot path costs
 * what it did before the interface (issue #15 measures it).
 *
 * One sending process per state_dir (state-lock.ts): the claims' holder and lease are not stored;
 * `recover` at start-up takes back every claim a previous run left.
 */
import type { EndpointHealth, OutboxState } from './outbox-state.js';
import { isStorageFailure } from './outbox-db.js';
import type { ClaimOnInsert, SqliteOutbox } from './outbox-store.js';
import type {
  AttemptRow,
  EndpointActivity,
  Expired,
  LaneHead,
  LaneRef,
  OutboxRow,
  OutboxStore,
  Pump,
  PumpResult,
  Selection,
  StateCount,
} from './store.js';

/** Runs `fn` now; its value or throw as a settled promise. */
function now<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err);
  }
}

export class SqliteStore implements OutboxStore {
  constructor(readonly sqlite: SqliteOutbox) {}

  get location(): string {
    return this.sqlite.file;
  }

  get pbx(): string {
    return this.sqlite.pbx;
  }

  commitPump(p: Pump, at: number): Promise<PumpResult> {
    return now(() => this.pump(p, at));
  }

  private pump(p: Pump, at: number): PumpResult {
    const s = this.sqlite;
    const lostEvents: Array<[number, unknown]> = [];
    const unrecorded: Array<[number, unknown]> = [];
    const unclaimed: Array<[string, unknown]> = [];
    // Finished attempts first: the lanes they free are due before the webhooks written now, and a
    // webhook is claimed as it is written only when no other lane of its endpoint is due (insert()).
    const onInsert: ClaimOnInsert = { slots: new Map(p.claims.map((c) => [c.endpoint, c.limit])), rows: [] };
    const claimed: OutboxRow[] = [];
    s.pumpTransaction(() => {
      this.each(p.finished, (f) => s.finish(f.webhook, f.attempt, f.decision, at), unrecorded);
      this.each(p.enqueue, (reqs) => s.insert(reqs, at, onInsert), lostEvents, () => {
        // Undone with the savepoint: the claims it made too.
        const { slots, rows } = onInsert;
        const before = { slots: new Map(slots), rows: rows.length };
        return () => {
          for (const [endpoint, n] of before.slots) slots.set(endpoint, n);
          rows.length = before.rows;
        };
      });
      if (p.liveState.size > 0) s.saveLiveState(p.liveState);
      for (const c of p.claims) {
        // Each endpoint's in claim order: those claimed as written came before any other was due.
        for (const row of onInsert.rows) if (row.endpoint === c.endpoint) claimed.push(row);
        const limit = onInsert.slots.get(c.endpoint) ?? 0;
        if (limit <= 0) continue;
        try {
          for (const row of s.claim(c.endpoint, limit, at)) claimed.push(row);
        } catch (err) {
          if (isStorageFailure(err)) throw err; // the whole commit fails, and is tried again
          unclaimed.push([c.endpoint, err]);
        }
      }
    });
    const nextDueAt = s.nextDueAtOf(p.claims.map((c) => c.endpoint), true, at);
    return { claimed, lease: { holder: p.holder, until: at + p.leaseMs }, lostEvents, unrecorded, unclaimed, nextDueAt };
  }

  /**
   * All in one savepoint; only if that fails, each in its own, so one bad item cannot undo the
   * others. A database that cannot be written (full disk) fails the whole commit instead: nothing
   * is given up for it, everything is tried again at the next pump.
   */
  private each<T>(
    items: readonly T[],
    run: (item: T) => unknown,
    failed: Array<[number, unknown]>,
    /** Before each savepoint: what puts memory back as it was if that savepoint is rolled back. */
    mark: () => () => void = () => () => undefined,
  ): void {
    if (items.length === 0) return;
    let restore = mark();
    try {
      this.sqlite.atomically(() => {
        for (const item of items) run(item);
      });
      return;
    } catch (err) {
      restore();
      if (isStorageFailure(err)) throw err;
      // Which one? Each again on its own.
    }
    items.forEach((item, i) => {
      restore = mark();
      try {
        this.sqlite.inTransaction(() => run(item));
      } catch (err) {
        restore();
        if (isStorageFailure(err)) throw err;
        failed.push([i, err]);
      }
    });
  }

  isUnavailable(err: unknown): boolean {
    return isStorageFailure(err);
  }

  recover(at: number): Promise<number> {
    return now(() => this.sqlite.recover(at));
  }

  health(): Promise<Map<string, EndpointHealth>> {
    return now(() => this.sqlite.health());
  }

  saveHealth(endpoint: string, h: EndpointHealth): Promise<void> {
    return now(() => this.sqlite.saveHealth(endpoint, h));
  }

  resumeEndpoint(endpoint: string, at: number): Promise<number> {
    return now(() => this.sqlite.resumeEndpoint(endpoint, at));
  }

  depth(): Promise<number> {
    return now(() => this.sqlite.depth());
  }

  stateCounts(): Promise<Map<OutboxState, number>> {
    return now(() => this.sqlite.stateCounts());
  }

  expireOlderThan(cutoff: number, at: number): Promise<Expired> {
    return now(() => this.sqlite.expireOlderThan(cutoff, at));
  }

  enforceMaxRows(maxRows: number, at: number): Promise<Expired> {
    return now(() => this.sqlite.enforceMaxRows(maxRows, at));
  }

  purge(state: 'delivered' | 'dead', before: number, sel?: Omit<Selection, 'states'>): Promise<number> {
    return now(() => this.sqlite.purge(state, before, sel));
  }

  forgetIdleLanes(before: number): Promise<number> {
    return now(() => this.sqlite.forgetIdleLanes(before));
  }

  retry(sel: Selection, at: number): Promise<number> {
    return now(() => this.sqlite.retry(sel, at));
  }

  retryLaneNow(lane: LaneRef, at: number): Promise<number> {
    return now(() => (this.ours(lane) ? this.sqlite.retryLaneNow(lane.lane, at) : 0));
  }

  list(sel: Selection, limit: number): Promise<OutboxRow[]> {
    return now(() => this.sqlite.list(sel, limit));
  }

  recentDead(limit: number): Promise<OutboxRow[]> {
    return now(() => this.sqlite.recentDead(limit));
  }

  counts(): Promise<StateCount[]> {
    return now(() => this.sqlite.counts());
  }

  attemptsOf(id: number): Promise<AttemptRow[]> {
    return now(() => this.sqlite.attemptsOf(id));
  }

  endpointActivity(endpoint: string, since: number): Promise<EndpointActivity> {
    return now(() => this.sqlite.endpointActivity(endpoint, since));
  }

  laneRows(lane: LaneRef): Promise<Array<{ id: number; state: OutboxState; summary: string }>> {
    return now(() => (this.ours(lane) ? this.sqlite.laneRows(lane.lane) : []));
  }

  /** One indexed read per lane: each answers at once, there is no round trip to save. */
  laneHeads(lanes: readonly LaneRef[]): Promise<Array<LaneHead | undefined>> {
    return now(() => lanes.map((l) => (this.ours(l) ? this.sqlite.laneHead(l.lane) : undefined)));
  }

  /** A SQLite outbox holds one PBX's lanes: another PBX's lane has no rows here. */
  private ours(lane: LaneRef): boolean {
    return lane.pbx === this.sqlite.pbx;
  }

  undeliveredByEndpoint(): Promise<Map<string, { depth: number; oldestCreatedAt: number }>> {
    return now(() => this.sqlite.undeliveredByEndpoint());
  }

  oldestUndelivered(): Promise<Map<string, number>> {
    return now(() => this.sqlite.oldestUndelivered());
  }

  liveState(): Promise<Array<[string, string]>> {
    return now(() => this.sqlite.liveState());
  }

  close(): Promise<void> {
    return now(() => this.sqlite.close());
  }
}
