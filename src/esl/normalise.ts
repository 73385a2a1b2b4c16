import type { DialStatus, PbxEvent } from '../core/events.js';
import type { RoleBook } from '../core/roles.js';
import { dialTargetOf, partyOfChannel } from './channel.js';
import { isKnownEslEvent } from './events.js';
import { decodeEvent, header, type DecodeStats, type EslEvent, type EslFrame } from './frame.js';
import { LegBook } from './legs.js';
import { attendedAtHangup, blindFromApi, blindFromApp, blindFromRefer, attendedFromTransferor } from './transfers.js';

/** What the normaliser saw, for metrics and tests. */
export interface EslNormaliseStats extends DecodeStats {
  /** Event frames decoded. */
  events: number;
  /** Events that became at least one PbxEvent. */
  used: number;
  /** Event names FreeSWITCH does not document (a newer version): counted, not an error. */
  unknown: number;
  /** Events the model has no use for (CHANNEL_STATE, HEARTBEAT, PLAYBACK…): counted, not an anomaly. */
  ignored: number;
  /** Events about a channel whose CHANNEL_CREATE was never seen (joined mid-call, or a lost event). */
  unknownChannel: number;
  /**
   * Channel events (CHANNEL_*, RECORD_*) without a Unique-ID: skipped. FreeSWITCH puts one on every
   * such event; without it a CHANNEL_CREATE would start a call of channel "" (issue #14).
   */
  noChannel: number;
}

type Handler = (n: EslNormaliser, ev: EslEvent, at: number) => PbxEvent[];

/** FreeSWITCH's hangup causes as a dial result (DialEnd's vocabulary). */
const DIAL_STATUS: Record<string, DialStatus> = {
  NO_ANSWER: 'noanswer', NO_USER_RESPONSE: 'noanswer', PROGRESS_TIMEOUT: 'noanswer', ALLOTTED_TIMEOUT: 'noanswer',
  USER_BUSY: 'busy', CALL_REJECTED: 'busy', BUSY_EVERYWHERE: 'busy', DECLINE: 'busy',
  ORIGINATOR_CANCEL: 'cancel', LOSE_RACE: 'cancel', PICKED_OFF: 'cancel', NORMAL_CLEARING: 'cancel',
  NORMAL_CIRCUIT_CONGESTION: 'congestion', SWITCH_CONGESTION: 'congestion',
  USER_NOT_REGISTERED: 'unavailable', SUBSCRIBER_ABSENT: 'unavailable', UNALLOCATED_NUMBER: 'unavailable',
  NO_ROUTE_DESTINATION: 'unavailable', DESTINATION_OUT_OF_ORDER: 'unavailable', GATEWAY_DOWN: 'unavailable',
};

/**
 * Q.850 codes the tracker reads. FreeSWITCH reports a ring-group leg that lost the race as its own
 * LOSE_RACE (q850 16); Q.850's 26 "non-selected user clearing" is what that is, and what Asterisk
 * says ("Answered elsewhere").
 */
const CALL_REJECTED = 21;

function causeCode(ev: EslEvent): number {
  const name = header(ev, 'Hangup-Cause');
  if (name === 'CALL_REJECTED' || name === 'DECLINE') return CALL_REJECTED;
  if (name === 'LOSE_RACE' || name === 'PICKED_OFF') return 26;
  if (name === 'ORIGINATOR_CANCEL') return 487;
  const q850 = Number(header(ev, 'variable_hangup_cause_q850'));
  if (Number.isInteger(q850) && q850 > 0) return q850;
  return name === 'USER_BUSY' ? 17 : name === 'NO_ANSWER' ? 19 : name === 'NORMAL_CLEARING' ? 16 : 0;
}

const IVR_APPS = new Set(['play_and_get_digits', 'ivr', 'read', 'play_and_detect_speech']);

/** `bridge a,b` and `bridge a:_:b` ring at once (a ring group); `|` is one after the other. */
function dialsSeveral(data: string): boolean {
  // Per-leg [..] and global {..} variables may hold commas of their own.
  const targets = data.replace(/\[[^\]]*\]|\{[^}]*\}|<[^>]*>/g, '');
  return targets.includes(',') || targets.includes(':_:');
}

/** mod_callcenter names queues `name@domain`; the name is the number callers dial. */
function queueNumber(queue: string): string {
  const at = queue.indexOf('@');
  return at >= 0 ? queue.slice(0, at) : queue;
}

function execute(n: EslNormaliser, ev: EslEvent, at: number): PbxEvent[] {
  const channel = header(ev, 'Unique-ID');
  const app = header(ev, 'Application');
  const data = header(ev, 'Application-Data');
  const exten = header(ev, 'Caller-Destination-Number');
  const context = header(ev, 'Caller-Context');
  const route =
    n.roles.routeAt(context, exten) ??
    (IVR_APPS.has(app) ? n.roles.routeBy('ivr', context, exten, `application ${app}`) : undefined) ??
    (app === 'bridge' && dialsSeveral(data) ? n.roles.routeBy('ringgroup', context, exten, 'bridge to several phones') : undefined);
  const out: PbxEvent[] = [];
  if (route) out.push({ type: 'route.entered', at, channel, role: route.role, number: route.number });
  if (app === 'voicemail' && !/(^|\s)check(\s|$)/.test(data)) {
    // voicemail [check] [auth] <profile> <domain> [<id>]
    const mailbox = n.roles.extensionId(data.trim().split(/\s+/)[2] ?? exten);
    const vm = n.roles.routeBy('voicemail', context, mailbox, 'application voicemail');
    out.push({ type: 'route.entered', at, channel, role: 'voicemail', number: vm.number });
  }
  if (app === 'transfer') out.push(...blindFromApp(n.legs, ev, at));
  return out;
}

function created(n: EslNormaliser, ev: EslEvent, at: number): PbxEvent[] {
  const channel = header(ev, 'Unique-ID');
  // mod_callcenter dials agents from its own thread: only cc_member_session_uuid names the caller.
  const member = header(ev, 'variable_cc_side') === 'agent' ? header(ev, 'variable_cc_member_session_uuid') : '';
  const dialer = header(ev, 'Other-Leg-Unique-ID') || member || undefined;
  const callUuid = header(ev, 'Channel-Call-UUID');
  const call = n.legs.callFor(channel, dialer, callUuid && callUuid !== channel ? callUuid : undefined);
  n.legs.add(channel, call, dialer);
  return [{
    type: 'channel.created',
    at,
    channel,
    call,
    name: header(ev, 'Channel-Name'),
    party: partyOfChannel(ev, n.roles),
    callerId: { num: header(ev, 'Caller-Caller-ID-Number'), name: header(ev, 'Caller-Caller-ID-Name') },
    dialed: header(ev, 'Caller-Destination-Number'),
  }];
}

function originated(n: EslNormaliser, ev: EslEvent, at: number): PbxEvent[] {
  const to = header(ev, 'Unique-ID');
  const leg = n.known(to);
  if (!leg || leg.dialed) return [];
  leg.dialed = true;
  leg.originated = leg.dialer === undefined;
  return [{ type: 'dial.begin', at, ...(leg.dialer ? { from: leg.dialer } : {}), to, target: dialTargetOf(ev) }];
}

function answered(n: EslNormaliser, ev: EslEvent, at: number): PbxEvent[] {
  const channel = header(ev, 'Unique-ID');
  const out: PbxEvent[] = [{ type: 'channel.answered', at, channel }];
  const leg = n.legs.get(channel);
  // Nobody bridges an originated leg: its own answer ends the dial (click-to-call).
  if (leg?.originated && !leg.connected) {
    leg.connected = true;
    out.push({ type: 'dial.end', at, to: channel, status: 'answer' });
  }
  return out;
}

function bridged(n: EslNormaliser, ev: EslEvent, at: number): PbxEvent[] {
  const a = header(ev, 'Bridge-A-Unique-ID') || header(ev, 'Unique-ID');
  const b = header(ev, 'Bridge-B-Unique-ID') || header(ev, 'Other-Leg-Unique-ID');
  if (!a || !b) return [];
  const out: PbxEvent[] = [...attendedAtBridge(n, a, b, at)];
  const leg = n.legs.get(b);
  // A dial ends answered when the dialled leg is bridged to its dialler (a bridge app's B-leg).
  if (leg && leg.dialer === a && !leg.connected) {
    leg.connected = true;
    out.push({ type: 'dial.end', at, from: a, to: b, status: 'answer' });
  }
  n.legs.bridged(a, b);
  out.push({ type: 'bridge.entered', at, channel: a, bridge: a }, { type: 'bridge.entered', at, channel: b, bridge: a });
  return out;
}

/**
 * A consultation leg bridged to someone other than its dialler, who was talking to the
 * transferer, is an attended transfer completing: att_xfer bridges the consulted phone with the
 * agent's caller when the agent hangs up; a REFER with Replaces bridges the caller with the
 * consulted phone of the agent's second call.
 */
function attendedAtBridge(n: EslNormaliser, a: string, b: string, at: number): PbxEvent[] {
  for (const [target, other] of [[b, a], [a, b]] as const) {
    const t = n.legs.get(target);
    const o = n.legs.get(other);
    if (!t || !o || t.transferred || !t.dialer || t.dialer === other || !o.partner || o.partner === target) continue;
    t.transferred = true;
    t.call = o.call;
    return [{ type: 'transfer.attended', at, transferer: o.partner, consultTransferer: t.dialer, target }];
  }
  return [];
}

function unbridged(_n: EslNormaliser, ev: EslEvent, at: number): PbxEvent[] {
  const a = header(ev, 'Bridge-A-Unique-ID') || header(ev, 'Unique-ID');
  const b = header(ev, 'Bridge-B-Unique-ID') || header(ev, 'Other-Leg-Unique-ID');
  return [a, b].filter((c) => c !== '').map((channel) => ({ type: 'bridge.left', at, channel, bridge: a }) as const);
}

function hangupComplete(n: EslNormaliser, ev: EslEvent, at: number): PbxEvent[] {
  const channel = header(ev, 'Unique-ID');
  const leg = n.legs.get(channel);
  const out: PbxEvent[] = [...blindFromRefer(n.legs, ev, at), ...attendedAtHangup(n.legs, ev, at)];
  const cause = causeCode(ev);
  if (leg?.dialed && !leg.connected) {
    leg.connected = true; // the dial is over either way
    // As Asterisk's HangupRequest does: the phone's reason first, so a 603 is told from a busy line.
    if (cause === CALL_REJECTED) out.push({ type: 'channel.cause', at, channel, cause });
    const status = DIAL_STATUS[header(ev, 'Hangup-Cause')] ?? 'other';
    out.push({ type: 'dial.end', at, ...(leg.dialer ? { from: leg.dialer } : {}), to: channel, status });
  }
  out.push({ type: 'channel.hangup', at, channel, cause });
  return out;
}

function callcenter(n: EslNormaliser, ev: EslEvent, at: number): PbxEvent[] {
  const member = header(ev, 'CC-Member-Session-UUID');
  const queue = queueNumber(header(ev, 'CC-Queue'));
  switch (header(ev, 'CC-Action')) {
    case 'member-queue-start':
      return [{ type: 'route.entered', at, channel: member, ...n.roles.routeBy('queue', '', queue, 'callcenter::info (mod_callcenter)') }];
    case 'bridge-agent-start': {
      // The queue connects the agent: this, not the agent leg's answer, ends the dial (an agent
      // that answers after another one won the ring-all is never connected).
      const agent = header(ev, 'CC-Agent-UUID');
      const leg = n.legs.get(agent);
      if (leg) leg.connected = true;
      return [
        { type: 'queue.left', at, channel: member, queue, outcome: 'answered' },
        { type: 'dial.end', at, from: member, to: agent, status: 'answer' },
      ];
    }
    case 'member-queue-end': {
      if (header(ev, 'CC-Cause') !== 'Cancel') return [];
      const reason = header(ev, 'CC-Cancel-Reason');
      if (reason === 'TIMEOUT' || reason === 'NO_AGENT_TIMEOUT') return [{ type: 'queue.left', at, channel: member, queue, outcome: 'timeout' }];
      if (reason === 'BREAK_OUT' || reason === 'EXIT_WITH_KEY') return [{ type: 'queue.left', at, channel: member, queue, outcome: 'abandoned' }];
      return [];
    }
    default:
      return [];
  }
}

function custom(n: EslNormaliser, ev: EslEvent, at: number): PbxEvent[] {
  switch (header(ev, 'Event-Subclass')) {
    case 'callcenter::info':
      return callcenter(n, ev, at);
    case 'vm::maintenance':
      // leave-message is sent once the message is saved; mwi-update and the rest are mailbox housekeeping.
      if (header(ev, 'VM-Action') !== 'leave-message') return [];
      return [voicemailLeft(n, ev, at)];
    case 'sofia::transferor':
      return attendedFromTransferor(n.legs, ev, at);
    default:
      return [];
  }
}

function voicemailLeft(n: EslNormaliser, ev: EslEvent, at: number): PbxEvent {
  const channel = header(ev, 'VM-UUID') || header(ev, 'Unique-ID');
  const durationMs = messageLengthMs(ev);
  return { type: 'voicemail.left', at, channel, mailbox: n.roles.extensionId(header(ev, 'VM-User')), ...(durationMs === undefined ? {} : { durationMs }) };
}

/**
 * mod_voicemail's leave-message event (deliver_vm) carries the message's length in whole seconds
 * (`VM-Message-Len`) and, being a channel event, the variables switch_ivr_record_file set when the
 * message's recording stopped: `variable_record_ms`, the same length in milliseconds. The
 * milliseconds are used when they agree with the seconds, i.e. describe the same recording.
 */
function messageLengthMs(ev: EslEvent): number | undefined {
  const seconds = wholeNumber(header(ev, 'VM-Message-Len'));
  const ms = wholeNumber(header(ev, 'variable_record_ms'));
  if (ms !== undefined && (seconds === undefined || Math.abs(ms / 1000 - seconds) < 1)) return ms;
  return seconds === undefined ? undefined : seconds * 1000;
}

/** "25" → 25; absent, empty or not a whole number → undefined. */
function wholeNumber(v: string): number | undefined {
  if (!/^\d+$/.test(v)) return undefined;
  return Number(v);
}

function recordStart(_n: EslNormaliser, ev: EslEvent, at: number): PbxEvent[] {
  // record_session (a media bug, switch_ivr_async.c) records the call; the record app and
  // mod_voicemail write a message with switch_ivr_record_file, which is no call recording.
  if (header(ev, 'Event-Calling-File') === 'switch_ivr_play_say.c') return [];
  const file = header(ev, 'Record-File-Path');
  return file ? [{ type: 'recording.started', at, channel: header(ev, 'Unique-ID'), file }] : [];
}

function message(n: EslNormaliser, ev: EslEvent, at: number): PbxEvent[] {
  const from = n.roles.partyOf(header(ev, 'from_user'));
  const to = n.roles.partyOf(header(ev, 'to_user'));
  const outbound = from.kind === 'extension' && to.kind !== 'extension';
  // A phone's SIP user is its endpoint name (1001-12 on a hosted PBX); payloads show the extension.
  return [{ type: 'message', at, from: from.id, to: to.id, body: ev.body, direction: outbound ? 'outbound' : 'inbound' }];
}

const HANDLER_TABLE: Record<string, Handler> = {
  CHANNEL_CREATE: created,
  CHANNEL_ORIGINATE: originated,
  CHANNEL_PROGRESS: (_n, ev, at) => [{ type: 'channel.ringing', at, channel: header(ev, 'Unique-ID') }],
  CHANNEL_PROGRESS_MEDIA: (_n, ev, at) => [{ type: 'channel.ringing', at, channel: header(ev, 'Unique-ID') }],
  CHANNEL_ANSWER: answered,
  CHANNEL_BRIDGE: bridged,
  CHANNEL_UNBRIDGE: unbridged,
  CHANNEL_EXECUTE: execute,
  CHANNEL_HOLD: (_n, ev, at) => [{ type: 'channel.hold', at, channel: header(ev, 'Unique-ID'), held: true }],
  CHANNEL_UNHOLD: (_n, ev, at) => [{ type: 'channel.hold', at, channel: header(ev, 'Unique-ID'), held: false }],
  CHANNEL_HANGUP: (n, ev) => {
    const leg = n.legs.get(header(ev, 'Unique-ID'));
    if (leg) leg.up = false;
    return []; // the channel ends for the model at HANGUP_COMPLETE, once its last variables are set
  },
  CHANNEL_HANGUP_COMPLETE: hangupComplete,
  CHANNEL_DESTROY: (n, ev) => {
    n.legs.delete(header(ev, 'Unique-ID'));
    return [];
  },
  API: (n, ev, at) => blindFromApi(n.legs, ev, at),
  RECORD_START: recordStart,
  CUSTOM: custom,
  MESSAGE: message,
};

/** Events about one channel, which FreeSWITCH always names by its Unique-ID. */
const CHANNEL_EVENT = /^(CHANNEL|RECORD)_/;

// A Map, not the object: an event named "constructor" must not find Object's prototype.
const HANDLERS = new Map<string, Handler>(Object.entries(HANDLER_TABLE));

/** `Event-Date-Timestamp` is microseconds since the epoch; live events without it use the clock. */
function timeOf(ev: EslEvent, now: () => number): number {
  const us = Number(header(ev, 'Event-Date-Timestamp'));
  return us > 0 ? Math.round(us / 1000) : now();
}

/**
 * Turns ESL frames into PBX-neutral events. Stateless where FreeSWITCH allows; the LegBook keeps
 * the little FreeSWITCH does not repeat on every event (see legs.ts).
 */
export class EslNormaliser {
  readonly stats: EslNormaliseStats = {
    events: 0, used: 0, unknown: 0, ignored: 0, unknownChannel: 0, noChannel: 0, malformedLines: 0, undecodable: 0,
  };
  readonly legs = new LegBook();

  constructor(
    readonly roles: RoleBook,
    private readonly now: () => number = Date.now,
  ) {}

  /** The events one frame stands for, in order; none for replies and events the model ignores. */
  normalise(frame: EslFrame): PbxEvent[] {
    const ev = decodeEvent(frame, this.stats);
    return ev ? this.normaliseEvent(ev) : [];
  }

  normaliseEvent(ev: EslEvent): PbxEvent[] {
    this.stats.events++;
    const name = header(ev, 'Event-Name');
    const handler = HANDLERS.get(name);
    if (!handler) {
      if (isKnownEslEvent(name)) this.stats.ignored++;
      else this.stats.unknown++;
      return [];
    }
    if (CHANNEL_EVENT.test(name) && header(ev, 'Unique-ID') === '') {
      this.stats.noChannel++;
      return [];
    }
    const out = handler(this, ev, timeOf(ev, this.now));
    if (out.length > 0) this.stats.used++;
    else this.stats.ignored++;
    return out;
  }

  /** The state of a channel the normaliser saw created; counts the ones it did not. */
  known(uuid: string): ReturnType<LegBook['get']> {
    const leg = this.legs.get(uuid);
    if (!leg) this.stats.unknownChannel++;
    return leg;
  }
}
