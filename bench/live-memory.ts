import { readFileSync } from 'node:fs';
import { AmiFramer } from '../src/ami/framer.js';
import { wantsAmiEvent } from '../src/ami/normalise.js';
import { benchPipeline } from './bench-pipeline.js';
import { mb, settled, startLiveDaemon } from './live-daemon.js';

/**
 * Issue #14 item 8: the live daemon's memory with N calls up at once, on the real path: a fake AMI
 * server → `pbxhook run` (dist/cli.js; durable outbox and ops on) → a receiver answering 200.
 * Each call is the recorded in-queue-answered call (every event Asterisk sent, unfiltered) up to the
 * caller's HangupRequest: answered, bridged, still up. Its Uniqueids, Linkedid, channel names and
 * bridge id are renumbered per copy and its times moved to now, so the daemon follows N distinct
 * live calls. Measured once the daemon holds them all and has delivered every webhook:
 * RSS (/proc) and the JS heap (the daemon's own /metrics). The daemon runs with the environment
 * the shipped unit gives it (node flags and environment, bench/service-env.ts), as the service runs it.
 */
const TRACE = 'test/fixtures/asterisk/in-queue-answered.ami';

/** The call's events up to the caller's HangupRequest (still up), or the whole call. */
export function callTemplate(part: 'up' | 'whole' = 'up'): string {
  const text = readFileSync(TRACE, 'latin1');
  const start = text.indexOf('Event: Newchannel');
  const end = part === 'up' ? text.indexOf('Event: HangupRequest') : text.length;
  return text.slice(start, end);
}

/** Copy `i` of the call, its times shifted so that its first event happens at `t0` (seconds). */
export function copy(template: string, i: number, t0: number, first: number): Buffer {
  const hex = (n: number): string => n.toString(16).padStart(8, '0');
  const text = template
    .replaceAll('1795301990.9', `${1795301990 + i}.9`)
    .replaceAll('1795301994.10', `${1795301994 + i}.10`)
    .replaceAll('PJSIP/trunk-00000007', `PJSIP/trunk-${hex(2 * i)}`)
    .replaceAll('PJSIP/202-00000008', `PJSIP/202-${hex(2 * i + 1)}`)
    .replaceAll('cf807582-d118-4048-8206', `${hex(i)}-d118-4048-8206`)
    .replace(/^Timestamp: (\d+\.\d+)\r$/gm, (_, ts: string) => `Timestamp: ${(t0 + (Number(ts) - first) + i / 1000).toFixed(6)}\r`);
  return Buffer.from(text, 'latin1');
}

export interface LiveMemoryResult {
  readonly calls: number;
  readonly liveCalls: number;
  readonly webhooks: number;
  /** After login, before any call. */
  readonly baselineRss: number;
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  /** The same, 15 s later without traffic: V8 gives back heap it grew for the burst. */
  readonly settledRss: number;
  readonly settledHeapUsed: number;
  readonly settledHeapTotal: number;
  /** The daemon's heap after login, before any call. */
  readonly baselineHeapTotal: number;
  /**
   * The calls' own data: the same bytes through the live framer and the pipeline in this process
   * (--expose-gc), JS heap after a full collection.
   */
  readonly callsHeap: number;
  /** MB of AMI bytes streamed. */
  readonly streamedMb: number;
  readonly ms: number;
  /** The daemon's CPU seconds (user + system) from login to every webhook delivered: node flags trade it for memory. */
  readonly cpuS: number;
  /** The unit's node flags and environment the daemon ran with. */
  readonly environment: string;
}

/** JS heap (MB, after a full GC) that `calls` live calls take in framer → pipeline. */
function callsHeap(calls: number): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return NaN;
  const template = callTemplate();
  const first = Number(/^Timestamp: (\d+\.\d+)\r$/m.exec(template)![1]);
  const framer = new AmiFramer({ filter: wantsAmiEvent });
  const p = benchPipeline();
  gc();
  const before = process.memoryUsage().heapUsed;
  const t0 = Date.now() / 1000;
  for (let i = 0; i < calls; i++) {
    const b = copy(template, i, t0, first);
    for (let o = 0; o < b.length; o += 65_536) for (const f of framer.push(b.subarray(o, o + 65_536))) p.amiFrame(f);
  }
  gc();
  if (p.tracker.liveCalls !== calls) throw new Error(`expected ${calls} live calls, have ${p.tracker.liveCalls}`);
  return mb(process.memoryUsage().heapUsed - before);
}

export async function liveMemory(calls: number): Promise<LiveMemoryResult> {
  const heapCopied = callsHeap(calls);
  const template = callTemplate();
  const first = Number(/^Timestamp: (\d+\.\d+)\r$/m.exec(template)![1]);
  let go: () => void = () => undefined;
  const start = new Promise<void>((r) => (go = r));
  let streamed = 0;
  let sent = false;
  const d = await startLiveDaemon({
    stream: (sock) =>
      void (async () => {
        await start;
        const t0 = Date.now() / 1000;
        for (let i = 0; i < calls; i++) {
          const b = copy(template, i, t0, first);
          streamed += b.length;
          if (!sock.write(b)) await new Promise((r) => sock.once('drain', r));
        }
        sent = true;
      })(),
  });
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const baselineRss = d.rssMb();
    const atLogin = await d.scrape();
    const baselineHeapTotal = mb(atLogin['pbxhook_nodejs_heap_size_total_bytes']);
    const t0 = performance.now();
    go();
    await d.until(() => sent, 'the stream', 600_000);
    // Every call followed and every webhook delivered, with nothing more arriving for half a second.
    const done = await settled(d, calls, undefined, 600_000);
    const ms = performance.now() - t0;
    const cpu = 'pbxhook_process_cpu_seconds_total';
    await new Promise((r) => setTimeout(r, 2000));
    const m = await d.scrape();
    const rss = d.rssMb();
    await new Promise((r) => setTimeout(r, 15_000));
    const after = await d.scrape();
    return {
      calls,
      liveCalls: m['pbxhook_calls_live'] ?? NaN,
      webhooks: d.webhooks(),
      baselineRss,
      rss,
      heapUsed: mb(m['pbxhook_nodejs_heap_size_used_bytes']),
      heapTotal: mb(m['pbxhook_nodejs_heap_size_total_bytes']),
      settledRss: d.rssMb(),
      settledHeapUsed: mb(after['pbxhook_nodejs_heap_size_used_bytes']),
      settledHeapTotal: mb(after['pbxhook_nodejs_heap_size_total_bytes']),
      baselineHeapTotal,
      callsHeap: heapCopied,
      streamedMb: Math.round(streamed / 104857.6) / 10,
      ms: Math.round(ms),
      cpuS: Math.round(((done[cpu] ?? NaN) - (atLogin[cpu] ?? NaN)) * 10) / 10,
      environment: d.environment,
    };
  } finally {
    d.stop();
  }
}
