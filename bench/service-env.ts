import { readFileSync } from 'node:fs';

/** How the shipped unit starts the daemon: node's flags and the environment. */
export interface ServiceLaunch {
  /** Node flags of `ExecStart=/usr/bin/node … dist/cli.js run` (--max-semi-space-size…). */
  readonly nodeArgs: readonly string[];
  /** `Environment=` lines (MALLOC_ARENA_MAX…). */
  readonly env: Readonly<Record<string, string>>;
}

/**
 * Read from systemd/pbxhook.service, so that the benchmarks that start `pbxhook run` measure it as
 * the service runs it (issue #14, memory). The Debian package's unit is this file with other paths;
 * its /usr/bin/pbxhook starts `pbxhook run` the same way.
 */
export function serviceLaunch(unitFile = 'systemd/pbxhook.service'): ServiceLaunch {
  const unit = readFileSync(unitFile, 'utf8');
  const exec = /^ExecStart=\S+ (.*?)\s*\S+\/dist\/cli\.js run /m.exec(unit);
  const env: Record<string, string> = {};
  for (const m of unit.matchAll(/^Environment=(?:"([^"]*)"|(\S+))$/gm)) {
    const kv = m[1] ?? m[2]!;
    const eq = kv.indexOf('=');
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return { nodeArgs: exec?.[1]?.split(/\s+/).filter(Boolean) ?? [], env };
}

/** `--flag … NAME=value`, for the report. */
export const describeLaunch = (l: ServiceLaunch): string =>
  [...l.nodeArgs, ...Object.entries(l.env).map(([k, v]) => `${k}=${v}`)].join(' ') || '(plain node)';
