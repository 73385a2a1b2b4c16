/**
 * Alerts (issue #16 item 6): config/pbxhook.rules.yml, the Prometheus rules an admin loads. Its
 * structure and metric names are checked here always; `promtool` (Debian's prometheus package,
 * .ci/run installs it) checks the file and runs its alert unit tests
 * (test/fixtures/prometheus/pbxhook.rules.test.yml). And `delivery.notify_url`: the real daemon
 * tells a receiver when a webhook goes dead and when its endpoint pauses and resumes.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { explainConfig } from '../src/config/explain.js';
import { parseConfig } from '../src/config/load.js';
import { NOTIFY_ENDPOINT, notifyRequest, shouldNotify } from '../src/deliver/notify.js';
import { startFakeAmi } from './support/fakeAmiServer.js';
import { ROOT, e2eSandbox, startDaemon, startReceiver, waitFor, writeConfig } from './support/e2e.js';
import { requires } from './support/requires.js';
import { runAsync } from './support/runAsync.js';

const NOTIFY_SECRET = 'T0pSecretChatPath';
const RULES = path.join(ROOT, 'config/pbxhook.rules.yml');

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** The metrics the rules may use: what pbxhook exports today, and the operator console's (issue #16 item 6). */
const CONSOLE_METRICS = ['pbxhook_endpoint_state', 'pbxhook_outbox_oldest_undelivered_seconds', 'pbxhook_dead_letters_total'];

describe('config/pbxhook.rules.yml', () => {
  const doc = parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ name: string; rules: Rule[] }> };
  const rules = doc.groups.flatMap((g) => g.rules);

  it('has the alerts an admin wants, each with a severity, a summary and a description', () => {
    expect(doc.groups.map((g) => g.name)).toEqual(['pbxhook']);
    expect(rules.map((r) => r.alert)).toEqual([
      'PbxhookPbxDisconnected', 'PbxhookEndpointPaused', 'PbxhookWebhooksDelayed', 'PbxhookDeadLetters', 'PbxhookOutboxWriteFailing',
    ]);
    for (const r of rules) {
      expect(['critical', 'warning'], r.alert).toContain(r.labels.severity);
      expect(r.annotations.summary, r.alert).toMatch(/\S/);
      expect(r.annotations.description, r.alert).toMatch(/\S/);
    }
    const byName = new Map(rules.map((r) => [r.alert, r]));
    expect(byName.get('PbxhookPbxDisconnected')).toMatchObject({ expr: 'pbxhook_pbx_connected == 0 unless on(instance, job) pbxhook_pbx_role{role="standby"} == 1', for: '1m' });
    expect(byName.get('PbxhookWebhooksDelayed')!.expr).toBe('pbxhook_outbox_oldest_undelivered_seconds > 300');
  });

  it('uses only metrics pbxhook exports (src/ops/metrics.ts) or the console adds, by their exact names', () => {
    const exported = [...readFileSync(path.join(ROOT, 'src/ops/metrics.ts'), 'utf8').matchAll(/'(pbxhook_\w+)'/g)].map((m) => m[1]!);
    expect(exported).toContain('pbxhook_pbx_connected');
    const used = new Set(rules.flatMap((r) => [...r.expr.matchAll(/\bpbxhook_\w+/g)].map((m) => m[0])));
    expect([...used].filter((m) => !exported.includes(m) && !CONSOLE_METRICS.includes(m))).toEqual([]);
    for (const m of CONSOLE_METRICS) expect(used).toContain(m);
  });

  it('ships in the npm package and the .deb', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
    expect(pkg.files).toContain('config/pbxhook.rules.yml');
    expect(readFileSync(path.join(ROOT, 'scripts/deb/build.sh'), 'utf8')).toContain('config/pbxhook.rules.yml "$root/usr/share/pbxhook/pbxhook.rules.yml"');
  });
});

const promtool = requires('promtool', spawnSync('promtool', ['--version']).status === 0, 'apt-get install prometheus');

describe.skipIf(promtool.skip)(`promtool${promtool.note}`, () => {
  beforeAll(() => promtool.check());

  it('checks the rules file', async () => {
    const r = await runAsync('promtool', ['check', 'rules', RULES], { timeout: 50_000 });
    expect(r.stdout + r.stderr).toContain('SUCCESS: 5 rules found');
    expect(r.status).toBe(0);
  });

  it('each alert fires when it should and not before (promtool test rules)', async () => {
    const r = await runAsync('promtool', ['test', 'rules', 'pbxhook.rules.test.yml'], { cwd: path.join(ROOT, 'test/fixtures/prometheus'), timeout: 50_000 });
    expect(r.stdout + r.stderr).toContain('SUCCESS');
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });
});

describe('notify payloads', () => {
  it('carry a sentence for a person and the fields for a tool; the notify endpoint never notifies about itself', () => {
    const req = notifyRequest({ type: 'endpoint.paused', endpoint: 'crm', at: Date.UTC(2026, 0, 2, 3, 4, 5), failingForMs: 600_000, lastError: 'HTTP 503' }, 'https://chat.example.com/hooks/abc');
    expect(req).toMatchObject({ endpoint: NOTIFY_ENDPOINT, method: 'POST', url: 'https://chat.example.com/hooks/abc', orderKey: `${NOTIFY_ENDPOINT}:events` });
    expect(JSON.parse(req.body)).toEqual({
      text: 'pbxhook: webhooks to crm are paused after 600 s of failures (last: HTTP 503); probing it until it answers',
      type: 'endpoint.paused', endpoint: 'crm', at: '2026-01-02T03:04:05.000Z', failingForMs: 600_000, lastError: 'HTTP 503',
    });
    expect(shouldNotify({ type: 'endpoint.paused', endpoint: NOTIFY_ENDPOINT, at: 0, failingForMs: 1 })).toBe(false);
    expect(shouldNotify({ type: 'webhook.dead', endpoint: 'crm', at: 0, count: 3, reason: 'outbox limit delivery.max_age reached' })).toBe(true);
  });
});

describe('delivery.notify_url in the config', () => {
  const yaml = (extra: string) => `pbx:\n  type: asterisk\n  username: u\n  secret: s\ndelivery:\n${extra}`;
  it('check-config shows only its origin; a wrong one names file and key', () => {
    const cfg = parseConfig(yaml(`  notify_url: https://chat.example.com/hooks/${NOTIFY_SECRET}\n`), undefined, { yamlPath: 'config/pbxhook.yaml' }, {});
    expect(cfg.delivery.notifyUrl).toBe(`https://chat.example.com/hooks/${NOTIFY_SECRET}`);
    const text = explainConfig(cfg);
    expect(text).toContain('  notify_url: https://chat.example.com/***: endpoint paused or resumed, webhooks dead\n');
    expect(text).not.toContain(NOTIFY_SECRET);
    expect(explainConfig(parseConfig(yaml('  concurrency: 2\n'), undefined, { yamlPath: 'config/pbxhook.yaml' }, {}))).toContain('  notify_url: not set\n');
    expect(() => parseConfig(yaml('  notify_url: chat\n'), undefined, { yamlPath: 'config/pbxhook.yaml' }, {})).toThrow(
      /config\/pbxhook\.yaml: delivery\.notify_url: expected an absolute http:\/\/ or https:\/\/ URL/,
    );
  });
});

describe('delivery.notify_url end to end (real daemon)', () => {
  const sandbox = e2eSandbox('pbxhook-e2e-notify-');

  it('a webhook goes dead, the endpoint pauses, then resumes: each is notified once, in order, through the outbox', async () => {
    const crm = await startReceiver();
    sandbox.defer(() => crm.close());
    let phase: 'failing' | 'up' = 'failing';
    let first = true;
    crm.handle((req) => {
      if (req.path.startsWith('/notify/')) return { status: 200 };
      if (first) {
        first = false;
        return { status: 410 };
      }
      return { status: phase === 'up' ? 200 : 503 };
    });
    const ami = await startFakeAmi({ trace: path.join(ROOT, 'test/fixtures/asterisk/in-queue-answered.ami'), username: 'admin', secret: 'labsecret', speed: 100 });
    sandbox.defer(() => ami.close());
    const ini = ['[crm]', `url = http://127.0.0.1:${crm.port}/3cx`, 'schema = 3cx', ''].join('\n');
    const { yaml } = writeConfig(sandbox.tmp, ami.port, [
      // 100 retries: no webhook runs out of schedule (and goes dead) before the test turns the CRM up.
      'retry:', `  schedule: [${Array(100).fill('100ms').join(', ')}]`,
      'delivery:', '  pause_after: 300ms', '  probe_every: 100ms', `  notify_url: http://127.0.0.1:${crm.port}/notify/${NOTIFY_SECRET}`,
    ], ini);
    const daemon = startDaemon(yaml);
    const notes = () => crm.ok().filter((r) => r.path.startsWith('/notify/')).map((r) => JSON.parse(r.body) as Record<string, unknown>);
    const types = () => notes().map((n) => n.type);
    await waitFor(() => types().includes('endpoint.paused'), () => `endpoint.paused notified (have ${JSON.stringify(types())})\n${daemon.out.stderr.slice(-2000)}`, 30_000);
    phase = 'up';
    await waitFor(() => types().includes('endpoint.resumed'), () => `endpoint.resumed notified (have ${JSON.stringify(types())})`, 30_000);
    // The call makes 5 webhooks here (no recording_url, so no recording event); the first went dead.
    await waitFor(() => crm.ok('/3cx').length >= 4, () => `the call's other webhooks delivered (have ${crm.ok('/3cx').length})`, 30_000);

    expect(types()).toEqual(['webhook.dead', 'endpoint.paused', 'endpoint.resumed']);
    const [dead, paused, resumed] = notes();
    expect(dead).toMatchObject({ endpoint: 'crm', count: 1, text: expect.stringContaining('a webhook to crm went dead') });
    expect(String(dead!.reason)).toContain('410');
    expect(paused).toMatchObject({ endpoint: 'crm', lastError: 'HTTP 503', text: expect.stringContaining('webhooks to crm are paused') });
    expect(resumed).toMatchObject({ endpoint: 'crm', text: expect.stringContaining('webhooks to crm resumed') });
    // Each notification once: the outbox gives every webhook one webhook-id, kept across retries.
    const ids = crm.ok().filter((r) => r.path.startsWith('/notify/')).map((r) => r.headers['webhook-id']);
    expect(new Set(ids).size).toBe(3);
    // The chat tool's URL is its secret: never in the logs.
    expect(daemon.out.stderr).not.toContain(NOTIFY_SECRET);
    expect(daemon.logs().some((l) => l.endpoint === NOTIFY_ENDPOINT && l.msg === 'webhook delivered' && l.url === 'delivery.notify_url')).toBe(true);
  }, 60_000);
});
