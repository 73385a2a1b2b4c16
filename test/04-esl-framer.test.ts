import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeEvent, urlDecode, type EslFrame } from '../src/esl/frame.js';
import { EslFramer, frameAll, type EslFramerOptions } from '../src/esl/framer.js';
import { loadTrace } from './support/fakeEslServer.js';

const DIRS = ['test/fixtures/freeswitch', 'test/fixtures/freeswitch-synth'];

function frameChunks(chunks: Buffer[], opts?: EslFramerOptions): { frames: EslFrame[]; framer: EslFramer } {
  const framer = new EslFramer(opts);
  const frames = chunks.flatMap((c) => framer.push(c));
  frames.push(...framer.end());
  return { frames, framer };
}

/** One event frame as mod_event_socket writes it: the plain event's text after Content-Length. */
function plain(text: string): string {
  return `Content-Length: ${Buffer.byteLength(text)}\nContent-Type: text/event-plain\n\n${text}`;
}

const AUTH = 'Content-Type: auth/request\n\n';
const REPLY = 'Content-Type: command/reply\nReply-Text: +OK accepted\n\n';
const CREATE = 'Event-Name: CHANNEL_CREATE\nUnique-ID: u-1\nChannel-Name: sofia/external/05552221133%40127.0.0.1%3A15400\n\n';
const stats = () => ({ malformedLines: 0, undecodable: 0 });

describe('EslFramer: frames', () => {
  it('cuts header-only frames and Content-Length bodies', () => {
    const { frames, framer } = frameChunks([Buffer.from(AUTH + REPLY + plain(CREATE))]);
    expect(frames.map((f) => f.headers['Content-Type'])).toEqual(['auth/request', 'command/reply', 'text/event-plain']);
    expect(frames[1]!.headers['Reply-Text']).toBe('+OK accepted');
    expect(frames[2]!.body).toBe(CREATE);
    expect(framer.stats).toEqual({ frames: 3, skippedBytes: 0, oversizedFrames: 0, oversizedBodies: 0, malformedLines: 0, badContentLength: 0 });
  });

  it('counts Content-Length in bytes: a UTF-8 character split across chunks stays whole', () => {
    const text = 'Event-Name: CUSTOM\nCaller-Caller-ID-Name: J%C3%BCrgen ☎\n\n';
    const bytes = Buffer.from(plain(text) + plain(CREATE));
    const cut = bytes.indexOf(Buffer.from('☎')) + 1; // inside the 3-byte character
    const { frames } = frameChunks([bytes.subarray(0, cut), bytes.subarray(cut)]);
    expect(frames.map((f) => f.body)).toEqual([text, CREATE]);
  });

  it('gives the same frames however the bytes are chunked, one byte at a time too', () => {
    const bytes = Buffer.from(AUTH + REPLY + plain(CREATE) + plain(CREATE));
    const once = frameChunks([bytes]).frames;
    expect(frameChunks([...bytes].map((b) => Buffer.from([b]))).frames).toEqual(once);
  });

  it('drops an oversized body by its announced length without buffering it, then resyncs', () => {
    const big = plain('Event-Name: HEARTBEAT\n' + 'X: ' + 'y'.repeat(500) + '\n\n');
    const framer = new EslFramer({ maxBodyBytes: 200 });
    const bytes = Buffer.from(big + plain(CREATE));
    const frames: EslFrame[] = [];
    for (let i = 0; i < bytes.length; i += 64) {
      frames.push(...framer.push(bytes.subarray(i, i + 64)));
      expect(framer.buffered).toBeLessThanOrEqual(200);
    }
    expect(frames.map((f) => f.body)).toEqual([CREATE]);
    expect(framer.stats.oversizedFrames).toBe(1);
    expect(framer.stats.skippedBytes).toBe(Buffer.byteLength(big) - Buffer.byteLength('Content-Length: 527\nContent-Type: text/event-plain\n\n'));
  });

  it('drops an oversized header block up to its blank line', () => {
    const bytes = Buffer.from('Content-Type: x\nJunk: ' + 'z'.repeat(300) + '\n\n' + REPLY);
    const { frames, framer } = frameChunks([bytes], { maxHeaderBytes: 64 });
    expect(frames.map((f) => f.headers['Reply-Text'])).toEqual(['+OK accepted']);
    expect(framer.stats).toMatchObject({ oversizedFrames: 1, skippedBytes: bytes.length - REPLY.length });
  });

  it('keeps a frame with a bad Content-Length without a body, and counts it', () => {
    const { frames, framer } = frameChunks([Buffer.from('Content-Type: text/event-plain\nContent-Length: 12x\n\n' + REPLY)]);
    expect(frames).toHaveLength(2);
    expect(frames[0]!.body).toBe('');
    expect(framer.stats.badContentLength).toBe(1);
  });

  it('counts an unfinished frame at the end as skipped, never guesses it', () => {
    const partial = plain(CREATE).slice(0, -10);
    const { frames, framer } = frameChunks([Buffer.from(REPLY + partial)]);
    expect(frames).toHaveLength(1);
    expect(framer.stats.skippedBytes).toBe(Buffer.byteLength(CREATE) - 10);
  });

  it('stopAtOversizedBody: frames nothing after an oversized body (the live socket connects afresh)', () => {
    const bytes = Buffer.from(plain(CREATE) + 'Content-Type: text/event-plain\nContent-Length: 2000000000\n\n' + plain(CREATE));
    const framer = new EslFramer({ maxBodyBytes: 1024, stopAtOversizedBody: true });
    expect(framer.push(bytes)).toHaveLength(1);
    expect(framer.stopped).toBe(true);
    expect(framer.stats).toMatchObject({ frames: 1, oversizedFrames: 1, oversizedBodies: 1, skippedBytes: Buffer.byteLength(plain(CREATE)) });
  });

  it('stopAtOversizedHeader: frames nothing after a header block over the cap, whether or not it ends', () => {
    const junk = 'X-Junk: ' + 'a'.repeat(100) + '\n';
    for (const end of ['', '\n']) {
      const bytes = Buffer.from(plain(CREATE) + junk.repeat(20) + end + plain(CREATE));
      const framer = new EslFramer({ maxHeaderBytes: 1024, stopAtOversizedHeader: true });
      expect(framer.push(bytes)).toHaveLength(1);
      expect(framer.stopped).toBe(true);
      expect(framer.stats).toMatchObject({ frames: 1, oversizedFrames: 1, oversizedBodies: 0, skippedBytes: bytes.length - Buffer.byteLength(plain(CREATE)) });
    }
  });

  it('bodyLimit: one frame type may carry a larger body than the cap', () => {
    const big = 'x'.repeat(5000);
    const bytes = Buffer.from(`Content-Type: api/response\nContent-Length: 5000\n\n${big}` + plain(CREATE));
    const { frames } = frameChunks([bytes], { maxBodyBytes: 1024, bodyLimit: (h) => (h['Content-Type'] === 'api/response' ? 8192 : 1024) });
    expect(frames.map((f) => f.body.length)).toEqual([5000, CREATE.length]);
  });

  it('carries an unfinished body without re-copying it: one byte at a time, a 256 KB body is read whole', () => {
    const body = 'y'.repeat(256 * 1024);
    const bytes = Buffer.from(`Content-Type: api/response\nContent-Length: ${body.length}\n\n${body}`);
    const framer = new EslFramer();
    const frames: EslFrame[] = [];
    for (let i = 0; i < bytes.length; i++) frames.push(...framer.push(bytes.subarray(i, i + 1)));
    expect(frames.map((f) => f.body === body)).toEqual([true]);
    expect(framer.buffered).toBe(0);
  });

  it('rejects nonsensical caps', () => {
    expect(() => new EslFramer({ maxHeaderBytes: 0 })).toThrow(RangeError);
    expect(() => new EslFramer({ maxBodyBytes: 1.5 })).toThrow(RangeError);
  });
});

describe('decodeEvent', () => {
  it('URL-decodes plain values, keeps the first of a repeated header, reads the event body', () => {
    const text =
      'Event-Name: COMMAND\nCore-UUID: c\ncall-command: execute\nEvent-Name: PRIVATE_COMMAND\n' +
      'Channel-Name: sofia/internal/117%40127.0.0.1%3A15117\nEmpty: \nContent-Length: 24\n\nSignal=1\r\nDuration=160\r\n';
    const ev = decodeEvent({ headers: { 'Content-Type': 'text/event-plain' }, body: text }, stats());
    expect(ev?.headers['Event-Name']).toBe('COMMAND');
    expect(ev?.headers['Channel-Name']).toBe('sofia/internal/117@127.0.0.1:15117');
    expect(ev?.headers['Empty']).toBe('');
    expect(ev?.body).toBe('Signal=1\r\nDuration=160\r\n');
  });

  it('never throws on what FreeSWITCH passes through unencoded (a literal %FF, a lone %)', () => {
    expect(urlDecode('100%25 %FF %zz %4')).toBe('100% \uFFFD %zz %4');
    expect(urlDecode('J%C3%BCrgen')).toBe('Jürgen');
  });

  it('reads json events: arrays as plain writes them, _body as the body', () => {
    const body = JSON.stringify({ 'Event-Name': 'CHANNEL_EXECUTE', variable_DP_MATCH: ['820', '820'], 'Content-Length': '2', _body: 'hi' });
    const ev = decodeEvent({ headers: { 'Content-Type': 'text/event-json' }, body }, stats());
    expect(ev).toEqual({ headers: { 'Event-Name': 'CHANNEL_EXECUTE', variable_DP_MATCH: 'ARRAY::820|:820', 'Content-Length': '2' }, body: 'hi' });
  });

  it('counts what it cannot read and returns nothing for non-events', () => {
    const s = stats();
    expect(decodeEvent({ headers: { 'Content-Type': 'text/event-json' }, body: '{not json' }, s)).toBeUndefined();
    expect(decodeEvent({ headers: { 'Content-Type': 'text/event-plain' }, body: 'no colon here\n\n' }, s)).toBeUndefined();
    expect(decodeEvent({ headers: { 'Content-Type': 'command/reply' }, body: '' }, s)).toBeUndefined();
    expect(s).toEqual({ malformedLines: 1, undecodable: 2 });
  });
});

describe('recorded traces', () => {
  const traces = DIRS.flatMap((d) => readdirSync(d).filter((f) => /\.esl(\.gz)?$/.test(f)).map((f) => `${d}/${f}`));

  it.each(traces)('%s: every frame read, every event decoded, no anomaly', (path) => {
    const { frames, stats: fs } = frameAll(loadTrace(path));
    expect(fs).toMatchObject({ skippedBytes: 0, oversizedFrames: 0, malformedLines: 0, badContentLength: 0 });
    const s = stats();
    const events = frames.filter((f) => f.headers['Content-Type']?.startsWith('text/event-'));
    expect(events.length).toBe(frames.length - 3); // auth/request and two command replies
    for (const f of events) expect(decodeEvent(f, s)?.headers['Event-Name']).toBeTruthy();
    expect(s).toEqual({ malformedLines: 0, undecodable: 0 });
  });
});
