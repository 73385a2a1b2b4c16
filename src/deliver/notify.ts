/**
 * `delivery.notify_url` (issue #16 item 6): a webhook to the admin's own chat or incident tool when
 * an endpoint pauses or resumes and when webhooks go dead. Pure: an endpoint event in, the request
 * out; the outbox delivers it like any other, as the built-in endpoint NOTIFY_ENDPOINT, whose own
 * troubles are never notified (a failing chat tool must not notify itself in a loop).
 */
import type { WebhookRequest } from '../emit/request.js';

/** Not a valid webhooks.ini section name (`.` is refused there), so no CRM endpoint can take it. */
export const NOTIFY_ENDPOINT = 'pbxhook.notify';

/** What the outbox worker tells of an endpoint's delivery (the hook it calls: WorkerOptions.onEndpointEvent). */
export type EndpointEvent =
  | { readonly type: 'endpoint.paused'; readonly endpoint: string; readonly at: number; readonly failingForMs: number; readonly lastError?: string }
  | { readonly type: 'endpoint.resumed'; readonly endpoint: string; readonly at: number; readonly pausedForMs: number }
  | {
      readonly type: 'webhook.dead';
      readonly endpoint: string;
      readonly at: number;
      /** Webhooks that went dead at once: 1 after an attempt, more when an outbox limit dead-letters several. */
      readonly count: number;
      readonly reason: string;
      readonly webhookId?: string;
      readonly call?: string;
    };

/** True for events about a CRM endpoint; the notify endpoint's own are dropped here. */
export function shouldNotify(ev: EndpointEvent): boolean {
  return ev.endpoint !== NOTIFY_ENDPOINT;
}

/**
 * The JSON body: `text` is a sentence for a person (Slack, Mattermost and Rocket.Chat incoming
 * webhooks show it as is), the other fields are for tools that route alerts.
 */
export function notifyRequest(ev: EndpointEvent, url: string): WebhookRequest {
  const body = { text: `pbxhook: ${sentence(ev)}`, ...ev, at: new Date(ev.at).toISOString() };
  return {
    endpoint: NOTIFY_ENDPOINT,
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    // One lane: the admin reads pauses, resumes and dead letters in the order they happened.
    orderKey: `${NOTIFY_ENDPOINT}:events`,
  };
}

function sentence(ev: EndpointEvent): string {
  switch (ev.type) {
    case 'endpoint.paused':
      return `webhooks to ${ev.endpoint} are paused after ${seconds(ev.failingForMs)} of failures${ev.lastError ? ` (last: ${ev.lastError})` : ''}; probing it until it answers`;
    case 'endpoint.resumed':
      return `webhooks to ${ev.endpoint} resumed after ${seconds(ev.pausedForMs)} paused`;
    case 'webhook.dead':
      return `${ev.count === 1 ? 'a webhook' : `${ev.count} webhooks`} to ${ev.endpoint} went dead (${ev.reason}); pbxhook outbox retry sends ${ev.count === 1 ? 'it' : 'them'} again`;
  }
}

const seconds = (ms: number) => `${Math.round(ms / 1000)} s`;
