/**
 * Start-up configuration: defaults in code (schema.ts), then the YAML file, then
 * environment overrides for secrets; plus the endpoints ini file the YAML names in
 * `webhooks`. Every problem in both files is collected and thrown as one ConfigError.
 *
 * Environment overrides: PBXHOOK_AMI_SECRET (pbx.secret), PBXHOOK_ESL_PASSWORD
 * (pbx.password), PBXHOOK_TOKEN_<ENDPOINT> (the endpoint's token; see tokens.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDocument } from './libs.js';
import { type ConfigProblem, ConfigError, iniKey } from './errors.js';
import { readIniSections } from './ini.js';
import { IssueWording } from './issues.js';
import { endpointSchema, sectionProblems, toEndpoint, type ReadIniFile } from './endpoints.js';
import { pbxNameOf } from './pbx-name.js';
import { fileSchema, isLoopbackListen, type FileConfig } from './schema.js';
import {
  type ReadSecretFile, OPS_TOKEN_ENV, OUTBOX_URL_ENV, envValue, resolveOpsToken, resolveOutboxUrl, resolveSigningSecrets, resolveToken, tokenEnvName,
} from './tokens.js';
import type { Config, DeliveryConfig, EndpointConfig, OutboxConfig } from './types.js';

type Env = Readonly<Record<string, string | undefined>>;

export interface ConfigSource {
  /** The YAML file as the operator named it; messages quote it as given. */
  readonly yamlPath: string;
  /** Why the ini file could not be read, when the caller tried (loadConfig does). */
  readonly iniReadError?: string;
  /** Reads `file:` tokens; the one piece of I/O parseConfig does, injectable for tests. */
  readonly readSecretFile?: ReadSecretFile;
  /**
   * `pbxhook deliver` (and `check-config --deliver`): a delivery worker follows no PBX, so its file
   * may leave `pbx:` out rather than carry a PBX's secret to a host that never logs in.
   */
  readonly deliverOnly?: boolean;
}

/** What a delivery worker's file stands in for the `pbx:` it left out; only the name is read. */
const NO_PBX = { type: 'asterisk', username: 'none', secret: 'none' } as const;

/** Reads both files and validates them; throws ConfigError listing every problem. */
export function loadConfig(yamlPath: string, env: Env = process.env, use: Pick<ConfigSource, 'deliverOnly'> = {}): Config {
  if (/\.ini(\.example)?$/i.test(yamlPath)) {
    // Handed to the YAML parser, an ini file yields one error per line and no hint of the mix-up.
    const message = `this is a webhooks ini file; pbxhook takes the YAML config that references it (webhooks: ./${path.basename(yamlPath)})`;
    throw new ConfigError([{ file: yamlPath, key: '', message }]);
  }
  let yamlText: string;
  try {
    yamlText = readFileSync(yamlPath, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file: yamlPath, key: '', message: `cannot read the file (${readReason(err)})` }]);
  }
  const ref = webhooksRef(parseYaml(yamlText, yamlPath).data);
  let iniText: string | undefined;
  let iniReadError: string | undefined;
  if (ref !== undefined) {
    try {
      iniText = readFileSync(webhooksPath(yamlPath, ref), 'utf8');
    } catch (err) {
      iniReadError = readReason(err);
    }
  }
  return parseConfig(yamlText, iniText, { yamlPath, iniReadError, ...use }, env);
}

/** Validates config text without touching the file system (except `file:` tokens, see ConfigSource). */
export function parseConfig(yamlText: string, iniText: string | undefined, source: ConfigSource, env: Env): Config {
  const file = source.yamlPath;
  const yaml = parseYaml(yamlText, file);
  const noPbx = source.deliverOnly === true && typeof yaml.data === 'object' && yaml.data !== null && !('pbx' in yaml.data);
  if (noPbx) yaml.data = { ...(yaml.data as object), pbx: NO_PBX };
  const problems: ConfigProblem[] = [...yaml.problems];

  const readSecretFile = source.readSecretFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const wording = new IssueWording();
  let parsed: FileConfig | undefined;
  if (yaml.data !== undefined) {
    const result = fileSchema.safeParse(withSecretsFromEnv(yaml.data, env), { reportInput: true, error: wording.errorMap });
    if (result.success) parsed = result.data;
    else problems.push(...wording.problems(result.error.issues, file, yamlKey));
  }

  // The ini file is checked even when the YAML has problems, so one run reports both.
  let endpoints: EndpointConfig[] = [];
  const ref = webhooksRef(yaml.data);
  if (ref !== undefined) {
    const iniPath = webhooksPath(file, ref);
    if (iniText === undefined) {
      const why = source.iniReadError ?? 'not read';
      problems.push({ file, key: 'webhooks', message: `cannot read ${JSON.stringify(iniPath)} (${why})` });
    } else {
      const ini = parseEndpoints(iniText, iniPath, { env, iniDir: path.dirname(iniPath), readSecretFile });
      problems.push(...ini.problems);
      endpoints = ini.endpoints;
    }
  }

  // Checked even when another YAML key is wrong, so one run names every missing secret.
  const opsSection = parsed?.ops ?? fileSchema.shape.ops.safeParse((yaml.data as { ops?: unknown } | undefined)?.ops).data;
  const ops = opsSection === undefined ? undefined : opsToken(opsSection, { env, iniDir: path.dirname(file), readSecretFile });
  if (ops !== undefined && 'problem' in ops) problems.push({ file, key: 'ops.token', message: ops.problem });

  const outboxSection = parsed?.outbox ?? fileSchema.shape.outbox.safeParse((yaml.data as { outbox?: unknown } | undefined)?.outbox).data;
  const outbox = outboxSection === undefined ? undefined : outboxOf(outboxSection, { env, iniDir: path.dirname(file), readSecretFile });
  if (outbox !== undefined && 'problem' in outbox) problems.push({ file, key: 'outbox.url', message: outbox.problem });

  if (problems.length > 0 || parsed === undefined) throw new ConfigError(problems);
  const cfg = toConfig(parsed, endpoints, file, ops !== undefined && 'token' in ops ? ops.token : undefined, outbox !== undefined && 'store' in outbox ? outbox : undefined);
  return noPbx ? { ...cfg, deliverOnly: true } : cfg;
}

/** The outbox's backend (issue #17); postgres needs its URL, which is a secret like the tokens. */
function outboxOf(o: FileConfig['outbox'], src: Parameters<typeof resolveOutboxUrl>[1]): OutboxConfig | { problem: string } {
  if (o.store === 'sqlite') {
    // A URL the operator wrote but pbxhook would ignore: the outbox would silently stay local.
    return o.url === undefined ? { store: 'sqlite' } : { problem: 'is set, but outbox.store is sqlite: set outbox.store: postgres to use it, or remove it' };
  }
  const url = resolveOutboxUrl(o.url, src);
  if ('problem' in url) return url;
  if (url.url === undefined) {
    return { problem: `missing: outbox.store is postgres; set outbox.url (or ${OUTBOX_URL_ENV}; env:NAME and file:PATH work too)` };
  }
  return { store: 'postgres', url: url.url };
}

/**
 * The ops token, resolved; off loopback it is required (issue #13): /status.json and the status page
 * show callers' numbers, which must not be open to whoever reaches the port. Undefined when ops is off.
 */
function opsToken(ops: FileConfig['ops'], src: Parameters<typeof resolveOpsToken>[1]): ReturnType<typeof resolveOpsToken> | undefined {
  if (!ops.enabled) return undefined;
  const token = resolveOpsToken(ops.token, src);
  if ('token' in token && token.token === undefined && !isLoopbackListen(ops.listen)) {
    return {
      problem:
        `missing: ops.listen ${ops.listen} is not a loopback address, and /status.json shows callers' numbers; ` +
        `set ops.token (or ${OPS_TOKEN_ENV}; env:NAME and file:PATH work too), or listen on 127.0.0.1`,
    };
  }
  return token;
}

/** `webhooks:` is relative to the YAML file's folder. */
export function webhooksPath(yamlPath: string, ref: string): string {
  return path.isAbsolute(ref) ? ref : path.join(path.dirname(yamlPath), ref);
}

function parseYaml(text: string, file: string): { data: unknown; problems: ConfigProblem[] } {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    // The first line of a pretty yaml error already says "at line L, column C".
    const problems = doc.errors.map((e) => ({ file, key: '', message: `YAML: ${e.message.split('\n')[0]!.replace(/:$/, '')}` }));
    return { data: undefined, problems };
  }
  const data: unknown = doc.toJS();
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    const message = data == null ? 'the file is empty; expected at least a pbx section' : 'expected a mapping of keys at the top level';
    return { data: undefined, problems: [{ file, key: '', message }] };
  }
  return { data, problems: [] };
}

function webhooksRef(data: unknown): string | undefined {
  const ref = (data as { webhooks?: unknown } | undefined)?.webhooks;
  return typeof ref === 'string' && ref !== '' ? ref : undefined;
}

/** Applies PBXHOOK_AMI_SECRET / PBXHOOK_ESL_PASSWORD to the key of the configured PBX type only. */
function withSecretsFromEnv(data: unknown, env: Env): unknown {
  const pbx = (data as { pbx?: unknown }).pbx;
  if (typeof pbx !== 'object' || pbx === null || Array.isArray(pbx)) return data;
  const type = (pbx as { type?: unknown }).type;
  const key = type === 'asterisk' ? 'secret' : type === 'freeswitch' ? 'password' : undefined;
  const value = envValue(env, type === 'asterisk' ? 'PBXHOOK_AMI_SECRET' : 'PBXHOOK_ESL_PASSWORD');
  if (key === undefined || value === undefined) return data;
  return { ...(data as object), pbx: { ...pbx, [key]: value } };
}

function parseEndpoints(
  text: string,
  file: string,
  tokens: Parameters<typeof resolveToken>[2],
): { endpoints: EndpointConfig[]; problems: ConfigProblem[] } {
  const { sections, problems: lineProblems } = readIniSections(text, file);
  const problems = [...lineProblems];
  const endpoints: EndpointConfig[] = [];
  const envNames = new Map<string, string>();
  for (const [name, raw] of sections) {
    const envName = tokenEnvName(name);
    const clash = envNames.get(envName);
    if (clash !== undefined) {
      problems.push({ file, key: iniKey(name), message: `shares the token variable ${envName} with [${clash}]; rename one` });
    }
    envNames.set(envName, name);

    const wording = new IssueWording();
    const result = endpointSchema.safeParse(raw, { reportInput: true, error: wording.errorMap });
    if (!result.success) {
      problems.push(...wording.problems(result.error.issues, file, (p) => iniKey(name, p.map(String).join('.'))));
      continue;
    }
    // Every problem of the section at once: a missing token variable does not hide the signing secret's (issue #13).
    const s = result.data;
    const before = problems.length;
    const add = (key: string, message: string) => problems.push({ file, key: iniKey(name, key), message });
    for (const p of sectionProblems(s)) add(p.key, p.message);
    const token = resolveToken(name, s.token, tokens);
    if ('problem' in token) add('token', token.problem);
    const signing = resolveSigningSecrets(name, s.signing_secret, tokens);
    if ('problem' in signing) add('signing_secret', signing.problem);
    const readFile: ReadIniFile = (ref) => {
      const abs = path.isAbsolute(ref) ? ref : path.join(tokens.iniDir, ref);
      try {
        return { text: tokens.readSecretFile(abs) };
      } catch (err) {
        return { problem: `cannot read ${JSON.stringify(abs)} (${readReason(err)})` };
      }
    };
    const endpoint = toEndpoint(name, s, 'token' in token ? token.token : undefined, readFile);
    if ('problem' in endpoint) add(endpoint.key, endpoint.problem);
    if (problems.length > before || 'problem' in endpoint || 'problem' in signing) continue;
    endpoints.push({
      ...endpoint,
      ...(signing.secrets !== undefined ? { signingSecrets: signing.secrets } : {}),
      ...(s.retry_on.length > 0 ? { retryOn: s.retry_on } : {}),
    });
  }
  return { endpoints, problems };
}

function toConfig(f: FileConfig, endpoints: readonly EndpointConfig[], yamlPath: string, opsToken: string | undefined, outbox: OutboxConfig | undefined): Config {
  const name = pbxNameOf(f.pbx);
  const pbx =
    f.pbx.type === 'asterisk'
      ? { type: f.pbx.type, name, host: f.pbx.host, port: f.pbx.port, username: f.pbx.username, secret: f.pbx.secret, maxFrameBytes: f.pbx.max_frame_bytes, eventFilter: f.pbx.event_filter }
      : { type: f.pbx.type, name, host: f.pbx.host, port: f.pbx.port, password: f.pbx.password, maxFrameBytes: f.pbx.max_frame_bytes };
  return {
    file: path.resolve(yamlPath),
    pbx,
    roles: {
      ivrs: f.roles.ivrs,
      queues: f.roles.queues,
      ringGroups: f.roles.ring_groups,
      extensionPattern: f.roles.extension_pattern,
      trunkPattern: f.roles.trunk_pattern,
      names: f.roles.names,
    },
    calls: { idleTimeoutSeconds: f.calls.idle_timeout_seconds, timezone: f.calls.timezone },
    delivery: deliveryOf(f),
    stateDir: path.resolve(path.dirname(yamlPath), f.state_dir),
    ...(outbox !== undefined ? { outbox } : {}),
    opsListen: f.ops.enabled ? f.ops.listen : undefined,
    ...(opsToken !== undefined ? { opsToken } : {}),
    opsJournal: { calls: f.ops.journal_calls, keepMs: f.ops.journal_minutes * 60_000 },
    shutdownGraceMs: f.shutdown_grace_seconds * 1000,
    endpoints,
    ...(f.webhooks !== undefined ? { webhooksFile: path.resolve(webhooksPath(yamlPath, f.webhooks)) } : {}),
    directory: f.directory,
    environment: f.environment,
    log: { level: f.log.level },
    standby: { enabled: f.standby.enabled, takeoverSeconds: f.standby.takeover_seconds },
  };
}

/** The durable schedule when `retry.schedule` is not given: seconds first, then minutes, hours; ~24 h in all. */
export const DEFAULT_SCHEDULE_MS: readonly number[] = [5, 30, 120, 600, 1_800, 3_600, 7_200, 14_400, 28_800, 28_800].map(
  (s) => s * 1000,
);

/**
 * `retry.schedule`, or the older exponential form (`retries`, `min_timeout_ms`, `max_timeout_ms`: wait
 * n is min · 2^(n-1), capped at max), or the default schedule.
 */
function deliveryOf(f: FileConfig): DeliveryConfig {
  const r = f.retry;
  const exponential = r.retries !== undefined || r.min_timeout_ms !== undefined || r.max_timeout_ms !== undefined;
  const min = r.min_timeout_ms ?? 1_000;
  const max = r.max_timeout_ms ?? 300_000;
  const schedule =
    r.schedule ?? (exponential ? Array.from({ length: r.retries ?? 8 }, (_, i) => Math.min(max, min * 2 ** i)) : DEFAULT_SCHEDULE_MS);
  const d = f.delivery;
  const delivery: DeliveryConfig = {
    schedule,
    jitter: r.jitter,
    retryAfterMaxMs: r.retry_after_max,
    connectTimeoutMs: r.connect_timeout_ms,
    timeoutMs: r.timeout_ms,
    concurrency: d.concurrency,
    pauseAfterMs: d.pause_after,
    probeEveryMs: d.probe_every,
    stopTimeoutMs: d.stop_timeout,
    maxRows: d.max_rows,
    maxAgeMs: d.max_age,
    keepDeliveredMs: d.keep_delivered,
    keepDeadMs: d.keep_dead,
    ...(d.notify_url !== undefined ? { notifyUrl: d.notify_url } : {}),
  };
  return delivery;
}

/** `roles.ivrs[2]`, `pbx.port`. */
function yamlKey(p: readonly PropertyKey[]): string {
  return p.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? String(k) : `.${String(k)}`)).join('');
}

function readReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const words: Record<string, string> = { ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'it is a folder' };
  return (code !== undefined ? words[code] : undefined) ?? code ?? String(err);
}
