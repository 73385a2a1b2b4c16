import { describe, expect, it } from 'vitest';
import { jsonBodies, replayTrace } from './support/replayTrace.js';

/**
 * load.ami: 105 inbound queue calls (72 answered by an agent, 33 abandoned) and 10 outbound calls,
 * up to 34 channels at once (shared/traces/README.md). Every call must close and each call's
 * webhooks must read as a story: ringing before started before the end.
 */
describe('load trace', () => {
  it('closes every call and tells each one in order', async () => {
    const { lines, summary, pipeline } = await replayTrace('test/fixtures/asterisk/load.ami.gz');
    expect(summary.events).toBe(17_723);
    expect(summary.callsStarted).toBe(115);
    expect(summary.callsEnded).toBe(115);
    expect(summary.callsOpen).toBe(0);
    expect(pipeline.tracker.channels.size).toBe(0);
    expect(pipeline.tracker.stats.orphanEvents).toBe(0);

    const byCall = new Map<string, Record<string, unknown>[]>();
    for (const b of jsonBodies(lines)) {
      const call = String(b['Id']).replace(/-\d+$/, '');
      byCall.set(call, [...(byCall.get(call) ?? []), b]);
    }
    expect(byCall.size).toBe(115);

    const outcomes = { answered: 0, missed: 0, outbound: 0 };
    for (const [call, events] of byCall) {
      const names = events.map((e) => String(e['Event']));
      const ends = events.filter((e) => e['Event'] === 'incoming' || e['Event'] === 'outgoing');
      expect(ends.length, `${call}: one end per answered segment or one missed end`).toBeGreaterThanOrEqual(1);
      const last = ends.at(-1)!;
      if (names[0] === 'dialing') {
        outcomes.outbound++;
        expect(names.indexOf('outgoingcall_started'), call).toBeGreaterThan(0);
        expect(names.indexOf('outgoing'), call).toBeGreaterThan(names.indexOf('outgoingcall_started'));
        continue;
      }
      expect(names.slice(0, 2), call).toEqual(['ringing', 'ringing']); // IVR, then queue
      expect(events[0]!['Usertype'], call).toBe('other');
      expect(events[1]!['Usertype'], call).toBe('queue');
      const started = names.indexOf('incomingcall_started');
      if (last['Finishtype'] === 'Missed') {
        outcomes.missed++;
        expect(started, `${call}: a missed call never started`).toBe(-1);
        expect(last['User'], call).toBe('820');
        expect(last['Duration'], call).toBe('');
      } else {
        outcomes.answered++;
        expect(started, call).toBeGreaterThan(names.indexOf('ringing'));
        expect(names.indexOf('incoming'), call).toBeGreaterThan(started);
        // The answering agent rang first, within the same call Id.
        const agent = events[started]!['User'];
        const rang = events.findIndex((e) => e['Event'] === 'ringing' && e['User'] === agent);
        expect(rang, `${call}: ${String(agent)} rang before answering`).toBeGreaterThan(-1);
        expect(rang).toBeLessThan(started);
        expect(String(events[started]!['Id']).endsWith('-1'), call).toBe(true);
        expect(last['Duration'], call).toMatch(/^\d\d:\d\d$/);
      }
      // Recordings come last, after the end.
      const rec = names.indexOf('recording');
      if (rec >= 0) expect(rec, call).toBeGreaterThan(names.lastIndexOf('incoming'));
    }
    expect(outcomes).toEqual({ answered: 72, missed: 33, outbound: 10 });
  });
});
