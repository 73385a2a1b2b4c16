import type { DialStatus } from './events.js';
import type { Tracker } from './tracker.js';
import { appended, NO_RECORDINGS, viewOf, type Call, type Disposition, type EndReason, type Leg, type Segment } from './model.js';

/** The state changes that emit lifecycle events, shared by several handlers. */

export function finishLeg(t: Tracker, call: Call, leg: Leg, at: number, disposition: Disposition): void {
  leg.endedAt ??= at;
  leg.disposition = disposition;
  t.emitLeg('leg.ended', call, leg, at);
}

/**
 * A leg was answered (or an attended transfer completed): a new segment begins. With an attended
 * transfer the transferer's segment ends right after, in the order 3CX reports them.
 */
export function startSegment(
  t: Tracker,
  call: Call,
  leg: Leg,
  user: string,
  channel: string,
  at: number,
  replaces?: Segment,
): void {
  const segment: Segment = {
    k: call.segments.length + 1,
    user,
    channel,
    answeredAt: at,
    startedBy: call.pendingTransfer,
    endedAt: undefined,
    endedBy: undefined,
    recordings: NO_RECORDINGS,
  };
  call.pendingTransfer = 'none';
  if (leg.kind === 'consult') leg.kind = 'agent';
  call.segments = appended(call.segments, segment);
  t.emit({ type: 'leg.answered', at, call: viewOf(call), leg: { ...leg }, segment: { ...segment } });
  if (replaces && replaces.endedAt === undefined) endSegment(t, call, replaces, at, 'attended-transfer');
}

export function endSegment(t: Tracker, call: Call, seg: Segment, at: number, endedBy: NonNullable<Segment['endedBy']>): void {
  seg.endedAt = at;
  seg.endedBy = endedBy;
  t.emit({ type: 'segment.ended', at, call: viewOf(call), segment: { ...seg, recordings: [...seg.recordings] } });
}

/** Q.850 causes that say what the phone did, whatever the dial result was called. */
const CAUSE_USER_BUSY = 17;
const CAUSE_CALL_REJECTED = 21;
const CAUSE_ANSWERED_ELSEWHERE = 26;

/**
 * A ring attempt that ended unanswered, from the dial result and the phone's own cause. A phone's
 * 603 Decline reaches Dial as NOANSWER (or BUSY): the cause is the evidence that it was declined.
 */
export function unansweredAs(status: DialStatus | undefined, cause: number | undefined): Disposition {
  if (cause === CAUSE_CALL_REJECTED) return 'declined';
  if (status === 'noanswer') return 'timeout';
  if (status === 'busy' || cause === CAUSE_USER_BUSY) return 'busy';
  return 'failed';
}

/** Slack between the caller's hangup and the cancel it causes reaching a phone through Local channels. */
const HANGUP_SLACK_MS = 1000;

/**
 * What a cancelled ring attempt was: lost to another leg that answered, cut by the queue's timeout,
 * or given up by whoever dialled it. app_queue hangs up every unanswered member with cause 26
 * ("answered elsewhere") whatever happened, so the cause counts only when nothing else explains it.
 */
function cancelledAs(t: Tracker, call: Call, leg: Leg): Disposition {
  const ended = leg.endedAt ?? call.endedAt ?? leg.createdAt;
  const answeredElsewhere = call.legs.some(
    (l) => l !== leg && l.answeredAt !== undefined && l.answeredAt >= leg.createdAt && l.answeredAt <= ended,
  );
  if (answeredElsewhere) return 'missed';
  if (call.queueOutcome === 'timeout') return 'timeout';
  const ch = t.channels.get(leg.channel);
  const dialler = t.diallerOf(call, ch?.dialedBy === undefined ? undefined : t.channels.get(ch.dialedBy));
  const gaveUp = [dialler?.id, call.customer].some((id) => {
    const hungUpAt = id === undefined ? undefined : t.channels.get(id)?.hungUpAt;
    return hungUpAt !== undefined && hungUpAt <= ended + HANGUP_SLACK_MS;
  });
  if (gaveUp || call.queueOutcome === 'abandoned') return 'abandoned';
  if (leg.cause === CAUSE_ANSWERED_ELSEWHERE) return 'missed';
  if (call.segments.length === 0) return 'abandoned';
  return 'missed';
}

function callDisposition(call: Call): Disposition {
  if (call.segments.length > 0) return 'answered';
  if (call.queueOutcome === 'timeout') return 'timeout';
  if (call.queueOutcome === 'abandoned') return 'abandoned';
  if (call.voicemail) return 'missed';
  const rung = call.legs.filter((l) => l.kind === 'agent' || l.kind === 'customer');
  const last = rung[rung.length - 1];
  if (!last) return call.direction === 'inbound' ? 'abandoned' : 'failed';
  if (last.disposition === 'timeout') return 'missed';
  return last.disposition ?? 'failed';
}

/**
 * Each conversation's recordings: its own (a consultation recorded on its own channels, kept at the
 * transfer) or else what the call's channels recorded: MixMonitor on the trunk covers every segment.
 */
function attachRecordings(t: Tracker, call: Call): void {
  for (const seg of call.segments) {
    if (seg.recordings.length > 0) continue;
    const channels = new Set([seg.channel, call.customer, call.origin]);
    for (const id of channels) {
      const ch = id === undefined ? undefined : t.channels.get(id);
      for (const file of ch?.recordings ?? []) if (!seg.recordings.includes(file)) seg.recordings = appended(seg.recordings, file);
    }
  }
}

export function endCall(t: Tracker, call: Call, at: number, reason: EndReason): void {
  call.endedAt = at;
  call.endReason = reason;
  // An unfinished consultation that never became a transfer says nothing of its own.
  if (call.consultFor !== undefined) return;
  // Nor does a call never told, its caller never known (a phone that dialled nothing, a call whose
  // start was cut off): its end would name no caller (issue #14 item 6).
  if (!call.directionKnown && !call.clickToCall) return;
  const open = t.openSegment(call);
  if (open) endSegment(t, call, open, at, 'hangup');
  for (const leg of call.legs) {
    if (leg.disposition !== undefined) continue;
    const d = leg.dialStatus === 'cancel' ? cancelledAs(t, call, leg) : leg.answeredAt ? 'answered' : unansweredAs(undefined, leg.cause);
    finishLeg(t, call, leg, at, d);
  }
  call.disposition = callDisposition(call);
  attachRecordings(t, call);
  t.emitCall('call.ended', call, at);
  for (let i = call.segments.length - 1; i >= 0; i--) {
    const seg = call.segments[i]!;
    if (seg.recordings.length > 0) t.emit({ type: 'recording.ready', at, call: viewOf(call), segment: { ...seg, recordings: [...seg.recordings] } });
  }
}
