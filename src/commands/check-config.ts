/** `pbxhook check-config FILE`: validates a config and explains it. */
import { explainEventFilter } from '../ami/event-filter.js';
import { optionList, parseCommandArgs, UsageError } from '../args.js';
import { explainConfig } from '../config/explain.js';
import { loadConfig } from '../config/load.js';

const CHECK_OPTIONS = {
  config: { type: 'string', short: 'c', value: 'FILE' },
  deliver: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export const CHECK_USAGE = `Usage: pbxhook check-config FILE
  Validates the YAML config FILE, the webhooks ini file it names and the secrets they take from the
  environment or files, then explains what pbxhook will do. Every problem is printed at once as
  "file: key: problem", exit 78. --deliver checks FILE as pbxhook deliver reads it: pbx: may be
  left out (a delivery worker follows no PBX).
Options: ${optionList(CHECK_OPTIONS)} (instead of FILE)`;

export function runCheckConfigCommand(argv: string[]): number {
  const { values, positionals } = parseCommandArgs('check-config', CHECK_OPTIONS, argv, 1);
  const file = values.config ?? positionals[0];
  if (file === undefined) throw new UsageError('which config? pbxhook check-config FILE');
  const cfg = loadConfig(file, process.env, { deliverOnly: values.deliver });
  // The manager.conf lines that install by hand the filter pbxhook asks for at login (issue #15).
  const filter = cfg.pbx.type === 'asterisk' && cfg.deliverOnly !== true ? explainEventFilter(cfg.pbx, cfg.roles).join('\n') + '\n' : '';
  process.stdout.write(explainConfig(cfg) + filter + '\nconfig OK\n');
  return 0;
}
