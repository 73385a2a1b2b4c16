/**
 * The one schema for both config files, spelled as the files are: snake_case keys.
 * Defaults live here and nowhere else; every object is strict, so a misspelt key is an
 * error instead of a silently ignored setting. load.ts maps the result to types.ts.
 */
import { z } from './libs.js';
import { extensionGroupProblem } from './pattern.js';

export const RECORDING_PLACEHOLDERS = ['file', 'path', 'id', 'n'] as const;

/** Integer checks share one message so "abc", 1.5 and 70000 all read the same. */
function wholeNumber(min: number, max?: number) {
  const words =
    max === undefined ? `expected a whole number of at least ${min}` : `expected a whole number from ${min} to ${max}`;
  const n = z.number({ error: (iss) => (iss.input === undefined ? undefined : words) }).int(words).min(min, words);
  return max === undefined ? n : n.max(max, words);
}

export const text = z.string().min(1);
const port = wholeNumber(1, 65535);

/** YAML reads `500` as a number; a dialplan target is text, so whole numbers are taken as written. */
const numberAsText = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) ? String(v) : v);

const dialplanTarget = z
  .preprocess(numberAsText, z.string().regex(/^[^@\s]+(@[^@\s]+)?$/, 'expected "exten" or "exten@context"'))
  // The published JSON Schema takes `800` as the loader does (the pattern only binds strings).
  .meta({ type: ['string', 'integer'] });

/** Why `new RegExp(source)` throws ("Unterminated group"), or undefined when it compiles. */
function regexProblem(source: string): string | undefined {
  try {
    new RegExp(source);
    return undefined;
  } catch (err) {
    const message = String((err as Error).message); // "Invalid regular expression: /(/: Unterminated group"
    const colon = message.lastIndexOf(': ');
    return colon < 0 ? message : message.slice(colon + 2);
  }
}

const regexSource = z.string().superRefine((s, ctx) => {
  const why = regexProblem(s);
  if (why !== undefined) ctx.addIssue({ code: 'custom', message: `is not a valid regular expression (${why})` });
});

/** A valid regex whose group named ext, if it has one, cannot match nothing (issue #12 item 5). */
const extensionPattern = regexSource.min(1).superRefine((s, ctx) => {
  const why = regexProblem(s) === undefined ? extensionGroupProblem(s) : undefined;
  if (why !== undefined) ctx.addIssue({ code: 'custom', message: why });
});

/**
 * Intl rejects unknown zones with a RangeError; that is the whole IANA check Node offers. UTC is
 * known without asking: building an Intl formatter pages in ICU's data for the daemon's whole life
 * (~12 MB of RSS), which the UTC renderers never need (src/emit/time.ts, issue #14 item 8).
 */
export function isTimeZone(zone: string): boolean {
  if (zone === 'UTC' || zone === 'Etc/UTC') return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function isHttpUrl(s: string): boolean {
  if (!URL.canParse(s)) return false;
  const { protocol, hostname } = new URL(s);
  return (protocol === 'http:' || protocol === 'https:') && hostname !== '';
}

export const httpUrl = z.string().refine(isHttpUrl, 'expected an absolute http:// or https:// URL');

export const recordingUrl = z.string().superRefine((s, ctx) => {
  // Placeholders are replaced before the URL is used, so check the URL with them filled in.
  if (!isHttpUrl(s.replace(/\{[^}]*\}/g, 'x'))) {
    ctx.addIssue({ code: 'custom', message: 'expected an absolute http:// or https:// URL' });
  }
  for (const [, name] of s.matchAll(/\{([^}]*)\}/g)) {
    if (!(RECORDING_PLACEHOLDERS as readonly string[]).includes(name ?? '')) {
      const allowed = RECORDING_PLACEHOLDERS.map((p) => `{${p}}`).join(', ');
      ctx.addIssue({ code: 'custom', message: `unknown placeholder {${name}}; allowed: ${allowed}` });
    }
  }
});

/** A PBX's name becomes a metric label, a header and a row's column: plain, short. */
export const PBX_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const pbxName = z.string().regex(PBX_NAME, 'expected a name of letters, digits, ".", "_" or "-" (at most 64), e.g. "berlin-1"');

const asteriskSchema = z.strictObject({
  type: z.literal('asterisk').describe('Asterisk, through the Manager Interface (AMI)'),
  name: pbxName.optional().describe('this PBX\'s name in a shared outbox (outbox.store: postgres): rows, webhooks (the webhook-pbx header), metrics (the pbx label) and the status page say it. Default: the host name'),
  host: text.default('127.0.0.1').describe('AMI host name or address'),
  port: port.default(5038).describe('AMI TCP port (manager.conf `port`)'),
  username: text.describe('manager.conf user, e.g. [pbxhook] with read = call,dialplan,agent,user'),
  secret: text.describe('that user\'s secret; PBXHOOK_AMI_SECRET in the environment overrides it'),
  max_frame_bytes: wholeNumber(1024).default(65_536).describe('largest AMI message read, in bytes; a longer one is logged, counted and skipped'),
  event_filter: z.enum(['auto', 'off']).default('auto').describe('auto: at each login ask Asterisk (AMI Filter action, needs write = system) for only the events pbxhook reads; refused, one warning and every event is read. off: do not ask'),
});

const freeswitchSchema = z.strictObject({
  type: z.literal('freeswitch').describe('FreeSWITCH, through mod_event_socket (ESL, inbound mode)'),
  name: pbxName.optional().describe('this PBX\'s name in a shared outbox (outbox.store: postgres): rows, webhooks (the webhook-pbx header), metrics (the pbx label) and the status page say it. Default: the host name'),
  host: text.default('127.0.0.1').describe('event socket host name or address'),
  port: port.default(8021).describe('event_socket.conf.xml listen-port'),
  password: text.describe('event_socket.conf.xml password; PBXHOOK_ESL_PASSWORD in the environment overrides it'),
  max_frame_bytes: wholeNumber(1024).default(1_048_576).describe('largest event body read, in bytes; a longer one is logged and counted, and the connection is made again'),
});

const rolesSchema = z.strictObject({
  ivrs: z.array(dialplanTarget).default([]).describe('IVR numbers ("exten" or "exten@context") that detection misses'),
  queues: z.array(dialplanTarget).default([]).describe('queue numbers ("exten" or "exten@context") that detection misses'),
  ring_groups: z.array(dialplanTarget).default([]).describe('ring group numbers; needed for one that rings a single phone'),
  extension_pattern: extensionPattern
    .default('^[0-9]{2,6}$')
    .describe('regex over an endpoint name (PJSIP/117-0001 → "117") that marks a phone; the rest are trunks. A group named ext is the extension (^(?<ext>\\d+)-\\d+$ makes 1001-12 extension 1001); other groups leave the whole name'),
  trunk_pattern: regexSource.default('').describe('regex over an endpoint name that marks a trunk even if it looks like a phone; "" = none'),
  names: z.record(z.string(), text).default({}).describe('number → display name for IVRs, queues, ring groups and DIDs'),
});

const callsSchema = z.strictObject({
  idle_timeout_seconds: wholeNumber(1).default(14_400).describe('seconds without an event after which a call is closed (lost Hangup, PBX restart)'),
  timezone: z
    .string()
    .refine(isTimeZone, 'is not an IANA time zone such as "Europe/Berlin"')
    .default('UTC')
    .describe('IANA time zone of local times in payloads (3CX Id, VoipAppz start_at)'),
});

/** `250ms`, `5s`, `2m`, `1h`, `7d`: the units a delivery setting is written in. */
const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** `"30s"` → 30000; undefined for anything else (a bare number has no unit, so it is refused). */
export function parseDuration(text: string): number | undefined {
  const m = DURATION.exec(text.trim());
  return m ? Math.round(Number(m[1]) * DURATION_UNITS[m[2]!]!) : undefined;
}

/** A duration as milliseconds. YAML reads `30` as a number: shown back as text so the message asks for a unit. */
export const duration = z
  .preprocess(
    (v) => (typeof v === 'number' ? String(v) : v),
    z
      .string()
      .refine((s) => parseDuration(s) !== undefined, 'expected a duration such as "500ms", "30s", "2m", "1h" or "7d"')
      .transform((s) => parseDuration(s)!),
  )
  .meta({ pattern: DURATION.source }); // a refine is invisible to JSON Schema; editors check this instead

/**
 * When a failed webhook is tried again (issue #4). `schedule` is the wait after failed attempt 1, 2, …;
 * after the last one the webhook is dead. `retries` + `min_timeout_ms` + `max_timeout_ms` is the older,
 * exponential way to write a schedule (min · 2^(n-1), capped at max); the two forms exclude each other.
 */
const retrySchema = z
  .strictObject({
    schedule: z
      .array(duration)
      .max(100, 'expected at most 100 steps')
      .optional()
      .describe('wait after failed attempt 1, 2, …; then the webhook is dead. Default 5s, 30s, 2m, 10m, 30m, 1h, 2h, 4h, 8h, 8h'),
    retries: wholeNumber(0, 100).optional().describe('older form, instead of schedule: number of retries (default 8)'),
    min_timeout_ms: wholeNumber(0).optional().describe('older form: first wait in ms (default 1000), doubled each retry'),
    max_timeout_ms: wholeNumber(0).optional().describe('older form: longest wait in ms (default 300000)'),
    jitter: z.number().min(0).max(1).default(0.2).describe('each wait is scaled by a random factor in [1 - jitter, 1 + jitter]'),
    retry_after_max: duration.prefault('1h').describe('a Retry-After longer than the scheduled wait is honoured up to this'),
    timeout_ms: wholeNumber(1).default(10_000).describe('ms for the whole request: connect, send, answer'),
    connect_timeout_ms: wholeNumber(1).default(5_000).describe('ms to open the connection'),
  })
  .refine((r) => (r.min_timeout_ms ?? 1_000) <= (r.max_timeout_ms ?? 300_000), {
    path: ['max_timeout_ms'],
    message: 'must not be less than min_timeout_ms',
  })
  .refine((r) => r.schedule === undefined || (r.retries ?? r.min_timeout_ms ?? r.max_timeout_ms) === undefined, {
    path: ['schedule'],
    message: 'give either schedule or retries/min_timeout_ms/max_timeout_ms, not both',
  });

/** The durable outbox and its worker (issue #4). */
const deliverySchema = z.strictObject({
  /** Webhooks in flight at once per endpoint (different calls); endpoints never share slots. */
  concurrency: wholeNumber(1, 256).default(8).describe('webhooks in flight at once per endpoint (different calls)'),
  pause_after: duration.prefault('10m').describe('an endpoint whose every attempt failed for this long is paused'),
  probe_every: duration.prefault('1m').describe('a paused endpoint gets one probe this often until it answers'),
  stop_timeout: duration.prefault('5s').describe('on SIGTERM, how long attempts in flight may finish; the part of shutdown_grace_seconds they may use, so shorter than it'),
  max_rows: wholeNumber(1).default(100_000).describe('undelivered webhooks kept at most; beyond, the oldest become dead'),
  max_age: duration.prefault('3d').describe('an undelivered webhook older than this becomes dead'),
  keep_delivered: duration.prefault('1d').describe('delivered webhooks are deleted after this'),
  keep_dead: duration.prefault('30d').describe('dead webhooks are deleted after this'),
  notify_url: httpUrl
    .optional()
    .describe("a webhook (JSON with a text field) to the admin's chat or incident tool when an endpoint pauses or resumes and when webhooks go dead; delivered through the outbox. Default: none"),
});

/** Where the outbox lives (issue #17): SQLite in state_dir, or a PostgreSQL database shared by a fleet. */
const outboxSchema = z.strictObject({
  store: z.enum(['sqlite', 'postgres']).default('sqlite').describe('sqlite: outbox.sqlite in state_dir, one pbxhook per state_dir. postgres: a PostgreSQL database several pbxhook processes share (outbox.url)'),
  url: text
    .optional()
    .describe('with store: postgres, the database: postgres://user@host:5432/db (env:NAME or file:PATH too; PBXHOOK_OUTBOX_URL overrides it). A secret: never logged'),
});

/** Two `pbxhook run` for one PBX, one following it and one waiting (issue #17 item 3, src/fleet/lease.ts). */
const standbySchema = z.strictObject({
  enabled: z
    .boolean()
    .default(false)
    .describe('wait for this PBX\'s lease in the PostgreSQL outbox before following it, so that a second pbxhook for the same pbx.name can stand by (needs outbox.store: postgres)'),
  takeover_seconds: wholeNumber(2, 3600)
    .default(10)
    .describe('a standby follows the PBX within this many seconds of the active one dying or losing its database link'),
});

const logSchema = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info').describe('least severe log level written (JSON lines on stderr)'),
});

/** The YAML file. `prefault({})` runs an absent section through its schema so its defaults apply. */
export const fileSchema = z.strictObject({
  pbx: z.discriminatedUnion('type', [asteriskSchema, freeswitchSchema]).describe('the PBX to follow: type asterisk or freeswitch'),
  roles: rolesSchema.prefault({}).describe('which dialplan steps are IVRs, queues, ring groups; which endpoints are phones'),
  calls: callsSchema.prefault({}).describe('how calls are followed and timed'),
  retry: retrySchema.prefault({}).describe('when a failed webhook is tried again; durations like 500ms, 30s, 2m, 1h, 7d'),
  delivery: deliverySchema.prefault({}).describe('the durable outbox and its worker'),
  outbox: outboxSchema.prefault({}).describe('where the outbox lives: SQLite in state_dir (default) or a shared PostgreSQL database'),
  /** The outbox database lives here; relative to the YAML file's folder. */
  state_dir: text.default('/var/lib/pbxhook').describe('folder of the outbox database (outbox.sqlite); relative to this file'),
  /** /metrics, /healthz and the status page. */
  ops: z
    .strictObject({
      enabled: z.boolean().default(true).describe('serve /metrics, /healthz and the status page'),
      listen: z
        .string()
        .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port, e.g. "127.0.0.1:9464" or "[::1]:9464"')
        .default('127.0.0.1:9464')
        .describe('host:port they listen on; off loopback (127.0.0.1, [::1], localhost) ops.token is required'),
      token: text
        .optional()
        .describe('bearer token every request but /healthz must carry (env:NAME or file:PATH too; PBXHOOK_OPS_TOKEN overrides it); required off loopback'),
      /** The console's call journeys (issue #16 item 4): a bounded journal in memory. */
      journal_calls: wholeNumber(0, 100_000).default(500).describe('calls whose journey the console keeps in memory, live and recent; 0 = none'),
      journal_minutes: wholeNumber(1, 10_080).default(60).describe('minutes an ended call stays in the console\'s journal'),
    })
    .prefault({})
    .describe('/metrics (Prometheus), /healthz and the status page'),
  log: logSchema.prefault({}).describe('logging'),
  standby: standbySchema.prefault({}).describe('a standby daemon for the same PBX (PostgreSQL outbox only)'),
  /** SIGTERM to exit, whatever the PBX and the CRM do (issue #14 item 5). */
  shutdown_grace_seconds: wholeNumber(1, 3600)
    .default(10)
    .describe('on SIGTERM, the daemon has exited within this many seconds, after its last outbox commit, whatever the PBX and the CRM do'),
  /** Path of the endpoints ini file, relative to the YAML file's folder. */
  webhooks: text.optional().describe('the endpoints ini file (webhooks.ini.example), relative to this file; absent = no endpoints'),
  /** Extension → person, for schemas that name users. */
  directory: z
    .record(
      z.preprocess(numberAsText, z.string()),
      z.strictObject({
        name: text.optional().describe('full name (VXT user, PetDesk extName, VoipAppz user_fullname)'),
        email: z.email().optional().describe('e-mail address (VXT user email)'),
        uid: text.optional().describe("the user's id in the CRM (VXT uid)"),
      }),
    )
    .default({})
    .describe('extension → person, for schemas that name users'),
  /** The VoipAppz environment this PBX serves. */
  environment: text.default('default').describe('the VoipAppz environment this PBX serves (environment_name)'),
})
  // The grace bounds the whole stop; attempts in flight get a part of it, and the last commit the rest.
  .superRefine((f, ctx) => {
    const grace = f.shutdown_grace_seconds;
    // Either key may itself be wrong (already reported); compare only two good values.
    if (!Number.isInteger(grace) || grace < 1 || typeof f.delivery?.stop_timeout !== 'number') return;
    if (f.delivery.stop_timeout < grace * 1000) return;
    ctx.addIssue({
      code: 'custom',
      path: ['delivery', 'stop_timeout'],
      message: `must be shorter than shutdown_grace_seconds (${f.shutdown_grace_seconds} s), which bounds the whole stop`,
    });
  })
  // The lease lives in the shared database: a SQLite outbox has nobody to stand by for (issue #17 item 3).
  .superRefine((f, ctx) => {
    if (f.standby?.enabled !== true || f.outbox?.store === 'postgres') return;
    ctx.addIssue({ code: 'custom', path: ['standby', 'enabled'], message: 'needs outbox.store: postgres (the lease lives in the shared database)' });
  });

export type FileConfig = z.output<typeof fileSchema>;

/** `127.0.0.1:9464`, `[::1]:9464`, `localhost:9464`: reachable from this host only. */
export function isLoopbackListen(listen: string): boolean {
  const host = listen.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return /^127(\.\d{1,3}){3}$/.test(host) || host === '::1' || host === 'localhost';
}

/** Endpoint names become env var suffixes and log fields, so keep them plain. */
export const ENDPOINT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
