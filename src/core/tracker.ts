import { endpointOf, type PbxEvent } from './events.js';
import type { LifecycleEvent } from './lifecycle.js';
import { appended, NO_RECORDINGS, viewOf, type Call, type Channel, type EndReason, type Leg, type LegKind, type Segment } from './model.js';
import { isWiredThrough, localPairName, realDialler } from './locals.js';
import type { CallRecord } from './persist.js';
import { endCall, finishLeg, startSegment, endSegment, unansweredAs } from './transitions.js';

export interface TrackerStats {
  /** Events about channels the tracker never saw created (joined mid-call, or a lost event). */
  orphanEvents: number;
  callsStarted: number;
  callsEnded: number;
  callsTimedOut: number;
  /** Calls closed because a reconnect's channel list no longer had them (ended while disconnected). */
  callsResynced: number;
}

/**
 * Follows every call from its channel events. Pure: no I/O, no clock of its own (time comes from
 * the events and from `tick(now)`), so a trace replays to the same output every time.
 */
export class Tracker {
  readonly calls = new Map<string, Call>();
  readonly channels = new Map<string, Channel>();
  readonly stats: TrackerStats = { orphanEvents: 0, callsStarted: 0, callsEnded: 0, callsTimedOut: 0, callsResynced: 0 };
  private out: LifecycleEvent[] = [];
  /**
   * Extension's endpoint → the call it last put on hold: finds attended-transfer consultations
   * without a scan. Keyed on the endpoint, not the id, so tenants' extensions 1001 stay apart.
   */
  readonly heldBy = new Map<string, string>();
  /** Local pair name → the half seen first, until the other half pairs with it. */
  private readonly unpairedLocals = new Map<string, string>();
  /**
   * The number the next call gets when its id carries none (FreeSWITCH's UUIDs; an Asterisk
   * Uniqueid does): 3CX payloads show it in every call id, so a restart must carry it on
   * (saved with the live calls, issue #14 item 2), or calls after it would be numbered from 0 again.
   */
  nextCallNumber = 0;
  /** The newest event time seen: replay's clock for idle timeouts. */
  lastEventAt = 0;
  /**
   * Calls an event may have changed (or ended) since `takeChanged()`: what a restart must find
   * again. Kept only once `trackChanges()` was called (the daemon), so replay keeps no such list.
   */
  private changed: Set<string> | undefined;

  constructor(private readonly idleTimeoutMs: number) {}

  /** Feeds one event; returns the lifecycle events it caused, in order. */
  handle(ev: PbxEvent): LifecycleEvent[] {
    this.out = [];
    if (ev.at > this.lastEventAt) this.lastEventAt = ev.at;
    HANDLERS[ev.type](this, ev as never);
    return this.out;
  }

  /** Closes calls that have seen no event for the idle timeout (a lost Hangup, a PBX restart). */
  tick(now: number): LifecycleEvent[] {
    this.out = [];
    for (const call of [...this.calls.values()]) {
      if (now - call.lastEventAt < this.idleTimeoutMs) continue;
      this.stats.callsTimedOut++;
      this.close(call, now, 'idle-timeout');
    }
    return this.out;
  }

  get liveCalls(): number {
    return this.calls.size;
  }

  /**
   * The calls that may have changed since the last call, each with its channels, or undefined for
   * one that ended: what the daemon saves with the outbox at each commit (issue #14 item 2).
   */
  takeChanged(): Array<[string, CallRecord | undefined]> {
    const out: Array<[string, CallRecord | undefined]> = [];
    if (this.changed === undefined) return out;
    for (const id of this.changed) {
      const call = this.calls.get(id);
      out.push([id, call && { call, channels: call.channelIds.flatMap((c) => this.channels.get(c) ?? []) }]);
    }
    this.changed.clear();
    return out;
  }

  /**
   * Takes back calls saved by `takeChanged` (a restart). The two indexes are rebuilt from them:
   * Local halves still waiting for their pair, and who holds which call (a hint, checked on use).
   */
  restore(records: Iterable<CallRecord>): void {
    for (const { call, channels } of records) {
      this.calls.set(call.id, call);
      for (const ch of channels) this.channels.set(ch.id, ch);
      if (call.lastEventAt > this.lastEventAt) this.lastEventAt = call.lastEventAt;
    }
    for (const ch of this.channels.values()) {
      const pair = ch.party.kind === 'local' && ch.localPeer === undefined ? localPairName(ch.name) : undefined;
      if (pair !== undefined) this.unpairedLocals.set(pair, ch.id);
      if (ch.held && ch.party.kind === 'extension' && this.calls.has(ch.call)) this.heldBy.set(endpointOf(ch.party), ch.call);
    }
  }

  /** From now on, remember which calls change, for `takeChanged`. */
  trackChanges(): void {
    this.changed ??= new Set();
  }

  /** An event reached this call: saved at the next commit. */
  changedCall(id: string): void {
    this.changed?.add(id);
  }

  // ---- helpers used by the handlers and transitions ----

  emit(e: LifecycleEvent): void {
    this.out.push(e);
  }

  emitCall(type: 'call.started' | 'call.ended', call: Call, at: number): void {
    this.emit({ type, at, call: viewOf(call) });
  }

  emitLeg(type: 'leg.dialed' | 'leg.ringing' | 'leg.ended', call: Call, leg: Leg, at: number): void {
    this.emit({ type, at, call: viewOf(call), leg: { ...leg } });
  }

  /** The call a channel belongs to and who is on it, for taps that only read (no change is marked). */
  whereIs(channelId: string): { call: string; party: string } | undefined {
    const channel = this.channels.get(channelId);
    return channel && this.calls.has(channel.call) ? { call: channel.call, party: channel.party.id } : undefined;
  }

  /**
   * The call and channel `channelId` is on, marked changed for `takeChanged` unless `marks` is
   * false: then the caller marks it only if it changes it.
   */
  callOf(channelId: string | undefined, marks = true): { call: Call; channel: Channel } | undefined {
    const channel = channelId === undefined ? undefined : this.channels.get(channelId);
    const call = channel && this.calls.get(channel.call);
    if (!channel || !call) {
      this.stats.orphanEvents++;
      return undefined;
    }
    if (marks) this.changed?.add(call.id);
    return { call, channel };
  }

  /** Pairs the two halves of a Local channel, whichever the PBX announces first. */
  pairLocal(ch: Channel): void {
    const pair = localPairName(ch.name);
    if (pair === undefined) return;
    const other = this.unpairedLocals.get(pair);
    const peer = other === undefined ? undefined : this.channels.get(other);
    if (!peer) {
      this.unpairedLocals.set(pair, ch.id);
      return;
    }
    this.unpairedLocals.delete(pair);
    peer.localPeer = ch.id;
    ch.localPeer = peer.id;
    this.changed?.add(peer.call);
  }

  /** The party that really dials through `from`: Local channels in between are wires (locals.ts). */
  diallerOf(call: Call, from: Channel | undefined): Channel | undefined {
    return from && from.party.kind === 'local' ? realDialler(this.channels, from, call.channelIds) : from;
  }

  legOf(call: Call, channelId: string): Leg | undefined {
    for (let i = call.legs.length - 1; i >= 0; i--) if (call.legs[i]!.channel === channelId) return call.legs[i];
    return undefined;
  }

  openSegment(call: Call): Segment | undefined {
    const last = call.segments[call.segments.length - 1];
    return last && last.endedAt === undefined ? last : undefined;
  }

  close(call: Call, at: number, reason: EndReason): void {
    endCall(this, call, at, reason);
    if (reason === 'resync') this.stats.callsResynced++;
    for (const id of call.channelIds) {
      const pair = localPairName(this.channels.get(id)?.name ?? '');
      if (pair !== undefined && this.unpairedLocals.get(pair) === id) this.unpairedLocals.delete(pair);
      this.channels.delete(id);
    }
    this.calls.delete(call.id);
    this.changed?.add(call.id);
    this.stats.callsEnded++;
  }

  /** Which kind of leg a dial from `from` to `to` is, given what the call looks like now. */
  legKind(call: Call, from: Channel | undefined, to: Channel): LegKind {
    if (!from) return 'origin';
    if (call.consultFor !== undefined) return 'consult';
    if (from.id === call.customer) return 'agent';
    if (from.id === call.origin && call.direction === 'outbound' && to.party.kind === 'trunk') return 'customer';
    if (from.id === call.origin && call.customer === call.origin) return 'agent';
    // Anyone else dialling (an agent's phone, a Local channel of a feature transfer) is consulting.
    return 'consult';
  }
}

type Handler<T extends PbxEvent['type']> = (t: Tracker, ev: Extract<PbxEvent, { type: T }>) => void;
type HandlerTable = { [K in PbxEvent['type']]: Handler<K> };

function touch(call: Call, at: number): void {
  if (at > call.lastEventAt) call.lastEventAt = at;
}

/** The first 3CX-style call number: the counter part of an Asterisk Uniqueid ("1795301990.9" → 9). */
function seqOf(id: string, fallback: number): number {
  const dot = id.lastIndexOf('.');
  const n = dot >= 0 ? Number(id.slice(dot + 1)) : NaN;
  return Number.isInteger(n) ? n : fallback;
}

/**
 * A phone that has put its customer on hold and now places another call is consulting before an
 * attended transfer. The hold matters: the same extension may have a second phone on another call.
 * `endpoint` is the phone's endpoint name (endpointOf): extension 1001 of another tenant is another phone.
 */
function heldCallOfExtension(t: Tracker, endpoint: string): Call | undefined {
  const held = t.heldBy.get(endpoint);
  if (held === undefined) return undefined;
  const call = t.calls.get(held);
  const seg = call && t.openSegment(call);
  const phone = seg && t.channels.get(seg.channel);
  // The index is only a hint: the hold must still stand and still be this endpoint's.
  if (phone?.held && phone.party.kind === 'extension' && endpointOf(phone.party) === endpoint) return call;
  t.heldBy.delete(endpoint);
  return undefined;
}

const HANDLERS: HandlerTable = {
  'channel.created': (t, ev) => {
    const existing = t.calls.get(ev.call);
    // One string per id, not one per event that named it: each live call held its Uniqueid and
    // Linkedid again on every channel, ~32 bytes a copy (issue #15, memory).
    const callId = existing ? existing.id : ev.call === ev.channel ? ev.channel : ev.call;
    const channel: Channel = {
      id: ev.channel,
      name: ev.name,
      party: ev.party,
      call: callId,
      callerId: ev.callerId,
      dialed: ev.dialed,
      answeredAt: undefined,
      recordings: NO_RECORDINGS,
      hungUpAt: undefined,
      held: false,
      dialedBy: undefined,
      cause: undefined,
      originated: false,
      localPeer: undefined,
    };
    t.channels.set(ev.channel, channel);
    t.changedCall(ev.call);
    if (ev.party.kind === 'local') t.pairLocal(channel);
    if (existing) {
      existing.channelIds = appended(existing.channelIds, ev.channel);
      touch(existing, ev.at);
      return;
    }
    const inbound = ev.party.kind === 'trunk';
    const consultFor =
      ev.party.kind === 'extension' ? heldCallOfExtension(t, endpointOf(ev.party))?.id : undefined;
    const call: Call = {
      id: callId,
      seq: seqOf(callId, t.nextCallNumber),
      startedAt: ev.at,
      direction: inbound ? 'inbound' : 'internal',
      directionKnown: inbound,
      clickToCall: false,
      origin: ev.channel,
      customer: inbound ? ev.channel : undefined,
      customerNumber: inbound ? ev.callerId.num : '',
      customerName: inbound ? ev.callerId.name : '',
      originExtension: ev.party.kind === 'extension' ? ev.party.id : '',
      did: inbound ? ev.dialed : '',
      routes: [],
      legs: [],
      segments: [],
      pendingTransfer: 'none',
      queueOutcome: undefined,
      voicemail: undefined,
      consultFor,
      lastEventAt: ev.at,
      channelIds: [ev.channel],
      answeredAt: undefined,
      endedAt: undefined,
      disposition: undefined,
      endReason: undefined,
    };
    t.calls.set(call.id, call);
    t.stats.callsStarted++;
    t.nextCallNumber++;
    if (inbound) t.emitCall('call.started', call, ev.at);
  },

  'channel.callerid': (t, ev) => {
    const found = t.callOf(ev.channel);
    if (!found) return;
    found.channel.callerId = ev.callerId;
    touch(found.call, ev.at);
  },

  'channel.ringing': (t, ev) => {
    const found = t.callOf(ev.channel);
    if (!found) return;
    const { call } = found;
    touch(call, ev.at);
    const leg = t.legOf(call, ev.channel);
    if (!leg || leg.ringingAt !== undefined || leg.endedAt !== undefined) return;
    leg.ringingAt = ev.at;
    const owner = call.consultFor !== undefined ? t.calls.get(call.consultFor) : undefined;
    // A consultation rings on behalf of the call it will be transferred into.
    t.emitLeg('leg.ringing', owner ?? call, leg, ev.at);
  },

  'channel.answered': (t, ev) => {
    const found = t.callOf(ev.channel);
    if (!found) return;
    touch(found.call, ev.at);
    if (found.channel.answeredAt === undefined) found.channel.answeredAt = ev.at;
  },

  'dial.begin': (t, ev) => {
    const target = t.channels.get(ev.to);
    const found = t.callOf(ev.to);
    if (!found || !target) return;
    const { call } = found;
    touch(call, ev.at);
    const caller = ev.from === undefined ? undefined : t.channels.get(ev.from);
    target.dialedBy = caller?.id;
    if (!caller) target.originated = true;
    if (!caller && call.origin === ev.to) call.clickToCall = true;
    const from = t.diallerOf(call, caller);
    // A click-to-call originated through a Local channel starts with that wire; the phone it rings is the origin.
    if (!from && target.party.kind !== 'local' && t.channels.get(call.origin)?.party.kind === 'local') moveOrigin(call, target);
    if (from && from.id === call.origin && !call.directionKnown) {
      if (target.party.kind === 'trunk') {
        call.directionKnown = true;
        call.direction = 'outbound';
        call.customer = target.id;
        call.customerNumber = numberOf(ev.target) || target.callerId.num || target.dialed;
        if (call.consultFor === undefined) t.emitCall('call.started', call, ev.at);
      } else {
        startInternal(t, call, ev.at);
      }
    }
    if (target.party.kind === 'local') return; // a wire: the phone its other half dials is the leg
    const via = [...call.routes].reverse().find((r) => r.role === 'queue' || r.role === 'ringgroup');
    const kind = t.legKind(call, from, target);
    const leg: Leg = {
      channel: target.id,
      kind,
      party: target.party,
      via: kind === 'agent' && via ? { role: via.role, number: via.number } : undefined,
      target: ev.target,
      createdAt: ev.at,
      ringingAt: undefined,
      answeredAt: undefined,
      endedAt: undefined,
      disposition: undefined,
      dialStatus: undefined,
      cause: undefined,
    };
    call.legs = appended(call.legs, leg);
    t.emitLeg('leg.dialed', call, leg, ev.at);
  },

  'dial.end': (t, ev) => {
    const found = t.callOf(ev.to);
    if (!found) return;
    const { call, channel } = found;
    touch(call, ev.at);
    if (channel.party.kind === 'local') {
      // app_queue's ring cycle ended on a member's wire: the phones behind it rang until a timeout.
      if (ev.status === 'noanswer') ringCycleEnded(t, call, channel, ev.at);
      return;
    }
    const leg = t.legOf(call, ev.to);
    // DialEnd comes twice for an unanswered queue member (NOANSWER, then CANCEL): the first one counts.
    if (!leg || leg.dialStatus !== undefined) return;
    leg.dialStatus = ev.status;
    if (ev.status !== 'answer') {
      if (ev.status === 'cancel') leg.endedAt = ev.at; // missed, abandoned or timeout: decided at the end
      else finishLeg(t, call, leg, ev.at, unansweredAs(ev.status, channel.cause));
      return;
    }
    leg.answeredAt = ev.at;
    leg.disposition = 'answered';
    // The click-to-call's own phone, or a consultation: a segment only once the customer or a transfer joins.
    if (leg.kind === 'origin' || leg.kind === 'consult') return;
    if (call.answeredAt === undefined) call.answeredAt = ev.at;
    const user = leg.kind === 'customer' ? call.originExtension : leg.party.id;
    const userChannel = leg.kind === 'customer' ? call.origin : leg.channel;
    startSegment(t, call, leg, user, userChannel, ev.at);
  },

  'route.entered': (t, ev) => {
    // Every dialplan priority of a route repeats it: ~60 events a FreePBX call, of which a few
    // change the call. Only those mark it changed, so the others cost no save of the call in the
    // next commit (issue #15); the time they would move on (lastEventAt) is saved with the next
    // change, and only idle timeouts, hours long, read it.
    const found = t.callOf(ev.channel, false);
    if (!found) return;
    const { call } = found;
    touch(call, ev.at);
    if (ev.channel !== call.customer && ev.channel !== call.origin) return;
    // A phone that reaches a queue, ring group or IVR is an internal caller, known before anyone rings.
    if (!call.directionKnown && ev.channel === call.origin && found.channel.party.kind === 'extension') {
      t.changedCall(call.id);
      startInternal(t, call, ev.at);
    }
    const last = call.routes[call.routes.length - 1];
    if (last && last.role === ev.role && last.number === ev.number) return;
    t.changedCall(call.id);
    call.routes = appended(call.routes, { role: ev.role, number: ev.number, at: ev.at });
    if (ev.role === 'voicemail') call.voicemail = { mailbox: ev.number, leftAt: undefined };
    t.emit({ type: 'route.entered', at: ev.at, call: viewOf(call), route: { role: ev.role, number: ev.number } });
  },

  'queue.left': (t, ev) => {
    const found = t.callOf(ev.channel);
    if (!found) return;
    touch(found.call, ev.at);
    // A timeout arrives as an abandon followed by QUEUESTATUS=TIMEOUT: the later word wins.
    if (found.call.queueOutcome === undefined || ev.outcome === 'timeout') found.call.queueOutcome = ev.outcome;
  },

  'channel.hold': (t, ev) => {
    const found = t.callOf(ev.channel);
    if (!found) return;
    touch(found.call, ev.at);
    found.channel.held = ev.held;
    if (ev.held && found.channel.party.kind === 'extension') t.heldBy.set(endpointOf(found.channel.party), found.call.id);
  },

  'bridge.entered': (t, ev) => {
    const found = t.callOf(ev.channel);
    if (found) touch(found.call, ev.at);
  },
  'bridge.left': (t, ev) => {
    const found = t.callOf(ev.channel);
    if (found) touch(found.call, ev.at);
  },

  'transfer.blind': (t, ev) => {
    const found = t.callOf(ev.transferer);
    if (!found) return;
    const { call } = found;
    touch(call, ev.at);
    const seg = t.openSegment(call);
    if (seg && seg.channel === ev.transferer) endSegment(t, call, seg, ev.at, 'blind-transfer');
    call.pendingTransfer = 'blind';
  },

  'transfer.attended': (t, ev) => completeAttendedTransfer(t, ev),

  'voicemail.left': (t, ev) => {
    const found = t.callOf(ev.channel);
    if (!found) return;
    const { call } = found;
    touch(call, ev.at);
    call.voicemail = { mailbox: ev.mailbox, leftAt: ev.at, durationMs: ev.durationMs };
    t.emit({ type: 'voicemail.left', at: ev.at, call: viewOf(call), mailbox: ev.mailbox });
  },

  'recording.started': (t, ev) => {
    const found = t.callOf(ev.channel);
    if (!found) return;
    touch(found.call, ev.at);
    if (!found.channel.recordings.includes(ev.file)) found.channel.recordings = appended(found.channel.recordings, ev.file);
  },

  'channel.cause': (t, ev) => {
    const found = t.callOf(ev.channel);
    if (!found) return;
    touch(found.call, ev.at);
    found.channel.cause = ev.cause;
  },

  'channel.hangup': (t, ev) => hangUp(t, ev, 'hangup'),

  // Only channels we track can end here: one the PBX lists but we never saw is not invented.
  'channels.snapshot': (t, ev) => {
    const alive = new Set(ev.channels);
    for (const ch of [...t.channels.values()]) {
      // Skipped: still up, already hung up, or gone with a call an earlier channel closed.
      if (alive.has(ch.id) || ch.hungUpAt !== undefined || !t.channels.has(ch.id)) continue;
      // Cause 0: the PBX never told us why (Q.850 has no "unknown"; Asterisk uses 0 the same way).
      hangUp(t, { type: 'channel.hangup', at: ev.at, channel: ch.id, cause: 0 }, 'resync');
    }
  },

  message: (t, ev) => {
    t.emit({ type: 'message', at: ev.at, from: ev.from, to: ev.to, body: ev.body, direction: ev.direction });
  },
};

/** A channel's Hangup; the call ends with its last channel, for `reason`. */
function hangUp(t: Tracker, ev: Extract<PbxEvent, { type: 'channel.hangup' }>, reason: EndReason): void {
  const found = t.callOf(ev.channel);
  if (!found) return;
  const { call, channel } = found;
  touch(call, ev.at);
  channel.hungUpAt = ev.at;
  const leg = t.legOf(call, ev.channel);
  if (leg) {
    leg.cause = ev.cause;
    if (leg.disposition === undefined && leg.dialStatus !== 'cancel') {
      finishLeg(t, call, leg, ev.at, leg.answeredAt ? 'answered' : unansweredAs(undefined, ev.cause));
    } else if (leg.endedAt === undefined || leg.disposition === 'answered') {
      leg.endedAt = leg.endedAt ?? ev.at;
    }
  }
  const seg = t.openSegment(call);
  if (seg && (seg.channel === ev.channel || ev.channel === call.customer)) endSegment(t, call, seg, ev.at, 'hangup');
  for (const id of call.channelIds) {
    const ch = t.channels.get(id);
    if (ch && ch.hungUpAt === undefined) return;
  }
  t.close(call, ev.at, reason);
}

/** The origin is a phone that has not dialled out (yet): the call is internal, its caller that phone. */
function startInternal(t: Tracker, call: Call, at: number): void {
  call.directionKnown = true;
  call.direction = 'internal';
  call.customer = call.origin;
  const origin = t.channels.get(call.origin);
  call.customerNumber = origin?.callerId.num || call.originExtension;
  call.customerName = origin?.callerId.name ?? '';
  if (call.consultFor === undefined) t.emitCall('call.started', call, at);
}

/** An Originate rang a Local channel; the phone its other half rings is where the call starts. */
function moveOrigin(call: Call, phone: Channel): void {
  call.origin = phone.id;
  if (phone.party.kind === 'extension') call.originExtension = phone.party.id;
}

/** Every phone still ringing behind this Local `;1` rang until the queue's (or group's) ring timeout. */
function ringCycleEnded(t: Tracker, call: Call, entry: Channel, at: number): void {
  for (const leg of call.legs) {
    if (leg.disposition !== undefined || leg.dialStatus === 'answer') continue;
    const ch = t.channels.get(leg.channel);
    if (!ch || !isWiredThrough(t.channels, ch, entry)) continue;
    leg.dialStatus = 'noanswer';
    finishLeg(t, call, leg, at, unansweredAs('noanswer', ch.cause));
  }
}

/** "05552221133@trunk" → "05552221133"; "PJSIP/117" → "117". */
function numberOf(dialString: string): string {
  const at = dialString.indexOf('@');
  const s = at >= 0 ? dialString.slice(0, at) : dialString;
  const slash = s.lastIndexOf('/');
  return slash >= 0 ? s.slice(slash + 1) : s;
}

/**
 * The transferer's segment ends and the consulted party's begins. The consultation may have run
 * inside the same PBX call (Asterisk's Atxfer: through a Local channel pair) or as a call of its own
 * (a phone's SIP REFER): in the second case its channels move into the original call.
 */
function completeAttendedTransfer(t: Tracker, ev: Extract<PbxEvent, { type: 'transfer.attended' }>): void {
  const found = t.callOf(ev.transferer);
  if (!found) return;
  const { call } = found;
  touch(call, ev.at);
  const targetLeg = consultLegFor(t, ev.target);
  if (!targetLeg) return;
  const { leg, call: consultCall } = targetLeg;
  t.changedCall(consultCall.id);
  if (consultCall !== call) {
    consultCall.legs = consultCall.legs.filter((l) => l !== leg);
    const moved = t.channels.get(leg.channel);
    if (moved) {
      moved.call = call.id;
      consultCall.channelIds = consultCall.channelIds.filter((id) => id !== moved.id);
      call.channelIds = appended(call.channelIds, moved.id);
    }
    call.legs = appended(call.legs, leg);
  }
  const seg = t.openSegment(call);
  call.pendingTransfer = 'attended';
  // Read before the consultation's own channels are forgotten with its call (REFER).
  const own = consultRecordings(t, leg, new Set([ev.transferer, call.customer ?? '', call.origin]));
  startSegment(t, call, leg, leg.party.id, leg.channel, ev.at, seg);
  const started = call.segments.find((s) => s.channel === leg.channel && s.endedAt === undefined);
  if (started) for (const file of own) if (!started.recordings.includes(file)) started.recordings = appended(started.recordings, file);
  // The consultation's other leg may have hung up first: with nothing live left, no event would
  // ever end it but the idle timeout (issue #12 item 6).
  if (consultCall !== call && consultCall.channelIds.every((id) => t.channels.get(id)?.hungUpAt !== undefined)) {
    t.close(consultCall, ev.at, 'hangup');
  }
}

/**
 * The consultation's own recordings: files on the consulted phone's channel and on the channels
 * that dialled it for the consultation (Atxfer's Local half, a REFER consultation's second line),
 * never the transferer's or the customer's, which belong to the conversation before the transfer.
 */
function consultRecordings(t: Tracker, leg: Leg, notOwn: ReadonlySet<string>): string[] {
  const files: string[] = [];
  let ch = t.channels.get(leg.channel);
  for (let hop = 0; ch && !notOwn.has(ch.id) && hop < 8; hop++) {
    files.push(...ch.recordings);
    const up: string | undefined = ch.dialedBy ?? (ch.name.endsWith(';2') ? ch.localPeer : undefined);
    ch = up === undefined ? undefined : t.channels.get(up);
  }
  return files;
}

/** The answered consult leg behind a transfer target (the target itself, or the phone a Local channel dialled). */
function consultLegFor(t: Tracker, target: string): { leg: Leg; call: Call } | undefined {
  const ch = t.channels.get(target);
  if (!ch) return undefined;
  const candidates = [target];
  if (ch.party.kind === 'local') {
    const base = ch.name.replace(/;[12]$/, '');
    for (const other of t.channels.values()) if (other.name.startsWith(base)) candidates.push(other.id);
  }
  for (const call of t.calls.values()) {
    for (const leg of call.legs) {
      if (leg.answeredAt === undefined || leg.kind !== 'consult') continue;
      if (candidates.includes(leg.channel) || candidates.includes(t.channels.get(leg.channel)?.dialedBy ?? '')) {
        return { leg, call };
      }
    }
  }
  return undefined;
}
