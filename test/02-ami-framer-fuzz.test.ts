import { readdirSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AmiFrame } from '../src/ami/frame.js';
import { AmiFramer, frameAll, type AmiFramerOptions, type AmiFramerStats } from '../src/ami/framer.js';
import { wantsAmiEvent } from '../src/ami/normalise.js';
import { loadTrace } from './support/fakeAmiServer.js';

const FIXTURES = 'test/fixtures/asterisk';

/** Cuts `bytes` at the given positions (any naturals; taken modulo the length). */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, bytes.length]) {
    chunks.push(bytes.subarray(prev, c));
    prev = c;
  }
  return chunks;
}

/** Pushes the chunks, checking the memory bound after each push. */
function frameChunked(chunks: Buffer[], maxFrameBytes: number, opts: AmiFramerOptions = {}): { frames: AmiFrame[]; stats: AmiFramerStats } {
  const framer = new AmiFramer({ ...opts, maxFrameBytes });
  const frames: AmiFrame[] = [];
  for (const chunk of chunks) {
    frames.push(...framer.push(chunk));
    // Required: cap + one chunk. The framer does better: at most cap + 1 (an unfinished frame
    // of cap bytes plus the CR that may start its blank line).
    expect(framer.buffered).toBeLessThanOrEqual(maxFrameBytes + 1);
  }
  frames.push(...framer.end());
  expect(framer.buffered).toBe(0);
  return { frames, stats: { ...framer.stats } };
}

/** Pieces that make the framer's branches likely: keys, separators, markers, multi-byte text. */
const TOKENS = [
  'Event', 'Variable', 'ChanVariable', 'Response', ': ', ':', '=', ' ', 'x', 'Follows',
  '\r\n', '\n', '\r', '\r\n\r\n', '\n\n', '--END COMMAND--', '--END SMS EVENT--',
  'Asterisk Call Manager/11.0.0', 'Response: Follows\r\n', 'é', '☎', '📞',
].map((t) => Buffer.from(t));
const soup = fc
  .array(fc.oneof(fc.constantFrom(...TOKENS), fc.uint8Array({ minLength: 1, maxLength: 4 }).map((a) => Buffer.from(a))), { maxLength: 300, size: 'medium' })
  .map((parts) => Buffer.concat(parts));
// fast-check keeps arrays short (≤ 10) unless asked for a larger size.
const anyBytes = fc.uint8Array({ maxLength: 2000, size: 'medium' }).map((a) => Buffer.from(a));
const cuts = fc.array(fc.nat(), { maxLength: 40, size: 'medium' });
const cap = fc.integer({ min: 8, max: 300 });

describe('AmiFramer fuzz', () => {
  it('random bytes in random chunks: no throw, bounded memory, same result as one push', () => {
    fc.assert(
      fc.property(fc.oneof(anyBytes, soup), cuts, cap, (bytes, at, max) => {
        const once = frameChunked([bytes], max);
        const chunked = frameChunked(split(bytes, at), max);
        expect(chunked.frames).toEqual(once.frames);
        expect(chunked.stats).toEqual(once.stats);
      }),
      { numRuns: 1500 },
    );
  });

  it('one byte at a time gives the same result as one push', () => {
    fc.assert(
      fc.property(soup, cap, (bytes, max) => {
        const bytewise = [...bytes].map((b) => Buffer.from([b]));
        expect(frameChunked(bytewise, max)).toEqual(frameChunked([bytes], max));
      }),
      { numRuns: 200 },
    );
  });

  it('well-formed messages come back exactly (model check)', () => {
    const key = fc.stringMatching(/^[A-Za-z][A-Za-z0-9]{0,11}$/).filter((k) => !/^(chan)?variable$/i.test(k));
    const value = fc.string({ unit: 'grapheme', maxLength: 20 }).filter((v) => !/[\r\n]/.test(v));
    const line = fc.oneof(
      fc.tuple(key, value).map(([k, v]) => ({ kind: 'field' as const, k, v })),
      fc.tuple(fc.constantFrom('Variable', 'ChanVariable'), fc.stringMatching(/^[A-Z_]{1,8}$/), value)
        .map(([k, name, v]) => ({ kind: 'var' as const, k, name, v })),
    );
    const message = fc.array(line, { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(fc.array(message, { maxLength: 6 }), fc.constantFrom('\r\n', '\n'), cuts, (messages, eol, at) => {
        const text = messages
          .map((m) => m.map((l) => (l.kind === 'field' ? `${l.k}: ${l.v}` : `${l.k}: ${l.name}=${l.v}`)).join(eol) + eol + eol)
          .join('');
        const expected = messages.map((m) => {
          const fields: Record<string, string> = {};
          const vars: Record<string, string> = {};
          for (const l of m) {
            if (l.kind === 'field') fields[l.k.toLowerCase()] ??= l.v;
            else vars[l.name] ??= l.v;
          }
          return Object.keys(vars).length > 0 ? { fields, vars } : { fields };
        });
        const got = frameChunked(split(Buffer.from(text), at), 64 * 1024);
        expect(got.frames).toEqual(expected);
        expect(got.stats).toMatchObject({ frames: messages.length, malformedLines: 0, skippedBytes: 0 });
      }),
      { numRuns: 500 },
    );
  });
});

describe('AmiFramer fuzz: recorded traces split at random boundaries', () => {
  const small = readdirSync(FIXTURES).filter((f) => f.endsWith('.ami'));

  it.each(small)('%s', (name) => {
    const bytes = loadTrace(`${FIXTURES}/${name}`);
    const whole = frameAll(bytes);
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 400, size: 'large' }), (at) => {
        expect(frameChunked(split(bytes, at), 64 * 1024)).toEqual(whole);
      }),
      { numRuns: 25 },
    );
  });

  it('load.ami.gz', () => {
    const bytes = loadTrace(`${FIXTURES}/load.ami.gz`);
    const whole = frameAll(bytes);
    fc.assert(
      fc.property(fc.array(fc.nat(), { minLength: 1000, maxLength: 5000 }), (at) => {
        expect(frameChunked(split(bytes, at), 64 * 1024)).toEqual(whole);
      }),
      { numRuns: 3 },
    );
  });
});

// Issue #15: a push carrying a remainder is framed in two parts (the carried frame's end, then the
// rest in place), and replay's filter reads event names and VarSet variables from the raw bytes.
describe('AmiFramer fuzz: replay\'s filter, random chunks', () => {
  const FILTER_TOKENS = [
    'Event: VarSet\r\n', 'Event: CEL\r\n', 'Event: Newchannel\r\n', 'Variable: MIXMONITOR_FILENAME', 'Variable: QUEUESTATUS',
    'Variable: QUEUESTATUSX', 'Value: TIMEOUT', 'EventName: STREAM_BEGIN', 'Application: VoiceMail', 'Event: ', 'VarSet',
    '\r\n', '\n', '\r', '\r\n\r\n', '\n\n', ': ', 'x', 'é',
  ].map((t) => Buffer.from(t));
  const frames = fc
    .array(fc.oneof(fc.constantFrom(...FILTER_TOKENS), fc.uint8Array({ minLength: 1, maxLength: 3 }).map((a) => Buffer.from(a))), { maxLength: 300, size: 'medium' })
    .map((parts) => Buffer.concat(parts));
  const filter = { filter: wantsAmiEvent };

  it('token soup: the same frames and counts in any chunking as in one push', () => {
    fc.assert(
      fc.property(frames, cuts, cap, (bytes, at, max) => {
        const whole = frameAll(bytes, { ...filter, maxFrameBytes: max });
        expect(frameChunked(split(bytes, at), max, filter)).toEqual(whole);
      }),
      { numRuns: 500 },
    );
  });

  it('load.ami.gz: the same frames and counts in any chunking as in one push', () => {
    const bytes = loadTrace(`${FIXTURES}/load.ami.gz`);
    const whole = frameAll(bytes, filter);
    expect(whole.stats.filtered).toBeGreaterThan(whole.stats.frames);
    fc.assert(
      fc.property(fc.array(fc.nat(), { minLength: 100, maxLength: 2000 }), (at) => {
        expect(frameChunked(split(bytes, at), 64 * 1024, filter)).toEqual(whole);
      }),
      { numRuns: 3 },
    );
  });
});
