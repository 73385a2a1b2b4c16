/**
 * The README's install steps, followed literally on a fresh clone (issue #13): `npm ci && npm start`
 * leaves `git status` clean; the production install (`npm ci --omit=dev` beside a copy of dist/)
 * holds no dev dependency and runs. scripts/check-install.sh does the work; it needs the npm
 * registry and a few minutes, so it runs in CI (.ci/run) and is skipped elsewhere, saying so.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { inCi } from './support/requires.js';
import { runAsync } from './support/runAsync.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ci = inCi();
if (!ci) console.warn('skipped: test/55 (the README install steps) runs in CI only; run scripts/check-install.sh yourself');

describe.skipIf(!ci)(`install as the README says${ci ? '' : ' [skipped: CI only (npm registry, minutes); scripts/check-install.sh]'}`, () => {
  it('npm ci && npm start leave a fresh clone clean; npm ci --omit=dev installs no dev dependency and runs', async () => {
    const work = mkdtempSync(path.join(os.tmpdir(), 'pbxhook-install-'));
    try {
      const r = await runAsync('bash', [path.join(ROOT, 'scripts/check-install.sh'), work], { cwd: ROOT, timeout: 900_000 });
      expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout).toContain('check-install: ok');
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 960_000);
});
