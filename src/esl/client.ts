/**
 * The live FreeSWITCH event socket (inbound mode): a TCP socket read through the project's own
 * framer (framer.ts, the one replay uses), so live and replay cut the same bytes into the same
 * frames (test/06). It answers `auth/request` with the password, subscribes with `event plain …`
 * and hands every event frame to `onFrame`; the event inside is decoded by frame.ts for both
 * paths. It does not reconnect: a failed start is returned as a typed error and a later
 * disconnect is reported through `onStatus`; the reconnect policy lives in src/ingest.ts.
 *
 * `onFrame` runs synchronously in the socket's data handler and the socket is never paused:
 * FreeSWITCH drops events for a client whose queue fills up, so reading must never wait.
 *
 * Until issue #14 this was the `modesl` package. Measured through the fake server
 * (scripts/hostile-pbx.ts, README "Hostile PBX input"): a frame without a body crashed it, 256k
 * tiny frames overflowed its recursive parser's stack, and `Content-Length: 2000000000` made it
 * buffer every later event while the connection looked healthy. Its protocol part (auth, commands
 * answered in order, `exit`) is a few lines here.
 */
import net from 'node:net';
import { EslAuthError, EslConnectError, type EslClientError } from './errors.js';
import { subscribeCommand } from './events.js';
import type { EslFrame } from './frame.js';
import { DEFAULT_MAX_BODY_BYTES, EslFramer } from './framer.js';
import { eslSkipLog } from './skips.js';

export interface EslConnectConfig {
  readonly host: string;
  readonly port: number;
  readonly password: string;
  /** Connect + auth + subscription must finish within this time; default 10 s. */
  readonly timeoutMs?: number;
  /** Largest body kept (pbx.max_frame_bytes); header blocks keep the framer's own cap, as in replay. */
  readonly maxFrameBytes?: number;
}

export type EslStatus = 'connected' | 'disconnected';

/**
 * Why PBX input was not turned into a frame (pbxhook_frames_skipped_total{reason}): `oversized`
 * over max_frame_bytes (a body) or the framer's header cap (a header block); `desync` after either,
 * the connection is dropped and made again; `unexpected` a frame of no Content-Type FreeSWITCH sends.
 */
export type EslSkipReason = 'oversized' | 'desync' | 'unexpected';

export interface EslHandlers {
  /** Called synchronously from the socket's data handler; a throw is logged, never fatal. */
  onFrame(frame: EslFrame): void;
  onStatus?(status: EslStatus): void;
  /** A frame was dropped unread (already logged here); for the daemon's counters. */
  onSkip?(reason: EslSkipReason): void;
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

const DEFAULT_TIMEOUT_MS = 10_000;
const CLOSE_GRACE_MS = 2_000;
/**
 * The answer to our own `api` command may be larger than any event: `show channels as json`
 * takes ~1 KB per channel. Still bounded.
 */
const API_ANSWER_MAX_BYTES = 64 * 1024 * 1024;
/**
 * modesl subscribed these (as json) for its bgapi before ours; kept so that FreeSWITCH sends the
 * same event stream as before (our later `event plain` makes every event plain).
 */
const LEGACY_SUBSCRIPTION = 'event json BACKGROUND_JOB CHANNEL_EXECUTE_COMPLETE';

/**
 * The framer the live client reads with: bodies capped at `maxFrameBytes` (an `api` answer at
 * 64 MiB), header blocks at the framer's own cap; an oversized body or header block stops it, and
 * the client connects afresh: neither an announced length nor a header block that never ends
 * tells where the next frame starts.
 */
export function liveEslFramer(maxFrameBytes: number = DEFAULT_MAX_BODY_BYTES): EslFramer {
  return new EslFramer({
    maxBodyBytes: maxFrameBytes,
    bodyLimit: (h) => (h['Content-Type'] === 'api/response' ? Math.max(maxFrameBytes, API_ANSWER_MAX_BYTES) : maxFrameBytes),
    stopAtOversizedBody: true,
    stopAtOversizedHeader: true,
  });
}

/** Frames that carry nothing for us and are no anomaly: FreeSWITCH's goodbye, its log lines. */
const QUIET_TYPES = new Set(['text/disconnect-notice', 'text/rude-rejection', 'log/data']);

/** A command's answer: `command/reply` or `api/response`, in the order the commands were sent. */
type Pending = (reply: EslFrame | undefined) => void;

export function connectEsl(cfg: EslConnectConfig, handlers: EslHandlers, log: EslLog): Promise<EslConnectResult> {
  return new Promise((resolve) => {
    const where = { host: cfg.host, port: cfg.port }; // never the password
    const maxFrameBytes = cfg.maxFrameBytes ?? DEFAULT_MAX_BODY_BYTES;
    const framer = liveEslFramer(maxFrameBytes);
    const sock = net.createConnection({ host: cfg.host, port: cfg.port });
    sock.setKeepAlive(true, 30_000);
    let phase: 'connecting' | 'auth' | 'subscribing' | 'ready' | 'closed' = 'connecting';
    let socketClosed = false;
    const closeWaiters: Array<() => void> = [];
    const pending: Pending[] = [];
    const skips = eslSkipLog(log, where);

    const command = (text: string, answer: Pending): void => {
      pending.push(answer);
      sock.write(`${text}\n\n`);
    };
    const fail = (error: EslClientError): void => {
      if (phase === 'ready' || phase === 'closed') return;
      phase = 'closed';
      clearTimeout(timer);
      sock.destroy();
      resolve({ ok: false, error });
    };
    const timeoutMs = cfg.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const timer = setTimeout(
      () => fail(new EslConnectError(cfg.host, cfg.port, `no auth/subscription answer within ${timeoutMs} ms`)),
      timeoutMs,
    );

    const session: EslSession = {
      api: (cmd, apiTimeoutMs = DEFAULT_TIMEOUT_MS) =>
        new Promise<string>((done, failed) => {
          if (phase !== 'ready') return failed(new Error('ESL session is not ready'));
          // A connection lost mid-command never answers: the timeout settles the promise instead.
          const t = setTimeout(() => failed(new Error(`no answer to "api ${cmd}" within ${apiTimeoutMs} ms`)), apiTimeoutMs);
          t.unref();
          command(`api ${cmd}`, (reply) => {
            clearTimeout(t);
            if (reply) done(reply.body);
            else failed(new Error(`the connection closed before "api ${cmd}" was answered`));
          });
        }),
      close: () =>
        new Promise<void>((done) => {
          if (socketClosed) return done();
          closeWaiters.push(done);
          // Our own close is not a lost connection: no warning, no 'disconnected'.
          if (phase === 'ready') phase = 'closed';
          if (sock.writable) sock.write('exit\n\n');
          setTimeout(() => sock.destroy(), CLOSE_GRACE_MS).unref();
        }),
    };

    const subscribe = (): void => {
      phase = 'subscribing';
      command(LEGACY_SUBSCRIPTION, () => undefined);
      command(subscribeCommand(), (reply) => {
        const text = reply?.headers['Reply-Text'] ?? '';
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
    };

    const onFrameIn = (frame: EslFrame): void => {
      const type = frame.headers['Content-Type'];
      if (type === 'text/event-plain' || type === 'text/event-json') {
        if (phase === 'ready' || phase === 'subscribing') deliver(frame);
      } else if (type === 'auth/request') {
        if (phase !== 'connecting') return;
        phase = 'auth';
        command(`auth ${cfg.password}`, (reply) => {
          const text = reply?.headers['Reply-Text'] ?? '';
          if (text.startsWith('+OK')) subscribe();
          else fail(new EslAuthError(cfg.host, cfg.port, redact(text, cfg.password)));
        });
      } else if (type === 'command/reply' || type === 'api/response') {
        pending.shift()?.(frame);
      } else if (!QUIET_TYPES.has(type ?? '')) {
        handlers.onSkip?.('unexpected');
        skips.skipped('unexpected', { contentType: type === undefined ? null : type.slice(0, 64) });
      }
    };
    const deliver = (frame: EslFrame): void => {
      try {
        handlers.onFrame(frame);
      } catch (err) {
        log.warn({ ...where, err: err instanceof Error ? err.message : String(err) }, 'ESL frame handler failed; frame skipped');
      }
    };

    let oversized = 0;
    let desynced = false;
    sock.on('data', (chunk: Buffer) => {
      for (const frame of framer.push(chunk)) onFrameIn(frame);
      const stats = framer.stats;
      if (stats.oversizedFrames === oversized) return;
      for (; oversized < stats.oversizedFrames; oversized++) handlers.onSkip?.('oversized');
      log.warn(
        { ...where, code: 'PBXHOOK_ESL_FRAME_SKIPPED', reason: 'oversized', maxFrameBytes, maxHeaderBytes: framer.maxHeaderBytes, oversizedFrames: oversized },
        'ESL frame over max_frame_bytes (body) or maxHeaderBytes (header block) skipped',
      );
      if (framer.stopped && !desynced) {
        desynced = true;
        // The announced length is the only way to the next frame: if it is wrong, skipping by it
        // swallows every later event while the socket looks healthy (issue #14); a header block
        // that never ends has no blank line of its own to skip to, and the next one found ends the
        // next real frame's header (skipping to it would drop that frame unseen). A fresh connection
        // frames from a known start, and the reconnect resync catches up on what was missed.
        handlers.onSkip?.('desync');
        const what = stats.oversizedBodies > 0 ? 'ESL body announced over max_frame_bytes' : `ESL header block over ${framer.maxHeaderBytes} bytes`;
        log.warn({ ...where, code: 'PBXHOOK_ESL_DESYNC', maxFrameBytes, maxHeaderBytes: framer.maxHeaderBytes }, `${what}: reconnecting`);
        sock.destroy();
      }
    });

    sock.on('error', (err: Error & { code?: string }) => {
      if (phase === 'connecting' || phase === 'auth' || phase === 'subscribing') {
        fail(new EslConnectError(cfg.host, cfg.port, err.code ?? err.message, { cause: err }));
      } else if (phase === 'ready') {
        log.warn({ ...where, err: err.message }, 'ESL socket error');
      }
    });

    sock.on('close', () => {
      socketClosed = true;
      skips.flush();
      for (const answer of pending.splice(0)) answer(undefined);
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
