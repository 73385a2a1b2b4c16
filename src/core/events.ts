/**
 * PBX-neutral channel events: what the AMI and ESL adapters produce and the call tracker consumes.
 * A "channel" is one call leg's media endpoint on the PBX (an AMI Uniqueid, an ESL Unique-ID);
 * `call` is the PBX's own grouping of channels (AMI Linkedid, ESL Other-Leg/Call-UUID).
 * `at` is milliseconds since the Unix epoch, taken from the PBX event when it has one.
 */

export type PartyKind = 'extension' | 'trunk' | 'local' | 'unknown';

export interface Party {
  readonly kind: PartyKind;
  /** Extension number, trunk name, or the Local channel's target. */
  readonly id: string;
  /**
   * The endpoint name as the PBX gave it, present only when it differs from `id`: the group named
   * ext of `roles.extension_pattern` took the extension out of it (`1001-12` → id `1001`, issue #12
   * item 5). Webhooks name `id`; what must tell one phone from another (extension 1001 of tenant
   * 12 from that of tenant 13) keys on `endpointOf(party)`.
   */
  readonly endpoint?: string;
}

/** The phone itself, not the extension it is: the raw endpoint name, which tenants do not share. */
export function endpointOf(party: Party): string {
  return party.endpoint ?? party.id;
}

export interface CallerId {
  readonly num: string;
  readonly name: string;
}

/** Where the dialplan sent a call: the routing points a CRM cares about. */
export type RouteRole = 'ivr' | 'queue' | 'ringgroup' | 'voicemail';

export type DialStatus = 'answer' | 'noanswer' | 'busy' | 'cancel' | 'congestion' | 'unavailable' | 'other';

interface Base {
  readonly at: number;
}

export interface ChannelCreated extends Base {
  readonly type: 'channel.created';
  readonly channel: string;
  readonly call: string;
  readonly name: string;
  readonly party: Party;
  readonly callerId: CallerId;
  /** The number the channel asked for when it appeared (a DID for a trunk, the dialled number for a phone). */
  readonly dialed: string;
}

export interface ChannelCallerId extends Base {
  readonly type: 'channel.callerid';
  readonly channel: string;
  readonly callerId: CallerId;
}

export interface ChannelAnswered extends Base {
  readonly type: 'channel.answered';
  readonly channel: string;
}

export interface ChannelRinging extends Base {
  readonly type: 'channel.ringing';
  readonly channel: string;
}

/**
 * Why a channel is about to go, before its Hangup and before the dial that rang it ends (AMI
 * HangupRequest with a Cause): the only place a phone's 603 Decline shows while Dial still
 * calls the attempt NOANSWER.
 */
export interface ChannelCause extends Base {
  readonly type: 'channel.cause';
  readonly channel: string;
  readonly cause: number;
}

export interface ChannelHangup extends Base {
  readonly type: 'channel.hangup';
  readonly channel: string;
  /** Q.850 cause code (16 normal clearing, 17 busy, 26 answered elsewhere…). */
  readonly cause: number;
}

export interface DialBegin extends Base {
  readonly type: 'dial.begin';
  /** The dialling channel; absent for an originate (click-to-call): nobody dials the first phone. */
  readonly from?: string;
  readonly to: string;
  readonly target: string;
}

export interface DialEnd extends Base {
  readonly type: 'dial.end';
  readonly from?: string;
  readonly to: string;
  readonly status: DialStatus;
}

export interface RouteEntered extends Base {
  readonly type: 'route.entered';
  readonly channel: string;
  readonly role: RouteRole;
  readonly number: string;
}

export interface QueueLeft extends Base {
  readonly type: 'queue.left';
  readonly channel: string;
  readonly queue: string;
  readonly outcome: 'answered' | 'abandoned' | 'timeout';
}

export interface BridgeEntered extends Base {
  readonly type: 'bridge.entered';
  readonly channel: string;
  readonly bridge: string;
}

export interface BridgeLeft extends Base {
  readonly type: 'bridge.left';
  readonly channel: string;
  readonly bridge: string;
}

export interface ChannelHold extends Base {
  readonly type: 'channel.hold';
  readonly channel: string;
  readonly held: boolean;
}

export interface BlindTransfer extends Base {
  readonly type: 'transfer.blind';
  readonly transferer: string;
  readonly transferee: string;
  readonly target: string;
}

export interface AttendedTransfer extends Base {
  readonly type: 'transfer.attended';
  /** The transferer's channel in the original call. */
  readonly transferer: string;
  /** The transferer's channel in the consult call (the same channel when the PBX does it in-call). */
  readonly consultTransferer: string;
  /** The consulted party's channel (or the Local channel standing for it). */
  readonly target: string;
}

export interface VoicemailLeft extends Base {
  readonly type: 'voicemail.left';
  readonly channel: string;
  readonly mailbox: string;
  /**
   * The message's audio length in milliseconds (like every time here, and as VXT wants it), when
   * the adapter knows it: FreeSWITCH reports it (src/esl/normalise.ts); Asterisk's CEL prompt
   * events bound it from above, from the end of VoiceMail's beep to the end of the recording
   * (src/ami/voicemail.ts). Absent otherwise (issue #12 item 6).
   */
  readonly durationMs?: number;
}

export interface RecordingStarted extends Base {
  readonly type: 'recording.started';
  readonly channel: string;
  readonly file: string;
}

export interface MessageReceived extends Base {
  readonly type: 'message';
  readonly from: string;
  readonly to: string;
  readonly body: string;
  readonly direction: 'inbound' | 'outbound';
}

/**
 * Every channel alive on the PBX now, listed after a reconnect (AMI CoreShowChannels, ESL `show
 * channels`): a tracked channel missing from it ended while we were not listening.
 */
export interface ChannelsSnapshot extends Base {
  readonly type: 'channels.snapshot';
  readonly channels: readonly string[];
}

export type PbxEvent =
  | ChannelCreated
  | ChannelCallerId
  | ChannelAnswered
  | ChannelRinging
  | ChannelCause
  | ChannelHangup
  | DialBegin
  | DialEnd
  | RouteEntered
  | QueueLeft
  | BridgeEntered
  | BridgeLeft
  | ChannelHold
  | BlindTransfer
  | AttendedTransfer
  | VoicemailLeft
  | RecordingStarted
  | MessageReceived
  | ChannelsSnapshot;

export type PbxEventType = PbxEvent['type'];
