/**
 * Reconnect and resync (issue #6), with the real daemon: a call is in progress when the fake PBX
 * goes away; it comes back and lists the channels it has up. Calls whose channels are gone end
 * with their normal webhooks; calls still up are kept and later events continue them, to the very
 * bytes a replay of the uninterrupted trace gives. The connection's state changes are logged once
 * each, not once per reconnect attempt.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { AmiFramer } from '../src/ami/framer.js';
import { EslFramer } from '../src/esl/framer.js';
import { describe, expect, it } from 'vitest';
import { AmiChannelList } from '../src/ami/resync.js';
import { loadConfig } from '../src/config/load.js';
import { channelsFromShowJson } from '../src/esl/resync.js';
import { Pipeline } from '../src/pipeline.js';
import { splitTrace as splitAmi, startFakeAmi } from './support/fakeAmiServer.js';
import { splitTrace as splitEsl, startFakeEsl } from './support/fakeEslServer.js';
import { LAB_CONFIG } from './support/replayTrace.js';
import { type Daemon, type Receiver, ROOT, exitWithin, replay, startDaemon, startReceiver, waitFor, e2eSandbox } from './support/e2e.js';

const SECRET = 'resync-Secret-4Kp';
const TOKEN = 'resync-tok-8Hd2';
/** How long the PBX stays away: long enough for two reconnect attempts (0.5–1 s, then 1–2 s). */
const DOWN_MS = 2_600;

/** One PBX as the test needs it: a trace cut where the call is answered, and a fake server. */
interface Scenario {
  readonly name: string;
  /** The whole trace; the first part ends where the call is answered, the rest follows later. */
  readonly trace: string;
  cut(trace: Buffer): { first: Buffer; rest: Buffer; alive: string[] };
  start(first: Buffer): Promise<FakePbx>;
  /** `type:` first, then the rest of the pbx section and the roles. */
  yaml(port: number): string[];
}

/** What both fake servers offer for this test. */
interface FakePbx {
  readonly port: number;
  setChannels(ids: readonly string[]): void;
  setTrace(trace: Buffer): void;
  send(bytes: Buffer): void;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

const AMI: Scenario = {
  name: 'Asterisk AMI',
  trace: path.join(ROOT, 'test/fixtures/asterisk/in-queue-answered.ami'),
  cut(trace) {
    const { banner, messages } = splitAmi(trace);
    const at = messages.findIndex((m) => /^Event: BridgeEnter\r?$/m.test(m.bytes.toString('latin1'))) + 1;
    const alive = new Set<string>();
    for (const m of messages.slice(0, at)) {
      const text = m.bytes.toString('latin1');
      const id = /^Uniqueid: (\S+)/im.exec(text)?.[1];
      if (id && /^Event: Newchannel\r?$/m.test(text)) alive.add(id);
      if (id && /^Event: Hangup\r?$/m.test(text)) alive.delete(id);
    }
    return {
      first: Buffer.concat([banner, ...messages.slice(0, at).map((m) => m.bytes)]),
      rest: Buffer.concat(messages.slice(at).map((m) => m.bytes)),
      alive: [...alive],
    };
  },
  start: (first) => startFakeAmi({ trace: first, username: 'admin', secret: SECRET }),
  yaml: (port) => ['  type: asterisk', `  port: ${port}`, '  username: admin', `  secret: ${SECRET}`, 'roles:', '  ring_groups: ["830@internal", "831@internal"]'],
};

const ESL: Scenario = {
  name: 'FreeSWITCH ESL',
  trace: path.join(ROOT, 'test/fixtures/freeswitch/in-queue-answered.esl'),
  cut(trace) {
    const events = splitEsl(trace).filter((f) => f.event);
    const at = events.findIndex((f) => f.bytes.includes('Event-Name: CHANNEL_BRIDGE\n')) + 1;
    const alive = new Set<string>();
    for (const f of events.slice(0, at)) {
      const text = f.bytes.toString('latin1');
      const id = /^Unique-ID: (\S+)/m.exec(text)?.[1];
      if (id && text.includes('Event-Name: CHANNEL_CREATE\n')) alive.add(id);
      if (id && text.includes('Event-Name: CHANNEL_DESTROY\n')) alive.delete(id);
    }
    return {
      first: Buffer.concat(events.slice(0, at).map((f) => f.bytes)),
      rest: Buffer.concat(events.slice(at).map((f) => f.bytes)),
      alive: [...alive],
    };
  },
  start: (first) => startFakeEsl({ trace: first, password: SECRET }),
  yaml: (port) => ['  type: freeswitch', `  port: ${port}`, `  password: ${SECRET}`, 'roles:', '  ring_groups: ["830@default", "831@default"]'],
};

describe('channel lists', () => {
  it('AMI: collects the Uniqueids tagged with its ActionID, and believes only a complete list', () => {
    const list = new AmiChannelList();
    const req = list.request();
    expect(req).toEqual({ Action: 'CoreShowChannels', ActionID: 'pbxhook-resync-1' });
    const id = req.ActionID!;
    const f = (fields: Record<string, string>) => list.frame({ fields });
    expect(f({ response: 'Success', actionid: id, eventlist: 'start' })).toBeUndefined();
    expect(f({ event: 'CoreShowChannel', actionid: id, uniqueid: '1.1' })).toBeUndefined();
    expect(f({ event: 'CoreShowChannel', actionid: 'someone-else', uniqueid: '9.9' })).toBeUndefined();
    expect(f({ event: 'Newchannel', uniqueid: '1.3' })).toBeUndefined();
    expect(f({ event: 'CoreShowChannel', actionid: id, uniqueid: '1.2' })).toBeUndefined();
    expect(f({ event: 'CoreShowChannelsComplete', actionid: id, listitems: '2' })).toEqual({ ok: true, channels: ['1.1', '1.2'] });
    expect(f({ event: 'CoreShowChannelsComplete', actionid: id, listitems: '0' }), 'answered once').toBeUndefined();

    const again = list.request().ActionID!;
    expect(list.frame({ fields: { event: 'CoreShowChannelsComplete', actionid: again, listitems: '3' } })).toMatchObject({ ok: false });
    const third = list.request().ActionID!;
    expect(list.frame({ fields: { response: 'Error', actionid: third, message: 'Permission denied' } })).toEqual({
      ok: false,
      message: 'CoreShowChannels refused: Permission denied',
    });
  });

  it('ESL: reads the uuids of `show channels as json`, and believes only a complete list', () => {
    expect(channelsFromShowJson('{"row_count":0}')).toEqual({ ok: true, channels: [] });
    expect(channelsFromShowJson('{"row_count":2,"rows":[{"uuid":"a","name":"sofia/x"},{"uuid":"b"}]}')).toEqual({ ok: true, channels: ['a', 'b'] });
    expect(channelsFromShowJson('{"row_count":2,"rows":[{"uuid":"a"}]}')).toMatchObject({ ok: false });
    expect(channelsFromShowJson('-ERR no reply\n')).toEqual({ ok: false, message: 'show channels: -ERR no reply' });
  });

  it('a channel created while the list was on its way counts as alive', () => {
    const pipeline = new Pipeline(loadConfig(LAB_CONFIG));
    const created = (channel: string) => pipeline.pbxEvent({
      type: 'channel.created', at: 1, channel, call: channel, name: `PJSIP/trunk-${channel}`,
      party: { kind: 'trunk', id: 'trunk' }, callerId: { num: '0555', name: '' }, dialed: '0212',
    });
    created('before');
    pipeline.beginResync();
    created('during');
    pipeline.pbxEvent({ type: 'channels.snapshot', at: 2, channels: [] });
    expect([...pipeline.tracker.calls.keys()]).toEqual(['during']);
    expect(pipeline.tracker.stats.callsResynced).toBe(1);
  });
});

const sandbox = e2eSandbox('pbxhook-resync-');

function writeConfig(s: Scenario, pbxPort: number, crmPort: number): string {
  const folder = mkdtempSync(path.join(sandbox.tmp, 'case-'));
  const yaml = path.join(folder, 'pbxhook.yaml');
  const [type, ...rest] = s.yaml(pbxPort);
  const lines = ['pbx:', type!, '  host: 127.0.0.1', ...rest, 'calls:', '  timezone: UTC', 'ops:', '  listen: 127.0.0.1:0', `state_dir: ${path.join(folder, 'state')}`, 'webhooks: ./webhooks.ini', ''];
  writeFileSync(yaml, lines.join('\n'));
  writeFileSync(path.join(folder, 'webhooks.ini'), `[crm]\nurl = http://127.0.0.1:${crmPort}/3cx\nschema = 3cx\nvariant = json\ntoken = ${TOKEN}\nrecording_url = http://127.0.0.1:${crmPort}/recordings/{file}\n`);
  return yaml;
}

/** Plays the first part, takes the PBX away for DOWN_MS, brings it back listing `alive`. */
async function dropMidCall(s: Scenario, alive: (cut: ReturnType<Scenario['cut']>) => string[]) {
  const cut = s.cut(readFileSync(s.trace));
  expect(cut.alive.length, 'channels up at the cut').toBeGreaterThan(0);
  const pbx = await s.start(cut.first);
  sandbox.defer(() => pbx.close());
  const crm: Receiver = await startReceiver();
  sandbox.defer(() => crm.close());
  const yaml = writeConfig(s, pbx.port, crm.port);
  const trace = path.join(sandbox.tmp, `first${path.extname(s.trace)}`);
  writeFileSync(trace, cut.first);
  const before = replay(trace, yaml);
  expect(before.length, 'webhooks before the drop').toBeGreaterThan(0);

  const daemon = startDaemon(yaml);
  await waitFor(() => crm.ok().length >= before.length, () => `${before.length} webhooks before the drop\n${daemon.out.stderr}`, 20_000);
  await pbx.down();
  await waitFor(() => /connection lost/.test(daemon.out.stderr), () => `"connection lost"\n${daemon.out.stderr}`, 30_000);
  await new Promise((r) => setTimeout(r, DOWN_MS));
  pbx.setTrace(Buffer.alloc(0));
  pbx.setChannels(alive(cut));
  await pbx.up();
  await waitFor(() => /resynced live calls/.test(daemon.out.stderr), () => `"resynced live calls"\n${daemon.out.stderr}`, 30_000);
  return { cut, pbx, crm, daemon, before };
}

async function stop(d: Daemon): Promise<void> {
  d.child.kill('SIGTERM');
  expect(await exitWithin(d, 30_000)).toEqual({ code: 0, signal: null });
}

/** The state changes are logged once each; a refused reconnect attempt is logged once, not per attempt. */
function expectOneLinePerStateChange(d: Daemon): void {
  const msgs = d.logs().map((l) => String(l.msg));
  expect(msgs.filter((m) => /connection lost/.test(m)), msgs.join('\n')).toHaveLength(1);
  expect(msgs.filter((m) => /connection restored/.test(m)), msgs.join('\n')).toHaveLength(1);
  expect(msgs.filter((m) => /reconnect failed/.test(m)), msgs.join('\n')).toHaveLength(1);
  for (const secret of [SECRET, TOKEN]) expect(d.out.stderr).not.toContain(secret);
}

const bodies = (crm: Receiver) => crm.ok().map((r) => JSON.parse(r.body) as Record<string, string>);

describe.each([AMI, ESL])('reconnect and resync: $name', (s) => {
  it('a call that ended while disconnected is closed, with its end webhooks', async () => {
    const { crm, daemon, before } = await dropMidCall(s, () => []);
    // 3CX: the answered call's end ("incoming", Finishtype Ok) and its recording.
    await waitFor(() => crm.ok().length >= before.length + 2, () => `the end webhooks\n${daemon.out.stderr}`, 30_000);
    await stop(daemon);
    const got = bodies(crm);
    expect(crm.ok().slice(0, before.length).map((r) => r.body)).toEqual(before.map((l) => l.body));
    const after = got.slice(before.length);
    expect(after.map((b) => b.Event)).toEqual(['incoming', 'recording']);
    expect(after[0]).toMatchObject({ Finishtype: 'Ok', Id: got[before.length - 1]!.Id });
    const resynced = daemon.logs().find((l) => l.msg === 'resynced live calls after reconnect');
    expect(resynced).toMatchObject({ pbxChannels: 0, callsClosed: 1, liveCalls: 0 });
    expectOneLinePerStateChange(daemon);
  });

  it('a call still up is kept, and later events continue it: same bytes as a replay of the whole trace', async () => {
    const { pbx, crm, daemon, cut } = await dropMidCall(s, (c) => c.alive);
    const resynced = daemon.logs().find((l) => l.msg === 'resynced live calls after reconnect');
    expect(resynced).toMatchObject({ pbxChannels: cut.alive.length, callsClosed: 0, liveCalls: 1 });
    pbx.send(cut.rest);
    const whole = replay(s.trace, writeConfig(s, pbx.port, crm.port));
    await waitFor(() => crm.ok().length >= whole.length, () => `${whole.length} webhooks\n${daemon.out.stderr}`, 30_000);
    await stop(daemon);
    expect(crm.ok().map((r) => r.body)).toEqual(whole.map((l) => l.body));
    expectOneLinePerStateChange(daemon);
  });
});

/**
 * A restart mid-call (issue #14 item 2): the first run reads the trace up to the answer; the second
 * finds the call in the outbox's live state and checks it against the PBX's channel list at login.
 */
describe.each([AMI, ESL])('restart mid-call: $name', (s) => {
  /** The first run: the trace up to the cut, every webhook of it delivered. */
  async function firstRun() {
    const cut = s.cut(readFileSync(s.trace));
    const pbx = await s.start(cut.first);
    sandbox.defer(() => pbx.close());
    const crm: Receiver = await startReceiver();
    sandbox.defer(() => crm.close());
    const yaml = writeConfig(s, pbx.port, crm.port);
    const trace = path.join(sandbox.tmp, `first${path.extname(s.trace)}`);
    writeFileSync(trace, cut.first);
    const before = replay(trace, yaml);
    const whole = replay(s.trace, yaml);
    const daemon = startDaemon(yaml);
    await waitFor(() => crm.ok().length >= before.length, () => `${before.length} webhooks before the restart\n${daemon.out.stderr}`, 20_000);
    return { cut, pbx, crm, yaml, before, whole, daemon, trace };
  }

  /** The second run: the PBX lists `alive` and streams `rest`. */
  async function secondRun(r: Awaited<ReturnType<typeof firstRun>>, alive: string[], rest: Buffer): Promise<Daemon> {
    r.pbx.setChannels(alive);
    r.pbx.setTrace(rest);
    const daemon = startDaemon(r.yaml);
    await waitFor(() => /resynced live calls after restart/.test(daemon.out.stderr), () => `"resynced live calls after restart"\n${daemon.out.stderr}`, 20_000);
    return daemon;
  }

  it('SIGTERM: the call continues, every webhook delivered once, the same bytes as without a restart', async () => {
    const r = await firstRun();
    await stop(r.daemon);
    expect(r.daemon.logs().find((l) => l.msg === 'stopping')).toMatchObject({ liveCalls: 1 });
    const d2 = await secondRun(r, r.cut.alive, r.cut.rest);
    expect(d2.logs().find((l) => String(l.msg).startsWith('live calls restored'))).toMatchObject({ calls: 1 });
    await waitFor(() => r.crm.ok().length >= r.whole.length, () => `${r.whole.length} webhooks\n${d2.out.stderr}`, 20_000);
    await stop(d2);
    expect(r.crm.ok().map((x) => x.body)).toEqual(r.whole.map((l) => l.body));
    const ids = r.crm.ok().map((x) => String(x.headers['webhook-id']));
    expect(new Set(ids).size, 'each webhook once').toBe(r.whole.length);
    expect(d2.logs().find((l) => l.msg === 'resynced live calls after restart')).toMatchObject({ callsClosed: 0, liveCalls: 0 });
  });

  it('kill -9 after the commit of the last event read: the call continues (its end webhook with the right User and Duration)', async () => {
    const r = await firstRun();
    // The daemon committed the state of every event it read: the calls it saved are those a
    // pipeline fed the same events holds (nothing else is waited for; no sleep).
    const want = savedCalls(r.trace, r.yaml);
    await waitFor(() => sameCalls(r.yaml, want), () => `the live state committed\n${r.daemon.out.stderr}`, 20_000);
    r.daemon.child.kill('SIGKILL');
    await exitWithin(r.daemon, 10_000);
    const d2 = await secondRun(r, r.cut.alive, r.cut.rest);
    await waitFor(() => r.crm.ok().length >= r.whole.length, () => `${r.whole.length} webhooks\n${d2.out.stderr}`, 20_000);
    await stop(d2);
    expect(r.crm.ok().map((x) => x.body)).toEqual(r.whole.map((l) => l.body));
    const end = bodies(r.crm).find((b) => b.Event === 'incoming')!;
    const wanted = r.whole.map((l) => JSON.parse(l.body) as Record<string, string>).find((b) => b.Event === 'incoming')!;
    expect(end).toMatchObject({ User: wanted.User, Duration: wanted.Duration, Finishtype: 'Ok' });
    expect(end.User).not.toBe('');
  });

  it('a call that ended while the daemon was down ends at the restart, with its normal end webhooks', async () => {
    const r = await firstRun();
    await stop(r.daemon);
    const d2 = await secondRun(r, [], Buffer.alloc(0));
    await waitFor(() => r.crm.ok().length >= r.before.length + 2, () => `the end webhooks\n${d2.out.stderr}`, 20_000);
    await stop(d2);
    const got = bodies(r.crm);
    const after = got.slice(r.before.length);
    expect(after.map((b) => b.Event)).toEqual(['incoming', 'recording']);
    expect(after[0]).toMatchObject({ Finishtype: 'Ok', Id: got[r.before.length - 1]!.Id });
    expect(after[0]!.User).not.toBe('');
    expect(d2.logs().find((l) => l.msg === 'resynced live calls after restart')).toMatchObject({ pbxChannels: 0, callsClosed: 1, liveCalls: 0 });
  });
});

/**
 * FreeSWITCH's call ids carry no number, so 3CX ids number its calls in order (`…_N-K`): a call that
 * starts after a restart must get the next number, not 0 again (issue #14 item 2).
 */
describe('restart between FreeSWITCH calls', () => {
  it('the call after the restart is numbered on: the same bytes as both calls without a restart', async () => {
    const first = readFileSync(path.join(ROOT, 'test/fixtures/freeswitch/in-queue-answered.esl'));
    const second = readFileSync(path.join(ROOT, 'test/fixtures/freeswitch/out-answered.esl'));
    const both = path.join(sandbox.tmp, 'both.esl');
    writeFileSync(both, Buffer.concat([first, second]));
    const pbx = await startFakeEsl({ trace: first, password: SECRET });
    sandbox.defer(() => pbx.close());
    const crm = await startReceiver();
    sandbox.defer(() => crm.close());
    const yaml = writeConfig(ESL, pbx.port, crm.port);
    const whole = replay(both, yaml);
    const firstCall = replay(path.join(ROOT, 'test/fixtures/freeswitch/in-queue-answered.esl'), yaml);
    const numbers = (ls: typeof whole) => new Set(ls.map((l) => /_(\d+)-\d+$/.exec((JSON.parse(l.body) as { Id: string }).Id)![1]));
    expect(numbers(firstCall)).toEqual(new Set(['0']));
    expect(numbers(whole.slice(firstCall.length)), 'the second call is call 1').toEqual(new Set(['1']));

    const d1 = startDaemon(yaml);
    await waitFor(() => crm.ok().length >= firstCall.length, () => `${firstCall.length} webhooks before the restart\n${d1.out.stderr}`, 20_000);
    await stop(d1);
    pbx.setTrace(second);
    const d2 = startDaemon(yaml);
    await waitFor(() => crm.ok().length >= whole.length, () => `${whole.length} webhooks\n${d2.out.stderr}`, 20_000);
    await stop(d2);
    expect(crm.ok().map((x) => x.body)).toEqual(whole.map((l) => l.body));
  });
});

/** The `call:` rows a pipeline holds after reading `trace` (as the daemon saves them). */
function savedCalls(trace: string, yaml: string): Map<string, string> {
  const p = new Pipeline(loadConfig(yaml));
  p.trackLiveState();
  const bytes = readFileSync(trace);
  if (trace.endsWith('.ami')) {
    const f = new AmiFramer();
    for (const fr of [...f.push(bytes), ...f.end()]) p.amiFrame(fr);
  } else {
    const f = new EslFramer();
    for (const fr of [...f.push(bytes), ...f.end()]) p.eslFrame(fr);
  }
  const out = new Map<string, string>();
  for (const [k, v] of p.takeLiveState()) if (k.startsWith('call:') && v !== undefined) out.set(k, v);
  return out;
}

/** True when the daemon's outbox holds exactly these `call:` rows. */
function sameCalls(yaml: string, want: ReadonlyMap<string, string>): boolean {
  const file = path.join(path.dirname(yaml), 'state', 'outbox.sqlite');
  if (!existsSync(file)) return false;
  const db = new Database(file, { readonly: true });
  try {
    const rows = db.prepare(`SELECT key, value FROM live_state WHERE key LIKE 'call:%'`).raw().all() as Array<[string, string]>;
    return rows.length === want.size && rows.every(([k, v]) => want.get(k) === v);
  } catch {
    return false;
  } finally {
    db.close();
  }
}
