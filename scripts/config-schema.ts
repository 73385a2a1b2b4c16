/**
 * Builds config/pbxhook.schema.json, the JSON Schema editors use for completion and checks of the
 * YAML config (the example names it: `# yaml-language-server: $schema=./pbxhook.schema.json`).
 *   npx tsx scripts/config-schema.ts        write it
 *   test/17-config-docs.test.ts             fails when it is out of date
 * It is generated from the one zod schema the daemon validates with (src/config/schema.ts), as
 * the input a file may hold (defaults optional, durations as text).
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { fileSchema } from '../src/config/schema.js';

export const SCHEMA_FILE = 'config/pbxhook.schema.json';

/**
 * Keys the environment may supply instead (PBXHOOK_AMI_SECRET, PBXHOOK_ESL_PASSWORD; see
 * src/config/load.ts). Required in the file they would mark every env-based config as broken in
 * the editor and nudge operators to paste the secret into it; start-up still reports one given
 * by neither (`pbx.secret: missing`), so only the editor is lenient.
 */
const FROM_ENVIRONMENT = new Set(['secret', 'password']);

type Json = { [key: string]: unknown };

function dropEnvironmentKeys(node: unknown): void {
  if (Array.isArray(node)) return node.forEach(dropEnvironmentKeys);
  if (typeof node !== 'object' || node === null) return;
  const o = node as Json;
  if (Array.isArray(o['required'])) {
    o['required'] = (o['required'] as string[]).filter((k) => !FROM_ENVIRONMENT.has(k));
  }
  Object.values(o).forEach(dropEnvironmentKeys);
}

export function configJsonSchema(): string {
  // io 'input': what may be written (a default makes a key optional, a duration is "30s", not ms).
  // Draft 7: the newest draft every YAML language server reads.
  const schema = z.toJSONSchema(fileSchema, { io: 'input', target: 'draft-7' }) as Json;
  dropEnvironmentKeys(schema);
  const published = {
    $schema: schema['$schema'],
    title: 'pbxhook YAML configuration',
    description: 'Generated from src/config/schema.ts by scripts/config-schema.ts; the example is config/pbxhook.example.yaml.',
    ...schema,
  };
  return `${JSON.stringify(published, null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(SCHEMA_FILE, configJsonSchema());
  console.log(`wrote ${SCHEMA_FILE}`);
}
