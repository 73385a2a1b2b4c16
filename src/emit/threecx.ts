import type { LifecycleEvent } from '../core/lifecycle.js';
import { isRering, type CallView, type Segment } from '../core/model.js';
import type { ThreeCxEndpoint } from '../config/types.js';
import type { RenderContext as AnyRenderContext } from './context.js';
import type { WebhookRequest } from './request.js';
import { recordingUrl } from './recording.js';
import { localTime, seconds } from './time.js';

type RenderContext = AnyRenderContext<ThreeCxEndpoint>;

/**
 * 3CX WebhooksApi.ini (../shared/vendor-docs/3cx-webhooksapi-ini.txt): a JSON variant and the
 * legacy urlencoded one. Choices where the doc is silent or contradicts itself are listed in
 * docs/webhooks/3cx.md; each is made once, here.
 */

type Value = string | readonly string[];
type Fields = ReadonlyArray<readonly [string, Value]>;

interface Rendered {
  /** The JSON variant's event name. */
  readonly event: string;
  readonly json: Fields;
  /** The urlencoded variant: its own event name and field list (lower-case keys, `title`). */
  readonly legacy: Fields | string | undefined;
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

function ringing(call: CallView, user: string, usertype: string, ctx: RenderContext): Rendered {
  const id = callId(call, call.segments.length, ctx.timezone);
  const c = call.customerNumber;
  const d = did(call, ctx);
  return {
    event: 'ringing',
    json: [['Event', 'ringing'], ['Callerid', c], ['User', user], ['Usertype', usertype], ['Did', d], ['Id', id]],
    legacy: [['event', 'ringing'], ['callerid', c], ['user', user], ['usertype', usertype], ['did', d], ['id', id]],
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
    json: [['Event', out ? 'outgoingcall_started' : 'incomingcall_started'], ['Callerid', c], ['User', seg.user], ['Trtype', tr], ['Did', d], ['Id', id]],
    legacy: [['event', out ? 'hangupoutgoing' : 'hangupincoming'], ['callerid', c], ['user', seg.user], ['did', d], ['trtype', tr], ['id', id]],
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
  const name = out ? 'outgoing' : 'incoming';
  const d = did(call, ctx);
  const who = seg ? { user: seg.user, kind: 'ext' } : missedUser(call);
  const talk = seg ? seconds(seg.answeredAt, seg.endedAt ?? seg.answeredAt) : undefined;
  const finishtype = seg ? 'Ok' : 'Missed';
  const transfer = seg?.endedBy === 'attended-transfer' ? 'True' : 'False';
  const id = callId(call, seg ? seg.k : 0, ctx.timezone);
  const c = call.customerNumber;
  return {
    event: name,
    json: [
      ['Event', name], ['Callerid', c], ['User', who.user], ['Finishtype', finishtype], ['Transfer', transfer],
      ['Did', d], ['Duration', talk === undefined ? '' : mmss(talk)], ['Id', id],
    ],
    legacy: [
      ['event', name], ['callerid', c], ['user', who.user], ['finishtype', finishtype], ['transfer', transfer],
      ['did', d], ['title', title(call, d, talk, who)], ['id', id],
    ],
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
    json: [['Event', 'recording'], ['FileUrls', urls], ['Callerid', call.customerNumber], ['User', seg.user], ['Id', id]],
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
        json: [['Event', 'dialing'], ['Callerid', call.customerNumber], ['User', call.originExtension], ['Id', callId(call, call.segments.length, ctx.timezone)]],
        legacy: [['event', 'dialing'], ['callerid', call.customerNumber], ['user', call.originExtension], ['id', callId(call, call.segments.length, ctx.timezone)]],
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

function formEncode(fields: Fields): string {
  const p = new URLSearchParams();
  for (const [k, v] of fields) p.append(k, typeof v === 'string' ? v : v.join(','));
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
  const legacyName = typeof r.legacy === 'object' ? String(r.legacy[0]?.[1] ?? r.event) : r.event;
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
  const body = JSON.stringify(Object.fromEntries(fields));
  return [{ endpoint: ep.name, method: ep.method, url: ep.url, headers: { 'content-type': 'application/json' }, body, orderKey }];
}
