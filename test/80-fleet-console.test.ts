/// <reference lib="dom" />
/**
 * A fleet's console in headless Chromium (issue #17): PBX berlin with an active daemon and its
 * standby, PBX paris with one daemon, all three on one PostgreSQL outbox. The standby's page says
 * it is the standby and whose lease it waits for (not "connecting"), its /healthz is 200 and its
 * pbxhook_pbx_role says standby; the webhooks table shows each row's PBX, both PBXes there. After
 * kill -9 of the active one, the same page and gauge say the standby follows the PBX now.
 * Needs PostgreSQL and Chromium: run with CI=true so neither skips.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserNeeded, launchChromium } from './support/chromium.js';
import { type Daemon, e2eSandbox, exitWithin, healthz, metric, opsPort, startDaemon, startReceiver, waitFor, writeConfig } from './support/e2e.js';
import { startFakeAmi } from './support/fakeAmiServer.js';
import { postgresRequirement, startPostgres, type TestPostgres } from './support/postgres.js';

const TRACE = path.join(import.meta.dirname, 'fixtures/asterisk/in-queue-answered.ami');
const sandbox = e2eSandbox('pbxhook-fleet-console-');
const CONNECTED = 'connected to Asterisk AMI';
const WAITING = "waiting for this PBX's lease, held by 127.0.0.1";
const said = (d: Daemon, msg: string) => d.logs().some((l) => l.msg === msg);
const skip = postgresRequirement.skip || browserNeeded.skip;

interface Row {
  readonly pbx: string;
  readonly state: string;
}

describe.skipIf(skip)(`a fleet's console${postgresRequirement.note}${browserNeeded.note}`, () => {
  let pgsql: TestPostgres;
  let browser: Browser | undefined;
  beforeAll(async () => {
    postgresRequirement.check();
    browserNeeded.check();
    pgsql = await startPostgres();
  });
  afterAll(async () => {
    await browser?.close();
    await pgsql?.stop();
  });

  /** A daemon of PBX `name` on `amiPort`, sharing the outbox; `standby` for berlin's pair. */
  function daemonOf(name: string, amiPort: number, crmPort: number, standby: boolean): Daemon {
    const ini = ['[crm]', `url = http://127.0.0.1:${crmPort}/3cx`, 'schema = 3cx', ''].join('\n');
    const extra = ['outbox:', '  store: postgres', `  url: ${pgsql.url}`, ...(standby ? ['standby:', '  enabled: true', '  takeover_seconds: 2'] : [])];
    const { yaml } = writeConfig(sandbox.tmp, amiPort, extra, ini);
    writeFileSync(yaml, readFileSync(yaml, 'utf8').replace(/^pbx:\n/m, `pbx:\n  name: ${name}\n`));
    return startDaemon(yaml);
  }

  it("the standby's page says whose lease it waits for and shows each webhook's PBX; after a kill -9 it follows the PBX", async () => {
    const crm = await startReceiver();
    sandbox.defer(() => crm.close());
    const berlinAmi = await startFakeAmi({ trace: TRACE, username: 'admin', secret: 'labsecret' });
    sandbox.defer(() => berlinAmi.close());
    const parisAmi = await startFakeAmi({ trace: TRACE, username: 'admin', secret: 'labsecret' });
    sandbox.defer(() => parisAmi.close());

    const active = daemonOf('berlin', berlinAmi.port, crm.port, true);
    await waitFor(() => said(active, CONNECTED), () => `berlin's active daemon\n${active.out.stderr.slice(-3000)}`, 30_000);
    const standby = daemonOf('berlin', berlinAmi.port, crm.port, true);
    daemonOf('paris', parisAmi.port, crm.port, false);
    const [activePort, standbyPort] = [await opsPort(active), await opsPort(standby)];
    await waitFor(() => said(standby, `standby lease: ${WAITING}`), () => `the standby\n${standby.out.stderr.slice(-3000)}`, 20_000);

    // Both PBXes' webhooks, delivered, in the one outbox the standby's console reads.
    const rows = async () => ((await (await fetch(`http://127.0.0.1:${standbyPort}/api/webhooks`)).json()) as { webhooks: Row[] }).webhooks;
    let seen: Row[] = [];
    const bothDelivered = () => ['berlin', 'paris'].every((p) => seen.some((r) => r.pbx === p && r.state === 'delivered'));
    for (let i = 0; i < 300 && !bothDelivered(); i++) {
      seen = await rows();
      if (!bothDelivered()) await new Promise((r) => setTimeout(r, 100));
    }
    expect(new Set(seen.map((r) => r.pbx))).toEqual(new Set(['berlin', 'paris']));

    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1100, height: 700 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${standbyPort}/`);

    const head = page.locator('#pbx');
    await head.filter({ hasText: 'standby' }).waitFor({ timeout: 20_000 });
    expect(await head.textContent()).toBe(`berlin: asterisk 127.0.0.1:${berlinAmi.port} — standby: ${WAITING}`);
    expect(await head.getAttribute('class')).toBe('muted');
    expect(await healthz(standbyPort)).toMatchObject({ status: 200, body: { ok: true, role: 'standby', pbx: 'standby', lease: WAITING } });
    expect(await metric(standbyPort, 'pbxhook_pbx_role{role="standby",pbx="berlin"}')).toBe(1);
    expect(await metric(activePort, 'pbxhook_pbx_role{role="active",pbx="berlin"}')).toBe(1);

    // The PBX column, second, in the webhooks and dead-letter tables; each row's is the JSON's.
    await page.waitForFunction((n) => document.querySelectorAll('#webhooks tbody tr.pick').length >= n, seen.length, { timeout: 20_000 });
    expect(await page.locator('#webhooks thead th:not([hidden])').allTextContents()).toEqual(['queued', 'pbx', 'endpoint', 'call', '#', 'event', 'attempts', 'state', 'next / why']);
    expect(await page.locator('#dead thead th:not([hidden])').nth(1).textContent()).toBe('pbx');
    const shown = await page.evaluate(() =>
      [...document.querySelectorAll('#webhooks tbody tr.pick')].map((tr) => ({ id: (tr as HTMLElement).dataset.key, pbx: tr.children[1]!.textContent })),
    );
    const listed = (await (await fetch(`http://127.0.0.1:${standbyPort}/api/webhooks`)).json()) as { webhooks: Array<{ id: number; pbx: string }> };
    const pbxOf = new Map(listed.webhooks.map((w) => [String(w.id), w.pbx]));
    expect(shown.length).toBeGreaterThan(0);
    for (const s of shown.filter((r) => pbxOf.has(r.id!))) expect(s.pbx).toBe(pbxOf.get(s.id!));
    expect(new Set(shown.map((s) => s.pbx))).toEqual(new Set(['berlin', 'paris']));

    // The active one dies: the standby takes the lease, logs in, and its page and gauge say so.
    active.child.kill('SIGKILL');
    await exitWithin(active, 10_000);
    await waitFor(() => said(standby, CONNECTED), () => `the standby to take over\n${standby.out.stderr.slice(-3000)}`, 55_000);
    await head.filter({ hasText: '— connected' }).waitFor({ timeout: 20_000 });
    expect(await head.textContent()).toBe(`berlin: asterisk 127.0.0.1:${berlinAmi.port} — connected`);
    expect(await head.getAttribute('class')).toBe('ok');
    expect(await metric(standbyPort, 'pbxhook_pbx_role{role="active",pbx="berlin"}')).toBe(1);
    expect(await metric(standbyPort, 'pbxhook_pbx_role{role="standby",pbx="berlin"}')).toBe(0);
    expect(errors).toEqual([]);
  }, 150_000);
});
