/**
 * The live FreeSWITCH event socket, through the `modesl` package (inbound mode). It connects,
 * answers `auth/request` with the password, subscribes with `event plain …` and hands every event
 * frame to `onFrame` as the same EslFrame the trace framer yields: modesl cuts the frames, the event
 * inside is decoded by frame.ts for both paths (proven equal in test/06). It does not reconnect: a
 * failed start is returned as a typed error and a later disconnect is reported through `onStatus`;
 * the reconnect policy lives in ingest.ts.
 *
 * `onFrame` runs synchronously in the socket's data handler and the socket is never paused:
 * FreeSWITCH drops events for a client whose queue fills up, so reading must never wait.
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { EslAuthError, EslConnectError, type EslClientError } from './errors.js';
import { subscribeCommand } from './events.js';
import { urlDecode, type EslFrame } from './frame.js';

export interface EslConnectConfig {
  readonly host: string;
  readonly port: number;
  readonly password: string;
  /** Connect + auth + subscription must finish within this time; default 10 s. */
  readonly timeoutMs?: number;
}

export type EslStatus = 'connected' | 'disconnected';

export interface EslHandlers {
  /** Called synchronously from the socket's data handler: it must not throw. */
  onFrame(frame: EslFrame): void;
  onStatus?(status: EslStatus): void;
}

/** The part of a pino logger used here. */
export interface EslLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface EslSession {
  /** `api <command>`: FreeSWITCH's answer (the api/response body), or an Error after a timeout. */
  api(command: string, timeoutMs?: number): Promise<string>;
  /** Ends the connection (`exit`); resolves once the socket is closed. */
  close(): Promise<void>;
}

export type EslConnectResult =
  | { readonly ok: true; readonly session: EslSession }
  | { readonly ok: false; readonly error: EslClientError };

/** The slice of modesl's untyped CommonJS API used here. */
interface ModeslEvent {
  getHeader(name: string): string | null;
  getBody(): string | undefined;
}
interface ModeslParser {
  _parseHeaderText(text: string): Record<string, string | number>;
}
interface ModeslConnection {
  socket: Socket | null;
  parser?: ModeslParser;
  on(event: string, fn: (...args: never[]) => void): void;
  once(event: string, fn: (...args: never[]) => void): void;
  sendRecv(command: string, cb: (reply: ModeslEvent) => void): void;
  api(command: string, cb: (reply: ModeslEvent) => void): void;
  disconnect(): void;
}
interface Modesl {
  Connection: new (host: string, port: number, password: string) => ModeslConnection;
}
const modesl = createRequire(import.meta.url)('modesl') as Modesl;

const DEFAULT_TIMEOUT_MS = 10_000;
const CLOSE_GRACE_MS = 2_000;

/**
 * modesl runs decodeURIComponent over every header inside the socket's data handler; FreeSWITCH
 * passes a literal "%FF" through unencoded (switch_url_encode_opt), which would throw there and
 * take the process down. Same parse, a decoding that cannot throw.
 */
function safeHeaderText(text: string): Record<string, string | number> {
  const headers: Record<string, string | number> = {};
  for (const line of text.split('\n')) {
    const parts = line.split(': ');
    const key = parts.shift() ?? '';
    const raw = parts.join(': ');
    let value: string;
    try {
      value = decodeURIComponent(raw);
    } catch {
      value = urlDecode(raw);
    }
    headers[key] = key === 'Content-Length' ? parseInt(value, 10) : value;
  }
  return headers;
}

/** modesl's frame header object → EslFrame headers (strings, as the framer gives them). */
function frameHeaders(raw: Record<string, unknown>): Record<string, string> {
  const headers: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(raw)) headers[k] = String(v);
  return headers;
}

export function connectEsl(cfg: EslConnectConfig, handlers: EslHandlers, log: EslLog): Promise<EslConnectResult> {
  return new Promise((resolve) => {
    const where = { host: cfg.host, port: cfg.port }; // never the password
    const conn = new modesl.Connection(cfg.host, cfg.port, cfg.password);
    const socket = conn.socket;
    let phase: 'connecting' | 'subscribing' | 'ready' | 'closed' = 'connecting';
    let socketClosed = false;
    const closeWaiters: Array<() => void> = [];

    const fail = (error: EslClientError): void => {
      if (phase === 'ready' || phase === 'closed') return;
      phase = 'closed';
      clearTimeout(timer);
      socket?.destroy();
      resolve({ ok: false, error });
    };
    const timeoutMs = cfg.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const timer = setTimeout(
      () => fail(new EslConnectError(cfg.host, cfg.port, `no auth/subscription answer within ${timeoutMs} ms`)),
      timeoutMs,
    );

    const session: EslSession = {
      api: (command, apiTimeoutMs = DEFAULT_TIMEOUT_MS) =>
        new Promise<string>((done, failed) => {
          if (phase !== 'ready') return failed(new Error('ESL session is not ready'));
          // A connection lost mid-command never answers: the timeout settles the promise instead.
          const t = setTimeout(() => failed(new Error(`no answer to "api ${command}" within ${apiTimeoutMs} ms`)), apiTimeoutMs);
          t.unref();
          conn.api(command, (reply) => {
            clearTimeout(t);
            done(reply.getBody() ?? '');
          });
        }),
      close: () =>
        new Promise<void>((done) => {
          if (socketClosed || !socket) return done();
          closeWaiters.push(done);
          // Our own close is not a lost connection: no warning, no 'disconnected'.
          if (phase === 'ready') phase = 'closed';
          conn.disconnect();
          setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
        }),
    };

    conn.once('esl::connect', () => {
      if (conn.parser) conn.parser._parseHeaderText = safeHeaderText;
      socket?.setKeepAlive(true, 30_000);
    });

    conn.on('esl::event::auth::fail', (reply: ModeslEvent) => {
      fail(new EslAuthError(cfg.host, cfg.port, redact(reply.getHeader('Reply-Text') ?? '', cfg.password)));
    });

    conn.on('esl::ready', () => {
      if (phase !== 'connecting') return;
      phase = 'subscribing';
      conn.sendRecv(subscribeCommand(), (reply) => {
        const text = reply.getHeader('Reply-Text') ?? '';
        if (!text.startsWith('+OK')) {
          fail(new EslConnectError(cfg.host, cfg.port, `event subscription refused: ${text || 'no reply'}`));
          return;
        }
        if (phase !== 'subscribing') return;
        phase = 'ready';
        clearTimeout(timer);
        log.info(where, 'ESL connected');
        handlers.onStatus?.('connected');
        resolve({ ok: true, session });
      });
    });

    // Every frame modesl cut, with its undecoded body; only events go on.
    conn.on('esl::event::**', (_event: never, headers: Record<string, unknown>, body: string | undefined) => {
      if (phase !== 'ready' && phase !== 'subscribing') return;
      const type = headers?.['Content-Type'];
      if (type !== 'text/event-plain' && type !== 'text/event-json') return;
      handlers.onFrame({ headers: frameHeaders(headers), body: body ?? '' });
    });

    conn.on('error', (err: Error & { code?: string }) => {
      if (phase === 'connecting' || phase === 'subscribing') {
        fail(new EslConnectError(cfg.host, cfg.port, err.code ?? err.message, { cause: err }));
      } else if (phase === 'ready') {
        log.warn({ ...where, err: err.message }, 'ESL socket error');
      }
    });

    socket?.on('close', () => {
      socketClosed = true;
      for (const done of closeWaiters.splice(0)) done();
      if (phase === 'ready') {
        phase = 'closed';
        log.warn(where, 'ESL disconnected');
        handlers.onStatus?.('disconnected');
      } else if (phase !== 'closed') {
        fail(new EslConnectError(cfg.host, cfg.port, 'connection closed before auth and subscription were answered'));
      }
    });
  });
}

/** A server could echo what we sent; keep the password out of error messages anyway. */
function redact(text: string, secret: string): string {
  return secret === '' ? text : text.split(secret).join('***');
}
