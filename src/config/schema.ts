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

const retrySchema = z
  .strictObject({
    retries: wholeNumber(0, 100).default(8),
    min_timeout_ms: wholeNumber(0).default(1_000),
    max_timeout_ms: wholeNumber(0).default(300_000),
    timeout_ms: wholeNumber(1).default(10_000),
  })
  .refine((r) => r.min_timeout_ms <= r.max_timeout_ms, {
    path: ['max_timeout_ms'],
    message: 'must not be less than min_timeout_ms',
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
