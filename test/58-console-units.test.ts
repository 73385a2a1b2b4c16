/**
 * The console's parts without a browser (issue #16): the operator actions on a real outbox file,
 * what a webhook waits for, the endpoint view, secrets masked in the request shown, the call
 * journal's bounds and search, who may act (403 with no token, 401 without it, the cookie), and
 * the ops server's action route with a real store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { journalOf } from '../src/console/console.js';
import { CallJournal, describe as describeStep } from '../src/console/journal.js';
import { loadConfig } from '../src/config/load.js';
import type { Outbox } from '../src/deliver/outbox.js';
import { Pipeline } from '../src/pipeline.js';
import { replayFile } from '../src/replay.js';
import { LAB_CONFIG } from './support/replayTrace.js';
import { plansOf, preparedDuring } from './support/sqlitePlans.js';
import { maskHeaders, maskUrl } from '../src/console/mask.js';
import { consoleRoutes } from '../src/console/routes.js';
import { type ConsoleSources, endpointsView, webhookView, waitOf } from '../src/console/views.js';
import type { DeliveryConfig, EndpointConfig } from '../src/config/types.js';
import { ActionError, parseAction, runAction } from '../src/deliver/outbox-actions.js';
import { type EndpointHealth, HEALTHY } from '../src/deliver/outbox-state.js';
import { SqliteOutbox } from '../src/deliver/outbox-store.js';
import { SqliteStore } from '../src/deliver/sqlite-store.js';
import { OutboxWorker } from '../src/deliver/outbox-worker.js';
import type { HttpClient } from '../src/deliver/attempt.js';
import { HttpNetworkError } from '../src/deliver/errors.js';
import type { CallEvent } from '../src/core/lifecycle.js';
import type { WebhookRequest } from '../src/emit/request.js';
import { mayRead, mayWrite, sessionCookie, sessionOf } from '../src/ops/auth.js';
import { startOpsServer } from '../src/ops/server.js';
import { runOutboxCommand } from '../src/outbox-cli.js';

const T0 = Date.parse('2026-01-01T10:00:00Z');
const dirs: string[] = [];
const stores: SqliteOutbox[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function store(): SqliteOutbox {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pbxhook-console-'));
  dirs.push(dir);
  const s = new SqliteOutbox(path.join(dir, 'outbox.sqlite'));
  stores.push(s);
  return s;
}

function logger(): { log: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c)) as Record<string, unknown>), cb()) });
  return { log: pino({ level: 'info' }, sink), lines };
}

const req = (call: string, n: number, endpoint = 'crm'): WebhookRequest => ({
  endpoint,
  method: 'POST',
  url: `http://127.0.0.1:9/hook?api_key=k-123&x=1`,
  headers: { 'content-type': 'application/json', authorization: 'Bearer tok-secret-1' },
  body: JSON.stringify({ event: `step${n}`, call }),
  orderKey: `${endpoint}:${call}`,
});

const endpoint = (name: string, enabled = true): EndpointConfig =>
  ({ name, enabled, url: 'http://u:pw@127.0.0.1:9/hook?token=abc', method: 'POST', events: [], schema: '3cx', variant: 'json', token: 'tok' }) as unknown as EndpointConfig;

/** The store interface over a test's SQLite outbox (set up through its synchronous methods). */
const faces = new WeakMap<SqliteOutbox, SqliteStore>();
function face(s: SqliteOutbox): SqliteStore {
  let f = faces.get(s);
  if (f === undefined) faces.set(s, (f = new SqliteStore(s)));
  return f;
}

function sources(s: SqliteOutbox, health: Record<string, EndpointHealth> = {}, eps = [endpoint('crm')]): ConsoleSources {
  return { store: face(s), worker: { healthOf: (n) => health[n] ?? (eps.some((e) => e.name === n && e.enabled) ? HEALTHY : undefined) }, endpoints: () => eps };
}

const failure = (status: number, response?: string, retryAfterMs?: number) => ({
  latencyMs: 5, status, errorCode: 'PBXHOOK_HTTP_STATUS', error: `crm: HTTP ${status}`, response, retryAfterMs,
});

/** A call's three webhooks; the first failed once (waiting for its retry at T0 + 5 s). */
function waitingLane(s: SqliteOutbox, retryAfterMs?: number) {
  s.insert([req('c1', 1), req('c1', 2), req('c1', 3)], T0);
  const [head] = s.claim('crm', 10, T0);
  s.finish(head!, failure(503, 'down for maintenance', retryAfterMs), { kind: 'retry', at: T0 + (retryAfterMs ?? 5_000), step: 1 }, T0 + 5);
  return head!;
}

describe('outbox actions (the CLI and the page call these)', () => {
  it('resend: a dead webhook goes again as a new attempt series with the same webhook-id; logged with who', async () => {
    const s = store();
    const { log, lines } = logger();
    s.insert([req('c1', 1)], T0);
    const [row] = s.claim('crm', 1, T0);
    s.finish(row!, failure(410, 'gone'), { kind: 'dead', reason: 'gone' }, T0 + 1);
    const r = await runAction({ store: face(s), log }, { kind: 'resend', id: row!.webhookId }, 'cli test', T0 + 10);
    expect(r.changed).toBe(1);
    const [again] = s.claim('crm', 1, T0 + 20);
    expect(again).toMatchObject({ id: row!.id, webhookId: row!.webhookId, step: 0, attempts: 2 });
    expect(lines.at(-1)).toMatchObject({ action: 'resend', id: row!.webhookId, who: 'cli test', changed: 1 });
    // Not dead (in flight now): nothing to resend.
    expect((await runAction({ store: face(s), log }, { kind: 'resend', id: String(row!.id) }, 'cli test', T0 + 30)).changed).toBe(0);
  });

  it('resend-dead takes every dead webhook of one endpoint only; retry-lane makes a waiting head due now', async () => {
    const s = store();
    const { log } = logger();
    s.insert([req('a', 1), req('b', 1), req('c', 1, 'other')], T0);
    for (const ep of ['crm', 'other']) for (const r of s.claim(ep, 10, T0)) s.finish(r, failure(410), { kind: 'dead', reason: 'gone' }, T0);
    expect(await runAction({ store: face(s), log }, { kind: 'resend-dead', endpoint: 'crm' }, 'x', T0 + 1)).toMatchObject({ changed: 2 });
    expect(s.list({ states: ['dead'] }, 10).map((r) => r.endpoint)).toEqual(['other']);

    const t = store();
    waitingLane(t);
    expect(t.claim('crm', 10, T0 + 100)).toEqual([]); // waits for T0 + 5 s
    expect((await runAction({ store: face(t), log }, { kind: 'retry-lane', lane: 'crm:c1', pbx: 'another' }, 'x', T0 + 100)).changed, 'another PBX’s call c1').toBe(0);
    expect((await runAction({ store: face(t), log }, { kind: 'retry-lane', lane: 'crm:c1' }, 'x', T0 + 100)).changed, 'this PBX’s').toBe(1);
    const [due] = t.claim('crm', 10, T0 + 100);
    expect(due).toMatchObject({ seq: 1, step: 1 });
  });

  it('probe needs the daemon\'s worker; bad input is a message, not an action', async () => {
    const s = store();
    const { log } = logger();
    await expect(runAction({ store: face(s), log }, { kind: 'probe', endpoint: 'crm' }, 'x', T0)).rejects.toThrow(ActionError);
    const probed: string[] = [];
    const worker = { probeNow: (e: string) => (probed.push(e), e === 'crm'), kick: () => undefined };
    expect((await runAction({ store: face(s), worker, log }, { kind: 'probe', endpoint: 'crm' }, 'x', T0)).changed).toBe(1);
    expect((await runAction({ store: face(s), worker, log }, { kind: 'probe', endpoint: 'nope' }, 'x', T0)).changed).toBe(0);
    expect(probed).toEqual(['crm', 'nope']);
    expect(parseAction('resend', {})).toBe('resend needs "id" (row number or webhook-id)');
    expect(parseAction('resend', { id: 7 })).toEqual({ kind: 'resend', id: '7' });
    expect(parseAction('drop-table', { id: 1 })).toMatch(/^unknown action "drop-table"/);
    expect(parseAction('probe', null)).toBe('probe needs "endpoint"');
    expect(parseAction('retry-lane', { lane: 'crm:c1', pbx: 'paris' })).toEqual({ kind: 'retry-lane', lane: 'crm:c1', pbx: 'paris' });
    expect(parseAction('retry-lane', { lane: 'crm:c1' })).toEqual({ kind: 'retry-lane', lane: 'crm:c1' });
  });
});

describe('pbxhook outbox resend | retry --lane | probe', () => {
  it('runs the same actions on the outbox file; probe without a daemon says so', async () => {
    const s = store();
    s.insert([req('c1', 1), req('c2', 1)], T0);
    for (const r of s.claim('crm', 10, T0)) s.finish(r, failure(410), { kind: 'dead', reason: 'gone' }, T0);
    const [first] = s.list({ ids: ['1'] }, 1);
    const dir = path.dirname(s.file);
    let text = '';
    const out = new Writable({ write: (c, _e, cb) => ((text += String(c)), cb()) });
    expect(await runOutboxCommand(['resend', '--state-dir', dir, '--id', first!.webhookId], out)).toBe(0);
    expect(text).toBe(`webhook ${first!.webhookId} sent again (new attempt series, same webhook-id)\n`);
    expect(await runOutboxCommand(['resend', '--state-dir', dir, '--endpoint', 'crm'], out)).toBe(0);
    expect(text).toMatch(/1 dead webhook of crm sent again\n$/);
    expect(s.list({ states: ['pending'] }, 10)).toHaveLength(2);
    expect(await runOutboxCommand(['retry', '--state-dir', dir, '--lane', 'crm:c1'], out)).toBe(0);
    expect(text).toMatch(/lane crm:c1: nothing waits for a retry\n$/);
    expect(await runOutboxCommand(['probe', '--state-dir', dir, '--endpoint', 'crm'], out)).toBe(69);
  });
});

describe('probe now, with the real worker', () => {
  it('a paused endpoint is probed at once rather than at probe_every; the answer resumes it', async () => {
    let now = T0;
    let up = false;
    const sent: string[] = [];
    const http: HttpClient = {
      attempt: async (r) => (sent.push(r.body), up ? { ok: true, status: 200, latencyMs: 1 } : { ok: false, error: new HttpNetworkError('crm', 'ECONNREFUSED', true), status: undefined, latencyMs: 1, body: undefined }),
      close: () => {},
    };
    const s = store();
    const { log, lines } = logger();
    const delivery: DeliveryConfig = {
      schedule: [1_000], jitter: 0, retryAfterMaxMs: 60_000, connectTimeoutMs: 1_000, timeoutMs: 1_000, concurrency: 1,
      pauseAfterMs: 0, probeEveryMs: 600_000, stopTimeoutMs: 1_000, maxRows: 1_000, maxAgeMs: 86_400_000, keepDeliveredMs: 86_400_000, keepDeadMs: 86_400_000,
    };
    const worker = new OutboxWorker({ store: face(s), http, log, endpoints: [endpoint('crm')], delivery, now: () => now, random: () => 0.5 });
    await worker.start();
    try {
      worker.enqueue([req('c1', 1)]);
      const deadline = Date.now() + 20_000;
      const until = async (cond: () => boolean) => {
        while (!cond()) {
          if (Date.now() > deadline) throw new Error('timed out');
          await new Promise((r) => setTimeout(r, 5));
        }
      };
      await until(() => worker.stats.pausedEndpoints === 1 && worker.stats.retried === 1);
      expect(worker.healthOf('crm')).toMatchObject({ pausedAt: T0, nextProbeAt: T0 + 600_000 });
      now = T0 + 2_000; // due by the schedule, but the next probe is 10 minutes away
      await (worker as unknown as { pump(): Promise<void> }).pump();
      expect(sent).toHaveLength(1);
      up = true;
      expect(await runAction({ store: face(s), worker, log }, { kind: 'probe', endpoint: 'crm' }, 'console bearer 127.0.0.1', now)).toMatchObject({ changed: 1 });
      await until(() => worker.stats.delivered === 1);
      expect(sent).toHaveLength(2);
      expect(worker.stats.pausedEndpoints).toBe(0);
      expect(lines.some((l) => String(l.msg).startsWith('endpoint resumed'))).toBe(true);
      expect(worker.probeNow('crm'), 'not paused any more').toBe(false);
    } finally {
      await worker.stop();
    }
  });
});

describe('a webhook\'s story', () => {
  it('says why each waits: its schedule, behind sequence 1, Retry-After, the endpoint paused or disabled', async () => {
    const s = store();
    const head = waitingLane(s);
    const src = sources(s);
    const [third, second, first] = s.list({}, 10);
    const laneHead = s.laneHead(first!.lane); // the lane's head, as the page reads it (OutboxStore.laneHeads)
    expect(waitOf(src, first!, laneHead, null, T0 + 10)).toEqual({ reason: 'schedule', at: T0 + 5_000, step: 1 });
    expect(waitOf(src, second!, laneHead, null, T0 + 10)).toEqual({ reason: 'behind', seq: 1, id: head.id });
    expect(waitOf(src, third!, laneHead, null, T0 + 10)).toMatchObject({ reason: 'behind', seq: 1 });
    const paused = sources(s, { crm: { failingSince: T0, pausedAt: T0, nextProbeAt: T0 + 60_000 } });
    expect(waitOf(paused, first!, laneHead, null, T0 + 10)).toEqual({ reason: 'paused', at: T0 + 60_000 });
    expect(waitOf(sources(s, {}, [endpoint('crm', false)]), first!, laneHead, null, T0 + 10)).toEqual({ reason: 'disabled' });

    const r = store();
    waitingLane(r, 120_000);
    const [, , waiting] = r.list({}, 10);
    expect(waitOf(sources(r), waiting!, r.laneHead(waiting!.lane), 120_000, T0 + 10)).toMatchObject({ reason: 'retry-after', at: T0 + 120_000 });
  });

  it('shows every attempt with the answer (first 1 KB) and the request with its secrets masked', async () => {
    const s = store();
    s.insert([req('c1', 1)], T0);
    const [row] = s.claim('crm', 1, T0);
    s.finish(row!, failure(500, 'E'.repeat(5000)), { kind: 'retry', at: T0 + 5_000, step: 1 }, T0 + 5);
    const story = (await webhookView(sources(s), String(row!.id), T0 + 10)) as {
      attempts: Array<{ status: number; response: string }>;
      request: { url: string; headers: Record<string, string>; body: string };
    };
    expect(story.attempts).toHaveLength(1);
    expect(story.attempts[0]!.status).toBe(500);
    expect(story.attempts[0]!.response).toBe('E'.repeat(1024));
    expect(story.request.url).toBe('http://127.0.0.1:9/hook?api_key=****&x=1');
    expect(story.request.headers['authorization']).toBe('Bearer ****');
    expect(story.request.headers['webhook-id']).toBe(row!.webhookId);
    expect(JSON.stringify(story)).not.toContain('tok-secret-1');
    expect(JSON.stringify(story)).not.toContain('k-123');
    expect(await webhookView(sources(s), 'msg_nope', T0)).toBeUndefined();
  });

  it('masks user info, secret query values and secret headers', async () => {
    expect(maskUrl('https://u:pw@crm.example/h?token=abc&call=1')).toBe('https://u:****@crm.example/h?token=****&call=1');
    expect(maskUrl('not a url')).toBe('(invalid URL)');
    expect(maskHeaders({ Authorization: 'Basic dTpw', 'X-Api-Key': 'k', 'content-type': 'a/b' })).toEqual({ Authorization: 'Basic ****', 'X-Api-Key': '****', 'content-type': 'a/b' });
  });
});

describe('endpoints at a glance', () => {
  it('state, depth, oldest undelivered, last error, attempts per minute, dead', async () => {
    const s = store();
    waitingLane(s);
    s.insert([req('d', 1, 'gone')], T0);
    const [d] = s.claim('gone', 1, T0);
    s.finish(d!, failure(410), { kind: 'dead', reason: 'gone' }, T0 + 1);
    const eps = [endpoint('crm'), endpoint('gone'), endpoint('off', false)];
    const view = await endpointsView(sources(s, { crm: { failingSince: T0, pausedAt: null, nextProbeAt: null } }, eps), T0 + 30_000);
    const by = Object.fromEntries(view.map((v) => [v.name, v]));
    expect(by['crm']).toMatchObject({ state: 'failing', depth: 3, oldestUndeliveredSeconds: 30, attemptsPerMinute: 1, dead: 0, lastDeliveredAt: null });
    expect(by['crm']!.lastError).toMatchObject({ status: 503, error: 'crm: HTTP 503' });
    expect(by['crm']!.url).toBe('http://u:****@127.0.0.1:9/hook?token=****');
    expect(by['gone']).toMatchObject({ state: 'ok', depth: 0, oldestUndeliveredSeconds: null, dead: 1 });
    expect(by['off']).toMatchObject({ state: 'disabled' });
    // The metric's source: from the lane heads in memory, the same answer as the view's scan.
    expect(s.oldestUndelivered()).toEqual(new Map([['crm', T0]]));
  });
});

function ev(type: CallEvent['type'], at: number, call: string, extra: object = {}): CallEvent {
  const view = { id: call, startedAt: T0, direction: 'inbound', customerNumber: '0555', did: '0212', originExtension: '', routes: [], legs: [], segments: [], disposition: 'answered', endReason: 'hangup' };
  return { type, at, call: view, ...extra } as unknown as CallEvent;
}

describe('what the console and the metrics read: indexes, never the whole table', () => {
  it('endpoint activity, lane rows and heads, the oldest undelivered, retry-lane: no SCAN of webhooks or attempts', async () => {
    const s = store();
    waitingLane(s);
    s.insert([req('d', 1, 'gone')], T0);
    const prepared = preparedDuring(() => {
      s.endpointActivity('crm', T0);
      s.laneHead('crm:c1');
      s.laneRows('crm:c1');
      s.oldestUndelivered();
      s.retryLaneNow('crm:c1', T0 + 1);
    });
    const touching = prepared.filter((t) => /\b(webhooks|attempts)\b/.test(t) && !/^\s*PRAGMA/i.test(t));
    expect(touching.length, 'the statements were captured').toBeGreaterThanOrEqual(7);
    for (const { text, details } of plansOf(s.file, touching)) {
      expect(details.filter((d) => /^SCAN (webhooks|attempts|w|a)\b(?! USING)/.test(d)), `${text}\n${details.join('\n')}`).toEqual([]);
    }
  });
});

describe('call journal', () => {
  it('keeps steps in order with their webhooks\' rows, finds calls by number, call id or extension', async () => {
    const s = store();
    s.insert([req('c1', 1), req('c1', 2)], T0);
    const j = new CallJournal(10, 60_000, async (e, c) => s.laneRows(`${e}:${c}`));
    j.record(ev('call.started', T0, 'c1'), ['crm']);
    j.record(ev('leg.ringing', T0 + 1, 'c1', { leg: { party: { id: '202' } } }), []);
    j.record(ev('call.ended', T0 + 2, 'c1'), ['crm']);
    const [c] = await j.search('202', T0 + 3);
    expect(c!.steps.map((x) => [x.text, x.webhooks.map((w) => [w.event, w.state])])).toEqual([
      ['call from 0555 to DID 0212', [['step1', 'pending']]],
      ['202 ringing', []],
      ['call ended: answered', [['step2', 'pending']]],
    ]);
    expect(await j.search('c1', T0 + 3)).toHaveLength(1);
    expect(await j.search('0212', T0 + 3)).toHaveLength(1);
    expect(await j.search('999', T0 + 3)).toEqual([]);
  });

  // The only traces with a hold are the synthetic attended transfers (no real capture has one).
  it('shows holds: the transferring agent puts the customer on hold, then the transfer (synthetic trace)', async () => {
    const pipeline = new Pipeline(loadConfig(LAB_CONFIG));
    const journal = journalOf({ opsJournal: { calls: 10, keepMs: 3_600_000 } }, pipeline, { laneRows: async () => [] } as unknown as Outbox['store'])!;
    await replayFile('test/fixtures/asterisk-synth/in-queue-attended-transfer.ami', pipeline, () => undefined);
    const [call] = await journal.search('', pipeline.pbxNow());
    const steps = call!.steps.map((x) => [x.type, x.text]);
    const hold = steps.findIndex(([type]) => type === 'hold');
    expect(hold, JSON.stringify(steps)).toBeGreaterThan(0);
    expect(steps[hold]![1]).toMatch(/^\d+ put the call on hold$/);
    const transfer = steps.findIndex(([, text]) => String(text).startsWith('attended transfer'));
    expect(transfer, 'the transfer comes after the hold').toBeGreaterThan(hold);
    expect(call!.steps[hold]!.webhooks).toEqual([]);
    const at = call!.steps.map((x) => x.at);
    expect(at, 'in time order').toEqual([...at].sort((a, b) => a - b));
  });

  it('is bounded: journal_calls calls at most, ended calls forgotten after journal_minutes', async () => {
    const j = new CallJournal(3, 60_000);
    for (let i = 0; i < 10; i++) j.record(ev('call.started', T0 + i, `c${i}`), []);
    expect(j.size).toBe(3);
    expect((await j.search('', T0 + 10)).map((c) => c.id)).toEqual(['c9', 'c8', 'c7']);
    j.record(ev('call.ended', T0 + 20, 'c9'), []);
    expect((await j.search('', T0 + 20 + 60_001)).map((c) => c.id)).toEqual(['c8', 'c7']);
    expect(describeStep(ev('voicemail.left', T0, 'c', { mailbox: '202@default' }))).toBe('voicemail left in 202@default');
  });
});

describe('who may act', () => {
  const fake = (headers: http.IncomingHttpHeaders) => ({ headers, socket: { remoteAddress: '127.0.0.1' } }) as unknown as http.IncomingMessage;
  const TOKEN = 'ops-token-0123456789abcdef';

  it('403 with no ops.token, 401 without or with a wrong one; Bearer or the login cookie act', async () => {
    expect(mayWrite(fake({ authorization: `Bearer ${TOKEN}` }), undefined)).toMatchObject({ ok: false, status: 403 });
    expect(mayWrite(fake({}), TOKEN)).toMatchObject({ ok: false, status: 401 });
    expect(mayWrite(fake({ authorization: 'Bearer wrong' }), TOKEN)).toMatchObject({ ok: false, status: 401 });
    expect(mayWrite(fake({ authorization: `Bearer ${TOKEN}` }), TOKEN)).toEqual({ ok: true, who: 'bearer 127.0.0.1' });
    expect(mayWrite(fake({ cookie: `a=b; pbxhook_console=${sessionOf(TOKEN)}` }), TOKEN)).toEqual({ ok: true, who: 'cookie 127.0.0.1' });
    expect(mayWrite(fake({ cookie: `pbxhook_console=${sessionOf('other-token-0000000000')}` }), TOKEN)).toMatchObject({ status: 401 });
    expect(sessionCookie(TOKEN)).toMatch(/; HttpOnly; SameSite=Strict$/);
    expect(sessionCookie(TOKEN)).not.toContain(TOKEN);
    expect(mayRead(fake({}), TOKEN, true)).toBe(true);
    expect(mayRead(fake({}), TOKEN, false)).toBe(false);
  });

  it('the ops server: actions refused (403) with no token configured, JSON only, done with one', async () => {
    const s = store();
    s.insert([req('c1', 1)], T0);
    const [row] = s.claim('crm', 1, T0);
    s.finish(row!, failure(410), { kind: 'dead', reason: 'gone' }, T0 + 1);
    const { log, lines } = logger();
    const handler = consoleRoutes({ ...sources(s), actions: { store: face(s), log } }, log, () => T0 + 100);
    const TOKEN = 'ops-token-0123456789abcdef';
    for (const token of [undefined, TOKEN]) {
      const server = await startOpsServer({
        listen: '127.0.0.1:0', ...(token ? { token } : {}), registry: new Registry(), health: () => ({ ok: true }), status: async () => ({}), page: '<html>', console: handler,
      });
      const post = (body: string, headers: Record<string, string>) =>
        fetch(`http://127.0.0.1:${server.port}/api/actions/resend`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
      try {
        if (token === undefined) {
          expect((await post(JSON.stringify({ id: row!.id }), { authorization: `Bearer ${TOKEN}` })).status).toBe(403);
          expect((await fetch(`http://127.0.0.1:${server.port}/api/endpoints`)).status).toBe(200);
          continue;
        }
        expect((await post(JSON.stringify({ id: row!.id }), { 'content-type': 'text/plain', authorization: `Bearer ${token}` })).status).toBe(415);
        expect((await post('{', { authorization: `Bearer ${token}` })).status).toBe(400);
        const done = await post(JSON.stringify({ id: row!.id }), { authorization: `Bearer ${token}` });
        expect(done.status).toBe(200);
        expect(await done.json()).toMatchObject({ changed: 1 });
        const story = (await (await fetch(`http://127.0.0.1:${server.port}/api/webhooks/${row!.webhookId}`)).json()) as { state: string };
        expect(story.state).toBe('pending');
        const login = await fetch(`http://127.0.0.1:${server.port}/login`, { method: 'POST', body: `token=${token}`, redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
        expect(login.status).toBe(303);
        expect(login.headers.get('set-cookie')).toBe(sessionCookie(token));
        const wrongLogin = await fetch(`http://127.0.0.1:${server.port}/login`, { method: 'POST', body: 'token=nope', redirect: 'manual' });
        expect(wrongLogin.status).toBe(401);
      } finally {
        await server.close();
      }
    }
    expect(lines.filter((l) => l.code === 'PBXHOOK_CONSOLE_REFUSED').map((l) => l.status)).toEqual([403]);
    expect(lines.filter((l) => l.action === 'resend' && l.changed === 1)).toHaveLength(1);
  });
});
