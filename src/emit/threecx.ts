import type { LifecycleEvent } from '../core/lifecycle.js';
import { isRering, type CallView, type Segment } from '../core/model.js';
import type { ThreeCxEndpoint } from '../config/types.js';
import type { RenderContext as AnyRenderContext } from './context.js';
import type { WebhookRequest } from './request.js';
import { recordingUrl } from './recording.js';
import { localTime, seconds } from './time.js';

type RenderContext = AnyRenderContext<ThreeCxEndpoint>;

/**
 * 3CX WebhooksApi.ini (test/fixtures/vendor-docs/3cx-webhooksapi-ini.txt): a JSON variant and the
 * legacy urlencoded one. Choices where the doc is silent or contradicts itself are listed in
 * docs/webhooks/3cx.md; each is made once, here.
 */

/**
 * The call's id, `YYMMDDhhmmss_N-K`: its start in local time, the PBX's call number, the conversations so far.
 * @pattern ^\d{12}_\d+-\d+$
 */
type ThreeCxId = string;
/** What a `ringing` row rings: an IVR (`other`), a queue, a phone (`ext`). */
type Usertype = 'other' | 'queue' | 'ext';

/** `ringing`: the call reaches an IVR or a queue, or a phone starts ringing. */
interface Ringing { Event: 'ringing'; Callerid: string; User: string; Usertype: Usertype; Did: string; Id: ThreeCxId }
/** `dialing`: an extension's outbound call starts dialling the external number. */
interface Dialing { Event: 'dialing'; Callerid: string; User: string; Id: ThreeCxId }
/** A conversation starts: a phone answers (incoming), or the called party answers (outgoing). */
interface Started {
  Event: 'incomingcall_started' | 'outgoingcall_started';
  /** The customer's number; `MAKECALL` on a click-to-call. */
  Callerid: string; User: string; Trtype: 'NotDef' | 'Blind' | 'Attended'; Did: string; Id: ThreeCxId;
}
/** A conversation ends (`Ok`), or the call ends unanswered (`Missed`). */
interface Finished {
  Event: 'incoming' | 'outgoing'; Callerid: string; User: string; Finishtype: 'Ok' | 'Missed'; Transfer: 'True' | 'False';
  Did: string;
  /**
   * Talk time `mm:ss`, empty for a missed call.
   * @pattern ^(\d{2,}:\d{2})?$
   */
  Duration: string;
  Id: ThreeCxId;
}
/** A conversation's recordings, after the call's end. */
interface Recording { Event: 'recording'; FileUrls: string[]; Callerid: string; User: string; Id: ThreeCxId }

/** The JSON variant (`variant = json`): one object per webhook, keys in the 3CX doc's order. */
export type ThreeCxJsonBody = Ringing | Dialing | Started | Finished | Recording;

/** The urlencoded variant's fields (`variant = urlencoded`, 3CX's legacy form): lower-case keys. */
interface FormRinging { event: 'ringing'; callerid: string; user: string; usertype: Usertype; did: string; id: ThreeCxId }
interface FormDialing { event: 'dialing'; callerid: string; user: string; id: ThreeCxId }
interface FormStarted {
  event: 'hangupincoming' | 'hangupoutgoing'; callerid: string; user: string; did: string; trtype: 'NotDef' | 'Blind' | 'Attended'; id: ThreeCxId;
}
interface FormFinished {
  event: 'incoming' | 'outgoing'; callerid: string; user: string; finishtype: 'Ok' | 'Missed'; transfer: 'True' | 'False'; did: string;
  /** `Answered call from …`, `Missed call by …`, `Successful call to …`, `Unanswered call to …`. */
  title: string;
  id: ThreeCxId;
}
/**
 * The urlencoded variant's decoded body (`application/x-www-form-urlencoded`, or the query string of
 * a GET). Its recording webhook is not a form: the recording's URL alone, as `text/plain`.
 */
export type ThreeCxFormBody = FormRinging | FormDialing | FormStarted | FormFinished;

interface Rendered {
  /** The JSON variant's event name. */
  readonly event: string;
  readonly json: ThreeCxJsonBody;
  /** The urlencoded variant: its own event names and fields (lower-case keys, `title`); a recording is its URL. */
  readonly legacy: ThreeCxFormBody | string | undefined;
}

/** `YYMMDDhhmmss_N-K`: the call's start in local time, the PBX's call number, answered segments so far. */
function callId(call: CallView, k: number, tz: string): string {
  const t = localTime(call.startedAt, tz);
  return `${t.year.slice(-2)}${t.month}${t.day}${t.hour}${t.minute}${t.second}_${call.seq}-${k}`;
}

const pad2 = (n: number): string => String(n).padStart(2, '0');
/** "Duration": "00:06" — minutes:seconds of talk. */
const mmss = (s: number): string => `${pad2(Math.floor(s / 60))}:${pad2(s % 60)}`;
/** The legacy title's "(0:07)". */
const mss = (s: number): string => `${Math.floor(s / 60)}:${pad2(s % 60)}`;

function did(call: CallView, _ctx: RenderContext): string {
  return call.did;
}

const outgoing = (call: CallView): boolean => call.direction === 'outbound';

/** Who a missed call belongs to: the queue it died in, else the last phone rung, else the last routing point. */
function missedUser(call: CallView): { user: string; kind: string } {
  if (outgoing(call)) return { user: call.originExtension, kind: 'ext' };
  const lastRoute = call.routes.filter((r) => r.role !== 'voicemail').at(-1);
  if (lastRoute?.role === 'queue') return { user: lastRoute.number, kind: 'queue' };
  const lastLeg = call.legs.filter((l) => l.kind === 'agent').at(-1);
  if (lastLeg) return { user: lastLeg.party.id, kind: 'ext' };
  if (lastRoute) return { user: lastRoute.number, kind: lastRoute.role };
  return { user: '', kind: '' };
}

function ringing(call: CallView, user: string, usertype: Usertype, ctx: RenderContext): Rendered {
  const id = callId(call, call.segments.length, ctx.timezone);
  const c = call.customerNumber;
  const d = did(call, ctx);
  return {
    event: 'ringing',
    json: { Event: 'ringing', Callerid: c, User: user, Usertype: usertype, Did: d, Id: id },
    legacy: { event: 'ringing', callerid: c, user, usertype, did: d, id },
  };
}

/** The click-to-call table's `outgoingcall_started` Callerid (3CX doc table 11). */
const CLICK_TO_CALL_CALLERID = 'MAKECALL';

const TRTYPE = { none: 'NotDef', blind: 'Blind', attended: 'Attended' } as const;

function started(call: CallView, seg: Readonly<Segment>, ctx: RenderContext): Rendered {
  const id = callId(call, seg.k, ctx.timezone);
  // The doc's click-to-call table shows the literal "MAKECALL" here: a marker of the click-to-call,
  // not the originate's display name, so it is sent whatever name was set (issue #12 item 6).
  const c = call.clickToCall ? CLICK_TO_CALL_CALLERID : call.customerNumber;
  const d = did(call, ctx);
  const tr = TRTYPE[seg.startedBy];
  const out = outgoing(call);
  return {
    event: out ? 'outgoingcall_started' : 'incomingcall_started',
    json: { Event: out ? 'outgoingcall_started' : 'incomingcall_started', Callerid: c, User: seg.user, Trtype: tr, Did: d, Id: id },
    legacy: { event: out ? 'hangupoutgoing' : 'hangupincoming', callerid: c, user: seg.user, did: d, trtype: tr, id },
  };
}

function title(call: CallView, d: string, answeredSeconds: number | undefined, user: { user: string; kind: string }): string {
  const c = call.customerNumber;
  if (outgoing(call)) {
    return answeredSeconds === undefined ? `Unanswered call to ${c}` : `Successful call to ${c} (${mss(answeredSeconds)})`;
  }
  const prefix = d ? `${d}:` : '';
  if (answeredSeconds !== undefined) return `${prefix}Answered call from ${c} (${mss(answeredSeconds)})`;
  return `${prefix}Missed call by ${user.kind} ${user.user} from ${c}`;
}

function finished(call: CallView, ctx: RenderContext, seg: Readonly<Segment> | undefined): Rendered {
  const out = outgoing(call);
  const name = out ? ('outgoing' as const) : ('incoming' as const);
  const d = did(call, ctx);
  const who = seg ? { user: seg.user, kind: 'ext' } : missedUser(call);
  const talk = seg ? seconds(seg.answeredAt, seg.endedAt ?? seg.answeredAt) : undefined;
  const finishtype = seg ? ('Ok' as const) : ('Missed' as const);
  const transfer = seg?.endedBy === 'attended-transfer' ? ('True' as const) : ('False' as const);
  const id = callId(call, seg ? seg.k : 0, ctx.timezone);
  const c = call.customerNumber;
  return {
    event: name,
    json: {
      Event: name, Callerid: c, User: who.user, Finishtype: finishtype, Transfer: transfer,
      Did: d, Duration: talk === undefined ? '' : mmss(talk), Id: id,
    },
    legacy: {
      event: name, callerid: c, user: who.user, finishtype, transfer,
      did: d, title: title(call, d, talk, who), id,
    },
  };
}

/** Undefined without the endpoint's `recording_url`: a FileUrls pointing nowhere real is never sent (issue #13). */
function recording(call: CallView, seg: Readonly<Segment>, ctx: RenderContext): Rendered | undefined {
  const template = ctx.endpoint.recordingUrl;
  if (template === undefined) return undefined;
  const id = callId(call, seg.k, ctx.timezone);
  const urls = seg.recordings.map((f, i) => recordingUrl(template, f, id, i + 1));
  return {
    event: 'recording',
    json: { Event: 'recording', FileUrls: urls, Callerid: call.customerNumber, User: seg.user, Id: id },
    // The legacy variant's recording row is just the file's URL.
    legacy: urls[0],
  };
}

/** Maps one lifecycle event to the 3CX event it stands for, if any. */
function toThreeCx(ev: LifecycleEvent, ctx: RenderContext): Rendered | undefined {
  if (ev.type === 'message') return undefined; // 3CX webhooks know calls only
  const { call } = ev;
  switch (ev.type) {
    case 'route.entered':
      if (outgoing(call)) return undefined;
      if (ev.route.role === 'ivr') return ringing(call, ev.route.number, 'other', ctx);
      if (ev.route.role === 'queue') return ringing(call, ev.route.number, 'queue', ctx);
      return undefined; // 3CX shows a ring group only through the phones it rings
    case 'leg.dialed':
      if (ev.leg.kind !== 'customer') return undefined;
      return {
        event: 'dialing',
        json: { Event: 'dialing', Callerid: call.customerNumber, User: call.originExtension, Id: callId(call, call.segments.length, ctx.timezone) },
        legacy: { event: 'dialing', callerid: call.customerNumber, user: call.originExtension, id: callId(call, call.segments.length, ctx.timezone) },
      };
    case 'leg.ringing':
      if ((ev.leg.kind !== 'agent' && ev.leg.kind !== 'consult') || ev.leg.party.kind !== 'extension') return undefined;
      if (isRering(call, ev.leg)) return undefined;
      return ringing(call, ev.leg.party.id, 'ext', ctx);
    case 'leg.answered':
      return started(call, ev.segment, ctx);
    case 'segment.ended':
      // The doc's blind-transfer table has no end row for the transferer's segment.
      return ev.segment.endedBy === 'blind-transfer' ? undefined : finished(call, ctx, ev.segment);
    case 'call.ended':
      return call.segments.length === 0 ? finished(call, ctx, undefined) : undefined;
    case 'recording.ready':
      return recording(call, ev.segment, ctx);
    default:
      return undefined;
  }
}

function formEncode(fields: ThreeCxJsonBody | ThreeCxFormBody): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) p.append(k, typeof v === 'string' ? v : (v as string[]).join(','));
  return p.toString();
}

function wants(ctx: RenderContext, names: readonly string[]): boolean {
  const events = ctx.endpoint.events;
  return events.length === 0 || names.some((n) => events.includes(n));
}

export function renderThreeCx(ev: LifecycleEvent, ctx: RenderContext): WebhookRequest[] {
  const r = toThreeCx(ev, ctx);
  if (!r) return [];
  const ep = ctx.endpoint;
  const legacy = ep.variant === 'urlencoded';
  const fields = legacy ? r.legacy : r.json;
  if (fields === undefined) return [];
  const legacyName = typeof r.legacy === 'object' ? r.legacy.event : r.event;
  if (!wants(ctx, [r.event, legacyName])) return [];
  const orderKey = `${ep.name}:${ev.type === 'message' ? 'message' : ev.call.id}`;
  if (typeof fields === 'string') {
    return [{ endpoint: ep.name, method: ep.method, url: ep.url, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: fields, orderKey }];
  }
  if (ep.method === 'GET') {
    const sep = ep.url.includes('?') ? '&' : '?';
    return [{ endpoint: ep.name, method: 'GET', url: `${ep.url}${sep}${formEncode(fields)}`, headers: {}, body: '', orderKey }];
  }
  if (legacy) {
    return [{ endpoint: ep.name, method: ep.method, url: ep.url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: formEncode(fields), orderKey }];
  }
  const body = JSON.stringify(fields);
  return [{ endpoint: ep.name, method: ep.method, url: ep.url, headers: { 'content-type': 'application/json' }, body, orderKey }];
}
