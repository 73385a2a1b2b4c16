import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { AmiFrame } from '../src/ami/frame.js';
import { AmiFramer, frameAll, type AmiFramerOptions } from '../src/ami/framer.js';
import { loadTrace } from './support/fakeAmiServer.js';

const FIXTURES = 'test/fixtures/asterisk';

/** Frames `bytes` pushed in the given pieces, plus end(). */
function frameChunks(chunks: Buffer[], opts?: AmiFramerOptions): { frames: AmiFrame[]; framer: AmiFramer } {
  const framer = new AmiFramer(opts);
  const frames = chunks.flatMap((c) => framer.push(c));
  frames.push(...framer.end());
  return { frames, framer };
}

function bytesOf(s: string): Buffer {
  return Buffer.from(s, 'utf8');
}

const VARSET =
  'Event: VarSet\r\nPrivilege: dialplan,all\r\nChannel: PJSIP/117-00000001\r\n' +
  'Variable: SIPDOMAIN\r\nValue: 127.0.0.1\r\nUniqueid: 1795302596.54\r\n\r\n';
const VARSET_FIELDS = {
  event: 'VarSet', privilege: 'dialplan,all', channel: 'PJSIP/117-00000001',
  variable: 'SIPDOMAIN', value: '127.0.0.1', uniqueid: '1795302596.54',
};

describe('AmiFramer: messages', () => {
  it('frames CRLF messages and lower-cases odd-case keys', () => {
    const { frames, framer } = frameChunks([bytesOf(VARSET + 'Event: Hangup\r\nCallerIDnum: 117\r\nUniqueID: 1.2\r\n\r\n')]);
    expect(frames).toEqual([
      { fields: VARSET_FIELDS },
      { fields: { event: 'Hangup', calleridnum: '117', uniqueid: '1.2' } },
    ]);
    expect(framer.stats).toEqual({ frames: 2, bannerLines: 0, skippedBytes: 0, oversizedFrames: 0, malformedLines: 0, filtered: 0 });
  });

  it('accepts bare LF and mixed line ends', () => {
    const lf = frameChunks([bytesOf('Event: A\nKey: 1\n\nEvent: B\r\nKey: 2\n\r\nEvent: C\nKey: 3\r\n\n')]).frames;
    expect(lf.map((f) => f.fields)).toEqual([
      { event: 'A', key: '1' }, { event: 'B', key: '2' }, { event: 'C', key: '3' },
    ]);
  });

  it('keeps the first value of a repeated key', () => {
    const { frames } = frameChunks([bytesOf('Event: X\r\nDup: first\r\nDUP: second\r\n\r\n')]);
    expect(frames).toEqual([{ fields: { event: 'X', dup: 'first' } }]);
  });

  it('collects Variable/ChanVariable name=value lines in vars, a lone Variable stays a field', () => {
    const { frames } = frameChunks([
      bytesOf(
        'Event: Newchannel\r\nChanVariable: RECFILE=a=b.wav\r\nChanVariable: EMPTY=\r\n' +
          'Variable: X=1\r\nvariable: X=2\r\n\r\n' + VARSET,
      ),
    ]);
    expect(frames).toEqual([
      { fields: { event: 'Newchannel' }, vars: { RECFILE: 'a=b.wav', EMPTY: '', X: '1' } },
      { fields: VARSET_FIELDS },
    ]);
  });

  it('accepts Key:value without a space and keeps extra spaces as part of the value', () => {
    const { frames, framer } = frameChunks([bytesOf('Event:Cdr\r\nValue:   minrtt=0;\r\nEmpty: \r\nBare:\r\nURL: a: b\r\n\r\n')]);
    expect(frames).toEqual([{ fields: { event: 'Cdr', value: '  minrtt=0;', empty: '', bare: '', url: 'a: b' } }]);
    expect(framer.stats.malformedLines).toBe(0);
  });

  it('counts the banner line and yields no frame for it', () => {
    const { frames, framer } = frameChunks([
      bytesOf('Asterisk Call Manager/11.0.0\r\nResponse: Success\r\nMessage: Authentication accepted\r\n\r\n'),
    ]);
    expect(frames).toEqual([{ fields: { response: 'Success', message: 'Authentication accepted' } }]);
    expect(framer.stats).toMatchObject({ frames: 1, bannerLines: 1, malformedLines: 0 });
  });

  it('skips and counts lines without a key, keeping the rest of the frame', () => {
    const { frames, framer } = frameChunks([bytesOf('Event: A\r\nno colon here\r\n: no key\r\nKey: 1\r\n\r\n')]);
    expect(frames).toEqual([{ fields: { event: 'A', key: '1' } }]);
    expect(framer.stats).toMatchObject({ frames: 1, malformedLines: 2 });
  });

  it('survives garbage between messages', () => {
    // Two colon-less junk lines (invalid UTF-8, NUL, stray CR), then a blank line.
    const junk = Buffer.from([0xff, 0x00, 0x0d, 0xc3, 0x0a, 0x0d, 0x0d, 0x0a, 0x0a]);
    const { frames, framer } = frameChunks([bytesOf('Event: A\r\n\r\n'), junk, bytesOf('\r\nEvent: B\r\n\r\n')]);
    expect(frames.map((f) => f.fields.event)).toEqual(['A', 'B']);
    expect(framer.stats).toMatchObject({ frames: 2, oversizedFrames: 0, malformedLines: 2 });
  });

  it('takes junk that happens to hold a colon as a field: it cannot know better', () => {
    const { frames } = frameChunks([Buffer.from([0xff, 0x3a, 0x20, 0x41, 0x0a, 0x0a])]);
    expect(frames).toEqual([{ fields: { '\ufffd': 'A' } }]);
  });

  it('does not read past the buffer when a short last line starts like the banner', () => {
    // Found by fuzzing: "A\0\n" made the banner check compare beyond the end.
    const { frames, framer } = frameChunks([Buffer.from('A\0\n')]);
    expect(frames).toEqual([]);
    expect(framer.stats).toMatchObject({ malformedLines: 1, bannerLines: 0 });
  });

  it('skips runs of blank lines between messages', () => {
    const { frames } = frameChunks([bytesOf('\r\n\r\n\nEvent: A\r\n\r\n\r\n\r\n\n\nEvent: B\n\n')]);
    expect(frames.map((f) => f.fields.event)).toEqual(['A', 'B']);
  });
});

describe('AmiFramer: chunking', () => {
  const sample = bytesOf(
    'Asterisk Call Manager/11.0.0\r\nResponse: Success\r\nMessage: Authentication accepted\r\n\r\n' +
      VARSET + 'Event: UserEvent\nCallerIDName: Jürgen ☎ 📞\nChanVariable: A=1\n\n',
  );
  const whole = frameChunks([sample]);

  it('gives the same frames and stats for every two-way split', () => {
    for (let cut = 0; cut <= sample.length; cut++) {
      const split = frameChunks([sample.subarray(0, cut), sample.subarray(cut)]);
      expect(split.frames, `cut at ${cut}`).toEqual(whole.frames);
      expect(split.framer.stats).toEqual(whole.framer.stats);
    }
  });

  it('gives the same frames byte by byte, multi-byte characters included', () => {
    const bytes = [...sample].map((b) => Buffer.from([b]));
    expect(frameChunks(bytes).frames).toEqual(whole.frames);
    expect(whole.frames[2]?.fields.calleridname).toBe('Jürgen ☎ 📞');
  });

  it('ignores empty chunks', () => {
    const framer = new AmiFramer();
    expect(framer.push(Buffer.alloc(0))).toEqual([]);
    expect(framer.buffered).toBe(0);
  });

  it('end() closes an unterminated last frame and drops a partial line', () => {
    const { frames, framer } = frameChunks([bytesOf('Event: A\r\n\r\nEvent: B\r\nKey: 1\r\nTrunc')]);
    expect(frames.map((f) => f.fields)).toEqual([{ event: 'A' }, { event: 'B', key: '1' }]);
    expect(framer.stats.skippedBytes).toBe('Trunc'.length);
  });
});

describe('AmiFramer: size cap', () => {
  const max = 256;
  const big = (n: number): string => `Event: Big\r\nData: ${'x'.repeat(n)}\r\n`;

  it('drops an oversized frame, counts it and resyncs at the next blank line', () => {
    const tooBig = big(400);
    const { frames, framer } = frameChunks([bytesOf(`Event: A\r\n\r\n${tooBig}\r\nEvent: B\r\n\r\n`)], { maxFrameBytes: max });
    expect(frames.map((f) => f.fields.event)).toEqual(['A', 'B']);
    expect(framer.stats).toMatchObject({ frames: 2, oversizedFrames: 1, skippedBytes: Buffer.byteLength(tooBig) });
  });

  it('keeps a frame of exactly the cap', () => {
    const exact = `Event: E\r\nData: ${'y'.repeat(max - 'Event: E\r\nData: \r\n'.length)}\r\n`;
    expect(Buffer.byteLength(exact)).toBe(max);
    const { frames, framer } = frameChunks([bytesOf(`${exact}\r\n`)], { maxFrameBytes: max });
    expect(frames).toHaveLength(1);
    expect(framer.stats.oversizedFrames).toBe(0);
  });

  it('never buffers more than the cap while a huge frame streams in', () => {
    const framer = new AmiFramer({ maxFrameBytes: max });
    const chunk = bytesOf('z'.repeat(1000) + '\r\n');
    let frames = framer.push(bytesOf('Event: Huge\r\n'));
    for (let i = 0; i < 1000; i++) {
      frames = frames.concat(framer.push(chunk));
      expect(framer.buffered).toBeLessThanOrEqual(max + 1);
    }
    frames = frames.concat(framer.push(bytesOf('\r\nEvent: After\r\n\r\n')), framer.end());
    expect(frames.map((f) => f.fields.event)).toEqual(['After']);
    expect(framer.stats).toMatchObject({ oversizedFrames: 1, skippedBytes: 13 + 1000 * 1002, malformedLines: 0 });
  });

  it('rejects a nonsensical cap', () => {
    expect(() => new AmiFramer({ maxFrameBytes: 0 })).toThrow(RangeError);
  });
});

describe('AmiFramer: Response: Follows', () => {
  const follows =
    'Response: Follows\r\nPrivilege: Command\r\nActionID: 42\r\n' +
    'Name/username  Host\r\n\r\n117/117  127.0.0.1\r\n--END COMMAND--\r\n\r\n';

  it('returns command output as one frame, blank lines included', () => {
    const { frames, framer } = frameChunks([bytesOf(follows + 'Event: After\r\n\r\n')]);
    expect(frames).toEqual([
      { fields: { response: 'Follows', privilege: 'Command', actionid: '42', output: 'Name/username  Host\n\n117/117  127.0.0.1' } },
      { fields: { event: 'After' } },
    ]);
    expect(framer.stats).toMatchObject({ frames: 2, malformedLines: 0 });
  });

  it('handles output that ends without a newline before the marker, split anywhere', () => {
    const legacy = bytesOf('Response: Follows\r\nPrivilege: Command\r\nNo such command--END COMMAND--\r\n\r\nEvent: After\r\n\r\n');
    const whole = frameChunks([legacy]).frames;
    expect(whole[0]?.fields.output).toBe('No such command');
    for (let cut = 0; cut <= legacy.length; cut++) {
      expect(frameChunks([legacy.subarray(0, cut), legacy.subarray(cut)]).frames).toEqual(whole);
    }
  });

  it('drops a Follows response that outgrows the cap and resyncs at its first blank line', () => {
    const { frames, framer } = frameChunks(
      [bytesOf('Response: Follows\r\n\r\n' + 'line\r\n'.repeat(100)), bytesOf('\r\nEvent: After\r\n\r\n')],
      { maxFrameBytes: 64 },
    );
    // The response is dropped up to its first blank line; the 600 bytes of output after it
    // then form a second oversized frame, dropped up to the blank line before "After".
    expect(framer.stats).toMatchObject({ frames: 1, oversizedFrames: 2, malformedLines: 0 });
    expect(frames.map((f) => f.fields)).toEqual([{ event: 'After' }]);
  });
});

describe('AmiFramer: recorded traces', () => {
  const traces = readdirSync(FIXTURES).filter((f) => /\.ami(\.gz)?$/.test(f));

  it.each(traces)('%s: one frame per message, no anomaly', (name) => {
    const bytes = loadTrace(`${FIXTURES}/${name}`);
    const messages = bytes.toString('latin1').split('\r\n\r\n').length - 1;
    const { frames, stats } = frameAll(bytes);
    expect(frames).toHaveLength(messages);
    expect(stats).toEqual({ frames: messages, bannerLines: 1, skippedBytes: 0, oversizedFrames: 0, malformedLines: 0, filtered: 0 });
    expect(frames[0]?.fields).toEqual({ response: 'Success', message: 'Authentication accepted' });
    expect(frames[1]?.fields.event).toBe('FullyBooted');
    expect(frames.slice(1).every((f) => f.fields.event !== undefined)).toBe(true);
  });

  it('load.ami.gz holds the 17,723 events the trace README announces', () => {
    const { frames } = frameAll(loadTrace(`${FIXTURES}/load.ami.gz`));
    expect(frames.length - 1).toBe(17_723);
  });

  it('parses VarSet and RTCP values from a real trace as sent', () => {
    const frames = frameAll(readFileSync(`${FIXTURES}/internal.ami`)).frames;
    const varset = frames.find((f) => f.fields.event === 'VarSet' && f.fields.variable === 'RTPAUDIOQOSRTT');
    expect(varset?.fields.value).toMatch(/^ {5}minrtt=/);
    expect(varset?.vars).toBeUndefined();
  });
});
