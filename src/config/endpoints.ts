/**
 * The `[section]`s of webhooks.ini: keys every endpoint has, plus each schema's own. Each schema
 * is one strict object, so a key of another schema is an error naming the key.
 */
import { createHash } from 'node:crypto';
import { z } from './libs.js';
import { httpUrl, recordingUrl, text } from './schema.js';
import {
  PETDESK_EVENTS,
  PETDESK_TARGETS,
  THREECX_EVENTS,
  THREECX_URLENCODED_EVENTS,
  VOIP_REQUEST_EVENTS,
  VOIPAPPZ_EVENTS,
  VOIPAPPZ_FIELDS,
  VXT_EVENTS,
  DIRECTIONS,
  type EndpointBase,
  type EndpointConfig,
  type EndpointRouting,
} from './types.js';

/** ini turns `true`/`false` into booleans; the other usual spellings are taken too. */
const FLAG_WORDS: Record<string, boolean> = { true: true, yes: true, on: true, '1': true, false: false, no: false, off: false, '0': false };

const flag = z.preprocess(
  (v) => (typeof v === 'string' ? (FLAG_WORDS[v.trim().toLowerCase()] ?? v) : v),
  z.boolean(),
);

const list = z
  .string()
  .default('')
  .transform((s) => s.split(',').map((e) => e.trim()).filter((e) => e !== ''));

/** `404, 409`: client-error statuses only; 408 and 429 are retried anyway, 3xx never. */
const statusList = list.pipe(
  z.array(z.string().regex(/^4\d\d$/, 'expected HTTP statuses from 400 to 499, comma-separated').transform(Number)),
);

/** `inbound, internal`: a call's direction as the tracker names it (issue #16 item 5). */
const directionList = list.pipe(
  z.array(z.enum(DIRECTIONS, { error: () => `expected ${DIRECTIONS.join(', ')}, comma-separated` })),
);

const method = z.preprocess((v) => (typeof v === 'string' ? v.trim().toUpperCase() : v), z.enum(['GET', 'POST'])).default('POST');

const base = {
  url: httpUrl,
  method,
  events: list,
  /** A literal bearer token, `env:NAME` or `file:/path`; resolved in tokens.ts. */
  token: text.optional(),
  enabled: flag.default(true),
  /** `whsec_…`, several comma-separated, `env:NAME` or `file:/path`; resolved in tokens.ts. */
  signing_secret: text.optional(),
  /** 4xx statuses to retry like 5xx (issue #4), e.g. `404, 409`. */
  retry_on: statusList,
  /** Routing by number (issue #16 item 5): which calls' webhooks this endpoint takes; empty = any. */
  only_dids: list,
  only_queues: list,
  only_ring_groups: list,
  only_extensions: list,
  only_directions: directionList,
};

const threecx = z.strictObject({
  schema: z.literal('3cx'),
  ...base,
  variant: z.enum(['json', 'urlencoded']).default('json'),
  /** No default: a made-up host must never reach a CRM (issue #13). */
  recording_url: recordingUrl.optional(),
});

const voipappz = z.strictObject({
  schema: z.literal('voipappz'),
  ...base,
  event: z.enum(VOIPAPPZ_EVENTS),
  uuid: z.uuid().optional(),
  environments: list.refine((l) => l.length > 0, 'a VoipAppz webhook fires only in the environments it is subscribed to: list at least one'),
  /** A JSON template file, relative to the ini file; absent = the doc's full body. */
  body_file: text.optional(),
  /** No default: without it `recording_url` is null, as for a call without a recording (issue #13). */
  recording_url: recordingUrl.optional(),
});

const petdesk = z.strictObject({
  schema: z.literal('petdesk'),
  ...base,
  container_id: text,
  tenant_id: text,
  target: z.enum(PETDESK_TARGETS),
  numbers: list,
  did_group: z.string().default(''),
  cid_prefix: z.string().default(''),
});

const vxt = z.strictObject({
  schema: z.literal('vxt'),
  ...base,
  default_country: z.string().regex(/^[A-Z]{2}$/, 'expected a two-letter country code such as "US" or "GB"'),
  phone_number: z.string().default(''),
  web_url: recordingUrl.default('https://app.vxt.co/{id}'),
});

const value = z.string().min(1);
const voipRequest = z.strictObject({
  schema: z.literal('voip-request'),
  ...base,
  event_ringing: value.default('NotifyStart'),
  event_answered: value.default('NotifyStart'),
  event_ended: value.default('NotifyStart'),
  disposition_unknown: value.default('Unknown'),
  disposition_answered: value.default('Answered'),
  disposition_missed: value.default('Unknown'),
  disposition_busy: value.default('Unknown'),
  disposition_declined: value.default('Unknown'),
  disposition_abandoned: value.default('Unknown'),
  disposition_timeout: value.default('Unknown'),
  disposition_failed: value.default('Unknown'),
});

export const endpointSchema = z.discriminatedUnion('schema', [threecx, voipappz, petdesk, vxt, voipRequest]);
export type EndpointSection = z.output<typeof endpointSchema>;

/** Reads a file named in the ini (relative to it): `body_file`. Injected so parsing stays testable. */
export type ReadIniFile = (relativeOrAbsolute: string) => { text: string } | { problem: string };

export function toEndpoint(
  name: string,
  s: EndpointSection,
  token: string | undefined,
  readFile: ReadIniFile,
): EndpointConfig | { problem: string; key: string } {
  const common: EndpointBase = {
    name,
    enabled: s.enabled,
    url: s.url,
    method: s.method,
    events: s.events,
    ...(token !== undefined ? { token } : {}),
    ...routingOf(s),
  };
  switch (s.schema) {
    case '3cx':
      return { ...common, schema: '3cx', variant: s.variant, ...recording(s.recording_url) };
    case 'voipappz': {
      let body: string | undefined;
      if (s.body_file !== undefined) {
        const read = readFile(s.body_file);
        if ('problem' in read) return { key: 'body_file', problem: read.problem };
        const problem = voipAppzBodyProblem(read.text, s.method);
        if (problem !== undefined) return { key: 'body_file', problem: `${JSON.stringify(s.body_file)} ${problem}` };
        body = read.text;
      }
      return {
        ...common, schema: 'voipappz', event: s.event, uuid: s.uuid ?? stableUuid(name), environments: s.environments, body,
        ...(s.body_file !== undefined ? { bodyFile: s.body_file } : {}),
        ...recording(s.recording_url),
      };
    }
    case 'petdesk':
      return {
        ...common, schema: 'petdesk', containerId: s.container_id, tenantId: s.tenant_id, target: s.target,
        numbers: s.numbers, didGroup: s.did_group, cidPrefix: s.cid_prefix,
      };
    case 'vxt':
      return { ...common, schema: 'vxt', defaultCountry: s.default_country, phoneNumber: s.phone_number, webUrl: s.web_url };
    case 'voip-request':
      return {
        ...common,
        schema: 'voip-request',
        eventValues: { ringing: s.event_ringing, answered: s.event_answered, ended: s.event_ended },
        dispositionValues: {
          unknown: s.disposition_unknown, answered: s.disposition_answered, missed: s.disposition_missed,
          busy: s.disposition_busy, declined: s.disposition_declined, abandoned: s.disposition_abandoned, timeout: s.disposition_timeout,
          failed: s.disposition_failed,
        },
      };
  }
}

/** The `only_*` keys as understood; absent when none is set, so an unfiltered endpoint costs nothing per event. */
function routingOf(s: EndpointSection): { routing?: EndpointRouting } {
  const routing: EndpointRouting = {
    dids: s.only_dids, queues: s.only_queues, ringGroups: s.only_ring_groups, extensions: s.only_extensions, directions: s.only_directions,
  };
  return Object.values(routing).some((l) => l.length > 0) ? { routing } : {};
}

const recording = (url: string | undefined) => (url !== undefined ? { recordingUrl: url } : {});

/** The names `events =` may list for a section or endpoint: what its schema (variant, target, event) sends. */
export function eventNamesOf(s: EndpointSection | EndpointConfig): readonly string[] {
  switch (s.schema) {
    case '3cx':
      return s.variant === 'urlencoded' ? THREECX_URLENCODED_EVENTS : THREECX_EVENTS;
    case 'voipappz':
      return [s.event]; // one webhook object, one event (the doc's setup)
    case 'petdesk':
      return PETDESK_EVENTS[s.target];
    case 'vxt':
      return VXT_EVENTS;
    case 'voip-request':
      return VOIP_REQUEST_EVENTS;
  }
}

/** What the section's schema is called in a message: `3cx (variant json)`, `petdesk (target queue)`. */
function schemaWords(s: EndpointSection): string {
  if (s.schema === '3cx') return `schema 3cx (variant ${s.variant})`;
  if (s.schema === 'petdesk') return `schema petdesk (target ${s.target})`;
  return `schema ${s.schema}`;
}

/**
 * Problems of an endpoint beyond its keys' own types, each as `key: message` (issue #13): an
 * `events` name the schema never sends (a typo would drop webhooks without a word), and a 3CX
 * `recording` event with nowhere to point its FileUrls.
 */
export function sectionProblems(s: EndpointSection): Array<{ key: string; message: string }> {
  const out: Array<{ key: string; message: string }> = [];
  const valid = eventNamesOf(s);
  const unknown = s.events.filter((e) => !valid.includes(e));
  if (unknown.length > 0) {
    const names = unknown.map((e) => JSON.stringify(e)).join(', ');
    const what = unknown.length === 1 ? 'unknown event' : 'unknown events';
    const message =
      s.schema !== 'voipappz'
        ? `${what} ${names}; ${schemaWords(s)} sends: ${valid.join(', ')}`
        : unknown.every((e) => (VOIPAPPZ_EVENTS as readonly string[]).includes(e))
          ? `lists ${names}, but a VoipAppz webhook object fires only for its own event (${s.event}); list ${s.event} or leave events empty`
          : `${what} ${names}; this VoipAppz webhook object sends only its event: ${s.event}`;
    out.push({ key: 'events', message });
  }
  if (s.schema === '3cx' && s.recording_url === undefined && s.events.includes('recording')) {
    out.push({
      key: 'recording_url',
      message: 'missing: events lists "recording", whose FileUrls are made from it; set where the PBX serves ' +
        'recordings (e.g. https://pbx.example.com/recordings/{file}) or leave "recording" out',
    });
  }
  return out;
}

/** A webhook object's UUID when the ini gives none: derived from its name (UUID v5 style), so it stays the same. */
function stableUuid(name: string): string {
  const x = createHash('sha1').update(`pbxhook-webhook:${name}`).digest('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-5${x.slice(13, 16)}-${((parseInt(x[16]!, 16) & 0x3) | 0x8).toString(16)}${x.slice(17, 20)}-${x.slice(20, 32)}`;
}

/** The placeholders a VoipAppz body template may use: the doc's field names (src/emit/voipappz-template.ts). */
export const VOIPAPPZ_PLACEHOLDERS: readonly string[] = VOIPAPPZ_FIELDS;

/** Why a VoipAppz body template cannot be sent, checked at start-up so a typo never reaches a CRM. */
function voipAppzBodyProblem(text: string, method: 'GET' | 'POST'): string | undefined {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    return `is not valid JSON (${(err as Error).message})`;
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'must hold a JSON object, the webhook body';
  if (method === 'GET') {
    const nested = Object.entries(body).find(([, v]) => typeof v === 'object' && v !== null);
    if (nested) return `has "${nested[0]}" as an object or list, but with method = GET the fields go in the query string`;
  }
  const unknown = [...new Set(placeholdersIn(body))].filter((p) => !VOIPAPPZ_PLACEHOLDERS.includes(p));
  if (unknown.length === 0) return undefined;
  return `has unknown placeholder ${unknown.map((p) => `{${p}}`).join(', ')}; placeholders are the doc's field names: ${VOIPAPPZ_PLACEHOLDERS.join(', ')}`;
}

function placeholdersIn(node: unknown): string[] {
  if (typeof node === 'string') return [...node.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
  if (typeof node === 'object' && node !== null) return Object.values(node).flatMap(placeholdersIn);
  return [];
}
