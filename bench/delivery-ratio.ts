import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import type { DeliveryRun } from './delivery.js';
import { interleaved, pairedRatios, showSpread, type Spread, verdict } from './stats.js';

/**
 * Issue #15, §2: the outbox against bare axios, as paired interleaved rounds (one process per run,
 * the order alternating), each round giving a wall-time ratio and a CPU-per-webhook ratio.
 * Targets: wall ≥ 0.8× bare axios's throughput, CPU per webhook ≤ 1.3× bare axios's; "met" only
 * when every round clears them. Run alone (no BENCHMARKS.md written):
 *
 *   npx tsc -p tsconfig.bench.json && BENCH_DELIVERY_ROUNDS=5 BENCH_WEBHOOKS=5000 node dist-bench/bench/delivery-ratio.js
 */
export interface DeliveryComparison {
  readonly n: number;
  readonly axios: DeliveryRun[];
  readonly outbox: DeliveryRun[];
  /** axios wall time / outbox wall time, per round: the outbox's throughput in bare axios's. */
  readonly wall: Spread;
  /** outbox CPU per webhook / axios CPU per webhook, per round. */
  readonly cpu: Spread;
}

export const WALL_TARGET = 0.8;
export const CPU_TARGET = 1.3;

function run(what: 'axios' | 'outbox', n: number): DeliveryRun {
  const r = spawnSync(process.execPath, ['dist-bench/bench/child.js', what, String(n)], { encoding: 'utf8', maxBuffer: 1 << 20, timeout: 600_000 });
  if (r.status !== 0) throw new Error(`${what} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as DeliveryRun;
}

export async function compareDelivery(n: number, rounds: number, progress = (_line: string): void => undefined): Promise<DeliveryComparison> {
  const one = (what: 'axios' | 'outbox') => (): DeliveryRun => {
    const r = run(what, n);
    progress(`delivery ${what}: ${Math.round(r.ms)} ms, ${r.cpuUsPerWebhook.toFixed(1)} µs CPU per webhook`);
    return r;
  };
  const { a: axios, b: outbox } = await interleaved(rounds, one('axios'), one('outbox'));
  return {
    n,
    axios,
    outbox,
    wall: pairedRatios(axios.map((r) => r.ms), outbox.map((r) => r.ms)),
    cpu: pairedRatios(outbox.map((r) => r.cpuUsPerWebhook), axios.map((r) => r.cpuUsPerWebhook)),
  };
}

/** The two target lines of §2, with every round's ratio behind the spread. */
export function deliveryVerdicts(c: DeliveryComparison): string {
  return [
    `- Outbox throughput vs bare axios (wall time): ${showSpread(c.wall)} (target ≥ ${WALL_TARGET}×: ${verdict(c.wall, WALL_TARGET, 'atLeast')}).`,
    `- Outbox CPU per webhook vs bare axios: ${showSpread(c.cpu)} (target ≤ ${CPU_TARGET}×: ${verdict(c.cpu, CPU_TARGET, 'atMost')}).`,
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const n = Number(process.env['BENCH_WEBHOOKS'] ?? 20_000);
  const rounds = Number(process.env['BENCH_DELIVERY_ROUNDS'] ?? 5);
  const c = await compareDelivery(n, rounds, (l) => process.stderr.write(`${l}\n`));
  const us = (rs: DeliveryRun[]): string => rs.map((r) => r.cpuUsPerWebhook.toFixed(1)).join(', ');
  process.stdout.write(
    `${n} webhooks, ${rounds} rounds\n` +
      `bare axios: CPU µs/webhook ${us(c.axios)}; wall ms ${c.axios.map((r) => Math.round(r.ms)).join(', ')}\n` +
      `outbox:     CPU µs/webhook ${us(c.outbox)}; wall ms ${c.outbox.map((r) => Math.round(r.ms)).join(', ')}\n` +
      `wall ratios ${c.wall.values.map((v) => v.toFixed(3)).join(', ')}\ncpu ratios ${c.cpu.values.map((v) => v.toFixed(3)).join(', ')}\n` +
      `${deliveryVerdicts(c)}\n`,
  );
}
