/**
 * The live AMI connection, through the `asterisk-manager` package. It connects, logs in and
 * hands every message after the Login response to `onFrame` as the same AmiFrame the trace
 * framer yields. It does not reconnect: a failed start is returned as a typed error and a
 * later disconnect is reported through `onStatus`; the reconnect policy lives elsewhere.
 *
 * asterisk-manager's `keepConnected()` is not used (it console.logs and retries forever), nor
 * its constructor's auto-login (that drops the login result).
 */
import { createRequire } from 'node:module';
import { AmiAuthError, AmiConnectError, type AmiClientError } from './errors.js';
import type { AmiFrame } from './frame.js';
import { fromManagerEvent } from './managerEvent.js';

export interface AmiConnectConfig {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly secret: string;
  /** Connect + login must finish within this time; default 10 s. */
  readonly timeoutMs?: number;
}

export type AmiStatus = 'connected' | 'disconnected';

export interface AmiHandlers {
  /** Called synchronously from the socket's data handler: it must not throw. */
  onFrame(frame: AmiFrame): void;
  onStatus?(status: AmiStatus): void;
  /**
   * Decides from the event's name (and a VarSet's variable, a CEL's EventName) whether to build a
   * frame at all: the live twin of the replay framer's filter, so noise costs no conversion and no
   * normalising.
   */
  accept?(event: string, detail: string | undefined): boolean;
}

/** The part of a pino logger used here. */
export interface AmiLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface AmiSession {
  /** Sends an action (`{Action: 'CoreShowChannels', ActionID: …}`); its answer arrives as frames. */
  action(fields: Readonly<Record<string, string>>): void;
  /** Ends the connection; resolves once the socket is closed. */
  close(): Promise<void>;
}

export type AmiConnectResult =
  | { readonly ok: true; readonly session: AmiSession }
  | { readonly ok: false; readonly error: AmiClientError };

/** The slice of asterisk-manager's untyped CommonJS API used here. */
interface Manager {
  on(event: 'rawevent', fn: (item: Record<string, unknown>) => void): void;
  on(event: 'error', fn: (err: Error & { code?: string }) => void): void;
  on(event: 'close', fn: () => void): void;
  connect(port: number, host: string, onConnect: () => void): void;
  login(done: () => void): void;
  action(fields: Record<string, string>): string;
  disconnect(): void;
}
type ManagerFactory = (
  port: undefined, host: string, username: string, secret: string, events: boolean,
) => Manager;
const createManager = createRequire(import.meta.url)('asterisk-manager') as ManagerFactory;

const DEFAULT_TIMEOUT_MS = 10_000;

export function connectAmi(cfg: AmiConnectConfig, handlers: AmiHandlers, log: AmiLog): Promise<AmiConnectResult> {
  return new Promise((resolve) => {
    const where = { host: cfg.host, port: cfg.port, username: cfg.username }; // never the secret
    // No port: the constructor must not connect and log in by itself. `events: true` makes it
    // send "Event: on"; Asterisk reads "Events", so the session gets what manager.conf's read= allows.
    const mgr = createManager(undefined, cfg.host, cfg.username, cfg.secret, true);
    let phase: 'connecting' | 'login' | 'ready' | 'closed' = 'connecting';
    let socketClosed = false;
    const closeWaiters: Array<() => void> = [];

    const fail = (error: AmiClientError): void => {
      if (phase === 'ready' || phase === 'closed') return;
      // While still connecting the socket is not open yet; the connect callback ends it.
      if (phase === 'login') mgr.disconnect();
      phase = 'closed';
      clearTimeout(timer);
      resolve({ ok: false, error });
    };
    const timeoutMs = cfg.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const timer = setTimeout(
      () => fail(new AmiConnectError(cfg.host, cfg.port, `no login answer within ${timeoutMs} ms`)),
      timeoutMs,
    );

    const session: AmiSession = {
      // asterisk-manager expects lower-case keys (it capitalises them) and takes ActionID as `actionid`.
      action: (fields) => {
        if (phase === 'ready') mgr.action(Object.fromEntries(Object.entries(fields).map(([k, v]) => [k.toLowerCase(), v])));
      },
      close: () =>
        new Promise<void>((done) => {
          if (socketClosed) return done();
          closeWaiters.push(done);
          // Our own close is not a lost connection: no warning, no 'disconnected'.
          if (phase === 'ready') phase = 'closed';
          mgr.disconnect();
        }),
    };

    mgr.on('rawevent', (item) => {
      if (phase === 'ready' && handlers.accept && typeof item['event'] === 'string') {
        const v = item['event'] === 'CEL' ? item['eventname'] : item['variable'];
        const detail = v !== null && typeof v === 'object' ? Object.keys(v)[0] : typeof v === 'string' ? v : undefined;
        if (!handlers.accept(item['event'], detail)) return;
      }
      const frame = fromManagerEvent(item);
      if (phase === 'login') {
        // Asterisk sends nothing before the Login answer; it is consumed here, not a frame.
        const answer = frame.fields.response;
        if (answer === undefined) return;
        if (answer.toLowerCase() !== 'success') {
          const said = redact(frame.fields.message ?? '', cfg.secret);
          fail(new AmiAuthError(cfg.host, cfg.port, cfg.username, said));
          return;
        }
        phase = 'ready';
        clearTimeout(timer);
        log.info(where, 'AMI connected');
        handlers.onStatus?.('connected');
        resolve({ ok: true, session });
        return;
      }
      // A run of blank lines reaches us as {}; the framer skips those too.
      if (phase === 'ready' && (Object.keys(frame.fields).length > 0 || frame.vars)) handlers.onFrame(frame);
    });

    mgr.on('error', (err) => {
      if (phase === 'connecting' || phase === 'login') {
        fail(new AmiConnectError(cfg.host, cfg.port, err.code ?? err.message, { cause: err }));
      } else if (phase === 'ready') {
        log.warn({ ...where, err: err.message }, 'AMI socket error');
      }
    });

    mgr.on('close', () => {
      socketClosed = true;
      for (const done of closeWaiters.splice(0)) done();
      if (phase === 'ready') {
        phase = 'closed';
        log.warn(where, 'AMI disconnected');
        handlers.onStatus?.('disconnected');
      } else if (phase !== 'closed') {
        fail(new AmiConnectError(cfg.host, cfg.port, 'connection closed before the login was answered'));
      }
    });

    mgr.connect(cfg.port, cfg.host, () => {
      if (phase === 'closed') return mgr.disconnect(); // gave up (timeout) while connecting
      phase = 'login';
      mgr.login(() => {}); // the outcome is read from the Login response in 'rawevent'
    });
  });
}

/** A server could echo what we sent; keep the secret out of error messages anyway. */
function redact(text: string, secret: string): string {
  return secret === '' ? text : text.split(secret).join('***');
}
