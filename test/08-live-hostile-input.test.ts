/**
 * The live clients take any bytes (issue #14 item 4): through the fake servers, each hostile input
 * the issue measured leaves the client alive, is logged and counted when it is skipped, and the next
 * real event comes through right. Then the framers' fuzz (test/02, test/05) runs against the live
 * clients: random bytes in random chunks over a real socket give exactly the frames the framer gives
 * for the same bytes. Iterations are bounded; nothing here asserts a time or a memory figure
 * (scripts/hostile-pbx.ts measures those).
 */
import fc from 'fast-check';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { connectAmi, type AmiSkipReason } from '../src/ami/client.js';
import type { AmiFrame } from '../src/ami/frame.js';
import { READ_AMI_KEYS } from '../src/ami/fields.js';
import { AmiFramer } from '../src/ami/framer.js';
import { startAmiIngest } from '../src/ami/ingest.js';
import { connectEsl, liveEslFramer, type EslSkipReason } from '../src/esl/client.js';
import { decodeEvent, isEventFrame, type EslFrame } from '../src/esl/frame.js';
import { startEslIngest } from '../src/esl/ingest.js';
import { SkipLog } from '../src/skip-log.js';
import { startFakeAmi, type FakeAmi } from './support/fakeAmiServer.js';
import { startFakeEsl, type FakeEsl } from './support/fakeEslServer.js';

const USER = 'admin';
const SECRET = 'Sup3r-Secret!';
const PASSWORD = 'Clue-Con-s3cret!';
const MB = 1024 * 1024;

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  const steps = cleanup;
  cleanup = [];
  for (const step of steps) await step();
});

function memoryLog(): { lines: string[]; info(o: object, m: string): void; warn(o: object, m: string): void } {
  const lines: string[] = [];
  const put = (obj: object, msg: string): void => void lines.push(`${msg} ${JSON.stringify(obj)}`);
  return { lines, info: put, warn: put };
}

async function waitFor(cond: () => boolean, what: () => string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 1));

/** Cuts `bytes` at the given positions (any naturals; taken modulo the length). */
function split(bytes: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, bytes.length]) {
    chunks.push(bytes.subarray(prev, c));
    prev = c;
  }
  return chunks.filter((c) => c.length > 0);
}

// ---------------------------------------------------------------------------------------------
// Asterisk AMI

const AMI_REAL = 'Event: Newchannel\r\nChannel: PJSIP/117-00000001\r\nUniqueid: 1800000000.1\r\nLinkedid: 1800000000.1\r\n\r\n';

async function amiServer(): Promise<FakeAmi> {
  const server = await startFakeAmi({ trace: Buffer.from('Asterisk Call Manager/11.0.0\r\n'), username: USER, secret: SECRET });
  cleanup.push(() => server.close());
  return server;
}

async function amiClient(server: FakeAmi, maxFrameBytes?: number) {
  const frames: AmiFrame[] = [];
  const skips: AmiSkipReason[] = [];
  const log = memoryLog();
  const res = await connectAmi(
    { host: '127.0.0.1', port: server.port, username: USER, secret: SECRET, ...(maxFrameBytes ? { maxFrameBytes } : {}) },
    { onFrame: (f) => void frames.push(f), onSkip: (r) => void skips.push(r) },
    log,
  );
  if (!res.ok) throw res.error;
  cleanup.unshift(() => res.session.close());
  return { frames, skips, log, session: res.session };
}

const realAmiArrived = (frames: AmiFrame[]) => () => frames.some((f) => f.fields.uniqueid === '1800000000.1');

describe('AMI: hostile input through the fake server', () => {
  it('Response: Success with ActionID: error is an ordinary frame, not a crash', async () => {
    const server = await amiServer();
    const c = await amiClient(server);
    server.send('Response: Success\r\nActionID: error\r\nMessage: hello\r\n\r\n' + AMI_REAL);
    await waitFor(realAmiArrived(c.frames), () => 'the real event');
    expect(c.frames[0]?.fields).toMatchObject({ response: 'Success', actionid: 'error' });
    expect(c.skips).toEqual([]);
  });

  it('4 MB without a blank line: skipped once past max_frame_bytes, logged, counted; the next event is right', async () => {
    const server = await amiServer();
    const c = await amiClient(server);
    server.send('x\r\n'.repeat((4 * MB) / 3) + '\r\n' + AMI_REAL);
    await waitFor(realAmiArrived(c.frames), () => 'the real event');
    expect(c.frames.map((f) => f.fields)).toEqual([{ event: 'Newchannel', channel: 'PJSIP/117-00000001', uniqueid: '1800000000.1', linkedid: '1800000000.1' }]);
    expect(c.skips).toEqual(['oversized']);
    expect(c.log.lines.filter((l) => l.includes('PBXHOOK_AMI_FRAME_SKIPPED'))).toHaveLength(1);
  });

  it('max_frame_bytes is the bound: a message just over it is skipped, one at it is kept', async () => {
    const server = await amiServer();
    const c = await amiClient(server, 2048);
    const message = (bytes: number): string => `Event: Big\r\nX: ${'a'.repeat(bytes - 'Event: Big\r\nX: \r\n'.length)}\r\n\r\n`;
    server.send(message(2048) + message(2049) + AMI_REAL);
    await waitFor(realAmiArrived(c.frames), () => 'the real event');
    expect(c.frames.map((f) => f.fields.event)).toEqual(['Big', 'Newchannel']);
    expect(c.skips).toEqual(['oversized']);
  });

  it('256k tiny messages: every one delivered, then the next event', async () => {
    const server = await amiServer();
    const c = await amiClient(server);
    server.send('A: b\r\n\r\n'.repeat(256 * 1024) + AMI_REAL);
    await waitFor(realAmiArrived(c.frames), () => `the real event (${c.frames.length} frames)`);
    expect(c.frames).toHaveLength(256 * 1024 + 1);
  });

  it('the ingest keeps the connection: status connected throughout', async () => {
    const server = await amiServer();
    const frames: AmiFrame[] = [];
    const ingest = startAmiIngest(
      { type: 'asterisk', host: '127.0.0.1', port: server.port, username: USER, secret: SECRET },
      (f) => void frames.push(f),
      pino({ level: 'silent' }),
    );
    cleanup.unshift(() => ingest.close());
    await ingest.ready;
    server.send('Response: Success\r\nActionID: error\r\n\r\n' + 'x\r\n'.repeat(MB) + '\r\n' + AMI_REAL);
    await waitFor(realAmiArrived(frames), () => 'the real event');
    expect(ingest.connected).toBe(true);
  });
});

describe('AMI fuzz through the fake server: the live client gives the framer\'s frames', () => {
  const TOKENS = [
    'Event', 'Variable', 'ChanVariable', 'Response', ': ', ':', '=', ' ', 'x', 'Follows',
    '\r\n', '\n', '\r', '\r\n\r\n', '\n\n', '--END COMMAND--', '--END SMS EVENT--',
    'Asterisk Call Manager/11.0.0', 'Response: Follows\r\n', 'é', '☎', '📞',
  ].map((t) => Buffer.from(t));
  const soup = fc
    .array(fc.oneof(fc.constantFrom(...TOKENS), fc.uint8Array({ minLength: 1, maxLength: 4 }).map((a) => Buffer.from(a))), { maxLength: 300, size: 'medium' })
    .map((parts) => Buffer.concat(parts));
  const anyBytes = fc.uint8Array({ maxLength: 2000, size: 'medium' }).map((a) => Buffer.from(a));

  it('random bytes in random chunks', async () => {
    const server = await amiServer();
    await fc.assert(
      fc.asyncProperty(fc.oneof(anyBytes, soup), fc.array(fc.nat(), { maxLength: 20 }), fc.integer({ min: 128, max: 400 }), async (bytes, cuts, max) => {
        const c = await amiClient(server, max);
        // Whatever the bytes leave unfinished, this ends it: a Follows output, an oversized
        // message, an open frame; then a sentinel the framer always reads.
        const tail = Buffer.from('\r\n\r\n--END COMMAND--\r\n\r\nEvent: Sentinel\r\n\r\n');
        const reference = new AmiFramer({ maxFrameBytes: max, keys: READ_AMI_KEYS }).push(Buffer.concat([bytes, tail]));
        for (const chunk of split(bytes, cuts)) {
          server.send(chunk);
          await tick();
        }
        server.send(tail);
        await waitFor(() => c.frames.at(-1)?.fields.event === 'Sentinel', () => `the sentinel (${c.frames.length} frames)`);
        expect(c.frames).toEqual(reference);
        await c.session.close();
      }),
      { numRuns: 60 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// FreeSWITCH ESL

function plain(text: string): string {
  return `Content-Length: ${Buffer.byteLength(text)}\nContent-Type: text/event-plain\n\n${text}`;
}
const ESL_REAL = plain('Event-Name: CHANNEL_CREATE\nUnique-ID: real-call-1\nEvent-Date-Timestamp: 1795400000000000\n\n');
const realEslArrived = (frames: EslFrame[]) => () => frames.some((f) => f.body.includes('real-call-1'));

async function eslServer(): Promise<FakeEsl> {
  const server = await startFakeEsl({ trace: Buffer.alloc(0), password: PASSWORD });
  cleanup.push(() => server.close());
  return server;
}

async function eslClient(server: FakeEsl, maxFrameBytes?: number) {
  const frames: EslFrame[] = [];
  const skips: EslSkipReason[] = [];
  const status: string[] = [];
  const log = memoryLog();
  const res = await connectEsl(
    { host: '127.0.0.1', port: server.port, password: PASSWORD, ...(maxFrameBytes ? { maxFrameBytes } : {}) },
    { onFrame: (f) => void frames.push(f), onSkip: (r) => void skips.push(r), onStatus: (s) => void status.push(s) },
    log,
  );
  if (!res.ok) throw res.error;
  cleanup.unshift(() => res.session.close());
  return { frames, skips, status, log, session: res.session };
}

describe('ESL: hostile input through the fake server', () => {
  it('an event frame with no body is delivered empty (undecodable), not a crash', async () => {
    const server = await eslServer();
    const c = await eslClient(server);
    server.send('Content-Type: text/event-plain\n\n' + ESL_REAL);
    await waitFor(realEslArrived(c.frames), () => 'the real event');
    expect(c.frames[0]).toEqual({ headers: { 'Content-Type': 'text/event-plain' }, body: '' });
    const s = { malformedLines: 0, undecodable: 0 };
    expect(decodeEvent(c.frames[0]!, s)).toBeUndefined();
    expect(s.undecodable).toBe(1);
  });

  it('256k tiny frames: no stack overflow, the next event is right', async () => {
    const server = await eslServer();
    const c = await eslClient(server);
    server.send('A: b\n\n'.repeat(256 * 1024) + ESL_REAL);
    await waitFor(realEslArrived(c.frames), () => 'the real event');
    expect(c.frames).toHaveLength(1); // the tiny frames are no events
    expect(c.status).toEqual(['connected']);
  });

  it('an oversized header block is logged, counted, and the connection dropped: its blank line, if any, cannot be told from the next frame\'s', async () => {
    const server = await eslServer();
    const c = await eslClient(server);
    server.send(('X-Junk: ' + 'a'.repeat(62) + '\n').repeat((4 * MB) / 71) + ESL_REAL);
    await waitFor(() => c.status.includes('disconnected'), () => 'the disconnect');
    expect(c.skips).toEqual(['oversized', 'desync']);
    expect(c.log.lines.filter((l) => l.includes('PBXHOOK_ESL_FRAME_SKIPPED'))).toHaveLength(1);
    expect(c.log.lines.filter((l) => l.includes('PBXHOOK_ESL_DESYNC'))).toHaveLength(1);
    expect(c.frames.some((f) => f.body.includes('real-call-1')), 'no frame is read from inside the junk').toBe(false);
  });

  it('frames of no known Content-Type are skipped with one log line, not one each', async () => {
    const server = await eslServer();
    const c = await eslClient(server);
    server.send('A: b\n\n'.repeat(1000) + ESL_REAL);
    await waitFor(realEslArrived(c.frames), () => 'the real event');
    expect(c.skips.filter((r) => r === 'unexpected')).toHaveLength(1000);
    // Told at once, then once per 10 s while it lasts: a line or two whatever the machine's speed.
    const lines = c.log.lines.filter((l) => l.includes('PBXHOOK_ESL_FRAME_UNEXPECTED'));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines.length).toBeLessThanOrEqual(1 + 60 / 10);
    expect(lines[0]).toContain('"skipped":1');
    expect(c.status).toEqual(['connected']);
  });

  it('Content-Length: 2000000000 is not allowed to swallow the stream: logged, counted, connection dropped', async () => {
    const server = await eslServer();
    const c = await eslClient(server);
    server.send('Content-Type: text/event-plain\nContent-Length: 2000000000\n\n' + ESL_REAL);
    await waitFor(() => c.status.includes('disconnected'), () => 'the disconnect');
    expect(c.skips).toEqual(['oversized', 'desync']);
    expect(c.log.lines.some((l) => l.includes('PBXHOOK_ESL_DESYNC'))).toBe(true);
  });

  it('…and the ingest reconnects, subscribes again and gets the next real event', async () => {
    const server = await eslServer();
    const frames: EslFrame[] = [];
    const ingest = startEslIngest(
      { type: 'freeswitch', host: '127.0.0.1', port: server.port, password: PASSWORD },
      (f) => void frames.push(f),
      pino({ level: 'silent' }),
    );
    cleanup.unshift(() => ingest.close());
    await ingest.ready;
    server.setTrace(Buffer.from(ESL_REAL)); // what the next subscriber is streamed
    server.send('Content-Type: text/event-plain\nContent-Length: 2000000000\n\n' + plain('Event-Name: HEARTBEAT\n\n'));
    await waitFor(realEslArrived(frames), () => 'the real event after reconnecting', 15_000);
    expect(frames.map((f) => f.body.includes('HEARTBEAT'))).toEqual([false]);
    expect(ingest.connected).toBe(true);
  });

  it('an api answer larger than max_frame_bytes is still read (the resync\'s channel list)', async () => {
    const server = await eslServer();
    const uuids = Array.from({ length: 400 }, (_, i) => `uuid-${i}-${'x'.repeat(20)}`);
    server.setChannels(uuids);
    const c = await eslClient(server, 4096);
    const body = await c.session.api('show channels as json');
    expect(JSON.parse(body).row_count).toBe(400);
    expect(body.length).toBeGreaterThan(4096);
    expect(c.skips).toEqual([]);
  });
});

describe('ESL fuzz through the fake server: the live client gives the framer\'s frames', () => {
  const TOKENS = [
    'Content-Length: ', 'Content-Type: ', 'text/event-plain', 'text/event-json', 'auth/request', ': ', ':',
    '\n', '\n\n', '\r\n', '0', '1', '7', '12', '99999999999999999', 'x', '%', '%2', '%41', '%FF', '{', '"', 'é', '☎', '📞',
  ].map((t) => Buffer.from(t));
  const soup = fc
    .array(fc.oneof(fc.constantFrom(...TOKENS), fc.uint8Array({ minLength: 1, maxLength: 4 }).map((a) => Buffer.from(a))), { maxLength: 300, size: 'medium' })
    .map((parts) => Buffer.concat(parts));
  const anyBytes = fc.uint8Array({ maxLength: 2000, size: 'medium' }).map((a) => Buffer.from(a));

  /** The event frames the live client's framer completes for `bytes`; whether an oversized body stopped it. */
  function reference(bytes: Buffer, max: number): { frames: EslFrame[]; desync: boolean } {
    const framer = liveEslFramer(max);
    const frames = framer.push(bytes).filter(isEventFrame);
    return { frames, desync: framer.stopped };
  }

  it('random bytes in random chunks', async () => {
    const server = await eslServer();
    await fc.assert(
      fc.asyncProperty(fc.oneof(anyBytes, soup), fc.array(fc.nat(), { maxLength: 20 }), fc.integer({ min: 1, max: 300 }), async (bytes, cuts, max) => {
        const c = await eslClient(server, max);
        const expected = reference(bytes, max);
        for (const chunk of split(bytes, cuts)) {
          server.send(chunk);
          await tick();
        }
        if (expected.desync) {
          await waitFor(() => c.status.includes('disconnected'), () => 'the disconnect after an oversized body');
          expect(c.skips.at(-1)).toBe('desync');
        } else {
          // No sentinel can end every state (a body waits for its length): wait for the frames
          // the framer completed, then a little longer for any the client should not have made.
          await waitFor(() => c.frames.length >= expected.frames.length, () => `${expected.frames.length} frames (have ${c.frames.length})`);
          await new Promise((r) => setTimeout(r, 5));
          expect(c.status).toEqual(['connected']);
        }
        expect(c.frames).toEqual(expected.frames);
        await c.session.close();
      }),
      { numRuns: 60 },
    );
  });
});

describe('SkipLog: one line per kind of skipped input, then a count per interval', () => {
  it('tells the first at once, the rest as one count at the interval\'s end, and what is left at flush', () => {
    vi.useFakeTimers();
    try {
      const lines: Array<Record<string, unknown>> = [];
      const skips = new SkipLog({ warn: (o) => void lines.push(o as Record<string, unknown>) }, (r) => ({ code: `C_${r}`, msg: r }), { host: 'h' }, 10_000);
      for (let i = 0; i < 100_000; i++) skips.skipped('tiny');
      skips.skipped('odd', { contentType: 'x/y' });
      expect(lines).toEqual([
        { host: 'h', code: 'C_tiny', reason: 'tiny', skipped: 1 },
        { host: 'h', code: 'C_odd', reason: 'odd', skipped: 1, contentType: 'x/y' },
      ]);
      vi.advanceTimersByTime(10_000);
      expect(lines.slice(2)).toEqual([{ host: 'h', code: 'C_tiny', reason: 'tiny', skipped: 99_999 }]);
      vi.advanceTimersByTime(10_000); // a quiet interval: nothing to tell, and the next skip is told at once
      skips.skipped('tiny');
      skips.skipped('tiny');
      expect(lines.slice(3)).toEqual([{ host: 'h', code: 'C_tiny', reason: 'tiny', skipped: 1 }]);
      skips.flush();
      expect(lines.slice(4)).toEqual([{ host: 'h', code: 'C_tiny', reason: 'tiny', skipped: 1 }]);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
