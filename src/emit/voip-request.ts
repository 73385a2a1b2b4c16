import type { VoipRequestEndpoint } from '../config/types.js';
import type { CallEvent, LifecycleEvent } from '../core/lifecycle.js';
import { isRering, type CallView } from '../core/model.js';
import type { RenderContext as AnyRenderContext } from './context.js';
import type { WebhookRequest } from './request.js';

type RenderContext = AnyRenderContext<VoipRequestEndpoint>;

/**
 * The CRM-side VoipWebhookRequest of the ELMA365 / BRIX365 telephony SDK
 * (test/fixtures/vendor-docs/crm-voip-webhook-request.txt): the body the CRM's VoipParseWebhookRequest
 * reads. Which enum values are confirmed and which are assumed is in docs/webhooks/voip-request.md.
 */

/** The three moments pbxhook notifies; also the names the endpoint's `events` key filters on. */
type Notification = 'ringing' | 'answered' | 'ended';

/** VoipCallDirection's values, confirmed by the SDK's enum page: In = "in", Out = "out", Internal = "internal". */
const DIRECTION = { inbound: 'in', outbound: 'out', internal: 'internal' } as const;

/**
 * The VoipWebhookRequest pbxhook sends: the JSON body of a POST, or the same properties in the query
 * string of a GET. `event` and `disposition` are the endpoint's configured wire values
 * (`event_*`, `disposition_*`); srcPhoneExt and dstPhoneExt are never sent.
 */
export interface VoipWebhookRequest {
  readonly callId: string;
  readonly event: string;
  readonly direction: (typeof DIRECTION)[keyof typeof DIRECTION];
  readonly srcPhone: string;
  readonly dstPhone: string;
  readonly disposition: string;
}

/** The operator a call ended with: who talked last, else the last phone rung, else where it was routed. */
function lastOperator(call: CallView): string {
  const seg = call.segments.at(-1);
  if (seg) return seg.user;
  const rung = call.legs.filter((l) => l.kind === 'agent' && l.party.kind === 'extension').at(-1);
  return rung?.party.id ?? call.routes.at(-1)?.number ?? call.did;
}

/** Which notification an event is, and the operator's extension on our side of the call. */
function notificationOf(ev: CallEvent): { kind: Notification; operator: string } | undefined {
  const { call } = ev;
  switch (ev.type) {
    case 'leg.ringing': {
      // Outbound: the client's phone rings, and the operator who dialled gets the popup.
      if (ev.leg.kind === 'customer') return { kind: 'ringing', operator: call.originExtension };
      if (ev.leg.kind === 'origin' || ev.leg.party.kind !== 'extension' || isRering(call, ev.leg)) return undefined;
      return { kind: 'ringing', operator: ev.leg.party.id };
    }
    case 'leg.answered':
      return { kind: 'answered', operator: ev.segment.user };
    case 'call.ended':
      return { kind: 'ended', operator: call.direction === 'outbound' ? call.originExtension : lastOperator(call) };
    default:
      return undefined;
  }
}

/**
 * srcPhone / dstPhone exactly as the doc's field notes:
 * - srcPhone: "incoming call — the external number of the client calling the operator; outgoing or
 *   internal call — the internal number of the operator who initiated the call";
 * - dstPhone: "incoming or internal call — internal number of the operator receiving the call;
 *   outgoing call — external number of the client being called by the operator".
 * srcPhoneExt / dstPhoneExt are the extension behind the client's external number, which the PSTN
 * does not carry ("fill in this field only if the upstream PBX provides this information"): left out.
 */
function phones(call: CallView, operator: string): { srcPhone: string; dstPhone: string } {
  switch (call.direction) {
    case 'inbound':
      return { srcPhone: call.customerNumber, dstPhone: operator };
    case 'outbound':
      return { srcPhone: operator, dstPhone: call.customerNumber };
    case 'internal':
      return { srcPhone: call.originExtension, dstPhone: operator };
  }
}

function request(call: CallView, n: { kind: Notification; operator: string }, ep: VoipRequestEndpoint): VoipWebhookRequest {
  const disposition = n.kind === 'ringing' ? 'unknown' : n.kind === 'answered' ? 'answered' : (call.disposition ?? 'unknown');
  return {
    callId: call.id,
    event: ep.eventValues[n.kind],
    direction: DIRECTION[call.direction],
    ...phones(call, n.operator),
    disposition: ep.dispositionValues[disposition],
  };
}

export function renderVoipRequest(ev: LifecycleEvent, ctx: RenderContext): WebhookRequest[] {
  // A text message is not a call; a consultation call speaks through the call it is transferred into.
  if (ev.type === 'message' || ev.call.consultFor !== undefined) return [];
  const n = notificationOf(ev);
  const ep = ctx.endpoint;
  if (!n || (ep.events.length > 0 && !ep.events.includes(n.kind))) return [];
  const body = request(ev.call, n, ep);
  const orderKey = `${ep.name}:${ev.call.id}`;
  if (ep.method === 'GET') {
    const sep = ep.url.includes('?') ? '&' : '?';
    const query = new URLSearchParams(Object.entries(body)).toString();
    return [{ endpoint: ep.name, method: 'GET', url: `${ep.url}${sep}${query}`, headers: {}, body: '', orderKey }];
  }
  return [{ endpoint: ep.name, method: ep.method, url: ep.url, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), orderKey }];
}
