import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { RoleBook } from '../src/core/roles.js';
import { partyOfChannel } from '../src/esl/channel.js';
import { decodeEvent, type EslEvent, type EslFrame } from '../src/esl/frame.js';
import { frameAll } from '../src/esl/framer.js';
import { LegBook } from '../src/esl/legs.js';
import { EslNormaliser } from '../src/esl/normalise.js';
import { Pipeline } from '../src/pipeline.js';
import { loadTrace } from './support/fakeEslServer.js';

/**
 * The ESL normaliser on its own: the transfer variants FreeSWITCH can produce besides the ones the
 * traces show, the order races between them, and the role rules. Traces are edited as decoded events
 * and fed back as json frames (the decoder reads both formats alike).
 */
const LAB = loadConfig('config/freeswitch-lab.example.yaml');
const roles = new RoleBook(LAB.roles);

function events(path: string): EslEvent[] {
  const s = { malformedLines: 0, undecodable: 0 };
  return frameAll(loadTrace(path)).frames.flatMap((f) => decodeEvent(f, s) ?? []);
}

function asFrame(ev: EslEvent): EslFrame {
  return { headers: { 'Content-Type': 'text/event-json' }, body: JSON.stringify({ ...ev.headers, ...(ev.body ? { _body: ev.body } : {}) }) };
}

/** The 3CX JSON story a list of events tells (as test/40 compares it). */
function story(evs: EslEvent[]): string[] {
  const p = new Pipeline(LAB);
  const out: string[] = [];
  for (const ev of evs) {
    for (const r of p.eslFrame(asFrame(ev))) {
      if (r.endpoint !== 'threecx-json') continue;
      const b = JSON.parse(r.body) as Record<string, string>;
      out.push(`${b['Event']} ${b['User']} ${b['Trtype'] ?? ''}${b['Transfer'] ?? ''} -${b['Id']!.split('-').pop()}`);
    }
  }
  expect(p.tracker.liveCalls).toBe(0);
  return out;
}

const with_ = (ev: EslEvent, headers: Record<string, string>): EslEvent => ({ headers: { ...ev.headers, ...headers }, body: ev.body });
const is = (name: string, uuid?: string) => (e: EslEvent): boolean =>
  e.headers['Event-Name'] === name && (uuid === undefined || e.headers['Unique-ID'] === uuid);

describe('transfers', () => {
  const blind = events('test/fixtures/freeswitch/in-queue-blind-transfer.esl');
  const api = blind.findIndex((e) => e.headers['API-Command'] === 'uuid_transfer');
  const [agent, , target] = blind[api]!.headers['API-Command-Argument']!.split(' ');
  const caller = blind.find(is('CHANNEL_CREATE'))!.headers['Unique-ID']!;
  const expected = story(blind);

  it('uuid_transfer <agent> -bleg: the recorded blind transfer', () => {
    expect(expected).toContain('incomingcall_started 204 Blind -2');
    expect(target).toBe('204');
  });

  it('uuid_transfer <caller> (no -bleg) is the same transfer, seen from the other leg', () => {
    const edited = [...blind];
    edited[api] = with_(blind[api]!, { 'API-Command-Argument': `${caller} 204 XML default` });
    expect(story(edited)).toEqual(expected);
  });

  it('a `transfer -bleg` run on the agent\'s bridged leg (a feature code) is the same transfer', () => {
    const edited = [...blind];
    const execute = blind.find(is('CHANNEL_EXECUTE', agent))!;
    edited[api] = with_(execute, { Application: 'transfer', 'Application-Data': '-bleg 204 XML default' });
    expect(story(edited)).toEqual(expected);
  });

  it('uuid_transfer -both moves both parties away: no blind transfer to report', () => {
    const edited = [...blind];
    edited[api] = with_(blind[api]!, { 'API-Command-Argument': `${agent} -both 204 XML default` });
    expect(story(edited)).not.toContain('incomingcall_started 204 Blind -2');
  });

  it('att_xfer: the agent\'s HANGUP_COMPLETE may come before the bridge that completes the transfer', () => {
    const att = events('test/fixtures/freeswitch-synth/in-queue-attended-transfer.esl');
    const want = story(att);
    expect(want).toContain('incomingcall_started 204 Attended -2');
    const aUuid = att.find((e) => e.headers['Application'] === 'att_xfer')!.headers['Unique-ID']!;
    const complete = att.findIndex(is('CHANNEL_HANGUP_COMPLETE', aUuid));
    const bridge = att.findIndex((e, i) => i > att.findIndex(is('CHANNEL_HANGUP', aUuid)) && is('CHANNEL_BRIDGE')(e));
    expect(bridge).toBeLessThan(complete);
    const raced = [...att];
    const [hc] = raced.splice(complete, 1);
    raced.splice(bridge, 0, hc!);
    expect(story(raced)).toEqual(want);
  });

  it('REFER with Replaces: 117\'s first leg names the target (transfer_to att:) even before the bridge', () => {
    const refer = events('test/fixtures/freeswitch-synth/in-queue-attended-transfer-refer.esl');
    const want = story(refer);
    expect(want).toContain('incomingcall_started 204 Attended -2');
    const first = refer.find((e) => (e.headers['variable_transfer_to'] ?? '').startsWith('att:'))!.headers['Unique-ID']!;
    const complete = refer.findIndex(is('CHANNEL_HANGUP_COMPLETE', first));
    // The caller's bridge with the target (the consultation's own bridge with it came earlier).
    const target = refer[complete]!.headers['variable_transfer_to']!.slice(4);
    const bridge = refer.findLastIndex((e) => is('CHANNEL_BRIDGE')(e) && e.headers['Bridge-B-Unique-ID'] === target);
    const raced = [...refer];
    const [hc] = raced.splice(complete, 1);
    raced.splice(bridge, 0, hc!);
    expect(story(raced)).toEqual(want);
  });

  /**
   * The consultation is a call of its own; the transfer moves its target leg into the customer's
   * call. When the phone hung up the consultation leg first (its BYE before FreeSWITCH bridges the
   * caller with the target), nothing is left in the consultation: it must close at the transfer,
   * not linger as a live call until the idle timeout (issue #12 item 6).
   */
  it('REFER with Replaces: a consultation left without a live channel closes at the transfer', () => {
    const refer = events('test/fixtures/freeswitch-synth/in-queue-attended-transfer-refer.esl');
    const want = story(refer);
    const first = refer.find((e) => (e.headers['variable_transfer_to'] ?? '').startsWith('att:'))!;
    const consultLeg = first.headers['variable_refer_uuid']!;
    const target = first.headers['variable_transfer_to']!.slice(4);
    const bridge = refer.findLastIndex((e) => is('CHANNEL_BRIDGE')(e) && e.headers['Bridge-B-Unique-ID'] === target);
    // The consultation leg's own events after the bridge (park, hangup, destroy) move before it.
    const gone = refer.filter((e, i) => i > bridge && e.headers['Unique-ID'] === consultLeg);
    expect(gone.some(is('CHANNEL_HANGUP_COMPLETE'))).toBe(true);
    const raced = refer.filter((e) => !gone.includes(e));
    raced.splice(bridge, 0, ...gone);
    expect(story(raced)).toEqual(want);

    const p = new Pipeline(LAB);
    let transferred = false;
    p.onLifecycleEvent = (e) => {
      if (e.type === 'leg.answered' && e.segment.startedBy === 'attended') transferred = true;
    };
    let openAfterTransfer: string[] | undefined;
    for (const ev of raced) {
      p.eslFrame(asFrame(ev));
      if (transferred && openAfterTransfer === undefined) openAfterTransfer = [...p.tracker.calls.keys()];
    }
    const customer = raced.find(is('CHANNEL_CREATE'))!.headers['Unique-ID'];
    expect(openAfterTransfer).toEqual([customer]);
    expect(p.tracker.stats.orphanEvents).toBe(0);
  });
});

describe('roles', () => {
  const ev = (h: Record<string, string>): EslEvent => ({ headers: h, body: '' });

  it('tells gateways, directory users, profiles and loopback channels apart', () => {
    expect(partyOfChannel(ev({ 'Channel-Name': 'sofia/external/05552221133', variable_sip_gateway_name: 'carrier' }), roles)).toEqual({ kind: 'trunk', id: 'carrier' });
    expect(partyOfChannel(ev({ 'Channel-Name': 'sofia/internal/117@127.0.0.1:15117', variable_dialed_user: '117' }), roles)).toEqual({ kind: 'extension', id: '117' });
    expect(partyOfChannel(ev({ 'Channel-Name': 'sofia/internal/alice@10.0.0.9', variable_user_name: 'alice' }), roles)).toEqual({ kind: 'extension', id: 'alice' });
    expect(partyOfChannel(ev({ 'Channel-Name': 'sofia/external/05552221133@127.0.0.1:15400', variable_sofia_profile_name: 'external' }), roles)).toEqual({ kind: 'trunk', id: 'external' });
    expect(partyOfChannel(ev({ 'Channel-Name': 'loopback/204-a' }), roles)).toEqual({ kind: 'local', id: '204' });
  });

  it('trunk_pattern overrides what the directory says', () => {
    const strict = new RoleBook({ ...LAB.roles, trunkPattern: '^9' });
    expect(partyOfChannel(ev({ 'Channel-Name': 'sofia/internal/900@x', variable_user_name: '900' }), strict)).toEqual({ kind: 'trunk', id: '900' });
  });

  it('names a hosted PBX\'s directory user 1001-12 extension 1001 when extension_pattern has a group ext for it (issue #12 item 5)', () => {
    const tenant = new RoleBook({ ...LAB.roles, extensionPattern: String.raw`^(?<ext>\d+)-\d+$` });
    // The endpoint name stays on the party, so the tracker tells tenant 12's 1001 from tenant 13's.
    const user1001 = { kind: 'extension', id: '1001', endpoint: '1001-12' };
    expect(partyOfChannel(ev({ 'Channel-Name': 'sofia/internal/1001-12@pbx.example.com', variable_user_name: '1001-12' }), tenant)).toEqual(user1001);
    expect(partyOfChannel(ev({ 'Channel-Name': 'sofia/internal/1001-12@10.0.0.9:15117', variable_dialed_user: '1001-12' }), tenant)).toEqual(user1001);
    // No directory variables: the SIP user part is judged by the pattern.
    expect(partyOfChannel(ev({ 'Channel-Name': 'sofia/internal/1001-12@10.0.0.9:5060' }), tenant)).toEqual(user1001);
    // A directory user the pattern does not take stays an extension under its own name, as before.
    expect(partyOfChannel(ev({ 'Channel-Name': 'sofia/internal/alice@10.0.0.9', variable_user_name: 'alice' }), tenant)).toEqual({ kind: 'extension', id: 'alice' });
    expect(partyOfChannel(ev({ 'Channel-Name': 'sofia/external/1001-12', variable_sip_gateway_name: 'carrier' }), tenant)).toEqual({ kind: 'trunk', id: 'carrier' });
    // Without the group the directory user is whole.
    expect(partyOfChannel(ev({ 'Channel-Name': 'sofia/internal/1001-12@x', variable_user_name: '1001-12' }), roles)).toEqual({ kind: 'extension', id: '1001-12' });

    const n = new EslNormaliser(tenant);
    const left = n.normaliseEvent(ev({ 'Event-Name': 'CUSTOM', 'Event-Subclass': 'vm::maintenance', 'VM-Action': 'leave-message', 'VM-User': '1001-12', 'Unique-ID': 'c' }));
    expect(left).toEqual([expect.objectContaining({ type: 'voicemail.left', mailbox: '1001' })]);
    const text = n.normaliseEvent({ headers: { 'Event-Name': 'MESSAGE', from_user: '1001-12', to_user: '05552221133' }, body: 'hi' });
    expect(text).toEqual([expect.objectContaining({ type: 'message', direction: 'outbound', from: '1001', to: '05552221133' })]);
  });

  it('finds ring groups in bridge dial strings, not in per-leg variables', () => {
    const n = new EslNormaliser(new RoleBook({ ...LAB.roles, ringGroups: [] }));
    const exec = (data: string): string[] =>
      n.normaliseEvent(ev({ 'Event-Name': 'CHANNEL_EXECUTE', 'Unique-ID': 'c', Application: 'bridge', 'Application-Data': data, 'Caller-Destination-Number': '831', 'Caller-Context': 'default' }))
        .map((e) => e.type);
    expect(exec('user/117@d,user/204@d')).toEqual(['route.entered']);
    expect(exec('{ignore_early_media=true}user/117@d:_:user/204@d')).toEqual(['route.entered']);
    expect(exec('[leg_timeout=15,x=y]user/117@d')).toEqual([]);
    expect(exec('user/117@d|user/204@d')).toEqual([]);
  });
});

describe('the channel book', () => {
  it('is capped: a lost CHANNEL_DESTROY cannot grow it without bound', () => {
    const book = new LegBook(2);
    for (const u of ['a', 'b', 'c']) book.add(u, u, undefined);
    expect(book.size).toBe(2);
    expect(book.evicted).toBe(1);
    expect(book.get('a')).toBeUndefined();
  });

  it('is empty after every real trace', () => {
    for (const t of ['in-queue-answered', 'in-queue-blind-transfer-refer', 'in-voicemail', 'out-missed']) {
      const n = new EslNormaliser(roles);
      for (const e of events(`test/fixtures/freeswitch/${t}.esl`)) n.normaliseEvent(e);
      expect(n.legs.size, t).toBe(0);
      expect(n.stats.unknownChannel, t).toBe(0);
    }
  });
});

/** mod_voicemail's leave-message event says how long the message is (issue #12 item 6). */
describe('voicemail message length', () => {
  const leaveMessage = (): EslEvent => {
    const ev = events('test/fixtures/freeswitch/in-voicemail.esl').find((e) => e.headers['Event-Subclass'] === 'vm::maintenance' && e.headers['VM-Action'] === 'leave-message');
    if (!ev) throw new Error('in-voicemail.esl has no leave-message event');
    return ev;
  };
  const lengthOf = (headers: Record<string, string>): unknown => {
    const [left] = new EslNormaliser(roles).normaliseEvent({ headers, body: '' });
    expect(left?.type).toBe('voicemail.left');
    return left?.type === 'voicemail.left' ? left.durationMs : undefined;
  };

  it('is the recording\'s variable_record_ms, which the real trace\'s event carries with VM-Message-Len', () => {
    const { headers } = leaveMessage();
    expect(headers['variable_record_ms']).toMatch(/^\d+$/);
    expect(headers['VM-Message-Len']).toMatch(/^\d+$/);
    expect(lengthOf(headers)).toBe(Number(headers['variable_record_ms']));
  });

  it('falls back to VM-Message-Len in seconds when the milliseconds are absent or of another recording', () => {
    const { variable_record_ms: _ms, ...headers } = leaveMessage().headers;
    const seconds = Number(headers['VM-Message-Len']);
    expect(lengthOf(headers)).toBe(seconds * 1000);
    expect(lengthOf({ ...headers, variable_record_ms: String((seconds + 5) * 1000) })).toBe(seconds * 1000);
    const { 'VM-Message-Len': _s, ...neither } = headers;
    expect(lengthOf(neither)).toBeUndefined();
  });
});

describe('causes and messages', () => {
  it('reports a ring-all loser (LOSE_RACE) as Q.850 26, answered elsewhere', () => {
    const n = new EslNormaliser(roles);
    const out = n.normaliseEvent({ headers: { 'Event-Name': 'CHANNEL_HANGUP_COMPLETE', 'Unique-ID': 'x', 'Hangup-Cause': 'LOSE_RACE', variable_hangup_cause_q850: '16' }, body: '' });
    expect(out).toEqual([expect.objectContaining({ type: 'channel.hangup', cause: 26 })]);
  });

  it('turns MESSAGE into a text message, inbound from a trunk number, outbound from an extension', () => {
    const n = new EslNormaliser(roles);
    const msg = (from: string, to: string) => n.normaliseEvent({ headers: { 'Event-Name': 'MESSAGE', from_user: from, to_user: to }, body: 'hi' });
    expect(msg('05552221133', '02125550800')).toEqual([expect.objectContaining({ type: 'message', direction: 'inbound', body: 'hi' })]);
    expect(msg('117', '05552221133')).toEqual([expect.objectContaining({ type: 'message', direction: 'outbound' })]);
  });
});
