import type { Logger } from 'pino';

const RECONNECT_MIN_MS = 1_000;
const RECONNECT_MAX_MS = 30_000;

export interface Session {
  close(): Promise<void>;
}

export type ConnectResult<S extends Session> =
  | { readonly ok: true; readonly session: S }
  | { readonly ok: false; readonly error: { readonly code: string; readonly message: string } };

export interface Ingest<S extends Session> {
  /** True while logged in to the PBX (metrics, /healthz). */
  readonly connected: boolean;
  /** The current session, for actions such as a resync. */
  readonly session: S | undefined;
  /** Stops reading and closes the connection. */
  close(): Promise<void>;
}

export type IngestStart<S extends Session> =
  | { readonly ok: true; readonly ingest: Ingest<S> }
  | { readonly ok: false; readonly code: string; readonly message: string };

export interface IngestOptions<S extends Session> {
  /** "AMI" or "ESL", for log lines. */
  readonly label: string;
  readonly where: { readonly host: string; readonly port: number };
  /** One connection and login; `onLost` is called if it later drops. */
  connect(onLost: () => void): Promise<ConnectResult<S>>;
  /** After a reconnect: what happened while we were away must be reconciled (resync). */
  onRestored?(session: S): void;
  readonly log: Logger;
}

/**
 * A live PBX feed that stays up: after a lost connection it reconnects with capped, jittered
 * exponential backoff, logging once per state change (lost, restored), not per attempt. A failed
 * first login is returned, not retried: wrong credentials must stop the daemon with a clear error.
 */
export async function startIngest<S extends Session>(opts: IngestOptions<S>): Promise<IngestStart<S>> {
  const { label, where, log } = opts;
  let stopping = false;
  let connected = false;
  let session: S | undefined;
  let wake: () => void = () => {};

  const lost = (): void => {
    connected = false;
    if (!stopping) void reconnect();
  };
  const reconnect = async (): Promise<void> => {
    log.warn(where, `${label} connection lost; reconnecting`);
    let lastFailure = '';
    for (let delay = RECONNECT_MIN_MS; !stopping; delay = Math.min(delay * 2, RECONNECT_MAX_MS)) {
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, delay * (0.5 + Math.random() / 2)).unref();
      });
      if (stopping) return;
      const r = await opts.connect(lost);
      if (r.ok) {
        session = r.session;
        connected = true;
        log.info(where, `${label} connection restored`);
        opts.onRestored?.(r.session);
        return;
      }
      // Why it fails is logged when it changes (refused → auth failed), not at every attempt.
      if (r.error.message !== lastFailure) {
        lastFailure = r.error.message;
        log.warn({ ...where, code: r.error.code, err: r.error.message }, `${label} reconnect failed; still trying`);
      }
    }
  };

  const first = await opts.connect(lost);
  if (!first.ok) return { ok: false, code: first.error.code, message: first.error.message };
  session = first.session;
  connected = true;
  return {
    ok: true,
    ingest: {
      get connected() {
        return connected;
      },
      get session() {
        return session;
      },
      close: async () => {
        stopping = true;
        connected = false;
        wake();
        await session?.close().catch(() => undefined);
      },
    },
  };
}
