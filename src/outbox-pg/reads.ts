/**
 * What operators and the console read of the PostgreSQL outbox: counts, lists, a webhook's
 * attempts, an endpoint's activity, a lane's rows. Reads only; the transitions are in store.ts.
 */
import type pg from 'pg';
import type { AttemptRow, EndpointActivity, LaneHead, LaneRef, OutboxRow, Selection, StateCount } from '../deliver/store.js';
import type { EndpointHealth, OutboxState } from '../deliver/outbox-state.js';
import { type PgRawRow, ROW_COLUMNS, UNDELIVERED_SQL, rowOf, selectionSql } from './rows.js';

export class OutboxReads {
  constructor(protected readonly pool: pg.Pool) {}

  /**
   * Per endpoint and state, with the oldest (`pbxhook outbox stats`). Sorted bytewise as SQLite
   * sorts, not by the database's collation (en_US puts 'crm' before 'CRM').
   */
  async counts(): Promise<StateCount[]> {
    const { rows } = await this.pool.query<StateCount>(
      `SELECT endpoint, state, count(*)::int AS count, min(created_at) AS oldest FROM webhooks GROUP BY endpoint, state
       ORDER BY endpoint COLLATE "C", state COLLATE "C"`,
    );
    return rows;
  }

  async list(sel: Selection, limit: number): Promise<OutboxRow[]> {
    const { where, params } = selectionSql(sel, 2);
    const { rows } = await this.pool.query<PgRawRow>(`SELECT ${ROW_COLUMNS} FROM webhooks WHERE ${where} ORDER BY id DESC LIMIT $1`, [limit, ...params]);
    return rows.map(rowOf);
  }

  /** The last `limit` webhooks to die, most recent first (the status page). */
  async recentDead(limit: number): Promise<OutboxRow[]> {
    const { rows } = await this.pool.query<PgRawRow>(
      `SELECT ${ROW_COLUMNS} FROM webhooks WHERE state IN ('delivered', 'dead') AND state = 'dead' ORDER BY updated_at DESC LIMIT $1`,
      [limit],
    );
    return rows.map(rowOf);
  }

  /** Every attempt of a webhook, with the one in flight (outcome null) last. */
  async attemptsOf(id: number): Promise<AttemptRow[]> {
    const { rows } = await this.pool.query<AttemptRow>(
      `SELECT n, started_at AS "startedAt", latency_ms AS "latencyMs", status, error_code AS "errorCode", error, outcome,
              response, retry_after_ms AS "retryAfterMs"
       FROM attempts WHERE webhook = $1
       UNION ALL
       SELECT attempts, updated_at, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM webhooks w
       WHERE id = $1 AND state = 'in_flight' AND NOT EXISTS (SELECT 1 FROM attempts WHERE webhook = $1 AND n = w.attempts)
       ORDER BY n`,
      [id],
    );
    return rows;
  }

  /**
   * What the console shows of an endpoint beside its health: the last delivery, the last failed
   * attempt, attempts started since `since`, dead letters; attempts of the newest `window` webhooks.
   */
  async endpointActivity(endpoint: string, since: number, window = 10_000): Promise<EndpointActivity> {
    const { rows } = await this.pool.query<{ newest: number | null; delivered: number | null; dead: number }>(
      `SELECT (SELECT max(id) FROM webhooks) AS newest,
              (SELECT max(updated_at) FROM webhooks WHERE state IN ('delivered', 'dead') AND state = 'delivered' AND endpoint = $1) AS delivered,
              (SELECT count(*)::int FROM webhooks WHERE state IN ('delivered', 'dead') AND state = 'dead' AND endpoint = $1) AS dead`,
      [endpoint],
    );
    const from = (rows[0]?.newest ?? 0) - window;
    const lastError = await this.pool.query<NonNullable<EndpointActivity['lastError']>>(
      `SELECT a.started_at AS at, a.status, a.error_code AS code, a.error, w.id AS webhook FROM attempts a JOIN webhooks w ON w.id = a.webhook
       WHERE a.webhook > $1 AND w.endpoint = $2 AND a.error IS NOT NULL ORDER BY a.webhook DESC, a.n DESC LIMIT 1`,
      [from, endpoint],
    );
    const attempts = await this.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM attempts a JOIN webhooks w ON w.id = a.webhook WHERE a.webhook > $1 AND w.endpoint = $2 AND a.started_at >= $3`,
      [from, endpoint, since],
    );
    return {
      lastDeliveredAt: rows[0]?.delivered ?? null,
      lastError: lastError.rows[0] ?? null,
      attemptsSince: attempts.rows[0]?.n ?? 0,
      dead: rows[0]?.dead ?? 0,
    };
  }

  /** A lane's webhooks in sequence order, with their states (a call's journey). */
  async laneRows(lane: LaneRef): Promise<Array<{ id: number; state: OutboxState; summary: string }>> {
    const { rows } = await this.pool.query<{ id: number; state: OutboxState; summary: string }>(
      `SELECT id, state, summary FROM webhooks WHERE pbx = $1 AND lane = $2 ORDER BY seq`,
      [lane.pbx, lane.lane],
    );
    return rows;
  }

  /**
   * Each lane's first undelivered webhook, in the order asked: one statement for a page of lanes,
   * each an index probe (webhooks_lane_undelivered), instead of a round trip per lane.
   */
  async laneHeads(lanes: readonly LaneRef[]): Promise<Array<LaneHead | undefined>> {
    if (lanes.length === 0) return [];
    const { rows } = await this.pool.query<LaneHead & { i: number }>(
      `SELECT l.i::int AS i, h.id, h.seq, h.state FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS l(pbx, lane, i)
       CROSS JOIN LATERAL (
         SELECT id, seq, state FROM webhooks w WHERE w.pbx = l.pbx AND w.lane = l.lane AND w.state IN (${UNDELIVERED_SQL}) ORDER BY w.seq LIMIT 1
       ) h`,
      [lanes.map((l) => l.pbx), lanes.map((l) => l.lane)],
    );
    const out: Array<LaneHead | undefined> = lanes.map(() => undefined);
    for (const { i, ...head } of rows) out[i - 1] = head;
    return out;
  }

  async health(): Promise<Map<string, EndpointHealth>> {
    const { rows } = await this.pool.query<{ endpoint: string; failing_since: number | null; paused_at: number | null; next_probe_at: number | null }>(
      `SELECT endpoint, failing_since, paused_at, next_probe_at FROM endpoint_health`,
    );
    return new Map(rows.map((r) => [r.endpoint, { failingSince: r.failing_since, pausedAt: r.paused_at, nextProbeAt: r.next_probe_at }]));
  }

  /** Per endpoint, the webhooks owed and the oldest of them (the console, the oldest-undelivered metric). */
  async undeliveredByEndpoint(): Promise<Map<string, { depth: number; oldestCreatedAt: number }>> {
    const { rows } = await this.pool.query<{ endpoint: string; depth: number; oldest: number }>(
      `SELECT endpoint, count(*)::int AS depth, min(created_at) AS oldest FROM webhooks WHERE state IN (${UNDELIVERED_SQL}) GROUP BY endpoint`,
    );
    return new Map(rows.map((r) => [r.endpoint, { depth: r.depth, oldestCreatedAt: r.oldest }]));
  }

  /** Per endpoint, when its oldest undelivered webhook was queued. */
  async oldestUndelivered(): Promise<Map<string, number>> {
    const m = await this.undeliveredByEndpoint();
    return new Map([...m].map(([endpoint, v]) => [endpoint, v.oldestCreatedAt]));
  }

  /** Per PBX, the webhooks owed (the status page of a shared outbox). */
  async undeliveredByPbx(): Promise<Map<string, number>> {
    const { rows } = await this.pool.query<{ pbx: string; n: number }>(
      `SELECT pbx, count(*)::int AS n FROM webhooks WHERE state IN (${UNDELIVERED_SQL}) GROUP BY pbx`,
    );
    return new Map(rows.map((r) => [r.pbx, r.n]));
  }
}
