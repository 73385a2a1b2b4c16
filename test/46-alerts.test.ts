/**
 * Alerts (issue #16 item 6): config/pbxhook.rules.yml, the Prometheus rules an admin loads. Its
 * structure and metric names are checked here always; `promtool` (Debian's prometheus package,
 * .ci/run installs it) checks the file and runs its alert unit tests
 * (test/fixtures/prometheus/pbxhook.rules.test.yml).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT } from './support/e2e.js';
import { requires } from './support/requires.js';
import { runAsync } from './support/runAsync.js';

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
    expect(byName.get('PbxhookPbxDisconnected')).toMatchObject({ expr: 'pbxhook_pbx_connected == 0', for: '1m' });
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
