/**
 * Issue #15: the SQLite pump does less per webhook (one check for other writers per pump, a
 * webhook claimed as it is written when the claim would take it anyway) and still claims exactly
 * what a pump that wrote everything pending and then claimed would, in the same order, leaving the
 * same rows behind. The reference below is that older pump, built from the store's own steps.
 * And the daemon's log lines are written once per turn of the event loop, none lost at exit.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SqliteOutbox } from '../src/deliver/outbox-store.js';
import { SqliteStore } from '../src/deliver/sqlite-store.js';
import type { FinishedAttempt, OutboxRow, Pump } from '../src/deliver/store.js';
import type { Decision } from '../src/deliver/schedule.js';
import type { WebhookRequest } from '../src/emit/request.js';
import { createHttpClient } from '../src/deliver/attempt.js';
import { createLogger, turnBatchedStderr } from '../src/log.js';
import { pumpOf, req } from './support/outboxSteps.js';
import { ROOT, ensureBuilt } from './support/e2e.js';
import { runAsync } from './support/runAsync.js';

const T0 = Date.parse('2026-01-01T10:00:00Z');
const dirs: string[] = [];
const open = (): SqliteOutbox => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pbxhook-68-'));
  dirs.push(dir);
  return new SqliteOutbox(path.join(dir, 'outbox.sqlite'), { pbx: 'pbx' });
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/**
 * The pump without claims as written: finished attempts recorded, every webhook written pending,
 * then claims. (Before issue #15 the webhooks were written first; the only difference that makes is
 * among lanes due at the same millisecond: a lane freed in this pump whose next webhook was written
 * in it now takes its turn in the order written, not after every webhook written in the pump.)
 */
function referencePump(s: SqliteOutbox, p: Pump, at: number): OutboxRow[] {
  const claimed: OutboxRow[] = [];
  s.inTransaction(() => {
    for (const f of p.finished) s.finish(f.webhook, f.attempt, f.decision, at);
    for (const reqs of p.enqueue) s.insert(reqs, at);
    for (const c of p.claims) if (c.limit > 0) claimed.push(...s.claim(c.endpoint, c.limit, at));
  });
  return claimed;
}

/** A small deterministic generator (mulberry32): the same sequence on every run. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** What a claimed row says, less its random webhook-id. */
const claimOf = (r: OutboxRow) => ({
  lane: r.lane, seq: r.seq, state: r.state, attempts: r.attempts, step: r.step, nextAt: r.nextAt, createdAt: r.createdAt,
  updatedAt: r.updatedAt, body: r.body, url: r.url, method: r.method, headers: r.headers, callId: r.callId, summary: r.summary,
  pbx: r.pbx, lastStatus: r.lastStatus, lastError: r.lastError,
});
const rowsOf = (s: SqliteOutbox) => s.list({}, 100_000).map(claimOf).sort((a, b) => a.lane.localeCompare(b.lane) || a.seq - b.seq);

describe('outbox pump (issue #15): claimed as written, the same claims as before', () => {
  it('claims what the older pump claimed, in its order, over random traffic, retries, backlogs and full slots', async () => {
    const fast = open();
    const ref = open();
    const store = new SqliteStore(fast);
    const rnd = random(15);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const endpoints = ['crm', 'erp'];
    let now = T0;
    let body = 0;
    // What each side has in flight, by lane+seq (the two sides' row ids and webhook-ids differ).
    const flying = { fast: new Map<string, OutboxRow>(), ref: new Map<string, OutboxRow>() };
    let fastClaims = 0;
    for (let step = 0; step < 400; step++) {
      // Mostly live traffic a few ms apart; now and then a pause long enough to make a backlog stale.
      now += rnd() < 0.05 ? 6_000 : Math.floor(rnd() * 30);
      const enqueue: WebhookRequest[][] = [];
      const events = Math.floor(rnd() * 4);
      for (let e = 0; e < events; e++) {
        const n = 1 + Math.floor(rnd() * 3);
        enqueue.push(Array.from({ length: n }, () => req(`c${Math.floor(rnd() * 12)}`, `b${body++}`, pick(endpoints))));
      }
      // Finish some of what is in flight, the same lanes on both sides, with random outcomes.
      const keys = [...flying.fast.keys()].filter(() => rnd() < 0.6);
      const decisions = keys.map((): Decision => {
        const x = rnd();
        if (x < 0.7) return { kind: 'delivered' };
        if (x < 0.85) return { kind: 'retry', step: 1, at: now + Math.floor(rnd() * 8_000) };
        if (x < 0.95) return { kind: 'dead', reason: 'gone' };
        return { kind: 'requeue' };
      });
      const finishedOf = (side: Map<string, OutboxRow>, lease: FinishedAttempt['lease']): FinishedAttempt[] =>
        keys.map((k, i) => ({ webhook: side.get(k)!, lease, attempt: { latencyMs: 1, status: 200, errorCode: undefined, error: undefined }, decision: decisions[i]! }));
      const claims = endpoints.map((endpoint) => ({ endpoint, limit: Math.floor(rnd() * 4) }));
      const lease = { holder: 'h', until: now + 30_000 };
      const r = await store.commitPump(pumpOf({ enqueue, finished: finishedOf(flying.fast, lease), claims }), now);
      const refClaimed = referencePump(ref, pumpOf({ enqueue, finished: finishedOf(flying.ref, lease), claims }), now);
      for (const k of keys) {
        flying.fast.delete(k);
        flying.ref.delete(k);
      }
      expect(r.lostEvents).toEqual([]);
      expect(r.claimed.map(claimOf), `pump ${step}`).toEqual(refClaimed.map(claimOf));
      for (const row of r.claimed) flying.fast.set(`${row.lane}#${row.seq}`, row);
      for (const row of refClaimed) flying.ref.set(`${row.lane}#${row.seq}`, row);
      fastClaims += r.claimed.filter((row) => enqueue.some((ev) => ev.some((q) => q.body === row.body))).length;
    }
    expect(rowsOf(fast)).toEqual(rowsOf(ref));
    expect([...fast.stateCounts()]).toEqual([...ref.stateCounts()]);
    // The comparison covered both paths: webhooks claimed as written, and claims of waiting lanes.
    expect(fastClaims).toBeGreaterThan(50);
    expect(fast.stateCounts().get('failed_waiting')! + fast.stateCounts().get('dead')!).toBeGreaterThan(0);
    fast.close();
    ref.close();
  });

  it('a webhook written while an earlier one of its lane waits behind another process’s retry is not claimed first', async () => {
    const s = open();
    const store = new SqliteStore(s);
    const claims = [{ endpoint: 'crm', limit: 5 }];
    let r = await store.commitPump(pumpOf({ enqueue: [[req('A', 'a1')]], claims }), T0);
    expect(r.claimed.map((x) => x.body)).toEqual(['a1']);
    await store.commitPump(pumpOf({ finished: [{ webhook: r.claimed[0]!, lease: r.lease, attempt: { latencyMs: 1, status: 410, errorCode: 'PBXHOOK_HTTP_STATUS', error: 'gone' }, decision: { kind: 'dead', reason: 'gone' } }] }), T0);
    // `pbxhook outbox retry` from another process: a1 owes again, its lane is not idle any more.
    const other = new SqliteOutbox(s.file);
    expect(other.retry({ states: ['dead'] }, T0 + 1)).toBe(1);
    other.close();
    r = await store.commitPump(pumpOf({ enqueue: [[req('A', 'a2')]], claims }), T0 + 2);
    expect(r.claimed.map((x) => x.body), 'a1 first: the pump saw the other process’s commit').toEqual(['a1']);
    expect(s.list({ states: ['pending'] }, 10).map((x) => x.body)).toEqual(['a2']);
    s.close();
  });

  it('an event that cannot be written gives back the slots its webhooks took', async () => {
    const s = open();
    const store = new SqliteStore(s);
    const bad = { ...req('B', 'b2'), headers: { x: 1n } as unknown as Record<string, string> }; // JSON cannot hold a bigint
    const r = await store.commitPump(pumpOf({ enqueue: [[req('B', 'b1'), bad], [req('C', 'c1')]], claims: [{ endpoint: 'crm', limit: 1 }] }), T0);
    expect(r.lostEvents.map(([i]) => i)).toEqual([0]);
    expect(r.claimed.map((x) => x.body), 'b1 was rolled back with its event: its slot goes to c1').toEqual(['c1']);
    expect(s.list({}, 10).map((x) => `${x.body}:${x.state}`)).toEqual(['c1:in_flight']);
    s.close();
  });
});

describe('the daemon’s log (issue #15): one write per turn of the event loop', () => {
  it('writes the lines of a turn together at its end, every one of them, in order', async () => {
    const writes: string[] = [];
    const spy = vi.spyOn(fs, 'writeSync').mockImplementation(((fd: number, text: string) => {
      if (fd === 2) writes.push(String(text));
      return Buffer.byteLength(String(text));
    }) as typeof fs.writeSync);
    try {
      const log = createLogger('info', turnBatchedStderr());
      for (let i = 0; i < 20; i++) log.info({ i }, 'webhook delivered');
      expect(writes, 'nothing written before the turn ends').toEqual([]);
      await new Promise((r) => setImmediate(r));
      expect(writes).toHaveLength(1);
      const lines = writes.join('').trim().split('\n').map((l) => (JSON.parse(l) as { i: number }).i);
      expect(lines).toEqual(Array.from({ length: 20 }, (_, i) => i));
    } finally {
      spy.mockRestore();
    }
  });

  it('process.exit right after logging loses no line', async () => {
    ensureBuilt();
    const script = `import { createLogger, turnBatchedStderr } from ${JSON.stringify(path.join(ROOT, 'dist/log.js'))};
      const log = createLogger('info', turnBatchedStderr());
      for (let i = 0; i < 3; i++) log.error({ i }, 'last words');
      process.exit(78);`;
    const r = await runAsync(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000 });
    expect(r.status).toBe(78);
    expect(r.stderr.trim().split('\n').map((l) => (JSON.parse(l) as { i: number }).i)).toEqual([0, 1, 2]);
  });
});

describe('the request on the wire (issue #15: its headers built in one pass)', () => {
  it('is byte for byte what it was: rendered headers, delivery headers winning in place, Authorization, User-Agent', async () => {
    let raw = '';
    const server = net.createServer((sock) => {
      sock.setEncoding('latin1').on('data', (d: string) => {
        raw += d;
        if (raw.includes('\r\n\r\n') && raw.endsWith('{"a":1}')) sock.write('HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const c = createHttpClient({ timeoutMs: 5_000, tokens: new Map([['crm', 'tok-1234']]) });
    try {
      const rendered = { 'Content-Type': 'application/json', 'X-Call': 'c1', 'webhook-id': 'rendered' };
      const r = await c.attempt(
        { endpoint: 'crm', method: 'POST', url: `http://127.0.0.1:${port}/hook?k=v`, headers: rendered, body: '{"a":1}', orderKey: 'crm:c1' },
        { 'webhook-id': 'msg_1', 'webhook-timestamp': '1767261600', 'webhook-sequence': '3' },
      );
      expect(r.ok).toBe(true);
      expect(raw).toBe(
        'POST /hook?k=v HTTP/1.1\r\n' +
          'Content-Type: application/json\r\nX-Call: c1\r\nwebhook-id: msg_1\r\nwebhook-timestamp: 1767261600\r\nwebhook-sequence: 3\r\n' +
          'Authorization: Bearer tok-1234\r\nUser-Agent: pbxhook\r\nContent-Length: 7\r\n' +
          `Host: 127.0.0.1:${port}\r\nConnection: keep-alive\r\n\r\n{"a":1}`,
      );
      raw = '';
      // A renderer's own Authorization (any case) and User-Agent stay; nothing is added.
      const again = await c.attempt({ endpoint: 'crm', method: 'POST', url: `http://127.0.0.1:${port}/hook`, headers: { AUTHORIZATION: 'Basic x', 'user-agent': 'crm-sdk' }, body: '{"a":1}', orderKey: 'crm:c1' });
      expect(again.ok).toBe(true);
      expect(raw.split('\r\n').slice(1, 4)).toEqual(['AUTHORIZATION: Basic x', 'user-agent: crm-sdk', 'Content-Length: 7']);
    } finally {
      c.close();
      server.close();
      server.unref();
    }
  });
});
