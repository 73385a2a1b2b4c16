import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { READ_AMI_KEYS } from '../src/ami/fields.js';
import type { AmiFrame } from '../src/ami/frame.js';
import { AmiFramer } from '../src/ami/framer.js';
import { loadConfig } from '../src/config/load.js';
import { Pipeline } from '../src/pipeline.js';
import { loadTrace } from './support/fakeAmiServer.js';

/**
 * The live client and replay build only the values of READ_AMI_KEYS (issue #15). That must change
 * nothing: every trace gives the same requests with every key as with those, and every key the
 * pipeline reads over the traces is listed (a key read but not listed would read as "").
 */
const DIRS = ['test/fixtures/asterisk', 'test/fixtures/asterisk-synth', 'test/fixtures/asterisk-freepbx', 'test/fixtures/asterisk-freepbx-synth'];
const traces = DIRS.filter(existsSync).flatMap((d) => readdirSync(d).filter((f) => /\.ami(\.gz)?$/.test(f)).map((f) => join(d, f)));
const cfg = loadConfig('config/all-schemas.example.yaml');

/** The trace's requests; `read` hears every key the pipeline looks up in a frame's fields. */
function run(bytes: Buffer, keys: ReadonlySet<string> | undefined, read?: (key: string) => void): string[] {
  const framer = new AmiFramer(keys ? { keys } : {});
  const p = new Pipeline(cfg);
  const requests: string[] = [];
  const feed = (frames: AmiFrame[]): void => {
    for (const f of frames) {
      const frame = read ? { ...f, fields: new Proxy(f.fields, { get: (t, k) => (typeof k === 'string' && read(k), t[k as string]) }) } : f;
      for (const r of p.amiFrame(frame)) requests.push(JSON.stringify(r));
    }
  };
  for (let i = 0; i < bytes.length; i += 4096) feed(framer.push(bytes.subarray(i, i + 4096)));
  feed(framer.end());
  return requests;
}

describe('AMI keys read', () => {
  it.each(traces)('%s: same requests with the keys pbxhook reads as with every key', (trace) => {
    const bytes = loadTrace(trace);
    const read = new Set<string>();
    const all = run(bytes, undefined, (k) => read.add(k));
    expect(run(bytes, READ_AMI_KEYS)).toEqual(all);
    expect([...read].filter((k) => !READ_AMI_KEYS.has(k))).toEqual([]);
  });

  it('steps over the other keys but still frames a message of unread keys only', () => {
    const framer = new AmiFramer({ keys: new Set(['event', 'uniqueid']) });
    const frames = framer.push(Buffer.from('Event: Newexten\r\nChannel: PJSIP/1-1\r\nUniqueid: 1.2\r\n\r\nPrivilege: x\r\n\r\n'));
    expect(frames).toEqual([{ fields: { event: 'Newexten', uniqueid: '1.2' } }, { fields: {} }]);
    expect(framer.stats.malformedLines).toBe(0);
  });
});
