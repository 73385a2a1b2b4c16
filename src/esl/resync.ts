/**
 * After a reconnect the daemon asks FreeSWITCH which channels are up: `api show channels as json`
 * answers `{"row_count":N,"rows":[{"uuid":…},…]}` (just `{"row_count":0}` when there are none), or
 * `-ERR …`. This reads the Unique-IDs out of it.
 */
export type ChannelListResult =
  | { readonly ok: true; readonly channels: string[] }
  | { readonly ok: false; readonly message: string };

export const SHOW_CHANNELS = 'show channels as json';

export function channelsFromShowJson(body: string): ChannelListResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { ok: false, message: `show channels: ${body.trim().slice(0, 200) || 'empty answer'}` };
  }
  const o = parsed as { row_count?: unknown; rows?: unknown };
  const rows = Array.isArray(o.rows) ? (o.rows as Array<{ uuid?: unknown }>) : [];
  const channels = rows.map((r) => r.uuid).filter((u): u is string => typeof u === 'string' && u !== '');
  // A short list would hang up live calls: only a complete one is believed.
  if (typeof o.row_count !== 'number' || o.row_count !== channels.length) {
    return { ok: false, message: `show channels listed ${channels.length} uuids for row_count ${String(o.row_count)}` };
  }
  return { ok: true, channels };
}
