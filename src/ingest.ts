import type { Logger } from 'pino';

const RECONNECT_MIN_MS = 1_000;
const RECONNECT_MAX_MS = 30_000;
/** How long a session may take to close on a stop before we stop waiting for the PBX (issue #14 item 5). */
const CLOSE_WAIT_MS = 2_000;

export interface Session {
  close(): Promise<void>;
}

export interface ConnectError {
  readonly code: string;
  readonly message: string;
  /** False when trying again cannot help: the PBX refused our credentials. */
  readonly retryable: boolean;
}

export type ConnectResult<S extends Session> =
  | { readonly ok: true; readonly session: S }
  | { readonly ok: false; readonly error: ConnectError };

/**
 * `connecting`: never logged in yet (the PBX is down, or not answering at start-up);
 * `connected`: logged in; `disconnected`: a session was lost and is being re-established.
 */
export type IngestState = 'connecting' | 'connected' | 'disconnected';

export interface Ingest<S extends Session> {
  readonly state: IngestState;
  /** True while logged in to the PBX (metrics, /healthz). */
  readonly connected: boolean;
  /** The current session, for actions such as a resync. */
  readonly session: S | undefined;
  /**
   * Settles only if the PBX refuses the login before any session was established: wrong
   * credentials must stop the daemon with a clear error rather than be retried forever.
   */
  readonly refused: Promise<ConnectError>;
  /** Resolves when the first session is up. */
  readonly ready: Promise<void>;
  /** Stops connecting and reading, and closes the connection (waiting for the PBX at most a moment). */
  close(): Promise<void>;
}

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
 * A live PBX feed that stays up. Connecting starts at once and runs in the background: an
 * unreachable PBX, at start-up or later, is retried with capped, jittered exponential backoff,
 * logging once per state change (lost, restored) and once per new reason it keeps failing, never
 * per attempt. Meanwhile the rest of the daemon (the outbox above all) carries on: a PBX that is
 * down at start-up must not keep the webhooks of the last run from their CRM (issue #14 item 1).
 * The one failure not retried is a login refused before any session: see `refused`.
 */
export function startIngest<S extends Session>(opts: IngestOptions<S>): Ingest<S> {
  const { label, where, log } = opts;
  let stopping = false;
  let state: IngestState = 'connecting';
  let everConnected = false;
  let session: S | undefined;
  let wake: () => void = () => {};
  let refuse: (e: ConnectError) => void = () => {};
  const refused = new Promise<ConnectError>((r) => (refuse = r));
  let markReady: () => void = () => {};
  const ready = new Promise<void>((r) => (markReady = r));

  const lost = (): void => {
    if (stopping) return;
    state = 'disconnected';
    log.warn(where, `${label} connection lost; reconnecting`);
    void run(true);
  };

  /** Connects until a session is up, the login is refused before any session, or we stop. */
  const run = async (waitFirst: boolean): Promise<void> => {
    let lastFailure = '';
    let backoff = RECONNECT_MIN_MS;
    for (let attempt = 0; !stopping; attempt++) {
      if (attempt > 0 || waitFirst) {
        const delay = backoff;
        backoff = Math.min(backoff * 2, RECONNECT_MAX_MS);
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, delay * (0.5 + Math.random() / 2)).unref();
        });
      }
      if (stopping) return;
      const r = await opts.connect(lost);
      if (stopping) {
        // Stopped while this attempt was under way: its session is not wanted.
        if (r.ok) void r.session.close().catch(() => undefined);
        return;
      }
      if (r.ok) {
        session = r.session;
        state = 'connected';
        if (everConnected) {
          log.info(where, `${label} connection restored`);
          opts.onRestored?.(r.session);
        }
        everConnected = true;
        markReady();
        return;
      }
      if (!r.error.retryable && !everConnected) {
        stopping = true;
        refuse(r.error);
        return;
      }
      // Why it fails is logged when it changes (refused → auth failed), not at every attempt.
      if (r.error.message !== lastFailure) {
        lastFailure = r.error.message;
        const what = everConnected ? `${label} reconnect failed; still trying` : `${label} not reachable yet; still trying in the background`;
        log.warn({ ...where, code: r.error.code, err: r.error.message }, what);
      }
    }
  };
  void run(false);

  return {
    get state() {
      return state;
    },
    get connected() {
      return state === 'connected';
    },
    get session() {
      return session;
    },
    refused,
    ready,
    close: async () => {
      stopping = true;
      state = 'disconnected';
      wake();
      const closing = session?.close().catch(() => undefined);
      if (!closing) return;
      // A PBX that keeps its side open without a word must not hold the stop (issue #14 item 5):
      // the session stops handing on frames at once; its socket goes with the process.
      let timer: NodeJS.Timeout | undefined;
      const waited = new Promise<void>((r) => (timer = setTimeout(r, CLOSE_WAIT_MS).unref()));
      await Promise.race([closing, waited]);
      clearTimeout(timer);
    },
  };
}
