/**
 * The outbox's SQLite schema, its migrations, and the mapping between rows and OutboxRow. Tables:
 * `webhooks` (one row per webhook: the request, its state, schedule step, attempt count),
 * `attempts` (one row per finished or interrupted attempt: start, latency, status, error, outcome,
 * the first 1 KB of the answer, the Retry-After asked for),
 * `lanes` (one per call and endpoint: its webhook-sequence counter), `endpoint_health` (failing
 * since, paused, next probe), `state_counts` (webhooks per state, kept by triggers) and
 * `live_state` (the calls in progress, for a restart).
 */
import type { OutboxState } from './outbox-state.js';
import type { OutboxRow, Selection } from './store.js';

/** Schema versions in order; `PRAGMA user_version` counts how many are applied. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE webhooks (
     id INTEGER PRIMARY KEY,
     webhook_id TEXT NOT NULL UNIQUE,
     endpoint TEXT NOT NULL,
     lane TEXT NOT NULL,
     seq INTEGER NOT NULL,
     call_id TEXT NOT NULL,
     summary TEXT NOT NULL,
     method TEXT NOT NULL,
     url TEXT NOT NULL,
     headers TEXT NOT NULL,
     body TEXT NOT NULL,
     state TEXT NOT NULL CHECK (state IN ('pending', 'in_flight', 'failed_waiting', 'delivered', 'dead')),
     step INTEGER NOT NULL DEFAULT 0,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_at INTEGER NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     last_status INTEGER,
     last_error TEXT,
     UNIQUE (lane, seq)
   );
   CREATE INDEX webhooks_state ON webhooks (state, updated_at);
   CREATE TABLE attempts (
     webhook INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
     n INTEGER NOT NULL,
     started_at INTEGER NOT NULL,
     latency_ms INTEGER,
     status INTEGER,
     error_code TEXT,
     error TEXT,
     outcome TEXT,
     PRIMARY KEY (webhook, n)
   ) WITHOUT ROWID;
   CREATE TABLE lanes (
     lane TEXT PRIMARY KEY,
     endpoint TEXT NOT NULL,
     last_seq INTEGER NOT NULL,
     head_at INTEGER,
     updated_at INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE INDEX lanes_due ON lanes (endpoint, head_at);
   CREATE TABLE endpoint_health (
     endpoint TEXT PRIMARY KEY,
     failing_since INTEGER,
     paused_at INTEGER,
     next_probe_at INTEGER
   ) WITHOUT ROWID;`,
  // Issue #7: which lane heads are due is kept in memory (lane-heads.ts), not updated per transition;
  // the state index covers only finished webhooks (purge), so a claim or an insert does not touch it.
  `DROP INDEX lanes_due;
   ALTER TABLE lanes DROP COLUMN head_at;
   DROP INDEX webhooks_state;
   CREATE INDEX webhooks_finished ON webhooks (state, updated_at) WHERE state IN ('delivered', 'dead');`,
  // Issue #7: /metrics asks how many webhooks are in each state on every scrape; counting the table
  // took ~225 ms at 500k rows, on the daemon's event loop. Triggers keep the count with the rows,
  // in the same transaction, whichever process writes.
  `CREATE TABLE state_counts (state TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
   INSERT INTO state_counts (state, n) SELECT state, count(*) FROM webhooks GROUP BY state;
   INSERT OR IGNORE INTO state_counts (state, n)
     VALUES ('pending', 0), ('in_flight', 0), ('failed_waiting', 0), ('delivered', 0), ('dead', 0);
   CREATE TRIGGER webhooks_count_insert AFTER INSERT ON webhooks BEGIN
     UPDATE state_counts SET n = n + 1 WHERE state = new.state;
   END;
   CREATE TRIGGER webhooks_count_delete AFTER DELETE ON webhooks BEGIN
     UPDATE state_counts SET n = n - 1 WHERE state = old.state;
   END;
   CREATE TRIGGER webhooks_count_move AFTER UPDATE OF state ON webhooks WHEN old.state <> new.state BEGIN
     UPDATE state_counts SET n = n - 1 WHERE state = old.state;
     UPDATE state_counts SET n = n + 1 WHERE state = new.state;
   END;`,
  // Issue #14 item 2: the live calls (and what the PBX adapters remember of their channels), as
  // keyed JSON texts written in the same commit as the webhooks of the same events, so that a
  // restart finds them again (src/pipeline.ts takeLiveState).
  `CREATE TABLE live_state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;`,
  // Issue #16 item 2: the console shows what the CRM answered to each failed attempt (its first
  // 1 KB, tokens masked), and why a webhook waits: the Retry-After the CRM asked for, if any.
  `ALTER TABLE attempts ADD COLUMN response TEXT;
   ALTER TABLE attempts ADD COLUMN retry_after_ms INTEGER;`,
  // Issue #15: the minute's housekeeping forgets lanes idle for a day. Without an index it read
  // every lane, one per call for a day: 54 ms of the event loop at 1M lanes, every minute (a PBX
  // at 300 calls/s keeps 26M). A lane's activity is written to the hour (store.ts LANE_TOUCH_MS),
  // so its counter update seldom moves its entry.
  `CREATE INDEX lanes_idle ON lanes (updated_at);`,
];

export type { OutboxRow, Selection } from './store.js';

export const inList = (states: readonly string[]) => states.map((s) => `'${s}'`).join(', ');

/**
 * The WHERE of the partial index `webhooks_finished`, word for word: SQLite uses a partial index
 * only for a query that repeats its condition (`state IN ('dead')` alone does not), so every query
 * over finished webhooks adds this term.
 */
export const FINISHED_TERM = `state IN ('delivered', 'dead')`;

/** `--id 12 --id msg_01H…`, `--endpoint crm`, states: one WHERE clause with named parameters. */
export function selectionSql(sel: Selection): { where: string; params: Record<string, unknown> } {
  const parts: string[] = [];
  const params: Record<string, unknown> = {};
  if (sel.ids !== undefined) {
    parts.push(`(CAST(id AS TEXT) IN (SELECT value FROM json_each(@ids)) OR webhook_id IN (SELECT value FROM json_each(@ids)))`);
    params['ids'] = JSON.stringify(sel.ids);
  }
  if (sel.endpoint !== undefined) {
    parts.push(`endpoint = @endpoint`);
    params['endpoint'] = sel.endpoint;
  }
  if (sel.states !== undefined) parts.push(`state IN (${inList(sel.states)})`);
  return { where: parts.length > 0 ? parts.join(' AND ') : '1', params };
}

export interface RawRow {
  id: number;
  webhook_id: string;
  endpoint: string;
  lane: string;
  seq: number;
  call_id: string;
  summary: string;
  method: 'GET' | 'POST';
  url: string;
  headers: string;
  body: string;
  state: OutboxState;
  step: number;
  attempts: number;
  next_at: number;
  created_at: number;
  updated_at: number;
  last_status: number | null;
  last_error: string | null;
}

/** `pbx`: the store's own PBX (one SQLite outbox serves one PBX, so rows do not repeat it). */
export function rowOf(r: RawRow, pbx: string): OutboxRow {
  return {
    id: r.id,
    webhookId: r.webhook_id,
    pbx,
    endpoint: r.endpoint,
    lane: r.lane,
    seq: r.seq,
    callId: r.call_id,
    summary: r.summary,
    method: r.method,
    url: r.url,
    headers: JSON.parse(r.headers) as Record<string, string>,
    body: r.body,
    state: r.state,
    step: r.step,
    attempts: r.attempts,
    nextAt: r.next_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    lastStatus: r.last_status,
    lastError: r.last_error,
  };
}
