/**
 * Live calls across a restart (issue #14 item 2), without I/O: every trace is cut after each of its
 * frames; the state saved up to the cut (`takeLiveState`, as the daemon writes it at each commit) is
 * restored into a fresh pipeline, which reads the rest. The webhooks must be those of the trace read
 * without a cut, to the byte: every call continues as if nothing had happened. This also proves
 * the change tracking: a change not saved would show at some cut.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AmiFramer } from '../src/ami/framer.js';
import { loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/types.js';
import { decodeCall, encodeCall } from '../src/core/persist.js';
import { callOf } from '../src/deliver/outbox-state.js';
import { LIVE_CALL_KEY_PREFIX } from '../src/deliver/store.js';
import { EslFramer } from '../src/esl/framer.js';
import { Pipeline } from '../src/pipeline.js';
import { traceStream } from '../src/replay.js';
import { ROOT } from './support/e2e.js';

async function bytesOf(file: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of traceStream(file)) chunks.push(c);
  return Buffer.concat(chunks);
}

/** Every request one frame makes, as the body lines replay prints. */
type Feed = (p: Pipeline, frame: unknown) => string[];

const lines = (rs: ReturnType<Pipeline['pbxEvent']>) => rs.map((r) => `${r.endpoint} ${r.method} ${r.url} ${r.body}`);

async function framesOf(file: string): Promise<{ frames: unknown[]; feed: Feed }> {
  const bytes = await bytesOf(file);
  if (/\.ami(\.gz)?$/.test(file)) {
    const f = new AmiFramer();
    return { frames: [...f.push(bytes), ...f.end()], feed: (p, fr) => lines(p.amiFrame(fr as never)) };
  }
  const f = new EslFramer();
  return { frames: [...f.push(bytes), ...f.end()], feed: (p, fr) => lines(p.eslFrame(fr as never)) };
}

const SUITES: Array<{ dir: string; ext: RegExp; config: string }> = [
  { dir: 'test/fixtures/asterisk', ext: /\.ami$/, config: 'config/all-schemas.example.yaml' },
  { dir: 'test/fixtures/asterisk-synth', ext: /\.ami$/, config: 'config/all-schemas.example.yaml' },
  { dir: 'test/fixtures/asterisk-freepbx', ext: /\.ami$/, config: 'config/freepbx.example.yaml' },
  { dir: 'test/fixtures/freeswitch', ext: /\.esl$/, config: 'config/freeswitch-lab.example.yaml' },
  { dir: 'test/fixtures/freeswitch-synth', ext: /\.esl$/, config: 'config/freeswitch-lab.example.yaml' },
];

/** The saved state as the database holds it: later changes replace earlier ones, a gone key is deleted. */
function save(into: Map<string, string>, p: Pipeline): void {
  for (const [k, v] of p.takeLiveState()) {
    if (v === undefined) into.delete(k);
    else into.set(k, v);
  }
}

for (const s of SUITES) {
  const dir = path.join(ROOT, s.dir);
  const traces = readdirSync(dir).filter((f) => s.ext.test(f));
  describe(`restart after any frame: ${s.dir}`, () => {
    let cfg: Config;
    it.each(traces)('%s: the same webhooks as without a restart', async (name) => {
      cfg ??= loadConfig(path.join(ROOT, s.config));
      const { frames, feed } = await framesOf(path.join(dir, name));
      const whole = new Pipeline(cfg);
      const want = frames.flatMap((f) => feed(whole, f));
      expect(want.length).toBeGreaterThan(0);
      for (let cut = 0; cut <= frames.length; cut++) {
        const before = new Pipeline(cfg);
        before.trackLiveState();
        const saved = new Map<string, string>();
        const got: string[] = [];
        frames.slice(0, cut).forEach((f, i) => {
          got.push(...feed(before, f));
          if (i % 3 === 0 || i === cut - 1) save(saved, before); // commits cover one or several events
        });
        const after = new Pipeline(cfg);
        after.restoreLiveState(saved);
        expect(after.tracker.liveCalls, `calls at cut ${cut}`).toBe(before.tracker.liveCalls);
        for (const f of frames.slice(cut)) got.push(...feed(after, f));
        expect(got, `${name} cut after frame ${cut}`).toEqual(want);
      }
    });
  });
}

/**
 * The outbox keeps a lane (`endpoint:call`) while its call is in the live state (`call:<id>`), so a
 * call that goes on for days never starts its webhook-sequence over. That holds only if the lanes
 * the renderers name and the calls the pipeline saves are the same ids: after every webhook that
 * its lane will follow with another, the saved state holds its call.
 */
describe('a lane’s call is in the saved live state until its last webhook', () => {
  it.each(SUITES)('$dir', async (s) => {
    const cfg = loadConfig(path.join(ROOT, s.config));
    const dir = path.join(ROOT, s.dir);
    let checked = 0;
    for (const name of readdirSync(dir).filter((f) => s.ext.test(f))) {
      const { frames } = await framesOf(path.join(dir, name));
      const p = new Pipeline(cfg);
      p.trackLiveState();
      const saved = new Map<string, string>();
      const perFrame = frames.map((f) => {
        const reqs = s.ext.source.includes('ami') ? p.amiFrame(f as never) : p.eslFrame(f as never);
        save(saved, p);
        return { reqs, live: new Set(saved.keys()) };
      });
      // Per lane, its webhooks of later frames: a frame's own may end the call (its end webhooks).
      const later = new Map<string, number>();
      for (const { reqs } of perFrame) for (const r of reqs) later.set(r.orderKey, (later.get(r.orderKey) ?? 0) + 1);
      for (const { reqs, live } of perFrame) {
        for (const r of reqs) later.set(r.orderKey, later.get(r.orderKey)! - 1);
        for (const r of new Map(reqs.map((q) => [q.orderKey, q])).values()) {
          const lane = r.orderKey;
          if (later.get(lane) === 0) continue;
          expect(live.has(`${LIVE_CALL_KEY_PREFIX}${callOf(r)}`), `${name}: ${lane} has ${later.get(lane)} webhooks to come`).toBe(true);
          checked++;
        }
      }
    }
    expect(checked, 'lanes with webhooks still to come').toBeGreaterThan(0);
  });
});

/**
 * The one-call traces above cannot show what a restart does to the calls after it: FreeSWITCH's
 * call ids carry no number, so 3CX payloads number its calls in order (`…_N-K`), and a restart must
 * carry the count on. The load trace (80 calls, several at once) is cut at evenly spaced frames.
 */
describe('restart in the middle of many FreeSWITCH calls', () => {
  it('load.esl.gz: the calls after each cut are numbered on, as without a restart', async () => {
    const cfg = loadConfig(path.join(ROOT, 'config/freeswitch-lab.example.yaml'));
    const { frames, feed } = await framesOf(path.join(ROOT, 'test/fixtures/freeswitch/load.esl.gz'));
    const whole = new Pipeline(cfg);
    const want = frames.flatMap((f) => feed(whole, f));
    expect(want.some((l) => /_79-\d/.test(l)), 'the 3CX ids number the calls (from 0)').toBe(true);
    const CUTS = 6;
    for (let k = 1; k <= CUTS; k++) {
      const cut = Math.floor((frames.length * k) / (CUTS + 1));
      const before = new Pipeline(cfg);
      before.trackLiveState();
      const saved = new Map<string, string>();
      const got = frames.slice(0, cut).flatMap((f) => feed(before, f));
      save(saved, before);
      expect(saved.get('numbering')).toBe(JSON.stringify({ nextCall: before.tracker.nextCallNumber }));
      const after = new Pipeline(cfg);
      after.restoreLiveState(saved);
      for (const f of frames.slice(cut)) got.push(...feed(after, f));
      expect(got, `cut after frame ${cut}`).toEqual(want);
    }
  });
});

describe('call records', () => {
  it('keep undefined values and the order of keys; another version is not read', async () => {
    const { frames, feed } = await framesOf(path.join(ROOT, 'test/fixtures/asterisk/in-queue-answered.ami'));
    const p = new Pipeline(loadConfig(path.join(ROOT, 'config/all-schemas.example.yaml')));
    p.trackLiveState();
    for (const f of frames.slice(0, Math.floor(frames.length / 2))) feed(p, f);
    const call = [...p.tracker.calls.values()][0]!;
    const record = { call, channels: call.channelIds.map((id) => p.tracker.channels.get(id)!) };
    const back = decodeCall(encodeCall(record))!;
    expect(back.call).toStrictEqual(call);
    expect(Object.keys(back.call)).toEqual(Object.keys(call));
    expect(back.channels).toStrictEqual(record.channels);
    expect(decodeCall(encodeCall(record).replace('"v":1', '"v":99'))).toBeUndefined();
    expect(decodeCall('not json')).toBeUndefined();
  });
});
