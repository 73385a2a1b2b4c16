/**
 * `pbxhook deliver` workers on one PostgreSQL outbox (issue #17 item 4), real processes: a backlog
 * of lanes is shared by 3 workers without stepping on each other (every webhook once, each lane in
 * order), and a worker killed -9 mid-request loses its claims to the others after the attempt
 * timeout (every webhook arrives; one sent twice keeps its webhook-id; each lane still in order).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgStore } from '../src/outbox-pg/store.js';
import type { WebhookRequest } from '../src/emit/request.js';
import { CLI, ROOT, cleanEnv, e2eSandbox, startReceiver, waitFor, type Receiver } from './support/e2e.js';
import { postgresRequirement, startPostgres, type TestPostgres } from './support/postgres.js';

const sandbox = e2eSandbox('pbxhook-deliver-');
const LANES = 40;
const PER_LANE = 6;

/** LANES calls of PER_LANE webhooks, each body naming its lane and place. */
function backlog(url: string): WebhookRequest[][] {
  return Array.from({ length: LANES }, (_, lane) =>
    Array.from({ length: PER_LANE }, (_, n) => ({
      endpoint: 'crm', method: 'POST' as const, url, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ lane, n }), orderKey: `crm:call-${lane}`,
    })),
  );
}

/** Every lane's first deliveries in arrival order, and each body's webhook-ids. */
function arrivals(crm: Receiver): { lanes: Map<number, number[]>; ids: Map<string, Set<string>> } {
  const lanes = new Map<number, number[]>();
  const ids = new Map<string, Set<string>>();
  for (const r of crm.ok()) {
    const seen = ids.get(r.body);
    ids.set(r.body, new Set([...(seen ?? []), String(r.headers['webhook-id'])]));
    if (seen) continue;
    const { lane, n } = JSON.parse(r.body) as { lane: number; n: number };
    lanes.set(lane, [...(lanes.get(lane) ?? []), n]);
  }
  return { lanes, ids };
}

describe(`pbxhook deliver workers on one PostgreSQL outbox${postgresRequirement.note}`, () => {
  let pgsql: TestPostgres;
  beforeAll(async () => {
    postgresRequirement.check();
    pgsql = await startPostgres();
  });
  afterAll(() => pgsql?.stop());

  async function setUp(db: string, crmDelayMs: number) {
    const url = pgsql.createDatabase(db);
    const crm = await startReceiver(0, () => ({ status: 200, delayMs: crmDelayMs }));
    sandbox.defer(() => crm.close());
    const store = await PgStore.open(url, { pbx: 'pbx-a' });
    await store.commitPump({ enqueue: backlog(`http://127.0.0.1:${crm.port}/hook`), finished: [], liveState: new Map(), claims: [], holder: 'seed', leaseMs: 1_000 }, Date.now());
    await store.close();
    const dir = mkdtempSync(path.join(sandbox.tmp, 'w-'));
    writeFileSync(path.join(dir, 'webhooks.ini'), ['[crm]', `url = http://127.0.0.1:${crm.port}/hook`, 'schema = 3cx', ''].join('\n'));
    const yaml = path.join(dir, 'pbxhook.yaml');
    writeFileSync(yaml, [
      'pbx: { type: asterisk, username: u, secret: s, name: worker }', `state_dir: ${dir}/state`, 'webhooks: ./webhooks.ini', 'ops: { enabled: false }',
      'outbox:', '  store: postgres', `  url: ${url}`, 'delivery:', '  concurrency: 4',
      'retry:', '  timeout_ms: 1000', '  connect_timeout_ms: 500', '  schedule: [100ms, 100ms, 100ms]', '',
    ].join('\n'));
    const workers: ChildProcess[] = [];
    const start = (): ChildProcess => {
      const c = spawn(process.execPath, [CLI, 'deliver', '--config', yaml], { cwd: ROOT, env: cleanEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
      c.stderr!.resume();
      workers.push(c);
      sandbox.defer(async () => void c.kill('SIGKILL'));
      return c;
    };
    return { crm, start, workers };
  }

  it('three workers share the lanes: every webhook once, each lane in order', async () => {
    const { crm, start } = await setUp('share', 5);
    for (let i = 0; i < 3; i++) start();
    await waitFor(() => crm.ok().length >= LANES * PER_LANE, () => `${LANES * PER_LANE} webhooks (have ${crm.ok().length})`, 55_000);
    await new Promise((r) => setTimeout(r, 500)); // nothing more comes
    expect(crm.ok()).toHaveLength(LANES * PER_LANE);
    const { lanes, ids } = arrivals(crm);
    for (const [body, set] of ids) expect(set.size, body).toBe(1);
    expect(lanes.size).toBe(LANES);
    for (const [lane, ns] of lanes) expect(ns, `lane ${lane}`).toEqual([...Array(PER_LANE).keys()]);
  });

  it('a worker killed -9 mid-request: its claims come back to the others; nothing lost, each lane in order', async () => {
    const { crm, start } = await setUp('kill', 200);
    const victim = start();
    await waitFor(() => crm.requests.length >= 2, () => 'the first worker to have requests in flight', 30_000);
    start();
    start();
    victim.kill('SIGKILL');
    await waitFor(() => new Set(crm.ok().map((r) => r.body)).size >= LANES * PER_LANE, () => `every webhook (have ${new Set(crm.ok().map((r) => r.body)).size})`, 55_000);
    const { lanes, ids } = arrivals(crm);
    for (const [body, set] of ids) expect(set.size, `${body}: sent again with the same webhook-id`).toBe(1);
    for (const [lane, ns] of lanes) expect(ns, `lane ${lane}`).toEqual([...Array(PER_LANE).keys()]);
  }, 120_000); // its two waits (30 s + 55 s) report themselves before vitest's 60 s would
});
