/**
 * Pure incremental AMI framer: bytes in, frames out. No sockets, no timers.
 *
 * A message is a run of `Key: value` lines ended by a blank line (CRLF or bare LF). The framer
 * works on Buffers, cuts messages with `Buffer#indexOf` and reads each complete message in place,
 * decoding only the values it keeps, so a UTF-8 character split across chunks is never decoded in
 * halves.
 * Anomalies never throw: they are counted in `stats` and skipped.
 *
 * The result does not depend on how the stream was chunked (fuzzed in test/02): a frame is
 * dropped as oversized iff its own bytes exceed `maxFrameBytes`, wherever the chunks fall, and
 * the framer then resumes after the first blank line following the frame's start (for an
 * oversized `Response: Follows`, that may be a blank line inside its output).
 */
import type { AmiFrame } from './frame.js';
import { ByteTable, HASH_START, hashStep } from './byte-table.js';
import { EventNames } from './event-names.js';
import { FEW_VALUED_AMI_KEYS } from './fields.js';

export interface AmiFramerOptions {
  /** Largest frame kept, in bytes (lines and their line ends, without the blank line). */
  readonly maxFrameBytes?: number;
  /**
   * Decides from the event name and the raw bytes whether an `Event:` frame is worth parsing.
   * Replay skips the noise (VarSet, CEL, RTCP…) this way without building its fields: a pipeline
   * that only looks at what it needs beats parsing everything (issue #7).
   */
  readonly filter?: AmiEventFilter;
  /**
   * Lower-case keys whose values to build (`src/ami/fields.ts`: what pbxhook reads); the other
   * lines are stepped over, their values never decoded. Default: every key. A FreePBX dialplan
   * step is 20 lines of which the model reads 7: decoding the rest was most of the live daemon's
   * framing time (issue #15).
   */
  readonly keys?: ReadonlySet<string>;
}

/** `(name, bytes, start, end)`: the frame is `bytes[start, end)`; false = skip it, counted. */
export type AmiEventFilter = (event: string, bytes: Buffer, start: number, end: number) => boolean;

export interface AmiFramerStats {
  /** Frames returned. */
  frames: number;
  /** `Asterisk Call Manager/x.y.z` greetings seen (one per connection). */
  bannerLines: number;
  /** Bytes dropped: oversized frames, and an unfinished line or frame at `end()`. */
  skippedBytes: number;
  /** Frames dropped because they exceeded `maxFrameBytes`. */
  oversizedFrames: number;
  /** Lines without a `Key:` (or with an empty key) inside a frame; skipped. */
  malformedLines: number;
  /** Event frames the filter turned away unparsed. */
  filtered: number;
}

export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024;

const LF = 0x0a;
const CR = 0x0d;
/** A blank line is an LF followed by an empty line: `\n\r\n` or `\n\n`. */
const BLANK_CRLF = Buffer.from('\n\r\n');
const BLANK_LF = Buffer.from('\n\n');
const BANNER = 'Asterisk Call Manager';
const BANNER_BYTES = Buffer.from(BANNER);
const EVENT_PREFIX = Buffer.from('Event: ');
/** `Response: Follows` output ends at these lines (the same two asterisk-manager knows). */
const END_MARKERS = ['--END COMMAND--', '--END SMS EVENT--'];
const END_MARKER_BYTES = END_MARKERS.map((m) => Buffer.from(m));

export class AmiFramer {
  readonly maxFrameBytes: number;
  private readonly counters: AmiFramerStats = {
    frames: 0, bannerLines: 0, skippedBytes: 0, oversizedFrames: 0, malformedLines: 0, filtered: 0,
  };
  private readonly filter: AmiEventFilter | undefined;
  private readonly keys: KeyTable;
  /** Values of FEW_VALUED_AMI_KEYS by their bytes. */
  private readonly fewValues = new ByteTable((raw) => Buffer.from(raw, 'latin1').toString('utf8'));
  /** Event names by their bytes: the filter gets the name without a string cut per frame. */
  private readonly eventNames = new EventNames();
  /** Bytes carried between pushes: an unfinished frame (≤ max + 1) or, while discarding, ≤ 2. */
  private store = Buffer.alloc(0);
  private restLen = 0;
  /** Dropping an oversized frame until the next blank line. */
  private discarding = false;
  /** Offset in the carried bytes before which no blank line can start (skip rescanning it). */
  private resumeScan = 0;

  constructor(opts: AmiFramerOptions = {}) {
    const max = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxFrameBytes must be a positive integer, got ${max}`);
    this.maxFrameBytes = max;
    this.filter = opts.filter;
    this.keys = new KeyTable(opts.keys);
  }

  get stats(): Readonly<AmiFramerStats> {
    return this.counters;
  }

  /** Bytes held back for the next push; never more than `maxFrameBytes + 1` between calls. */
  get buffered(): number {
    return this.restLen;
  }

  push(chunk: Buffer): AmiFrame[] {
    const out: AmiFrame[] = [];
    if (chunk.length === 0) return out;
    if (this.restLen > 0) {
      // Only the carried frame's end joins it in the store, not the whole chunk: most chunks end
      // mid-frame, and copying each 64–256 KB chunk once more was a tenth of the framer's time
      // (issue #15). Pushing a chunk in two parts frames the same (test/02 fuzzes every split).
      const cut = endOfFirstBlank(chunk);
      if (cut > 0 && cut < chunk.length) {
        this.pushPart(chunk.subarray(0, cut), out);
        this.pushPart(chunk.subarray(cut), out);
        return out;
      }
    }
    this.pushPart(chunk, out);
    return out;
  }

  private pushPart(chunk: Buffer, out: AmiFrame[]): void {
    // With nothing carried, parse the chunk in place (a whole 8 MB trace is never copied).
    const fromStore = this.restLen > 0;
    const data = fromStore ? this.append(chunk) : chunk;
    const keepFrom = this.scan(data, out);
    this.keep(data, keepFrom, fromStore);
  }

  /** End of stream: it ends the unfinished frame; an unfinished last line is dropped. */
  end(): AmiFrame[] {
    const out: AmiFrame[] = [];
    const data = this.store.subarray(0, this.restLen);
    if (this.discarding) {
      this.counters.skippedBytes += data.length;
    } else if (data.length > 0) {
      const lastLf = data.lastIndexOf(LF);
      this.counters.skippedBytes += data.length - (lastLf + 1);
      if (lastLf > 0) this.emitRegion(data, 0, lastLf, out);
    }
    this.restLen = 0;
    this.discarding = false;
    this.resumeScan = 0;
    this.store = Buffer.alloc(0);
    return out;
  }

  /** Cuts frames from `data`; returns the offset from which bytes must be carried over. */
  private scan(data: Buffer, out: AmiFrame[]): number {
    const n = data.length;
    const blanks = new BlankFinder(data);
    let hint = this.resumeScan;
    this.resumeScan = 0;
    let pos = 0;
    for (;;) {
      if (this.discarding) {
        const lf = blanks.next(pos);
        if (lf < 0) {
          // Keep 2 bytes: a blank line may start in them and end in the next chunk.
          const keep = Math.max(pos, n - 2);
          this.counters.skippedBytes += keep - pos;
          return keep;
        }
        this.counters.skippedBytes += lf + 1 - pos;
        pos = afterBlank(data, lf);
        this.discarding = false;
        continue;
      }
      pos = skipBlankLines(data, pos);
      if (pos >= n) return n;
      if (pos === n - 1 && data[pos] === CR) return pos; // maybe the start of a blank line
      let lf = blanks.next(Math.max(pos, hint));
      hint = 0;
      let follows = false;
      if (lf >= 0 && startsFollows(data, pos, lf)) {
        follows = true;
        lf = followsEnd(data, pos, blanks);
      }
      if (lf < 0) {
        // Unfinished: the frame will be at least (carried − 1) bytes, so drop it now if too big.
        if (n - pos > this.maxFrameBytes + 1) {
          this.startDiscard();
          continue;
        }
        this.resumeScan = follows ? 0 : Math.max(0, n - pos - 2);
        return pos;
      }
      if (lf + 1 - pos > this.maxFrameBytes) {
        this.startDiscard();
        continue;
      }
      if (this.filter !== undefined && this.turnedAway(data, pos, lf)) this.counters.filtered++;
      else this.emitRegion(data, pos, lf, out);
      pos = afterBlank(data, lf);
    }
  }

  /**
   * True when the frame is an event the filter does not want. Runs for every frame, so the prefix
   * and the first line's end are found byte by byte in JS: a native call costs more than the ~20
   * bytes it would scan (issue #15: fewer native calls per frame).
   */
  private turnedAway(data: Buffer, pos: number, lf: number): boolean {
    if (!startsWithEvent(data, pos, lf)) return false;
    const from = pos + EVENT_PREFIX.length;
    let eol = from;
    while (eol < lf && data[eol] !== LF) eol++;
    const end = data[eol - 1] === CR ? eol - 1 : eol;
    return !this.filter!(this.eventNames.nameOf(data, from, end), data, pos, lf);
  }

  private startDiscard(): void {
    this.counters.oversizedFrames++;
    this.discarding = true;
  }

  /** Parses the lines in data[start, lf) (lf = the last line's LF) and emits a frame if any. */
  private emitRegion(data: Buffer, start: number, lf: number, out: AmiFrame[]): void {
    if (lf + 1 - start > this.maxFrameBytes) {
      this.counters.oversizedFrames++;
      this.counters.skippedBytes += lf + 1 - start;
      return;
    }
    const frame = startsFollows(data, start, lf)
      ? parseFollowsText(data.toString('utf8', start, lf), this.counters)
      : parseLines(data, start, lf, this.counters, this.keys, this.fewValues);
    if (frame === null) return;
    this.counters.frames++;
    out.push(frame);
  }

  private append(chunk: Buffer): Buffer {
    const need = this.restLen + chunk.length;
    if (need > this.store.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.store.length * 2, 1024));
      this.store.copy(grown, 0, 0, this.restLen);
      this.store = grown;
    }
    chunk.copy(this.store, this.restLen);
    return this.store.subarray(0, need);
  }

  private keep(data: Buffer, from: number, fromStore: boolean): void {
    const len = data.length - from;
    // A big chunk appended to a remainder grows the store; give that memory back afterwards.
    const roomy = 4 * (this.maxFrameBytes + 2);
    if (fromStore && this.store.length <= roomy) {
      // Nothing consumed: the carried bytes stay where they are (a frame dripped in tiny chunks
      // would otherwise be moved once per chunk: quadratic).
      if (from > 0) this.store.copyWithin(0, from, data.length);
    } else if (!fromStore && len <= this.store.length && this.store.length <= roomy) {
      data.copy(this.store, 0, from);
    } else if (len > 0) {
      const next = Buffer.allocUnsafe(Math.max(len, Math.min(1024, roomy)));
      data.copy(next, 0, from);
      this.store = next;
    } else {
      this.store = Buffer.alloc(0);
    }
    this.restLen = len;
  }
}

/** Frames every message in a complete byte stream (a trace file). */
export function frameAll(bytes: Buffer, opts?: AmiFramerOptions): { frames: AmiFrame[]; stats: AmiFramerStats } {
  const framer = new AmiFramer(opts);
  const frames = framer.push(bytes);
  for (const f of framer.end()) frames.push(f);
  return { frames, stats: { ...framer.stats } };
}

/**
 * Finds blank lines in one buffer. It remembers where it searched, so repeated calls with a
 * growing `from` stay linear even when one of the two patterns never occurs.
 */
class BlankFinder {
  private crlfAt = -1;
  private crlfFrom = Infinity;
  private lfAt = -1;
  private lfFrom = Infinity;

  constructor(private readonly buf: Buffer) {}

  /** The LF ending the last line before the first blank line at or after `from`, or -1. */
  next(from: number): number {
    if (!(this.crlfFrom <= from && (this.crlfAt < 0 || this.crlfAt >= from))) {
      this.crlfAt = this.buf.indexOf(BLANK_CRLF, from);
      this.crlfFrom = from;
    }
    if (!(this.lfFrom <= from && (this.lfAt < 0 || this.lfAt >= from))) {
      this.lfAt = this.buf.indexOf(BLANK_LF, from);
      this.lfFrom = from;
    }
    const a = this.crlfAt;
    const b = this.lfAt;
    return a < 0 ? b : b < 0 ? a : Math.min(a, b);
  }
}

/** Offset just past the first blank line's end in `chunk`, or 0 when it holds none. */
function endOfFirstBlank(chunk: Buffer): number {
  const crlf = chunk.indexOf(BLANK_CRLF);
  // `\n\n` only where it comes first: LF-only traces, or an empty line in odd input.
  const lf = crlf < 0 ? chunk.indexOf(BLANK_LF) : chunk.subarray(0, crlf + 2).indexOf(BLANK_LF);
  if (lf >= 0) return lf + 2;
  return crlf < 0 ? 0 : crlf + 3;
}

/** `Event: ` at `pos`, within the frame that ends at `lf`. */
function startsWithEvent(data: Buffer, pos: number, lf: number): boolean {
  if (pos + EVENT_PREFIX.length > lf) return false;
  for (let i = 0; i < EVENT_PREFIX.length; i++) if (data[pos + i] !== EVENT_PREFIX[i]) return false;
  return true;
}

function afterBlank(data: Buffer, lf: number): number {
  return data[lf + 1] === LF ? lf + 2 : lf + 3;
}

/** Blank lines between messages separate nothing; step over them. */
function skipBlankLines(data: Buffer, pos: number): number {
  const n = data.length;
  while (pos < n) {
    if (data[pos] === LF) pos += 1;
    else if (data[pos] === CR && data[pos + 1] === LF) pos += 2;
    else break;
  }
  return pos;
}

/**
 * `Response: Follows` (legacy Command output) may hold blank lines; it ends at the first blank
 * line after `--END COMMAND--`. Same test as asterisk-manager: the first line (after a
 * banner) starts with `response:` and contains `follow`, ignoring case.
 */
function startsFollows(data: Buffer, pos: number, lastLf: number): boolean {
  if (data[pos] === 0x41 /* A */ && isBanner(data, pos)) {
    pos = data.indexOf(LF, pos) + 1;
    if (pos > lastLf) return false;
  }
  // R or r, before any native call: every event frame is turned away here.
  if (data[pos] !== 0x52 && data[pos] !== 0x72) return false;
  const line = data.toString('latin1', pos, data.indexOf(LF, pos)).toLowerCase();
  return line.startsWith('response:') && line.includes('follow');
}

function isBanner(data: Buffer, pos: number): boolean {
  const end = pos + BANNER_BYTES.length;
  return end <= data.length && data.compare(BANNER_BYTES, 0, BANNER_BYTES.length, pos, end) === 0;
}

/** LF before the blank line that follows the first line ending in an END marker, or -1. */
function followsEnd(data: Buffer, pos: number, blanks: BlankFinder): number {
  const n = data.length;
  let from = pos;
  for (;;) {
    let at = -1;
    let len = 0;
    for (const m of END_MARKER_BYTES) {
      const i = data.indexOf(m, from);
      if (i >= 0 && (at < 0 || i < at)) {
        at = i;
        len = m.length;
      }
    }
    if (at < 0) return -1;
    const after = at + len;
    if (after >= n || (data[after] === CR && after + 1 >= n)) return -1; // line not finished yet
    if (data[after] === LF || (data[after] === CR && data[after + 1] === LF)) return blanks.next(after);
    from = at + 1; // the marker is not at the end of its line: output text, keep looking
  }
}

const SPACE = 0x20;
const COLON = 0x3a;
const EQUALS = 0x3d;

/**
 * `Key: value` lines in `data[start, lf)` → frame; null for a frame with no key line (banner,
 * garbage). Read from the bytes in place: the message is never decoded as a whole, a line's key is
 * found by its bytes in a per-framer table (KeyTable) that also says whether its value is wanted,
 * and only wanted values are decoded, each into a string of its own, so that none holds its
 * message alive while a live call keeps it for hours (issue #14 item 8). Decoding every message
 * whole, then slicing its keys, was a tenth of the live daemon's CPU and most of its garbage at
 * 300 FreePBX calls/s (issue #15). Lines end at LF; key, value and `=` boundaries are ASCII bytes,
 * which UTF-8 never uses inside a character, so a value decodes as it would inside its message.
 */
function parseLines(data: Buffer, start: number, lf: number, counters: AmiFramerStats, keys: KeyTable, fewValues: ByteTable<string>): AmiFrame | null {
  const fields: Record<string, string> = Object.create(null);
  let vars: Record<string, string> | undefined;
  let count = 0;
  let pos = start;
  if (data[pos] === 0x41 /* A */ && isBanner(data, pos)) {
    counters.bannerLines++;
    pos = lineEnd(data, pos, lf) + 1;
  }
  while (pos < lf) {
    // The key is hashed as it is read, for its look-up in `keys`.
    let colon = pos;
    let h = HASH_START;
    for (let b = data[colon]; colon < lf && b !== COLON && b !== LF; b = data[++colon]) h = hashStep(h, b!);
    const keyed = colon < lf && data[colon] === COLON;
    const nl = keyed ? lineEnd(data, colon + 1, lf) : colon;
    const end = nl > pos && data[nl - 1] === CR ? nl - 1 : nl;
    const key = keyed ? keys.hashed(data, pos, colon, h) : undefined;
    if (key === undefined || key.name === '') {
      if (end > pos) counters.malformedLines++;
    } else {
      count++;
      if (key.wanted) {
        // "There is always exactly one space after the colon" (Asterisk's manager.h); more
        // spaces belong to the value (RTCP reports), none is tolerated.
        const from = data[colon + 1] === SPACE && colon + 1 < end ? colon + 2 : colon + 1;
        let eq = -1;
        if (key.holdsVars) for (let i = from; i < end && eq < 0; i++) if (data[i] === EQUALS) eq = i;
        if (eq >= 0) {
          vars ??= Object.create(null) as Record<string, string>;
          const name = decode(data, from, eq);
          if (vars[name] === undefined) vars[name] = decode(data, eq + 1, end);
        } else if (fields[key.name] === undefined) {
          fields[key.name] = key.fewValued ? fewValues.get(data, from, end) : decode(data, from, end);
        }
      }
    }
    pos = nl + 1;
  }
  if (count === 0) return null;
  return vars ? { fields, vars } : { fields };
}

/** Node's own decoder, `Buffer#toString('utf8', …)` without its argument checks (~a tenth of the framing time, issue #15). */
interface Utf8Slicing {
  utf8Slice(start: number, end: number): string;
}

/** `data[from, to)` as UTF-8 text (from ≤ to, both within `data`). */
function decode(data: Buffer, from: number, to: number): string {
  return (data as Buffer & Utf8Slicing).utf8Slice(from, to);
}

/** The LF ending the line that holds `from`, or `lf` for the frame's last line. */
function lineEnd(data: Buffer, from: number, lf: number): number {
  while (from < lf && data[from] !== LF) from++;
  return from;
}

interface Key {
  /** Trimmed, lower-case; '' for a key of spaces only (a malformed line). */
  readonly name: string;
  /** Its value is built (AmiFramerOptions.keys). */
  readonly wanted: boolean;
  /** `Variable:`/`ChanVariable:` lines of the form `name=value` go to `vars`. */
  readonly holdsVars: boolean;
  /** One of FEW_VALUED_AMI_KEYS: its values are kept by their bytes. */
  readonly fewValued: boolean;
}

/**
 * Raw key bytes → key: decoded, trimmed and lower-cased once, and whether its value is wanted.
 * AMI uses a few hundred distinct keys; the table's bound (byte-table.ts) caps it on garbage.
 */
class KeyTable extends ByteTable<Key> {
  constructor(wanted: ReadonlySet<string> | undefined) {
    super((raw) => {
      const name = Buffer.from(raw, 'latin1').toString('utf8').trim().toLowerCase();
      return {
        name,
        wanted: wanted === undefined || wanted.has(name),
        holdsVars: name === 'variable' || name === 'chanvariable',
        fewValued: FEW_VALUED_AMI_KEYS.has(name),
      };
    }, 4096);
  }
}

/** Splits a `Response: Follows` message at its END line and parses it. */
function parseFollowsText(text: string, counters: AmiFramerStats): AmiFrame {
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines[0]?.startsWith(BANNER)) {
    counters.bannerLines++;
    lines.shift();
  }
  const body: string[] = [];
  for (const line of lines) {
    const marker = END_MARKERS.find((m) => line.endsWith(m));
    if (marker === undefined) {
      body.push(line);
      continue;
    }
    const prefix = line.slice(0, line.length - marker.length);
    if (prefix !== '') body.push(prefix);
    break;
  }
  return { fields: parseFollowsLines(body) };
}

/** A header key of a Follows response: `Privilege`, `ActionID`… (output lines rarely are). */
const HEADER_KEY = /^[A-Za-z][A-Za-z0-9_-]*$/;

/**
 * The lines of a `Response: Follows` message (without the END line) → fields: the leading
 * `Key: value` headers, then everything else joined with `\n` as `output`. Shared with
 * fromManagerEvent, which gets the same lines from asterisk-manager's `content`.
 */
export function parseFollowsLines(lines: readonly string[]): Record<string, string> {
  const fields: Record<string, string> = Object.create(null);
  let i = 0;
  for (; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const colon = line.indexOf(':');
    const key = colon > 0 ? line.slice(0, colon) : '';
    if (!HEADER_KEY.test(key)) break;
    const lower = key.toLowerCase();
    if (fields[lower] === undefined) fields[lower] = line.slice(line.charCodeAt(colon + 1) === 32 ? colon + 2 : colon + 1);
  }
  if (fields.output === undefined) fields.output = lines.slice(i).join('\n');
  return fields;
}
