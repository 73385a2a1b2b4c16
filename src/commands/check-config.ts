/** `pbxhook check-config FILE`: validates a config and explains it. */
import { explainEventFilter } from '../ami/event-filter.js';
import { optionList, parseCommandArgs, UsageError } from '../args.js';
import { ConfigError, type ConfigProblem } from '../config/errors.js';
import { explainConfig } from '../config/explain.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';

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
  const cfg = values.deliver ? loadConfig(file, process.env, { deliverOnly: true }) : loadForRun(file);
  // The manager.conf lines that install by hand the filter pbxhook asks for at login (issue #15).
  const filter = cfg.pbx.type === 'asterisk' && cfg.deliverOnly !== true ? explainEventFilter(cfg.pbx, cfg.roles).join('\n') + '\n' : '';
  process.stdout.write(explainConfig(cfg) + filter + '\nconfig OK\n');
  return 0;
}

/**
 * The config as pbxhook run reads it. A file without pbx: is most likely a delivery worker's
 * (issue #17): "pbx: missing" alone left its admin guessing, so the problem says about --deliver,
 * and whether the file passes that way. Still exit 78: as pbxhook run would read it, it is wrong.
 */
function loadForRun(file: string): Config {
  try {
    return loadConfig(file, process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const noPbx = (p: ConfigProblem) => p.file === file && p.key === 'pbx' && p.message.startsWith('missing');
    if (!err.problems.some(noPbx)) throw err;
    const hint = passesForDeliver(file)
      ? 'this config has no pbx: section, as pbxhook deliver expects (pbxhook run needs one); check it with --deliver'
      : 'this config has no pbx: section (pbxhook run needs one); for pbxhook deliver, check it with --deliver';
    throw new ConfigError(err.problems.map((p) => (noPbx(p) ? { ...p, message: hint } : p)));
  }
}

function passesForDeliver(file: string): boolean {
  try {
    loadConfig(file, process.env, { deliverOnly: true });
    return true;
  } catch {
    return false;
  }
}
