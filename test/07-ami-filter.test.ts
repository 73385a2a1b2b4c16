import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AmiFramer } from '../src/ami/framer.js';
import { amiEventFilters } from '../src/ami/event-filter.js';
import { AMI_EVENTS } from '../src/ami/events.js';
import { wantsAmiEvent, wantsAmiEventNamed } from '../src/ami/normalise.js';
import { loadConfig } from '../src/config/load.js';
import { Pipeline } from '../src/pipeline.js';
import { loadTrace } from './support/fakeAmiServer.js';

/**
 * Replay skips unparsed the AMI events the model never reads (issue #7). That must change
 * nothing: every trace gives the same requests with and without the filter.
 */
const DIRS = ['test/fixtures/asterisk', 'test/fixtures/asterisk-synth', 'test/fixtures/asterisk-freepbx', 'test/fixtures/asterisk-freepbx-synth'];
const traces = DIRS.filter(existsSync).flatMap((d) => readdirSync(d).filter((f) => /\.ami(\.gz)?$/.test(f)).map((f) => join(d, f)));
const cfg = loadConfig('config/all-schemas.example.yaml');

function run(bytes: Buffer, filter: boolean): { requests: string[]; framer: AmiFramer } {
  const framer = new AmiFramer(filter ? { filter: wantsAmiEvent } : {});
  const p = new Pipeline(cfg);
  const requests: string[] = [];
  for (let i = 0; i < bytes.length; i += 4096) {
    for (const f of framer.push(bytes.subarray(i, i + 4096))) for (const r of p.amiFrame(f)) requests.push(JSON.stringify(r));
  }
  for (const f of framer.end()) for (const r of p.amiFrame(f)) requests.push(JSON.stringify(r));
  return { requests, framer };
}

describe('replay filter', () => {
  it.each(traces)('%s: same requests with the filter as without', (trace) => {
    const bytes = loadTrace(trace);
    const all = run(bytes, false);
    const some = run(bytes, true);
    expect(some.requests).toEqual(all.requests);
    expect(some.framer.stats.filtered).toBeGreaterThan(0);
    expect(some.framer.stats.frames + some.framer.stats.filtered).toBe(all.framer.stats.frames);
  });

  it('keeps unknown events and the VarSets the model reads', () => {
    const frame = Buffer.from('Event: VarSet\r\nVariable: QUEUESTATUS\r\nValue: TIMEOUT\r\n');
    expect(wantsAmiEvent('VarSet', frame, 0, frame.length)).toBe(true);
    const noise = Buffer.from('Event: VarSet\r\nVariable: SIPDOMAIN\r\nValue: x\r\n');
    expect(wantsAmiEvent('VarSet', noise, 0, noise.length)).toBe(false);
    expect(wantsAmiEvent('CEL', noise, 0, 0)).toBe(false);
    expect(wantsAmiEvent('BrandNewEvent', noise, 0, 0)).toBe(true);
    expect(wantsAmiEvent('Hangup', noise, 0, 0)).toBe(true);
  });

  // The README's manager.conf lines must pass everything pbxhook reads, or a filtered PBX loses calls.
  it("README's eventfilter passes every event and variable the normaliser reads", () => {
    const readme = readFileSync('README.md', 'utf8');
    const lines = [...readme.matchAll(/^eventfilter = (.+)$/gm)].map((m) => m[1]!);
    // The README shows what pbxhook asks Asterisk for at login, and check-config prints (issue #15).
    expect(lines).toEqual(amiEventFilters());
    const filters = lines.map((l) => new RegExp(l, 's'));
    expect(filters.length).toBeGreaterThan(0);
    const passes = (text: string): boolean => filters.some((f) => f.test(text));
    const read = AMI_EVENTS.filter((name) => name !== 'VarSet' && wantsAmiEventNamed(name, undefined));
    expect(read).toContain('HangupRequest');
    // AMI_EVENTS lists both spellings Asterisk versions used (Newexten, NewExten): one must pass.
    const spellings = new Map<string, string[]>();
    for (const name of read) spellings.set(name.toLowerCase(), [...(spellings.get(name.toLowerCase()) ?? []), name]);
    // A dialplan step passes where it can name a route (test/09 has the cases).
    const text = (n: string): string => (n.toLowerCase() === 'newexten' ? `Event: ${n}\r\nContext: ext-queues\r\nExten: 400\r\nApplication: Set\r\n` : `Event: ${n}`);
    for (const [name, names] of spellings) expect(names.some((n) => passes(text(n))), name).toBe(true);
    for (const v of ['MIXMONITOR_FILENAME', 'QUEUESTATUS']) {
      expect(wantsAmiEventNamed('VarSet', v)).toBe(true);
      expect(passes(`Event: VarSet\r\nVariable: ${v}`), v).toBe(true);
    }
    for (const cel of ['STREAM_BEGIN', 'STREAM_END']) {
      expect(wantsAmiEventNamed('CEL', cel)).toBe(true);
      expect(passes(`Event: CEL\r\nEventName: ${cel}`), cel).toBe(true);
    }
  });

  it('keeps the CEL prompt events of VoiceMail, which bound a message\'s length (issue #12 item 6)', () => {
    const cel = (name: string, app: string): Buffer => Buffer.from(`Event: CEL\r\nEventName: ${name}\r\nApplication: ${app}\r\n`);
    for (const [frame, want] of [[cel('STREAM_BEGIN', 'VoiceMail'), true], [cel('STREAM_END', 'VoiceMail'), true], [cel('STREAM_BEGIN', 'Playback'), false], [cel('HANGUP', 'VoiceMail'), false]] as const) {
      expect(wantsAmiEvent('CEL', frame, 0, frame.length), frame.toString()).toBe(want);
    }
    // Live, only the EventName is known before a frame is built.
    expect(wantsAmiEventNamed('CEL', 'STREAM_END')).toBe(true);
    expect(wantsAmiEventNamed('CEL', 'ANSWER')).toBe(false);
    expect(wantsAmiEventNamed('CEL', undefined)).toBe(false);
  });
});
