/**
 * The one schema for both config files, spelled as the files are: snake_case keys.
 * Defaults live here and nowhere else; every object is strict, so a misspelt key is an
 * error instead of a silently ignored setting. load.ts maps the result to types.ts.
 */
import { z } from 'zod';

export const DEFAULT_RECORDING_URL = 'https://pbx.example.com/recordings/{file}';
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

const dialplanTarget = z.preprocess(
  numberAsText,
  z.string().regex(/^[^@\s]+(@[^@\s]+)?$/, 'expected "exten" or "exten@context"'),
);

function compiles(source: string): boolean {
  try {
    new RegExp(source);
    return true;
  } catch {
    return false;
  }
}

const regexSource = z.string().refine(compiles, 'is not a valid regular expression');

/** Intl rejects unknown zones with a RangeError; that is the whole IANA check Node offers. */
export function isTimeZone(zone: string): boolean {
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

const asteriskSchema = z.strictObject({
  type: z.literal('asterisk'),
  host: text.default('127.0.0.1'),
  port: port.default(5038),
  username: text,
  secret: text,
});

const freeswitchSchema = z.strictObject({
  type: z.literal('freeswitch'),
  host: text.default('127.0.0.1'),
  port: port.default(8021),
  password: text,
});

const rolesSchema = z.strictObject({
  ivrs: z.array(dialplanTarget).default([]),
  queues: z.array(dialplanTarget).default([]),
  ring_groups: z.array(dialplanTarget).default([]),
  extension_pattern: regexSource.min(1).default('^[0-9]{2,6}$'),
  trunk_pattern: regexSource.default(''),
  names: z.record(z.string(), text).default({}),
});

const callsSchema = z.strictObject({
  idle_timeout_seconds: wholeNumber(1).default(14_400),
  timezone: z.string().refine(isTimeZone, 'is not an IANA time zone such as "Europe/Berlin"').default('UTC'),
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
export const duration = z.preprocess(
  (v) => (typeof v === 'number' ? String(v) : v),
  z
    .string()
    .refine((s) => parseDuration(s) !== undefined, 'expected a duration such as "500ms", "30s", "2m", "1h" or "7d"')
    .transform((s) => parseDuration(s)!),
);

/**
 * When a failed webhook is tried again (issue #4). `schedule` is the wait after failed attempt 1, 2, …;
 * after the last one the webhook is dead. `retries` + `min_timeout_ms` + `max_timeout_ms` is the older,
 * exponential way to write a schedule (min · 2^(n-1), capped at max); the two forms exclude each other.
 */
const retrySchema = z
  .strictObject({
    schedule: z.array(duration).max(100, 'expected at most 100 steps').optional(),
    retries: wholeNumber(0, 100).optional(),
    min_timeout_ms: wholeNumber(0).optional(),
    max_timeout_ms: wholeNumber(0).optional(),
    jitter: z.number().min(0).max(1).default(0.2),
    retry_after_max: duration.prefault('1h'),
    timeout_ms: wholeNumber(1).default(10_000),
    connect_timeout_ms: wholeNumber(1).default(5_000),
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
  concurrency: wholeNumber(1, 256).default(8),
  pause_after: duration.prefault('10m'),
  probe_every: duration.prefault('1m'),
  stop_timeout: duration.prefault('10s'),
  max_rows: wholeNumber(1).default(100_000),
  max_age: duration.prefault('3d'),
  keep_delivered: duration.prefault('1d'),
  keep_dead: duration.prefault('30d'),
});

const logSchema = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
});

/** The YAML file. `prefault({})` runs an absent section through its schema so its defaults apply. */
export const fileSchema = z.strictObject({
  pbx: z.discriminatedUnion('type', [asteriskSchema, freeswitchSchema]),
  roles: rolesSchema.prefault({}),
  calls: callsSchema.prefault({}),
  retry: retrySchema.prefault({}),
  delivery: deliverySchema.prefault({}),
  /** The outbox database lives here; relative to the YAML file's folder. */
  state_dir: text.default('/var/lib/pbxhook'),
  /** /metrics, /healthz and the status page. */
  ops: z
    .strictObject({
      enabled: z.boolean().default(true),
      listen: z
        .string()
        .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port, e.g. "127.0.0.1:9464" or "[::1]:9464"')
        .default('127.0.0.1:9464'),
    })
    .prefault({}),
  log: logSchema.prefault({}),
  /** Path of the endpoints ini file, relative to the YAML file's folder. */
  webhooks: text.optional(),
  /** Extension → person, for schemas that name users. */
  directory: z
    .record(z.preprocess(numberAsText, z.string()), z.strictObject({ name: text.optional(), email: z.email().optional(), uid: text.optional() }))
    .default({}),
  /** The VoipAppz environment this PBX serves. */
  environment: text.default('default'),
});

export type FileConfig = z.output<typeof fileSchema>;

/** Endpoint names become env var suffixes and log fields, so keep them plain. */
export const ENDPOINT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
