/**
 * Failover end to end (issue #17 item 5): the fake AMI streams the load trace (115 calls) to two
 * real `pbxhook run` for one PBX on one PostgreSQL outbox, the CRM answering slowly so that a
 * backlog and attempts in flight are in the outbox; the active daemon is killed -9 mid-stream, with
 * calls up. Every webhook the uninterrupted replay produces reaches the CRM, each call's in the
 * replay's order; one sent twice (an attempt cut off by the kill) carries the same webhook-id.
 *
 * The fake PBX holds its stream at the kill (handover mode) and streams the rest to whoever logs in
 * next: a real PBX would go on meanwhile and the resync would close the calls that ended, which is
 * test/36's business; here the question is whether anything the dead daemon knew is lost.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { e2eSandbox, exitWithin, replay, startDaemon, startReceiver, waitFor, writeConfig, type Daemon } from './support/e2e.js';
import { loadTrace, splitTrace, startFakeAmi } from './support/fakeAmiServer.js';
import { postgresRequirement, startPostgres, type TestPostgres } from './support/postgres.js';

const LOAD = path.join(import.meta.dirname, 'fixtures/asterisk/load.ami.gz');
const sandbox = e2eSandbox('pbxhook-failover-');
const said = (d: Daemon, msg: string) => d.logs().find((l) => l.msg === msg);

/** The call a 3CX body belongs to, for per-call order. */
const callOf = (body: string): string => String((JSON.parse(body) as Record<string, unknown>)['Id'] ?? '');

describe(`failover between two daemons on one PostgreSQL outbox${postgresRequirement.note}`, () => {
  let pgsql: TestPostgres;
  beforeAll(async () => {
    postgresRequirement.check();
    pgsql = await startPostgres();
  });
  afterAll(() => pgsql?.stop());

  it('kill -9 of the active daemon mid-stream: every webhook of the replay arrives, per call in order', async () => {
    const trace = loadTrace(LOAD);
    const { banner, messages } = splitTrace(trace);
    // Hold the stream before the middle call's first channel: calls are up on both sides of it.
    const newchannels = messages.map((m, i) => [i, m.bytes.toString('latin1')] as const).filter(([, t]) => /^Event: *Newchannel\b/i.test(t));
    const [holdAt, holdText] = newchannels[Math.floor(newchannels.length / 2)]!;
    const holdId = /(?:^|\n)Uniqueid: *(\S+)/i.exec(holdText)![1]!;
    const pauseBefore = new RegExp(`^Event: *Newchannel\\r?\\n(?:[^\\r\\n]*\\r?\\n)*?Uniqueid: *${holdId.replace(/\./g, '\\.')}\\r?\\n`, 'i');
    const prefix = path.join(sandbox.tmp, 'prefix.ami');
    writeFileSync(prefix, Buffer.concat([banner, ...messages.slice(0, holdAt).map((m) => m.bytes)]));

    const ami = await startFakeAmi({ trace, username: 'admin', secret: 'labsecret', handover: true, pauseBefore });
    sandbox.defer(() => ami.close());
    // A slow CRM: attempts are in flight and a backlog waits when the active daemon dies.
    const crm = await startReceiver(0, () => ({ status: 200, delayMs: 20 }));
    sandbox.defer(() => crm.close());
    const ini = ['[crm]', `url = http://127.0.0.1:${crm.port}/3cx`, 'schema = 3cx', ''].join('\n');
    const extra = [
      'outbox:', '  store: postgres', `  url: ${pgsql.url}`,
      // 5 s: the active daemon reading the load trace at full speed must not miss its lease checks (1 s each).
      'standby:', '  enabled: true', '  takeover_seconds: 5',
      // A claim of the dead daemon comes back after the request timeout (and a margin).
      'retry:', '  timeout_ms: 1000', '  connect_timeout_ms: 500', '  schedule: [100ms, 100ms, 100ms, 100ms, 100ms]',
    ];
    const a = writeConfig(sandbox.tmp, ami.port, extra, ini);
    const want = replay(LOAD, a.yaml);
    const wantBefore = replay(prefix, a.yaml).length;
    expect(wantBefore).toBeGreaterThan(0);
    expect(wantBefore).toBeLessThan(want.length);

    const active = startDaemon(a.yaml);
    await waitFor(() => said(active, 'connected to Asterisk AMI') !== undefined, () => `A connected\n${active.out.stderr.slice(-3000)}`, 30_000);
    const standby = startDaemon(writeConfig(sandbox.tmp, ami.port, extra, ini).yaml);
    await ami.paused;
    // The active daemon has written every webhook of the first half (and with them the live calls).
    const db = new pg.Client({ connectionString: pgsql.url });
    await db.connect();
    sandbox.defer(() => db.end());
    const rows = async () => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM webhooks')).rows[0]!.n);
    let written = 0;
    for (let i = 0; i < 600 && written < wantBefore; i++) {
      written = await rows();
      if (written < wantBefore) await new Promise((r) => setTimeout(r, 100));
    }
    expect(written).toBe(wantBefore);
    // The events after the last webhook of the half change only live calls: committed within 100 ms (test/73).
    await new Promise((r) => setTimeout(r, 1_000));
    expect(crm.ok().length, 'the kill comes while the CRM still has webhooks to get').toBeLessThan(want.length);

    const killedAt = Date.now();
    active.child.kill('SIGKILL');
    await exitWithin(active, 10_000);
    await waitFor(() => said(standby, 'resynced live calls after restart') !== undefined, () => `the standby to take over and resync\n${standby.out.stderr.slice(-3000)}`, 55_000);
    const takeoverMs = (said(standby, 'connected to Asterisk AMI')!.time as number) - killedAt;
    console.log(`failover: the standby logged in ${takeoverMs} ms after kill -9 (takeover_seconds 5); ${crm.ok().length} of ${want.length} webhooks delivered at the kill`);
    expect(takeoverMs).toBeLessThan(60_000);
    expect(said(standby, 'resynced live calls after restart')).toMatchObject({ callsClosed: 0 });
    ami.resume();

    const distinct = () => new Set(crm.ok().map((r) => r.body)).size;
    await waitFor(() => distinct() >= new Set(want.map((w) => w.body)).size, () => `every webhook (${distinct()} of ${want.length})\n${standby.out.stderr.slice(-3000)}`, 55_000);
    // Per call, the first delivery of each webhook in the replay's order; a second one only with the same webhook-id.
    const idOf = new Map<string, string>();
    const seen = new Set<string>();
    const got = new Map<string, string[]>();
    for (const r of crm.ok()) {
      const id = String(r.headers['webhook-id']);
      expect(idOf.get(r.body) ?? id, 'a webhook sent twice keeps its webhook-id').toBe(id);
      idOf.set(r.body, id);
      if (seen.has(r.body)) continue;
      seen.add(r.body);
      got.set(callOf(r.body), [...(got.get(callOf(r.body)) ?? []), r.body]);
    }
    const expected = new Map<string, string[]>();
    for (const w of want) expected.set(callOf(w.body), [...(expected.get(callOf(w.body)) ?? []), w.body]);
    expect(got.size).toBe(expected.size);
    for (const [call, bodies] of expected) expect(got.get(call), `call ${call}`).toEqual(bodies);
  });
});
