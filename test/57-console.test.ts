/// <reference lib="dom" />
/**
 * The operator console end to end (issue #16, "Done when"): the real daemon, the fake AMI server
 * playing one call, a CRM receiver whose answers the test changes, and Debian's headless Chromium
 * driving the page. The CRM answers 503: the page shows the endpoint failing, the error and the
 * next retry, and the later webhooks waiting behind the first. It turns 410: the webhooks are dead.
 * A resend without the token is refused; logged in, a resend delivers that webhook once, and
 * "resend all dead" delivers the rest in order. The call's journey shows each step's webhooks.
 *
 * With PBXHOOK_SCREENSHOTS=<folder> the test saves the README's pictures there
 * (console-endpoints.png, console-journey.png).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeAmi } from './support/fakeAmiServer.js';
import { ROOT, ensureBuilt, freePort, killAll, replay, startDaemon, startReceiver, waitFor, writeConfig } from './support/e2e.js';
import { browserNeeded, launchChromium } from './support/chromium.js';

const TRACE = path.join(ROOT, 'test/fixtures/asterisk/in-queue-answered.ami');
const CALL = '1795301990.9';
const OPS_TOKEN = 'console-token-Q7x2-Lm90-aa11';
const SHOTS = process.env['PBXHOOK_SCREENSHOTS'];

let tmp: string;
let browser: Browser | undefined;
let cleanup: Array<() => Promise<void>> = [];

beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'pbxhook-console-'));
});
afterEach(async () => {
  killAll();
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});
afterAll(async () => {
  await browser?.close();
  killAll();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function shot(page: Page, name: string): Promise<void> {
  if (SHOTS === undefined) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name), fullPage: false });
}

/** The row of the call's webhook number `seq` in the recent-webhooks table. */
const rowOf = (page: Page, seq: number) =>
  page.locator('#webhooks tbody tr').filter({ has: page.locator('td:nth-child(4)', { hasText: new RegExp(`^${seq}$`) }) });

describe.skipIf(browserNeeded.skip)(`operator console in headless Chromium${browserNeeded.note}`, () => {
  beforeAll(() => browserNeeded.check());

  it('503: failing with the error and next retry; 410: dead; resend refused without the token, delivered once and in order with it', async () => {
    const crm = await startReceiver(0, () => ({ status: 503, body: 'CRM down for maintenance' }));
    cleanup.push(() => crm.close());
    const ami = await startFakeAmi({ trace: TRACE, username: 'admin', secret: 'labsecret' });
    cleanup.push(() => ami.close());
    const opsPort = await freePort();
    const ini = `[crm]\nurl = http://127.0.0.1:${crm.port}/3cx\nschema = 3cx\nvariant = json\n`;
    const { yaml } = writeConfig(
      tmp,
      ami.port,
      ['ops:', `  listen: 127.0.0.1:${opsPort}`, `  token: ${OPS_TOKEN}`, 'retry:', '  schedule: [4s, 4s, 4s, 4s, 4s, 4s, 4s, 4s, 4s, 4s]', '  jitter: 0'],
      ini,
    );
    const want = replay(TRACE, yaml).length;
    expect(want).toBeGreaterThanOrEqual(3);
    const daemon = startDaemon(yaml);
    await waitFor(() => /metrics, health and status page listening/.test(daemon.out.stderr), () => daemon.out.stderr, 30_000);

    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${opsPort}/`);

    // 503: the endpoint is failing, with the CRM's error; the first webhook waits for its retry,
    // the others behind it.
    const endpoint = page.locator('#endpoints tbody tr', { hasText: 'crm' });
    await endpoint.locator('.badge', { hasText: 'failing' }).waitFor({ timeout: 30_000 });
    await endpoint.locator('td', { hasText: /503/ }).waitFor({ timeout: 10_000 });
    await rowOf(page, 1).locator('td.why', { hasText: /retry \d\d:\d\d:\d\d \(schedule step \d\)/ }).waitFor({ timeout: 20_000 });
    expect(await rowOf(page, 2).locator('td.why').textContent()).toMatch(/^behind #1 of its call/);

    // Its story: every attempt with the status and the answer, the request with its webhook-id.
    await rowOf(page, 1).click();
    const story = page.locator('#story');
    await story.locator('#attempts td', { hasText: 'CRM down for maintenance' }).first().waitFor({ timeout: 10_000 });
    expect(await story.locator('#attempts td', { hasText: /^503$/ }).count()).toBeGreaterThanOrEqual(1);
    expect(await story.locator('pre').last().textContent()).toMatch(/^POST http:\/\/127\.0\.0\.1:\d+\/3cx\n[\s\S]*webhook-id: msg_/);
    await shot(page, 'console-endpoints.png');

    // 410: permanent, so each webhook dies in turn.
    crm.handle(() => ({ status: 410, body: 'gone' }));
    await waitFor(() => daemon.logs().filter((l) => l.msg?.toString().startsWith('webhook dead')).length >= want, () => daemon.out.stderr, 30_000);
    await page.locator('#dead tbody tr').nth(want - 1).waitFor({ timeout: 10_000 });
    await rowOf(page, 1).locator('td.state', { hasText: 'dead' }).waitFor({ timeout: 10_000 });
    crm.handle(() => ({ status: 200 }));
    const before = crm.requests.length;

    // Without the token: refused, and nothing is sent.
    await rowOf(page, 1).click();
    await page.locator('#resend').click();
    await page.locator('#notice', { hasText: 'refused (401)' }).waitFor({ timeout: 10_000 });
    const anonymous = await fetch(`http://127.0.0.1:${opsPort}/api/actions/resend-dead`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ endpoint: 'crm' }),
    });
    expect(anonymous.status).toBe(401);
    const wrong = await fetch(`http://127.0.0.1:${opsPort}/api/actions/resend-dead`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer not-the-token-000000' }, body: JSON.stringify({ endpoint: 'crm' }),
    });
    expect(wrong.status).toBe(401);
    expect(crm.requests.length).toBe(before);
    expect(await rowOf(page, 1).locator('td.state').textContent()).toBe('dead');

    // Logged in (the form sets an HttpOnly cookie): resend delivers webhook 1 once.
    await page.locator('#auth input[name=token]').fill(OPS_TOKEN);
    await Promise.all([page.waitForURL(`http://127.0.0.1:${opsPort}/`), page.locator('#login').click()]);
    const cookies = await page.context().cookies();
    expect(cookies.find((c) => c.name === 'pbxhook_console')).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(JSON.stringify(cookies)).not.toContain(OPS_TOKEN);
    await rowOf(page, 1).click();
    await page.locator('#resend').click();
    await page.locator('#notice', { hasText: 'sent again' }).waitFor({ timeout: 10_000 });
    await rowOf(page, 1).locator('td.state', { hasText: 'delivered' }).waitFor({ timeout: 20_000 });
    const first = crm.ok();
    expect(first).toHaveLength(1);
    expect(first[0]!.headers['webhook-sequence']).toBe('1');

    // "Resend all dead" on the endpoint: the rest, in their call's order, each once.
    await endpoint.locator('button', { hasText: 'resend all dead' }).click();
    await waitFor(() => crm.ok().length >= want, () => `${crm.ok().length} of ${want}\n${daemon.out.stderr}`, 30_000);
    const delivered = crm.ok();
    expect(delivered.map((r) => Number(r.headers['webhook-sequence']))).toEqual(Array.from({ length: want }, (_, i) => i + 1));
    expect(new Set(delivered.map((r) => r.headers['webhook-id'])).size).toBe(want);
    expect(crm.requests.length - before).toBe(want);

    // Every action logged with who and what; the refusals too; never the token.
    const actions = daemon.logs().filter((l) => l.msg?.toString().startsWith('outbox action:'));
    expect(actions.map((l) => [l.action, l.who, l.changed])).toEqual([
      ['resend', 'console cookie 127.0.0.1', 1],
      ['resend-dead', 'console cookie 127.0.0.1', want - 1],
    ]);
    expect(daemon.logs().filter((l) => l.code === 'PBXHOOK_CONSOLE_REFUSED')).toHaveLength(3);
    expect(daemon.out.stderr).not.toContain(OPS_TOKEN);

    // The call's journey: its steps in order, each webhook beside its step, delivered.
    await page.locator('#story button', { hasText: 'close' }).click();
    await story.waitFor({ state: 'hidden', timeout: 10_000 });
    await page.locator('#q').fill(CALL);
    const journey = page.locator('#journeys .journey-card', { hasText: CALL });
    await journey.waitFor({ timeout: 10_000 });
    await page.waitForFunction(
      (n) => document.querySelectorAll('#journeys .journey .badge').length === n &&
        [...document.querySelectorAll('#journeys .journey .badge')].every((b) => b.textContent === 'delivered'),
      want,
      { timeout: 20_000 },
    );
    const steps = await journey.locator('tr td:nth-child(2)').allTextContents();
    expect(steps[0]).toMatch(/^call from 05552221133/);
    expect(steps.some((s) => /^call ended/.test(s))).toBe(true);
    expect(steps.some((s) => /^answered by 202/.test(s))).toBe(true);
    await journey.scrollIntoViewIfNeeded();
    await shot(page, 'console-journey.png');

    // A phone's width: nothing but the tables' own scroll boxes is wider than the screen.
    await page.setViewportSize({ width: 390, height: 800 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    const png = await page.screenshot();
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    if (SHOTS) expect(readFileSync(path.join(SHOTS, 'console-journey.png')).length).toBeGreaterThan(1000);
    expect(errors).toEqual([]);
  }, 150_000);
});
