/**
 * `pbxhook check-config`: what the daemon understood from its config, in words an
 * operator can check against the PBX. Secrets never appear: the PBX secret is `***`,
 * tokens are only "set"/"not set", URL passwords and query values are masked.
 */
import { databasePlaceOf } from './database-place.js';
import { EXTENSION_GROUP, extensionGroupBody, hasCaptureGroups } from './pattern.js';
import { isLoopbackListen } from './schema.js';
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
    ...(e.signingSecrets !== undefined ? { signingSecrets: e.signingSecrets.map(() => MASK) } : {}),
  }));
  const outbox = cfg.outbox?.store === 'postgres' ? { outbox: { store: 'postgres' as const, url: MASK } } : {};
  return { ...cfg, pbx, endpoints, ...outbox, ...(cfg.opsToken !== undefined ? { opsToken: MASK } : {}) };
}

/** The outbox's place: the SQLite file, or the PostgreSQL host and database (the URL's password never). */
function outboxWhere(cfg: Config): string {
  if (cfg.outbox?.store !== 'postgres') return `${cfg.stateDir}/outbox.sqlite`;
  return `PostgreSQL ${databasePlaceOf(cfg.outbox.url) ?? '(outbox.url)'}, shared (url ${MASK})`;
}

/** What pbxhook recognises with no `roles:` at all; `pbxhook replay` lists which rule named each route it saw. */
function detectionRules(type: Config['pbx']['type']): string[] {
  if (type === 'freeswitch') {
    return [
      '  detected without config:',
      '    queues: mod_callcenter (callcenter::info)',
      '    ring groups: a bridge to several phones at once',
      '    IVRs: play_and_get_digits, read, ivr (named by the number dialled, or the context when it is s)',
      '    voicemail: mod_voicemail; loopback channels are followed to the phone they ring',
    ];
  }
  return [
    '  detected without config:',
    '    queues: app_queue (QueueCallerJoin); FreePBX context ext-queues',
    '    ring groups: Dial() to several phones at once; FreePBX contexts ext-group; ext-findmefollow, followme-check (follow-me)',
    '    IVRs: Background, WaitExten, Read (named by the extension, or the context when it is s); FreePBX contexts ivr-N',
    '    voicemail: VoiceMail(); Local channels are wires: the phone at their end is the leg',
  ];
}

export function explainConfig(cfg: Config): string {
  const { pbx, roles, calls, delivery: d } = cfg;
  const user = pbx.type === 'asterisk' ? `user ${pbx.username}, secret ${MASK}` : `password ${MASK}`;
  const enabled = cfg.endpoints.filter((e) => e.enabled).length;
  const lines = [
    `config: ${cfg.file}`,
    cfg.deliverOnly === true ? 'pbx: none (a file for pbxhook deliver, which follows no PBX; pbxhook run needs pbx:)' : `pbx: ${pbx.type} at ${pbx.host}:${pbx.port}, ${user}`,
    ...(pbx.name !== undefined && cfg.deliverOnly !== true ? [`  name: ${pbx.name} (the webhook-pbx header, the pbx label of metrics, the rows of a shared outbox)`] : []),
    'roles:',
    `  ivrs: ${targets(roles.ivrs)}`,
    `  queues: ${targets(roles.queues)}`,
    `  ring groups: ${targets(roles.ringGroups)}`,
    `  extensions match: /${roles.extensionPattern}/${extensionGroup(roles.extensionPattern)}`,
    `  trunks match: ${roles.trunkPattern === '' ? '(no pattern)' : `/${roles.trunkPattern}/`}`,
    `  names: ${names(roles.names)}`,
    ...detectionRules(pbx.type),
    `calls: closed after ${calls.idleTimeoutSeconds} s without events; local time zone ${calls.timezone}`,
    `delivery: outbox ${outboxWhere(cfg)}; ${d.concurrency} at once per endpoint; ` +
      `timeouts: connect ${span(d.connectTimeoutMs)}, whole request ${span(d.timeoutMs)}`,
    `  retries after ${d.schedule.length === 0 ? '(none)' : d.schedule.map(span).join(', ')} ` +
      `(±${Math.round(d.jitter * 100)}%; Retry-After up to ${span(d.retryAfterMaxMs)}), then dead`,
    `  an endpoint failing for ${span(d.pauseAfterMs)} is paused and probed every ${span(d.probeEveryMs)}`,
    `  outbox limits: ${d.maxRows} undelivered, ${span(d.maxAgeMs)} old; delivered kept ${span(d.keepDeliveredMs)}, ` +
      `dead kept ${span(d.keepDeadMs)}`,
    `  notify_url: ${d.notifyUrl === undefined ? 'not set' : `${notifyTarget(d.notifyUrl)}: endpoint paused or resumed, webhooks dead`}`,
    `  on SIGTERM: attempts in flight get ${span(d.stopTimeoutMs)}; exited within ${span(cfg.shutdownGraceMs)}, after the last commit`,
    ...(cfg.standby?.enabled === true
      ? [`standby: on; this daemon follows the PBX while it holds pbx.name's lease in the outbox, the other waits; takeover within ${cfg.standby.takeoverSeconds} s`]
      : []),
    `log level: ${cfg.log.level}`,
    `metrics, health and status page: ${ops(cfg)}`,
    `environment (VoipAppz environment_name): ${cfg.environment}`,
    `directory: ${directory(cfg.directory)}`,
    `endpoints: ${cfg.endpoints.length} (${enabled} enabled)${cfg.webhooksFile === undefined ? ', no webhooks file' : ` from ${cfg.webhooksFile}`}`,
    ...cfg.endpoints.flatMap((e) => endpoint(e, cfg.environment)),
    ...routingTable(cfg.endpoints),
  ];
  if (enabled === 0) lines.push('warning: no enabled endpoint; no webhook will be sent');
  return `${lines.join('\n')}\n`;
}

/** Which calls each enabled endpoint takes (issue #16 item 5): one line per endpoint, set keys joined by "and". */
function routingTable(endpoints: readonly EndpointConfig[]): string[] {
  const enabled = endpoints.filter((e) => e.enabled);
  if (enabled.length === 0) return [];
  const width = Math.max(...enabled.map((e) => e.name.length)) + 2;
  return [
    'routing (only_* keys; a call must match every key set, and one value of each):',
    ...enabled.map((e) => `  ${`[${e.name}]`.padEnd(width)} → ${takes(e)}`),
  ];
}

export function takes(e: EndpointConfig): string {
  const r = e.routing;
  if (r === undefined) return 'every call';
  const parts = [
    r.dids.length > 0 && `DID ${r.dids.join(' or ')}`,
    r.queues.length > 0 && `queue ${r.queues.join(' or ')}`,
    r.ringGroups.length > 0 && `ring group ${r.ringGroups.join(' or ')}`,
    r.extensions.length > 0 && `extension ${r.extensions.join(' or ')}`,
    r.directions.length > 0 && `direction ${r.directions.join(' or ')}`,
  ].filter((p): p is string => typeof p === 'string');
  return `calls with ${parts.join(' and ')}`;
}

/** A chat tool's incoming-webhook URL carries its secret in the path: only the origin is shown. */
function notifyTarget(url: string): string {
  return URL.canParse(url) ? `${new URL(url).origin}/${MASK}` : MASK;
}

function ops(cfg: Config): string {
  if (cfg.opsListen === undefined) return 'off';
  // Issue #16: on loopback reads stay open and only the console's actions need the token.
  const auth =
    cfg.opsToken === undefined
      ? 'no token (loopback only; console actions refused)'
      : isLoopbackListen(cfg.opsListen)
        ? 'bearer token required for console actions (reads open on loopback)'
        : 'bearer token required but on /healthz';
  return `http://${cfg.opsListen}/, ${auth}`;
}

function directory(entries: Config['directory']): string {
  const list = Object.entries(entries);
  if (list.length === 0) return '(none)';
  return list
    .map(([ext, p]) => [ext, p.name && JSON.stringify(p.name), p.email && `<${p.email}>`, p.uid && `uid ${p.uid}`].filter(Boolean).join(' '))
    .join('; ');
}

/** Every key of the section as understood: the common ones, then the schema's own by their ini names (issue #13). */
function endpoint(e: EndpointConfig, environment: string): string[] {
  return [
    `  [${e.name}]${e.enabled ? '' : ' (disabled)'}`,
    `    ${e.schema}${e.schema === '3cx' ? `/${e.variant}` : ''}: ${e.method} ${redactUrl(e.url)}`,
    `    events: ${e.events.length === 0 ? 'all' : e.events.join(', ')}`,
    `    token: ${e.token !== undefined ? 'set' : 'not set'}`,
    `    signing: ${e.signingSecrets === undefined ? 'off' : `Standard Webhooks, ${e.signingSecrets.length} secret(s)`}`,
    ...(e.retryOn !== undefined ? [`    also retried: HTTP ${e.retryOn.join(', ')}`] : []),
    ...routingKeys(e).map((l) => `    ${l}`),
    ...schemaKeys(e, environment).map((l) => `    ${l}`),
  ];
}

/** The `only_*` keys set, by their ini names. */
function routingKeys(e: EndpointConfig): string[] {
  const r = e.routing;
  if (r === undefined) return [];
  const keys: Array<[string, readonly string[]]> = [
    ['only_dids', r.dids], ['only_queues', r.queues], ['only_ring_groups', r.ringGroups], ['only_extensions', r.extensions], ['only_directions', r.directions],
  ];
  return keys.filter(([, l]) => l.length > 0).map(([k, l]) => `${k}: ${l.join(', ')}`);
}

function schemaKeys(e: EndpointConfig, environment: string): string[] {
  switch (e.schema) {
    case '3cx':
      return [`recording_url: ${e.recordingUrl ?? 'not set; no "recording" event is sent'}`];
    case 'voipappz':
      return [
        `event: ${e.event}`,
        `environments: ${e.environments.join(', ')}${e.environments.includes(environment) ? '' : ` (not ${environment}, this PBX's: sends nothing)`}`,
        `body_file: ${e.bodyFile ?? "not set; the doc's full body"}`,
        `uuid: ${e.uuid}`,
        `recording_url: ${e.recordingUrl ?? 'not set; recording_url is sent as null'}`,
      ];
    case 'petdesk':
      return [
        `target: ${e.target}`,
        `container_id: ${e.containerId}, tenant_id: ${e.tenantId}`,
        `numbers: ${e.numbers.length === 0 ? 'all' : e.numbers.join(', ')}`,
        `did_group: ${JSON.stringify(e.didGroup)}, cid_prefix: ${JSON.stringify(e.cidPrefix)}`,
      ];
    case 'vxt':
      return [`default_country: ${e.defaultCountry}`, `phone_number: ${e.phoneNumber || '(from the trunk)'}`, `web_url: ${e.webUrl}`];
    case 'voip-request':
      return [
        Object.entries(e.eventValues).map(([k, v]) => `event_${k}: ${v}`).join(', '),
        Object.entries(e.dispositionValues).map(([k, v]) => `disposition_${k}: ${v}`).join(', '),
      ];
  }
}

/** 90000 → "1m30s": the largest units that fit, as the config is written. */
export function span(ms: number): string {
  if (ms === 0) return '0s';
  const units: Array<[string, number]> = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1_000], ['ms', 1]];
  let rest = ms;
  let out = '';
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    if (n > 0) out += `${n}${unit}`;
    rest -= n * size;
  }
  return out;
}

/**
 * Which part of a matching endpoint name is the extension (issue #12 item 5); nothing when all of
 * it. The hosted-PBX naming the feature is for serves as the example when the pattern takes it.
 * Other capture groups are said to change nothing, for whoever expected one to name the extension.
 */
function extensionGroup(pattern: string): string {
  if (extensionGroupBody(pattern) === undefined) {
    return hasCaptureGroups(pattern) ? ` (extension = the whole name; only a group named ${EXTENSION_GROUP} takes part of it)` : '';
  }
  const id = new RegExp(pattern).exec(TENANT_ENDPOINT)?.groups?.[EXTENSION_GROUP];
  const example = id ? `: PJSIP/${TENANT_ENDPOINT}-… → ${id}` : '';
  return ` (extension = group ${EXTENSION_GROUP}${example})`;
}

/** Extension 1001 of tenant 12, as a hosted PBX names its endpoint. */
const TENANT_ENDPOINT = '1001-12';

function targets(list: readonly DialplanTarget[]): string {
  return list.length === 0 ? '(none listed; detected from the dialplan)' : list.join(', ');
}

function names(map: Readonly<Record<string, string>>): string {
  const entries = Object.entries(map);
  if (entries.length === 0) return '(none)';
  return entries.map(([number, name]) => `${number}=${JSON.stringify(name)}`).join(', ');
}
