/**
 * `pbxhook deliver --config FILE` (issue #17 item 4): a delivery worker without a PBX. It sends what
 * the shared PostgreSQL outbox holds, beside any number of `pbxhook run` and other `deliver`
 * processes: each claims lane heads `FOR UPDATE SKIP LOCKED` (src/outbox-pg/pump.ts), so no two
 * send one lane at once and each lane stays in order; a dead worker's claims expire and come back.
 * It never follows a PBX and never writes live calls.
 */
import { optionList, parseCommandArgs, UsageError } from '../args.js';
import { ConfigError } from '../config/errors.js';
import { loadConfig } from '../config/load.js';
import { createLogger, turnBatchedStderr } from '../log.js';

const DELIVER_OPTIONS = { config: { type: 'string', short: 'c', value: 'FILE' }, help: { type: 'boolean', short: 'h', default: false } } as const;

export const DELIVER_USAGE = `Usage: pbxhook deliver --config FILE
  A delivery worker: sends the webhooks of the shared PostgreSQL outbox (outbox.store: postgres)
  to the endpoints of FILE, without following any PBX (FILE may leave pbx: out; check it with
  pbxhook check-config --deliver FILE). Run as many as you like, on any host:
  they share the lanes, each lane still in order. SIGTERM or Ctrl-C stop it (attempts in flight
  may finish for delivery.stop_timeout; the others wait in the outbox).
Options: ${optionList(DELIVER_OPTIONS)}`;

/** sysexits EX_CANTCREAT: the outbox could not be opened. */
const EX_CANTCREAT = 73;

export async function runDeliverCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('deliver', DELIVER_OPTIONS, argv);
  if (values.config === undefined) throw new UsageError('which config? pbxhook deliver --config FILE');
  const cfg = loadConfig(values.config, process.env, { deliverOnly: true });
  // A SQLite outbox belongs to the one process holding its state_dir: a worker beside it could never send.
  if (cfg.outbox?.store !== 'postgres') {
    throw new ConfigError([{ file: values.config, key: 'outbox.store', message: 'pbxhook deliver needs outbox.store: postgres (a SQLite outbox is sent by its pbxhook run)' }]);
  }
  const log = createLogger(cfg.log.level, turnBatchedStderr()).child({ role: 'deliver' });
  const { openOutbox } = await import('../deliver/outbox.js');
  let outbox: Awaited<ReturnType<typeof openOutbox>>;
  try {
    outbox = await openOutbox(cfg, log);
    await outbox.worker.start();
  } catch (err) {
    log.error({ code: 'PBXHOOK_OUTBOX_OPEN', err: err instanceof Error ? err.message : String(err) }, 'cannot open the outbox (outbox.url)');
    return EX_CANTCREAT;
  }
  log.info({ endpoints: cfg.endpoints.filter((e) => e.enabled).map((e) => e.name) }, 'delivering from the shared outbox');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  // The last resort, should a step of the stop hang (as pbxhook run's).
  setTimeout(() => process.exit(1), cfg.shutdownGraceMs).unref();
  await outbox.close(cfg.delivery.stopTimeoutMs);
  log.info({ ...outbox.worker.stats }, 'stopped');
  process.exit(0);
}
