/**
 * The outbox without sockets: the state machine and retry decisions (pure) and the worker driven
 * by a fake HTTP client and a fake clock (pause, probe, resume) on the SQLite store. The store's own
 * behaviour is the shared suite's (test/support/outboxStoreSuite.ts: test/60 SQLite, test/61 PostgreSQL).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { DeliveryConfig, EndpointConfig } from '../src/config/types.js';
import type { AttemptResult, HttpClient } from '../src/deliver/attempt.js';
import { DeliveryAbortedError, type DeliveryError, HttpNetworkError, HttpRedirectError, HttpStatusError } from '../src/deliver/errors.js';
import {
  HEALTHY,
  STATES,
  TRANSITIONS,
  afterAttempt,
  callOf,
  newWebhookId,
  summarise,
  transition,
} from '../src/deliver/outbox-state.js';
import { OutboxDatabase } from '../src/deliver/outbox-db.js';
import { SqliteOutbox } from '../src/deliver/outbox-store.js';
import { SqliteStore } from '../src/deliver/sqlite-store.js';
import { OutboxWorker } from '../src/deliver/outbox-worker.js';
import { decide, type RetryPolicy, waitMs } from '../src/deliver/schedule.js';
import type { WebhookRequest } from '../src/emit/request.js';
import { until } from './support/eventually.js';

const T0 = Date.parse('2026-01-01T10:00:00Z');
const POLICY: RetryPolicy = { schedule: [5_000, 30_000, 120_000], jitter: 0, retryAfterMaxMs: 3_600_000 };
const half = () => 0.5; // jitter factor 1 exactly

const ok = (status = 200): AttemptResult => ({ ok: true, status, latencyMs: 3 });
const failed = (error: DeliveryError, status?: number): AttemptResult => ({ ok: false, error, status, latencyMs: 3, body: undefined });
const http500 = failed(new HttpStatusError('crm', 500), 500);
const ctx = (step = 0, extra: Partial<{ probe: boolean; retryOn: number[] }> = {}) => ({ step, probe: false, retryOn: [], ...extra });

describe('state machine', () => {
  it('lists every transition and refuses the rest', () => {
    expect(transition('pending', 'claim')).toBe('in_flight');
    expect(transition('failed_waiting', 'claim')).toBe('in_flight');
    expect(transition('in_flight', 'deliver')).toBe('delivered');
    expect(transition('in_flight', 'fail')).toBe('failed_waiting');
    expect(transition('in_flight', 'kill')).toBe('dead');
    expect(transition('dead', 'retry')).toBe('pending');
    expect(transition('pending', 'expire')).toBe('dead');
    // Final states stay final, except an operator's retry of a dead one.
    for (const name of Object.keys(TRANSITIONS) as Array<keyof typeof TRANSITIONS>) {
      expect(transition('delivered', name), `delivered -[${name}]->`).toBeUndefined();
      if (name !== 'retry') expect(transition('dead', name), `dead -[${name}]->`).toBeUndefined();
    }
    expect(transition('pending', 'deliver')).toBeUndefined();
    expect(transition('in_flight', 'claim')).toBeUndefined();
    for (const t of Object.values(TRANSITIONS)) expect(STATES).toContain(t.to);
  });
});

describe('decide: what one attempt leads to', () => {
  it('2xx delivered; 3xx and other 4xx dead at once; shutdown requeues', () => {
    expect(decide(ok(), ctx(), POLICY, T0, half)).toEqual({ kind: 'delivered' });
    expect(decide(failed(new HttpRedirectError('crm', 301)), ctx(), POLICY, T0, half)).toMatchObject({ kind: 'dead', reason: expect.stringContaining('PBXHOOK_HTTP_REDIRECT') });
    expect(decide(failed(new HttpStatusError('crm', 410), 410), ctx(), POLICY, T0, half)).toMatchObject({ kind: 'dead', reason: expect.stringContaining('410') });
    expect(decide(failed(new DeliveryAbortedError('crm')), ctx(2), POLICY, T0, half)).toEqual({ kind: 'requeue' });
  });

  it('408, 429, 5xx and network errors follow the schedule, then dead', () => {
    for (const r of [http500, failed(new HttpStatusError('crm', 429), 429), failed(new HttpStatusError('crm', 408), 408), failed(new HttpNetworkError('crm', 'ECONNRESET', true))]) {
      expect(decide(r, ctx(0), POLICY, T0, half)).toEqual({ kind: 'retry', at: T0 + 5_000, step: 1 });
    }
    expect(decide(http500, ctx(1), POLICY, T0, half)).toEqual({ kind: 'retry', at: T0 + 30_000, step: 2 });
    expect(decide(http500, ctx(2), POLICY, T0, half)).toEqual({ kind: 'retry', at: T0 + 120_000, step: 3 });
    expect(decide(http500, ctx(3), POLICY, T0, half)).toMatchObject({ kind: 'dead', reason: expect.stringContaining('3 retries used up') });
  });

  it('retry_on makes a 4xx retryable', () => {
    const notFound = failed(new HttpStatusError('crm', 404), 404);
    expect(decide(notFound, ctx(0), POLICY, T0, half).kind).toBe('dead');
    expect(decide(notFound, ctx(0, { retryOn: [404] }), POLICY, T0, half)).toEqual({ kind: 'retry', at: T0 + 5_000, step: 1 });
  });

  it('honours a longer Retry-After up to retry_after_max, never a shorter one', () => {
    const after = (ms: number) => failed(new HttpStatusError('crm', 429, ms), 429);
    expect(decide(after(60_000), ctx(0), POLICY, T0, half)).toMatchObject({ at: T0 + 60_000 });
    expect(decide(after(1_000), ctx(0), POLICY, T0, half)).toMatchObject({ at: T0 + 5_000 });
    expect(decide(after(86_400_000), ctx(0), POLICY, T0, half)).toMatchObject({ at: T0 + 3_600_000 });
  });

  it('a failed probe of a paused endpoint uses up no step', () => {
    expect(decide(http500, ctx(1, { probe: true }), POLICY, T0, half)).toEqual({ kind: 'retry', at: T0, step: 1 });
  });

  it('jitter stays within ±jitter of the step', () => {
    const p = { ...POLICY, jitter: 0.2 };
    expect(waitMs(0, p, undefined, () => 0)).toBe(4_000);
    expect(waitMs(0, p, undefined, () => 1)).toBe(6_000);
    for (let i = 0; i < 100; i++) {
      const w = waitMs(1, p, undefined, Math.random);
      expect(w).toBeGreaterThanOrEqual(24_000);
      expect(w).toBeLessThanOrEqual(36_000);
    }
  });
});

describe('endpoint health', () => {
  const cfg = { pauseAfterMs: 60_000, probeEveryMs: 10_000 };
  it('pauses after pause_after of failures, probes, resumes on an answer', () => {
    let h = afterAttempt(HEALTHY, 'unreachable', T0, cfg).health;
    expect(h).toEqual({ failingSince: T0, pausedAt: null, nextProbeAt: null });
    expect(afterAttempt(h, 'unreachable', T0 + 59_999, cfg).change).toBeUndefined();
    const paused = afterAttempt(h, 'unreachable', T0 + 60_000, cfg);
    expect(paused).toEqual({ health: { failingSince: T0, pausedAt: T0 + 60_000, nextProbeAt: T0 + 70_000 }, change: 'paused' });
    h = afterAttempt(paused.health, 'unreachable', T0 + 70_000, cfg).health;
    expect(h.nextProbeAt).toBe(T0 + 80_000);
    expect(afterAttempt(h, 'aborted', T0 + 71_000, cfg).health).toBe(h);
    expect(afterAttempt(h, 'answered', T0 + 80_000, cfg)).toEqual({ health: HEALTHY, change: 'resumed' });
    // A success before pause_after just clears the failure streak.
    expect(afterAttempt({ failingSince: T0, pausedAt: null, nextProbeAt: null }, 'answered', T0 + 1, cfg)).toEqual({ health: HEALTHY });
  });
});

describe('helpers', () => {
  it('webhook-ids are msg_ + ULID, unique and sortable by time', () => {
    const a = newWebhookId(T0);
    const b = newWebhookId(T0 + 1);
    expect(a).toMatch(/^msg_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(a < b).toBe(true);
    expect(new Set(Array.from({ length: 1000 }, () => newWebhookId(T0))).size).toBe(1000);
  });

  it('webhook-ids carry the 80 random bits in Crockford base32, most significant first', () => {
    const bytes = Uint8Array.from([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc]);
    let n = 0n;
    for (const b of bytes) n = (n << 8n) | BigInt(b);
    const want = n.toString(32).padStart(16, '0').toUpperCase().replace(/[I-V]/g, (c) => '0123456789ABCDEFGHJKMNPQRSTVWXYZ'[parseInt(c, 32)]!);
    expect(newWebhookId(0, () => bytes)).toBe(`msg_0000000000${want}`);
    expect(newWebhookId(0, () => new Uint8Array(10).fill(255))).toBe(`msg_0000000000${'Z'.repeat(16)}`);
  });

  it('summarises the event from JSON, form or query; the call from the orderKey', () => {
    expect(summarise({ method: 'POST', url: 'http://x/', body: '{"Event":"ringing","Id":"1"}' })).toBe('ringing');
    expect(summarise({ method: 'POST', url: 'http://x/', body: 'event=hangupincoming&id=2' })).toBe('hangupincoming');
    expect(summarise({ method: 'GET', url: 'http://x/?Event=incoming', body: '' })).toBe('incoming');
    expect(summarise({ method: 'POST', url: 'http://x/', body: 'plain   text' })).toBe('plain text');
    // 3CX urlencoded's recording: the URL alone (issue #16: it showed as the event).
    expect(summarise({ method: 'POST', url: 'http://x/', body: 'https://pbx.example.com/recordings/a.wav' })).toBe('recording');
    expect(callOf({ endpoint: 'crm', orderKey: 'crm:1795301990.9' })).toBe('1795301990.9');
  });
});

// ---------------------------------------------------------------------------------------------

const dirs: string[] = [];
const stores: SqliteOutbox[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});

function tempFile(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pbxhook-outbox-'));
  dirs.push(dir);
  return path.join(dir, 'outbox.sqlite');
}
function open(file = tempFile()): SqliteOutbox {
  const s = new SqliteOutbox(file);
  stores.push(s);
  return s;
}
function req(call: string, body: string, endpoint = 'crm'): WebhookRequest {
  return { endpoint, method: 'POST', url: 'https://crm.example.com/hook', headers: { 'content-type': 'application/json' }, body, orderKey: `${endpoint}:${call}` };
}

// The SQLite store's transitions, limits, housekeeping and reads are the shared outbox suite's
// (test/support/outboxStoreSuite.ts, run on SQLite by test/60): both backends pass the same.

// ---------------------------------------------------------------------------------------------

const DELIVERY: DeliveryConfig = {
  schedule: Array(10).fill(1_000), jitter: 0, retryAfterMaxMs: 60_000, connectTimeoutMs: 1_000, timeoutMs: 1_000,
  concurrency: 2, pauseAfterMs: 2_500, probeEveryMs: 10_000, stopTimeoutMs: 1_000, maxRows: 1_000, maxAgeMs: 86_400_000,
  keepDeliveredMs: 86_400_000, keepDeadMs: 86_400_000,
};
const ENDPOINT = { name: 'crm', enabled: true, url: 'https://crm.example.com/hook', method: 'POST', events: [], recordingUrl: 'x', schema: '3cx', variant: 'json' } as EndpointConfig;

function memoryLog() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({ write: (c: Buffer, _e, done) => (lines.push(JSON.parse(c.toString()) as Record<string, unknown>), done()) });
  return { log: pino({ level: 'info' }, stream), lines };
}

/** Every attempt made so far has been recorded (its decision committed and counted). */
function allRecorded(worker: OutboxWorker): () => boolean {
  return () => {
    const s = worker.stats;
    return s.attempts === s.delivered + s.retried + s.dead + s.requeued;
  };
}

describe('OutboxWorker (fake HTTP, fake clock)', () => {
  it('pauses a failing endpoint, probes it, resumes and sends the backlog in order', async () => {
    let now = T0;
    let up = false;
    const sent: string[] = [];
    const http: HttpClient = {
      attempt: async (r) => (sent.push(r.body), up ? ok() : failed(new HttpNetworkError('crm', 'ECONNREFUSED', true))),
      close: () => {},
    };
    const store = open();
    const { log, lines } = memoryLog();
    const worker = new OutboxWorker({ store: new SqliteStore(store), http, log, endpoints: [ENDPOINT], delivery: DELIVERY, now: () => now, random: half });
    await worker.start();
    worker.enqueue([req('A', 'a1'), req('A', 'a2'), req('B', 'b1')]);
    const pump = () => (worker as unknown as { pump(): Promise<void> }).pump();
    const recorded = allRecorded(worker);
    await until(() => worker.stats.retried === 2, 'a1 and b1 failed and recorded');
    expect(sent).toEqual(['a1', 'b1']);
    for (const t of [1_000, 2_000, 3_000]) {
      now = T0 + t;
      await pump(); // claims and sends what is due now, at once
      await until(recorded, `the attempts at +${t} ms recorded`);
    }
    expect(worker.stats.pausedEndpoints).toBe(1);
    expect(lines.some((l) => String(l.msg).startsWith('endpoint paused'))).toBe(true);
    const whilePaused = sent.length;
    now = T0 + 5_000; // before the probe is due: nothing is sent
    await pump();
    expect(sent.length).toBe(whilePaused);
    up = true;
    now = T0 + 13_000; // probe due: one attempt, it is answered, everything owed goes at once
    await pump();
    expect(sent.length, 'one probe').toBe(whilePaused + 1);
    await until(() => worker.stats.delivered === 3 && recorded(), 'the probe answered, then the backlog delivered');
    expect(lines.find((l) => String(l.msg).startsWith('endpoint resumed'))).toMatchObject({ endpoint: 'crm' });
    expect(sent.slice(whilePaused)).toEqual(expect.arrayContaining(['a1', 'a2', 'b1']));
    expect(sent.lastIndexOf('a1')).toBeLessThan(sent.lastIndexOf('a2'));
    expect(worker.stats).toMatchObject({ delivered: 3, dead: 0, pausedEndpoints: 0, outboxDepth: 0 });
    await worker.stop();
  });

  it('an endpoint whose answer never comes delays no other: the other delivers everything meanwhile', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const sent: string[] = [];
    const http: HttpClient = {
      attempt: async (r) => {
        sent.push(r.body);
        if (r.endpoint === 'slow') await held; // no answer until the test says so
        return ok();
      },
      close: () => {},
    };
    const store = open();
    const { log } = memoryLog();
    const SLOW = { ...ENDPOINT, name: 'slow' } as EndpointConfig;
    const worker = new OutboxWorker({ store: new SqliteStore(store), http, log, endpoints: [SLOW, ENDPOINT], delivery: DELIVERY, now: () => T0 });
    await worker.start();
    worker.enqueue([req('A', 's1', 'slow'), req('A', 'a1'), req('B', 'b1')]);
    worker.enqueue([req('A', 's2', 'slow'), req('A', 'a2'), req('B', 'b2')]);
    await until(() => worker.stats.delivered === 4, "crm's four webhooks delivered while slow's first is unanswered");
    expect(sent.filter((b) => b.startsWith('s')), 'slow: one lane, one attempt at a time').toEqual(['s1']);
    release();
    await until(() => worker.stats.delivered === 6, "slow's two, once answered");
    expect(sent.filter((b) => b.startsWith('s'))).toEqual(['s1', 's2']);
    await worker.stop();
  });

  // Found by test/52 (a delivery worker's unit, SIGTERM under load: exit 1 after the 10 s grace):
  // an answer that came while the stop waited for a commit was never recorded, since the pump
  // asked for it was dropped while stopping, and the stop waited for that attempt for ever.
  it('records an answer that comes while the stop waits for a commit, and stops within stop_timeout', async () => {
    const store = open();
    const sqlite = new SqliteStore(store);
    const commitPump = sqlite.commitPump.bind(sqlite);
    let gate: Promise<void> | undefined;
    let commitsHeld = 0;
    sqlite.commitPump = async (p, at) => {
      if (gate) {
        commitsHeld++;
        await gate;
      }
      return commitPump(p, at);
    };
    let answer!: () => void;
    const answered = new Promise<void>((r) => (answer = r));
    const http: HttpClient = { attempt: async () => (await answered, ok()), close: () => {} };
    const worker = new OutboxWorker({ store: sqlite, http, log: memoryLog().log, endpoints: [ENDPOINT], delivery: { ...DELIVERY, stopTimeoutMs: 1_000 }, now: () => T0 });
    await worker.start();
    worker.enqueue([req('A', 'a1')]);
    await until(() => worker.stats.attempts === 1, 'a1 sent, its answer held');
    let open_!: () => void;
    gate = new Promise<void>((r) => (open_ = r));
    worker.enqueue([req('A', 'a2')]); // a pump whose commit is held (a2 waits behind a1 in its lane)
    await until(() => commitsHeld === 1, 'a commit under way');
    const stopped = worker.stop();
    answer(); // a1's answer comes while that commit is still under way…
    const inside = worker as unknown as { pendingWrites: unknown[]; wakeQueued: boolean };
    await until(() => inside.pendingWrites.length === 1 && !inside.wakeQueued, 'its record waits, and the pump it asked for came while the commit was under way');
    gate = undefined;
    open_(); // …and the commit ends after the stop began
    const late = new Promise<'late'>((r) => setTimeout(() => r('late'), 10_000).unref());
    expect(await Promise.race([stopped.then(() => 'stopped' as const), late]), 'stop waits for nothing after stop_timeout').toBe('stopped');
    expect(worker.stats.delivered, "a1's answer recorded").toBe(1);
    expect(store.stateCounts().get('delivered')).toBe(1);
  });

  // Issue #15: the slot is HTTP's (delivery.concurrency requests in flight), not the commit's.
  it('a delivered attempt frees its slot at once: the commit that records it claims the next; a failed one only after', async () => {
    for (const [first, sameCommit] of [[ok(), true], [http500, false]] as const) {
      const store = open();
      let commits = 0;
      const commitOf = new Map<string, number>();
      const finish = store.finish.bind(store);
      store.finish = (row, attempt, decision, now) => (commitOf.set(`finish ${row.lane}`, commits), finish(row, attempt, decision, now));
      // Claims are made by claim() or as the webhook is written (issue #15): counted from the pump's result.
      const sqlite = new SqliteStore(store);
      const commitPump = sqlite.commitPump.bind(sqlite);
      sqlite.commitPump = async (p, at) => {
        commits++;
        const r = await commitPump(p, at);
        for (const row of r.claimed) commitOf.set(`claim ${row.lane}`, commits);
        return r;
      };
      const http: HttpClient = { attempt: async (r) => (r.body === 'a1' ? first : ok()), close: () => {} };
      const worker = new OutboxWorker({ store: sqlite, http, log: memoryLog().log, endpoints: [ENDPOINT], delivery: { ...DELIVERY, concurrency: 1 }, now: () => T0 });
      await worker.start();
      worker.enqueue([req('A', 'a1'), req('B', 'b1')]); // two calls, one slot: a1 first
      await until(() => worker.stats.delivered + worker.stats.retried === 2, 'a1 answered and recorded, then b1');
      expect(commitOf.get('claim crm:A')).toBeLessThan(commitOf.get('claim crm:B')!);
      if (sameCommit) expect(commitOf.get('claim crm:B')).toBe(commitOf.get('finish crm:A'));
      else expect(commitOf.get('claim crm:B')).toBeGreaterThan(commitOf.get('finish crm:A')!);
      await worker.stop();
    }
  });

  it('one turn, one commit: a write that fails is logged alone and undoes nothing else', async () => {
    const store = open();
    const finish = store.finish.bind(store);
    store.finish = (row, attempt, decision, now) => {
      if (row.lane === 'crm:B') throw new Error('disk says no');
      finish(row, attempt, decision, now);
    };
    const { log, lines } = memoryLog();
    const http: HttpClient = { attempt: async () => ok(), close: () => {} };
    const worker = new OutboxWorker({ store: new SqliteStore(store), http, log, endpoints: [ENDPOINT], delivery: { ...DELIVERY, concurrency: 5 }, now: () => T0 });
    await worker.start();
    const unstorable = { ...req('C', 'c1'), headers: { x: 1n } as unknown as Record<string, string> }; // JSON cannot hold a bigint
    worker.enqueue([req('A', 'a1')]);
    worker.enqueue([unstorable]);
    worker.enqueue([req('B', 'b1'), req('A', 'a2')]);
    const logged = (msg: string) => lines.filter((l) => l.msg === msg).length;
    await until(() => logged('webhook delivered') === 2 && logged('could not record a delivery attempt') === 1, 'a1 and a2 delivered, b1 not recorded');
    expect(lines.filter((l) => l.code === 'PBXHOOK_OUTBOX_WRITE')).toMatchObject([{ webhooks: 1, msg: expect.stringContaining('could not be written') }]);
    expect(lines.filter((l) => l.msg === 'could not record a delivery attempt')).toMatchObject([{ endpoint: 'crm' }]);
    expect(lines.filter((l) => l.msg === 'webhook delivered').map((l) => l.call)).toEqual(['A', 'A']);
    expect(store.list({ states: ['in_flight'] }, 10).map((r) => r.body), 'left for recovery at the next start').toEqual(['b1']);
    await worker.stop();
  });

  it("'webhook delivered' (built without redaction, issue #15): these fields, the URL without its secrets", async () => {
    const store = open();
    const { log, lines } = memoryLog();
    const http: HttpClient = { attempt: async () => ok(), close: () => {} };
    const worker = new OutboxWorker({ store: new SqliteStore(store), http, log, endpoints: [ENDPOINT], delivery: DELIVERY, now: () => T0 });
    await worker.start();
    worker.enqueue([{ ...req('A', 'a1'), url: 'https://bob:hunter2@crm.example.com/hook?token=SECRET' }]);
    await until(() => lines.some((l) => l.msg === 'webhook delivered'), 'a1 delivered');
    const line = lines.find((l) => l.msg === 'webhook delivered')!;
    expect(line).toMatchObject({ endpoint: 'crm', method: 'POST', url: 'https://crm.example.com/hook', call: 'A', seq: 1, attempt: 1, status: 200, latencyMs: 3 });
    expect(Object.keys(line).sort()).toEqual(['attempt', 'call', 'endpoint', 'hostname', 'latencyMs', 'level', 'method', 'msg', 'pid', 'seq', 'status', 'time', 'url', 'webhookId']);
    expect(JSON.stringify(lines)).not.toMatch(/hunter2|SECRET/);
    await worker.stop();
  });

  it('logs when max_rows bites, naming the limit; nothing disappears silently', async () => {
    const store = open();
    const { log, lines } = memoryLog();
    const http: HttpClient = { attempt: async () => failed(new HttpNetworkError('crm', 'ECONNREFUSED', true)), close: () => {} };
    const worker = new OutboxWorker({ store: new SqliteStore(store), http, log, endpoints: [], delivery: { ...DELIVERY, maxRows: 2 }, now: () => T0 });
    await worker.start();
    worker.enqueue([req('A', 'a1'), req('B', 'b1'), req('C', 'c1')]);
    expect(store.depth(), 'committed by the next pump, not at once').toBe(0);
    await until(() => lines.some((l) => l.code === 'PBXHOOK_OUTBOX_FULL'), 'max_rows to bite');
    expect(lines.find((l) => l.code === 'PBXHOOK_OUTBOX_FULL')).toMatchObject({ endpoint: 'crm', count: 1, msg: expect.stringContaining('delivery.max_rows') });
    expect(worker.stats).toMatchObject({ expired: 1, outboxDepth: 2 });
    await worker.stop();
  });

  it('over max_rows after a pump enforces that limit alone; the minute\'s whole housekeeping still runs', async () => {
    // The whole housekeeping reads every undelivered row (max_age): run after each pump of an
    // outbox over max_rows, it held the event loop ~50 ms a pump at 110,000 rows.
    const calls: string[] = [];
    const count = (name: string) => calls.filter((c) => c === name).length;
    let gate: Promise<void> | undefined;
    const inner = new SqliteStore(open());
    const store = Object.assign(Object.create(inner) as SqliteStore, {
      expireOlderThan: (cutoff: number, now: number) => (calls.push('expire'), inner.expireOlderThan(cutoff, now)),
      enforceMaxRows: async (max: number, now: number) => (calls.push('maxRows'), await gate, inner.enforceMaxRows(max, now)),
      purge: (...a: Parameters<SqliteStore['purge']>) => (calls.push('purge'), inner.purge(...a)),
      forgetIdleLanes: (before: number) => (calls.push('forget'), inner.forgetIdleLanes(before)),
    });
    const { log, lines } = memoryLog();
    const full = () => lines.filter((l) => l.code === 'PBXHOOK_OUTBOX_FULL').length;
    const http: HttpClient = { attempt: async () => failed(new HttpNetworkError('crm', 'ECONNREFUSED', true)), close: () => {} };
    const worker = new OutboxWorker({ store, http, log, endpoints: [], delivery: { ...DELIVERY, maxRows: 2 }, now: () => T0, maxRowsEveryMs: 0 });
    const whole = ['expire', 'maxRows', 'purge', 'purge', 'forget'];
    try {
      vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
      await worker.start();
      expect(calls, 'start: the whole housekeeping once').toEqual(whole);
      for (const [i, call] of ['A', 'B', 'C'].entries()) {
        worker.enqueue([req(call, `${call}1`), req(call, `${call}2`), req(call, `${call}3`)]);
        await until(() => full() > i, `max_rows to bite after pump ${i + 1}`);
      }
      const over = calls.slice(whole.length);
      expect(new Set(over), 'over the limit: max_rows alone').toEqual(new Set(['maxRows']));
      expect(over.length).toBeGreaterThanOrEqual(3);

      // The minute comes while a max_rows run is going: that run stays max_rows only, and the
      // whole housekeeping follows it at once.
      let open_ = () => {};
      gate = new Promise<void>((r) => (open_ = r));
      const before = calls.length;
      worker.enqueue([req('D', 'D1')]);
      await until(() => calls.length > before, 'a max_rows run to start');
      vi.advanceTimersByTime(60_000);
      open_();
      gate = undefined;
      await until(() => count('forget') === 2, 'the whole housekeeping after it');
      expect(calls.slice(before, before + 1 + whole.length)).toEqual(['maxRows', ...whole]);
      expect(full()).toBe(4);
      expect(worker.stats.outboxDepth).toBe(2);
    } finally {
      vi.useRealTimers();
      await worker.stop();
    }
  });

  it('brings an outbox over max_rows back under it at most every 250 ms between the minute\'s runs', async () => {
    // On PostgreSQL each run counts the whole shared outbox's undelivered rows.
    let runs = 0;
    const db = open();
    const inner = new SqliteStore(db);
    const store = Object.assign(Object.create(inner) as SqliteStore, {
      enforceMaxRows: (max: number, now: number) => (runs++, inner.enforceMaxRows(max, now)),
    });
    const http: HttpClient = { attempt: async () => failed(new HttpNetworkError('crm', 'ECONNREFUSED', true)), close: () => {} };
    const worker = new OutboxWorker({ store, http, log: pino({ level: 'silent' }), endpoints: [], delivery: { ...DELIVERY, maxRows: 2 }, now: () => T0 });
    const rows = () => [...db.stateCounts().values()].reduce((a, b) => a + b, 0);
    try {
      await worker.start();
      expect(runs, 'the start').toBe(1);
      const t0 = performance.now();
      for (let i = 1; i <= 40; i++) {
        worker.enqueue([req(`C${i}`, 'x'), req(`C${i}`, 'y'), req(`C${i}`, 'z')]);
        await until(() => rows() === 3 * i, `pump ${i} committed`);
      }
      const ms = performance.now() - t0;
      expect(runs - 1, 'the first pump over the limit brought it back').toBeGreaterThan(0);
      expect(runs - 1, `40 pumps over the limit in ${Math.round(ms)} ms`).toBeLessThanOrEqual(Math.floor(ms / 250) + 1);
    } finally {
      await worker.stop();
    }
  });
});

describe('outbox memory (issue #14 item 8)', () => {
  it("keeps SQLite's page cache at 2 MB, not better-sqlite3's 16 MB", () => {
    class Peek extends OutboxDatabase {
      cacheSize(): unknown {
        return this.db.pragma('cache_size', { simple: true });
      }
    }
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pbxhook-cache-'));
    try {
      const db = new Peek(path.join(dir, 'outbox.sqlite'));
      expect(db.cacheSize()).toBe(-2000);
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
