/**
 * The live AMI connection: a TCP socket read through the project's own framer (framer.ts, the one
 * replay uses), so live and replay cut the same bytes into the same frames. It connects, logs in
 * and hands every message after the Login response to `onFrame`. It does not reconnect: a failed
 * start is returned as a typed error and a later disconnect is reported through `onStatus`; the
 * reconnect policy lives in src/ingest.ts.
 *
 * Until issue #14 this was the `asterisk-manager` package. Hostile bytes measured through the fake
 * server (scripts/hostile-pbx.ts, README "Hostile PBX input") crashed it (`ActionID: error` made it
 * emit an `error` event), froze it (a message without a blank line: its line array is re-split and
 * shifted on every chunk, 1 MB of short lines blocked the event loop for over 120 s), and its
 * values were slices of the 64 KB socket strings, which every live call kept alive (815 MB at 10k
 * calls). The framer is bounded (`maxFrameBytes`), linear and fuzzed (test/02, test/08); what the
 * package still did for us, the Login and the action text, is a few lines here.
 */
import net from 'node:net';
import { AmiAuthError, AmiConnectError, type AmiClientError } from './errors.js';
import { READ_AMI_KEYS } from './fields.js';
import type { AmiFrame } from './frame.js';
import { AmiFramer, DEFAULT_MAX_FRAME_BYTES } from './framer.js';

export interface AmiConnectConfig {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly secret: string;
  /** Connect + login must finish within this time; default 10 s. */
  readonly timeoutMs?: number;
  /** Largest AMI message kept (pbx.max_frame_bytes); a longer one is logged and skipped. */
  readonly maxFrameBytes?: number;
  /**
   * A regular expression Asterisk should filter this session's events with (the `Filter` action,
   * src/ami/event-filter.ts), sent right after the Login; none: every event the user may read.
   */
  readonly sessionFilter?: string;
}

export type AmiStatus = 'connected' | 'disconnected';

/** Why PBX input was not turned into a frame (pbxhook_frames_skipped_total{reason}). */
export type AmiSkipReason = 'oversized';

export interface AmiHandlers {
  /** Called synchronously from the socket's data handler; a throw is logged, never fatal. */
  onFrame(frame: AmiFrame): void;
  onStatus?(status: AmiStatus): void;
  /**
   * Decides from the event's name (and a VarSet's variable, a CEL's EventName) whether to build a
   * frame at all: the live twin of the replay framer's filter, so noise costs no conversion and no
   * normalising.
   */
  accept?(event: string, detail: string | undefined): boolean;
  /** A message was dropped unread (already logged here); for the daemon's counters. */
  onSkip?(reason: AmiSkipReason): void;
  /**
   * Asterisk refused the `Filter` action (`said`: its message); the session carries on
   * unfiltered. Without this handler the refusal is logged here, once per login.
   */
  onFilterRefused?(said: string): void;
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

const DEFAULT_TIMEOUT_MS = 10_000;
/** After our `end()`, a peer that keeps its side open is cut off after this long. */
const CLOSE_GRACE_MS = 2_000;
const LOGIN_ID = 'pbxhook-login';
const FILTER_ID = 'pbxhook-filter';

/** `Key: value` lines and the blank line; CR and LF inside a value would start a new header. */
export function actionText(fields: Readonly<Record<string, string>>): string {
  const clean = (s: string): string => s.replace(/[\r\n]/g, ' ');
  return Object.entries(fields).map(([k, v]) => `${clean(k)}: ${clean(v)}\r\n`).join('') + '\r\n';
}

export function connectAmi(cfg: AmiConnectConfig, handlers: AmiHandlers, log: AmiLog): Promise<AmiConnectResult> {
  return new Promise((resolve) => {
    const where = { host: cfg.host, port: cfg.port, username: cfg.username }; // never the secret
    const maxFrameBytes = cfg.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    // `filter`: logged in, waiting for the answer to the Filter action; events flow meanwhile.
    let phase: 'connecting' | 'login' | 'filter' | 'ready' | 'closed' = 'connecting';
    let socketClosed = false;
    const closeWaiters: Array<() => void> = [];
    const accept = handlers.accept;
    const framer = new AmiFramer({
      maxFrameBytes,
      // Only the values pbxhook reads are built (issue #15).
      keys: READ_AMI_KEYS,
      // The filter sees `Event:` messages only, never the Login answer.
      ...(accept ? { filter: (name: string, bytes: Buffer, start: number, end: number) => accept(name, detailOf(name, bytes, start, end)) } : {}),
    });
    const sock = net.createConnection({ host: cfg.host, port: cfg.port });
    sock.setNoDelay(true);
    sock.setKeepAlive(true, 30_000);

    const fail = (error: AmiClientError): void => {
      if (phase === 'ready' || phase === 'closed') return;
      phase = 'closed';
      clearTimeout(timer);
      sock.destroy();
      resolve({ ok: false, error });
    };
    const timeoutMs = cfg.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let timer = setTimeout(
      () => fail(new AmiConnectError(cfg.host, cfg.port, `no login answer within ${timeoutMs} ms`)),
      timeoutMs,
    );

    const session: AmiSession = {
      action: (fields) => {
        if (phase === 'ready') sock.write(actionText(fields));
      },
      close: () =>
        new Promise<void>((done) => {
          if (socketClosed) return done();
          closeWaiters.push(done);
          // Our own close is not a lost connection: no warning, no 'disconnected'.
          if (phase === 'ready') phase = 'closed';
          sock.end();
          setTimeout(() => sock.destroy(), CLOSE_GRACE_MS).unref();
        }),
    };

    const loginAnswer = (frame: AmiFrame): void => {
      // Asterisk sends nothing but its banner before the Login answer.
      const answer = frame.fields.response;
      if (answer === undefined) return;
      if (answer.toLowerCase() !== 'success') {
        const said = redact(frame.fields.message ?? '', cfg.secret);
        fail(new AmiAuthError(cfg.host, cfg.port, cfg.username, said));
        return;
      }
      if (cfg.sessionFilter === undefined) return ready('off');
      phase = 'filter';
      sock.write(actionText({ Action: 'Filter', ActionID: FILTER_ID, Operation: 'Add', Filter: cfg.sessionFilter }));
      // Logged in: a Filter never answered (a proxy or an AMI look-alike that drops unknown
      // actions) is a refusal, not a failed login; failing here would reconnect forever.
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (phase === 'filter') filterRefused(`no answer to the Filter action within ${timeoutMs} ms`);
      }, timeoutMs);
    };

    const filterAnswer = (frame: AmiFrame): void => {
      const answer = frame.fields.response ?? '';
      if (answer.toLowerCase() === 'success') return ready('on');
      // Permission denied (no `write = system`), or an Asterisk before 10: carry on unfiltered.
      filterRefused(redact(frame.fields.message ?? answer, cfg.secret));
    };

    const filterRefused = (said: string): void => {
      if (handlers.onFilterRefused) handlers.onFilterRefused(said);
      else log.warn({ ...where, code: 'PBXHOOK_AMI_FILTER_REFUSED', said }, 'AMI Filter action refused; reading every event');
      ready('refused');
    };

    const ready = (eventFilter: 'on' | 'off' | 'refused'): void => {
      phase = 'ready';
      clearTimeout(timer);
      log.info({ ...where, eventFilter }, 'AMI connected');
      handlers.onStatus?.('connected');
      resolve({ ok: true, session });
    };

    let oversized = 0;
    sock.on('data', (chunk: Buffer) => {
      const frames = framer.push(chunk);
      const stats = framer.stats;
      if (stats.oversizedFrames > oversized) {
        // Bounded memory, a log line and a count: one broken message never takes the daemon down.
        for (; oversized < stats.oversizedFrames; oversized++) handlers.onSkip?.('oversized');
        log.warn({ ...where, code: 'PBXHOOK_AMI_FRAME_SKIPPED', reason: 'oversized', maxFrameBytes, oversizedFrames: oversized }, 'AMI message over max_frame_bytes skipped');
      }
      for (const frame of frames) {
        if (phase === 'login') loginAnswer(frame);
        else if (phase === 'filter' && frame.fields.actionid === FILTER_ID && frame.fields.response !== undefined) filterAnswer(frame);
        else if (phase === 'ready' || phase === 'filter') deliver(frame);
      }
    });
    const deliver = (frame: AmiFrame): void => {
      try {
        handlers.onFrame(frame);
      } catch (err) {
        log.warn({ ...where, err: err instanceof Error ? err.message : String(err), event: frame.fields.event }, 'AMI frame handler failed; frame skipped');
      }
    };

    sock.on('error', (err: Error & { code?: string }) => {
      if (phase === 'connecting' || phase === 'login' || phase === 'filter') {
        fail(new AmiConnectError(cfg.host, cfg.port, err.code ?? err.message, { cause: err }));
      } else if (phase === 'ready') {
        log.warn({ ...where, err: err.message }, 'AMI socket error');
      }
    });

    sock.on('close', () => {
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

    sock.once('connect', () => {
      if (phase !== 'connecting') return;
      phase = 'login';
      sock.write(actionText({ Action: 'Login', ActionID: LOGIN_ID, Username: cfg.username, Secret: cfg.secret, Events: 'on' }));
    });
  });
}

const VARIABLE = Buffer.from('\nVariable: ');
const EVENT_NAME = Buffer.from('\nEventName: ');

/** A VarSet's variable name or a CEL's EventName, read from the raw message for the filter. */
function detailOf(name: string, bytes: Buffer, start: number, end: number): string | undefined {
  const needle = name === 'VarSet' ? VARIABLE : name === 'CEL' ? EVENT_NAME : undefined;
  if (needle === undefined) return undefined;
  const at = bytes.indexOf(needle, start);
  if (at < 0 || at >= end) return undefined;
  const from = at + needle.length;
  let to = bytes.indexOf(0x0a, from);
  if (to < 0 || to > end) to = end;
  if (bytes[to - 1] === 0x0d) to--;
  const value = bytes.toString('utf8', from, to);
  // `Variable: NAME=value` names NAME, as asterisk-manager's {NAME: value} did.
  const eq = name === 'VarSet' ? value.indexOf('=') : -1;
  return eq >= 0 ? value.slice(0, eq) : value;
}

/** A server could echo what we sent; keep the secret out of error messages anyway. */
function redact(text: string, secret: string): string {
  return secret === '' ? text : text.split(secret).join('***');
}
