/**
 * ESL frames and the events inside them.
 *
 * A frame is what FreeSWITCH writes on the event socket: a block of `Name: value` lines ended by
 * a blank line, then `Content-Length` bytes of body when the block has that header
 * (`auth/request`, `command/reply`, `api/response`, `text/event-plain`, `text/event-json`…).
 * An event frame's body holds the event: for `text/event-plain` more `Name: value` lines with
 * URL-encoded values, a blank line, and the event's own body when its headers carry a
 * `Content-Length`; for `text/event-json` one JSON object (`_body` for the body).
 *
 * The framer produces EslFrame for replay and the live client alike, and both decode events with
 * `decodeEvent` below, so everything downstream is shared.
 */

export interface EslFrame {
  /** The frame's own header block (Content-Type, Content-Length, Reply-Text…), first value wins. */
  readonly headers: Readonly<Record<string, string>>;
  /** The Content-Length bytes after the header block, as UTF-8 text ('' when there are none). */
  readonly body: string;
}

/** One FreeSWITCH event: header names as FreeSWITCH spells them, values decoded. */
export interface EslEvent {
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/** Header accessor: "" for a missing header. */
export function header(ev: EslEvent, name: string): string {
  return ev.headers[name] ?? '';
}

/** Counts what decoding found odd; the caller owns the counters. */
export interface DecodeStats {
  /** Event lines without `: ` (skipped). */
  malformedLines: number;
  /** Event frames whose body is not a JSON object (json) or has no header (plain). */
  undecodable: number;
}

const PERCENT = 0x25;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * FreeSWITCH's URL decoding (switch_url_decode): `%XX` is one byte, anything else stays. Bytes are
 * then read as UTF-8, so a multi-byte character sent as `%C3%A9` is one character again. Never
 * throws: FreeSWITCH does not re-encode a `%` followed by two hex digits (switch_url_encode_opt),
 * so a literal "%FF" in a SIP header reaches us as is, and decodeURIComponent would throw on it.
 */
export function urlDecode(value: string): string {
  if (value.indexOf('%') < 0) return value;
  const bytes = Buffer.from(value, 'utf8');
  const out = Buffer.allocUnsafe(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === PERCENT && i + 2 < bytes.length) {
      const hi = hexValue(bytes[i + 1] ?? -1);
      const lo = hexValue(bytes[i + 2] ?? -1);
      if (hi >= 0 && lo >= 0) {
        out[n++] = hi * 16 + lo;
        i += 2;
        continue;
      }
    }
    out[n++] = b;
  }
  return out.toString('utf8', 0, n);
}

/** `Name: value` lines → record, first occurrence wins (the hold COMMAND event repeats Event-Name). */
export function parseHeaderLines(text: string, stats: { malformedLines: number } | undefined, decode: boolean): Record<string, string> {
  const headers: Record<string, string> = Object.create(null);
  let start = 0;
  while (start < text.length) {
    let nl = text.indexOf('\n', start);
    if (nl < 0) nl = text.length;
    if (nl > start) {
      const sep = text.indexOf(': ', start);
      if (sep < 0 || sep >= nl) {
        if (stats) stats.malformedLines++;
      } else {
        const name = text.slice(start, sep);
        if (headers[name] === undefined) {
          const raw = text.slice(sep + 2, nl);
          headers[name] = decode ? urlDecode(raw) : raw;
        }
      }
    }
    start = nl + 1;
  }
  return headers;
}

/** The event in a `text/event-plain` body: headers, blank line, then Content-Length bytes of body. */
function decodePlain(text: string, stats: DecodeStats): EslEvent | undefined {
  const end = text.indexOf('\n\n');
  const head = end < 0 ? text : text.slice(0, end);
  const headers = parseHeaderLines(head, stats, true);
  if (headers['Event-Name'] === undefined) {
    stats.undecodable++;
    return undefined;
  }
  let body = '';
  const len = Number(headers['Content-Length']);
  if (end >= 0 && Number.isInteger(len) && len > 0) {
    // Content-Length counts bytes, not characters.
    body = Buffer.from(text.slice(end + 2), 'utf8').subarray(0, len).toString('utf8');
  }
  return { headers, body };
}

/** A JSON array value is a FreeSWITCH array header; plain writes it as `ARRAY::a|:b`. */
function jsonValue(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return `ARRAY::${v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join('|:')}`;
  return typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v) ?? '';
}

/**
 * The event in a `text/event-json` body. JSON.parse keeps the last of a repeated key, unlike the
 * plain format's first-wins; only the hold COMMAND event repeats a key, and nothing reads it.
 */
function decodeJson(text: string, stats: DecodeStats): EslEvent | undefined {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch {
    stats.undecodable++;
    return undefined;
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    stats.undecodable++;
    return undefined;
  }
  const headers: Record<string, string> = Object.create(null);
  let body = '';
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    if (k === '_body') body = jsonValue(v);
    else headers[k] = jsonValue(v);
  }
  if (headers['Event-Name'] === undefined) {
    stats.undecodable++;
    return undefined;
  }
  return { headers, body };
}

/** The event an event frame carries; undefined for replies, auth requests, logs and odd bodies. */
export function decodeEvent(frame: EslFrame, stats: DecodeStats): EslEvent | undefined {
  const type = frame.headers['Content-Type'];
  if (type === 'text/event-plain') return decodePlain(frame.body, stats);
  if (type === 'text/event-json') return decodeJson(frame.body, stats);
  return undefined;
}

export function isEventFrame(frame: EslFrame): boolean {
  const type = frame.headers['Content-Type'];
  return type === 'text/event-plain' || type === 'text/event-json';
}
