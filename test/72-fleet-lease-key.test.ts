/**
 * The standby lease's key (issue #17, follow-up): two PBX names whose 32-bit `hashtext` collides
 * get a lease each, and during an upgrade a daemon holding the older two-key lock and a new one
 * never both follow one PBX. And one function names the PBX for the rows and for the lease.
 * On a real throwaway PostgreSQL (test/support/postgres.ts); waits are bounded, never asserted.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { explainConfig } from '../src/config/explain.js';
import { parseConfig } from '../src/config/load.js';
import { pbxNameOf } from '../src/config/pbx-name.js';
import { holdStandbyLease, LEASE_LOCK_CLASS, type StandbyLease } from '../src/fleet/lease.js';
import { standbyPlaceOf } from '../src/fleet/standby.js';
import { postgresRequirement, startPostgres, type TestPostgres } from './support/postgres.js';

/** Found by `GROUP BY hashtext('pbx-'||i)` over 300k names; the test checks they still collide. */
const COLLIDING = ['pbx-6469', 'pbx-216197'] as const;

describe('the PBX name', () => {
  it('one function decides it for the rows and the lease: pbx.name, else the same default for both', () => {
    expect(pbxNameOf({ name: 'berlin-1' })).toBe('berlin-1');
    const fallback = pbxNameOf({});
    expect(fallback).toMatch(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/);
    const yaml = 'pbx: { type: asterisk, username: u, secret: s }\noutbox: { store: postgres, url: "postgres://u@127.0.0.1/db" }\nstandby: { enabled: true }\n';
    const cfg = parseConfig(yaml, undefined, { yamlPath: '/etc/pbxhook/p.yaml' }, {});
    expect(cfg.pbx.name).toBe(fallback);
    // A config built in code without pbx.name: the lease says what the rows say (it was 'pbx' vs the host).
    const { name: _dropped, ...unnamed } = cfg.pbx;
    expect(standbyPlaceOf({ ...cfg, pbx: unnamed })?.pbxName).toBe(fallback);
  });
});

describe('a delivery worker\'s file and check-config (README "Delivery workers", followed on Debian)', () => {
  const src = (deliverOnly: boolean) => ({ yamlPath: '/etc/pbxhook/deliver.yaml', deliverOnly });
  const worker = 'outbox: { store: postgres, url: "postgres:///pbxhook?host=/var/run/postgresql&user=pbxhook&port=5491" }\n';
  it('pbxhook deliver reads a file without pbx: (no AMI secret on a worker host); pbxhook run still needs it', () => {
    const cfg = parseConfig(worker, undefined, src(true), {});
    expect(cfg.deliverOnly).toBe(true);
    expect(explainConfig(cfg)).toMatch(/^pbx: none \(a file for pbxhook deliver/m);
    expect(() => parseConfig(worker, undefined, src(false), {})).toThrow(/deliver\.yaml: pbx: missing/);
    // A file with pbx: is read as it is, worker or not.
    expect(parseConfig(`pbx: { type: asterisk, username: u, secret: s, name: b1 }\n${worker}`, undefined, src(true), {}).deliverOnly).toBeUndefined();
  });
  it('check-config names a local socket and its port, not "localhost"; and says standby is on', () => {
    const cfg = parseConfig(`pbx: { type: asterisk, username: u, secret: s }\n${worker}standby: { enabled: true }\n`, undefined, src(false), {});
    const text = explainConfig(cfg);
    expect(text).toContain('outbox PostgreSQL socket /var/run/postgresql:5491/pbxhook, shared (url ***)');
    expect(text).toMatch(/^standby: on; .*takeover within 10 s$/m);
  });
});

describe('pbxhook outbox on a PostgreSQL outbox it cannot open', () => {
  it('says why in one line and exits 73, never printing the URL (it was a stack trace, exit 1)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'pbxhook-72-'));
    try {
      const yaml = path.join(dir, 'pbxhook.yaml');
      // Port 1 on loopback: nothing listens, the connection is refused at once.
      writeFileSync(yaml, 'pbx: { type: asterisk, username: u, secret: s }\noutbox: { store: postgres, url: "postgres://pbxhook:hunter2-secret@127.0.0.1:1/pbxhook" }\n');
      const r = spawnSync(process.execPath, [path.join(import.meta.dirname, '../dist/cli.js'), 'outbox', 'stats', '--config', yaml], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status).toBe(73);
      expect(r.stderr).toMatch(/^pbxhook outbox: cannot open the outbox on PostgreSQL: .*ECONNREFUSED/);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toContain('hunter2');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(postgresRequirement.skip)(`standby lease key on PostgreSQL${postgresRequirement.note}`, () => {
  let pgsql: TestPostgres;
  let admin: pg.Client;
  const leases: StandbyLease[] = [];
  const warnings: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(JSON.parse(line) as Record<string, unknown>) });
  const lease = (pbxName: string): StandbyLease => {
    const l = holdStandbyLease({ url: pgsql.url, pbxName, takeoverSeconds: 2, log });
    leases.push(l);
    return l;
  };
  /** A session as a daemon from before the 64-bit key holds its lease: the two-key lock, under its session name. */
  const oldDaemon = async (pbxName: string): Promise<{ held: boolean; client: pg.Client }> => {
    const client = new pg.Client({ connectionString: pgsql.url, application_name: `pbxhook lease ${pbxName}` });
    await client.connect();
    const r = await client.query<{ held: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS held', [LEASE_LOCK_CLASS, pbxName]);
    return { held: r.rows[0]!.held, client };
  };
  const bounded = <T>(p: Promise<T>, ms: number): Promise<T | 'waiting'> =>
    Promise.race([p, new Promise<'waiting'>((r) => setTimeout(() => r('waiting'), ms))]);

  beforeAll(async () => {
    postgresRequirement.check();
    pgsql = await startPostgres();
    admin = new pg.Client({ connectionString: pgsql.url });
    await admin.connect();
  });
  afterEach(async () => {
    for (const l of leases.splice(0)) await l.close();
  });
  afterAll(async () => {
    await admin?.end();
    pgsql?.stop();
  });

  it('two names whose hashtext collides each get a lease', async () => {
    const h = await admin.query<{ a: number; b: number }>('SELECT hashtext($1) AS a, hashtext($2) AS b', [...COLLIDING]);
    expect(h.rows[0]!.a).toBe(h.rows[0]!.b);
    const a = lease(COLLIDING[0]);
    await a.acquired;
    const b = lease(COLLIDING[1]);
    expect(await bounded(b.acquired, 10_000)).not.toBe('waiting');
    expect([a.role(), b.role()]).toEqual(['active', 'active']);
  });

  it('an older daemon following this PBX keeps the new one waiting, said once; when it stops, the new one follows', async () => {
    const old = await oldDaemon('pbx-upgrade');
    expect(old.held).toBe(true);
    const fresh = lease('pbx-upgrade');
    expect(await bounded(fresh.acquired, 2_000)).toBe('waiting');
    expect(fresh.role()).toBe('standby');
    expect(warnings.filter((w) => w['code'] === 'PBXHOOK_LEASE_OLD_HOLDER')).toHaveLength(1);
    await old.client.end();
    await fresh.acquired;
    expect(fresh.role()).toBe('active');
  });

  it('a new daemon following this PBX holds the older lock too: an older standby keeps waiting', async () => {
    const fresh = lease('pbx-upgrade-2');
    await fresh.acquired;
    const old = await oldDaemon('pbx-upgrade-2');
    expect(old.held).toBe(false);
    await old.client.end();
  });

  it('the older lock held for another PBX whose hashtext collides does not stop this one', async () => {
    const old = await oldDaemon(COLLIDING[0]);
    expect(old.held).toBe(true);
    const other = lease(COLLIDING[1]);
    await other.acquired;
    expect(other.role()).toBe('active');
    await old.client.end();
  });
});
