/**
 * Hostile bytes from FreeSWITCH, end to end with the real daemon process (issue #14 item 4), as
 * test/54 does for Asterisk: the fake event socket writes each input right after the subscription
 * is answered, then streams a real recorded call. The daemon must stay up (/healthz answers), log
 * one clear line naming what it skipped (one line, not one per tiny frame), and send the call's
 * webhooks exactly as `pbxhook replay` prints them, with no other call left open. Where the
 * connection cannot find the next frame (a body announced over pbx.max_frame_bytes, a header block
 * that never ends) it is made again: logged, counted in /metrics, and the call read on the new one.
 * test/08 covers the same inputs at the client alone.
 *
 * Deadlines here are hang guards only, generous; no test asserts how fast anything happened.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { splitTrace, startFakeEsl } from './support/fakeEslServer.js';
import { ROOT, e2eSandbox, exitWithin, healthz, metric, opsPort, replay, startDaemon, startReceiver, waitFor, writeEslConfig } from './support/e2e.js';

const TRACE = path.join(ROOT, 'test/fixtures/freeswitch/in-queue-answered.esl');
const PASSWORD = 'Clue-Con-hostile-7q';
const MAX_FRAME_BYTES = 65_536;
const sandbox = e2eSandbox('pbxhook-e2e-hostile-esl-');

function eventFrame(type: string, body: Buffer | string): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  return Buffer.concat([Buffer.from(`Content-Length: ${b.length}\nContent-Type: ${type}\n\n`), b]);
}

/**
 * The trace's first CHANNEL_CREATE without its Unique-ID. It still names the real call
 * (Channel-Call-UUID), so a daemon that took it would start that call from a channel "".
 */
function createWithoutUniqueId(): Buffer {
  const create = splitTrace(readFileSync(TRACE)).find((f) => f.event && f.bytes.includes('Event-Name: CHANNEL_CREATE\n'));
  if (!create) throw new Error('no CHANNEL_CREATE in the trace');
  const text = create.bytes.toString('utf8');
  const body = text.slice(text.indexOf('\n\n') + 2).replace(/^Unique-ID: .*\n/m, '');
  return eventFrame('text/event-plain', body);
}

/** NULs, bytes that are no UTF-8 (a lone continuation byte, an overlong form, 0xFF), no `: `. */
const BINARY = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0xc0, 0xaf, 0x00, 0x0a, 0x58, 0x3a, 0x20, 0x00, 0xed, 0xa0, 0x80, 0x0a]);

interface Case {
  readonly name: string;
  readonly bytes: Buffer;
  /** The log codes that must name what was skipped, one line each (give or take the interval). */
  readonly codes: readonly string[];
  /** The connection must be made again. */
  readonly reconnect: boolean;
}

const CASES: readonly Case[] = [
  {
    name: 'an event frame with Content-Length: 0 (no body), then more frames',
    bytes: Buffer.from('Content-Length: 0\nContent-Type: text/event-plain\n\n'),
    codes: ['PBXHOOK_ESL_EVENT_UNDECODABLE'], reconnect: false,
  },
  {
    name: 'an event frame without Content-Length or body, then more frames',
    bytes: Buffer.from('Content-Type: text/event-plain\n\n'),
    codes: ['PBXHOOK_ESL_EVENT_UNDECODABLE'], reconnect: false,
  },
  {
    name: '256k tiny frames in one burst',
    bytes: Buffer.from('A: b\n\n'.repeat(262_144)),
    codes: ['PBXHOOK_ESL_FRAME_UNEXPECTED'], reconnect: false,
  },
  {
    name: 'Content-Length: 2000000000',
    bytes: Buffer.from('Content-Type: text/event-plain\nContent-Length: 2000000000\n\n'),
    codes: ['PBXHOOK_ESL_FRAME_SKIPPED', 'PBXHOOK_ESL_DESYNC'], reconnect: true,
  },
  {
    name: 'a header block that never ends (1 MB, no blank line), past pbx.max_frame_bytes',
    bytes: Buffer.from(('X-Junk: ' + 'a'.repeat(62) + '\n').repeat(Math.ceil((1 << 20) / 71))),
    codes: ['PBXHOOK_ESL_FRAME_SKIPPED', 'PBXHOOK_ESL_DESYNC'], reconnect: true,
  },
  {
    name: 'NUL bytes and invalid UTF-8, as a frame and as an event body',
    bytes: Buffer.concat([BINARY, Buffer.from('\n'), eventFrame('text/event-plain', BINARY)]),
    codes: ['PBXHOOK_ESL_FRAME_UNEXPECTED', 'PBXHOOK_ESL_EVENT_UNDECODABLE'], reconnect: false,
  },
  {
    name: 'bodies that are no plain event and no JSON object',
    bytes: Buffer.concat([
      eventFrame('text/event-plain', 'this is not an event\n\n'),
      eventFrame('text/event-json', '{"Event-Name": "CHANNEL_CREATE", "Unique-ID": '),
      eventFrame('text/event-json', '["CHANNEL_CREATE"]'),
    ]),
    codes: ['PBXHOOK_ESL_EVENT_UNDECODABLE'], reconnect: false,
  },
  {
    name: 'a CHANNEL_CREATE with no Unique-ID',
    bytes: createWithoutUniqueId(),
    codes: ['PBXHOOK_ESL_EVENT_NO_CHANNEL'], reconnect: false,
  },
];

/**
 * Skips of one kind are logged at once and then at most once per 10 s interval while they last,
 * plus a last count at stop; a test lasts at most 60 s, so far fewer lines than skipped frames.
 */
const MAX_LINES_PER_CODE = 1 + 60 / 10 + 1;

describe('pbxhook run: hostile ESL input (issue #14 item 4)', () => {
  it.each(CASES)('$name: the daemon stays up, says what it skipped, and the next real call is right', async (c) => {
    const crm = await startReceiver(0);
    sandbox.defer(() => crm.close());
    const esl = await startFakeEsl({ trace: TRACE, password: PASSWORD, speed: 100, before: c.bytes, channelsAsStreamed: true });
    sandbox.defer(() => esl.close());
    const ini = ['[crm-json]', `url = http://127.0.0.1:${crm.port}/3cx`, 'schema = 3cx', ''].join('\n');
    const { yaml } = writeEslConfig(sandbox.tmp, esl.port, PASSWORD, [], ini, [`  max_frame_bytes: ${MAX_FRAME_BYTES}`]);
    const want = replay(TRACE, yaml);
    expect(want.length).toBeGreaterThan(0);

    const d = startDaemon(yaml);
    const port = await opsPort(d);
    await waitFor(() => crm.requests.length >= want.length, () => `${want.length} webhooks (have ${crm.requests.length})\n${d.out.stderr.slice(-3000)}`, 45_000);
    // Everything written is delivered and no call is left open: nothing but the real call was taken.
    let health = await healthz(port);
    for (let i = 0; i < 400 && health.body.outboxDepth !== 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      health = await healthz(port);
    }
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ ok: true, pbx: 'connected', liveCalls: 0, outboxDepth: 0 });
    expect(crm.requests.map((r) => r.body)).toEqual(want.map((w) => w.body));
    expect(d.child.exitCode).toBeNull();

    const logs = d.logs();
    for (const code of c.codes) {
      const lines = logs.filter((l) => l.code === code);
      expect(lines.length, `${code} logged`).toBeGreaterThan(0);
      expect(lines.length, `${code} logged once, not once per frame`).toBeLessThanOrEqual(MAX_LINES_PER_CODE);
    }
    const lost = logs.filter((l) => l.msg === 'ESL disconnected');
    expect(lost.length, 'the connection was made again only when it had to be').toBe(c.reconnect ? 1 : 0);
    expect(await metric(port, 'pbxhook_frames_skipped_total{reason="desync"}')).toBe(c.reconnect ? 1 : undefined);
    d.child.kill('SIGTERM');
    expect(await exitWithin(d, 30_000), d.out.stderr.slice(-3000)).toEqual({ code: 0, signal: null });
  });
});
