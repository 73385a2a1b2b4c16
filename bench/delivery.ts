import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import axios from 'axios';
import pino from 'pino';
import type { DeliveryConfig, EndpointConfig } from '../src/config/types.js';
import { openOutbox, openStore } from '../src/deliver/outbox.js';
import type { WebhookRequest } from '../src/emit/request.js';

/** Issue #7 §2: delivery throughput with the durable outbox, against bare axios and autocannon. */

/**
 * Wall time and this process's CPU (user + system, every thread: the checkpointer's too) of one
 * delivery run, per webhook (issue #15): on 2 cores a sender spending more CPU can still finish as
 * fast, so wall time alone hides what the outbox costs. The receiver runs in its own process.
 */
export interface DeliveryRun {
  ms: number;
  cpuMs: number;
  cpuUsPerWebhook: number;
}

async function timed(n: number, run: () => Promise<void>): Promise<DeliveryRun> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await run();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  return { ms, cpuMs, cpuUsPerWebhook: (cpuMs * 1000) / n };
}

/** `answerAfterMs`: each answer that much later, as a slow CRM's (0: at once). */
export async function startReceiver(answerAfterMs = 0): Promise<{ url: string; proc: ChildProcess; stop(): void }> {
  const proc = spawn(process.execPath, ['dist-bench/bench/receiver.js', String(answerAfterMs)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error(`the receiver exited (${code}) before it listened`)));
  });
  return { url: `http://127.0.0.1:${port}/hook`, proc, stop: () => proc.kill() };
}

const BODY = JSON.stringify({ Event: 'incoming', Callerid: '05552221133', User: '202', Finishtype: 'Ok', Transfer: 'False', Did: '02125550800', Duration: '00:06', Id: '261121225950_9-1' });

/** N webhooks spread over calls of 6 webhooks each, like a real call's lifecycle. */
export function webhooks(n: number, url: string, prefix = 'c'): WebhookRequest[] {
  return Array.from({ length: n }, (_, i) => ({
    endpoint: 'crm',
    method: 'POST' as const,
    url,
    headers: { 'content-type': 'application/json' },
    body: BODY,
    orderKey: `crm:${prefix}${Math.floor(i / 6)}`,
  }));
}

export async function bareAxios(n: number, url: string, connections: number): Promise<DeliveryRun> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const client = axios.create({ httpAgent: agent, maxRedirects: 0, validateStatus: () => true });
  let next = 0;
  const r = await timed(n, async () => {
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (next < n) {
          next++;
          await client.post(url, BODY, { headers: { 'content-type': 'application/json' } });
        }
      }),
    );
  });
  agent.destroy();
  return r;
}

export async function autocannon(url: string, connections: number, seconds: number): Promise<{ rps: number }> {
  const run = createRequire(import.meta.url)('autocannon') as (o: object) => Promise<{ requests: { average: number } }>;
  const r = await run({ url, connections, duration: seconds, method: 'POST', body: BODY, headers: { 'content-type': 'application/json' } });
  return { rps: r.requests.average };
}

export const DELIVERY: DeliveryConfig = {
  schedule: [100, 1000], jitter: 0, retryAfterMaxMs: 1000, connectTimeoutMs: 5000, timeoutMs: 10_000, concurrency: 16,
  pauseAfterMs: 600_000, probeEveryMs: 60_000, stopTimeoutMs: 5000, maxRows: 1_000_000, maxAgeMs: 86_400_000,
  keepDeliveredMs: 86_400_000, keepDeadMs: 86_400_000,
};

export function endpoint(url: string): EndpointConfig {
  return { name: 'crm', enabled: true, schema: '3cx', variant: 'json', url, method: 'POST', events: [], recordingUrl: 'x/{file}' } as EndpointConfig;
}

/**
 * The daemon's delivery path: 20,000 webhooks as PBX events of 6 each, one event per turn of the
 * event loop, into the SQLite outbox; the worker claims and sends with `concurrency` in flight.
 */
export async function outbox(n: number, url: string): Promise<DeliveryRun> {
  const dir = mkdtempSync(join(tmpdir(), 'pbxhook-bench-'));
  let delivered = 0;
  let done: () => void = () => undefined;
  const all = new Promise<void>((r) => (done = r));
  const box = await openOutbox({ stateDir: dir, delivery: DELIVERY, endpoints: [endpoint(url)] }, pino({ level: 'silent' }), (_e, outcome) => {
    if (outcome === 'delivered' && ++delivered === n) done();
  });
  await box.worker.start();
  const reqs = webhooks(n, url);
  const r = await timed(n, async () => {
    // One PBX event per turn of the event loop: the worst case for the outbox's one commit per turn
    // (a live AMI socket hands over many events per read under load).
    let next = 0;
    const feed = (): void => {
      if (next >= n) return;
      box.worker.enqueue(reqs.slice(next, next + 6));
      next += 6;
      setImmediate(feed);
    };
    feed();
    await all;
  });
  await box.close();
  rmSync(dir, { recursive: true, force: true });
  return r;
}

/**
 * An hour-long CRM outage left `backlog` webhooks; the endpoint answers again. How fast does it
 * drain, and how long do a live call's webhooks wait meanwhile (one every 20 ms)?
 */
export async function backlog(n: number, url: string): Promise<{ ms: number; liveP50: number; liveP99: number; live: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'pbxhook-bench-'));
  const log = pino({ level: 'silent' });
  // The CRM was down for the last hour: the backlog's webhooks were written over that hour.
  const seed = openStore(dir);
  const reqs = webhooks(n, url, 'old');
  const outageStart = Date.now() - 3_600_000;
  for (let i = 0; i < n; i += 6) seed.insert(reqs.slice(i, i + 6), outageStart + Math.floor((i / n) * 3_600_000));
  seed.close();

  const liveWaits: number[] = [];
  let delivered = 0;
  let done: () => void = () => undefined;
  const all = new Promise<void>((r) => (done = r));
  let total = n;
  const box = await openOutbox({ stateDir: dir, delivery: DELIVERY, endpoints: [endpoint(url)] }, log, (_e, outcome, sinceQueuedMs) => {
    if (outcome !== 'delivered') return;
    delivered++;
    // A backlog row was queued before the drain began; a live one during it.
    if (sinceQueuedMs <= Date.now() - startedWall) liveWaits.push(sinceQueuedMs);
    if (delivered === total) done();
  });
  const t0 = performance.now();
  const startedWall = Date.now();
  await box.worker.start();
  let live = 0;
  const ticker = setInterval(() => {
    total++;
    box.worker.enqueue(webhooks(1, url, `live${live++}`));
  }, 20);
  await all;
  clearInterval(ticker);
  const ms = performance.now() - t0;
  await box.close();
  rmSync(dir, { recursive: true, force: true });
  liveWaits.sort((a, b) => a - b);
  const q = (p: number): number => liveWaits[Math.min(liveWaits.length - 1, Math.floor(p * liveWaits.length))] ?? NaN;
  return { ms, liveP50: q(0.5), liveP99: q(0.99), live };
}
