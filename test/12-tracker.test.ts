import { describe, expect, it } from 'vitest';
import { frameAll } from '../src/ami/framer.js';
import { AmiNormaliser } from '../src/ami/normalise.js';
import type { AmiFrame } from '../src/ami/frame.js';
import { loadConfig } from '../src/config/load.js';
import type { PbxEvent } from '../src/core/events.js';
import { DEFAULT_ROLES, RoleBook } from '../src/core/roles.js';
import { Tracker } from '../src/core/tracker.js';
import type { CallEvent, LifecycleEvent } from '../src/core/lifecycle.js';
import { Pipeline } from '../src/pipeline.js';
import { loadTrace } from './support/fakeAmiServer.js';

/** The call of a lifecycle event (these tests see no text messages). */
function callOf(e: LifecycleEvent | undefined): CallEvent['call'] {
  if (!e || e.type === 'message') throw new Error(`expected a call event, got ${e?.type}`);
  return e.call;
}

const trunk = { kind: 'trunk', id: 'trunk' } as const;
const ext = (id: string) => ({ kind: 'extension', id }) as const;
const cid = (num: string) => ({ num, name: num });

function created(channel: string, call: string, party: { kind: 'trunk' | 'extension'; id: string }, at = 0): PbxEvent {
  return { type: 'channel.created', at, channel, call, name: `PJSIP/${party.id}-${channel}`, party, callerId: cid(party.kind === 'trunk' ? '0555' : party.id), dialed: '0212' };
}

describe('tracker', () => {
  it('closes a call that never sees a Hangup after the idle timeout, and forgets it', () => {
    const t = new Tracker(60_000);
    t.handle(created('a', 'a', trunk, 1_000));
    t.handle({ type: 'dial.begin', at: 2_000, from: 'a', to: 'b', target: 'PJSIP/117' });
    expect(t.liveCalls).toBe(1);
    expect(t.tick(30_000)).toEqual([]);
    const out = t.tick(62_000);
    expect(out.map((e) => e.type)).toEqual(['call.ended']);
    expect(callOf(out[0]).endReason).toBe('idle-timeout');
    expect(callOf(out[0]).disposition).toBe('abandoned');
    expect(t.liveCalls).toBe(0);
    expect(t.channels.size).toBe(0);
    expect(t.stats.callsTimedOut).toBe(1);
  });

  it('counts events about channels it never saw instead of failing', () => {
    const t = new Tracker(60_000);
    expect(t.handle({ type: 'channel.hangup', at: 1, channel: 'ghost', cause: 16 })).toEqual([]);
    expect(t.handle({ type: 'dial.end', at: 1, from: 'x', to: 'ghost', status: 'answer' })).toEqual([]);
    expect(t.stats.orphanEvents).toBe(2);
    expect(t.liveCalls).toBe(0);
  });

  it('ends a busy leg as busy and the call as busy', () => {
    const t = new Tracker(60_000);
    t.handle(created('a', 'a', trunk));
    t.handle(created('b', 'a', ext('202')));
    t.handle({ type: 'dial.begin', at: 1, from: 'a', to: 'b', target: '202' });
    const leg = t.handle({ type: 'dial.end', at: 2, from: 'a', to: 'b', status: 'busy' });
    expect(leg.map((e) => e.type)).toEqual(['leg.ended']);
    t.handle({ type: 'channel.hangup', at: 3, channel: 'b', cause: 17 });
    const end = t.handle({ type: 'channel.hangup', at: 4, channel: 'a', cause: 17 });
    expect(end.map((e) => e.type)).toEqual(['call.ended']);
    expect(callOf(end[0]).disposition).toBe('busy');
    expect(callOf(end[0]).legs[0]!.disposition).toBe('busy');
  });

  it('keeps the first DialEnd of a leg (app_queue sends NOANSWER, then CANCEL)', () => {
    const t = new Tracker(60_000);
    t.handle(created('a', 'a', trunk));
    t.handle(created('b', 'a', ext('202')));
    t.handle({ type: 'dial.begin', at: 1, from: 'a', to: 'b', target: 'PJSIP/202' });
    t.handle({ type: 'dial.end', at: 2, from: 'a', to: 'b', status: 'noanswer' });
    t.handle({ type: 'dial.end', at: 2, from: 'a', to: 'b', status: 'cancel' });
    t.handle({ type: 'channel.hangup', at: 3, channel: 'b', cause: 0 });
    const end = t.handle({ type: 'channel.hangup', at: 4, channel: 'a', cause: 16 });
    expect(callOf(end.at(-1)).legs[0]!.disposition).toBe('timeout');
  });

  it('reports a caller who hangs up while a phone rings as abandoned', () => {
    const t = new Tracker(60_000);
    t.handle(created('a', 'a', trunk));
    t.handle(created('b', 'a', ext('117')));
    t.handle({ type: 'dial.begin', at: 1, from: 'a', to: 'b', target: '117' });
    t.handle({ type: 'dial.end', at: 5, from: 'a', to: 'b', status: 'cancel' });
    t.handle({ type: 'channel.hangup', at: 5, channel: 'b', cause: 0 });
    const end = t.handle({ type: 'channel.hangup', at: 5, channel: 'a', cause: 16 });
    const ended = end.find((e) => e.type === 'call.ended')!;
    expect(callOf(ended).disposition).toBe('abandoned');
    expect(callOf(ended).legs[0]!.disposition).toBe('abandoned');
  });
});

describe('AMI normaliser on bad input', () => {
  const n = new AmiNormaliser(new RoleBook(DEFAULT_ROLES), () => 42);
  const frame = (fields: Record<string, string>): AmiFrame => ({ fields });

  it('counts unknown events and keeps going', () => {
    expect(n.normalise(frame({ event: 'SomethingNew', uniqueid: '1' }))).toBeUndefined();
    expect(n.normalise(frame({ event: 'constructor' }))).toBeUndefined();
    expect(n.stats.unknown).toBe(2);
  });

  it('turns events with missing fields into harmless values, with the clock as time', () => {
    const ev = n.normalise(frame({ event: 'Hangup' }));
    expect(ev).toEqual({ type: 'channel.hangup', at: 42, channel: '', cause: 0 });
    const t = new Tracker(1000);
    expect(t.handle(ev!)).toEqual([]);
    expect(t.stats.orphanEvents).toBe(1);
  });

  it('ignores responses (no Event header) without counting them as events', () => {
    const before = n.stats.events;
    expect(n.normalise(frame({ response: 'Success' }))).toBeUndefined();
    expect(n.stats.events).toBe(before);
  });
});

/**
 * app_voicemail tells neither a message's length nor when its recording starts; CEL's prompt events
 * bound it: from the end of the beep to the next prompt, or to the MessageWaiting (issue #12 item 6).
 */
describe('AMI normaliser: a voicemail message\'s length', () => {
  const frame = (fields: Record<string, string>): AmiFrame => ({ fields });
  const prompt = (name: 'STREAM_BEGIN' | 'STREAM_END', seconds: number, sound = '', channel = 'c', app = 'VoiceMail'): AmiFrame =>
    frame({ event: 'CEL', eventname: name, application: app, uniqueid: channel, timestamp: String(seconds), extra: sound ? JSON.stringify({ sound, format: 'gsm' }) : '' });
  const saved = (seconds: number, channel = 'c'): AmiFrame =>
    frame({ event: 'MessageWaiting', uniqueid: channel, mailbox: '117@default', new: '1', timestamp: String(seconds) });
  const lengthOf = (n: AmiNormaliser, frames: AmiFrame[]): number | undefined => {
    let left: PbxEvent | undefined;
    for (const f of frames) left = n.normalise(f) ?? left;
    return left?.type === 'voicemail.left' ? left.durationMs : undefined;
  };
  const greeting = [prompt('STREAM_BEGIN', 100, 'vm-intro'), prompt('STREAM_END', 105), prompt('STREAM_BEGIN', 105, 'beep'), prompt('STREAM_END', 105.5)];

  it('runs from the end of the beep to the message\'s save', () => {
    const n = new AmiNormaliser(new RoleBook(DEFAULT_ROLES));
    expect(lengthOf(n, [...greeting, saved(113.5)])).toBe(8_000);
    expect(n.voicemail.size).toBe(0);
  });

  it('ends at the next prompt (a review menu), and a second beep starts it again', () => {
    const n = new AmiNormaliser(new RoleBook(DEFAULT_ROLES));
    const review = [prompt('STREAM_BEGIN', 110, 'vm-review'), prompt('STREAM_END', 112)];
    expect(lengthOf(n, [...greeting, ...review, saved(115)])).toBe(4_500);
    const rerecord = [prompt('STREAM_BEGIN', 115, 'beep'), prompt('STREAM_END', 115.5), prompt('STREAM_BEGIN', 118.5, 'vm-review')];
    expect(lengthOf(n, [...greeting, ...review, ...rerecord, saved(121)])).toBe(3_000);
  });

  it('is unknown without CEL, or when the beep came from another application or channel', () => {
    const n = new AmiNormaliser(new RoleBook(DEFAULT_ROLES));
    expect(lengthOf(n, [saved(113.5)])).toBeUndefined();
    expect(lengthOf(n, [prompt('STREAM_BEGIN', 100, 'beep', 'c', 'Playback'), prompt('STREAM_END', 101, '', 'c', 'Playback'), saved(113.5)])).toBeUndefined();
    expect(lengthOf(n, [prompt('STREAM_BEGIN', 100, 'beep', 'other'), prompt('STREAM_END', 101, '', 'other'), saved(113.5)])).toBeUndefined();
  });

  it('forgets a channel at its Hangup', () => {
    const n = new AmiNormaliser(new RoleBook(DEFAULT_ROLES));
    for (const f of greeting) n.normalise(f);
    expect(n.voicemail.size).toBe(1);
    n.normalise(frame({ event: 'Hangup', uniqueid: 'c', timestamp: '120' }));
    expect(n.voicemail.size).toBe(0);
  });
});

describe('tracker: channels.snapshot after a reconnect (issue #6)', () => {
  /** An inbound call: trunk 'a' answered by extension 202 on 'b'. */
  function answeredCall(t: Tracker, call = 'a', a = 'a', b = 'b'): void {
    t.handle(created(a, call, trunk, 1_000));
    t.handle(created(b, call, ext('202'), 1_100));
    t.handle({ type: 'dial.begin', at: 1_100, from: a, to: b, target: 'PJSIP/202' });
    t.handle({ type: 'dial.end', at: 2_000, from: a, to: b, status: 'answer' });
  }

  it('closes a call whose channels are all gone, with its usual end events and endReason resync', () => {
    const t = new Tracker(3_600_000);
    answeredCall(t);
    const out = t.handle({ type: 'channels.snapshot', at: 9_000, channels: [] });
    expect(out.map((e) => e.type)).toEqual(['segment.ended', 'call.ended']); // as for a Hangup: the answered leg ended at its answer
    const ended = out.at(-1)!;
    expect(ended.type === 'call.ended' && ended.call).toMatchObject({ endReason: 'resync', disposition: 'answered', endedAt: 9_000 });
    expect(ended.type === 'call.ended' && callOf(ended).legs[0]).toMatchObject({ disposition: 'answered', cause: 0 });
    expect(t.liveCalls).toBe(0);
    expect(t.channels.size).toBe(0);
    expect(t.stats).toMatchObject({ callsEnded: 1, callsResynced: 1, orphanEvents: 0 });
  });

  it('keeps a call whose channels are still up, and later events continue it', () => {
    const t = new Tracker(3_600_000);
    answeredCall(t);
    expect(t.handle({ type: 'channels.snapshot', at: 9_000, channels: ['a', 'b', 'unknown-to-us'] })).toEqual([]);
    expect(t.liveCalls).toBe(1);
    expect(t.channels.has('unknown-to-us'), 'a channel the tracker never saw is not invented').toBe(false);
    t.handle({ type: 'channel.hangup', at: 10_000, channel: 'b', cause: 16 });
    const end = t.handle({ type: 'channel.hangup', at: 10_001, channel: 'a', cause: 16 });
    const ended = end.find((e) => e.type === 'call.ended');
    expect(ended?.call.endReason).toBe('hangup');
    expect(t.stats.callsResynced).toBe(0);
  });

  it('hangs up only the missing channel when one leg of a call is still up', () => {
    const t = new Tracker(3_600_000);
    answeredCall(t);
    const out = t.handle({ type: 'channels.snapshot', at: 9_000, channels: ['a'] });
    expect(out.map((e) => e.type)).toEqual(['segment.ended']);
    expect(t.liveCalls).toBe(1);
    expect(t.channels.get('b')?.hungUpAt).toBe(9_000);
  });

  it('closes each gone call and leaves the others alone', () => {
    const t = new Tracker(3_600_000);
    answeredCall(t, 'a', 'a', 'b');
    answeredCall(t, 'c', 'c', 'd');
    const out = t.handle({ type: 'channels.snapshot', at: 9_000, channels: ['c', 'd'] });
    expect(out.filter((e) => e.type === 'call.ended').map((e) => e.call.id)).toEqual(['a']);
    expect([...t.calls.keys()]).toEqual(['c']);
  });
});

/**
 * A REFER attended transfer: the consultation is a PBX call of its own, and the transfer moves its
 * target into the customer's call. Asterisk hangs up the consultation's transferer channel after
 * AttendedTransfer (as the synthetic trace has it); had it gone first, nothing live would be left
 * in the consultation, which must then close at the transfer, not at the idle timeout (issue #12
 * item 6; test/16 has the FreeSWITCH race).
 */
describe('tracker: a REFER consultation with nothing left closes at the transfer', () => {
  const trace = frameAll(loadTrace('test/fixtures/asterisk-synth/in-queue-attended-transfer-refer.ami')).frames;
  const transfer = trace.findIndex((f) => f.fields['event'] === 'AttendedTransfer');
  const consultLeg = trace[transfer]!.fields['secondtransfereruniqueid']!;

  function replay(frames: AmiFrame[]): { openAfterTransfer: string[]; requests: string[]; orphans: number } {
    const p = new Pipeline(loadConfig('config/all-schemas.example.yaml'));
    const requests: string[] = [];
    let openAfterTransfer: string[] = [];
    for (const f of frames) {
      for (const r of p.amiFrame(f)) requests.push(r.body);
      if (f.fields['event'] === 'AttendedTransfer') openAfterTransfer = [...p.tracker.calls.keys()];
    }
    expect(p.tracker.liveCalls).toBe(0);
    return { openAfterTransfer, requests, orphans: p.tracker.stats.orphanEvents };
  }

  it('as recorded: the consultation ends with its transferer channel\'s Hangup', () => {
    expect(trace.findIndex((f) => f.fields['event'] === 'Hangup' && f.fields['uniqueid'] === consultLeg)).toBeGreaterThan(transfer);
    expect(replay(trace).openAfterTransfer).toHaveLength(2);
  });

  it('that channel hung up first: only the customer\'s call is left after the transfer, same webhooks', () => {
    const hangup = trace.findIndex((f) => f.fields['event'] === 'Hangup' && f.fields['uniqueid'] === consultLeg);
    const raced = [...trace];
    const [h] = raced.splice(hangup, 1);
    raced.splice(transfer, 0, h!);
    const customer = trace.find((f) => f.fields['event'] === 'Newchannel')!.fields['linkedid'];
    const got = replay(raced);
    expect(got.openAfterTransfer).toEqual([customer]);
    expect(got.requests).toEqual(replay(trace).requests);
    expect(got.orphans).toBe(0);
  });
});
