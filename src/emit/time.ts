/** Local-time formatting for schemas that want wall-clock fields; one formatter per zone, made once. */

/**
 * Zones read without Intl. ICU's date formatter, once built, keeps ~6.5 MB of the daemon's RSS for
 * its whole life (locale and zone data paged in from the node binary; README "memory", three
 * paired rounds); UTC, the default zone, needs none of it (issue #14 item 8).
 */
const UTC_ZONES: ReadonlySet<string> = new Set(['UTC', 'Etc/UTC']);

export const isUtcZone = (timezone: string): boolean => UTC_ZONES.has(timezone);

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timezone: string): Intl.DateTimeFormat {
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', {
      timeZone: timezone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timezone, f);
  }
  return f;
}

/**
 * Builds a zone's formatter ahead of the first call: ICU loads its locale and zone data on first
 * use (15–20 ms here), which would otherwise land on the first call's webhook after a start.
 */
export function prepareZone(timezone: string): void {
  if (!isUtcZone(timezone)) formatter(timezone).formatToParts(0);
}

export interface LocalTime {
  readonly year: string;
  readonly month: string;
  readonly day: string;
  readonly hour: string;
  readonly minute: string;
  readonly second: string;
}

/**
 * Intl's formatToParts is slow (µs per call) and every event of a call formats the same start
 * second again, so results are remembered per zone and second; the memo is bounded.
 */
const memo = new Map<string, LocalTime>();
const MEMO_MAX = 4096;

export function localTime(ms: number, timezone: string): LocalTime {
  const key = `${timezone}|${Math.floor(ms / 1000)}`;
  let t = memo.get(key);
  if (t === undefined) {
    t = formatLocal(ms, timezone);
    if (memo.size >= MEMO_MAX) memo.clear();
    memo.set(key, t);
  }
  return t;
}

const two = (n: number): string => (n < 10 ? `0${n}` : String(n));

/** What Intl gives for UTC (en-GB, 2-digit fields, h23), from Date's own UTC fields. */
function formatUtc(ms: number): LocalTime {
  const d = new Date(ms);
  return {
    year: String(d.getUTCFullYear()),
    month: two(d.getUTCMonth() + 1),
    day: two(d.getUTCDate()),
    hour: two(d.getUTCHours()),
    minute: two(d.getUTCMinutes()),
    second: two(d.getUTCSeconds()),
  };
}

function formatLocal(ms: number, timezone: string): LocalTime {
  if (isUtcZone(timezone)) return formatUtc(ms);
  const parts: Record<string, string> = {};
  for (const p of formatter(timezone).formatToParts(new Date(ms))) parts[p.type] = p.value;
  return {
    year: parts['year'] ?? '',
    month: parts['month'] ?? '',
    day: parts['day'] ?? '',
    hour: parts['hour'] ?? '',
    minute: parts['minute'] ?? '',
    second: parts['second'] ?? '',
  };
}

/** Whole seconds between two instants, never negative. */
export function seconds(fromMs: number, toMs: number): number {
  return Math.max(0, Math.floor((toMs - fromMs) / 1000));
}
