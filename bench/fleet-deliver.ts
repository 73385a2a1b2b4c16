/**
 * Issue #17 item 6: a backlog of N webhooks (calls of 6) drained by 1 and by 4 `pbxhook deliver`
 * processes from one PostgreSQL outbox, against the same backlog drained from SQLite by one process
 * and sent by bare axios. Each run: a fresh backlog, the receiver in its own process (delivery.ts),
 * time from the workers' spawn to the last webhook delivered (so a worker's start-up, ~0.3 s, is in).
 *
 * Every call is a lane of its own, so the backlog has N / 6 lanes: many more than the 4 × 16 the
 * workers can hold in flight. (With fewer lanes than that, more workers could not help: a lane is
 * one request at a time.) After each PostgreSQL drain the receiver's webhook-ids are checked
 * against the outbox: each webhook arrived exactly once, each lane's in its order (`checkArrivals`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { openOutbox, openStore } from '../src/deliver/outbox.js';
import { PgStore } from '../src/outbox-pg/store.js';
import type { Pump } from '../src/deliver/store.js';
import { bareAxios, webhooks } from './delivery.js';

/** Calls of 6 webhooks each (delivery.ts `webhooks`), each call one lane. */
export const lanesOf = (n: number): number => Math.ceil(n / 6);

/** Slots per process (`delivery.concurrency`), and bare axios's connections. */
export const CONCURRENCY = 16;

/** The config a worker reads: the shared outbox and one endpoint at the receiver, `slots` at a time. */
export function workerConfig(dir: string, dbUrl: string, url: string, slots: number): string {
  writeFileSync(join(dir, 'webhooks.ini'), ['[crm]', `url = ${url}`, 'schema = 3cx', ''].join('\n'));
  const yaml = join(dir, 'pbxhook.yaml');
  writeFileSync(
    yaml,
    ['pbx: { type: asterisk, username: u, secret: s, name: bench }', `state_dir: ${dir}/state`, 'webhooks: ./webhooks.ini', 'ops: { enabled: false }',
      'log: { level: warn }', 'outbox:', '  store: postgres', `  url: ${dbUrl}`, 'delivery:', `  concurrency: ${slots}`, ''].join('\n'),
  );
  return yaml;
}

/** What seeding needs of a store: main's PgStore, or another build's (bench/fleet-profile.ts). */
export interface SeedStore {
  commitPump(p: Pump, now: number): Promise<unknown>;
  close(): Promise<void>;
}

/** A backlog of n (calls of 6), due a minute ago, written 6,000 at a time. */
export async function seedBacklog(store: SeedStore, n: number, url: string): Promise<void> {
  const reqs = webhooks(n, url, `b${Date.now()}-`);
  const at = Date.now() - 60_000;
  for (let i = 0; i < n; i += 6_000) {
    const enqueue = [];
    for (let j = i; j < Math.min(n, i + 6_000); j += 6) enqueue.push(reqs.slice(j, j + 6));
    await store.commitPump({ enqueue, finished: [], liveState: new Map(), claims: [], holder: 'seed', leaseMs: 60_000 }, at);
  }
  await store.close();
}

/** Asks the receiver (receiver.ts) one line on its stdin and reads the value of its one-line answer. */
function askReceiver(receiver: ChildProcess, question: 'ids' | 'count'): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const take = (d: Buffer) => {
      text += String(d);
      if (!text.endsWith('\n')) return;
      receiver.stdout!.off('data', take);
      resolve(text.slice(text.indexOf(`${question} `) + question.length + 1));
    };
    receiver.stdout!.on('data', take);
    receiver.stdin!.write(`${question}\n`);
  });
}

/** The webhook-ids the receiver got since it was last asked, in arrival order. */
export const receivedIds = async (receiver: ChildProcess): Promise<string[]> => JSON.parse(await askReceiver(receiver, 'ids')) as string[];

/** How many requests the receiver has answered since it started. */
const receivedCount = async (receiver: ChildProcess): Promise<number> => Number(await askReceiver(receiver, 'count'));

/**
 * ms from t0 until the receiver has answered n more requests (the last webhook delivered), asked
 * every 50 ms. The receiver is asked, not the outbox: counting the undelivered rows every 50 ms
 * cost PostgreSQL 0.7-1.4 s of CPU in a 20k drain (4.5-6 ms a count, pg_stat_statements), 10-20%
 * of what the drain itself cost it, on the 2 cores the workers share (bench/fleet-profile.ts).
 * Bounded: 10 minutes at most; 30 s without an arrival is an error, not a figure.
 */
export async function untilArrived(receiver: ChildProcess, n: number, t0: number, left: () => Promise<string>): Promise<number> {
  const start = await receivedCount(receiver);
  let last = 0;
  let progressAt = performance.now();
  for (let i = 0; i < 12_000; i++) {
    const got = (await receivedCount(receiver)) - start;
    if (got >= n) return performance.now() - t0;
    if (got > last) [last, progressAt] = [got, performance.now()];
    if (performance.now() - progressAt > 30_000) throw new Error(`pbxhook deliver sent nothing for 30 s (${n - got} of ${n} left: ${await left()})`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`pbxhook deliver did not finish in 10 minutes`);
}

/** After the last arrival, the outbox records it (a pump later): waits, untimed, until no row is undelivered. */
export async function untilDrained(db: pg.Client): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await db.query<{ n: string }>("SELECT count(*) AS n FROM webhooks WHERE state IN ('pending', 'in_flight', 'failed_waiting')");
    if (Number(rows[0]!.n) === 0) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('every webhook arrived, but the outbox still holds undelivered rows after 10 s');
}

/**
 * Throws unless every webhook of the outbox arrived exactly once and each lane's arrived in its
 * order (seq): what the workers promise, checked from the receiver's side.
 */
export async function checkArrivals(db: pg.Client, arrived: readonly string[]): Promise<void> {
  const { rows } = await db.query<{ webhook_id: string; lane: string; seq: number }>('SELECT webhook_id, lane, seq::int AS seq FROM webhooks');
  const known = new Map(rows.map((r) => [r.webhook_id, r]));
  const seen = new Set<string>();
  const lastSeq = new Map<string, number>();
  for (const id of arrived) {
    const row = known.get(id);
    if (row === undefined) throw new Error(`webhook ${id} arrived but is not in the outbox`);
    if (seen.has(id)) throw new Error(`webhook ${id} arrived twice`);
    seen.add(id);
    if ((lastSeq.get(row.lane) ?? 0) > row.seq) throw new Error(`lane ${row.lane}: seq ${row.seq} arrived after seq ${lastSeq.get(row.lane)}`);
    lastSeq.set(row.lane, row.seq);
  }
  if (seen.size !== rows.length) throw new Error(`${rows.length - seen.size} of ${rows.length} webhooks never arrived`);
}

/**
 * Why a drain stopped, from the rows left: per state, how many, how many lane heads, when the
 * soonest is due and the latest lease ends (ms from now), their holders, and their last errors.
 */
export async function whatIsLeft(db: pg.Client): Promise<string> {
  const now = Date.now();
  const { rows } = await db.query(
    `SELECT state, count(*)::int AS rows, min(next_at - $1)::int AS due_in_ms, max(claim_until - $1)::int AS lease_left_ms,
       count(DISTINCT claimed_by)::int AS holders, max(attempts)::int AS most_attempts,
       (SELECT string_agg(DISTINCT coalesce(a.error_code, a.outcome), ',') FROM attempts a JOIN webhooks x ON x.id = a.webhook
         WHERE x.state = w.state AND a.outcome IS DISTINCT FROM 'delivered') AS errors
     FROM webhooks w WHERE state IN ('pending', 'in_flight', 'failed_waiting') GROUP BY state`,
    [now],
  );
  return JSON.stringify(rows);
}

/**
 * The autovacuums and autoanalyzes of the outbox's tables so far: one during a drain takes CPU
 * from it (the statistics collector reports them within a second or so).
 */
async function vacuumsOf(db: pg.Client): Promise<[number, number]> {
  const { rows } = await db.query<{ v: string; a: string }>(
    `SELECT sum(autovacuum_count) AS v, sum(autoanalyze_count) AS a FROM pg_stat_user_tables WHERE relname IN ('webhooks', 'attempts', 'lanes')`,
  );
  return [Number(rows[0]!.v), Number(rows[0]!.a)];
}

/**
 * ms for `workers` deliver processes to send a fresh backlog of n from PostgreSQL; then checks
 * what the receiver got (checkArrivals).
 */
export async function postgresDrain(
  dbUrl: string,
  n: number,
  receiver: { url: string; proc: ChildProcess },
  workers: number,
  slots = CONCURRENCY,
  note?: (what: string) => void,
): Promise<number> {
  const url = receiver.url;
  const dir = mkdtempSync(join(tmpdir(), 'pbxhook-fleet-bench-'));
  const db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  const children: ChildProcess[] = [];
  try {
    await db.query('DELETE FROM webhooks').catch(() => undefined); // a fresh backlog (the table exists once migrated)
    await receivedIds(receiver.proc); // forget the runs before
    await seedBacklog(await PgStore.open(dbUrl, { pbx: 'bench' }), n, url);
    const yaml = workerConfig(dir, dbUrl, url, slots);
    const vacuumsBefore = await vacuumsOf(db);
    const t0 = performance.now();
    for (let w = 0; w < workers; w++) children.push(spawn(process.execPath, ['dist/cli.js', 'deliver', '--config', yaml], { stdio: ['ignore', 'ignore', 'inherit'] }));
    const ms = await untilArrived(receiver.proc, n, t0, () => whatIsLeft(db));
    note?.(`autovacuum/autoanalyze runs during the drain: ${await vacuumsOf(db).then((v) => v.map((x, i) => x - vacuumsBefore[i]!).join('/'))}`);
    await untilDrained(db);
    await checkArrivals(db, await receivedIds(receiver.proc));
    return ms;
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await db.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** ms for one process to send a fresh backlog of n from SQLite (the daemon's worker, no PBX). */
export async function sqliteDrain(n: number, url: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'pbxhook-fleet-bench-'));
  const seed = openStore(dir);
  const reqs = webhooks(n, url, 'old');
  for (let i = 0; i < n; i += 6) seed.insert(reqs.slice(i, i + 6), Date.now() - 60_000);
  seed.close();
  let delivered = 0;
  let done: () => void = () => undefined;
  const all = new Promise<void>((r) => (done = r));
  const endpoint = { name: 'crm', enabled: true, schema: '3cx', variant: 'json', url, method: 'POST', events: [], recordingUrl: 'x/{file}' };
  const delivery = {
    schedule: [100, 1000], jitter: 0, retryAfterMaxMs: 1000, connectTimeoutMs: 5000, timeoutMs: 10_000, concurrency: CONCURRENCY,
    pauseAfterMs: 600_000, probeEveryMs: 60_000, stopTimeoutMs: 5000, maxRows: 1_000_000, maxAgeMs: 86_400_000, keepDeliveredMs: 86_400_000, keepDeadMs: 86_400_000,
  };
  const t0 = performance.now();
  const box = await openOutbox({ stateDir: dir, delivery, endpoints: [endpoint as never] }, pino({ level: 'silent' }), (_e, outcome) => {
    if (outcome === 'delivered' && ++delivered === n) done();
  });
  await box.worker.start();
  await all;
  const ms = performance.now() - t0;
  await box.close();
  rmSync(dir, { recursive: true, force: true });
  return ms;
}

/** ms for bare axios to send n with as many connections as one worker's concurrency. */
export async function axiosDrain(n: number, url: string): Promise<number> {
  return (await bareAxios(n, url, CONCURRENCY)).ms;
}
