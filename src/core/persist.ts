/**
 * Live calls across a restart (issue #14 item 2): a call and its channels as one JSON text, saved
 * with the outbox at each commit and read back at start. Pure, as the rest of the core: the daemon
 * does the writing. The model's optional values are `undefined`, which JSON would drop (and with
 * them the keys' order, which payloads follow); they travel as `null`, which the model never uses.
 */
import type { Call, Channel } from './model.js';

/** A call and its channels. */
export interface CallRecord {
  readonly call: Call;
  readonly channels: readonly Channel[];
}

/**
 * Bumped whenever Call or Channel change shape: a record of another version is not read (its call
 * is lost, as every live call was before issue #14) rather than misread.
 */
export const CALL_RECORD_VERSION = 1;

export function encodeCall(r: CallRecord): string {
  return encodeJson({ v: CALL_RECORD_VERSION, ...r });
}

/** JSON with `undefined` kept (as `null`): see `undefinedForNull`. */
export function encodeJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (v === undefined ? null : v));
}

/** The record, or undefined when it is of another version or not one at all. */
export function decodeCall(text: string): CallRecord | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const r = parsed as { v?: unknown; call?: unknown; channels?: unknown } | null;
  if (r === null || typeof r !== 'object' || r.v !== CALL_RECORD_VERSION || typeof r.call !== 'object' || !Array.isArray(r.channels)) return undefined;
  return { call: undefinedForNull(r.call) as Call, channels: undefinedForNull(r.channels) as Channel[] };
}

/** `null` back to `undefined`, in place, keys kept in their order. */
export function undefinedForNull(v: unknown): unknown {
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = v[i] === null ? undefined : undefinedForNull(v[i]);
  } else if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) o[k] = o[k] === null ? undefined : undefinedForNull(o[k]);
  }
  return v;
}
