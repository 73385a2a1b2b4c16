/**
 * The outbox's states and named transitions (bullmq/Svix style), endpoint pause/probe, and the
 * small pure helpers the store needs. No SQL and no I/O: the store turns each transition into one
 * `UPDATE … WHERE state IN (from)`, so an illegal move changes nothing and is reported.
 *
 *            claim                 deliver
 *   pending ───────▶ in_flight ──────────────▶ delivered
 *      ▲  ▲            │  │  │ fail
 *      │  │ requeue,   │  │  └──────▶ failed_waiting ──claim──▶ in_flight
 *      │  │ recover    │  │ kill                 │
 *      │  └────────────┘  └─────────▶ dead ◀─────┘ expire (outbox limits)
 *      └──────────── retry (operator) ─┘
 */
import { randomFillSync } from 'node:crypto';
import type { WebhookRequest } from '../emit/request.js';

export const STATES = ['pending', 'in_flight', 'failed_waiting', 'delivered', 'dead'] as const;
export type OutboxState = (typeof STATES)[number];

/** States of a webhook not yet delivered or dead: its lane waits for it. */
export const UNDELIVERED: readonly OutboxState[] = ['pending', 'in_flight', 'failed_waiting'];

export const TRANSITIONS = {
  /** The worker takes a lane's first undelivered webhook. */
  claim: { from: ['pending', 'failed_waiting'], to: 'in_flight' },
  deliver: { from: ['in_flight'], to: 'delivered' },
  /** A retryable failure: wait for the next step of the schedule. */
  fail: { from: ['in_flight'], to: 'failed_waiting' },
  /** A permanent failure, or the schedule is used up. */
  kill: { from: ['in_flight'], to: 'dead' },
  /** Shutdown cut the attempt off: send again, same step. */
  requeue: { from: ['in_flight'], to: 'pending' },
  /** Start-up after a crash: an attempt that never finished is sent again (same webhook-id). */
  recover: { from: ['in_flight'], to: 'pending' },
  /** `pbxhook outbox retry`: a fresh schedule. */
  retry: { from: ['dead', 'failed_waiting'], to: 'pending' },
  /** Outbox limits (max_rows, max_age): logged, never silent. */
  expire: { from: ['pending', 'failed_waiting'], to: 'dead' },
} as const satisfies Record<string, { from: readonly OutboxState[]; to: OutboxState }>;

export type TransitionName = keyof typeof TRANSITIONS;

/** The state `name` leads to from `from`, or undefined when that transition is not allowed there. */
export function transition(from: OutboxState, name: TransitionName): OutboxState | undefined {
  const t = TRANSITIONS[name];
  return (t.from as readonly OutboxState[]).includes(from) ? t.to : undefined;
}

export class IllegalTransitionError extends Error {
  override readonly name = 'IllegalTransitionError';
  readonly code = 'PBXHOOK_OUTBOX_TRANSITION';
  constructor(id: number, name: TransitionName, found: string | undefined) {
    super(`webhook ${id}: cannot ${name} from ${found ?? 'a deleted row'}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Endpoint health: failing for pause_after → paused; probed every probe_every; a success resumes.

export interface EndpointHealth {
  /** First failure since the last success; null while healthy. */
  readonly failingSince: number | null;
  readonly pausedAt: number | null;
  readonly nextProbeAt: number | null;
}

export const HEALTHY: EndpointHealth = { failingSince: null, pausedAt: null, nextProbeAt: null };

/** What one attempt says about the endpoint: it answered (even 4xx), it did not, or we stopped it. */
export type Verdict = 'answered' | 'unreachable' | 'aborted';

export interface HealthChange {
  readonly health: EndpointHealth;
  readonly change?: 'paused' | 'resumed';
}

export function afterAttempt(
  h: EndpointHealth,
  verdict: Verdict,
  now: number,
  cfg: { readonly pauseAfterMs: number; readonly probeEveryMs: number },
): HealthChange {
  if (verdict === 'aborted') return { health: h };
  if (verdict === 'answered') {
    if (h.failingSince === null && h.pausedAt === null) return { health: h };
    return h.pausedAt !== null ? { health: HEALTHY, change: 'resumed' } : { health: HEALTHY };
  }
  const failingSince = h.failingSince ?? now;
  if (h.pausedAt !== null) return { health: { ...h, nextProbeAt: now + cfg.probeEveryMs } };
  if (now - failingSince >= cfg.pauseAfterMs) {
    return { health: { failingSince, pausedAt: now, nextProbeAt: now + cfg.probeEveryMs }, change: 'paused' };
  }
  return { health: { ...h, failingSince } };
}

// ---------------------------------------------------------------------------------------------

/**
 * `msg_` + a ULID (48-bit milliseconds, 80 random bits, Crockford base32): unique without
 * coordination and sortable by creation, so a wiped state dir can never reuse an id a receiver
 * has already seen and would drop as a duplicate.
 */
export function newWebhookId(nowMs: number, random: (n: number) => Uint8Array = pooledRandom): string {
  const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  let time = '';
  let t = nowMs;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  // 80 bits, most significant first, 5 at a time.
  let rand = '';
  let acc = 0;
  let bits = 0;
  for (const b of random(10)) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      rand += ALPHABET[(acc >> bits) & 31]!;
    }
    acc &= (1 << bits) - 1;
  }
  return `msg_${time}${rand}`;
}

/** One getrandom call per 409 ids instead of one each (issue #7: it showed in the outbox profile). */
const POOL = new Uint8Array(4096);
let poolAt = POOL.length;
function pooledRandom(n: number): Uint8Array {
  if (poolAt + n > POOL.length) {
    randomFillSync(POOL);
    poolAt = 0;
  }
  poolAt += n;
  return POOL.subarray(poolAt - n, poolAt);
}

/** The call a request belongs to: its orderKey is `endpoint:call` (src/emit/request.ts). */
export function callOf(req: Pick<WebhookRequest, 'endpoint' | 'orderKey'>): string {
  const prefix = `${req.endpoint}:`;
  return req.orderKey.startsWith(prefix) ? req.orderKey.slice(prefix.length) : req.orderKey;
}

const EVENT_KEYS = ['event', 'eventtype', 'event_type', 'type', 'status', 'call_state'];

/** A few words for `pbxhook outbox list`: the schema's own event name where the body has one. */
export function summarise(req: Pick<WebhookRequest, 'method' | 'url' | 'body'>): string {
  const fields = fieldsOf(req);
  // Per key of EVENT_KEYS, the value of the body's last field of that name in any case; then the
  // first of them that is a word. Runs once per webhook: no map of every field (issue #15).
  const byKey: unknown[] = [];
  for (const k in fields) {
    const i = EVENT_KEYS.indexOf(k.toLowerCase());
    if (i >= 0) byKey[i] = fields[k];
  }
  const event = byKey.find((v) => typeof v === 'string' && v !== '');
  if (typeof event === 'string') return event.slice(0, 60);
  // A body that is one URL alone is a file's address, not an event: 3CX's urlencoded variant sends
  // its recording that way. Naming it keeps the URL out of the event column (issue #16).
  if (/^https?:\/\/\S+$/.test(req.body.trim())) return 'recording';
  const text = req.body !== '' ? req.body : req.url;
  return text.replace(/\s+/g, ' ').slice(0, 60);
}

function fieldsOf(req: Pick<WebhookRequest, 'method' | 'url' | 'body'>): Record<string, unknown> {
  if (req.body === '') return URL.canParse(req.url) ? Object.fromEntries(new URL(req.url).searchParams) : {};
  if (req.body.trimStart().startsWith('{')) {
    try {
      const v: unknown = JSON.parse(req.body);
      return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
    } catch {
      return {};
    }
  }
  return /^[^=&\s]+=/.test(req.body) ? Object.fromEntries(new URLSearchParams(req.body)) : {};
}
