/**
 * Issue #17: where a PostgreSQL drain's time goes, 1 worker against 4, and two builds side by side.
 * One throwaway cluster (pg_stat_statements loaded), one receiver process; each build drains from a
 * database of its own (a newer build's migration would make an older one refuse the schema), the
 * runs interleaved, the order reversed every other round. Per drain: wall time; CPU seconds of each
 * worker process, of PostgreSQL (its live backends by kind, plus the children that exited), of the
 * receiver and of this process; how busy the machine's cores were (/proc/stat); the statements'
 * costs (pg_stat_statements) and what the workers' backends waited on (pg_stat_activity sampled
 * every 50 ms). Every arrival is checked (once each, lanes in order), as bench/fleet.ts does.
 *   node dist-bench/bench/fleet-profile.js BACKLOG ROUNDS WORKERS(1,4) NAME=ROOT [NAME=ROOT…]
 *   BENCH_WORKER_CONCURRENCY: each worker's `delivery.concurrency` (16); BENCH_WORKER_NODE_ARGS:
 *   node's options for each worker (`--cpu-prof --cpu-prof-dir=DIR`; the workers are then stopped
 *   with SIGTERM, so that they write their profiles).
 * ROOT is a built checkout (dist/ and node_modules); its workers run `ROOT/dist/cli.js deliver`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startPostgres } from '../test/support/postgres.js';
import { startReceiver } from './delivery.js';
import { CONCURRENCY, type SeedStore, checkArrivals, receivedIds, seedBacklog, untilArrived, untilDrained, whatIsLeft, workerConfig } from './fleet-deliver.js';

const TICK = 100; // USER_HZ on Linux
/** BENCH_WORKER_NODE_ARGS: node's own options for each worker (`--cpu-prof --cpu-prof-dir=DIR`). */
const workerNodeArgs = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);

/** utime + stime (and the reaped children's, `withChildren`) of a process, in seconds. */
function cpuOf(pid: number, withChildren = false): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields from 3 (state): utime is 14 → index 11, stime 12, cutime 13, cstime 14
    const own = Number(f[11]) + Number(f[12]);
    return (withChildren ? own + Number(f[13]) + Number(f[14]) : own) / TICK;
  } catch {
    return 0;
  }
}

function children(ppid: number): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) === ppid) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

function title(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}

/** PostgreSQL's CPU: the postmaster with its reaped children, and each live child by kind. */
function postgresCpu(postmaster: number): Map<string, number> {
  const m = new Map<string, number>([['postmaster+exited', cpuOf(postmaster, true)]]);
  for (const pid of children(postmaster)) {
    const t = title(pid);
    const kind = /pbxhook pbxhook|pbxhook \w+ 127/.test(t) ? 'backends' : t.replace(/^postgres: /, '').split(' ').slice(0, 2).join(' ');
    m.set(kind, (m.get(kind) ?? 0) + cpuOf(pid));
  }
  return m;
}

/** Every process's CPU now (pid → [seconds, its command]): what else ran during a drain. */
function everyone(): Map<number, [number, string]> {
  const m = new Map<number, [number, string]>();
  for (const d of readdirSync('/proc')) if (/^\d+$/.test(d)) m.set(Number(d), [cpuOf(Number(d), true), title(Number(d)).slice(0, 60)]);
  return m;
}

function machine(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - f[4]!, total };
}

async function seed(root: string, dbUrl: string, n: number, url: string): Promise<void> {
  const { PgStore } = (await import(join(root, 'dist/outbox-pg/store.js'))) as { PgStore: { open(u: string, o: object): Promise<SeedStore> } };
  await seedBacklog(await PgStore.open(dbUrl, { pbx: 'bench' }), n, url);
}

const f1 = (x: number) => x.toFixed(1);

async function drain(name: string, root: string, dbUrl: string, n: number, receiver: { url: string; proc: ChildProcess }, workers: number, postmaster: number, say: (l: string) => void): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'pbxhook-fleet-profile-'));
  const db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  const kids: ChildProcess[] = [];
  try {
    await db.query('DELETE FROM webhooks').catch(() => undefined);
    await db.query('DELETE FROM attempts').catch(() => undefined);
    await db.query('VACUUM ANALYZE').catch(() => undefined);
    await receivedIds(receiver.proc);
    await seed(root, dbUrl, n, receiver.url);
    await db.query('SELECT pg_stat_statements_reset()');
    const yaml = workerConfig(dir, dbUrl, receiver.url, Number(process.env.BENCH_WORKER_CONCURRENCY ?? CONCURRENCY));
    const pg0 = postgresCpu(postmaster);
    const rc0 = cpuOf(receiver.proc.pid!);
    const me0 = process.cpuUsage();
    const all0 = everyone();
    const m0 = machine();
    const t0 = performance.now();
    for (let w = 0; w < workers; w++) kids.push(spawn(process.execPath, [...workerNodeArgs, join(root, 'dist/cli.js'), 'deliver', '--config', yaml], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] }));
    const waits = new Map<string, number>();
    let samples = 0;
    let sampling = true;
    // What the workers' backends are doing, every 50 ms (bounded: 10 minutes) until the last arrival.
    const sampler = (async () => {
      const spy = new pg.Client({ connectionString: dbUrl });
      await spy.connect();
      for (let i = 0; i < 12_000 && sampling; i++) {
        const { rows } = await spy.query<{ w: string; q: string }>(
          `SELECT coalesce(wait_event_type || ':' || wait_event, 'cpu') AS w, left(regexp_replace(query, '\\s+', ' ', 'g'), 40) AS q
           FROM pg_stat_activity WHERE application_name LIKE 'pbxhook%' AND state = 'active'`,
        );
        samples++;
        for (const r of rows) waits.set(`${r.w} ${r.q}`, (waits.get(`${r.w} ${r.q}`) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, 50));
      }
      await spy.end();
    })();
    // PROFILE_ANALYZE_AFTER_MS: an ANALYZE of the table that long into the drain, as autovacuum's may come (plans made afresh).
    const analyzeAfter = Number(process.env['PROFILE_ANALYZE_AFTER_MS'] ?? 0);
    const analyzer = analyzeAfter > 0 ? setTimeout(() => void db.query(process.env['PROFILE_ANALYZE_SQL'] ?? 'ANALYZE webhooks').then(() => say('   (ANALYZE webhooks done mid-drain)')), analyzeAfter) : undefined;
    const ms = await untilArrived(receiver.proc, n, t0, () => whatIsLeft(db));
    clearTimeout(analyzer);
    const workerCpu = kids.map((k) => cpuOf(k.pid!));
    sampling = false;
    await sampler;
    const m1 = machine();
    const all1 = everyone();
    const others = [...all1].map(([pid, [c, t]]) => [c - (all0.get(pid)?.[0] ?? 0), pid, t] as const).sort((a, b) => b[0] - a[0]).slice(0, 8);
    const me = process.cpuUsage(me0);
    const rc = cpuOf(receiver.proc.pid!) - rc0;
    const pg1 = postgresCpu(postmaster);
    let pgTotal = 0;
    const pgParts: string[] = [];
    for (const [k, v] of pg1) {
      const d = v - (pg0.get(k) ?? 0);
      pgTotal += d;
      if (Math.abs(d) >= 0.05) pgParts.push(`${k} ${f1(d)}`);
    }
    const wk = workerCpu.reduce((a, b) => a + b, 0);
    const busy = (m1.busy - m0.busy) / (m1.total - m0.total);
    say(
      `${name} ${workers}w: ${ms.toFixed(0)} ms, ${((n / ms) * 1000).toFixed(0)}/s | cpu s: workers ${workerCpu.map(f1).join('+')}=${f1(wk)} postgres ${f1(pgTotal)} (${pgParts.join(', ')}) receiver ${f1(rc)} bench ${f1((me.user + me.system) / 1e6)} | machine busy ${(busy * 100).toFixed(0)}% of 2 cores | cpu µs/webhook: workers ${((wk * 1e6) / n).toFixed(0)} postgres ${((pgTotal * 1e6) / n).toFixed(0)}`,
    );
    const { rows: st } = await db.query(
      `SELECT calls, round(total_exec_time)::int AS ms, round(total_plan_time)::int AS plan, plans, round(mean_exec_time::numeric, 3) AS mean, round(max_exec_time)::int AS max, rows, shared_blks_hit AS hit, left(regexp_replace(query, '\\s+', ' ', 'g'), 70) AS q
       FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY total_exec_time DESC LIMIT 12`,
    );
    say(`   every process (with reaped children): ${others.map(([c, pid, t]) => `${pid} ${f1(c)} ${t.slice(0, 40)}`).join(' | ')}`);
    const [, , , , , , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).map(Number);
    say(`   /proc/stat since boot: irq ${irq} softirq ${softirq} steal ${steal}`);
    const { rows: tab } = await db.query(
      `SELECT n_live_tup, n_dead_tup, autovacuum_count AS autovacuums, autoanalyze_count AS autoanalyzes FROM pg_stat_user_tables WHERE relname = 'webhooks'`,
    );
    say(`   webhooks table: ${JSON.stringify(tab[0])}`);
    for (const r of st) say(`   stmt ${String(r.ms).padStart(6)} ms plan ${r.plan} ms ${r.plans} plans ${String(r.calls).padStart(7)} calls mean ${r.mean} max ${r.max} ms rows ${r.rows} hit ${r.hit} | ${r.q}`);
    const top = [...waits].sort((a, b) => b[1] - a[1]).slice(0, 8);
    say(`   active backends per sample: ${f1([...waits.values()].reduce((a, b) => a + b, 0) / Math.max(1, samples))} (${samples} samples)`);
    for (const [k, v] of top) say(`   wait ${String(v).padStart(5)} ${k}`);
    await untilDrained(db);
    // A failed check is reported and the runs go on: the figures before it stand.
    await checkArrivals(db, await receivedIds(receiver.proc)).catch((err: Error) => say(`   ARRIVALS CHECK FAILED: ${err.message}`));
    return ms;
  } finally {
    // A profiled worker writes its profile only when it exits of itself: stop it gently first.
    if (workerNodeArgs.length > 0) {
      await Promise.all(kids.map((c) => new Promise((done) => (c.exitCode !== null ? done(null) : (c.once('exit', done), c.kill('SIGTERM'))))));
    }
    for (const c of kids) c.kill('SIGKILL');
    await db.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [backlog = '20000', rounds = '2', workerList = '1,4', ...builds] = process.argv.slice(2);
  const n = Number(backlog);
  const variants = builds.map((b) => b.split('=') as [string, string]);
  if (variants.length === 0) variants.push(['this', process.cwd()]);
  const say = (l: string): void => void process.stderr.write(`${l}\n`);
  const cluster = await startPostgres(['shared_preload_libraries=pg_stat_statements', 'pg_stat_statements.track=all', 'pg_stat_statements.track_planning=on', ...(process.env['PROFILE_PG_SETTINGS'] ?? '').split(' ').filter(Boolean)]);
  const receiver = await startReceiver();
  try {
    // The postmaster: the parent of any backend.
    const c0 = new pg.Client({ connectionString: cluster.url });
    await c0.connect();
    const backend = (await c0.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const bstat = readFileSync(`/proc/${backend}/stat`, 'utf8');
    await c0.end();
    const postmaster = Number(bstat.slice(bstat.lastIndexOf(')') + 2).split(' ')[1]);
    const urls = new Map<string, string>();
    for (const [name] of variants) {
      const url = cluster.createDatabase(`v_${name}`);
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query('CREATE EXTENSION pg_stat_statements');
      await c.end();
      urls.set(name, url);
    }
    const runs = workerList.split(',').map(Number).flatMap((w) => variants.map(([name, root]) => ({ name, root, w })));
    for (let round = 0; round < Number(rounds); round++) {
      for (const r of round % 2 === 0 ? runs : [...runs].reverse()) {
        await drain(r.name, r.root, urls.get(r.name)!, n, receiver, r.w, postmaster, (l) => say(`round ${round + 1} ${l}`));
      }
    }
  } finally {
    // The log is read in its own try: the cluster and the receiver are stopped whatever it throws.
    if (process.env['PROFILE_PG_LOG']) {
      try {
        const c = new pg.Client({ connectionString: cluster.url });
        await c.connect();
        const dataDir = (await c.query<{ d: string }>("SELECT current_setting('data_directory') AS d")).rows[0]!.d;
        await c.end();
        process.stderr.write(readFileSync(join(dataDir, '..', 'log'), 'utf8').split('\n').filter((l) => /duration|plan|->|Limit|Join|Scan|Sort|Hash|Filter|Cond/.test(l)).slice(0, 200).join('\n') + '\n');
      } catch (err) {
        process.stderr.write(`the cluster's log could not be read: ${String(err)}\n`);
      }
    }
    receiver.stop();
    cluster.stop();
  }
}
