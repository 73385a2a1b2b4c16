/**
 * What the live ESL path skips without a frame or an event to show for it, and the one line each
 * reason is logged with (src/skip-log.ts: the first at once, then one line per interval with a
 * count, so a flood of odd frames never floods the log). Oversized frames and desyncs are logged
 * by the client itself: each is rare and worth its own line.
 */
import { SkipLog, type SkipLogSink } from '../skip-log.js';

export type EslInputSkipReason =
  /** A frame of a Content-Type FreeSWITCH does not send on an event socket (or none). */
  | 'unexpected'
  /** An event frame whose body is no event: not plain headers with an Event-Name, not a JSON object. */
  | 'undecodable'
  /** A channel event (CHANNEL_*, RECORD_*) without the Unique-ID every such event carries. */
  | 'no-channel';

const LINES: Record<EslInputSkipReason, { code: string; msg: string }> = {
  unexpected: { code: 'PBXHOOK_ESL_FRAME_UNEXPECTED', msg: 'ESL frames of no known Content-Type skipped' },
  undecodable: { code: 'PBXHOOK_ESL_EVENT_UNDECODABLE', msg: 'ESL event frames with no readable event in their body skipped' },
  'no-channel': { code: 'PBXHOOK_ESL_EVENT_NO_CHANNEL', msg: 'ESL channel events without a Unique-ID skipped' },
};

export function eslSkipLog(log: SkipLogSink, where: object): SkipLog {
  return new SkipLog(log, (reason) => LINES[reason as EslInputSkipReason] ?? { code: 'PBXHOOK_ESL_INPUT_SKIPPED', msg: `ESL input skipped (${reason})` }, where);
}
