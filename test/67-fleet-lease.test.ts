/**
 * The standby lease (issue #17 item 3) on a real PostgreSQL: one holder per PBX name, the standby
 * takes over when the holder closes, when the server ends its session, and when the network between
 * them is cut (a proxy that swallows bytes: no FIN, no reset), and the holder hears of the loss.
 * No test times the takeover: waits are bounded generously, never asserted.
 */
import pg from 'pg';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { holdStandbyLease, type StandbyLease } from '../src/fleet/lease.js';
import { standbyPlaceOf } from '../src/fleet/standby.js';
import { leaseSessionOptions, leaseTiming } from '../src/fleet/lease-timing.js';
import { startCutProxy, type CutProxy } from './support/cutProxy.js';
import { postgresRequirement, startPostgres, type TestPostgres } from './support/postgres.js';

const log = pino({ level: 'silent' });

async function until(cond: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
const settled = <T>(p: Promise<T>): (() => boolean) => {
  let done = false;
  void p.then(() => (done = true));
  return () => done;
};

describe('lease timing (pure)', () => {
  it('the holder stops trusting its lease before the server can free it, and the standby asks within the takeover', () => {
    for (const seconds of [2, 3, 5, 10, 30, 120]) {
      const t = leaseTiming(seconds);
      const takeover = seconds * 1000;
      // The holder hears of a cut within one check plus its timeout, and never acts on a lease older than freshMs…
      expect(t.checkMs + t.checkTimeoutMs).toBeLessThanOrEqual(t.freshMs);
      // …while the server frees it no sooner than idle_session_timeout minus a check period after the last check.
      expect(t.freshMs).toBeLessThan(t.idleSessionMs - t.checkMs);
      expect(t.freshMs).toBeLessThan(t.keepaliveIdleS * 1000 + t.keepaliveCount * t.keepaliveIntervalS * 1000 - t.checkMs);
      // The lock is free within 0.7 T of a cut and asked for every poll: held within the takeover.
      expect(t.idleSessionMs + t.pollMs).toBeLessThanOrEqual(takeover);
      expect(t.pollMs).toBeLessThanOrEqual(1_000);
    }
    expect(leaseSessionOptions(leaseTiming(10))).toBe(
      '-c idle_session_timeout=7000 -c tcp_keepalives_idle=5 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=2 -c tcp_user_timeout=7000',
    );
  });
});

describe('standby config', () => {
  const yaml = (extra: string) => `pbx: { type: asterisk, username: u, secret: s, name: berlin }\n${extra}`;
  it('standby.enabled needs the PostgreSQL outbox, said with the file and key', () => {
    expect(() => parseConfig(yaml('standby: { enabled: true }\n'), undefined, { yamlPath: '/etc/pbxhook/p.yaml' }, {})).toThrow(
      /p\.yaml.*standby\.enabled.*needs outbox\.store: postgres/s,
    );
  });
  it('with it, the lease lives in outbox.url under pbx.name; takeover_seconds defaults to 10', () => {
    const cfg = parseConfig(yaml('outbox: { store: postgres, url: "postgres://u@127.0.0.1/db" }\nstandby: { enabled: true }\n'), undefined, { yamlPath: '/etc/pbxhook/p.yaml' }, {});
    expect(cfg.standby).toEqual({ enabled: true, takeoverSeconds: 10 });
    expect(standbyPlaceOf(cfg)).toEqual({ url: 'postgres://u@127.0.0.1/db', pbxName: 'berlin' });
    expect(standbyPlaceOf(parseConfig(yaml(''), undefined, { yamlPath: '/x.yaml' }, {}))).toBeUndefined();
  });
});

describe.skipIf(postgresRequirement.skip)(`standby lease on PostgreSQL${postgresRequirement.note}`, () => {
  let pgsql: TestPostgres;
  const leases: StandbyLease[] = [];
  const proxies: CutProxy[] = [];
  const lease = (url: string, pbxName: string, takeoverSeconds = 2): StandbyLease => {
    const l = holdStandbyLease({ url, pbxName, takeoverSeconds, log });
    leases.push(l);
    return l;
  };
  beforeAll(async () => {
    postgresRequirement.check();
    pgsql = await startPostgres();
  });
  afterEach(async () => {
    for (const l of leases.splice(0)) await l.close();
    for (const p of proxies.splice(0)) await p.close();
  });
  afterAll(() => pgsql?.stop());

  it('one holder per PBX name; the standby takes over when the holder gives the lease up', async () => {
    const a = lease(pgsql.url, 'pbx-a');
    await a.acquired;
    expect(a.role()).toBe('active');
    expect(a.fresh()).toBe(true);
    const b = lease(pgsql.url, 'pbx-a');
    const other = lease(pgsql.url, 'pbx-b');
    await other.acquired; // another PBX has a lease of its own
    // b has asked several times (pollMs is 400 ms at 2 s) and is still waiting.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(b.role()).toBe('standby');
    expect(b.fresh()).toBe(false);
    await a.close();
    await b.acquired;
    expect(b.role()).toBe('active');
  });

  it('the server ending the holder\'s session frees the lock: the holder is told, the standby takes over', async () => {
    const a = lease(pgsql.url, 'pbx-kill');
    await a.acquired;
    const b = lease(pgsql.url, 'pbx-kill');
    const admin = new pg.Client({ connectionString: pgsql.url });
    await admin.connect();
    try {
      const r = await admin.query("SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE application_name = 'pbxhook lease pbx-kill' AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)");
      expect(r.rows).toEqual([{ done: true }]);
    } finally {
      await admin.end();
    }
    const loss = await a.lost;
    expect(loss.reason).toMatch(/lease connection|liveness/);
    expect(a.role()).toBe('lost');
    expect(a.fresh()).toBe(false);
    await b.acquired;
    expect(b.role()).toBe('active');
  });

  it('a network cut: the holder stops trusting its lease, then the server ends the silent session and the standby takes over', async () => {
    const proxy = await startCutProxy(pgsql.port);
    proxies.push(proxy);
    const viaProxy = pgsql.url.replace(`:${pgsql.port}/`, `:${proxy.port}/`);
    const a = lease(viaProxy, 'pbx-cut');
    await a.acquired;
    const b = lease(pgsql.url, 'pbx-cut');
    // Fencing: whenever the standby gets the lock, the old holder no longer trusts its lease (by the
    // clocks of lease-timing.ts, whatever the scheduling: the server frees it 0.7 T after the last check at least).
    let holderTrustedAtTakeover: boolean | undefined;
    const bActive = settled(b.acquired.then(() => void (holderTrustedAtTakeover = a.fresh())));
    const aLost = settled(a.lost);
    proxy.cut();
    await until(aLost, 'the holder to hear of the cut');
    expect(a.fresh()).toBe(false);
    await until(bActive, 'the standby to take over after the server ended the silent session');
    expect(holderTrustedAtTakeover).toBe(false);
    expect(b.role()).toBe('active');
  });
});
