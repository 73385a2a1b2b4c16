/**
 * Routing by number (issue #16 item 5): an endpoint's `only_*` keys limit it to some calls, so one
 * daemon serves several teams or tenants, each with its own CRM. Pure: requests in, requests out.
 *
 * A call's DID is known from its first event, but its queue, ring group, extension or final
 * direction may be known only later. Until the call matches, the webhooks it renders for the
 * endpoint are held (at most HELD_PER_CALL; more are dropped and counted); the event that makes it
 * match releases them in order, ahead of its own. A call that ends without matching drops them.
 * The endpoint thus receives exactly the webhooks an unfiltered endpoint of the same schema would
 * for the calls it takes, in the same order; only later.
 */
import type { EndpointRouting } from '../config/types.js';
import type { LifecycleEvent, MessageEvent } from '../core/lifecycle.js';
import type { CallView } from '../core/model.js';
import type { WebhookRequest } from './request.js';

/** A call's earlier webhooks kept per endpoint while its match is unknown; a looping call must not grow memory. */
export const HELD_PER_CALL = 500;

export interface RoutingStats {
  /** Webhooks held beyond HELD_PER_CALL and so never sent (the metric an alert wants). */
  heldDropped: number;
  /** Webhooks of calls that ended without matching: the filter doing its job. */
  unmatched: number;
}

/**
 * True when the call matches every list that is set. Queues and ring groups are the routes the call
 * passed; an extension is one the call rang or one that placed it. A direction counts once the
 * tracker says it is final, or the call has ended.
 */
export function callMatches(r: EndpointRouting, call: CallView): boolean {
  if (r.dids.length > 0 && !r.dids.includes(call.did)) return false;
  if (r.directions.length > 0 && !((call.directionKnown || call.endedAt !== undefined) && r.directions.includes(call.direction))) return false;
  if (r.queues.length > 0 && !call.routes.some((v) => v.role === 'queue' && r.queues.includes(v.number))) return false;
  if (r.ringGroups.length > 0 && !call.routes.some((v) => v.role === 'ringgroup' && r.ringGroups.includes(v.number))) return false;
  if (r.extensions.length > 0) {
    const rang = call.legs.some((l) => l.party.kind === 'extension' && r.extensions.includes(l.party.id));
    if (!rang && !r.extensions.includes(call.originExtension)) return false;
  }
  return true;
}

/**
 * A text message belongs to no call: it matches `only_dids` by the PBX's number (`to` inbound,
 * `from` outbound) and `only_directions`; an endpoint limited to queues, ring groups or extensions
 * takes none.
 */
export function messageMatches(r: EndpointRouting, m: MessageEvent): boolean {
  if (r.queues.length > 0 || r.ringGroups.length > 0 || r.extensions.length > 0) return false;
  if (r.dids.length > 0 && !r.dids.includes(m.direction === 'inbound' ? m.to : m.from)) return false;
  return r.directions.length === 0 || r.directions.includes(m.direction);
}

/** One endpoint's routing: which calls matched, and what waits for the others. */
export class EndpointRouter {
  readonly stats: RoutingStats = { heldDropped: 0, unmatched: 0 };
  /** Calls seen matching and not ended yet: their webhooks pass at once. */
  private readonly matched = new Set<string>();
  /** Calls not matching yet → their webhooks so far, in order. */
  private readonly held = new Map<string, WebhookRequest[]>();

  constructor(readonly routing: EndpointRouting) {}

  /** Webhooks held now, across calls (status, tests). */
  get heldNow(): number {
    let n = 0;
    for (const h of this.held.values()) n += h.length;
    return n;
  }

  /**
   * The webhooks to send for `ev`, given those the endpoint's renderer made of it. Call it for
   * every lifecycle event, even one that rendered nothing: that event may be the one that matches.
   */
  route(ev: LifecycleEvent, requests: WebhookRequest[]): WebhookRequest[] {
    if (ev.type === 'message') {
      if (messageMatches(this.routing, ev)) return requests;
      this.stats.unmatched += requests.length;
      return [];
    }
    const id = ev.call.id;
    const ended = ev.type === 'call.ended';
    if (this.matched.has(id)) {
      if (ended) this.matched.delete(id);
      return requests;
    }
    const held = this.held.get(id);
    if (callMatches(this.routing, ev.call)) {
      this.held.delete(id);
      // After its end a call is matched afresh from its final view (a late recording.ready).
      if (!ended && ev.call.endedAt === undefined) this.matched.add(id);
      return held === undefined ? requests : [...held, ...requests];
    }
    if (ended || ev.call.endedAt !== undefined) {
      this.held.delete(id);
      this.stats.unmatched += (held?.length ?? 0) + requests.length;
      return [];
    }
    if (requests.length === 0) return [];
    const list = held ?? [];
    if (held === undefined) this.held.set(id, list);
    for (const r of requests) {
      if (list.length < HELD_PER_CALL) list.push(r);
      else this.stats.heldDropped++;
    }
    return [];
  }
}
