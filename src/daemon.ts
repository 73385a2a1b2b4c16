import type { Logger } from 'pino';
import type { AmiFrame } from './ami/frame.js';
import { startAmiIngest } from './ami/ingest.js';
import type { AmiConfig, Config } from './config/types.js';
import { tokensOf } from './deliver/auth.js';
import { createOrderedDispatcher, createSender } from './deliver/send.js';
import type { WebhookRequest } from './emit/request.js';
import { Pipeline } from './pipeline.js';

/** sysexits: the PBX could not be reached / refused our credentials. */
export const EX_UNAVAILABLE = 69;
export const EX_NOPERM = 77;

const TICK_MS = 30_000;
const DRAIN_TIMEOUT_MS = 10_000;

export interface DaemonOptions {
  /** Resolves when the daemon should stop (SIGTERM in production, a test's signal otherwise). */
  readonly stop: Promise<void>;
}

/**
 * `pbxhook run`: live PBX feed → pipeline → ordered delivery. Returns the exit code. A failed
 * first login ends the run with a clear error; a connection lost later is retried (src/ami/ingest.ts).
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

  const started = await startAmiIngest(pbx, onFrame, log);
  if (!started.ok) {
    log.error({ code: started.code, host: pbx.host, port: pbx.port, username: pbx.username }, started.message);
    return started.code === 'PBXHOOK_AMI_AUTH' ? EX_NOPERM : EX_UNAVAILABLE;
  }
  log.info({ host: pbx.host, port: pbx.port, endpoints: cfg.endpoints.filter((e) => e.enabled).map((e) => e.name) }, 'connected to Asterisk AMI');
  const ticker = setInterval(() => dispatch(pipeline.tick(Date.now())), TICK_MS);

  await opts.stop;
  clearInterval(ticker);
  log.info({ queued: dispatcher.queued, inFlight: dispatcher.inFlight, liveCalls: pipeline.tracker.liveCalls }, 'stopping');
  await started.ingest.close();
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
