/**
 * The fleet's operator edges without a database or a browser (issue #17): a standby says so on
 * /healthz, /status.json and /metrics (and is healthy), check-config points a delivery worker's
 * file without pbx: to --deliver, and one function names outbox.url's database wherever it is
 * said. The same with a real PostgreSQL and Chromium: test/80.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCheckConfigCommand } from '../src/commands/check-config.js';
import { databasePlaceOf } from '../src/config/database-place.js';
import { ConfigError, EX_CONFIG } from '../src/config/errors.js';
import { explainConfig } from '../src/config/explain.js';
import { parseConfig } from '../src/config/load.js';
import { waitingFor } from '../src/fleet/lease.js';
import { createMetrics } from '../src/ops/metrics.js';
import { type DaemonParts, health, metricSources, statusSnapshot } from '../src/ops/sources.js';
import { where } from '../src/outbox-pg/pool.js';
import { Pipeline } from '../src/pipeline.js';
import { CLI, cleanEnv, ensureBuilt } from './support/e2e.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'pbxhook-fleet-ops-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const PG_YAML = 'outbox: { store: postgres, url: "postgres://u:s3cr3t@127.0.0.1:5491/pbxhook" }\n';

describe("outbox.url's database, said one way (src/config/database-place.ts)", () => {
  it('host, socket folder, port and database; never the user or password', () => {
    expect(databasePlaceOf('postgres://u:s3cr3t@db.example:5432/pbxhook')).toBe('db.example:5432/pbxhook');
    expect(databasePlaceOf('postgres:///pbxhook?host=/var/run/postgresql&user=u&port=5491')).toBe('socket /var/run/postgresql:5491/pbxhook');
    expect(databasePlaceOf('postgres:///pbxhook')).toBe('localhost/pbxhook');
    expect(databasePlaceOf('not a url')).toBeUndefined();
  });

  it('the logs (pool.ts where) and check-config (explain.ts) say the same place', () => {
    const url = 'postgres:///pbxhook?host=/var/run/postgresql&user=u&password=s3cr3t';
    const cfg = parseConfig(`pbx: { type: asterisk, username: u, secret: s }\noutbox: { store: postgres, url: "${url}" }\n`, undefined, { yamlPath: '/etc/pbxhook/p.yaml' }, {});
    expect(where(url)).toBe('socket /var/run/postgresql/pbxhook');
    expect(explainConfig(cfg)).toContain(`outbox PostgreSQL ${where(url)}, shared`);
    expect(explainConfig(cfg) + where(url)).not.toContain('s3cr3t');
    expect(where('::')).toBe('the database of outbox.url');
  });
});

describe('check-config on a file without pbx: (a delivery worker\'s)', () => {
  const file = (name: string, text: string) => {
    const p = path.join(tmp, name);
    writeFileSync(p, text);
    return p;
  };
  const problemsOf = (argv: string[]): ConfigError => {
    try {
      runCheckConfigCommand(argv);
    } catch (err) {
      if (err instanceof ConfigError) return err;
      throw err;
    }
    throw new Error('check-config passed');
  };

  it('says the file is what pbxhook deliver expects and to check it with --deliver; exit 78', () => {
    const worker = file('worker.yaml', PG_YAML);
    const err = problemsOf([worker]);
    expect(err.exitCode).toBe(EX_CONFIG);
    expect(err.problems).toEqual([
      { file: worker, key: 'pbx', message: 'this config has no pbx: section, as pbxhook deliver expects (pbxhook run needs one); check it with --deliver' },
    ]);
    // …and with --deliver it passes (the output goes to stdout).
    const write = process.stdout.write;
    let out = '';
    process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
    try {
      expect(runCheckConfigCommand(['--deliver', worker])).toBe(0);
    } finally {
      process.stdout.write = write;
    }
    expect(out).toMatch(/pbx: none \(a file for pbxhook deliver[\s\S]*config OK\n$/);
  });

  it('a file wrong for deliver too: the hint, beside its other problems', () => {
    const broken = file('broken.yaml', PG_YAML + 'log: { level: chatty }\n');
    const err = problemsOf([broken]);
    expect(err.problems.map((p) => [p.key, p.message])).toEqual([
      ['pbx', 'this config has no pbx: section (pbxhook run needs one); for pbxhook deliver, check it with --deliver'],
      ['log.level', expect.stringContaining('chatty')],
    ]);
  });

  it('a pbx: section that is wrong is not taken for a missing one', () => {
    const err = problemsOf([file('wrong-pbx.yaml', 'pbx: { type: asterisk, username: u }\n')]);
    expect(err.message).not.toContain('--deliver');
  });

  it('the command exits 78 and prints the hint', () => {
    ensureBuilt();
    const r = spawnSync(process.execPath, [CLI, 'check-config', file('cli-worker.yaml', PG_YAML)], { env: cleanEnv(), encoding: 'utf8' });
    expect(r.status).toBe(78);
    expect(r.stderr).toContain('pbx: this config has no pbx: section, as pbxhook deliver expects');
  });
});

describe('a standby on /healthz, /status.json and /metrics', () => {
  const cfg = parseConfig(
    `pbx: { type: asterisk, host: 127.0.0.1, username: u, secret: s, name: berlin }\n${PG_YAML}standby: { enabled: true }\n`,
    undefined,
    { yamlPath: '/etc/pbxhook/p.yaml' },
    {},
  );
  /** The daemon's parts as src/daemon.ts hands them over, with the outbox's reads empty. */
  function parts(role: 'active' | 'standby', pbxState: DaemonParts['pbxState'] extends () => infer S ? S : never): DaemonParts {
    const store = { stateCounts: async () => new Map([['pending', 0]]), list: async () => [], recentDead: async () => [] };
    const worker = { stats: { outboxDepth: 0, pausedEndpoints: [] }, writeFailure: undefined };
    return {
      cfg, pipeline: new Pipeline(cfg), outbox: { store, worker } as unknown as DaemonParts['outbox'],
      pbxConnected: () => pbxState === 'connected', pbxState: () => pbxState, frameErrors: () => 0, attempts: new Map(), endpoints: () => [],
      role: () => role, waitingFor: () => waitingFor('10.0.0.7'),
    };
  }

  it('a waiting standby is healthy and says what it waits for; an active one not yet connected is not', () => {
    expect(health(parts('standby', 'standby'))).toMatchObject({
      ok: true, role: 'standby', pbx: 'standby', lease: "waiting for this PBX's lease, held by 10.0.0.7",
    });
    const active = health(parts('active', 'connecting'));
    expect(active).toMatchObject({ ok: false, role: 'active', pbx: 'connecting' });
    expect(active).not.toHaveProperty('lease');
  });

  it('/status.json says the role, the lease and the shared store (the console shows a PBX column then)', async () => {
    expect(await statusSnapshot(parts('standby', 'standby'), 0)).toMatchObject({
      role: 'standby', lease: "waiting for this PBX's lease, held by 10.0.0.7", outboxStore: 'postgres',
      pbx: { name: 'berlin', state: 'standby', connected: false },
    });
  });

  it('pbxhook_pbx_role: 1 for the role now, 0 for the other, under the PBX\'s label', async () => {
    const sample = async (d: DaemonParts) => {
      const text = await createMetrics(metricSources(d)).registry.metrics();
      return text.split('\n').filter((l) => l.startsWith('pbxhook_pbx_role{')).sort();
    };
    expect(await sample(parts('standby', 'standby'))).toEqual(['pbxhook_pbx_role{role="active",pbx="berlin"} 0', 'pbxhook_pbx_role{role="standby",pbx="berlin"} 1']);
    expect(await sample(parts('active', 'connected'))).toEqual(['pbxhook_pbx_role{role="active",pbx="berlin"} 1', 'pbxhook_pbx_role{role="standby",pbx="berlin"} 0']);
  });
});
