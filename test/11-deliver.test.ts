import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RetryConfig } from '../src/config/types.js';
import { parseRetryAfter, retryDelayMs } from '../src/deliver/backoff.js';
import { HttpStatusError } from '../src/deliver/errors.js';
import { createOrderedDispatcher, createSender, type DeliveryResult, type Sender } from '../src/deliver/send.js';
import type { WebhookRequest } from '../src/emit/request.js';

const TOKEN = 'tok-9f8e7d6c5b4a';
const FAST: RetryConfig = { retries: 3, minTimeoutMs: 5, maxTimeoutMs: 20, timeoutMs: 1000 };

interface Seen {
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly at: number;
}
type Handler = (req: http.IncomingMessage, res: http.ServerResponse, seen: Seen, n: number) => void;

/** A real HTTP server on 127.0.0.1 whose behaviour each test sets. */
function testServer() {
  const seen: Seen[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let handler: Handler = (_req, res) => res.end('ok');
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const s = { url: req.url ?? '', headers: req.headers, body, at: Date.now() };
      seen.push(s);
      handler(req, res, s, seen.length);
    });
  });
  return {
    seen,
    server,
    url: (p = '/hook') => `http://127.0.0.1:${(server.address() as AddressInfo).port}${p}`,
    handle(h: Handler) {
      handler = h;
    },
    later(ms: number, fn: () => void) {
      const t = setTimeout(() => (timers.delete(t), fn()), ms);
      timers.add(t);
    },
    reset() {
      seen.length = 0;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      handler = (_req, res) => res.end('ok');
    },
    listen: () => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve)),
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const crm = testServer();
const target = testServer();

function memoryLog() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { log: pino({ level: 'trace' }, stream), lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}

let senders: Sender[] = [];
function sender(retry: Partial<RetryConfig> = {}, extra: { signal?: AbortSignal } = {}) {
  const mem = memoryLog();
  const send = createSender({
    retry: { ...FAST, ...retry },
    log: mem.log,
    tokens: new Map([['crm', TOKEN]]),
    random: () => 0,
    ...extra,
  });
  senders.push(send);
  return { send, ...mem };
}

function request(over: Partial<WebhookRequest> = {}): WebhookRequest {
  return {
    endpoint: 'crm',
    method: 'POST',
    url: crm.url('/hook?apikey=query-secret'),
    headers: { 'Content-Type': 'application/json' },
    body: '{"event":"call-start"}',
    orderKey: 'call-1',
    ...over,
  };
}

function failure(r: DeliveryResult) {
  if (r.ok) throw new Error(`expected a failure, got HTTP ${r.status}`);
  return r;
}

beforeAll(async () => {
  await crm.listen();
  await target.listen();
});
afterAll(async () => {
  await crm.close();
  await target.close();
});
beforeEach(() => {
  crm.reset();
  target.reset();
});
afterEach(() => {
  for (const s of senders) s.close();
  senders = [];
});

describe('send', () => {
  it('delivers a 200 once, with the bearer token and the exact body', async () => {
    const { send } = sender();
    const r = await send(request());
    expect(r).toEqual({ ok: true, endpoint: 'crm', status: 200, attempts: 1 });
    expect(crm.seen).toHaveLength(1);
    const [s] = crm.seen;
    expect(s?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(s?.headers['content-type']).toBe('application/json');
    expect(s?.headers['user-agent']).toBe('pbxhook');
    expect(s?.body).toBe('{"event":"call-start"}');
    expect(s?.url).toBe('/hook?apikey=query-secret');
    expect(send.stats).toEqual({ attempts: 1, delivered: 1, retried: 0, failed: 0 });
  });

  it('leaves an Authorization header the renderer set, and sends GET without a body', async () => {
    const { send } = sender();
    await send(request({ method: 'GET', body: '', headers: { authorization: 'Basic abc' } }));
    expect(crm.seen[0]?.headers.authorization).toBe('Basic abc');
    expect(crm.seen[0]?.body).toBe('');
  });

  it('retries 500, 500, then delivers on the third attempt', async () => {
    crm.handle((_req, res, _s, n) => {
      res.statusCode = n <= 2 ? 500 : 200;
      res.end();
    });
    const { send, records } = sender();
    const r = await send(request());
    expect(r).toEqual({ ok: true, endpoint: 'crm', status: 200, attempts: 3 });
    expect(crm.seen).toHaveLength(3);
    expect(send.stats).toEqual({ attempts: 3, delivered: 1, retried: 2, failed: 0 });
    expect(records().map((l) => [l.attempt, l.status, l.retryable, l.willRetry])).toEqual([
      [1, 500, true, true],
      [2, 500, true, true],
      [3, 200, false, false],
    ]);
  });

  it('gives up after retries with the last error, retryable', async () => {
    crm.handle((_req, res) => {
      res.statusCode = 503;
      res.end();
    });
    const { send } = sender({ retries: 2 });
    const r = failure(await send(request()));
    expect(r.attempts).toBe(3);
    expect(r.error).toMatchObject({ code: 'PBXHOOK_HTTP_STATUS', status: 503, retryable: true, endpoint: 'crm' });
    expect(crm.seen).toHaveLength(3);
    expect(send.stats.failed).toBe(1);
  });

  it('waits as long as a 429 Retry-After asks, within the configured maximum', async () => {
    crm.handle((_req, res, _s, n) => {
      res.statusCode = n === 1 ? 429 : 200;
      if (n === 1) res.setHeader('Retry-After', '1');
      res.end();
    });
    const { send } = sender({ minTimeoutMs: 5, maxTimeoutMs: 5000 });
    const r = await send(request());
    expect(r.ok).toBe(true);
    const gap = crm.seen[1]!.at - crm.seen[0]!.at;
    expect(gap).toBeGreaterThanOrEqual(950);
    expect(gap).toBeLessThan(3000);
  });

  it('clamps a Retry-After beyond the maximum', async () => {
    crm.handle((_req, res, _s, n) => {
      res.statusCode = n === 1 ? 429 : 200;
      if (n === 1) res.setHeader('Retry-After', '3600');
      res.end();
    });
    const { send } = sender({ maxTimeoutMs: 30 });
    const started = Date.now();
    expect((await send(request())).ok).toBe(true);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('does not follow a 301: one request, permanent failure, the target sees nothing', async () => {
    crm.handle((_req, res) => {
      res.writeHead(301, { Location: target.url('/moved?sig=abc') });
      res.end();
    });
    const { send, records } = sender();
    const r = failure(await send(request()));
    expect(r.attempts).toBe(1);
    expect(r.error).toMatchObject({ code: 'PBXHOOK_HTTP_REDIRECT', retryable: false, status: 301 });
    expect(r.error).toMatchObject({ location: target.url('/moved') });
    expect(crm.seen).toHaveLength(1);
    expect(target.seen).toHaveLength(0);
    expect(records()).toHaveLength(1);
  });

  it('fails a 410 permanently after one attempt', async () => {
    crm.handle((_req, res) => {
      res.statusCode = 410;
      res.end('gone');
    });
    const { send, records } = sender();
    const r = failure(await send(request()));
    expect(r.attempts).toBe(1);
    expect(r.error).toMatchObject({ code: 'PBXHOOK_HTTP_STATUS', status: 410, retryable: false });
    expect(crm.seen).toHaveLength(1);
    expect(records()[0]).toMatchObject({ status: 410, retryable: false, willRetry: false, body: 'gone' });
  });

  it('retries a response slower than the timeout', async () => {
    crm.handle((_req, res, _s, n) => {
      if (n === 1) crm.later(600, () => res.destroyed || res.end('late'));
      else res.end('ok');
    });
    const { send, records } = sender({ timeoutMs: 150 });
    const r = await send(request());
    expect(r).toMatchObject({ ok: true, attempts: 2 });
    expect(records()[0]).toMatchObject({ attempt: 1, code: 'PBXHOOK_HTTP_TIMEOUT', retryable: true });
  });

  it('reports a timeout that never clears as PBXHOOK_HTTP_TIMEOUT', async () => {
    crm.handle((_req, res) => crm.later(600, () => res.destroyed || res.end('late')));
    const { send } = sender({ timeoutMs: 100, retries: 1 });
    const r = failure(await send(request()));
    expect(r.error).toMatchObject({ code: 'PBXHOOK_HTTP_TIMEOUT', retryable: true, timeoutMs: 100 });
    expect(r.attempts).toBe(2);
  });

  it('retries after the connection is reset', async () => {
    crm.handle((req, res, _s, n) => {
      if (n === 1) req.socket.destroy();
      else res.end('ok');
    });
    const { send, records } = sender();
    const r = await send(request());
    expect(r).toMatchObject({ ok: true, attempts: 2 });
    expect(records()[0]).toMatchObject({ code: 'PBXHOOK_HTTP_NETWORK', retryable: true, willRetry: true });
  });

  it('retries a refused connection and ends with PBXHOOK_HTTP_NETWORK', async () => {
    const closed = testServer();
    await closed.listen();
    const url = closed.url();
    await closed.close();
    const { send } = sender({ retries: 1 });
    const r = failure(await send(request({ url })));
    expect(r.error).toMatchObject({ code: 'PBXHOOK_HTTP_NETWORK', systemCode: 'ECONNREFUSED', retryable: true });
    expect(r.attempts).toBe(2);
  });

  it('stops retrying when the shutdown signal fires, keeping the last error', async () => {
    crm.handle((_req, res) => {
      res.statusCode = 500;
      res.end();
    });
    const stop = new AbortController();
    const { send } = sender({ minTimeoutMs: 10_000, maxTimeoutMs: 10_000 }, { signal: stop.signal });
    const pending = send(request());
    setTimeout(() => stop.abort(), 100);
    const started = Date.now();
    const r = failure(await pending);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(r.error).toMatchObject({ code: 'PBXHOOK_HTTP_STATUS', retryable: true });
    expect(r.attempts).toBe(1);
    const after = failure(await send(request()));
    expect(after).toMatchObject({ attempts: 0, error: { code: 'PBXHOOK_HTTP_ABORTED', retryable: true } });
  });

  it('never logs the token, the Authorization header or the query string', async () => {
    crm.handle((req, res, _s, n) => {
      // A careless endpoint that echoes the credentials it was given.
      res.statusCode = n === 1 ? 500 : 401;
      res.end(`bad auth: ${req.headers.authorization ?? ''}`);
    });
    const { send, lines, records } = sender();
    await send(request());
    await send(request({ headers: { Authorization: `Bearer ${TOKEN}-renderer` } }));
    const text = lines.join('');
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toMatch(/authorization/i);
    expect(text).not.toContain('query-secret');
    expect(records()[0]).toMatchObject({ url: crm.url('/hook'), body: 'bad auth: Bearer ***' });
    expect(records()[1]).toMatchObject({ status: 401, body: 'bad auth: Bearer ***' });
    expect(records()[2]).toMatchObject({ status: 401, body: 'bad auth: Bearer ***' });
    for (const r of records()) {
      expect(Object.keys(r)).toEqual(expect.arrayContaining(['endpoint', 'url', 'status', 'latencyMs', 'attempt', 'retryable']));
    }
  });
});

describe('backoff', () => {
  it('parses Retry-After as seconds or an HTTP date', () => {
    const now = Date.parse('2024-05-01T10:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Wed, 01 May 2024 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 01 May 2024 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('grows exponentially with jitter and stays within [min, max]', () => {
    const cfg = { minTimeoutMs: 1000, maxTimeoutMs: 300_000 };
    expect([1, 2, 3, 4].map((a) => retryDelayMs(a, cfg, undefined, () => 0))).toEqual([1000, 2000, 4000, 8000]);
    expect(retryDelayMs(1, cfg, undefined, () => 0.5)).toBe(1500);
    expect(retryDelayMs(20, cfg, undefined, () => 0.99)).toBe(300_000);
    expect(retryDelayMs(1, cfg, 10)).toBe(1000);
    expect(retryDelayMs(1, cfg, 86_400_000)).toBe(300_000);
    expect(retryDelayMs(1, cfg, 5000)).toBe(5000);
  });
});

describe('createOrderedDispatcher', () => {
  it('keeps one call in order while its first request is retried; another call is not delayed', async () => {
    crm.handle((_req, res, s) => {
      const failsLeft = s.body === 'a1' && crm.seen.filter((x) => x.body === 'a1').length <= 2;
      res.statusCode = failsLeft ? 500 : 200;
      res.end();
    });
    const { send } = sender({ minTimeoutMs: 40, maxTimeoutMs: 40 });
    const dispatcher = createOrderedDispatcher(send, { concurrency: 4 });
    const results = await Promise.all([
      dispatcher.dispatch(request({ body: 'a1', orderKey: 'A' })),
      dispatcher.dispatch(request({ body: 'a2', orderKey: 'A' })),
      dispatcher.dispatch(request({ body: 'b1', orderKey: 'B' })),
    ]);
    expect(results.map((r) => [r.ok, r.attempts])).toEqual([
      [true, 3],
      [true, 1],
      [true, 1],
    ]);
    const order = crm.seen.map((s) => s.body);
    expect(order.lastIndexOf('a1')).toBeLessThan(order.indexOf('a2'));
    expect(order.indexOf('b1')).toBeLessThan(order.lastIndexOf('a1'));
    await dispatcher.drain();
    expect([dispatcher.queued, dispatcher.inFlight]).toEqual([0, 0]);
  });

  it('bounds parallel keys by concurrency, moves on after a final failure, and drains', async () => {
    const started: string[] = [];
    const release = new Map<string, (r: DeliveryResult) => void>();
    const fakeSend = (req: WebhookRequest) =>
      new Promise<DeliveryResult>((resolve) => {
        started.push(req.body);
        release.set(req.body, resolve);
      });
    const d = createOrderedDispatcher(fakeSend, { concurrency: 2 });
    const ok: DeliveryResult = { ok: true, endpoint: 'crm', status: 200, attempts: 1 };
    const gaveUp: DeliveryResult = { ok: false, endpoint: 'crm', error: new HttpStatusError('crm', 503), attempts: 9 };
    const done: string[] = [];
    for (const [body, key] of [['a1', 'A'], ['b1', 'B'], ['c1', 'C'], ['a2', 'A']] as const) {
      void d.dispatch(request({ body, orderKey: key })).then(() => done.push(body));
    }
    let drained = false;
    void d.drain().then(() => (drained = true));
    expect(started).toEqual(['a1', 'b1']);
    expect([d.inFlight, d.queued]).toEqual([2, 2]);

    release.get('a1')!(gaveUp);
    await flush();
    expect(started).toEqual(['a1', 'b1', 'c1']); // C waited longer than A's second request
    release.get('b1')!(ok);
    await flush();
    expect(started).toEqual(['a1', 'b1', 'c1', 'a2']);
    release.get('c1')!(ok);
    release.get('a2')!(ok);
    await flush();
    expect(done).toEqual(['a1', 'b1', 'c1', 'a2']);
    expect(drained).toBe(true);
    await d.drain(); // idle: resolves at once
    expect(() => createOrderedDispatcher(fakeSend, { concurrency: 0 })).toThrow(RangeError);
  });
});

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}
