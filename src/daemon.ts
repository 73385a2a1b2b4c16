import type { Logger } from 'pino';
import type { AmiFrame } from './ami/frame.js';
import { startAmiIngest } from './ami/ingest.js';
import type { Config } from './config/types.js';
import { type Outbox, openOutbox } from './deliver/outbox.js';
import type { WebhookRequest } from './emit/request.js';
import type { EslFrame } from './esl/frame.js';
import { startEslIngest } from './esl/ingest.js';
import { Pipeline } from './pipeline.js';

/** sysexits: the PBX could not be reached / refused our credentials. */
export const EX_UNAVAILABLE = 69;
export const EX_NOPERM = 77;
/** sysexits: the outbox database could not be created or opened. */
export const EX_CANTCREAT = 73;

const TICK_MS = 30_000;

export interface DaemonOptions {
  /** Resolves when the daemon should stop (SIGTERM in production, a test's signal otherwise). */
  readonly stop: Promise<void>;
}

/**
 * `pbxhook run`: live PBX feed → pipeline → durable outbox → delivery (src/deliver/outbox-*.ts).
 * Returns the exit code. A failed first login ends the run with a clear error; a connection lost
 * later is retried (src/ami/ingest.ts, src/esl/ingest.ts). Webhooks are on disk before any attempt, so a stop or a
 * crash loses none: the next start resumes them.
 */
export async function runDaemon(cfg: Config, log: Logger, opts: DaemonOptions): Promise<number> {
  const pbx = cfg.pbx;
  let outbox: Outbox;
  try {
    outbox = openOutbox(cfg, log);
    outbox.worker.start();
  } catch (err) {
    log.error({ code: 'PBXHOOK_OUTBOX_OPEN', stateDir: cfg.stateDir, err }, 'cannot open the outbox database (state_dir)');
    return EX_CANTCREAT;
  }
  const pipeline = new Pipeline(cfg);
  let frameErrors = 0;

  // One PBX event's webhooks go to disk in one transaction; a failure to write is loud, never silent.
  const dispatch = (rs: WebhookRequest[]): void => {
    try {
      outbox.worker.enqueue(rs);
    } catch (err) {
      log.error({ err, code: 'PBXHOOK_OUTBOX_WRITE', webhooks: rs.length }, 'webhooks could not be written to the outbox');
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

  const onEslFrame = (f: EslFrame): void => {
    try {
      dispatch(pipeline.eslFrame(f));
    } catch (err) {
      frameErrors++;
      log.warn({ err, contentType: f.headers['Content-Type'], frameErrors }, 'ESL event skipped');
    }
  };

  const started = pbx.type === 'asterisk' ? await startAmiIngest(pbx, onFrame, log) : await startEslIngest(pbx, onEslFrame, log);
  if (!started.ok) {
    const user = pbx.type === 'asterisk' ? { username: pbx.username } : {};
    log.error({ code: started.code, host: pbx.host, port: pbx.port, ...user }, started.message);
    await outbox.close();
    return started.code === 'PBXHOOK_AMI_AUTH' || started.code === 'PBXHOOK_ESL_AUTH' ? EX_NOPERM : EX_UNAVAILABLE;
  }
  const connected = pbx.type === 'asterisk' ? 'connected to Asterisk AMI' : 'connected to FreeSWITCH ESL';
  log.info({ host: pbx.host, port: pbx.port, endpoints: cfg.endpoints.filter((e) => e.enabled).map((e) => e.name) }, connected);
  const ticker = setInterval(() => dispatch(pipeline.tick(Date.now())), TICK_MS);

  await opts.stop;
  clearInterval(ticker);
  log.info({ liveCalls: pipeline.tracker.liveCalls }, 'stopping');
  await started.ingest.close();
  await outbox.close();
  const { stats } = outbox.worker;
  log.info({ ...stats, undelivered: stats.outboxDepth }, 'stopped'); // undelivered ones wait in the outbox for the next start
  return 0;
}
