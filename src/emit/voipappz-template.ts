/**
 * The VoipAppz webhook "Body": a JSON template an admin edits to pick and rename fields
 * (voipappz-webhooks.txt: "Body - Here the JSON text is created"). Placeholder syntax:
 * - a string value that is exactly `"{field}"` becomes the field's typed value: a number stays a
 *   number, null stays null (`"duration": "{duration}"` → `"duration": 60`);
 * - `{field}` inside a longer string is replaced by the value as text, null as "" (`"Call {uuid}"`);
 * - keys, numbers, booleans and other text are sent as written.
 * Unknown `{names}` are rejected at start-up (src/config/endpoints.ts), so a typo never reaches a CRM.
 */
import { VOIPAPPZ_FIELDS } from '../config/types.js';

export { VOIPAPPZ_FIELDS };

export type VoipAppzField = (typeof VOIPAPPZ_FIELDS)[number];
export type FieldValue = string | number | null;
export type FieldValues = Readonly<Record<VoipAppzField, FieldValue>>;

/** The doc's full body, each field under its own name: what a webhook without `body_file` sends. */
export const DEFAULT_BODY_TEMPLATE = `{\n${VOIPAPPZ_FIELDS.map((f) => `  "${f}": "{${f}}"`).join(',\n')}\n}\n`;

type Json = string | number | boolean | null | readonly Json[] | { readonly [key: string]: Json };

const WHOLE = /^\{([a-z_]+)\}$/;
const EMBEDDED = /\{([a-z_]+)\}/g;

/** Parsed once per template text: the config is fixed at start-up, events are many. */
const parsed = new Map<string, Json>();

function parse(template: string): Json {
  let t = parsed.get(template);
  if (t === undefined) {
    t = JSON.parse(template) as Json; // validated at start-up
    parsed.set(template, t);
  }
  return t;
}

const isField = (name: string, values: FieldValues): name is VoipAppzField => Object.hasOwn(values, name);

function fill(node: Json, values: FieldValues): Json {
  if (typeof node === 'string') {
    const whole = WHOLE.exec(node)?.[1];
    if (whole !== undefined && isField(whole, values)) return values[whole];
    return node.replace(EMBEDDED, (m, name: string) => (isField(name, values) ? String(values[name] ?? '') : m));
  }
  if (Array.isArray(node)) return node.map((n: Json) => fill(n, values));
  if (node !== null && typeof node === 'object') {
    return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, fill(v, values)]));
  }
  return node;
}

/** The body with every placeholder filled. */
export function fillTemplate(template: string, values: FieldValues): Json {
  return fill(parse(template), values);
}

/**
 * The body's fields as a query string, for webhooks with Method GET (the doc's "Method Type").
 * null is sent empty (`contact_number=`); a nested value, which start-up refuses for GET, as JSON.
 */
export function queryString(body: Json): string {
  const q = new URLSearchParams();
  if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
    for (const [k, v] of Object.entries(body as Record<string, Json>)) {
      q.append(k, v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
    }
  }
  return q.toString();
}
