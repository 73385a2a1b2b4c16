/**
 * The churn bench's webhook count (issue #15). Its 1M-call run received 413,736 of 999,000
 * webhooks: the stream ran ahead of the outbox, the backlog passed `delivery.max_rows` and the
 * oldest webhooks went dead, as the limit is meant to work, while the bench read only "outbox empty".
 * The bench now paces the stream to a bounded backlog and fails when a sample is short.
 *
 * Here the real daemon runs with `max_rows` far below the calls streamed: paced, no webhook may go
 * dead and every ended call's webhook must arrive. Deadlines are hang guards; nothing is timed.
 */
import { describe, expect, it } from 'vitest';
import { liveChurn, shortfall } from '../bench/live-churn.js';

describe('bench: live churn', () => {
  it('paced, every ended call sends its webhook though the stream is 10x delivery.max_rows', async () => {
    const calls = 3000;
    const window = 100;
    const r = await liveChurn(calls, { window, backlog: 50, paceEvery: 100, maxRows: 300 });
    expect(r.samples.map((s) => s.calls)).toEqual([300, 750, 1500, 3000]);
    for (const s of r.samples) {
      expect(s.received).toBe(s.calls - window);
      expect(s.counts['pbxhook_dead_letters_total{endpoint="crm"}']).toBe(0);
      expect(s.counts['pbxhook_calls_total{outcome="idle_timeout"}']).toBe(0);
    }
    expect(r.webhooks).toBe(calls - window);
  });

  it('a sample with webhooks missing or dead is named, with both counts', () => {
    const sample = { calls: 1000, ended: 900, received: 900, counts: { 'pbxhook_dead_letters_total{endpoint="crm"}': 0 }, warnings: {} };
    expect(shortfall(sample)).toBeUndefined();
    const short = shortfall({ ...sample, received: 413 });
    expect(short).toMatch(/413 webhooks where 900 were expected/);
    const dead = shortfall({
      ...sample,
      counts: { 'pbxhook_dead_letters_total{endpoint="crm"}': 7 },
      warnings: { 'outbox limit delivery.max_rows reached': 1 },
    });
    expect(dead).toMatch(/dead letters 7/);
    expect(dead).toMatch(/max_rows/);
  });
});
