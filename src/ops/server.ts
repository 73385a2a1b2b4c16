import http from 'node:http';
import type { Registry } from 'prom-client';
import { LOGOUT_COOKIE, type Verdict, loginMatches, mayRead, mayWrite, sessionCookie } from './auth.js';

export interface Health {
  /** False makes /healthz answer 503, so a probe or systemd watchdog sees it. */
  readonly ok: boolean;
  readonly [detail: string]: unknown;
}

export interface OpsServerOptions {
  /** `host:port`; loopback (127.0.0.1 or [::1]) unless a token is set. Port 0 picks a free one. */
  readonly listen: string;
  /**
   * `ops.token`: write actions need it (issue #16); off loopback every request but /healthz needs
   * it too (issue #13). Bearer, HTTP Basic with the token as password, or the login form's cookie.
   */
  readonly token?: string;
  readonly registry: Registry;
  health(): Health;
  /** The status page's data: plain JSON, read-only. */
  status(): Promise<unknown>;
  /** The page served at / (the console: src/console/page.ts). */
  readonly page: string;
  /** The console's views (GET /api/…) and actions (POST /api/actions/…); see src/console/routes.ts. */
  readonly console?: ConsoleHandler;
}

/** What the server hands the console: it never decides who may act, the verdict says. */
export interface ConsoleHandler {
  /** GET /api/<path>: JSON, or undefined for 404. */
  read(path: string, query: URLSearchParams): Promise<unknown>;
  /** POST /api/actions/<kind>: `verdict` says whether the caller may act, and who they are. */
  act(kind: string, body: unknown, verdict: Verdict, remote: string): Promise<{ status: number; body: unknown }>;
}

export interface OpsServer {
  readonly port: number;
  close(): Promise<void>;
}

/** `127.0.0.1:9464`, `[::1]:9464` → host and port. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(listen);
  if (!m) throw new Error(`expected host:port, got "${listen}"`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** /metrics (Prometheus), /healthz, /status.json, and the console: its page at /, its API under /api/. */
export async function startOpsServer(opts: OpsServerOptions): Promise<OpsServer> {
  const { host, port } = parseListen(opts.listen);
  const loopback = isLoopback(host);
  const server = http.createServer((req, res) => {
    void route(req, res, opts, loopback).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  return {
    port: (server.address() as import('node:net').AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The loopback addresses ops.listen may name without a token (config/schema.ts says the same). */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** Bodies of POSTs are a token or a small JSON object: more is refused unread. */
const MAX_BODY = 4096;

function readBody(req: http.IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > MAX_BODY) {
        req.destroy();
        resolve(undefined);
      }
    });
    req.once('end', () => resolve(text));
    req.once('error', reject);
  });
}

const json = (res: http.ServerResponse, status: number, value: unknown, extra: http.OutgoingHttpHeaders = {}) =>
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...extra }).end(JSON.stringify(value));

async function route(req: http.IncomingMessage, res: http.ServerResponse, opts: OpsServerOptions, loopback: boolean): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://ops');
  const path = url.pathname;
  // /healthz stays open: a load balancer or probe carries no token, and it shows no caller.
  // /login takes the token itself, as a form field.
  if (path !== '/healthz' && path !== '/login' && !mayRead(req, opts.token, loopback)) {
    res
      .writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': ['Bearer realm="pbxhook"', 'Basic realm="pbxhook", charset="UTF-8"'] })
      .end('unauthorized: send Authorization: Bearer <ops.token>\n');
    return;
  }
  if (req.method === 'POST') return post(req, res, opts, path);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD, POST' }).end();
    return;
  }
  switch (path) {
    case '/metrics':
      res.writeHead(200, { 'content-type': opts.registry.contentType }).end(await opts.registry.metrics());
      return;
    case '/healthz': {
      const h = opts.health();
      json(res, h.ok ? 200 : 503, h, { 'cache-control': 'no-cache' });
      return;
    }
    case '/status.json':
      json(res, 200, await opts.status());
      return;
    case '/':
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'x-frame-options': 'DENY' }).end(opts.page);
      return;
  }
  const view = path.startsWith('/api/') ? await opts.console?.read(path.slice('/api/'.length), url.searchParams) : undefined;
  if (view !== undefined) json(res, 200, view);
  else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
}

/** The console's writes: log in and out, and the outbox actions (issue #16 item 3). */
async function post(req: http.IncomingMessage, res: http.ServerResponse, opts: OpsServerOptions, path: string): Promise<void> {
  const body = await readBody(req);
  if (body === undefined) {
    res.writeHead(413, { 'content-type': 'text/plain' }).end('request body too large\n');
    return;
  }
  if (path === '/login') {
    const given = new URLSearchParams(body).get('token') ?? '';
    if (opts.token === undefined) res.writeHead(403, { 'content-type': 'text/plain' }).end('no ops.token is configured: nobody can log in\n');
    else if (!loginMatches(given, opts.token)) res.writeHead(401, { 'content-type': 'text/plain' }).end('wrong token\n');
    else res.writeHead(303, { location: '/', 'set-cookie': sessionCookie(opts.token) }).end();
    return;
  }
  if (path === '/logout') {
    res.writeHead(303, { location: '/', 'set-cookie': LOGOUT_COOKIE }).end();
    return;
  }
  const kind = /^\/api\/actions\/([a-z-]+)$/.exec(path)?.[1];
  if (kind === undefined || opts.console === undefined) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    return;
  }
  // JSON only: a cross-site form cannot send it without a CORS preflight, which is never granted.
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
    res.writeHead(415, { 'content-type': 'text/plain' }).end('actions take Content-Type: application/json\n');
    return;
  }
  let parsed: unknown;
  try {
    parsed = body === '' ? {} : JSON.parse(body);
  } catch {
    json(res, 400, { error: 'the body is not JSON' });
    return;
  }
  const remote = req.socket.remoteAddress ?? 'unknown';
  const { status, body: answer } = await opts.console.act(kind, parsed, mayWrite(req, opts.token), remote);
  json(res, status, answer);
}
