import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import type { CallView } from '../src/core/model.js';
import { jsonBodies, replayTrace } from './support/replayTrace.js';

/**
 * load.esl.gz (../shared/traces/freeswitch/README.md): 80 calls in ~20 s — 40 to ring group 830
 * (117 answers), 30 to queue 820 with agents 202+204 in ring-all (7 answered, 23 left at
 * max-wait-time), 10 outbound — 7390 events, 139 channels, 116 s. Every call must close, with
 * nothing left in the tracker or the normaliser's channel book.
 *
 * One agent leg was orphaned by FreeSWITCH: in the first queue call both agents answered the
 * ring-all at once (8.9 s); mod_callcenter connected 202 and never hung up 204's leg (no LOSE_RACE,
 * no bridge-agent-fail). That leg stayed up, answered and unbridged, until the lab killed it with
 * `uuid_kill` at the very end of the recording (116.44 s). pbxhook reports what FreeSWITCH said:
 * the customer's conversation with 202 ends when the caller hangs up (40.8 s), but the call itself
 * ends only when its last channel goes — at the uuid_kill; and 204 is a leg that was never connected
 * (missed). Had nobody killed it, calls.idle_timeout_seconds would have closed the call (on the
 * trace clock in replay); no shorter timeout shows that here without also closing calls that were
 * legitimately silent (callers waiting 30 s in the queue, 20 s conversations without an event).
 */
const TRACE = 'test/fixtures/freeswitch/load.esl.gz';
const LAB = 'config/freeswitch-lab.example.yaml';

function ended(events: Awaited<ReturnType<typeof replayTrace>>['events']): CallView[] {
  return events.filter((e) => e.type === 'call.ended').map((e) => (e as { call: CallView }).call);
}

describe('FreeSWITCH load trace', () => {
  it('closes every call, leaves nothing behind, and tells each call in order', async () => {
    const { lines, summary, pipeline, events } = await replayTrace(TRACE, loadConfig(LAB));
    expect(summary.events).toBe(7390);
    expect(summary).toMatchObject({ callsStarted: 80, callsEnded: 80, callsOpen: 0, framesSkipped: 0, unknownEvents: 0 });
    expect(pipeline.tracker.channels.size).toBe(0);
    expect(pipeline.tracker.stats).toMatchObject({ orphanEvents: 0, callsTimedOut: 0 });
    expect(pipeline.esl.legs.size).toBe(0);
    expect(pipeline.esl.stats.unknownChannel).toBe(0);

    const calls = ended(events);
    const outcomes = { ringGroup: 0, queueAnswered: 0, queueTimeout: 0, outbound: 0 };
    for (const call of calls) {
      if (call.direction === 'outbound') outcomes.outbound++;
      else if (call.routes.some((r) => r.role === 'ringgroup')) outcomes.ringGroup++;
      else if (call.disposition === 'answered') outcomes.queueAnswered++;
      else if (call.disposition === 'timeout') outcomes.queueTimeout++;
    }
    expect(outcomes).toEqual({ ringGroup: 40, queueAnswered: 7, queueTimeout: 23, outbound: 10 });

    // Every call's 3CX webhooks read as a story: the end after the start, recordings last.
    const byCall = new Map<string, Record<string, unknown>[]>();
    for (const b of jsonBodies(lines, 'threecx-json')) {
      const call = String(b['Id']).replace(/-\d+$/, '');
      byCall.set(call, [...(byCall.get(call) ?? []), b]);
    }
    expect(byCall.size).toBe(80);
    for (const [call, bs] of byCall) {
      const names = bs.map((b) => String(b['Event']));
      const end = Math.max(names.lastIndexOf('incoming'), names.lastIndexOf('outgoing'));
      expect(end, call).toBeGreaterThan(0);
      const started = Math.max(names.indexOf('incomingcall_started'), names.indexOf('outgoingcall_started'));
      if (started >= 0) expect(end, call).toBeGreaterThan(started);
      if (names.includes('recording')) expect(names.indexOf('recording'), call).toBeGreaterThan(end);
    }
  });

  it('the orphaned agent leg keeps its call open until FreeSWITCH hangs it up (uuid_kill, 116.44 s)', async () => {
    const { pipeline, events } = await replayTrace(TRACE, loadConfig(LAB));
    const calls = ended(events);
    const traceEnd = pipeline.tracker.lastEventAt;
    const late = calls.filter((c) => c.segments.length > 0 && c.endedAt! - c.segments.at(-1)!.endedAt! > 60_000);
    expect(late).toHaveLength(1);
    const call = late[0]!;
    expect(call.endedAt).toBe(traceEnd);
    expect(call.endReason).toBe('hangup');
    // The caller hung up 40.0 s into its call; the call ended 75.6 s later, when the leg was killed.
    expect((call.segments[0]!.endedAt! - call.startedAt) / 1000).toBeCloseTo(40.02, 1);
    expect((call.endedAt! - call.segments[0]!.endedAt!) / 1000).toBeCloseTo(75.62, 1);
    expect(call.segments.map((s) => s.user)).toEqual(['202']);
    expect(call.legs.map((l) => `${l.party.id} ${l.disposition}`)).toEqual(['204 missed', '202 answered']);
    expect(call.legs.find((l) => l.party.id === '204')!.endedAt).toBe(traceEnd);
  });
});
