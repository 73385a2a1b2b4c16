/**
 * The statements of one pump on the PostgreSQL outbox (issue #17 item 2), each a single round trip
 * whatever the number of rows (arrays through unnest): the PBX events' webhooks, the finished
 * attempts, the live calls, the claims, when each endpoint's next head is due. The store (store.ts)
 * runs them in one transaction.
 *
 * Order per lane with several processes claiming: only a lane's head is claimable (no undelivered
 * row of the lane before it, so none in flight either), and the claim locks it `FOR UPDATE SKIP
 * LOCKED`: a second process skips a head the first is claiming, and once the first committed, sees
 * it in flight, which keeps the whole lane out. A lane's rows are numbered under its `lanes` row's
 * lock, so a lower seq always commits before a higher one and no snapshot sees a head that is not.
 */
import type pg from 'pg';
import type { WebhookRequest } from '../emit/request.js';
import { type ClaimAsk, type FinishedAttempt, LANE_TOUCH_MS, type OutboxRow, RESPONSE_KEEP_CHARS } from '../deliver/store.js';
import { TRANSITIONS, callOf, newWebhookId, summarise } from '../deliver/outbox-state.js';
import type { Decision } from '../deliver/schedule.js';
import { type PgRawRow, ROW_COLUMNS, UNDELIVERED_SQL, inList, rowOf } from './rows.js';

// The pump's statements are named (prepared once per connection): parsing and planning them anew
// each pump cost PostgreSQL more CPU than running them (pg_stat_statements on bench §7: the
// statements ran ~0.45 s of the 1.3 s its backends spent on a 5,000 backlog; issue #17).

/** Lanes due this recently are live traffic: claimed before an outage's backlog (lane-heads.ts). */
export const FRESH_MS = 5_000;

/**
 * `w` is its lane's first undelivered row: its lane's head. A subquery run per row, not NOT EXISTS:
 * as an anti join its plan hangs on the table's statistics, and statistics taken while the table
 * was nearly empty (after a drain, before autovacuum) made PostgreSQL walk the whole lane index
 * for every candidate row, unbounded: a 20k backlog drained in 60 s instead of 10, each claim up
 * to 0.7 s (bench/fleet-profile.ts, issue #17). Per row, the parameters are index conditions
 * whatever the statistics say: one probe of webhooks_lane_undelivered.
 */
const IS_HEAD = `w.seq = (SELECT x.seq FROM webhooks x WHERE x.pbx = w.pbx AND x.lane = w.lane AND x.state IN (${UNDELIVERED_SQL}) ORDER BY x.seq LIMIT 1)`;
const CLAIMABLE = `w.state IN (${inList(TRANSITIONS.claim.from)})`;
/** ROW_COLUMNS of the claimed rows, qualified: the UPDATE … FROM joins another relation. */
const CLAIMED_COLUMNS = ROW_COLUMNS.split(', ').map((col) => `w.${col}`).join(', ');

// Fresh lanes, then the rest, each read down the due index in order: a pump reads about as many
// rows as it claims, not the whole backlog (one ORDER BY over both would sort every due row).
// Two CTEs, as FOR UPDATE cannot go under a UNION.
const claimPart = (range: string, limit: string) => `(SELECT w.id FROM webhooks w
           WHERE w.endpoint = e.endpoint AND ${CLAIMABLE} AND ${range} AND ${IS_HEAD}
           ORDER BY w.next_at, w.id LIMIT ${limit} FOR UPDATE SKIP LOCKED)`;

/** The claim's locking statement: $1 endpoints, $2 how many of each, $3 now. Exported for test/62's plan check. */
export const CLAIM_LOCK_SQL = `WITH asked AS (SELECT * FROM unnest($1::text[], $2::int[]) AS e(endpoint, n)),
     fresh AS (
       SELECT e.endpoint, h.id FROM asked e CROSS JOIN LATERAL ${claimPart(`w.next_at <= $3 AND w.next_at > $3 - ${FRESH_MS}`, 'e.n')} h
     ),
     got AS (SELECT endpoint, count(*)::int AS n FROM fresh GROUP BY endpoint),
     backlog AS (
       SELECT h.id FROM asked e LEFT JOIN got g USING (endpoint)
       CROSS JOIN LATERAL ${claimPart(`w.next_at <= $3 - ${FRESH_MS}`, 'e.n - coalesce(g.n, 0)')} h
     )
     SELECT id FROM fresh UNION ALL SELECT id FROM backlog`;

/** A request whose headers are already JSON text: a request that cannot be stored fails here, alone. */
export interface Serialised {
  readonly req: WebhookRequest;
  readonly headers: string;
}

export function serialise(reqs: readonly WebhookRequest[]): Serialised[] {
  return reqs.map((req) => ({ req, headers: JSON.stringify(req.headers) }));
}

/** PBX events' webhooks, in the order given: one upsert of the lanes' counters, one insert. */
export async function insertWebhooks(client: pg.ClientBase, pbx: string, reqs: readonly Serialised[], now: number): Promise<void> {
  if (reqs.length === 0) return;
  const perLane = new Map<string, { endpoint: string; n: number; next: number }>();
  for (const { req } of reqs) {
    const l = perLane.get(req.orderKey);
    if (l) l.n++;
    else perLane.set(req.orderKey, { endpoint: req.endpoint, n: 1, next: 0 });
  }
  // Sorted, so that two processes writing the same lanes (a standby taking over) lock them in one order.
  const lanes = [...perLane.keys()].sort();
  const { rows } = await client.query<{ lane: string; last_seq: number }>({
    name: 'pbxhook-lanes-count',
    text: `INSERT INTO lanes (pbx, lane, endpoint, last_seq, updated_at)
     SELECT $1, l.lane, l.endpoint, l.n, $2 FROM unnest($3::text[], $4::text[], $5::bigint[]) AS l(lane, endpoint, n)
     ON CONFLICT (pbx, lane) DO UPDATE SET last_seq = lanes.last_seq + excluded.last_seq,
       updated_at = CASE WHEN excluded.updated_at - lanes.updated_at >= ${LANE_TOUCH_MS} THEN excluded.updated_at ELSE lanes.updated_at END
     RETURNING lane, last_seq`,
    values: [pbx, now, lanes, lanes.map((l) => perLane.get(l)!.endpoint), lanes.map((l) => perLane.get(l)!.n)],
  });
  for (const r of rows) {
    const l = perLane.get(r.lane)!;
    l.next = r.last_seq - l.n + 1;
  }
  const c = { webhookId: [] as string[], endpoint: [] as string[], lane: [] as string[], seq: [] as number[], callId: [] as string[], summary: [] as string[], method: [] as string[], url: [] as string[], headers: [] as string[], body: [] as string[] };
  for (const { req, headers } of reqs) {
    c.webhookId.push(newWebhookId(now));
    c.endpoint.push(req.endpoint);
    c.lane.push(req.orderKey);
    c.seq.push(perLane.get(req.orderKey)!.next++);
    c.callId.push(callOf(req));
    c.summary.push(summarise(req));
    c.method.push(req.method);
    c.url.push(req.url);
    c.headers.push(headers);
    c.body.push(req.body);
  }
  // WITH ORDINALITY + ORDER BY: row ids follow the events' order, as SQLite's do.
  await client.query({
    name: 'pbxhook-insert',
    text: `INSERT INTO webhooks (webhook_id, pbx, endpoint, lane, seq, call_id, summary, method, url, headers, body, state, next_at, created_at, updated_at)
     SELECT w.webhook_id, $1, w.endpoint, w.lane, w.seq, w.call_id, w.summary, w.method, w.url, w.headers::jsonb, w.body, 'pending', $2, $2, $2
     FROM unnest($3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[])
       WITH ORDINALITY AS w(webhook_id, endpoint, lane, seq, call_id, summary, method, url, headers, body, i)
     ORDER BY w.i`,
    values: [pbx, now, c.webhookId, c.endpoint, c.lane, c.seq, c.callId, c.summary, c.method, c.url, c.headers, c.body],
  });
}

const STATE_AFTER: Record<Decision['kind'], string> = {
  delivered: TRANSITIONS.deliver.to,
  retry: TRANSITIONS.fail.to,
  dead: TRANSITIONS.kill.to,
  requeue: TRANSITIONS.requeue.to,
};

/**
 * The finish: see finishAttempts. Its rows are found by primary key only. The "still in flight"
 * check is against the CTE's `was`, not a literal: with `w.state = 'in_flight'` written out, the
 * partial lane index (pending, in flight, waiting) matched the query, and when the statistics
 * said almost nothing was in flight (a drained outbox, a backlog not yet analyzed) the planner
 * hashed the finished rows against that whole index, 12,538 buffers for 3 rows: the slow drains
 * of bench/fleet.ts (a finish's mean 4.0 ms against 0.4, issue #17). A value the planner cannot
 * see leaves it the primary key or a scan of the table, and it takes the key.
 */
export const FINISH_SQL = `WITH f AS MATERIALIZED (
       SELECT *, '${TRANSITIONS.claim.to}'::text AS was FROM unnest($2::bigint[], $3::text[], $4::text[], $5::int[], $6::bigint[], $7::int[], $8::text[], $9::int[], $10::bigint[], $11::int[],
                            $12::text[], $13::text[], $14::text[], $15::text[], $16::bigint[])
         AS f(id, holder, state, step, next_at, status, last_error, n, started_at, latency_ms, error_code, error, outcome, response, retry_after_ms)
     ), moved AS (
       UPDATE webhooks w SET state = f.state, step = f.step, next_at = f.next_at, last_status = f.status, last_error = f.last_error,
              updated_at = $1, claimed_by = NULL, claim_until = NULL
       FROM f WHERE w.id = f.id AND w.state = f.was AND w.claimed_by = f.holder AND w.attempts = f.n
       RETURNING w.id
     ), noted AS (
       INSERT INTO attempts (webhook, n, started_at, latency_ms, status, error_code, error, outcome, response, retry_after_ms)
       SELECT f.id, f.n, f.started_at, f.latency_ms, f.status, f.error_code, f.error, f.outcome, f.response, f.retry_after_ms
       FROM f JOIN moved USING (id)
       ON CONFLICT (webhook, n) DO NOTHING
     )
     SELECT id FROM moved`;

/**
 * Records the attempts and moves their rows on, in one statement. Only rows still in flight under
 * the attempt's own lease move: a claim that expired (its process stalled past the lease) may have
 * been taken back and claimed again, and its new holder's attempt counts, not this one. Returns the
 * ids that moved; the others were not their holder's any more (or were finished already).
 */
export async function finishAttempts(client: pg.ClientBase, finishes: readonly FinishedAttempt[], now: number): Promise<Set<number>> {
  if (finishes.length === 0) return new Set();
  const c = { id: [] as number[], holder: [] as string[], state: [] as string[], step: [] as number[], nextAt: [] as number[], status: [] as Array<number | null>, lastError: [] as Array<string | null>, n: [] as number[], startedAt: [] as number[], latency: [] as number[], errorCode: [] as Array<string | null>, error: [] as Array<string | null>, outcome: [] as string[], response: [] as Array<string | null>, retryAfter: [] as Array<number | null> };
  for (const { webhook: row, lease, attempt, decision: d } of finishes) {
    const error = d.kind === 'dead' ? d.reason : (attempt.error ?? null);
    c.id.push(row.id);
    c.holder.push(lease.holder);
    c.state.push(STATE_AFTER[d.kind]);
    c.step.push(d.kind === 'retry' ? d.step : row.step);
    c.nextAt.push(d.kind === 'retry' ? d.at : now);
    c.status.push(attempt.status ?? null);
    c.lastError.push(d.kind === 'delivered' ? null : error);
    c.n.push(row.attempts);
    c.startedAt.push(row.updatedAt);
    c.latency.push(Math.round(attempt.latencyMs));
    c.errorCode.push(attempt.errorCode ?? null);
    c.error.push(attempt.error ?? null);
    c.outcome.push(d.kind);
    c.response.push(attempt.response?.slice(0, RESPONSE_KEEP_CHARS) ?? null);
    c.retryAfter.push(attempt.retryAfterMs ?? null);
  }
  const { rows } = await client.query<{ id: number }>({
    name: 'pbxhook-finish',
    text: FINISH_SQL,
    values: [now, c.id, c.holder, c.state, c.step, c.nextAt, c.status, c.lastError, c.n, c.startedAt, c.latency, c.errorCode, c.error, c.outcome, c.response, c.retryAfter],
  });
  return new Set(rows.map((r) => r.id));
}

/**
 * Up to `limit` due lane heads per endpoint, moved to in flight under `holder` until `until`, in
 * the order to start them: per endpoint (in the order asked), lanes due in the last FRESH_MS
 * first, then the rest, each oldest due first. Heads another transaction is claiming are skipped,
 * never waited for.
 */
export async function claimHeads(client: pg.ClientBase, holder: string, asks: readonly ClaimAsk[], now: number, until: number): Promise<OutboxRow[]> {
  const wanted = asks.filter((a) => a.limit > 0);
  if (wanted.length === 0) return [];
  const locked = await client.query<{ id: number }>({
    name: 'pbxhook-claim-lock',
    text: CLAIM_LOCK_SQL,
    values: [wanted.map((a) => a.endpoint), wanted.map((a) => a.limit), now],
  });
  if (locked.rows.length === 0) return [];
  // The locked heads are moved by a statement of their own, by primary key. As one statement (an
  // UPDATE over the locking CTE), a claim of four workers was seen spinning in its UPDATE for
  // minutes (67 s of CPU), holding every lock it took while the other workers' finishes waited on
  // them: the fleet's stall ("sent nothing for 30 s", issue #17). Likely PostgreSQL's recheck of a
  // head another worker had just moved on: the CTE locks its newest version, the UPDATE's snapshot
  // saw an older one. A new statement's snapshot sees the versions this transaction locked.
  // (As a join, not `= ANY`, the planner hashed the ids against a scan of the whole table: 7 ms of
  // 8 at 20k rows.)
  const { rows } = await client.query<PgRawRow>({
    name: 'pbxhook-claim',
    text: `UPDATE webhooks w SET state = '${TRANSITIONS.claim.to}', attempts = w.attempts + 1, updated_at = $2, claimed_by = $3, claim_until = $4
     WHERE w.id = ANY ($1::bigint[])
     RETURNING ${CLAIMED_COLUMNS}`,
    values: [locked.rows.map((r) => r.id), now, holder, until],
  });
  // RETURNING keeps no order: put the claims back in the order they were chosen.
  const rank = new Map(wanted.map((a, i) => [a.endpoint, i]));
  const fresh = (r: OutboxRow) => (r.nextAt > now - FRESH_MS ? 0 : 1);
  return rows
    .map(rowOf)
    .sort((a, b) => rank.get(a.endpoint)! - rank.get(b.endpoint)! || fresh(a) - fresh(b) || a.nextAt - b.nextAt || a.id - b.id);
}

/** nextDue's statement: $1 endpoints. Exported for test/62's plan check. */
export const NEXT_DUE_SQL = `SELECT e.endpoint, d.at FROM unnest($1::text[]) AS e(endpoint)
     CROSS JOIN LATERAL (
       SELECT w.next_at AS at FROM webhooks w WHERE w.endpoint = e.endpoint AND ${CLAIMABLE} AND ${IS_HEAD} ORDER BY w.next_at LIMIT 1
     ) d`;

/**
 * Per endpoint, when its earliest lane head not in flight is due (absent: none), read down the
 * due index in order until the first head, so a waiting lane's later rows are never taken for due.
 */
export async function nextDue(client: pg.ClientBase, endpoints: readonly string[]): Promise<Map<string, number>> {
  if (endpoints.length === 0) return new Map();
  const { rows } = await client.query<{ endpoint: string; at: number }>({
    name: 'pbxhook-next-due',
    text: NEXT_DUE_SQL,
    values: [endpoints],
  });
  return new Map(rows.map((r) => [r.endpoint, r.at]));
}

/** Writes what changed of this PBX's live calls (undefined: gone). */
export async function saveLiveState(client: pg.ClientBase, pbx: string, changes: ReadonlyMap<string, string | undefined>): Promise<void> {
  const gone: string[] = [];
  const keys: string[] = [];
  const values: string[] = [];
  for (const [key, value] of changes) {
    if (value === undefined) gone.push(key);
    else {
      keys.push(key);
      values.push(value);
    }
  }
  if (gone.length > 0) await client.query(`DELETE FROM live_state WHERE pbx = $1 AND key = ANY($2::text[])`, [pbx, gone]);
  if (keys.length > 0) {
    await client.query(
      `INSERT INTO live_state (pbx, key, value) SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS s(k, v)
       ON CONFLICT (pbx, key) DO UPDATE SET value = excluded.value`,
      [pbx, keys, values],
    );
  }
}

/** The renewal: see renewLeases. By primary key only, as the finish (FINISH_SQL says why). */
export const RENEW_SQL = `WITH s AS MATERIALIZED (SELECT '${TRANSITIONS.claim.to}'::text AS was)
     UPDATE webhooks w SET claim_until = $3 FROM s WHERE w.id = ANY ($1::bigint[]) AND w.state = s.was AND w.claimed_by = $2`;

/**
 * The holder's claims still in flight get a new lease (`until`): a live worker keeps what it is
 * still sending, however long its pumps took; a claim another holder took back stays with it.
 */
export async function renewLeases(client: pg.ClientBase, holder: string, ids: readonly number[], until: number): Promise<void> {
  if (ids.length === 0) return;
  await client.query({
    name: 'pbxhook-renew',
    text: RENEW_SQL,
    values: [ids, holder, until],
  });
}

/**
 * Claims whose lease ran out (their process killed, its host gone, cut off) are pending again,
 * same webhook-id and step, with an attempt row saying so. Rows another transaction is finishing
 * are left to it. Due since their claim: they queue as the backlog they are, not as a live call's.
 */
export async function reclaimExpired(client: pg.ClientBase, now: number): Promise<number> {
  const r = await client.query({
    name: 'pbxhook-reclaim',
    text: `WITH old AS (
       SELECT id, attempts, updated_at FROM webhooks WHERE state = 'in_flight' AND claim_until < $1 FOR UPDATE SKIP LOCKED
     ), noted AS (
       INSERT INTO attempts (webhook, n, started_at, error_code, error, outcome)
       SELECT id, attempts, updated_at, 'PBXHOOK_INTERRUPTED', 'pbxhook stopped before the answer came', 'interrupted' FROM old
       ON CONFLICT (webhook, n) DO NOTHING
     )
     UPDATE webhooks w SET state = '${TRANSITIONS.recover.to}', next_at = old.updated_at, updated_at = $1, claimed_by = NULL, claim_until = NULL
     FROM old WHERE w.id = old.id`,
    values: [now],
  });
  return r.rowCount ?? 0;
}
