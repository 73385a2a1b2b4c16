/**
 * The real daemon on `outbox.store: postgres` (issue #17 items 1, 2, 5): a fake AMI plays the
 * 100-call load trace, pbxhook queues every webhook in a throwaway PostgreSQL cluster on 127.0.0.1
 * and delivers it to a loopback receiver: exactly what `pbxhook replay` prints for that trace, each
 * once, each call in order, each saying which PBX it came from; /metrics and /status.json say it
 * too; `pbxhook outbox` reads the same database from --config; a restart resumes from it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeAmi } from './support/fakeAmiServer.js';
import {
  CLI, ROOT, cleanEnv, e2eSandbox, exitWithin, freePort, opsPort, replay, startDaemon, startReceiver, waitFor, writeConfig,
} from './support/e2e.js';
import { postgresRequirement, startPostgres, type TestPostgres } from './support/postgres.js';

const LOAD = path.join(ROOT, 'test/fixtures/asterisk/load.ami.gz');
const PBX_NAME = 'berlin-1';

const sandbox = e2eSandbox('pbxhook-e2e-pg-');

interface Row {
  webhook_id: string;
  pbx: string;
  endpoint: string;
  lane: string;
  seq: number;
  body: string;
  state: string;
}

async function rowsOf(url: string): Promise<Row[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<Row>('SELECT webhook_id, pbx, endpoint, lane, seq::int AS seq, body, state FROM webhooks ORDER BY id')).rows;
  } finally {
    await c.end();
  }
}

/** pbxhook.yaml on the database at `url`, this PBX named PBX_NAME. */
function configFor(amiPort: number, receiverPort: number, url: string): string {
  const ini = [
    '[crm-json]', `url = http://127.0.0.1:${receiverPort}/3cx`, 'schema = 3cx', '',
    '[crm-legacy]', `url = http://127.0.0.1:${receiverPort}/3cx-legacy`, 'schema = 3cx', 'variant = urlencoded', '',
  ].join('\n');
  const { yaml } = writeConfig(sandbox.tmp, amiPort, ['outbox:', '  store: postgres', `  url: ${url}`, 'retry:', '  schedule: [50ms, 50ms, 50ms]'], ini);
  writeFileSync(yaml, readFileSync(yaml, 'utf8').replace('pbx:\n', `pbx:\n  name: ${PBX_NAME}\n`));
  return yaml;
}

describe(`pbxhook run on outbox.store: postgres${postgresRequirement.note}`, { skip: postgresRequirement.skip }, () => {
  let server: TestPostgres;
  beforeAll(async () => {
    postgresRequirement.check();
    server = await startPostgres();
  });
  afterAll(() => server?.stop());

  it('delivers what replay prints, each once and each call in order, saying which PBX; metrics, status and the outbox CLI say it too', async () => {
    const url = server.createDatabase('e2e');
    const crm = await startReceiver();
    sandbox.defer(() => crm.close());
    const ami = await startFakeAmi({ trace: LOAD, username: 'admin', secret: 'labsecret', speed: 100 });
    sandbox.defer(() => ami.close());
    const yaml = configFor(ami.port, crm.port, url);
    const want = replay(LOAD, yaml);
    expect(want.length).toBeGreaterThan(500);

    const daemon = startDaemon(yaml);
    await ami.done;
    await waitFor(() => crm.ok().length >= want.length, () => `${crm.ok().length} of ${want.length} delivered\n${daemon.out.stderr.slice(-3000)}`, 50_000);

    // Exactly replay's webhooks per endpoint (as sets: calls interleave live), each webhook-id once.
    const rows = await rowsOf(url);
    for (const endpoint of ['crm-json', 'crm-legacy']) {
      const p = endpoint === 'crm-json' ? '/3cx' : '/3cx-legacy';
      expect(crm.ok(p).map((r) => r.body).sort(), endpoint).toEqual(want.filter((w) => w.endpoint === endpoint).map((w) => w.body).sort());
    }
    const ids = crm.ok().map((r) => String(r.headers['webhook-id']));
    expect(new Set(ids).size).toBe(ids.length);
    // Each call in order: a request of sequence s only after s-1 of its lane was delivered.
    const byId = new Map(rows.map((r) => [r.webhook_id, r]));
    const delivered = new Map<string, number>();
    for (const req of crm.requests) {
      const row = byId.get(String(req.headers['webhook-id']));
      expect(row, 'a request with a webhook-id the outbox does not hold').toBeDefined();
      expect(req.headers['webhook-sequence']).toBe(String(row!.seq));
      expect(req.headers['webhook-pbx']).toBe(PBX_NAME);
      const done = delivered.get(row!.lane) ?? 0;
      expect(row!.seq, `lane ${row!.lane}: seq ${row!.seq} before ${done + 1} was delivered`).toBeLessThanOrEqual(done + 1);
      if (req.status >= 200 && req.status < 300) delivered.set(row!.lane, Math.max(done, row!.seq));
    }
    const settled = await rowsOf(url);
    expect(settled.every((r) => r.pbx === PBX_NAME)).toBe(true);

    // Metrics and the status page name the PBX.
    const port = await opsPort(daemon);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`^pbxhook_outbox_depth\\{pbx="${PBX_NAME}"\\} \\d+$`, 'm'));
    const status = (await (await fetch(`http://127.0.0.1:${port}/status.json`)).json()) as Record<string, unknown>;
    expect(status['pbx']).toMatchObject({ name: PBX_NAME });

    // The outbox CLI reads the same database from the config, the URL never printed.
    const stats = spawnSync(process.execPath, [CLI, 'outbox', 'stats', '--config', yaml], { cwd: ROOT, env: cleanEnv(), encoding: 'utf8', timeout: 30_000 });
    expect(stats.status, stats.stderr).toBe(0);
    expect(stats.stdout).toContain('crm-json');
    expect(stats.stdout + stats.stderr).not.toContain(url);
    // A shared outbox's list names each row's PBX (issue #17).
    const list = spawnSync(process.execPath, [CLI, 'outbox', 'list', '--state', 'delivered', '--limit', '3', '--config', yaml], { cwd: ROOT, env: cleanEnv(), encoding: 'utf8', timeout: 30_000 });
    expect(list.status, list.stderr).toBe(0);
    const [header, ...listed] = list.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^pbx +id +state +endpoint +call /);
    expect(listed.length).toBeGreaterThan(0);
    for (const line of listed) expect(line.startsWith(`${PBX_NAME} `), line).toBe(true);

    daemon.child.kill('SIGTERM');
    expect(await exitWithin(daemon, 30_000), daemon.out.stderr.slice(-3000)).toEqual({ code: 0, signal: null });
    expect(daemon.out.stderr).not.toContain(url);
    expect((await rowsOf(url)).every((r) => r.state === 'delivered'), 'every row delivered').toBe(true);
  });

  it('a bad outbox.url exits 78 naming the file and key, never the URL', async () => {
    const yaml = configFor(await freePort(), await freePort(), 'mysql://root:s3cret-pw@127.0.0.1/x');
    const r = spawnSync(process.execPath, [CLI, 'run', '--config', yaml], { cwd: ROOT, env: cleanEnv(), encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(78);
    expect(r.stderr).toContain(`${yaml}: outbox.url: value must be a PostgreSQL URL`);
    expect(r.stderr).not.toContain('s3cret-pw');
  });
});
