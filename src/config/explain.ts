/**
 * `pbxhook check-config`: what the daemon understood from its config, in words an
 * operator can check against the PBX. Secrets never appear: the PBX secret is `***`,
 * tokens are only "set"/"not set", URL passwords and query values are masked.
 */
import type { Config, DialplanTarget, EndpointConfig } from './types.js';

export const MASK = '***';

/** `https://user:pw@crm/hook?key=abc` → `https://user:***@crm/hook?key=***`; non-URLs pass through. */
export function redactUrl(url: string): string {
  if (!URL.canParse(url)) return url;
  const u = new URL(url);
  if (u.password !== '') u.password = MASK;
  for (const key of [...new Set(u.searchParams.keys())]) u.searchParams.set(key, MASK);
  return u.toString();
}

/** A copy of the config safe to print or log as JSON. */
export function redactConfig(cfg: Config): Config {
  const pbx = cfg.pbx.type === 'asterisk' ? { ...cfg.pbx, secret: MASK } : { ...cfg.pbx, password: MASK };
  const endpoints = cfg.endpoints.map((e) => ({
    ...e,
    url: redactUrl(e.url),
    ...(e.token !== undefined ? { token: MASK } : {}),
  }));
  return { ...cfg, pbx, endpoints };
}

export function explainConfig(cfg: Config): string {
  const { pbx, roles, calls, retry } = cfg;
  const user = pbx.type === 'asterisk' ? `user ${pbx.username}, secret ${MASK}` : `password ${MASK}`;
  const enabled = cfg.endpoints.filter((e) => e.enabled).length;
  const lines = [
    `config: ${cfg.file}`,
    `pbx: ${pbx.type} at ${pbx.host}:${pbx.port}, ${user}`,
    'roles:',
    `  ivrs: ${targets(roles.ivrs)}`,
    `  queues: ${targets(roles.queues)}`,
    `  ring groups: ${targets(roles.ringGroups)}`,
    `  extensions match: /${roles.extensionPattern}/`,
    `  trunks match: ${roles.trunkPattern === '' ? '(no pattern)' : `/${roles.trunkPattern}/`}`,
    `  names: ${names(roles.names)}`,
    `calls: closed after ${calls.idleTimeoutSeconds} s without events; local time zone ${calls.timezone}`,
    `delivery: ${retry.retries} retries, backoff ${retry.minTimeoutMs}-${retry.maxTimeoutMs} ms, ` +
      `request timeout ${retry.timeoutMs} ms`,
    `log level: ${cfg.log.level}`,
    `endpoints: ${cfg.endpoints.length} (${enabled} enabled)`,
    ...cfg.endpoints.flatMap(endpoint),
  ];
  if (enabled === 0) lines.push('warning: no enabled endpoint; no webhook will be sent');
  return `${lines.join('\n')}\n`;
}

function endpoint(e: EndpointConfig): string[] {
  return [
    `  [${e.name}]${e.enabled ? '' : ' (disabled)'}`,
    `    ${e.schema}${e.schema === '3cx' ? `/${e.variant}` : ''}: ${e.method} ${redactUrl(e.url)}`,
    `    events: ${e.events.length === 0 ? 'all' : e.events.join(', ')}`,
    `    token: ${e.token !== undefined ? 'set' : 'not set'}`,
    `    recordings: ${e.recordingUrl}`,
  ];
}

function targets(list: readonly DialplanTarget[]): string {
  return list.length === 0 ? '(none listed; detected from the dialplan)' : list.join(', ');
}

function names(map: Readonly<Record<string, string>>): string {
  const entries = Object.entries(map);
  if (entries.length === 0) return '(none)';
  return entries.map(([number, name]) => `${number}=${JSON.stringify(name)}`).join(', ');
}
