/**
 * The shipped config documentation stays true (issue #6): config/pbxhook.example.yaml and
 * webhooks.ini.example name every key the schemas accept, the example passes check-config, its
 * values are the defaults it claims, and config/pbxhook.schema.json is generated from the schema.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { configJsonSchema, SCHEMA_FILE } from '../scripts/config-schema.js';
import { endpointSchema } from '../src/config/endpoints.js';
import { parseConfig } from '../src/config/load.js';
import { PBX_NAME, fileSchema } from '../src/config/schema.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = path.join(ROOT, 'dist/cli.js');
const YAML_EXAMPLE = 'config/pbxhook.example.yaml';
const INI_EXAMPLE = 'webhooks.ini.example';
const yamlText = readFileSync(path.join(ROOT, YAML_EXAMPLE), 'utf8');
const iniText = readFileSync(path.join(ROOT, INI_EXAMPLE), 'utf8');
/** What the example ini's env: references need (a 32-byte signing key). */
const ENV = { CRM_TOKEN: 'example-token', CRM_SIGNING_SECRET: `whsec_${Buffer.alloc(32, 7).toString('base64')}` };

type Def = { type: string; shape?: Record<string, z.ZodType>; innerType?: z.ZodType; in?: z.ZodType; out?: z.ZodType;
  options?: z.ZodType[]; valueType?: z.ZodType; element?: z.ZodType; values?: unknown[] };
const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;

/** Every key path a zod schema accepts (`pbx.secret`, `directory.*.email`), wrappers looked through. */
function keyPaths(schema: z.ZodType, prefix = ''): string[] {
  const d = defOf(schema);
  switch (d.type) {
    case 'object':
      return Object.entries(d.shape!).flatMap(([k, v]) => [`${prefix}${k}`, ...keyPaths(v, `${prefix}${k}.`)]);
    case 'optional': case 'default': case 'prefault': case 'nullable':
      return keyPaths(d.innerType!, prefix);
    case 'pipe':
      return [...keyPaths(d.in!, prefix), ...keyPaths(d.out!, prefix)];
    case 'union':
      return [...new Set(d.options!.flatMap((o) => keyPaths(o, prefix)))];
    case 'record':
      return keyPaths(d.valueType!, `${prefix}*.`);
    case 'array':
      return keyPaths(d.element!, `${prefix}*.`);
    default:
      return [];
  }
}

/** Is `keyPath` set in `data`, `*` standing for any key? */
function present(data: unknown, keyPath: string[]): boolean {
  if (keyPath.length === 0) return true;
  if (typeof data !== 'object' || data === null) return false;
  const [head, ...rest] = keyPath;
  const values = head === '*' ? Object.values(data) : head! in data ? [(data as Record<string, unknown>)[head!]] : [];
  return values.some((v) => present(v, rest));
}

describe(YAML_EXAMPLE, () => {
  const data: unknown = parse(yamlText);

  it('starts with the yaml-language-server modeline naming the JSON Schema beside it', () => {
    expect(yamlText.split('\n')[0]).toBe('# yaml-language-server: $schema=./pbxhook.schema.json');
  });

  it('names every key of the YAML schema, set or commented out', () => {
    const missing = keyPaths(fileSchema).filter((p) => {
      const leaf = p.split('.').at(-1)!;
      return !present(data, p.split('.')) && !new RegExp(`^\\s*#\\s*${leaf}:`, 'm').test(yamlText);
    });
    expect(missing, `keys missing from ${YAML_EXAMPLE}`).toEqual([]);
  });

  it('comments every key it sets', () => {
    const bare = yamlText.split('\n').filter((l) => /^\s*[a-z_]+:\s*[^\s#]/.test(l) && !l.includes('#'));
    expect(bare, 'set keys without a comment').toEqual([]);
  });

  it('sets everything but pbx, webhooks and directory to the defaults its comments give', () => {
    const load = (text: string) => parseConfig(text, iniText, { yamlPath: YAML_EXAMPLE }, ENV);
    const minimal = load('pbx: { type: asterisk, username: u, secret: s }\nwebhooks: ./webhooks.ini\n');
    const example = load(yamlText);
    // `delivery` holds every retry.* setting the outbox uses; `retry` is send.ts's view derived from them.
    for (const key of ['roles', 'calls', 'delivery', 'stateDir', 'opsListen', 'log', 'environment'] as const) {
      expect(example[key], key).toEqual(minimal[key]);
    }
  });

  it('passes pbxhook check-config with webhooks.ini.example beside it', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'pbxhook-example-'));
    try {
      copyFileSync(path.join(ROOT, YAML_EXAMPLE), path.join(dir, 'pbxhook.yaml'));
      copyFileSync(path.join(ROOT, INI_EXAMPLE), path.join(dir, 'webhooks.ini'));
      expect(existsSync(CLI), 'npm test builds dist first').toBe(true);
      const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PBXHOOK_')));
      const r = spawnSync(process.execPath, [CLI, 'check-config', path.join(dir, 'pbxhook.yaml')], { env: { ...clean, ...ENV }, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/endpoints: 7 \(1 enabled\) from .*webhooks\.ini\n/);
      expect(r.stdout).toMatch(/config OK\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("README's try-it block works as written: every missing variable at once (78), then config OK (issue #13)", () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const block = /To try it from the clone[\s\S]*?```sh\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block, 'the README block after "To try it from the clone"').toBeDefined();
    const tmpdir = mkdtempSync(path.join(os.tmpdir(), 'pbxhook-readme-'));
    try {
      const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PBXHOOK_') && !k.startsWith('CRM_')));
      const r = spawnSync('bash', ['-c', block!], { cwd: ROOT, env: { ...clean, TMPDIR: tmpdir }, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr.trim().split('\n')).toEqual([
        '2 configuration problems:',
        expect.stringMatching(/webhooks\.ini: \[crm-json\] token: environment variable CRM_TOKEN is not set$/),
        expect.stringMatching(/webhooks\.ini: \[crm-json\] signing_secret: environment variable CRM_SIGNING_SECRET is not set$/),
      ]);
      expect(r.stdout).toMatch(/endpoints: 7 \(1 enabled\) from .*webhooks\.ini\n[\s\S]*config OK\n$/);
    } finally {
      rmSync(tmpdir, { recursive: true, force: true });
    }
  });

  it('its commented-out FreeSWITCH pbx and older retry form are valid too', () => {
    const fs = yamlText
      .replace(/^pbx:\n(  .*\n)+/m, '')
      .replace(/^# pbx:\n(#   .*\n)+/m, (block) => block.replace(/^# /gm, ''))
      .replace(/^ {2}schedule: .*\n( {30}#.*\n)?/m, '')
      .replace(/^ {2}# (retries|min_timeout_ms|max_timeout_ms):/gm, '  $1:');
    const cfg = parseConfig(fs, iniText, { yamlPath: YAML_EXAMPLE }, ENV);
    expect(cfg.pbx).toEqual({ type: 'freeswitch', name: expect.stringMatching(PBX_NAME), host: '127.0.0.1', port: 8021, password: 'ClueCon', maxFrameBytes: 1048576 });
    // retries 8, 1 s doubling, capped at 300 s
    expect(cfg.delivery.schedule).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000]);
  });
});

describe(INI_EXAMPLE, () => {
  // The comment header: keys every endpoint has, then one block per schema (`; schema = X …`).
  const header = iniText.slice(0, iniText.indexOf('\n['));
  const [common = '', ...blocks] = header.split(/^(?=; schema = )/m);
  /** Keys a block documents: an entry starts 3 spaces after the `;`, several may share one. */
  const documented = (block: string) =>
    new Set([...block.matchAll(/^; {3}([a-z_]+(?:, [a-z_]+)*),?(?= {2,}|$)/gm)].flatMap((m) => m[1]!.split(', ')));
  const options = defOf(endpointSchema).options!;

  const schemaName = (o: z.ZodType) => String(defOf(defOf(o).shape!['schema']!).values![0]);

  it.each(options.map((o) => [schemaName(o), o] as const))(
    'documents every key of schema = %s',
    (schema, option) => {
      const block = blocks.find((b) => b.startsWith(`; schema = ${schema} `));
      expect(block, `no "; schema = ${schema}" block`).toBeDefined();
      const known = new Set([...documented(common), ...documented(block!)]);
      const missing = Object.keys(defOf(option).shape!).filter((k) => !known.has(k));
      expect(missing, `[schema = ${schema}] keys missing from ${INI_EXAMPLE}`).toEqual([]);
    },
  );

  it('documents no key the schemas do not accept', () => {
    const accepted = new Set(options.flatMap((o) => Object.keys(defOf(o).shape!)));
    const extra = [...documented(header)].filter((k) => !accepted.has(k));
    expect(extra).toEqual([]);
  });
});

describe(SCHEMA_FILE, () => {
  it('is generated from the current schema (npx tsx scripts/config-schema.ts)', () => {
    expect(readFileSync(path.join(ROOT, SCHEMA_FILE), 'utf8')).toBe(configJsonSchema());
  });

  it('does not require what the environment may supply (PBXHOOK_AMI_SECRET, PBXHOOK_ESL_PASSWORD)', () => {
    const schema = JSON.parse(configJsonSchema()) as { required: string[]; properties: { pbx: { oneOf: { required: string[] }[] } } };
    expect(schema.required).toEqual(['pbx']);
    expect(schema.properties.pbx.oneOf.map((o) => o.required)).toEqual([['type', 'username'], ['type']]);
  });
});
