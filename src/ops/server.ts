import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { Registry } from 'prom-client';
import { STATUS_PAGE } from './page.js';

export interface Health {
  /** False makes /healthz answer 503, so a probe or systemd watchdog sees it. */
  readonly ok: boolean;
  readonly [detail: string]: unknown;
}

export interface OpsServerOptions {
  /** `host:port`; loopback (127.0.0.1 or [::1]) unless a token is set. Port 0 picks a free one. */
  readonly listen: string;
  /**
   * `ops.token`: then every request but /healthz needs `Authorization: Bearer <token>` (issue #13);
   * HTTP Basic with the token as password is taken too, since a browser can send only that.
   */
  readonly token?: string;
  readonly registry: Registry;
  health(): Health;
  /** The status page's data: plain JSON, read-only. */
  status(): unknown;
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

/** /metrics (Prometheus), /healthz, /status.json and a small read-only status page at /. */
export async function startOpsServer(opts: OpsServerOptions): Promise<OpsServer> {
  const server = http.createServer((req, res) => {
    void route(req, res, opts).catch((err: unknown) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
    });
  });
  const { host, port } = parseListen(opts.listen);
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

/** The credential of `Bearer <token>`, or the password of `Basic base64(user:password)`. */
function credentialOf(header: string | undefined): string | undefined {
  const [scheme = '', value = ''] = (header ?? '').trim().split(/\s+/, 2);
  if (/^bearer$/i.test(scheme)) return value;
  if (!/^basic$/i.test(scheme)) return undefined;
  const pair = Buffer.from(value, 'base64').toString('utf8');
  return pair.includes(':') ? pair.slice(pair.indexOf(':') + 1) : undefined;
}

/** Compared as digests, in constant time, so the answer's timing says nothing about the token. */
function authorised(req: http.IncomingMessage, token: string): boolean {
  const given = credentialOf(req.headers.authorization);
  if (given === undefined) return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(token));
}

async function route(req: http.IncomingMessage, res: http.ServerResponse, opts: OpsServerOptions): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  // /healthz stays open: a load balancer or probe carries no token, and it shows no caller.
  if (opts.token !== undefined && path !== '/healthz' && !authorised(req, opts.token)) {
    res
      .writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': ['Bearer realm="pbxhook"', 'Basic realm="pbxhook", charset="UTF-8"'] })
      .end('unauthorized: send Authorization: Bearer <ops.token>\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  switch (path) {
    case '/metrics':
      res.writeHead(200, { 'content-type': opts.registry.contentType }).end(await opts.registry.metrics());
      return;
    case '/healthz': {
      const h = opts.health();
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(h));
      return;
    }
    case '/status.json':
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(opts.status()));
      return;
    case '/':
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(STATUS_PAGE);
      return;
    default:
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }
}
