import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ANSWER_KEEP_BYTES, RESPONSE_KEEP_CHARS, createHttpClient, type AttemptResult, type HttpClient } from '../src/deliver/attempt.js';
import { parseRetryAfter } from '../src/deliver/backoff.js';
import type { WebhookRequest } from '../src/emit/request.js';
import { runAsync } from './support/runAsync.js';

const TOKEN = 'tok-9f8e7d6c5b4a';

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

/**
 * One delivery attempt (src/deliver/attempt.ts) against real servers on 127.0.0.1: what each answer
 * means. Retrying is the outbox's job (schedule.ts, test/14, test/32); here, one request each.
 */
let clients: HttpClient[] = [];
function client(timeoutMs = 1000): HttpClient {
  const c = createHttpClient({ timeoutMs, connectTimeoutMs: 1000, tokens: new Map([['crm', TOKEN]]) });
  clients.push(c);
  return c;
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

function failure(r: AttemptResult) {
  if (r.ok) throw new Error(`expected a failure, got HTTP ${r.status}`);
  return r;
}

beforeAll(async () => {
  await crm.listen();
  await target.listen();
});
afterAll(async () => {
  crm.reset(); // answers still waiting
  target.reset();
  await crm.close();
  await target.close();
});
beforeEach(() => {
  crm.reset();
  target.reset();
});
afterEach(() => {
  for (const c of clients) c.close();
  clients = [];
});

describe('one delivery attempt', () => {
  it('delivers a 200 with the bearer token, the exact body and the delivery headers', async () => {
    const r = await client().attempt(request(), { 'webhook-id': 'msg_1' });
    expect(r).toMatchObject({ ok: true, status: 200 });
    expect(crm.seen).toHaveLength(1);
    const [s] = crm.seen;
    expect(s?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(s?.headers['content-type']).toBe('application/json');
    expect(s?.headers['webhook-id']).toBe('msg_1');
    expect(s?.body).toBe('{"event":"call-start"}');
    expect(s?.url).toBe('/hook?apikey=query-secret');
  });

  it('leaves an Authorization header the renderer set, and sends GET without a body', async () => {
    await client().attempt(request({ method: 'GET', body: '', headers: { authorization: 'Basic abc' } }));
    expect(crm.seen[0]?.headers.authorization).toBe('Basic abc');
    expect(crm.seen[0]?.body).toBe('');
  });

  it('reads a 500 as retryable and a 429 with its Retry-After', async () => {
    crm.handle((_req, res, _s, n) => {
      if (n === 1) res.writeHead(500).end('oops');
      else res.writeHead(429, { 'Retry-After': '7' }).end();
    });
    expect(failure(await client().attempt(request())).error).toMatchObject({ code: 'PBXHOOK_HTTP_STATUS', status: 500, retryable: true });
    expect(failure(await client().attempt(request())).error).toMatchObject({ status: 429, retryable: true, retryAfterMs: 7000 });
  });

  it('does not follow a 301: one request, a permanent failure, the target sees nothing', async () => {
    crm.handle((_req, res) => res.writeHead(301, { Location: target.url('/moved?sig=abc') }).end());
    const r = failure(await client().attempt(request()));
    expect(r.error).toMatchObject({ code: 'PBXHOOK_HTTP_REDIRECT', retryable: false, status: 301, location: target.url('/moved') });
    expect(crm.seen).toHaveLength(1);
    expect(target.seen).toHaveLength(0);
  });

  it('reads a 410 as permanent, keeping the start of the answer for the log', async () => {
    crm.handle((_req, res) => res.writeHead(410).end('gone'));
    const r = failure(await client().attempt(request()));
    expect(r.error).toMatchObject({ code: 'PBXHOOK_HTTP_STATUS', status: 410, retryable: false });
    expect(r.body).toBe('gone');
  });

  it('gives up on an answer slower than the timeout: PBXHOOK_HTTP_TIMEOUT, retryable', async () => {
    // The answer comes long after the test (reset() cancels it): only the timeout can end the attempt,
    // so its ending at all is the proof; no stopwatch, which a busy machine would fool (issue #13).
    let answered = false;
    crm.handle((_req, res) =>
      crm.later(600_000, () => {
        answered = true;
        if (!res.destroyed) res.end('late');
      }),
    );
    const r = failure(await client(100).attempt(request()));
    expect(r.error).toMatchObject({ code: 'PBXHOOK_HTTP_TIMEOUT', retryable: true });
    expect(answered).toBe(false);
  });

  it('reads a reset connection and a refused one as retryable network errors', async () => {
    crm.handle((req) => req.socket.destroy());
    expect(failure(await client().attempt(request())).error).toMatchObject({ code: 'PBXHOOK_HTTP_NETWORK', retryable: true });
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const refused = failure(await client().attempt(request({ url: `http://127.0.0.1:${port}/hook` })));
    expect(refused.error).toMatchObject({ code: 'PBXHOOK_HTTP_NETWORK', retryable: true });
  });

  it('stops at once when the shutdown signal has fired', async () => {
    const abort = new AbortController();
    abort.abort();
    const r = failure(await client().attempt(request(), {}, abort.signal));
    expect(r.error).toMatchObject({ code: 'PBXHOOK_HTTP_ABORTED', retryable: true });
    expect(crm.seen).toHaveLength(0);
  });

  it('masks the token in an answer that echoes it, for the log', async () => {
    crm.handle((req, res) => res.writeHead(401).end(`bad auth: ${req.headers.authorization ?? ''}`));
    const r = failure(await client().attempt(request()));
    expect(r.body).toBe('bad auth: Bearer ***');
    expect(JSON.stringify(r)).not.toContain(TOKEN);
  });
});

/**
 * Streams `total` bytes of `fill` as an answer body, respecting backpressure; counts what the
 * socket took before the client went away.
 */
function streamAnswer(res: http.ServerResponse, status: number, total: number, fill = 'x'): { written: () => number } {
  const chunk = Buffer.alloc(64 * 1024, fill);
  let written = 0;
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': String(total) });
  const pump = (): void => {
    while (written < total && !res.destroyed) {
      const n = Math.min(chunk.length, total - written);
      written += n;
      if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once('drain', pump);
    }
    if (written >= total) res.end();
  };
  res.on('error', () => {});
  pump();
  return { written: () => written };
}

describe('the answer body (issue #14 item 7)', () => {
  const TOTAL = 50 * 1024 * 1024;

  it('a 200 with a huge body is a success, read only up to ANSWER_KEEP_BYTES: the rest is never sent for', async () => {
    let sent: { written: () => number } | undefined;
    let closed!: () => void;
    const gone = new Promise<void>((r) => (closed = r));
    crm.handle((_req, res) => {
      sent = streamAnswer(res, 200, TOTAL);
      res.once('close', () => closed());
    });
    const r = await client(10_000).attempt(request());
    expect(r).toMatchObject({ ok: true, status: 200 });
    await gone;
    expect(sent!.written(), 'the client closed the connection instead of reading the rest').toBeLessThan(TOTAL);
    expect(ANSWER_KEEP_BYTES).toBe(64 * 1024);
  });

  it('an error answer with a huge body: its status decides, the attempt keeps the first 1 KB of it', async () => {
    crm.handle((_req, res) => void streamAnswer(res, 503, TOTAL, 'e'));
    const r = failure(await client(10_000).attempt(request()));
    expect(r.error).toMatchObject({ code: 'PBXHOOK_HTTP_STATUS', status: 503, retryable: true });
    expect(r.body).toBe('e'.repeat(RESPONSE_KEEP_CHARS));
    expect(RESPONSE_KEEP_CHARS).toBe(1024);
  });

  it('a success keeps the start of its answer too, for the console (issue #16 item 2)', async () => {
    crm.handle((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(`{"id":"${'x'.repeat(2000)}"}`));
    const r = await client().attempt(request());
    expect(r).toMatchObject({ ok: true, status: 200 });
    expect(r.body).toBe(`{"id":"${'x'.repeat(RESPONSE_KEEP_CHARS - 7)}`);
  });

  // The deadline and the shutdown signal abort the same controller: a shutdown mid-body is the same case.
  it('a 200 whose body never ends is still a success, once the deadline cuts it', async () => {
    crm.handle((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('still talking');
    });
    expect(await client(300).attempt(request())).toMatchObject({ ok: true, status: 200 });
  });
});

describe('Retry-After', () => {
  it('is read as seconds or an HTTP date', () => {
    const now = Date.parse('2024-05-01T10:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Wed, 01 May 2024 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 01 May 2024 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

/**
 * The exchange itself (src/deliver/http-exchange.ts, issue #15): what axios did for the outbox
 * before, kept by hand — keep-alive, a shutdown mid-request, no compression asked, bad input
 * refused before anything is sent, and TLS verified.
 */
describe('the HTTP exchange', () => {
  it('keeps the connection alive between attempts, and asks for no compression', async () => {
    const sockets = new Set<unknown>();
    crm.handle((req, res) => {
      sockets.add(req.socket);
      res.end('ok');
    });
    const c = client();
    for (let i = 0; i < 3; i++) expect(await c.attempt(request())).toMatchObject({ ok: true, status: 200 });
    expect(sockets.size).toBe(1);
    expect(crm.seen[0]?.headers['accept-encoding']).toBeUndefined();
    expect(crm.seen[0]?.headers['content-length']).toBe(String(Buffer.byteLength('{"event":"call-start"}')));
    expect(crm.seen[0]?.headers['user-agent']).toBe('pbxhook');
  });

  it('sends a body of any UTF-8 text with its byte length', async () => {
    const body = '{"caller":"Zoë Ångström ☎"}';
    expect(await client().attempt(request({ body }))).toMatchObject({ ok: true });
    expect(crm.seen[0]?.body).toBe(body);
  });

  it('a shutdown during the request cuts it off: PBXHOOK_HTTP_ABORTED, retryable', async () => {
    const abort = new AbortController();
    crm.handle(() => abort.abort()); // the request arrived; its answer never comes
    const r = failure(await client(60_000).attempt(request(), {}, abort.signal));
    expect(r.error).toMatchObject({ code: 'PBXHOOK_HTTP_ABORTED', retryable: true });
    expect(crm.seen).toHaveLength(1);
  });

  it('a shutdown stops only the attempts that obey that signal', async () => {
    const one = new AbortController();
    const two = new AbortController();
    const held: http.ServerResponse[] = [];
    crm.handle((req, res) => {
      held[Number(req.headers['x-n'])] = res;
      if (held.filter(Boolean).length < 2) return;
      one.abort(); // both requests are in: shut down the first only, then answer the second
      held[2]!.end('ok');
    });
    const c = client(60_000);
    const [a, b] = await Promise.all([
      c.attempt(request({ headers: { 'x-n': '1' } }), {}, one.signal),
      c.attempt(request({ headers: { 'x-n': '2' } }), {}, two.signal),
    ]);
    expect(a).toMatchObject({ ok: false, error: { code: 'PBXHOOK_HTTP_ABORTED' } });
    expect(b).toMatchObject({ ok: true, status: 200 });
  });

  it('sends the userinfo of a URL as Basic authentication, unless a token is set', async () => {
    const url = crm.url('/hook').replace('http://', 'http://ann:s%40cret@');
    const tokenless = createHttpClient({ timeoutMs: 1000, tokens: new Map() });
    clients.push(tokenless);
    await tokenless.attempt(request({ url }));
    await client().attempt(request({ url }));
    expect(crm.seen.map((s) => s.headers.authorization)).toEqual([`Basic ${Buffer.from('ann:s@cret').toString('base64')}`, `Bearer ${TOKEN}`]);
  });

  it('refuses what the same request would hit again, before sending anything: permanent', async () => {
    for (const over of [{ url: 'not a url' }, { url: 'ftp://127.0.0.1/hook' }, { headers: { 'x-bad': 'line\nbreak' } }]) {
      const r = failure(await client().attempt(request(over)));
      expect(r.error).toMatchObject({ code: 'PBXHOOK_HTTP_NETWORK', retryable: false });
    }
    expect(crm.seen).toHaveLength(0);
  });
});

describe('https endpoints', () => {
  const tls = fileURLToPath(new URL('./fixtures/tls/', import.meta.url));
  const seen: Array<{ auth: string | undefined; body: string }> = [];
  const server = https.createServer({ key: readFileSync(`${tls}key.pem`), cert: readFileSync(`${tls}cert.pem`) }, (req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen.push({ auth: req.headers.authorization, body });
      res.end('ok');
    });
  });
  const url = () => `https://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  beforeAll(() => new Promise<void>((r) => server.listen(0, '127.0.0.1', r)));
  afterAll(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });

  it('refuses a certificate no CA vouches for: a network error, nothing sent', async () => {
    const r = failure(await client().attempt(request({ url: url() })));
    expect(r.error).toMatchObject({ code: 'PBXHOOK_HTTP_NETWORK' });
    expect(r.error.message).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY|CERT/);
    expect(seen).toHaveLength(0);
  });

  it('delivers over TLS to a private CA given by NODE_EXTRA_CA_CERTS (read at process start: a child process)', async () => {
    const attemptJs = fileURLToPath(new URL('../dist/deliver/attempt.js', import.meta.url));
    const script = `
      const { createHttpClient } = await import(${JSON.stringify(attemptJs)});
      const c = createHttpClient({ timeoutMs: 10000, tokens: new Map([['crm', ${JSON.stringify(TOKEN)}]]) });
      const r = await c.attempt({ endpoint: 'crm', method: 'POST', url: ${JSON.stringify(url())}, headers: {}, body: 'over tls', orderKey: 'k' });
      c.close();
      process.stdout.write(JSON.stringify(r));`;
    const run = await runAsync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: `${tls}cert.pem` },
      timeout: 30_000,
    });
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: true, status: 200 });
    expect(seen).toEqual([{ auth: `Bearer ${TOKEN}`, body: 'over tls' }]);
  });
});
