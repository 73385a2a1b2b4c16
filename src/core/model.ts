import { endpointOf, type CallerId, type Party } from './events.js';
import type { Route } from './roles.js';

/**
 * How a leg or a whole call ended: `timeout` rang until a ring or queue cycle ended; `abandoned` the
 * caller hung up while it rang; `missed` another leg of the call answered; `declined` the phone
 * rejected it (Q.850 21, SIP 603).
 */
export type Disposition = 'answered' | 'missed' | 'busy' | 'declined' | 'abandoned' | 'timeout' | 'failed';
export type Direction = 'inbound' | 'outbound' | 'internal';
export type TransferKind = 'none' | 'blind' | 'attended';
/** Why the tracker closed a call: its last Hangup, silence, or a reconnect's channel list without it. */
export type EndReason = 'hangup' | 'idle-timeout' | 'resync';

/**
 * What a leg is for:
 * - `agent`: an internal party rung for the customer (queue member, ring group phone, direct extension);
 * - `customer`: the external party an outbound call dials;
 * - `consult`: the party an agent rings before an attended transfer;
 * - `origin`: the phone a click-to-call rings first.
 */
export type LegKind = 'agent' | 'customer' | 'consult' | 'origin';

export interface Leg {
  readonly channel: string;
  kind: LegKind;
  readonly party: Party;
  /** The queue or ring group that rang this leg, if any. */
  readonly via: Route | undefined;
  readonly target: string;
  readonly createdAt: number;
  ringingAt: number | undefined;
  answeredAt: number | undefined;
  endedAt: number | undefined;
  disposition: Disposition | undefined;
  /** The raw dial result before the call's end decides between missed and abandoned. */
  dialStatus: string | undefined;
  cause: number | undefined;
}

/** A stretch of conversation between the customer and one internal party (3CX's "-K" in the call Id). */
export interface Segment {
  /** 1-based: the number of answered segments so far, this one included. */
  readonly k: number;
  /** The extension talking to the customer. */
  readonly user: string;
  /** The channel of that extension. */
  readonly channel: string;
  readonly answeredAt: number;
  readonly startedBy: TransferKind;
  endedAt: number | undefined;
  endedBy: 'hangup' | 'blind-transfer' | 'attended-transfer' | undefined;
  recordings: readonly string[];
}

export interface RouteVisit extends Route {
  readonly at: number;
}

export interface Call {
  readonly id: string;
  /** A small number that tells calls apart within a second (3CX's "_N"); the Asterisk Uniqueid counter. */
  readonly seq: number;
  readonly startedAt: number;
  direction: Direction;
  /** True once the direction is final (the origin is a trunk, or it has dialled someone). */
  directionKnown: boolean;
  clickToCall: boolean;
  /**
   * The first channel: the caller's trunk channel (inbound), the calling phone (outbound, internal).
   * A click-to-call originated through a Local channel starts on that channel and moves here to the
   * phone it rings once that phone is dialled.
   */
  origin: string;
  /** The channel standing for the customer: the origin for inbound and internal, the trunk leg for outbound. */
  customer: string | undefined;
  /** The customer's number: the caller (inbound), the number dialled (outbound), the calling extension (internal). */
  customerNumber: string;
  customerName: string;
  /** The extension that placed an outbound or internal call. */
  originExtension: string;
  did: string;
  routes: RouteVisit[];
  legs: Leg[];
  segments: Segment[];
  pendingTransfer: TransferKind;
  queueOutcome: 'answered' | 'abandoned' | 'timeout' | undefined;
  /** `durationMs`: the message's audio length, when the PBX adapter knew it (events.ts VoicemailLeft). */
  voicemail: { mailbox: string; leftAt: number | undefined; durationMs?: number } | undefined;
  /** The call this one is an attended-transfer consultation for (a separate PBX call, e.g. SIP REFER). */
  consultFor: string | undefined;
  lastEventAt: number;
  /** The channels of this call, so that ending it never scans every channel of the PBX. */
  channelIds: string[];
  answeredAt: number | undefined;
  endedAt: number | undefined;
  disposition: Disposition | undefined;
  endReason: EndReason | undefined;
}

export interface Channel {
  readonly id: string;
  readonly name: string;
  readonly party: Party;
  call: string;
  callerId: CallerId;
  readonly dialed: string;
  answeredAt: number | undefined;
  recordings: readonly string[];
  hungUpAt: number | undefined;
  held: boolean;
  /** The channel that dialled this one, if any. */
  dialedBy: string | undefined;
  /** Q.850 cause the PBX gave before the Hangup (AMI HangupRequest): a phone declining, a busy line. */
  cause: number | undefined;
  /** Dialled by an AMI Originate / API originate: nobody's leg rang it. */
  originated: boolean;
  /** The other half of a Local channel pair (`…;1` ↔ `…;2`): Local channels are wires, not parties. */
  localPeer: string | undefined;
}

/**
 * `xs` and then `x`, in a new array of exactly that length. A call's lists hold one to a few items
 * for as long as the call lasts: grown by push, each one reserves 17 slots (152 bytes on 64-bit
 * node) — a quarter of a live call's JS heap in a heap snapshot of 10,000 live calls (issue #15).
 */
export const appended = <T>(xs: readonly T[], x: T): T[] => xs.concat([x]);

/**
 * The recordings of a channel or conversation that has none, which most never get: one shared
 * frozen array, not an empty array (32 bytes) on every channel and segment (issue #15, memory).
 */
export const NO_RECORDINGS: readonly string[] = Object.freeze([]);

/** A frozen, self-contained copy of a call, attached to every lifecycle event. */
export type CallView = Readonly<Omit<Call, 'legs' | 'segments' | 'routes' | 'channelIds'>> & {
  readonly legs: readonly Readonly<Leg>[];
  readonly segments: readonly Readonly<Segment>[];
  readonly routes: readonly RouteVisit[];
};

export function viewOf(call: Call): CallView {
  const { channelIds: _, ...rest } = call;
  return {
    ...rest,
    legs: call.legs.map((l) => ({ ...l })),
    segments: call.segments.map((s) => ({ ...s, recordings: [...s.recordings] })),
    routes: [...call.routes],
    voicemail: call.voicemail ? { ...call.voicemail } : undefined,
  };
}

/**
 * True when this leg rings a phone that already rang for this call since the last answer: a queue
 * retrying its members (app_queue `retry`). Schemas that announce a phone once per call use it. A
 * phone is its endpoint (endpointOf): extension 1001 of two tenants is two phones.
 */
export function isRering(call: CallView, leg: Readonly<Leg>): boolean {
  const since = call.segments.at(-1)?.answeredAt ?? -Infinity;
  return call.legs.some(
    (l) => l.channel !== leg.channel && endpointOf(l.party) === endpointOf(leg.party) && l.ringingAt !== undefined && l.createdAt >= since && l.createdAt <= leg.createdAt,
  );
}
