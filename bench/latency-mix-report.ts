import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import type { Mix, MixLatencyResult } from './latency-mix.js';
import { spread, type Spread } from './stats.js';

/**
 * Issue #15: the latency matrix under the real traces' mix — vanilla and FreePBX, 100/300/1000
 * calls/s, Asterisk's filter on and off. Each round runs a rate's on and off back to back, in
 * alternating order (stats.ts), one daemon per run; percentiles are given as median (min–max) over
 * the rounds. A run whose probes did not all arrive within 10 s of the stream's end, or whose median
 * probe waited over a second, is behind: the daemon cannot keep that rate up, and its percentiles
 * only say how far behind it fell.
 *
 * Knobs: BENCH_LATENCY_RATES (100,300,1000), BENCH_LATENCY_MIXES (vanilla,freepbx),
 * BENCH_LATENCY_ROUNDS (3), BENCH_LATENCY_SECONDS (5, measured, after a 1 s warm-up).
 * `node dist-bench/bench/latency-mix-report.js` prints the table alone.
 */
function run(mix: Mix, rate: number, filter: boolean): MixLatencyResult {
  const r = spawnSync(process.execPath, ['dist-bench/bench/child.js', 'latency-mix', `${mix}:${rate}:${filter ? 'on' : 'off'}`], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
    timeout: 600_000,
    env: process.env,
  });
  if (r.status !== 0) throw new Error(`latency-mix ${mix}:${rate} failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as MixLatencyResult;
  process.stderr.write(`latency-mix ${JSON.stringify(out)}\n`);
  return out;
}

const ms = (n: number): string => (n >= 1000 ? `${(n / 1000).toFixed(1)} s` : `${n.toFixed(1)} ms`);
/** Over the rounds where some probe arrived (none did: "—"). */
const show = (values: number[]): string => {
  const got = values.filter((v) => Number.isFinite(v));
  if (got.length === 0) return '—';
  const s: Spread = spread(got);
  return `${ms(s.median)} (${ms(s.min)}–${ms(s.max)})`;
};

export function row(runs: MixLatencyResult[]): string {
  const r0 = runs[0]!;
  // Older runs (no cpuMsPerCall) spread start-up over the calls.
  const cpuPerCall = spread(runs.map((r) => r.cpuMsPerCall ?? r.daemonCpuMs / (r.callsPerSecond * r.seconds)));
  // A median wait over a second is a queue that grew all run long: the rate is beyond the daemon.
  const behind = runs.filter((r) => r.received < r.probes || !(r.p50 < 1000)).length;
  const verdict =
    behind > 0 ? `behind in ${behind} of ${runs.length}` : runs.every((r) => r.p99 < 10) ? 'p99 < 10 ms in every round' : 'keeps up; p99 ≥ 10 ms in some round';
  return `| ${r0.mix} | ${r0.callsPerSecond} | ${r0.filter ? 'on' : 'off'} | ${r0.eventsPerSecond.toLocaleString('en-US')} | ${r0.megabytesPerSecond} | ` +
    `${show(runs.map((r) => r.p50 ?? NaN))} | ${show(runs.map((r) => r.p99 ?? NaN))} | ${show(runs.map((r) => r.max ?? NaN))} | ` +
    `${cpuPerCall.median.toFixed(2)} | ${verdict} |`;
}

export function latencyMixReport(): string {
  const rates = (process.env['BENCH_LATENCY_RATES'] ?? '100,300,1000').split(',').map(Number);
  const mixes = (process.env['BENCH_LATENCY_MIXES'] ?? 'vanilla,freepbx').split(',') as Mix[];
  const rounds = Number(process.env['BENCH_LATENCY_ROUNDS'] ?? 3);
  const rows: string[] = [];
  for (const mix of mixes) {
    for (const rate of rates) {
      const on: MixLatencyResult[] = [];
      const off: MixLatencyResult[] = [];
      for (let round = 0; round < rounds; round++) {
        for (const filter of round % 2 === 0 ? [true, false] : [false, true]) (filter ? on : off).push(run(mix, rate, filter));
      }
      rows.push(row(on), row(off));
    }
  }
  return table(rows);
}

export function table(rows: readonly string[]): string {
  return [
    '| mix | calls/s | filter | events/s sent | MB/s | p50 | p99 | max | daemon CPU ms/call after login | |',
    '|---|---:|---|---:|---:|---:|---:|---:|---:|---|',
    ...rows,
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.stdout.write(latencyMixReport() + '\n');
