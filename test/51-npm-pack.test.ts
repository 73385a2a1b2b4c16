/**
 * `npm pack` ships only what runs (issue #13 item 3): dist, config examples, the systemd unit, the
 * webhook docs, README and LICENSE; never tests, fixtures, benchmarks or CI. The list comes from
 * package.json `files`; `prepack` builds dist, so a pack from a clean clone is complete.
 */
import { spawnSync } from 'node:child_process';
import { runAsync } from './support/runAsync.js';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Every shipped path matches one of these. */
const ALLOWED: readonly RegExp[] = [
  /^package\.json$/,
  /^README\.md$/,
  /^LICENSE$/,
  /^dist\/[\w/.-]+\.js$/,
  /^config\/[\w.-]+\.example\.yaml$/,
  /^config\/[\w.-]+\.webhooks\.ini$/,
  /^config\/pbxhook\.schema\.json$/,
  /^config\/pbxhook\.rules\.yml$/,
  /^webhooks\.ini\.example$/,
  /^systemd\/pbxhook\.service$/,
  /^docs\/webhooks\/[\w.-]+\.md$/,
];
/** Bounds on the list, not on a total that drifts: today 99 files, the largest 96 kB. */
const MAX_FILES = 250;
const MAX_FILE_BYTES = 512 * 1024;
/** yaml, ini and zod bundled into one module by the build (issue #15: start-up), ~560 kB minified. */
const CONFIG_LIBS = 'dist/config/libs.js';
const MAX_CONFIG_LIBS_BYTES = 768 * 1024;

interface PackFile {
  readonly path: string;
  readonly size: number;
}

async function packList(cwd: string, scripts: boolean): Promise<PackFile[]> {
  const args = ['pack', '--dry-run', '--json', ...(scripts ? [] : ['--ignore-scripts'])];
  const r = await runAsync('npm', args, { cwd, timeout: 180_000 });
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')}: ${r.stderr}`);
  // Script output (prepack's build) may precede the JSON on stdout.
  const json = r.stdout.slice(r.stdout.indexOf('[\n'));
  const [pkg] = JSON.parse(json) as { files: PackFile[] }[];
  return pkg!.files;
}

/** The files git tracks or would track in the working tree (a clean clone's), minus node_modules. */
function sourceFiles(): string[] {
  const ls = spawnSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' });
  if (ls.status !== 0) throw new Error(`git ls-files: ${ls.stderr}`);
  return ls.stdout.split('\0').filter((p) => p !== '' && p !== 'node_modules');
}

describe('npm pack', () => {
  let files: PackFile[] = [];
  let paths: string[] = [];
  beforeAll(async () => {
    // --ignore-scripts: prepack would rebuild dist under the other test files' feet; pretest built it.
    files = await packList(ROOT, false);
    paths = files.map((f) => f.path);
  }, 200_000);

  it('ships only the allowed set', () => {
    expect(paths.filter((p) => !ALLOWED.some((re) => re.test(p)))).toEqual([]);
    expect(paths.filter((p) => /^(test|bench|\.ci|scripts|src)\/|fixtures|golden/.test(p))).toEqual([]);
  });

  it('ships the CLI with its shebang, the unit, the examples, README and LICENSE', () => {
    for (const p of ['dist/cli.js', 'systemd/pbxhook.service', 'config/pbxhook.example.yaml', 'config/pbxhook.rules.yml', 'webhooks.ini.example', 'README.md', 'LICENSE']) {
      expect(paths).toContain(p);
    }
    expect(readFileSync(path.join(ROOT, 'dist/cli.js'), 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
    expect(paths.some((p) => p.startsWith('docs/webhooks/'))).toBe(true);
  });

  it('stays small: a bounded number of files, none of them large', () => {
    expect(files.length).toBeLessThanOrEqual(MAX_FILES);
    expect(files.filter((f) => f.size > MAX_FILE_BYTES && f.path !== CONFIG_LIBS).map((f) => f.path)).toEqual([]);
    expect(files.find((f) => f.path === CONFIG_LIBS)?.size).toBeLessThanOrEqual(MAX_CONFIG_LIBS_BYTES);
  });
});

describe('npm pack from a clean clone', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pbxhook-pack-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('builds dist in prepack, so the pack is complete without a prior build', async () => {
    const sources = sourceFiles();
    for (const f of sources) {
      mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      cpSync(path.join(ROOT, f), path.join(dir, f));
    }
    symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));

    const shipped = (await packList(dir, true)).map((f) => f.path);
    // Every module of src/ ships compiled, and nothing else from dist (prepack starts from none).
    const modules = sources.filter((f) => /^src\/.*\.ts$/.test(f) && !f.endsWith('.d.ts')).map((f) => f.replace(/^src\/(.*)\.ts$/, 'dist/$1.js'));
    expect(modules).toContain('dist/cli.js');
    expect(shipped.filter((p) => p.startsWith('dist/')).sort()).toEqual(modules.sort());
  }, 200_000);
});
