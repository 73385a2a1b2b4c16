/** `pbxhook run --config FILE`: the daemon, stopped by SIGTERM or Ctrl-C. */
import { optionList, parseCommandArgs, UsageError } from '../args.js';
import { loadConfig } from '../config/load.js';
import { runDaemon } from '../daemon.js';
import { createLogger, turnBatchedStderr } from '../log.js';

const RUN_OPTIONS = { config: { type: 'string', short: 'c', value: 'FILE' }, help: { type: 'boolean', short: 'h', default: false } } as const;

export const RUN_USAGE = `Usage: pbxhook run --config FILE
  The daemon: follows the PBX of FILE (Asterisk AMI or FreeSWITCH ESL) and sends each call's
  webhooks through the outbox in state_dir. SIGTERM or Ctrl-C stop it (attempts in flight may
  finish for delivery.stop_timeout); SIGHUP re-reads the endpoints.
Options: ${optionList(RUN_OPTIONS)}`;

export async function runDaemonCommand(argv: string[]): Promise<number> {
  const { values } = parseCommandArgs('run', RUN_OPTIONS, argv);
  if (values.config === undefined) throw new UsageError('which config? pbxhook run --config FILE');
  const cfg = loadConfig(values.config);
  const log = createLogger(cfg.log.level, turnBatchedStderr());
  const stop = new Promise<void>((resolve) => {
    const onSignal = (): void => {
      resolve();
      // The daemon's own stop ends within the grace (daemon.ts); this is the last resort should one of its steps hang.
      setTimeout(() => {
        log.error({ code: 'PBXHOOK_STOP_GRACE', graceSeconds: cfg.shutdownGraceMs / 1000 }, 'shutdown_grace_seconds reached before the stop finished; exiting now');
        process.exit(1);
      }, cfg.shutdownGraceMs).unref();
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
  const code = await runDaemon(cfg, log, { stop, onReload: (reload) => process.on('SIGHUP', reload) });
  // A socket a silent PBX or a hanging CRM keeps open must not keep the process (issue #14 item 5).
  process.exit(code);
}
