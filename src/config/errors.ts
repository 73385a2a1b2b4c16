/**
 * Configuration problems. Start-up collects every problem in the YAML file and the
 * webhooks ini file and throws them together as one ConfigError, so an operator fixes
 * everything in one pass instead of one restart per typo.
 */

/** sysexits.h EX_CONFIG: "Something was found in an unconfigured or misconfigured state." */
export const EX_CONFIG = 78;

/** One thing wrong with one key of one file. */
export interface ConfigProblem {
  /** The file as the operator named it (relative paths stay relative). */
  readonly file: string;
  /** `pbx.port`, `roles.ivrs.2`, `[crm] method`, or '' for the file as a whole. */
  readonly key: string;
  /** Plain words: what was expected and what was found. */
  readonly message: string;
}

/** `config/pbxhook.yaml: pbx.port: expected a whole number from 1 to 65535, got "abc"` */
export function formatProblem(p: ConfigProblem): string {
  return p.key === '' ? `${p.file}: ${p.message}` : `${p.file}: ${p.key}: ${p.message}`;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'PBXHOOK_CONFIG_INVALID';
  readonly exitCode = EX_CONFIG;
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const lines = problems.map(formatProblem);
    super(lines.length === 1 ? lines[0] : `${lines.length} configuration problems:\n${lines.join('\n')}`);
    this.problems = problems;
  }
}

/** Ini keys are reported as `[section] key`, YAML keys as a dotted path. */
export function iniKey(section: string, key?: string): string {
  return key === undefined ? `[${section}]` : `[${section}] ${key}`;
}
