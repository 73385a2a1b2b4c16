import type { Logger } from 'pino';
import { connectAmi, type AmiSession } from './ami/client.js';
import type { AmiFrame } from './ami/frame.js';
import type { AmiConfig, Config } from './config/types.js';
import { tokensOf } from './deliver/auth.js';
import { createOrderedDispatcher, createSender } from './deliver/send.js';
import type { WebhookRequest } from './emit/request.js';
import { Pipeline } from './pipeline.js';

/** sysexits: the PBX could not be reached / refused our credentials. */
export const EX_UNAVAILABLE = 69;
export const EX_NOPERM = 77;

const TICK_MS = 30_000;
const RECONNECT_MIN_MS = 1_000;
const RECONNECT_MAX_MS = 30_000;
const DRAIN_TIMEOUT_MS = 10_000;

export interface DaemonOptions {
  /** Resolves when the daemon should stop (SIGTERM in production, a test's signal otherwise). */
  readonly stop: Promise<void>;
}

/**
 * `pbxhook run`: live AMI → pipeline → ordered delivery. Returns the exit code. A failed first
 * login ends the run with a clear error; a connection lost later is retried with capped backoff.
 */
export async function runDaemon(cfg: Config, log: Logger, opts: DaemonOptions): Promise<number> {
  if (cfg.pbx.type !== 'asterisk') {
    log.error({ code: 'PBXHOOK_PBX_UNSUPPORTED', type: cfg.pbx.type }, 'FreeSWITCH ESL is not supported yet');
    return EX_UNAVAILABLE;
  }
  const pbx: AmiConfig = cfg.pbx;
  const abort = new AbortController();
  const sender = createSender({ retry: cfg.retry, log, tokens: tokensOf(cfg), signal: abort.signal });
  const dispatcher = createOrderedDispatcher(sender, { concurrency: 16 });
  const pipeline = new Pipeline(cfg);
  let frameErrors = 0;

  const dispatch = (rs: WebhookRequest[]): void => {
    for (const r of rs) {
      void dispatcher.dispatch(r).then((res) => {
        if (!res.ok) log.error({ endpoint: res.endpoint, code: res.error.code, attempts: res.attempts }, 'webhook not delivered');
      });
    }
  };
  const onFrame = (f: AmiFrame): void => {
    // Bad PBX input is logged and skipped: one odd event must never take the daemon down.
    try {
      dispatch(pipeline.amiFrame(f));
    } catch (err) {
      frameErrors++;
      log.warn({ err, event: f.fields['event'], frameErrors }, 'AMI event skipped');
    }
  };

  let stopping = false;
  let session: AmiSession | undefined;
  let lost: () => void = () => {};
  const connect = async () =>
    connectAmi(pbx, {
      onFrame,
      onStatus: (s) => {
        if (s === 'disconnected' && !stopping) lost();
      },
    }, log);

  const first = await connect();
  if (!first.ok) {
    log.error({ code: first.error.code, host: pbx.host, port: pbx.port, username: pbx.username }, first.error.message);
    return first.error.code === 'PBXHOOK_AMI_AUTH' ? EX_NOPERM : EX_UNAVAILABLE;
  }
  session = first.session;
  log.info({ host: pbx.host, port: pbx.port, endpoints: cfg.endpoints.filter((e) => e.enabled).map((e) => e.name) }, 'connected to Asterisk AMI');

  const ticker = setInterval(() => dispatch(pipeline.tick(Date.now())), TICK_MS);
  const reconnectLoop = async (): Promise<void> => {
    log.warn({ host: pbx.host, port: pbx.port }, 'AMI connection lost; reconnecting');
    for (let delay = RECONNECT_MIN_MS; !stopping; delay = Math.min(delay * 2, RECONNECT_MAX_MS)) {
      await Promise.race([sleep(delay * (0.5 + Math.random() / 2)), opts.stop]);
      if (stopping) return;
      const r = await connect();
      if (r.ok) {
        session = r.session;
        log.info({ host: pbx.host, port: pbx.port }, 'AMI connection restored');
        return;
      }
    }
  };
  lost = () => void reconnectLoop();

  await opts.stop;
  stopping = true;
  clearInterval(ticker);
  log.info({ queued: dispatcher.queued, inFlight: dispatcher.inFlight, liveCalls: pipeline.tracker.liveCalls }, 'stopping');
  await session?.close().catch(() => undefined);
  const drained = await Promise.race([dispatcher.drain().then(() => true), sleep(DRAIN_TIMEOUT_MS).then(() => false)]);
  if (!drained) {
    abort.abort();
    log.warn({ queued: dispatcher.queued, inFlight: dispatcher.inFlight }, 'stopped with webhooks undelivered (no durable outbox yet)');
  }
  sender.close();
  log.info({ delivered: sender.stats.delivered, failed: sender.stats.failed }, 'stopped');
  return 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
