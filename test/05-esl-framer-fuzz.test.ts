import { readdirSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeEvent, type EslFrame } from '../src/esl/frame.js';
import { EslFramer, frameAll, type EslFramerStats } from '../src/esl/framer.js';
import { loadTrace } from './support/fakeEslServer.js';

const FIXTURES = 'test/fixtures/freeswitch';

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
function frameChunked(chunks: Buffer[], maxHeaderBytes: number, maxBodyBytes: number, live = false): { frames: EslFrame[]; stats: EslFramerStats } {
  // `live`: as the live client reads, stopping at the first oversized frame (issue #14).
  const framer = new EslFramer({ maxHeaderBytes, maxBodyBytes, ...(live ? { stopAtOversizedBody: true, stopAtOversizedHeader: true } : {}) });
  const frames: EslFrame[] = [];
  for (const chunk of chunks) {
    frames.push(...framer.push(chunk));
    expect(framer.buffered).toBeLessThanOrEqual(Math.max(maxHeaderBytes, maxBodyBytes));
  }
  frames.push(...framer.end());
  expect(framer.buffered).toBe(0);
  return { frames, stats: { ...framer.stats } };
}

/** Pieces that make the framer's branches likely: headers, separators, lengths, multi-byte text. */
const TOKENS = [
  'Content-Length: ', 'Content-Type: ', 'text/event-plain', 'text/event-json', 'auth/request', ': ', ':',
  '\n', '\n\n', '\r\n', '0', '1', '7', '12', '99999999999999999', 'x', '%', '%2', '%41', '%FF', '{', '"', 'é', '☎', '📞',
].map((t) => Buffer.from(t));
const soup = fc
  .array(fc.oneof(fc.constantFrom(...TOKENS), fc.uint8Array({ minLength: 1, maxLength: 4 }).map((a) => Buffer.from(a))), { maxLength: 300, size: 'medium' })
  .map((parts) => Buffer.concat(parts));
const anyBytes = fc.uint8Array({ maxLength: 2000, size: 'medium' }).map((a) => Buffer.from(a));
const cuts = fc.array(fc.nat(), { maxLength: 40, size: 'medium' });
const caps = fc.tuple(fc.integer({ min: 4, max: 300 }), fc.integer({ min: 1, max: 300 }));

describe('EslFramer fuzz', () => {
  it('random bytes in random chunks: no throw, bounded memory, same result as one push', () => {
    fc.assert(
      fc.property(fc.oneof(anyBytes, soup), cuts, caps, (bytes, at, [h, b]) => {
        const once = frameChunked([bytes], h, b);
        const chunked = frameChunked(split(bytes, at), h, b);
        expect(chunked.frames).toEqual(once.frames);
        expect(chunked.stats).toEqual(once.stats);
        // Decoding whatever came out never throws either.
        const s = { malformedLines: 0, undecodable: 0 };
        for (const f of once.frames) decodeEvent(f, s);
      }),
      { numRuns: 1500 },
    );
  });

  it('stopping at an oversized frame (the live client) does not depend on the chunks either', () => {
    fc.assert(
      fc.property(fc.oneof(anyBytes, soup), cuts, caps, (bytes, at, [h, b]) => {
        const once = frameChunked([bytes], h, b, true);
        expect(frameChunked(split(bytes, at), h, b, true)).toEqual(once);
        expect(frameChunked([...bytes].map((x) => Buffer.from([x])), h, b, true)).toEqual(once);
      }),
      { numRuns: 1000 },
    );
  });

  it('one byte at a time gives the same result as one push', () => {
    fc.assert(
      fc.property(soup, caps, (bytes, [h, b]) => {
        const bytewise = [...bytes].map((x) => Buffer.from([x]));
        expect(frameChunked(bytewise, h, b)).toEqual(frameChunked([bytes], h, b));
      }),
      { numRuns: 200 },
    );
  });

  it('well-formed events come back exactly (model check)', () => {
    const name = fc.stringMatching(/^[A-Za-z][A-Za-z0-9_-]{0,15}$/).filter((k) => k !== 'Content-Length' && k !== 'Event-Name');
    const value = fc.string({ unit: 'grapheme', maxLength: 20 });
    const event = fc.record({
      headers: fc.array(fc.tuple(name, value), { maxLength: 8 }),
      body: fc.string({ unit: 'grapheme', maxLength: 30 }),
    });
    fc.assert(
      fc.property(fc.array(event, { maxLength: 6 }), cuts, (events, at) => {
        const text = events
          .map((e) => {
            const lines = [['Event-Name', 'CUSTOM'], ...e.headers].map(([k, v]) => `${k}: ${encodeURIComponent(v ?? '')}\n`).join('');
            const inner = e.body ? `${lines}Content-Length: ${Buffer.byteLength(e.body)}\n\n${e.body}` : `${lines}\n`;
            return `Content-Length: ${Buffer.byteLength(inner)}\nContent-Type: text/event-plain\n\n${inner}`;
          })
          .join('');
        const got = frameChunked(split(Buffer.from(text), at), 64 * 1024, 1024 * 1024);
        const s = { malformedLines: 0, undecodable: 0 };
        const decoded = got.frames.map((f) => decodeEvent(f, s)!);
        const expected = events.map((e) => {
          const headers: Record<string, string> = { 'Event-Name': 'CUSTOM' };
          for (const [k, v] of e.headers) headers[k] ??= v;
          if (e.body) headers['Content-Length'] = String(Buffer.byteLength(e.body));
          return { headers, body: e.body };
        });
        expect(decoded.map((d) => ({ headers: { ...d.headers }, body: d.body }))).toEqual(expected);
        expect(got.stats).toMatchObject({ frames: events.length, malformedLines: 0, skippedBytes: 0 });
        expect(s).toEqual({ malformedLines: 0, undecodable: 0 });
      }),
      { numRuns: 500 },
    );
  });
});

describe('EslFramer fuzz: recorded traces split at random boundaries', () => {
  const small = readdirSync(FIXTURES).filter((f) => f.endsWith('.esl'));

  it.each(small)('%s', (name) => {
    const bytes = loadTrace(`${FIXTURES}/${name}`);
    const whole = frameAll(bytes);
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 400, size: 'large' }), (at) => {
        expect(frameChunked(split(bytes, at), 16 * 1024, 1024 * 1024)).toEqual(whole);
      }),
      { numRuns: 10 },
    );
  });

  it('load.esl.gz', () => {
    const bytes = loadTrace(`${FIXTURES}/load.esl.gz`);
    const whole = frameAll(bytes);
    fc.assert(
      fc.property(fc.array(fc.nat(), { minLength: 1000, maxLength: 5000 }), (at) => {
        expect(frameChunked(split(bytes, at), 16 * 1024, 1024 * 1024)).toEqual(whole);
      }),
      { numRuns: 3 },
    );
  });
});
