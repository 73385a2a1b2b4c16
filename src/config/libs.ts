/**
 * The libraries that read and check a config file (yaml, ini, zod), imported from here only.
 *
 * Every command loads them at start-up, and loaded as their ~160 separate modules (zod brings
 * all its locales) they cost ~110 ms of CPU before any work: a fifth of `pbxhook replay`'s time
 * on the bench's trace. The build (scripts/bundle-config-libs.mjs) replaces this file in dist/
 * by one bundle of the three, which loads in about half that time (issue #15, README
 * "Start-up"). Nothing else changes: the same code of the same versions, and an unbundled
 * build (plain `tsc`) works the same, only slower to start.
 */
import { z } from 'zod';

// A config is checked once per start: compiling each object schema into a function (zod's JIT,
// `new Function`) costs more than it saves for one parse.
z.config({ jitless: true });

export { z };
export { parseDocument } from 'yaml';
export { parse as parseIni } from 'ini';
