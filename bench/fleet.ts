/**
 * Issue #17 item 6. A backlog drained by 1 and 4 `pbxhook deliver` from PostgreSQL, by one process
 * from SQLite and by bare axios (fleet-deliver.ts, `fleetDelivery`); the workers with 16 slots each and with 4. The standby's takeover: a process holding a PBX's lease (bench/lease-holder.ts)
 * is killed -9, or its link to PostgreSQL is cut (a proxy that swallows bytes: no FIN, no reset),
 * and the time until a standby in this process holds the lease is measured. Loopback only, on a
 * throwaway cluster (test/support/postgres.ts); rounds alternate the two failures.
 *   node dist-bench/bench/fleet.js          BENCH_FLEET_ROUNDS (3), BENCH_TAKEOVER_SECONDS (10),
 *                                            BENCH_FLEET_BACKLOG (100000; 0 skips the delivery part)
 * It times the lease alone: logging in to the PBX and its resync come after, as after a reconnect.
 */
import { spawn } from 'node:child_process';
import pino from 'pino';
import { holdStandbyLease } from '../src/fleet/lease.js';
import { startCutProxy } from '../test/support/cutProxy.js';
import { startPostgres } from '../test/support/postgres.js';
import { pairedRatios, spread, type Spread } from './stats.js';
import { startReceiver } from './delivery.js';
import { CONCURRENCY, axiosDrain, lanesOf, postgresDrain, sqliteDrain } from './fleet-deliver.js';

export interface TakeoverResult {
  readonly takeoverSeconds: number;
  /** ms from kill -9 of the holder to the standby holding the lease. */
  readonly kill: Spread;
  /** ms from cutting the holder's link to the standby holding the lease. */
  readonly cut: Spread;
}

const log = pino({ level: 'silent' });

async function holder(url: string, pbx: string, seconds: number): Promise<{ kill(): void }> {
  const child = spawn(process.execPath, ['dist-bench/bench/lease-holder.js', url, pbx, String(seconds)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`lease holder exited ${code}`)));
  });
  return { kill: () => child.kill('SIGKILL') };
}

async function takeover(url: string, pbx: string, seconds: number, fail: () => void): Promise<number> {
  const standby = holdStandbyLease({ url, pbxName: pbx, takeoverSeconds: seconds, log });
  // The standby has asked at least once and waits.
  await new Promise((r) => setTimeout(r, 300));
  if (standby.role() !== 'standby') throw new Error('the standby holds the lease before the holder failed');
  const t0 = performance.now();
  fail();
  await standby.acquired;
  const ms = performance.now() - t0;
  await standby.close();
  return ms;
}

export async function fleetTakeover(rounds: number, seconds: number, say: (line: string) => void): Promise<TakeoverResult> {
  const pg = await startPostgres();
  const kill: number[] = [];
  const cut: number[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      for (const kind of round % 2 === 0 ? (['kill', 'cut'] as const) : (['cut', 'kill'] as const)) {
        const pbx = `bench-${kind}-${round}`;
        if (kind === 'kill') {
          const h = await holder(pg.url, pbx, seconds);
          kill.push(await takeover(pg.url, pbx, seconds, () => h.kill()));
          say(`round ${round + 1} takeover after kill -9: ${kill.at(-1)!.toFixed(0)} ms`);
        } else {
          const proxy = await startCutProxy(pg.port);
          const h = await holder(pg.url.replace(`:${pg.port}/`, `:${proxy.port}/`), pbx, seconds);
          cut.push(await takeover(pg.url, pbx, seconds, () => proxy.cut()));
          say(`round ${round + 1} takeover after a network cut: ${cut.at(-1)!.toFixed(0)} ms`);
          h.kill();
          await proxy.close();
        }
      }
    }
  } finally {
    pg.stop();
  }
  return { takeoverSeconds: seconds, kill: spread(kill), cut: spread(cut) };
}

/**
 * `-c4`: each worker with 4 slots instead of 16. With 16, four workers fill a 2-core machine's CPU
 * beside PostgreSQL and the receiver, and share it; with 4, one worker's slots are what holds it
 * back, as when a CRM takes few requests at once: what more workers are for (README, fleet).
 */
export const DRAINS = ['axios', 'sqlite', 'postgres-1', 'postgres-4', 'postgres-1-c4', 'postgres-4-c4'] as const;
export type Drain = (typeof DRAINS)[number];
const WORKERS: Partial<Record<Drain, [workers: number, slots: number]>> = {
  'postgres-1': [1, CONCURRENCY],
  'postgres-4': [4, CONCURRENCY],
  'postgres-1-c4': [1, 4],
  'postgres-4-c4': [4, 4],
};

export interface FleetDelivery {
  readonly drains: Record<Drain, { rate: Spread; vsAxios: Spread }>;
  /** Per round, 4 workers' rate over 1 worker's: by 16 slots each, and by 4. */
  readonly fourOverOne: { readonly c16: Spread; readonly c4: Spread };
}

/**
 * A backlog of n drained each way per round, the order reversed every other round; the ratios to
 * bare axios are taken per round (stats.ts). Rates in webhooks/s.
 */
export async function fleetDelivery(rounds: number, n: number, say: (line: string) => void): Promise<FleetDelivery> {
  const pgsql = await startPostgres();
  const receiver = await startReceiver();
  const ms = Object.fromEntries(DRAINS.map((k) => [k, [] as number[]])) as Record<Drain, number[]>;
  say(`backlog of ${n} webhooks in ${lanesOf(n)} lanes (calls of 6); each PostgreSQL drain checked: every webhook once, each lane in order`);
  try {
    for (let round = 0; round < rounds; round++) {
      for (const kind of round % 2 === 0 ? DRAINS : [...DRAINS].reverse()) {
        const pgWorkers = WORKERS[kind];
        const t =
          kind === 'axios' ? await axiosDrain(n, receiver.url)
          : kind === 'sqlite' ? await sqliteDrain(n, receiver.url)
          : await postgresDrain(pgsql.url, n, receiver, ...pgWorkers!, (what) => say(`round ${round + 1} ${kind}: ${what}`));
        ms[kind].push(t);
        say(`round ${round + 1} backlog of ${n} ${kind}: ${t.toFixed(0)} ms (${((n / t) * 1000).toFixed(0)} webhooks/s)`);
      }
    }
  } finally {
    receiver.stop();
    pgsql.stop();
  }
  const drains = {} as Record<Drain, { rate: Spread; vsAxios: Spread }>;
  for (const kind of DRAINS) {
    drains[kind] = { rate: spread(ms[kind].map((t) => (n / t) * 1000)), vsAxios: spread(ms[kind].map((t, i) => ms.axios[i]! / t)) };
  }
  // Rates are n / ms: 4 workers over 1 is the inverse ratio of their times, round by round.
  return { drains, fourOverOne: { c16: pairedRatios(ms['postgres-1'], ms['postgres-4']), c4: pairedRatios(ms['postgres-1-c4'], ms['postgres-4-c4']) } };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rounds = Number(process.env['BENCH_FLEET_ROUNDS'] ?? 3);
  const seconds = Number(process.env['BENCH_TAKEOVER_SECONDS'] ?? 10);
  const backlog = Number(process.env['BENCH_FLEET_BACKLOG'] ?? 100_000);
  const say = (l: string): void => void process.stderr.write(`${l}\n`);
  const drains = backlog > 0 ? await fleetDelivery(rounds, backlog, say) : undefined;
  const r = await fleetTakeover(rounds, seconds, say);
  process.stdout.write(`${JSON.stringify({ ...drains, takeoverSeconds: r.takeoverSeconds, kill: { ...r.kill }, cut: { ...r.cut } })}\n`);
}
