import type { CallView, Leg, Segment } from './model.js';
import type { Route } from './roles.js';

/**
 * Call lifecycle events: the tracker's output and every renderer's input. Each carries the whole
 * call as it stood at that moment, so a renderer never needs to remember anything.
 */
interface Base {
  readonly at: number;
  readonly call: CallView;
}

export type CallEvent =
  | (Base & { readonly type: 'call.started' })
  | (Base & { readonly type: 'route.entered'; readonly route: Route })
  | (Base & { readonly type: 'leg.dialed'; readonly leg: Readonly<Leg> })
  | (Base & { readonly type: 'leg.ringing'; readonly leg: Readonly<Leg> })
  | (Base & { readonly type: 'leg.answered'; readonly leg: Readonly<Leg>; readonly segment: Readonly<Segment> })
  | (Base & { readonly type: 'leg.ended'; readonly leg: Readonly<Leg> })
  | (Base & { readonly type: 'segment.ended'; readonly segment: Readonly<Segment> })
  | (Base & { readonly type: 'voicemail.left'; readonly mailbox: string })
  | (Base & { readonly type: 'call.ended' })
  | (Base & { readonly type: 'recording.ready'; readonly segment: Readonly<Segment> });

export type CallEventType = CallEvent['type'];

/** A text message (SMS/SIP MESSAGE) seen by the PBX: not part of any call. */
export interface MessageEvent {
  readonly type: 'message';
  readonly at: number;
  readonly from: string;
  readonly to: string;
  readonly body: string;
  readonly direction: 'inbound' | 'outbound';
}

/** Everything the tracker emits and renderers consume. */
export type LifecycleEvent = CallEvent | MessageEvent;
