#!/usr/bin/env node
// `node scripts/bundle-config-libs.mjs [DIST]`: replaces DIST/config/libs.js (default dist/), the
// re-export of yaml, ini and zod that tsc emits, by one bundle of the three. Loaded as one file
// they start in about half the time of their ~160 modules (issue #15; src/config/libs.ts).
import { build } from 'esbuild';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = process.argv[2] ?? 'dist';
const file = path.join(dist, 'config', 'libs.js');
await build({
  entryPoints: [file],
  outfile: file,
  allowOverwrite: true,
  bundle: true,
  // The libraries come from this checkout's node_modules, wherever DIST is (the .deb compiles into
  // a staging folder under /tmp, which has none).
  nodePaths: [path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'node_modules')],
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  legalComments: 'inline',
  banner: {
    js: [
      '// yaml (ISC, Eemeli Aro), ini (ISC, Isaac Z. Schlueter and contributors), zod (MIT, Colin McDonnell),',
      '// bundled by scripts/bundle-config-libs.mjs; their licences ship with them in node_modules/.',
      // CommonJS inside an ES module bundle: a require() of a Node module needs a real require.
      "import { createRequire as pbxhookRequire } from 'node:module'; const require = pbxhookRequire(import.meta.url);",
    ].join('\n'),
  },
  logLevel: 'warning',
});
