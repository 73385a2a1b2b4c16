import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { openOutbox, openStore } from '../src/deliver/outbox.js';
import { DELIVERY, endpoint, startReceiver, webhooks } from './delivery.js';

/** The CRM: each answer 20 ms after its request, 16 at a time: 800 webhooks a second at most. */
const ANSWER_AFTER_MS = 20;
const SLOTS = 16;
const MAX_ROWS = 100_000;
/** A call's 6 webhooks every 5 ms: 1,200 a second, more than the CRM takes. */
const CALL_EVERY_MS = 5;

export interface OverLimit {
  /** What the CRM could take: SLOTS / ANSWER_AFTER_MS. */
  crmPerSecond: number;
  deliveredPerSecond: number;
  /** This process's CPU over the measured seconds (the outbox and its checkpoint thread), % of one core. */
  cpuPercent: number;
  /** The longest the event loop stood still (a 10 ms timer's lateness). */
  longestStallMs: number;
  /** Moved to dead by max_rows while measured. */
  expired: number;
}

/**
 * An outbox that stays over `delivery.max_rows` (the default 100,000): 110,000 webhooks left by an
 * outage of an hour, and new ones coming in faster than a slow CRM takes them, so each pump leaves
 * it over the limit again. What it delivers a second against what the CRM could take, after 2 s.
 */
export async function overLimit(seconds: number): Promise<OverLimit> {
  const receiver = await startReceiver(ANSWER_AFTER_MS);
  const dir = mkdtempSync(join(tmpdir(), 'pbxhook-bench-over-limit-'));
  const timers: NodeJS.Timeout[] = [];
  let box: Awaited<ReturnType<typeof openOutbox>> | undefined;
  try {
    const seed = openStore(dir);
    try {
      const old = webhooks(MAX_ROWS + 10_000, receiver.url, 'old');
      const outageStart = Date.now() - 3_600_000;
      for (let i = 0; i < old.length; i += 6) seed.insert(old.slice(i, i + 6), outageStart + Math.floor((i / old.length) * 3_600_000));
    } finally {
      seed.close();
    }
    let delivered = 0;
    const delivery = { ...DELIVERY, concurrency: SLOTS, maxRows: MAX_ROWS };
    box = await openOutbox({ stateDir: dir, delivery, endpoints: [endpoint(receiver.url)] }, pino({ level: 'silent' }), (_e, outcome) => {
      if (outcome === 'delivered') delivered++;
    });
    const worker = box.worker;
    await worker.start();
    let calls = 0;
    timers.push(setInterval(() => worker.enqueue(webhooks(6, receiver.url, `live${calls++}-`)), CALL_EVERY_MS));
    let stall = 0;
    let last = performance.now();
    timers.push(
      setInterval(() => {
        const t = performance.now();
        stall = Math.max(stall, t - last - 10);
        last = t;
      }, 10),
    );
    await new Promise((r) => setTimeout(r, 2_000));
    const [d0, e0, cpu0, t0] = [delivered, worker.stats.expired, process.cpuUsage(), performance.now()];
    stall = 0;
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    return {
      crmPerSecond: (SLOTS * 1000) / ANSWER_AFTER_MS,
      deliveredPerSecond: ((delivered - d0) / ms) * 1000,
      cpuPercent: ((cpu.user + cpu.system) / 1000 / ms) * 100,
      longestStallMs: stall,
      expired: worker.stats.expired - e0,
    };
  } finally {
    for (const t of timers) clearInterval(t);
    await box?.close();
    receiver.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
