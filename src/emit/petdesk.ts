import type { LifecycleEvent, MessageEvent } from '../core/lifecycle.js';
import type { CallView, Segment } from '../core/model.js';
import type { PetDeskEndpoint } from '../config/types.js';
import type { RenderContext as AnyRenderContext } from './context.js';
import type { WebhookRequest } from './request.js';

type RenderContext = AnyRenderContext<PetDeskEndpoint>;

/**
 * PetDesk Phones webhooks (test/fixtures/vendor-docs/petdesk-phones-webhooks.txt). The doc sets webhooks
 * up per phone number, extension, ring group and queue; a `[section]` is one of those set-ups
 * (`target`) for the `numbers` listed (none = all). Keys, their order and their spelling are the
 * doc's templates; choices where the doc is silent are listed in docs/webhooks/petdesk.md.
 */

/** The account ids every call event carries after `eventType` (and `eventTarget`). */
interface Account { containerId: string; tenantId: string }
/** An extension and its directory name (empty when the directory has none). */
interface Ext { extNumber: string; extName: string }

/** Phone number set-up: an inbound call on the DID starts. */
interface InboundCall {
  eventType: 'InboundCall'; eventTarget: 'phoneNumber'; containerId: string; tenantId: string;
  didNumber: string; didDescription: string; didGroup: string; cidPrefix: string; callUuid: string; callerIdNum: string; callerIdName: string;
}
/** Phone number set-up: the inbound call ends; extNumber is who talked last, empty if nobody answered. */
interface HangupCall {
  eventType: 'HangupCall'; containerId: string; tenantId: string;
  extNumber: string; extName: string; callUuid: string; callerIdName: string; callerIdNum: string;
}
/** Extension set-up: its phone rings. */
interface ExtensionRing {
  eventType: 'ringAttempt'; eventTarget: 'extension'; containerId: string; tenantId: string;
  extNumber: string; extName: string; callUuid: string; callerIdNum: string;
}
/** Extension set-up: it answers. */
interface ExtensionAnswered {
  eventType: 'ExtensionAnswered'; containerId: string; tenantId: string;
  callUuid: string; callerIdNum: string; callerIdName: string; extensionNumber: string; extensionName: string;
}
/** Extension set-up: its conversation ends (`inboundCallCompleted`), or a caller leaves it a voicemail. */
interface ExtensionDone {
  eventType: 'inboundCallCompleted' | 'voicemailHangup'; containerId: string; tenantId: string;
  extNumber: string; extName: string; callUuid: string; callerIdName: string; callerIdNum: string;
}
/** Extension set-up: it dials out. */
interface OutboundCall {
  eventType: 'outboundCall'; containerId: string; tenantId: string; extNumber: string; extName: string; callUuid: string; numberDialed: string;
}
/** Ring group set-up: a call enters the ring group. */
interface RingGroupRing {
  eventType: 'ringAttempt'; eventTarget: 'ringGroup'; containerId: string; tenantId: string; rgNumber: string; callUuid: string; callerIdNum: string;
}
/** Queue set-up: a call enters the queue. */
interface QueueEntered {
  eventType: 'queueEntered'; eventTarget: 'queue'; containerId: string; tenantId: string; queueNumber: string; callUuid: string; callerIdNum: string;
}

/** A call event's decoded form (`application/x-www-form-urlencoded`, or the query string of a GET): every value a string. */
export type PetDeskCallForm =
  | InboundCall | HangupCall | ExtensionRing | ExtensionAnswered | ExtensionDone | OutboundCall | RingGroupRing | QueueEntered;

/** Phone number set-up: a text to or from the number, as JSON (the doc's casing: `containerID`, `tenantID`). */
export interface PetDeskMessageBody {
  eventType: 'inboundMessage' | 'outboundMessage';
  toNumber: string;
  fromNumber: string;
  containerID: string;
  tenantID: string;
  /** `<customer's number>-<outside number>`, digits and a leading + only. */
  conversationID: string;
  messageText: string;
}

interface Rendered {
  readonly eventType: string;
  /** The DID, extension, ring group or queue the event belongs to (the `numbers` filter). */
  readonly number: string;
  readonly fields: PetDeskCallForm | PetDeskMessageBody;
  /** Text messages are JSON; every call event is urlencoded. */
  readonly json: boolean;
  readonly orderKey: string;
}

function account(ctx: RenderContext): Account {
  return { containerId: ctx.endpoint.containerId, tenantId: ctx.endpoint.tenantId };
}

/** An extension's name: the directory's person, else the configured display name. */
function extName(ctx: RenderContext, ext: string): string {
  if (ext === '') return '';
  return ctx.directory[ext]?.name ?? ctx.names[ext] ?? '';
}

function callEvent(ctx: RenderContext, call: CallView, number: string, fields: PetDeskCallForm): Rendered {
  return { eventType: fields.eventType, number, fields, json: false, orderKey: `${ctx.endpoint.name}:${call.id}` };
}

/** The doc's {CALL_UUID}: the PBX's own id of the call (Asterisk Linkedid), stable across restarts. */
const uuid = (call: CallView): string => call.id;

/**
 * A conversation is the pair of numbers, the same id whichever way a text goes:
 * `<customer's number>-<outside number>`, digits (and a leading +) only.
 */
export function conversationId(ours: string, theirs: string): string {
  const clean = (n: string): string => n.replace(/[^\d+]/g, '');
  return `${clean(ours)}-${clean(theirs)}`;
}

function message(ev: MessageEvent, ctx: RenderContext): Rendered {
  const inbound = ev.direction === 'inbound';
  // "The FROM number will be the outsider, and the TO number … belongs to the PetDesk Phones customer" (and the reverse).
  const ours = inbound ? ev.to : ev.from;
  const theirs = inbound ? ev.from : ev.to;
  const ep = ctx.endpoint;
  const eventType = inbound ? ('inboundMessage' as const) : ('outboundMessage' as const);
  const conversation = conversationId(ours, theirs);
  return {
    eventType,
    number: ours,
    json: true,
    orderKey: `${ep.name}:${conversation}`,
    fields: {
      eventType, toNumber: ev.to, fromNumber: ev.from, containerID: ep.containerId,
      tenantID: ep.tenantId, conversationID: conversation, messageText: ev.body,
    },
  };
}

/** Phone number (DID) set-up: the inbound call's start and end, and texts to or from the number. */
function phoneNumberEvent(ev: LifecycleEvent, ctx: RenderContext): Rendered | undefined {
  if (ev.type === 'message') return message(ev, ctx);
  const { call } = ev;
  if (call.direction !== 'inbound') return undefined; // "Outbound calls are not configured in this way"
  const caller = { num: call.customerNumber, name: call.customerName };
  if (ev.type === 'call.started') {
    const ep = ctx.endpoint;
    return callEvent(ctx, call, call.did, {
      eventType: 'InboundCall', eventTarget: 'phoneNumber', ...account(ctx), didNumber: call.did, didDescription: ctx.names[call.did] ?? '',
      didGroup: ep.didGroup, cidPrefix: ep.cidPrefix, callUuid: uuid(call), callerIdNum: caller.num,
      callerIdName: caller.name,
    });
  }
  if (ev.type === 'call.ended') {
    // "If the call had been answered by a real live person (extension)": the last one who talked to the caller.
    const ext = call.segments.at(-1)?.user ?? '';
    return callEvent(ctx, call, call.did, {
      eventType: 'HangupCall', ...account(ctx), extNumber: ext, extName: extName(ctx, ext), callUuid: uuid(call),
      callerIdName: caller.name, callerIdNum: caller.num,
    });
  }
  return undefined;
}

/**
 * Whether an extension answered this conversation. On an outbound call the first conversation is
 * the called number answering the extension that dialled; only a transfer hands it to another phone.
 */
function answeredByExtension(call: CallView, seg: Readonly<Segment>): boolean {
  return call.direction !== 'outbound' || seg.startedBy !== 'none';
}

/** Extension set-up: its phone ringing, answering, hanging up, taking a voicemail, dialling out. */
function extensionEvent(ev: LifecycleEvent, ctx: RenderContext): Rendered | undefined {
  if (ev.type === 'message') return undefined;
  const { call } = ev;
  const callerNum = call.customerNumber;
  const callerName = call.customerName;
  const ext = (e: string): Ext => ({ extNumber: e, extName: extName(ctx, e) });
  switch (ev.type) {
    case 'leg.ringing': {
      // The phone a click-to-call rings first is the caller, not a call to the extension.
      if (ev.leg.party.kind !== 'extension' || ev.leg.kind === 'origin') return undefined;
      const e = ev.leg.party.id;
      return callEvent(ctx, call, e, {
        eventType: 'ringAttempt', eventTarget: 'extension', ...account(ctx), ...ext(e), callUuid: uuid(call), callerIdNum: callerNum,
      });
    }
    case 'leg.answered': {
      if (!answeredByExtension(call, ev.segment)) return undefined;
      const e = ev.segment.user;
      return callEvent(ctx, call, e, {
        eventType: 'ExtensionAnswered', ...account(ctx), callUuid: uuid(call), callerIdNum: callerNum, callerIdName: callerName,
        extensionNumber: e, extensionName: extName(ctx, e),
      });
    }
    case 'segment.ended': {
      if (!answeredByExtension(call, ev.segment)) return undefined;
      const e = ev.segment.user;
      return callEvent(ctx, call, e, {
        eventType: 'inboundCallCompleted', ...account(ctx), ...ext(e), callUuid: uuid(call), callerIdName: callerName, callerIdNum: callerNum,
      });
    }
    case 'voicemail.left':
      return callEvent(ctx, call, ev.mailbox, {
        eventType: 'voicemailHangup', ...account(ctx), ...ext(ev.mailbox), callUuid: uuid(call), callerIdName: callerName, callerIdNum: callerNum,
      });
    case 'call.started':
      if (call.direction !== 'outbound') return undefined;
      return callEvent(ctx, call, call.originExtension, {
        eventType: 'outboundCall', ...account(ctx), ...ext(call.originExtension), callUuid: uuid(call), numberDialed: callerNum,
      });
    default:
      return undefined;
  }
}

/** Ring group and queue set-ups: the caller entering one. */
function routeEvent(ev: LifecycleEvent, ctx: RenderContext): Rendered | undefined {
  if (ev.type !== 'route.entered') return undefined;
  const { call, route } = ev;
  const tail = { callUuid: uuid(call), callerIdNum: call.customerNumber };
  if (ctx.endpoint.target === 'ringGroup' && route.role === 'ringgroup') {
    return callEvent(ctx, call, route.number, { eventType: 'ringAttempt', eventTarget: 'ringGroup', ...account(ctx), rgNumber: route.number, ...tail });
  }
  if (ctx.endpoint.target === 'queue' && route.role === 'queue') {
    return callEvent(ctx, call, route.number, { eventType: 'queueEntered', eventTarget: 'queue', ...account(ctx), queueNumber: route.number, ...tail });
  }
  return undefined;
}

function toPetDesk(ev: LifecycleEvent, ctx: RenderContext): Rendered | undefined {
  switch (ctx.endpoint.target) {
    case 'phoneNumber':
      return phoneNumberEvent(ev, ctx);
    case 'extension':
      return extensionEvent(ev, ctx);
    case 'ringGroup':
    case 'queue':
      return routeEvent(ev, ctx);
  }
}

function formEncode(fields: PetDeskCallForm | PetDeskMessageBody): string {
  return new URLSearchParams(Object.entries(fields)).toString();
}

export function renderPetDesk(ev: LifecycleEvent, ctx: RenderContext): WebhookRequest[] {
  const r = toPetDesk(ev, ctx);
  if (!r) return [];
  const ep = ctx.endpoint;
  if (ep.numbers.length > 0 && !ep.numbers.includes(r.number)) return [];
  if (ep.events.length > 0 && !ep.events.includes(r.eventType)) return [];
  const base = { endpoint: ep.name, method: ep.method, orderKey: r.orderKey };
  if (ep.method === 'GET') {
    const sep = ep.url.includes('?') ? '&' : '?';
    return [{ ...base, url: `${ep.url}${sep}${formEncode(r.fields)}`, headers: {}, body: '' }];
  }
  if (r.json) {
    // JSON.stringify is the doc's {ESCAPED_MESSAGE_TEXT}: quotes, backslashes and control characters escaped.
    return [{ ...base, url: ep.url, headers: { 'content-type': 'application/json' }, body: JSON.stringify(r.fields) }];
  }
  return [{ ...base, url: ep.url, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: formEncode(r.fields) }];
}
