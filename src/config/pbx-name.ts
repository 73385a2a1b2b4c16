/**
 * The PBX's name (issue #17): rows of a shared outbox, the standby lease, the webhook-pbx header and
 * the metrics' pbx label must all say the same one, so this is the one place that decides it.
 * loadConfig fills `pbx.name` through it; configs built in code (tests, benchmarks) reach it too.
 */
import { hostname } from 'node:os';
import { PBX_NAME } from './schema.js';

/** `pbx.name`, else this host's name when it makes a valid one, else `pbx`. */
export function pbxNameOf(pbx: { readonly name?: string | undefined }): string {
  if (pbx.name !== undefined) return pbx.name;
  const host = hostname().split('.')[0] ?? '';
  return PBX_NAME.test(host) ? host : 'pbx';
}
