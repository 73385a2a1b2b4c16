/**
 * Two real `pbxhook run` for one PBX with `standby.enabled` (issue #17 items 3, 5): one holds the
 * lease and follows the fake AMI, the other waits, healthy, saying `role: standby`; kill -9 of the
 * active one and the standby logs in; the server ending the active one's lease session fences it
 * (it stops following the PBX and exits 75). The takeover time is printed, never asserted beyond a
 * bound that cannot flake.
 */
import path from 'node:path';
import pg from 'pg';
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { e2eSandbox, exitWithin, healthz, opsPort, startDaemon, startReceiver, waitFor, writeConfig, type Daemon } from './support/e2e.js';
import { startFakeAmi } from './support/fakeAmiServer.js';
import { postgresRequirement, startPostgres, type TestPostgres } from './support/postgres.js';

const TRACE = path.join(import.meta.dirname, 'fixtures/asterisk/in-queue-answered.ami');
const sandbox = e2eSandbox('pbxhook-standby-');

const said = (d: Daemon, msg: string) => d.logs().find((l) => l.msg === msg);
const HELD = 'standby lease held: this daemon follows the PBX';
const CONNECTED = 'connected to Asterisk AMI';

describe.skipIf(postgresRequirement.skip)(`pbxhook run with a standby${postgresRequirement.note}`, () => {
  let pgsql: TestPostgres;
  beforeAll(async () => {
    postgresRequirement.check();
    pgsql = await startPostgres();
  });
  afterAll(() => pgsql?.stop());

  /** Two daemons for one PBX, A started first and active, B standing by. */
  async function pair() {
    const ami = await startFakeAmi({ trace: TRACE, username: 'admin', secret: 'labsecret' });
    sandbox.defer(() => ami.close());
    const crm = await startReceiver();
    sandbox.defer(() => crm.close());
    const ini = ['[crm]', `url = http://127.0.0.1:${crm.port}/3cx`, 'schema = 3cx', ''].join('\n');
    const extra = ['outbox:', '  store: postgres', `  url: ${pgsql.url}`, 'standby:', '  enabled: true', '  takeover_seconds: 2'];
    // No pbx.name: both take the default, the host name, so both stand for the same PBX.
    const config = () => writeConfig(sandbox.tmp, ami.port, extra, ini);
    const a = startDaemon(config().yaml);
    await waitFor(() => said(a, CONNECTED) !== undefined, () => `A connected\n${a.out.stderr.slice(-3000)}`, 30_000);
    const b = startDaemon(config().yaml);
    const logins = () => ami.actions.filter((x) => x === 'login').length;
    const [portA, portB] = [await opsPort(a), await opsPort(b)];
    return { ami, a, b, portA, portB, logins };
  }

  it('the standby waits, healthy, while the active one follows the PBX; kill -9 of the active one and it logs in', async () => {
    const { a, b, portA, portB, logins } = await pair();
    // It says whose lease it waits for, as /healthz does below: A's, on loopback.
    const waiting = "waiting for this PBX's lease, held by 127.0.0.1";
    await waitFor(() => said(b, `standby lease: ${waiting}`) !== undefined, () => `B waiting\n${b.out.stderr.slice(-3000)}`, 20_000);
    expect(said(b, `standby lease: ${waiting}`)).toMatchObject({ holder: '127.0.0.1' });
    // B asks for the lease several times meanwhile (every 400 ms at takeover_seconds 2).
    await new Promise((r) => setTimeout(r, 1_500));
    expect(said(b, HELD)).toBeUndefined();
    expect(logins()).toBe(1);
    expect(await healthz(portA)).toMatchObject({ status: 200, body: { ok: true, role: 'active', pbx: 'connected' } });
    expect(await healthz(portB)).toMatchObject({ status: 200, body: { ok: true, role: 'standby', pbx: 'standby', lease: waiting } });

    const killedAt = Date.now();
    a.child.kill('SIGKILL');
    await exitWithin(a, 10_000);
    await waitFor(() => said(b, CONNECTED) !== undefined, () => `B to take over\n${b.out.stderr.slice(-3000)}`, 55_000);
    const heldAt = said(b, HELD)!.time as number;
    const connectedAt = said(b, CONNECTED)!.time as number;
    console.log(`standby takeover after kill -9: lease held ${heldAt - killedAt} ms, logged in to the PBX ${connectedAt - killedAt} ms after the kill`);
    expect(connectedAt - killedAt).toBeLessThan(60_000);
    expect(logins()).toBe(2);
    expect(await healthz(portB)).toMatchObject({ status: 200, body: { ok: true, role: 'active', pbx: 'connected' } });
  });

  it('the active one whose lease session the server ends stops following the PBX and exits 75; the standby takes over', async () => {
    const { a, b, logins } = await pair();
    await waitFor(() => said(b, "standby lease: waiting for this PBX's lease") !== undefined, () => `B waiting\n${b.out.stderr.slice(-3000)}`, 20_000);
    const admin = new pg.Client({ connectionString: pgsql.url });
    await admin.connect();
    try {
      // The lease session that holds a lock: A's (B's asks and lets go within each query). It holds
      // two, the lease and the older two-key lock (src/fleet/lease.ts): one session all the same.
      const r = await admin.query("SELECT pg_terminate_backend(pid) AS done FROM (SELECT DISTINCT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE 'pbxhook lease %') AS holder");
      expect(r.rows).toEqual([{ done: true }]);
    } finally {
      await admin.end();
    }
    const exit = await exitWithin(a, 30_000);
    expect(exit.code).toBe(75);
    expect(a.logs().some((l) => l.code === 'PBXHOOK_LEASE_LOST')).toBe(true);
    await waitFor(() => said(b, CONNECTED) !== undefined, () => `B to take over\n${b.out.stderr.slice(-3000)}`, 55_000);
    expect(logins()).toBe(2);
  });
});
