import type { LifecycleEvent } from '../core/lifecycle.js';
import type { CallView } from '../core/model.js';
import type { VxtEndpoint } from '../config/types.js';
import type { RenderContext as AnyRenderContext } from './context.js';
import { toE164 } from './e164.js';
import type { WebhookRequest } from './request.js';

type RenderContext = AnyRenderContext<VxtEndpoint>;

/**
 * VXT webhook payloads, version 3 (test/fixtures/vendor-docs/vxt-webhook-payloads.txt): one `callLog`
 * when a call ends and one `voicemail` when a caller leaves a message. The bearer token is added by
 * src/deliver, which never follows redirects ("our agent will not follow redirects").
 * Choices where the doc is silent are listed in docs/webhooks/vxt.md.
 */

interface WebhookUser {
  readonly type: 'user';
  readonly uid: string;
  readonly email: string;
}

type WebhookOtherParty = { readonly type: 'phoneNumber'; readonly phoneNumberE164: string } | { readonly type: 'unknown' };

type Result =
  | { readonly type: 'missed'; readonly startTimestamp: number }
  | { readonly type: 'answered'; readonly startTimestamp: number; readonly answerTimestamp: number; readonly hangupTimestamp: number };

/** VXT's WebhookPayload, version 3: a `callLog` when a call ends, a `voicemail` when a message is left; keys in the doc's order. */
export type VxtPayload =
  | {
      readonly event: 'callLog';
      readonly callLog: {
        readonly version: 3; readonly id: string; readonly url: string; readonly result: Result;
        readonly direction: 'inbound' | 'outbound'; readonly user: WebhookUser | null;
        readonly phoneNumberE164: string | null; readonly otherParties: WebhookOtherParty[];
      };
    }
  | {
      readonly event: 'voicemail';
      readonly voicemail: {
        readonly version: 3; readonly id: string; readonly url: string; readonly timestamp: number;
        readonly duration: number; readonly transcription: string | null; readonly user: WebhookUser | null;
        readonly phoneNumberE164: string | null; readonly callerId: WebhookOtherParty;
      };
    };

/** A directory person with both a VXT uid and an email; anyone else is not a VXT user we can name. */
function userOf(ctx: RenderContext, extension: string): WebhookUser | null {
  const p = extension === '' ? undefined : ctx.directory[extension];
  return p?.uid && p.email ? { type: 'user', uid: p.uid, email: p.email } : null;
}

/** The caller or callee outside: a number, or `unknown` for a private, anonymous or unusable caller ID. */
function party(ctx: RenderContext, number: string): WebhookOtherParty {
  const e164 = toE164(number, ctx.endpoint.defaultCountry);
  return e164 === undefined ? { type: 'unknown' } : { type: 'phoneNumber', phoneNumberE164: e164 };
}

/** The company's number on the call: the DID it came in on, or the configured number it went out from. */
function ourNumber(ctx: RenderContext, call: CallView): string | null {
  const number = call.direction === 'inbound' ? call.did : ctx.endpoint.phoneNumber;
  return toE164(number, ctx.endpoint.defaultCountry) ?? null;
}

/** The ids are the PBX's call id (Asterisk Linkedid) and the payload kind: the same on every replay and retry. */
const messageId = (call: CallView, kind: 'callLog' | 'voicemail'): string => `${call.id}-${kind}`;
const urlOf = (ctx: RenderContext, id: string): string => ctx.endpoint.webUrl.replaceAll('{id}', encodeURIComponent(id));

/** "The VXT user that placed the call, answered the call, or was targeted by a call flow voicemail node". */
function callUser(ctx: RenderContext, call: CallView): WebhookUser | null {
  if (call.direction === 'outbound') return userOf(ctx, call.originExtension);
  const answered = call.segments[0]?.user;
  if (answered !== undefined) return userOf(ctx, answered);
  return call.voicemail ? userOf(ctx, call.voicemail.mailbox) : null;
}

function callLog(call: CallView, at: number, ctx: RenderContext): VxtPayload | undefined {
  if (call.direction === 'internal') return undefined;
  const id = messageId(call, 'callLog');
  const startTimestamp = call.startedAt;
  const result: Result =
    call.answeredAt === undefined
      ? { type: 'missed', startTimestamp }
      : { type: 'answered', startTimestamp, answerTimestamp: call.answeredAt, hangupTimestamp: call.endedAt ?? at };
  return {
    event: 'callLog',
    callLog: {
      version: 3, id, url: urlOf(ctx, id), result, direction: call.direction, user: callUser(ctx, call),
      phoneNumberE164: ourNumber(ctx, call), otherParties: [party(ctx, call.customerNumber)],
    },
  };
}

/**
 * "The duration of the voicemail audio, in milliseconds": the length the PBX adapter found
 * (FreeSWITCH: the recording's own; Asterisk: from the beep's end to the recording's end, where
 * CEL shows the prompts). Without it, the span from reaching the mailbox to the message's save,
 * greeting and beep included: an upper bound (issue #12 item 6).
 */
function voicemail(call: CallView, mailbox: string, at: number, ctx: RenderContext): VxtPayload | undefined {
  if (call.direction === 'internal') return undefined;
  const reached = call.routes.filter((r) => r.role === 'voicemail' && r.number === mailbox).at(-1)?.at ?? at;
  const duration = call.voicemail?.durationMs ?? Math.max(0, at - reached);
  const id = messageId(call, 'voicemail');
  return {
    event: 'voicemail',
    voicemail: {
      version: 3, id, url: urlOf(ctx, id), timestamp: reached, duration,
      transcription: null, user: userOf(ctx, mailbox), phoneNumberE164: ourNumber(ctx, call),
      callerId: party(ctx, call.customerNumber),
    },
  };
}

function toVxt(ev: LifecycleEvent, ctx: RenderContext): VxtPayload | undefined {
  // Texts are not sent: the doc's "other" party type is kept for SMS webhooks that "may be added in the future".
  if (ev.type === 'message') return undefined;
  // "webhooks do not deliver internal user-to-user" messages: internal calls stay silent (checked in each payload).
  if (ev.type === 'call.ended') return callLog(ev.call, ev.at, ctx);
  if (ev.type === 'voicemail.left') return voicemail(ev.call, ev.mailbox, ev.at, ctx);
  return undefined;
}

export function renderVxt(ev: LifecycleEvent, ctx: RenderContext): WebhookRequest[] {
  const payload = toVxt(ev, ctx);
  if (!payload || ev.type === 'message') return [];
  const ep = ctx.endpoint;
  if (ep.events.length > 0 && !ep.events.includes(payload.event)) return [];
  return [{
    endpoint: ep.name, method: ep.method, url: ep.url, headers: { 'content-type': 'application/json' },
    body: JSON.stringify(payload), orderKey: `${ep.name}:${ev.call.id}`,
  }];
}
