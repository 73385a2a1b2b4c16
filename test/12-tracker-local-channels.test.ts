import { describe, expect, it } from 'vitest';
import type { Party, PbxEvent } from '../src/core/events.js';
import type { CallEvent, LifecycleEvent } from '../src/core/lifecycle.js';
import { Tracker } from '../src/core/tracker.js';

/**
 * Local channels are wires, not parties (issue #12): the phone at the end of a chain of Local pairs
 * is the leg, as if it had been dialled directly. These feed the neutral events the AMI normaliser
 * makes of the FreePBX traces (test/fixtures/asterisk-freepbx: queue members `Local/NNN@from-queue/n`,
 * `#` ring group members, originates), cut to the events the tracker reads; the goldens of
 * test/43-golden-freepbx cover the same on the real traces.
 */

const trunk: Party = { kind: 'trunk', id: 'trunk' };
const ext = (id: string): Party => ({ kind: 'extension', id });
const local = (id: string): Party => ({ kind: 'local', id });

function channel(id: string, name: string, party: Party, at = 0, call = 'c'): PbxEvent {
  const num = party.kind === 'trunk' ? '05552221133' : party.kind === 'extension' ? party.id : '';
  return { type: 'channel.created', at, channel: id, call, name, party, callerId: { num, name: num }, dialed: '02125550400' };
}

/** A Local pair `Local/<target>-<seq>;1/;2` with channel ids `<id>1`, `<id>2`. */
function localPair(id: string, target: string, at: number): PbxEvent[] {
  return [channel(`${id}1`, `Local/${target}-${id};1`, local(target), at), channel(`${id}2`, `Local/${target}-${id};2`, local(target), at)];
}

const dial = (at: number, from: string | undefined, to: string, target = to): PbxEvent =>
  from === undefined ? { type: 'dial.begin', at, to, target } : { type: 'dial.begin', at, from, to, target };
const dialEnd = (at: number, from: string | undefined, to: string, status: 'answer' | 'noanswer' | 'cancel' | 'busy'): PbxEvent =>
  from === undefined ? { type: 'dial.end', at, to, status } : { type: 'dial.end', at, from, to, status };
const hangup = (at: number, ch: string, cause = 16): PbxEvent => ({ type: 'channel.hangup', at, channel: ch, cause });

function run(events: PbxEvent[]): { out: LifecycleEvent[]; t: Tracker } {
  const t = new Tracker(3_600_000);
  const out: LifecycleEvent[] = [];
  for (const ev of events) out.push(...t.handle(ev));
  return { out, t };
}

function ended(out: LifecycleEvent[]): CallEvent['call'] {
  const e = out.find((x): x is Extract<CallEvent, { type: 'call.ended' }> => x.type === 'call.ended');
  if (!e) throw new Error('no call.ended');
  return e.call;
}

/** The caller 'a' in queue 400; member 202 through a Local pair, phone channel `p<n>`. */
function queueCaller(): PbxEvent[] {
  return [
    channel('a', 'PJSIP/trunk-00000001', trunk, 0),
    { type: 'route.entered', at: 5, channel: 'a', role: 'queue', number: '400' },
  ];
}
function ringMember(id: string, phone: string, member: string, at: number): PbxEvent[] {
  return [
    ...localPair(id, `${member}@from-queue`, at),
    dial(at, 'a', `${id}1`, `Local/${member}@from-queue/n`),
    channel(phone, `PJSIP/${member}-${phone}`, ext(member), at + 1),
    dial(at + 2, `${id}2`, phone, `${member}/sip:${member}@127.0.0.1`),
    { type: 'channel.ringing', at: at + 3, channel: phone },
  ];
}

describe('tracker: Local channels are wires (issue #12)', () => {
  it('a queue member rung through a Local pair is an agent leg of the queue, never a consultation', () => {
    const { out } = run([
      ...queueCaller(),
      ...ringMember('L', 'p1', '202', 10),
      dialEnd(20, 'L2', 'p1', 'answer'),
      dialEnd(21, 'a', 'L1', 'answer'),
      hangup(100, 'a'),
      hangup(101, 'L1'),
      hangup(101, 'L2'),
      hangup(102, 'p1'),
    ]);
    const dialed = out.filter((e) => e.type === 'leg.dialed');
    expect(dialed).toHaveLength(1);
    const answered = out.find((e) => e.type === 'leg.answered');
    expect(answered?.type === 'leg.answered' && answered.leg).toMatchObject({ kind: 'agent', party: ext('202'), via: { role: 'queue', number: '400' } });
    expect(answered?.type === 'leg.answered' && answered.segment.user).toBe('202');
    const call = ended(out);
    expect(call.disposition).toBe('answered');
    expect(call.legs.map((l) => [l.party.id, l.disposition])).toEqual([['202', 'answered']]);
    expect(JSON.stringify(call.legs)).not.toContain('Local');
  });

  it('a member that rings a cycle unanswered, then answers in the next: timeout, then answered (never missed)', () => {
    const { out } = run([
      ...queueCaller(),
      ...ringMember('L', 'p1', '202', 10),
      ...ringMember('M', 'p2', '204', 10),
      // app_queue's cycle ends on the wires: NOANSWER then CANCEL, and each phone is cancelled (cause 26).
      dialEnd(15_010, 'a', 'L1', 'noanswer'),
      dialEnd(15_010, 'a', 'L1', 'cancel'),
      dialEnd(15_010, 'a', 'M1', 'noanswer'),
      dialEnd(15_010, 'a', 'M1', 'cancel'),
      hangup(15_011, 'L1', 0),
      dialEnd(15_011, 'L2', 'p1', 'cancel'),
      hangup(15_012, 'L2', 0),
      hangup(15_012, 'p1', 26),
      hangup(15_011, 'M1', 0),
      dialEnd(15_011, 'M2', 'p2', 'cancel'),
      hangup(15_012, 'M2', 0),
      hangup(15_012, 'p2', 26),
      // Second cycle: 202 answers, 204 loses the race.
      ...ringMember('N', 'p3', '202', 20_000),
      ...ringMember('O', 'p4', '204', 20_000),
      dialEnd(24_000, 'N2', 'p3', 'answer'),
      dialEnd(24_001, 'a', 'N1', 'answer'),
      dialEnd(24_002, 'a', 'O1', 'cancel'),
      hangup(24_003, 'O1', 0),
      dialEnd(24_003, 'O2', 'p4', 'cancel'),
      hangup(24_004, 'O2', 0),
      hangup(24_004, 'p4', 26),
      hangup(40_000, 'a'),
      hangup(40_001, 'N1'),
      hangup(40_001, 'N2'),
      hangup(40_002, 'p3'),
    ]);
    const call = ended(out);
    expect(call.disposition).toBe('answered');
    expect(call.legs.map((l) => [l.party.id, l.disposition])).toEqual([
      ['202', 'timeout'],
      ['204', 'timeout'],
      ['202', 'answered'],
      ['204', 'missed'],
    ]);
    // The first cycle's legs end when the cycle does, not at the call's end.
    const timeouts = out.filter((e) => e.type === 'leg.ended' && e.leg.disposition === 'timeout');
    expect(timeouts.map((e) => e.at)).toEqual([15_010, 15_010]);
  });

  it('a caller who hangs up while a Local member rings abandoned it, whatever cause app_queue gives the phone', () => {
    const { out } = run([
      ...queueCaller(),
      ...ringMember('L', 'p1', '202', 10),
      { type: 'queue.left', at: 8_000, channel: 'a', queue: '400', outcome: 'abandoned' },
      dialEnd(8_000, 'a', 'L1', 'cancel'),
      hangup(8_001, 'L1', 0),
      dialEnd(8_001, 'L2', 'p1', 'cancel'),
      hangup(8_002, 'L2', 0),
      hangup(8_002, 'p1', 26),
      hangup(8_003, 'a'),
    ]);
    const call = ended(out);
    expect(call.disposition).toBe('abandoned');
    expect(call.legs.map((l) => l.disposition)).toEqual(['abandoned']);
  });

  it('follows a chain of Local pairs of any depth (a # ring group member reaching follow-me)', () => {
    const { out } = run([
      channel('a', 'PJSIP/trunk-00000001', trunk, 0),
      { type: 'route.entered', at: 1, channel: 'a', role: 'ringgroup', number: '601' },
      ...localPair('G', '117@from-internal', 2),
      dial(2, 'a', 'G1'),
      ...localPair('F', 'FMPR-117@from-internal', 3),
      dial(3, 'G2', 'F1'),
      channel('p', 'PJSIP/117-0000000a', ext('117'), 4),
      dial(4, 'F2', 'p'),
      dialEnd(9, 'F2', 'p', 'answer'),
      dialEnd(9, 'G2', 'F1', 'answer'),
      dialEnd(9, 'a', 'G1', 'answer'),
      hangup(20, 'p'),
      hangup(20, 'F2'),
      hangup(20, 'F1'),
      hangup(20, 'G2'),
      hangup(20, 'G1'),
      hangup(21, 'a'),
    ]);
    const answered = out.find((e) => e.type === 'leg.answered');
    expect(answered?.type === 'leg.answered' && answered.leg).toMatchObject({ kind: 'agent', via: { role: 'ringgroup', number: '601' } });
    expect(ended(out).legs).toHaveLength(1);
  });

  it('an optimised Local pair (no /n) leaves the phone talking to the caller: the halves going away end nothing', () => {
    const events: PbxEvent[] = [
      ...queueCaller(),
      ...ringMember('L', 'p1', '202', 10),
      dialEnd(20, 'L2', 'p1', 'answer'),
      dialEnd(21, 'a', 'L1', 'answer'),
      // LocalOptimizationEnd: Asterisk swaps the phone into the caller's bridge and drops both halves.
      hangup(30, 'L1'),
      hangup(30, 'L2'),
    ];
    const { out, t } = run(events);
    expect(out.filter((e) => e.type === 'segment.ended' || e.type === 'call.ended')).toEqual([]);
    const end = [...t.handle(hangup(9_000, 'p1')), ...t.handle(hangup(9_001, 'a'))];
    expect(end.map((e) => e.type)).toEqual(['segment.ended', 'call.ended']);
    expect(ended(end)).toMatchObject({ disposition: 'answered', endedAt: 9_001 });
    expect(ended(end).segments.map((s) => [s.user, s.endedAt])).toEqual([['202', 9_000]]);
  });

  it('a click-to-call originated through a Local channel: the phone it rings is the origin, the number it dials the customer', () => {
    const { out } = run([
      ...localPair('L', '117@from-internal', 0),
      dial(1, undefined, 'L1', 'Local/117@from-internal'),
      channel('p', 'PJSIP/117-00000001', ext('117'), 2),
      dial(2, 'L2', 'p'),
      dialEnd(5_000, 'L2', 'p', 'answer'),
      dialEnd(5_001, undefined, 'L1', 'answer'),
      channel('t', 'PJSIP/trunk-00000002', trunk, 5_010),
      dial(5_010, 'L1', 't', 'PJSIP/05552221133@trunk'),
      dialEnd(8_000, 'L1', 't', 'answer'),
      hangup(20_000, 'p'),
      hangup(20_000, 'L2'),
      hangup(20_001, 'L1'),
      hangup(20_002, 't'),
    ]);
    const started = out.find((e) => e.type === 'call.started');
    expect(started?.type === 'call.started' && started.call).toMatchObject({ direction: 'outbound', clickToCall: true, originExtension: '117', customerNumber: '05552221133' });
    const call = ended(out);
    expect(call.legs.map((l) => [l.kind, l.party.id])).toEqual([['origin', '117'], ['customer', 'trunk']]);
    expect(call.segments.map((s) => s.user)).toEqual(['117']);
  });
});

describe('tracker: dispositions from what happened (issue #12)', () => {
  it('a phone that declines (HangupRequest cause 21 before Dial says NOANSWER) is declined, not a ring timeout', () => {
    const { out } = run([
      channel('a', 'PJSIP/trunk-00000001', trunk, 0),
      channel('b', 'PJSIP/117-00000002', ext('117'), 1),
      dial(1, 'a', 'b'),
      { type: 'channel.ringing', at: 2, channel: 'b' },
      { type: 'channel.cause', at: 3_000, channel: 'b', cause: 21 },
      dialEnd(3_000, 'a', 'b', 'noanswer'),
      hangup(3_001, 'b', 21),
      hangup(3_002, 'a'),
    ]);
    const call = ended(out);
    expect(call.legs[0]!.disposition).toBe('declined');
    expect(call.disposition).toBe('declined');
  });

  it('a declined leg without a HangupRequest is still told by its Hangup cause', () => {
    const { out } = run([
      channel('a', 'PJSIP/trunk-00000001', trunk, 0),
      channel('b', 'PJSIP/117-00000002', ext('117'), 1),
      dial(1, 'a', 'b'),
      hangup(3_001, 'b', 21),
      hangup(3_002, 'a'),
    ]);
    expect(ended(out).legs[0]!.disposition).toBe('declined');
  });

  it('a phone that dials a queue is the caller from the first event: call.started comes before the queue, with its number', () => {
    const { out } = run([
      channel('a', 'PJSIP/117-00000001', ext('117'), 0),
      { type: 'route.entered', at: 1, channel: 'a', role: 'queue', number: '400' },
    ]);
    expect(out.map((e) => e.type)).toEqual(['call.started', 'route.entered']);
    for (const e of out) expect(e.type !== 'message' && e.call).toMatchObject({ direction: 'internal', customerNumber: '117' });
  });
});
