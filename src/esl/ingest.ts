import type { Logger } from 'pino';
import type { EslConfig } from '../config/types.js';
import { connectEsl, type EslSession } from './client.js';
import type { EslFrame } from './frame.js';

const RECONNECT_MIN_MS = 1_000;
const RECONNECT_MAX_MS = 30_000;

export interface Ingest {
  /** Stops reading and closes the connection. */
  close(): Promise<void>;
}

export type IngestStart =
  | { readonly ok: true; readonly ingest: Ingest }
  | { readonly ok: false; readonly code: string; readonly message: string };

/**
 * The live ESL feed, as src/ami/ingest.ts: connects, hands every event frame to `onFrame`, and
 * after a lost connection reconnects with capped, jittered backoff; every new connection
 * authenticates and subscribes again (an ESL subscription lives as long as its socket). A failed
 * first auth is returned, not retried: a wrong password must stop the daemon with a clear error.
 */
export async function startEslIngest(pbx: EslConfig, onFrame: (f: EslFrame) => void, log: Logger): Promise<IngestStart> {
  let stopping = false;
  let session: EslSession | undefined;
  let wake: () => void = () => {};
  const onStatus = (s: 'connected' | 'disconnected'): void => {
    if (s === 'disconnected' && !stopping) void reconnect();
  };
  const connect = () => connectEsl(pbx, { onFrame, onStatus }, log);

  const reconnect = async (): Promise<void> => {
    log.warn({ host: pbx.host, port: pbx.port }, 'ESL connection lost; reconnecting');
    for (let delay = RECONNECT_MIN_MS; !stopping; delay = Math.min(delay * 2, RECONNECT_MAX_MS)) {
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, delay * (0.5 + Math.random() / 2)).unref();
      });
      if (stopping) return;
      const r = await connect();
      if (r.ok) {
        session = r.session;
        log.info({ host: pbx.host, port: pbx.port }, 'ESL connection restored');
        return;
      }
    }
  };

  const first = await connect();
  if (!first.ok) return { ok: false, code: first.error.code, message: first.error.message };
  session = first.session;
  return {
    ok: true,
    ingest: {
      close: async () => {
        stopping = true;
        wake();
        await session?.close().catch(() => undefined);
      },
    },
  };
}
