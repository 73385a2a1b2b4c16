/**
 * Issue #15: the live calls are saved with every commit that writes webhooks, but PBX events that
 * change a call without a webhook are saved at most every 100 ms (one commit for many). A restart
 * must never find a call older than its webhooks (test/53 ends it a second time otherwise): the
 * commit carrying a webhook carries the live state taken with it, even 1 ms after the last save.
 * Fake timers and clock: every count below is exact.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DeliveryConfig, EndpointConfig } from '../src/config/types.js';
import type { HttpClient } from '../src/deliver/attempt.js';
import { SqliteOutbox } from '../src/deliver/outbox-store.js';
import { OutboxWorker } from '../src/deliver/outbox-worker.js';
import { SqliteStore } from '../src/deliver/sqlite-store.js';
import type { Pump, PumpResult } from '../src/deliver/store.js';
import { T0, req } from './support/outboxSteps.js';

const DELIVERY: DeliveryConfig = {
  schedule: [1_000], jitter: 0, retryAfterMaxMs: 60_000, connectTimeoutMs: 1_000, timeoutMs: 1_000,
  concurrency: 2, pauseAfterMs: 2_500, probeEveryMs: 10_000, stopTimeoutMs: 1_000, maxRows: 1_000, maxAgeMs: 86_400_000,
  keepDeliveredMs: 86_400_000, keepDeadMs: 86_400_000,
};
const ENDPOINT = { name: 'crm', enabled: true, url: 'https://crm.example.com/hook', method: 'POST', events: [], recordingUrl: 'x', schema: '3cx', variant: 'json' } as EndpointConfig;

/** The SQLite store, telling the test what each commit carried. */
class RecordingStore extends SqliteStore {
  readonly commits: Array<{ webhooks: number; state: Map<string, string | undefined> }> = [];
  override commitPump(p: Pump, now: number): Promise<PumpResult> {
    this.commits.push({ webhooks: p.enqueue.length, state: new Map(p.liveState) });
    return super.commitPump(p, now);
  }
  /** The commits that saved live calls, as `key=value` lists. */
  saves(): string[] {
    return this.commits.filter((c) => c.state.size > 0).map((c) => [...c.state].map(([k, v]) => `${k}=${v ?? '(ended)'}`).join(' '));
  }
}

const dirs: string[] = [];
let store: RecordingStore;
let worker: OutboxWorker;
let live: Map<string, string | undefined>;
const change = (key: string, value: string | undefined): void => {
  live.set(key, value);
  worker.changed();
};

beforeEach(async () => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'performance', 'Date'], now: T0 });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pbxhook-73-'));
  dirs.push(dir);
  store = new RecordingStore(new SqliteOutbox(path.join(dir, 'outbox.sqlite'), { pbx: 'pbx' }));
  const http: HttpClient = { attempt: async () => ({ ok: true, status: 200, latencyMs: 1 }), close: () => {} };
  worker = new OutboxWorker({ store, http, log: pino({ level: 'silent' }), endpoints: [ENDPOINT], delivery: DELIVERY, now: () => Date.now() });
  live = new Map();
  worker.saveLiveStateFrom(() => {
    const taken = live;
    live = new Map();
    return taken;
  });
  await worker.start();
});

afterEach(async () => {
  const stopped = worker.stop(0);
  await vi.advanceTimersByTimeAsync(1_000);
  await stopped;
  vi.useRealTimers();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('live state saved with the outbox (issue #15: coalesced without webhooks)', () => {
  it('changes without a webhook wait at most 100 ms and go in one commit, the newest value of each call', async () => {
    change('call:1', 'ringing');
    await vi.advanceTimersByTimeAsync(1);
    expect(store.saves(), 'the first change is saved at once: nothing was saved before').toEqual(['call:1=ringing']);
    for (const [i, v] of ['queue', 'agent-ringing', 'answered'].entries()) {
      change('call:1', v);
      change(`call:${i + 2}`, 'ringing');
      await vi.advanceTimersByTimeAsync(20);
    }
    expect(store.saves(), '60 ms after the first save: nothing more yet').toEqual(['call:1=ringing']);
    await vi.advanceTimersByTimeAsync(45);
    expect(store.saves()).toEqual(['call:1=ringing', 'call:1=answered call:2=ringing call:3=ringing call:4=ringing']);
    await vi.advanceTimersByTimeAsync(500);
    expect(store.saves(), 'nothing changed since: no further save').toHaveLength(2);
  });

  it('a webhook takes the live state with it at once, even right after a save', async () => {
    change('call:1', 'answered');
    await vi.advanceTimersByTimeAsync(1);
    const before = store.commits.length;
    // The hangup: its end webhook and the call's removal, as daemon.ts dispatches one PBX event.
    live.set('call:1', undefined);
    worker.enqueue([req('call:1', 'hangup')]);
    worker.changed();
    await vi.advanceTimersByTimeAsync(1);
    const withWebhook = store.commits.slice(before).find((c) => c.webhooks > 0);
    expect(withWebhook, 'the webhook was committed within 1 ms').toBeDefined();
    expect([...withWebhook!.state]).toEqual([['call:1', undefined]]);
    expect(store.saves()).toEqual(['call:1=answered', 'call:1=(ended)']);
  });

  it('a change waiting for its 100 ms is saved by the stop', async () => {
    change('call:1', 'ringing');
    await vi.advanceTimersByTimeAsync(1);
    change('call:1', 'answered');
    await vi.advanceTimersByTimeAsync(10);
    expect(store.saves()).toEqual(['call:1=ringing']);
    const stopped = worker.stop(0);
    await vi.advanceTimersByTimeAsync(1);
    await stopped;
    expect(store.saves()).toEqual(['call:1=ringing', 'call:1=answered']);
    expect(new Map(await store.liveState())).toEqual(new Map([['call:1', 'answered']]));
  });
});
