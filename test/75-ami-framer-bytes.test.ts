import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FEW_VALUED_AMI_KEYS, READ_AMI_KEYS } from '../src/ami/fields.js';
import type { AmiFrame } from '../src/ami/frame.js';
import { AmiFramer, frameAll } from '../src/ami/framer.js';

/**
 * Issue #15: the framer reads a message's lines from its bytes in place, finds keys (and the values
 * of few-valued keys) by their bytes, and decodes only the values it keeps. The model here is what
 * it did before: decode the whole message as UTF-8, then cut lines, keys and values from the text.
 * Both must agree on hostile bytes: invalid UTF-8, multi-byte characters, CR inside lines, keys of
 * spaces, keys that differ in bytes but not once decoded.
 */
function model(message: Buffer, keys?: ReadonlySet<string>): AmiFrame | null {
  const fields: Record<string, string> = Object.create(null);
  let vars: Record<string, string> | undefined;
  let count = 0;
  for (const raw of message.toString('utf8').split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    const colon = line.indexOf(':');
    const name = colon < 0 ? '' : line.slice(0, colon).trim().toLowerCase();
    if (name === '') continue;
    count++;
    if (keys !== undefined && !keys.has(name)) continue;
    const value = line.slice(line[colon + 1] === ' ' && colon + 1 < line.length ? colon + 2 : colon + 1);
    const eq = name === 'variable' || name === 'chanvariable' ? value.indexOf('=') : -1;
    if (eq >= 0) {
      vars ??= Object.create(null) as Record<string, string>;
      vars[value.slice(0, eq)] ??= value.slice(eq + 1);
    } else {
      fields[name] ??= value;
    }
  }
  if (count === 0) return null;
  return vars ? { fields, vars } : { fields };
}

/** Line pieces that reach every branch: keys read or not, few-valued, vars, bytes UTF-8 refuses. */
const PIECES = [
  'Event', 'event', 'Context', 'Application', 'ChannelStateDesc', 'Uniqueid', 'Privilege', 'Variable', 'ChanVariable',
  ' ', ':', ': ', '=', '\r', 'x', 'é', '☎', '📞',
].map((t) => Buffer.from(t));
/** Invalid alone: a lone continuation byte, a lead byte without its tail, bytes UTF-8 never uses. */
const BAD = [[0x80], [0xbf], [0xc3], [0xe2, 0x98], [0xf0, 0x9f, 0x93], [0xff], [0xfe], [0xc0, 0xaf]].map((b) => Buffer.from(b));
const piece = fc.oneof(fc.constantFrom(...PIECES), fc.constantFrom(...BAD), fc.uint8Array({ minLength: 1, maxLength: 3 }).map((a) => Buffer.from(a)));
const line = fc.array(piece, { minLength: 1, maxLength: 8 }).map((p) => Buffer.concat(p));
const eol = fc.constantFrom('\r\n', '\n').map((e) => Buffer.from(e));
/** One message: lines without a blank line among them, not a banner, not a Follows answer. */
const message = fc
  .array(fc.tuple(line, eol), { minLength: 1, maxLength: 10 })
  .map((lines) => Buffer.concat(lines.flat()))
  .filter((m) => {
    const text = m.toString('latin1');
    return !/\n\r?\n/.test(text) && !/^[\r\n]/.test(text) && !/^[Rr]/.test(text) && !text.startsWith('Asterisk Call Manager');
  });

describe('AmiFramer reads bytes as the whole message decoded would read', () => {
  it('hostile lines: the same fields and vars as the decoded-text model, every key or only those read', () => {
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 5 }), fc.boolean(), (messages, onlyRead) => {
        const keys = onlyRead ? READ_AMI_KEYS : undefined;
        const bytes = Buffer.concat(messages.flatMap((m) => [m, Buffer.from('\r\n')]));
        const expected = messages.map((m) => model(m, keys)).filter((f) => f !== null);
        expect(frameAll(bytes, keys ? { keys } : {}).frames).toEqual(expected);
      }),
      { numRuns: 400 },
    );
  });

  it('split at every byte boundary, hostile bytes and multi-byte characters included: the same frames', () => {
    const text = Buffer.concat([
      Buffer.from('Event: Newexten\r\nContext: caf\xc3\xa9-\xff\r\nApplication: Dial\r\nAppData: ☎,📞\r\n'),
      Buffer.from([0x80, 0x3a, 0x20, 0xe2, 0x98, 0x0d, 0x0a]),
      Buffer.from('Variable: A=\xe2\x98\x8e\r\nUniqueid: 1.1\r\n\r\nEvent: Hangup\nCause: 16\nChannelStateDesc: Up\n\n'),
    ]);
    for (const keys of [undefined, READ_AMI_KEYS]) {
      const whole = frameAll(text, keys ? { keys } : {});
      expect(whole.frames).toHaveLength(2);
      for (let cut = 0; cut <= text.length; cut++) {
        const framer = new AmiFramer(keys ? { keys } : {});
        const frames = [...framer.push(text.subarray(0, cut)), ...framer.push(text.subarray(cut)), ...framer.end()];
        expect(frames).toEqual(whole.frames);
      }
      const framer = new AmiFramer(keys ? { keys } : {});
      const bytewise: AmiFrame[] = [];
      for (let i = 0; i < text.length; i++) bytewise.push(...framer.push(text.subarray(i, i + 1)));
      expect([...bytewise, ...framer.end()]).toEqual(whole.frames);
    }
  });

  it('past its tables\' bounds (10,000 distinct keys and few-valued values) every frame is still right', () => {
    expect(FEW_VALUED_AMI_KEYS.has('context')).toBe(true);
    const messages = Array.from({ length: 10_000 }, (_, i) => Buffer.from(`Event: E${i}\r\nKey${i}: v${i}\r\nContext: ctx-${i}\r\n`));
    const bytes = Buffer.concat(messages.flatMap((m) => [m, Buffer.from('\r\n')]));
    const { frames } = frameAll(bytes);
    expect(frames).toEqual(messages.map((m) => model(m)));
    expect(frames[9_999]!.fields).toEqual({ event: 'E9999', key9999: 'v9999', context: 'ctx-9999' });
  });

  it('a few-valued key\'s value is right when its bytes come back and when they change', () => {
    const { frames } = frameAll(Buffer.from('Event: Hangup\r\nContext: a\r\n\r\nEvent: Hangup\r\nContext: b\r\n\r\nEvent: Hangup\r\nContext: a\r\n\r\n'));
    expect(frames.map((f) => f.fields.context)).toEqual(['a', 'b', 'a']);
    expect(frames.map((f) => f.fields.event)).toEqual(['Hangup', 'Hangup', 'Hangup']);
  });
});
