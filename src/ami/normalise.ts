import type { DialStatus, PbxEvent } from '../core/events.js';
import type { RoleBook, Route } from '../core/roles.js';
import { partyOfChannel } from './channel.js';
import { isKnownAmiEvent } from './events.js';
import { field, type AmiFrame } from './frame.js';
import { VoicemailRecordings } from './voicemail.js';

/** What the normaliser saw, for metrics and tests. */
export interface NormaliseStats {
  events: number;
  used: number;
  unknown: number;
  /** Events the model has no use for (VarSet noise, CEL, RTCP…): counted, not an anomaly. */
  ignored: number;
}

/** `n`: the roles, and the one piece of state, voicemail recordings (src/ami/voicemail.ts). */
type Handler = (f: AmiFrame, at: number, n: AmiNormaliser) => PbxEvent | undefined;

/** AMI writes `<unknown>` for an absent caller ID. */
function clean(v: string): string {
  return v === '<unknown>' ? '' : v;
}

const DIAL_STATUS: Record<string, DialStatus> = {
  ANSWER: 'answer',
  NOANSWER: 'noanswer',
  BUSY: 'busy',
  CANCEL: 'cancel',
  CONGESTION: 'congestion',
  CHANUNAVAIL: 'unavailable',
};

const IVR_APPS = new Set(['background', 'waitexten', 'read']);
/**
 * Every application routeOf names a route by (lower-case): Asterisk's filter passes a dialplan
 * step running one of them (src/ami/event-filter.ts).
 */
export const ROUTE_APPLICATIONS: readonly string[] = [...IVR_APPS, 'dial', 'voicemail'];

/** Dial(PJSIP/117&PJSIP/204,20,tT): more than one destination at once is a ring group. */
function dialsSeveral(appData: string): boolean {
  const comma = appData.indexOf(',');
  const targets = comma < 0 ? appData : appData.slice(0, comma);
  return targets.includes('&');
}

function newexten(f: AmiFrame, at: number, { roles }: AmiNormaliser): PbxEvent | undefined {
  const channel = field(f, 'uniqueid');
  const context = field(f, 'context');
  const exten = field(f, 'exten') || field(f, 'extension');
  const route = routeOf(roles, context, exten, field(f, 'application'), field(f, 'appdata'));
  return route && { type: 'route.entered', at, channel, role: route.role, number: route.number };
}

/** FreePBX's Gosub "macros" (and FreePBX 16's app_macro) run at `s` of `macro-NAME` or `sub-NAME`. */
function isSubroutineEntry(context: string, exten: string): boolean {
  return exten === 's' && (context.startsWith('macro-') || context.startsWith('sub-'));
}

function routeOf(roles: RoleBook, context: string, exten: string, application: string, appData: string): Route | undefined {
  const configured = roles.routeAt(context, exten);
  if (configured) return configured;
  const app = application.toLowerCase();
  if (IVR_APPS.has(app)) return roles.routeBy('ivr', context, exten, `application ${application}`);
  if (app === 'dial' && dialsSeveral(appData)) {
    // A subroutine's Dial (FreePBX macro-dial for hunt and memoryhunt groups) serves the route that called it.
    if (isSubroutineEntry(context, exten)) return undefined;
    return roles.routeBy('ringgroup', context, exten, 'Dial() to several phones');
  }
  if (app === 'voicemail') {
    const mailbox = roles.extensionId(appData.split(/[@,]/)[0] || exten);
    return roles.routeBy('voicemail', context, mailbox, 'application VoiceMail');
  }
  return undefined;
}

/** The only channel variables the model reads; every other VarSet is noise (half of all AMI events). */
export const USED_VARIABLES: readonly string[] = ['MIXMONITOR_FILENAME', 'QUEUESTATUS'];
const VARSET_NEEDLES = USED_VARIABLES.map((v) => Buffer.from(`Variable: ${v}`));
/** The only CEL events read: VoiceMail's prompts, which bound a message's length (src/ami/voicemail.ts). */
export const USED_CEL_EVENTS: readonly string[] = ['STREAM_BEGIN', 'STREAM_END'];
const CEL_NEEDLES = [Buffer.from('EventName: STREAM_'), Buffer.from('Application: VoiceMail')];

function varset(f: AmiFrame, at: number): PbxEvent | undefined {
  const name = field(f, 'variable');
  const channel = field(f, 'uniqueid');
  if (name === 'MIXMONITOR_FILENAME') {
    const file = field(f, 'value');
    return file ? { type: 'recording.started', at, channel, file } : undefined;
  }
  // app_queue has no timeout event: a timeout is a QueueCallerAbandon followed by this.
  if (name === 'QUEUESTATUS' && field(f, 'value') === 'TIMEOUT') {
    return { type: 'queue.left', at, channel, queue: '', outcome: 'timeout' };
  }
  return undefined;
}

/** Channels that never carry a call: the text-message queue channel lives for as long as Asterisk does. */
function carriesCalls(channel: string): boolean {
  return !channel.startsWith('Message/');
}

const HANDLER_TABLE: Record<string, Handler> = {
  newchannel: (f, at, { roles }) => carriesCalls(field(f, 'channel')) ? ({
    type: 'channel.created',
    at,
    channel: field(f, 'uniqueid'),
    call: field(f, 'linkedid') || field(f, 'uniqueid'),
    name: field(f, 'channel'),
    party: partyOfChannel(field(f, 'channel'), roles),
    callerId: { num: clean(field(f, 'calleridnum')), name: clean(field(f, 'calleridname')) },
    dialed: field(f, 'exten'),
  }) : undefined,
  newcallerid: (f, at) => ({
    type: 'channel.callerid',
    at,
    channel: field(f, 'uniqueid'),
    callerId: { num: clean(field(f, 'calleridnum')), name: clean(field(f, 'calleridname')) },
  }),
  newstate: (f, at) => {
    const state = field(f, 'channelstatedesc');
    if (state === 'Up') return { type: 'channel.answered', at, channel: field(f, 'uniqueid') };
    if (state === 'Ringing') return { type: 'channel.ringing', at, channel: field(f, 'uniqueid') };
    return undefined;
  },
  dialbegin: (f, at) => ({
    type: 'dial.begin',
    at,
    ...(field(f, 'uniqueid') ? { from: field(f, 'uniqueid') } : {}),
    to: field(f, 'destuniqueid'),
    target: field(f, 'dialstring'),
  }),
  dialstate: (f, at) =>
    field(f, 'dialstatus') === 'RINGING' ? { type: 'channel.ringing', at, channel: field(f, 'destuniqueid') } : undefined,
  dialend: (f, at) => ({
    type: 'dial.end',
    at,
    ...(field(f, 'uniqueid') ? { from: field(f, 'uniqueid') } : {}),
    to: field(f, 'destuniqueid'),
    status: DIAL_STATUS[field(f, 'dialstatus')] ?? 'other',
  }),
  newexten,
  varset,
  queuecallerjoin: (f, at, { roles }) => ({
    type: 'route.entered',
    at,
    channel: field(f, 'uniqueid'),
    ...roles.routeBy('queue', '', field(f, 'queue'), 'QueueCallerJoin (app_queue)'),
  }),
  queuecallerabandon: (f, at) => ({
    type: 'queue.left',
    at,
    channel: field(f, 'uniqueid'),
    queue: field(f, 'queue'),
    outcome: 'abandoned',
  }),
  agentconnect: (f, at) => ({
    type: 'queue.left',
    at,
    channel: field(f, 'uniqueid'),
    queue: field(f, 'queue'),
    outcome: 'answered',
  }),
  bridgeenter: (f, at) => ({ type: 'bridge.entered', at, channel: field(f, 'uniqueid'), bridge: field(f, 'bridgeuniqueid') }),
  bridgeleave: (f, at) => ({ type: 'bridge.left', at, channel: field(f, 'uniqueid'), bridge: field(f, 'bridgeuniqueid') }),
  blindtransfer: (f, at) =>
    field(f, 'result') === 'Success'
      ? {
          type: 'transfer.blind',
          at,
          transferer: field(f, 'transfereruniqueid'),
          transferee: field(f, 'transfereeuniqueid'),
          target: field(f, 'extension'),
        }
      : undefined,
  attendedtransfer: (f, at) =>
    field(f, 'result') === 'Success'
      ? {
          type: 'transfer.attended',
          at,
          transferer: field(f, 'origtransfereruniqueid'),
          consultTransferer: field(f, 'secondtransfereruniqueid'),
          target: field(f, 'transfertargetuniqueid'),
        }
      : undefined,
  messagewaiting: (f, at, n) => {
    const channel = field(f, 'uniqueid');
    // Without a channel it is a mailbox status change (someone listened), not a message left.
    if (!channel || Number(field(f, 'new')) < 1) return undefined;
    const mailbox = field(f, 'mailbox').split('@')[0] ?? '';
    const durationMs = n.voicemail.messageSaved(channel, at);
    return { type: 'voicemail.left', at, channel, mailbox: n.roles.extensionId(mailbox), ...(durationMs === undefined ? {} : { durationMs }) };
  },
  cel: (f, at, n) => {
    n.voicemail.cel(f, at);
    return undefined;
  },
  hold: (f, at) => ({ type: 'channel.hold', at, channel: field(f, 'uniqueid'), held: true }),
  unhold: (f, at) => ({ type: 'channel.hold', at, channel: field(f, 'uniqueid'), held: false }),
  // A queued hangup carries the far end's reason before Dial reports the attempt (a 603 → 21).
  hanguprequest: (f, at) => {
    const cause = Number(field(f, 'cause'));
    return cause > 0 ? { type: 'channel.cause', at, channel: field(f, 'uniqueid'), cause } : undefined;
  },
  hangup: (f, at, n) => {
    n.voicemail.forget(field(f, 'uniqueid'));
    return { type: 'channel.hangup', at, channel: field(f, 'uniqueid'), cause: Number(field(f, 'cause')) || 0 };
  },
  userevent: (f, at) => {
    // A dialplan `UserEvent(SMS,From: …,To: …,Body: …)` in the message context (README: text messages).
    if (field(f, 'userevent').toUpperCase() !== 'SMS') return undefined;
    return {
      type: 'message',
      at,
      from: field(f, 'from'),
      to: field(f, 'to'),
      body: field(f, 'body'),
      direction: field(f, 'direction') === 'outbound' ? 'outbound' : 'inbound',
    };
  },
};

// A Map, not the object: an event named "constructor" must not find Object's prototype.
const HANDLERS = new Map<string, Handler>(Object.entries(HANDLER_TABLE));

/**
 * The events the model reads, lower-case (VarSet and CEL among them: only the variables and CEL
 * events above are read). src/ami/event-filter.ts builds Asterisk's filter from this list, so the
 * filter Asterisk applies and the one the client applies cannot drift apart.
 */
export const HANDLED_AMI_EVENTS: readonly string[] = [...HANDLERS.keys()];

const wanted = new Map<string, boolean>();

/**
 * The framer filter for replay: skip, unparsed, the documented events the model never reads, the
 * VarSets of variables it does not use and the CEL events but VoiceMail's prompts. Unknown names
 * pass, so they are still counted.
 */
export function wantsAmiEvent(name: string, bytes: Buffer, start: number, end: number): boolean {
  if (name === 'VarSet') {
    const frame = bytes.subarray(start, end);
    return VARSET_NEEDLES.some((n) => frame.includes(n));
  }
  if (name === 'CEL') {
    const frame = bytes.subarray(start, end);
    return CEL_NEEDLES.every((n) => frame.includes(n));
  }
  return wantsAmiEventNamed(name, undefined);
}

/**
 * The same decision from an event's name and `detail` (a VarSet's variable, a CEL's EventName):
 * the live client's filter.
 */
export function wantsAmiEventNamed(name: string, detail: string | undefined): boolean {
  if (name === 'VarSet') return detail !== undefined && USED_VARIABLES.includes(detail);
  if (name === 'CEL') return detail !== undefined && USED_CEL_EVENTS.includes(detail);
  let want = wanted.get(name);
  if (want === undefined) {
    want = HANDLERS.has(name.toLowerCase()) || !isKnownAmiEvent(name);
    if (wanted.size < 1000) wanted.set(name, want);
  }
  return want;
}

/** AMI `Timestamp: 1795301990.760954` (timestampevents=yes) → ms; live AMI without it uses the clock. */
function timeOf(f: AmiFrame, now: () => number): number {
  const ts = f.fields['timestamp'];
  return ts ? Math.round(Number(ts) * 1000) : now();
}

/**
 * Turns AMI frames into PBX-neutral events. Stateless but for one thing: a voicemail message's
 * length comes from CEL events before its MessageWaiting (src/ami/voicemail.ts).
 */
export class AmiNormaliser {
  readonly stats: NormaliseStats = { events: 0, used: 0, unknown: 0, ignored: 0 };
  readonly voicemail = new VoicemailRecordings();

  constructor(
    readonly roles: RoleBook,
    private readonly now: () => number = Date.now,
  ) {}

  normalise(f: AmiFrame): PbxEvent | undefined {
    const name = f.fields['event'];
    if (name === undefined) return undefined; // responses to actions, the login reply
    this.stats.events++;
    const handler = HANDLERS.get(name.toLowerCase());
    if (!handler) {
      if (isKnownAmiEvent(name)) this.stats.ignored++;
      else this.stats.unknown++;
      return undefined;
    }
    const ev = handler(f, timeOf(f, this.now), this);
    if (ev) this.stats.used++;
    else this.stats.ignored++;
    return ev;
  }
}
