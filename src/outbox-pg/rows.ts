/**
 * Between PostgreSQL rows and the outbox's types (src/deliver/outbox-schema.ts): the row mapping,
 * an operator's selection as a WHERE clause with positional parameters, the state lists as SQL.
 */
import type { OutboxRow, Selection } from '../deliver/store.js';
import { type OutboxState, UNDELIVERED } from '../deliver/outbox-state.js';

export const inList = (states: readonly string[]) => states.map((s) => `'${s}'`).join(', ');
export const UNDELIVERED_SQL = inList(UNDELIVERED);

export interface PgRawRow {
  id: number;
  webhook_id: string;
  pbx: string;
  endpoint: string;
  lane: string;
  seq: number;
  call_id: string;
  summary: string;
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
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

/** The columns rowOf reads, for RETURNING and SELECT (never the claim's bookkeeping). */
export const ROW_COLUMNS =
  'id, webhook_id, pbx, endpoint, lane, seq, call_id, summary, method, url, headers, body, state, step, attempts, next_at, created_at, updated_at, last_status, last_error';

export function rowOf(r: PgRawRow): OutboxRow {
  return {
    id: r.id,
    webhookId: r.webhook_id,
    pbx: r.pbx,
    endpoint: r.endpoint,
    lane: r.lane,
    seq: r.seq,
    callId: r.call_id,
    summary: r.summary,
    method: r.method,
    url: r.url,
    headers: r.headers,
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

/**
 * `--id 12 --id msg_01H…`, `--endpoint crm`, states: a WHERE clause whose parameters are numbered
 * from `first` on (`$first`, …), so the caller may put its own before them.
 */
export function selectionSql(sel: Selection, first = 1): { where: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  const next = (v: unknown) => {
    params.push(v);
    return `$${first + params.length - 1}`;
  };
  if (sel.ids !== undefined) {
    const ids = next([...sel.ids]);
    parts.push(`(id::text = ANY(${ids}::text[]) OR webhook_id = ANY(${ids}::text[]))`);
  }
  if (sel.endpoint !== undefined) parts.push(`endpoint = ${next(sel.endpoint)}`);
  if (sel.states !== undefined) parts.push(sel.states.length === 0 ? 'false' : `state IN (${inList(sel.states)})`);
  return { where: parts.length > 0 ? parts.join(' AND ') : 'true', params };
}

/** Per endpoint, how many rows a statement returned: what a limit moved to dead, for the log. */
export function perEndpoint(rows: ReadonlyArray<{ endpoint: string }>): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of rows) out.set(r.endpoint, (out.get(r.endpoint) ?? 0) + 1);
  return out;
}
