import { createHash } from 'node:crypto';
import type { VoipAppzEndpoint, VoipAppzEvent } from '../config/types.js';
import type { CallEvent, LifecycleEvent } from '../core/lifecycle.js';
import type { CallView, Disposition, RouteVisit } from '../core/model.js';
import type { RenderContext as AnyRenderContext } from './context.js';
import { recordingUrl } from './recording.js';
import type { WebhookRequest } from './request.js';
import { localTime, seconds } from './time.js';
import { DEFAULT_BODY_TEMPLATE, fillTemplate, queryString, type VoipAppzField } from './voipappz-template.js';

type RenderContext = AnyRenderContext<VoipAppzEndpoint>;

/**
 * VoipAppz webhook objects (test/fixtures/vendor-docs/voipappz-webhooks.txt): each object is one Event,
 * sent only in the environments it is subscribed to, with a JSON Body template. Every choice where
 * the doc is silent is listed in docs/webhooks/voipappz.md and made once, here.
 */

/** Where the call is when a webhook fires (`call_state`); null once it has ended. */
type CallState = 'ivr' | 'queue' | 'ringgroup' | 'voicemail' | 'ringing' | 'answered' | null;

/** What a lifecycle event means to one VoipAppz Event: whom it is about and where the call stands. */
interface Moment {
  /** The extension the webhook is about (user_* fields, destination). */
  readonly user: string | undefined;
  /** Ivr:Start / Ivr:End: the IVR started or ended. */
  readonly ivr: RouteVisit | undefined;
  readonly state: CallState;
  /** Call:Answer through a queue: the queue's disposition is "answer" before the queue reports it. */
  readonly answeredViaQueue: boolean;
  readonly ended: boolean;
}

/**
 * The doc's full body: what a webhook object without `body_file` sends, each of the doc's 27 fields
 * under its own name (a `body_file` template picks and renames them). Times are the configured
 * `calls.timezone`'s, durations whole seconds.
 */
export interface VoipAppzBody {
  direction: 'incoming' | 'outgoing';
  /** The call's UUID (v5, from the environment and the PBX's call id): the same on every webhook of a call. */
  uuid: string;
  /** "Call Type": where the call came from and where it was sent, e.g. `did_to_que`, `ext_to_did`. */
  type: string;
  /** ISO 8601 with `+00:00`. */
  created_at: string;
  contact_number: string | null;
  caller_id_number: string | null;
  duration: number;
  ring_duration: number;
  destination: string | null;
  /**
   * `hh:mm:ss`
   * @pattern ^\d{2}:\d{2}:\d{2}$
   */
  start_at: string;
  /**
   * `hh:mm:ss`, null until answered
   * @pattern ^\d{2}:\d{2}:\d{2}$
   */
  answer_at: string | null;
  environment_name: string;
  user_fullname: string | null;
  /** The directory person's email; empty when unknown. */
  user_name: string;
  extension_username: string | null;
  cause: 'answer' | 'busy' | 'no_answer' | null;
  /** The SIP final response the outcome stands for. */
  sip_status: '200' | '486' | '603' | '480' | '487' | '503' | null;
  recording_url: string | null;
  /**
   * `hh:mm:ss`
   * @pattern ^\d{2,}:\d{2}:\d{2}$
   */
  duration_time: string;
  billing_duration: number;
  /**
   * `hh:mm:ss`
   * @pattern ^\d{2,}:\d{2}:\d{2}$
   */
  billing_duration_time: string;
  did_number: string | null;
  did_name: string | null;
  queue_disposition: 'answer' | 'abandoned' | 'timeout' | null;
  ivr_name: string | null;
  call_state: CallState;
  queue_name: string | null;
}

/** A webhook object with `method = GET`: the body's fields in the query string, numbers as text, null as empty. */
export type VoipAppzQuery = { [K in keyof VoipAppzBody]: string };

/** Every doc field has a type in VoipAppzBody, and VoipAppzBody has no other (checked by the compiler). */
type Exact<A, B> = [A] extends [B] ? ([B] extends [A] ? true : never) : never;
const BODY_HAS_THE_DOC_FIELDS: Exact<keyof VoipAppzBody, VoipAppzField> = true;
void BODY_HAS_THE_DOC_FIELDS;

const moment = (m: Partial<Moment> & Pick<Moment, 'state'>): Moment => ({
  user: undefined, ivr: undefined, answeredViaQueue: false, ended: false, ...m,
});

/**
 * The IVR this event takes the call out of, if any: the next routing point, the first phone dialled
 * from it, or the call's end. Derived from the CallView alone, so the renderer remembers nothing.
 */
function ivrLeft(ev: CallEvent): RouteVisit | undefined {
  const { call } = ev;
  if (ev.type !== 'route.entered' && ev.type !== 'leg.dialed' && ev.type !== 'call.ended') return undefined;
  const ivr = ev.type === 'route.entered' ? call.routes.at(-2) : call.routes.at(-1);
  if (ivr?.role !== 'ivr') return undefined;
  const dialledSince = call.legs.filter((l) => l.createdAt >= ivr.at && l.kind !== 'origin');
  if (ev.type === 'leg.dialed') return dialledSince.every((l) => l.channel === ev.leg.channel) ? ivr : undefined;
  return dialledSince.length === 0 ? ivr : undefined; // a phone dialled from the IVR already ended it
}

/** The extension a call belongs to once it has ended: who talked last, else who called out, else who rang last. */
function lastUser(call: CallView): string | undefined {
  const seg = call.segments.at(-1);
  if (seg) return seg.user;
  if (call.direction === 'outbound') return call.originExtension;
  return call.legs.filter((l) => l.kind === 'agent' && l.party.kind === 'extension').at(-1)?.party.id;
}

function momentOf(ev: CallEvent, event: VoipAppzEvent): Moment | undefined {
  const { call } = ev;
  switch (event) {
    case 'Call:Ringing':
      if (ev.type !== 'leg.ringing' || ev.leg.kind === 'origin') return undefined; // click-to-call rings its own caller first
      if (ev.leg.kind === 'customer') return moment({ user: call.originExtension, state: 'ringing' });
      return moment({ user: ev.leg.party.kind === 'extension' ? ev.leg.party.id : undefined, state: 'ringing' });
    case 'Call:Answer':
      if (ev.type !== 'leg.answered') return undefined;
      return moment({ user: ev.segment.user, state: 'answered', answeredViaQueue: ev.leg.via?.role === 'queue' });
    case 'Call:Hangup':
    case 'Call:Reporting':
      // Recordings and the queue's outcome are attached before call.ended: Reporting needs no later event.
      return ev.type === 'call.ended' ? moment({ user: lastUser(call), state: null, ended: true }) : undefined;
    case 'Ivr:Start':
      if (ev.type !== 'route.entered' || ev.route.role !== 'ivr') return undefined;
      return moment({ ivr: call.routes.at(-1), state: 'ivr' });
    case 'Ivr:End': {
      const ivr = ivrLeft(ev);
      if (!ivr) return undefined;
      const state = ev.type === 'route.entered' ? ev.route.role : ev.type === 'leg.dialed' ? 'ringing' : null;
      return moment({ ivr, state, ended: ev.type === 'call.ended' });
    }
  }
}

/** RFC 4122 name-based UUID (v5) of the call: the same `uuid` on every webhook of a call, across restarts. */
const CALL_NAMESPACE = Buffer.from('09698430e01b46dfb245f2fe3a78bee7', 'hex');

function callUuid(environment: string, callId: string): string {
  const h = createHash('sha1').update(CALL_NAMESPACE).update(`${environment}:${callId}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** "Call Type", e.g. the doc's did_to_que: where the call came from and where it has been sent so far. */
function callType(call: CallView): string {
  if (call.direction === 'outbound') return 'ext_to_did';
  const from = call.direction === 'inbound' ? 'did' : 'ext';
  const routed = call.routes.find((r) => r.role === 'queue' || r.role === 'ringgroup');
  if (routed) return `${from}_to_${routed.role === 'queue' ? 'que' : 'ringgroup'}`;
  if (call.legs.some((l) => l.kind === 'agent')) return `${from}_to_ext`;
  const last = call.routes.at(-1);
  return `${from}_to_${last?.role ?? 'ext'}`;
}

/**
 * "Cause Of Call: answer/busy/no_answer". A phone that declined refused the call as a busy one does
 * (SIP 603 and 486 are both the callee's "not now"), so it is `busy`, never a ring timeout.
 */
const CAUSE: Record<Disposition, NonNullable<VoipAppzBody['cause']>> = {
  answered: 'answer', busy: 'busy', declined: 'busy', missed: 'no_answer', abandoned: 'no_answer', timeout: 'no_answer',
  failed: 'no_answer',
};
/** "Sip Status From Terminator": derived from the outcome, as the SIP final response that outcome gets. */
const SIP_STATUS: Record<Disposition, NonNullable<VoipAppzBody['sip_status']>> = {
  answered: '200', busy: '486', declined: '603', missed: '480', timeout: '480', abandoned: '487', failed: '503',
};
/** "Queue Disposition: timeout (system timeout) / abandoned (caller hung) / anser" ("anser" read as "answer"). */
const QUEUE_DISPOSITION = { answered: 'answer', abandoned: 'abandoned', timeout: 'timeout' } as const;

const pad2 = (n: number): string => String(n).padStart(2, '0');
const hms = (s: number): string => `${pad2(Math.floor(s / 3600))}:${pad2(Math.floor(s / 60) % 60)}:${pad2(s % 60)}`;
const clock = (ms: number, tz: string): string => {
  const t = localTime(ms, tz);
  return `${t.hour}:${t.minute}:${t.second}`;
};
const nameOf = (number: string, ctx: RenderContext): string => ctx.names[number] ?? number;

/** Seconds phones rang: from the first ring to the answer, or until the last phone stopped ringing. */
function ringSeconds(call: CallView, end: number): number {
  const rung = call.legs.filter((l) => l.kind !== 'origin');
  if (rung.length === 0) return 0;
  const first = Math.min(...rung.map((l) => l.ringingAt ?? l.createdAt));
  const last = call.answeredAt ?? Math.max(...rung.map((l) => l.endedAt ?? end));
  return seconds(first, Math.min(last, end));
}

/** Null without a recording, and without the endpoint's `recording_url`: no URL is made up (issue #13). */
function recording(call: CallView, uuid: string, ctx: RenderContext): string | null {
  // MixMonitor records a channel, so a call's conversations usually share one file: the first is the call's.
  const file = call.segments.flatMap((s) => s.recordings)[0];
  const template = ctx.endpoint.recordingUrl;
  return file === undefined || template === undefined ? null : recordingUrl(template, file, uuid, 1);
}

function fieldValues(ev: CallEvent, m: Moment, ctx: RenderContext): VoipAppzBody {
  const { call } = ev;
  const end = call.endedAt ?? ev.at;
  const uuid = callUuid(ctx.environment, call.id);
  const total = seconds(call.startedAt, end);
  const billing = call.answeredAt === undefined ? 0 : seconds(call.answeredAt, end);
  const outcome: Disposition | undefined = m.state === 'answered' ? 'answered' : m.ended ? call.disposition : undefined;
  const person = m.user ? ctx.directory[m.user] : undefined;
  const lastRoute = (role: string): RouteVisit | undefined => call.routes.filter((r) => r.role === role).at(-1);
  const ivr = m.ivr ?? lastRoute('ivr');
  const queue = lastRoute('queue');
  const queueOutcome = call.queueOutcome ?? (m.answeredViaQueue ? 'answered' : undefined);
  const outbound = call.direction === 'outbound';
  const destination = outbound ? call.customerNumber : (m.user ?? call.routes.at(-1)?.number ?? call.did);
  return {
    // The doc knows Incoming / Outgoing; an internal call is reported to the extension it rings, like 3CX.
    direction: outbound ? 'outgoing' : 'incoming',
    uuid,
    type: callType(call),
    created_at: new Date(call.startedAt).toISOString().replace(/Z$/, '+00:00'),
    contact_number: call.customerNumber || null,
    caller_id_number: (outbound ? call.originExtension : call.customerNumber) || null,
    duration: total,
    ring_duration: ringSeconds(call, end),
    destination: destination || null,
    start_at: clock(call.startedAt, ctx.timezone),
    answer_at: call.answeredAt === undefined ? null : clock(call.answeredAt, ctx.timezone),
    environment_name: ctx.environment,
    user_fullname: person?.name ?? null,
    user_name: person?.email ?? '',
    extension_username: m.user || null,
    cause: outcome ? CAUSE[outcome] : null,
    sip_status: outcome ? SIP_STATUS[outcome] : null,
    recording_url: m.ended ? recording(call, uuid, ctx) : null,
    duration_time: hms(total),
    billing_duration: billing,
    billing_duration_time: hms(billing),
    did_number: call.did || null,
    did_name: call.did ? nameOf(call.did, ctx) : null,
    queue_disposition: queue && queueOutcome ? QUEUE_DISPOSITION[queueOutcome] : null,
    ivr_name: ivr ? nameOf(ivr.number, ctx) : null,
    call_state: m.state,
    queue_name: queue ? nameOf(queue.number, ctx) : null,
  };
}

export function renderVoipAppz(ev: LifecycleEvent, ctx: RenderContext): WebhookRequest[] {
  const ep = ctx.endpoint;
  // "In order for the web hook to start working in a specific Environment, we need to Subscribe it."
  if (!ep.environments.includes(ctx.environment)) return [];
  if (ep.events.length > 0 && !ep.events.includes(ep.event)) return [];
  // VoipAppz events are about calls; a consultation call speaks through the call it joins.
  if (ev.type === 'message' || ev.call.consultFor !== undefined) return [];
  const m = momentOf(ev, ep.event);
  if (!m) return [];
  const body = fillTemplate(ep.body ?? DEFAULT_BODY_TEMPLATE, fieldValues(ev, m, ctx));
  const orderKey = `${ep.name}:${ev.call.id}`;
  if (ep.method === 'GET') {
    const sep = ep.url.includes('?') ? '&' : '?';
    return [{ endpoint: ep.name, method: 'GET', url: `${ep.url}${sep}${queryString(body)}`, headers: {}, body: '', orderKey }];
  }
  return [{ endpoint: ep.name, method: ep.method, url: ep.url, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), orderKey }];
}
