/**
 * Pure incremental ESL framer: bytes in, frames out. No sockets, no timers.
 *
 * FreeSWITCH writes a frame as `Name: value` lines ended by a blank line (bare LF, as
 * mod_event_socket writes them), then exactly `Content-Length` bytes of body if the block has that
 * header. Bytes are cut on Buffers and each piece is decoded to text once it is complete, so a
 * UTF-8 character split across chunks is never decoded in halves. Anomalies never throw: they
 * are counted in `stats` and skipped.
 *
 * The result does not depend on how the stream was chunked (fuzzed in test/05): a header block
 * longer than `maxHeaderBytes` is dropped up to the next blank line; a body longer than
 * `maxBodyBytes` is skipped by its announced length, without being buffered. Work is linear in the
 * bytes pushed however they are chunked: carried bytes live in one growing buffer, each byte is
 * copied in once and moved at most once (issue #14: a body dripped in tiny chunks was re-copied
 * whole on every push).
 */
import { parseHeaderLines, type EslFrame } from './frame.js';

export interface EslFramerOptions {
  /** Largest header block kept, in bytes (lines with their LFs, without the blank line). */
  readonly maxHeaderBytes?: number;
  /** Largest body kept, in bytes. FreeSWITCH's biggest events (HANGUP_COMPLETE) are ~20 KB. */
  readonly maxBodyBytes?: number;
  /**
   * The body cap for one frame, from its header block, instead of `maxBodyBytes` (the live client
   * lets the answer to its own `api` command be larger than any event).
   */
  readonly bodyLimit?: (headers: Readonly<Record<string, string>>) => number;
  /**
   * Stop at an oversized body instead of skipping it by its announced length: every later byte is
   * counted as skipped and nothing more is framed. For a live socket, where a wrong length would
   * swallow every later event; the client then connects afresh.
   */
  readonly stopAtOversizedBody?: boolean;
  /**
   * Stop at a header block over `maxHeaderBytes` instead of dropping it up to the next blank line.
   * For a live socket: a block that never ends has no blank line of its own, so the next one is the
   * end of the next real frame's header block, and skipping to it would drop that frame unseen.
   */
  readonly stopAtOversizedHeader?: boolean;
}

export interface EslFramerStats {
  /** Frames returned. */
  frames: number;
  /** Bytes dropped: oversized frames, a frame unfinished at `end()`. */
  skippedBytes: number;
  /** Frames dropped because a header block or a body exceeded its cap. */
  oversizedFrames: number;
  /** Of those, frames whose announced body exceeded its cap (skipped by that length). */
  oversizedBodies: number;
  /** Header lines without `: `; skipped. */
  malformedLines: number;
  /** `Content-Length` values that are not a whole number; the frame is kept without a body. */
  badContentLength: number;
}

export const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

const LF = 0x0a;
const BLANK = Buffer.from('\n\n');

type Phase =
  | { readonly kind: 'head' }
  /** Dropping an oversized header block until the next blank line. */
  | { readonly kind: 'skip-head' }
  /** Waiting for the body of a kept header block. */
  | { readonly kind: 'body'; readonly headers: Record<string, string>; readonly length: number }
  /** Dropping an oversized body: `left` bytes still to skip. */
  | { readonly kind: 'skip-body'; left: number }
  /** After an oversized body or header block with `stopAtOversized…`: nothing more is framed. */
  | { readonly kind: 'stopped' };

export class EslFramer {
  readonly maxHeaderBytes: number;
  readonly maxBodyBytes: number;
  private readonly counters: EslFramerStats = {
    frames: 0, skippedBytes: 0, oversizedFrames: 0, oversizedBodies: 0, malformedLines: 0, badContentLength: 0,
  };
  private readonly bodyLimit: ((headers: Readonly<Record<string, string>>) => number) | undefined;
  private readonly stopAtOversizedBody: boolean;
  private readonly stopAtOversizedHeader: boolean;
  private phase: Phase = { kind: 'head' };
  /**
   * Bytes carried between pushes, `store[0, restLen)`: an unfinished header block or body (or ≤ 1
   * byte while skipping). The store grows by doubling and is reused, so carrying costs no copy of
   * what is already there.
   */
  private store: Buffer = Buffer.alloc(0);
  private restLen = 0;
  /** Offset in `rest` before which no blank line can start (skip rescanning it). */
  private scanFrom = 0;

  constructor(opts: EslFramerOptions = {}) {
    this.maxHeaderBytes = positive('maxHeaderBytes', opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES);
    this.maxBodyBytes = positive('maxBodyBytes', opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
    this.bodyLimit = opts.bodyLimit;
    this.stopAtOversizedBody = opts.stopAtOversizedBody ?? false;
    this.stopAtOversizedHeader = opts.stopAtOversizedHeader ?? false;
  }

  get stats(): Readonly<EslFramerStats> {
    return this.counters;
  }

  /** Bytes held back for the next push: never more than the larger of the two caps. */
  get buffered(): number {
    return this.restLen;
  }

  /** True once an oversized body or header block stopped the framer (`stopAtOversized…`). */
  get stopped(): boolean {
    return this.phase.kind === 'stopped';
  }

  push(chunk: Buffer): EslFrame[] {
    const out: EslFrame[] = [];
    if (chunk.length === 0) return out;
    // With nothing carried, parse the chunk in place (a whole trace is never copied).
    const fromStore = this.restLen > 0;
    const data = fromStore ? this.append(chunk) : chunk;
    const hint = this.scanFrom;
    const keepFrom = this.scan(data, out, hint);
    this.keep(data, keepFrom, fromStore);
    return out;
  }

  /** End of stream: an unfinished frame is counted as skipped, never guessed at. */
  end(): EslFrame[] {
    this.counters.skippedBytes += this.restLen;
    this.store = Buffer.alloc(0);
    this.restLen = 0;
    this.scanFrom = 0;
    this.phase = { kind: 'head' };
    return [];
  }

  /** Cuts frames from `data`; returns the offset from which bytes must be carried over. */
  private scan(data: Buffer, out: EslFrame[], hint: number): number {
    const n = data.length;
    let pos = 0;
    this.scanFrom = 0;
    for (;;) {
      const phase = this.phase;
      if (phase.kind === 'stopped') {
        this.counters.skippedBytes += n - pos;
        return n;
      }
      if (phase.kind === 'skip-body') {
        const take = Math.min(phase.left, n - pos);
        phase.left -= take;
        this.counters.skippedBytes += take;
        pos += take;
        if (phase.left > 0) return n;
        this.phase = { kind: 'head' };
        continue;
      }
      if (phase.kind === 'body') {
        if (n - pos < phase.length) return pos;
        const body = data.toString('utf8', pos, pos + phase.length);
        pos += phase.length;
        this.emit(phase.headers, body, out);
        this.phase = { kind: 'head' };
        continue;
      }
      // A stray LF between frames separates nothing (FreeSWITCH sends none; be lenient).
      if (phase.kind === 'head') while (pos < n && data[pos] === LF) pos++;
      if (pos >= n) return n;
      const blank = data.indexOf(BLANK, Math.max(pos, hint));
      hint = 0;
      if (phase.kind === 'skip-head') {
        if (blank < 0) {
          // Keep the last byte: it may be the first LF of the blank line.
          const keep = Math.max(pos, n - 1);
          this.counters.skippedBytes += keep - pos;
          return keep;
        }
        this.counters.skippedBytes += blank + 2 - pos;
        pos = blank + 2;
        this.phase = { kind: 'head' };
        continue;
      }
      if (blank < 0) {
        if (n - pos > this.maxHeaderBytes) {
          this.counters.oversizedFrames++;
          this.phase = this.stopAtOversizedHeader ? { kind: 'stopped' } : { kind: 'skip-head' };
          continue;
        }
        this.scanFrom = Math.max(0, n - pos - 1);
        return pos;
      }
      if (blank + 1 - pos > this.maxHeaderBytes) {
        this.counters.oversizedFrames++;
        // Stopped whether or not its end is in this chunk: the result must not depend on chunking.
        if (this.stopAtOversizedHeader) {
          this.phase = { kind: 'stopped' };
          continue;
        }
        this.counters.skippedBytes += blank + 2 - pos;
        pos = blank + 2;
        continue;
      }
      const headers = parseHeaderLines(data.toString('utf8', pos, blank + 1), this.counters, true);
      pos = blank + 2;
      this.startBody(headers, out);
    }
  }

  /** After a header block: emit it, or wait for / skip its body. */
  private startBody(headers: Record<string, string>, out: EslFrame[]): void {
    const raw = headers['Content-Length'];
    if (raw === undefined) {
      this.emit(headers, '', out);
      return;
    }
    const length = /^\d{1,15}$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
    if (!Number.isSafeInteger(length)) {
      this.counters.badContentLength++;
      this.emit(headers, '', out);
      return;
    }
    if (length > (this.bodyLimit?.(headers) ?? this.maxBodyBytes)) {
      this.counters.oversizedFrames++;
      this.counters.oversizedBodies++;
      this.phase = this.stopAtOversizedBody ? { kind: 'stopped' } : { kind: 'skip-body', left: length };
      return;
    }
    if (length === 0) {
      this.emit(headers, '', out);
      return;
    }
    this.phase = { kind: 'body', headers, length };
  }

  private emit(headers: Record<string, string>, body: string, out: EslFrame[]): void {
    this.counters.frames++;
    out.push({ headers, body });
  }

  /** Appends a chunk to the carried bytes, doubling the store when it is full. */
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

  /** Carries `data[from…]` over to the next push; nothing moves when nothing was consumed. */
  private keep(data: Buffer, from: number, fromStore: boolean): void {
    const len = data.length - from;
    if (len === 0) {
      // A big body is gone: give its memory back.
      if (this.store.length > RETAINED_STORE_BYTES) this.store = Buffer.alloc(0);
    } else if (fromStore) {
      if (from > 0) this.store.copyWithin(0, from, data.length);
    } else {
      if (len > this.store.length) this.store = Buffer.allocUnsafe(Math.max(len, 1024));
      data.copy(this.store, 0, from);
    }
    this.restLen = len;
  }
}

/** A store larger than this is dropped once empty, not kept for the next frame. */
const RETAINED_STORE_BYTES = 256 * 1024;

function positive(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  return v;
}

/** Frames every message in a complete byte stream (a trace file). */
export function frameAll(bytes: Buffer, opts?: EslFramerOptions): { frames: EslFrame[]; stats: EslFramerStats } {
  const framer = new EslFramer(opts);
  const frames = framer.push(bytes);
  for (const f of framer.end()) frames.push(f);
  return { frames, stats: { ...framer.stats } };
}
