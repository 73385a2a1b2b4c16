import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { connectAmi, type AmiLog, type AmiSession } from '../src/ami/client.js';
import { amiEventFilters, amiSessionFilter } from '../src/ami/event-filter.js';
import { AMI_EVENTS } from '../src/ami/events.js';
import type { AmiFrame } from '../src/ami/frame.js';
import { frameAll } from '../src/ami/framer.js';
import { startAmiIngest } from '../src/ami/ingest.js';
import { HANDLED_AMI_EVENTS, wantsAmiEventNamed } from '../src/ami/normalise.js';
import { loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/types.js';
import { Pipeline } from '../src/pipeline.js';
import { loadTrace, startFakeAmi, type FakeAmi } from './support/fakeAmiServer.js';
import { runAsync } from './support/runAsync.js';

/**
 * Issue #15: pbxhook asks Asterisk (AMI `Filter` action) for only the events it reads. The fake
 * server filters a session as Asterisk does, so a filtered session must give the very webhooks
 * the whole trace gives, and a refused Filter one log line and the same webhooks unfiltered.
 */
const USER = 'admin';
const SECRET = 'Filter-Secret-9';
const cfg = loadConfig('config/all-schemas.example.yaml');
/** FreePBX's config names no route (no Exten line in the filter); the lab's names two ring groups. */
const FREEPBX_CFG = loadConfig('config/freepbx.example.yaml');
const DIRS = ['test/fixtures/asterisk', 'test/fixtures/asterisk-synth', 'test/fixtures/asterisk-freepbx', 'test/fixtures/asterisk-freepbx-synth'];
const TRACES = DIRS.filter(existsSync).flatMap((d) => readdirSync(d).filter((f) => /\.ami(\.gz)?$/.test(f)).map((f) => join(d, f)));
const configFor = (trace: string): Config => (trace.includes('freepbx') ? FREEPBX_CFG : cfg);

const quiet: AmiLog = { info: () => undefined, warn: () => undefined };

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  const steps = cleanup;
  cleanup = [];
  for (const step of steps) await step();
});

async function serve(trace: Buffer, filter: 'apply' | 'refuse' | 'ignore'): Promise<FakeAmi> {
  const server = await startFakeAmi({ trace, username: USER, secret: SECRET, filter, streamAfterFirstAction: true });
  cleanup.push(() => server.close());
  return server;
}

/** Every request replay makes of the whole trace, unfiltered: the golden side. */
function replayRequests(trace: Buffer, config: Config = cfg): string[] {
  const p = new Pipeline(config);
  return frameAll(trace).frames.flatMap((f) => p.amiFrame(f)).map((r) => JSON.stringify(r));
}

/** Feeds a session's frames to a pipeline; `drained` resolves once everything the server sent is in. */
function collector(config: Config = cfg): { onFrame(f: AmiFrame): void; requests: string[]; frames: number; drained(s: AmiSession, server: FakeAmi): Promise<void> } {
  const p = new Pipeline(config);
  const requests: string[] = [];
  let pong: () => void = () => undefined;
  const c = {
    requests,
    frames: 0,
    onFrame(f: AmiFrame): void {
      if (f.fields.actionid === 'pbxhook-test-drained') return pong();
      c.frames++;
      for (const r of p.amiFrame(f)) requests.push(JSON.stringify(r));
    },
    // The Ping's answer is written after the whole trace, so it arrives after it.
    async drained(s: AmiSession, server: FakeAmi): Promise<void> {
      await server.done;
      const answered = new Promise<void>((r) => (pong = r));
      s.action({ Action: 'Ping', ActionID: 'pbxhook-test-drained' });
      await answered;
    },
  };
  return c;
}

describe('Asterisk filters the session (AMI Filter action)', () => {
  it.each(TRACES)('%s: a filtered session gives the same webhooks as the whole trace', async (path) => {
    const trace = loadTrace(path);
    const server = await serve(trace, 'apply');
    const config = configFor(path);
    const c = collector(config);
    const res = await connectAmi(
      { host: '127.0.0.1', port: server.port, username: USER, secret: SECRET, sessionFilter: amiSessionFilter(config.roles) },
      { onFrame: (f) => c.onFrame(f), accept: wantsAmiEventNamed },
      quiet,
    );
    if (!res.ok) throw res.error;
    cleanup.unshift(() => res.session.close());
    await c.drained(res.session, server);
    expect(server.actions).toEqual(['login', 'filter', 'ping']);
    expect(server.filteredOut, 'the filter held events back').toBeGreaterThan(0);
    const golden = replayRequests(trace, config);
    expect(golden.length).toBeGreaterThan(0);
    expect(c.requests).toEqual(golden);
  });

  it('sends one Filter whose parts are the manager.conf eventfilter lines', () => {
    expect(amiSessionFilter(cfg.roles)).toBe(amiEventFilters(cfg.roles).join('|'));
    // As Asterisk compiles it: POSIX extended without REG_NEWLINE, `.` spans lines.
    const re = new RegExp(amiSessionFilter(cfg.roles), 's');
    const step = (context: string, exten: string, app: string): string =>
      `Event: Newexten\r\nChannel: PJSIP/117-00000001\r\nContext: ${context}\r\nExten: ${exten}\r\nPriority: 1\r\nApplication: ${app}\r\nAppData: x\r\n`;
    const passes: Array<[string, boolean]> = [
      ['Event: Newchannel\r\nChannel: PJSIP/117-00000001\r\n', true],
      ['Event: VarSet\r\nVariable: QUEUESTATUS\r\nValue: TIMEOUT\r\n', true],
      ['Event: CEL\r\nEventName: STREAM_END\r\nApplication: VoiceMail\r\n', true],
      ['Event: VarSet\r\nVariable: SIPDOMAIN\r\nValue: x\r\n', false],
      ['Event: RTCPSent\r\nChannel: PJSIP/117-00000001\r\n', false],
      ['Event: CEL\r\nEventName: ANSWER\r\n', false],
      // Dialplan steps: only where a route can be named.
      [step('ext-queues', '400', 'Set'), true],
      [step('ivr-3', 's', 'Answer'), true],
      [step('followme-check', '117', 'GotoIf'), true],
      [step('from-internal', '800', 'BackGround'), true],
      [step('from-internal', '800', 'Background'), true],
      [step('macro-dial-one', 's', 'Dial'), true],
      [step('default', '100', 'VoiceMail'), true],
      [step('internal', '830', 'Set'), true], // roles.ring_groups: 830@internal
      [step('macro-user-callerid', 's', 'Set'), false],
      [step('from-trunk', '02125550117', 'Goto'), false],
    ];
    for (const [text, want] of passes) expect(re.test(text), text).toBe(want);
    // Every event the normaliser has a handler for passes, spelled as Asterisk documents it.
    for (const handled of HANDLED_AMI_EVENTS.filter((h) => h !== 'varset' && h !== 'cel' && h !== 'newexten')) {
      expect(AMI_EVENTS.some((n) => n.toLowerCase() === handled && re.test(`Event: ${n}\r\n`)), handled).toBe(true);
    }
  });

  it('refused (no write = system): one warning naming the manager.conf lines, the same webhooks unfiltered', async () => {
    const trace = loadTrace('test/fixtures/asterisk-freepbx/fpbx-queue-blind-transfer.ami');
    const server = await serve(trace, 'refuse');
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) });
    const log = pino({ level: 'info' }, sink);
    const c = collector();
    const ingest = startAmiIngest(
      { type: 'asterisk', host: '127.0.0.1', port: server.port, username: USER, secret: SECRET, eventFilter: 'auto' },
      (f) => c.onFrame(f),
      log,
      undefined,
      wantsAmiEventNamed,
    );
    cleanup.unshift(() => ingest.close());
    await ingest.ready;
    await c.drained(ingest.session!, server);
    expect(c.requests).toEqual(replayRequests(trace));
    expect(server.filteredOut).toBe(0);

    // A reconnect is refused again, and says nothing new.
    server.setTrace(Buffer.from('Asterisk Call Manager/11.0.0\r\n'));
    const before = ingest.session;
    server.dropClients();
    const deadline = Date.now() + 30_000;
    while (!(ingest.connected && ingest.session !== before) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(ingest.session).not.toBe(before);
    expect(server.actions.filter((a) => a === 'filter')).toHaveLength(2);

    const refused = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['code'] === 'PBXHOOK_AMI_FILTER_REFUSED');
    expect(refused).toHaveLength(1);
    expect(refused[0]!['level']).toBe(40);
    expect(refused[0]!['said']).toBe('Permission denied');
    for (const f of amiEventFilters()) expect(String(refused[0]!['managerConf'])).toContain(`eventfilter = ${f}`);
    for (const l of lines) expect(l).not.toContain(SECRET);
  });

  it('a Filter never answered is a refusal after the timeout: the session carries on unfiltered, no reconnect', async () => {
    const trace = loadTrace('test/fixtures/asterisk-freepbx/fpbx-queue-blind-transfer.ami');
    const server = await serve(trace, 'ignore');
    const c = collector();
    const refusals: string[] = [];
    const res = await connectAmi(
      { host: '127.0.0.1', port: server.port, username: USER, secret: SECRET, timeoutMs: 300, sessionFilter: amiSessionFilter() },
      { onFrame: (f) => c.onFrame(f), onFilterRefused: (said) => void refusals.push(said) },
      quiet,
    );
    expect(res.ok).toBe(true);
    if (!res.ok) return;
    cleanup.unshift(() => res.session.close());
    expect(refusals).toEqual(['no answer to the Filter action within 300 ms']);
    await c.drained(res.session, server);
    expect(c.requests).toEqual(replayRequests(trace));
    expect(server.actions.filter((a) => a === 'login')).toHaveLength(1);
  });

  it('check-config prints the manager.conf lines for the config, its roles included', async () => {
    const run = await runAsync(process.execPath, ['dist/cli.js', 'check-config', 'config/all-schemas.example.yaml'], { timeout: 50_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain('AMI event filter: auto');
    for (const f of amiEventFilters(cfg.roles)) expect(run.stdout).toContain(`    eventfilter = ${f}\n`);
    expect(run.stdout).toContain('.*Exten: (830|831)');
  });

  it('pbx.event_filter: off sends no Filter action', async () => {
    const trace = loadTrace('test/fixtures/asterisk/in-busy.ami');
    const server = await startFakeAmi({ trace, username: USER, secret: SECRET });
    cleanup.push(() => server.close());
    const c = collector();
    const ingest = startAmiIngest(
      { type: 'asterisk', host: '127.0.0.1', port: server.port, username: USER, secret: SECRET, eventFilter: 'off' },
      (f) => c.onFrame(f),
      pino({ level: 'silent' }),
    );
    cleanup.unshift(() => ingest.close());
    await ingest.ready;
    await c.drained(ingest.session!, server);
    expect(server.actions).toEqual(['login', 'ping']);
    expect(c.requests).toEqual(replayRequests(trace));
  });
});
