/**
 * One clock (issue #14 item 6): the live daemon times idle calls and resyncs on the PBX's clock, as
 * its events tell it, never on the host's. Here with injected host clocks: the PBX 6 h behind and
 * 6 h ahead of the host tells the same story as replay, and a call that loses its Hangup is still
 * closed after `calls.idle_timeout_seconds` of PBX time. A call whose caller was never known ends
 * without a word.
 */
import { describe, expect, it } from 'vitest';
import { frameAll } from '../src/ami/framer.js';
import type { AmiFrame } from '../src/ami/frame.js';
import { loadConfig } from '../src/config/load.js';
import { PbxClock } from '../src/core/clock.js';
import type { LifecycleEvent } from '../src/core/lifecycle.js';
import { Tracker } from '../src/core/tracker.js';
import type { WebhookRequest } from '../src/emit/request.js';
import { Pipeline } from '../src/pipeline.js';
import { loadTrace } from './support/fakeAmiServer.js';
import { LAB_CONFIG, replayTrace } from './support/replayTrace.js';

const TRACE = 'test/fixtures/asterisk/in-queue-answered.ami';
const SIX_HOURS = 6 * 3_600_000;
const cfg = loadConfig(LAB_CONFIG);
const IDLE_MS = cfg.calls.idleTimeoutSeconds * 1000;

/** The host's clocks, moved by the test: its wall clock `skewMs` behind the PBX's (ahead when negative). */
function host(skewMs: number) {
  const h = { mono: 5_000, wall: 0 };
  return {
    h,
    wall: () => h.wall,
    mono: () => h.mono,
    /** Host time passes: both of its clocks move on. */
    pass(ms: number) {
      h.mono += ms;
      h.wall += ms;
    },
    /** The host's wall clock set to read `skewMs` less than the PBX's time `pbxAt` (the PBX `skewMs` ahead). */
    setWallFromPbx(pbxAt: number) {
      h.wall = pbxAt - skewMs;
    },
  };
}

const timeOf = (f: AmiFrame): number | undefined => (f.fields['timestamp'] ? Math.round(Number(f.fields['timestamp']) * 1000) : undefined);

/**
 * The daemon's live loop with a PBX clock `skewMs` off the host's: each frame arrives when the
 * PBX stamped it (the host's clocks move on by the gaps), and a tick runs after every frame, as
 * often as any timer could.
 */
function live(frames: readonly AmiFrame[], skewMs: number): { requests: WebhookRequest[]; pipeline: Pipeline; clocks: ReturnType<typeof host> } {
  const clocks = host(skewMs);
  const pipeline = new Pipeline(cfg, clocks.wall, clocks.mono);
  const requests: WebhookRequest[] = [];
  let last: number | undefined;
  for (const f of frames) {
    const at = timeOf(f);
    if (at !== undefined) {
      if (last === undefined) clocks.setWallFromPbx(at);
      else if (at > last) clocks.pass(at - last);
      last = at;
    }
    requests.push(...pipeline.amiFrame(f));
    requests.push(...pipeline.tick(pipeline.pbxNow()));
  }
  return { requests, pipeline, clocks };
}

const bodies = (rs: readonly WebhookRequest[]) => rs.map((r) => `${r.endpoint} ${r.body}`);

describe('PbxClock', () => {
  it('is the host wall clock before any event, then the latest event time carried on by the monotonic clock', () => {
    const c = new PbxClock();
    expect(c.now(100, 1_000_000)).toBe(1_000_000);
    c.observe(50_000, 100);
    expect(c.now(100, 1_000_000)).toBe(50_000);
    expect(c.now(1_100, 9_999_999)).toBe(51_000);
    expect(c.skew(1_100, 51_000 + SIX_HOURS)).toBe(-SIX_HOURS);
  });
});

describe('the PBX clock hours off the host (issue #14 item 6)', () => {
  const { frames } = frameAll(loadTrace(TRACE));

  for (const [name, skew] of [['6 h behind', -SIX_HOURS], ['6 h ahead', SIX_HOURS]] as const) {
    it(`${name}: the same webhooks as replay`, async () => {
      const want = await replayTrace(TRACE, cfg);
      expect(want.lines.length).toBeGreaterThan(0);
      const { requests, pipeline } = live(frames, skew);
      expect(bodies(requests)).toEqual(want.lines.map((l) => {
        const r = JSON.parse(l) as WebhookRequest;
        return `${r.endpoint} ${r.body}`;
      }));
      expect(pipeline.tracker.stats.callsTimedOut).toBe(0);
      expect(pipeline.tracker.liveCalls).toBe(0);
    });

    it(`${name}: a call that lost its Hangup is closed after idle_timeout of PBX time, not before`, () => {
      // The call without its last Hangups: nothing would ever end it but the idle timeout.
      const cut = frames.findIndex((f) => f.fields['event'] === 'Hangup');
      const { pipeline, clocks } = live(frames.slice(0, cut), skew);
      expect(pipeline.tracker.liveCalls).toBe(1);
      const lastEvent = pipeline.tracker.lastEventAt;
      clocks.pass(IDLE_MS - 1_000);
      expect(pipeline.tick(pipeline.pbxNow())).toEqual([]);
      clocks.pass(2_000);
      const ended: LifecycleEvent[] = [];
      pipeline.onLifecycleEvent = (e) => ended.push(e);
      const out = pipeline.tick(pipeline.pbxNow());
      expect(out.length).toBeGreaterThan(0);
      const end = ended.find((e) => e.type === 'call.ended');
      expect(end?.type === 'call.ended' && end.call.endReason).toBe('idle-timeout');
      // Ended on the PBX's clock: idle_timeout after its last event, not hours off.
      expect(end!.at - lastEvent).toBeGreaterThanOrEqual(IDLE_MS);
      expect(end!.at - lastEvent).toBeLessThan(IDLE_MS + 5_000);
      for (const r of out.filter((x) => x.endpoint === 'crm-json')) {
        const b = JSON.parse(r.body) as Record<string, string>;
        expect(b['Callerid'], r.body).not.toBe('');
        expect(b['User'], r.body).not.toBe('');
      }
    });
  }

  it('an event without a Timestamp of its own gets the PBX time, not the host time', () => {
    const clocks = host(SIX_HOURS);
    const pipeline = new Pipeline(cfg, clocks.wall, clocks.mono);
    const [first] = frames.filter((f) => f.fields['event'] === 'Newchannel');
    clocks.setWallFromPbx(timeOf(first!)!);
    pipeline.amiFrame(first!);
    clocks.pass(1_000);
    const newstate = frames.find((f) => f.fields['event'] === 'Newstate')!;
    const untimed: AmiFrame = { ...newstate, fields: Object.fromEntries(Object.entries(newstate.fields).filter(([k]) => k !== 'timestamp')) };
    pipeline.amiFrame(untimed);
    expect(pipeline.tracker.lastEventAt).toBe(timeOf(first!)! + 1_000);
  });
});

describe('a call whose caller was never known', () => {
  const phone = (at: number) => ({
    type: 'channel.created' as const, at, channel: 'p1', call: 'p1', name: 'PJSIP/117-00000001',
    party: { kind: 'extension' as const, id: '117' }, callerId: { num: '117', name: '117' }, dialed: '',
  });

  it('ends without a word at its hangup: no end webhook without a caller', () => {
    const t = new Tracker(60_000);
    expect(t.handle(phone(1_000))).toEqual([]);
    expect(t.handle({ type: 'channel.hangup', at: 2_000, channel: 'p1', cause: 16 })).toEqual([]);
    expect(t.liveCalls).toBe(0);
    expect(t.stats.callsEnded).toBe(1);
  });

  it('ends without a word at its idle timeout', () => {
    const t = new Tracker(60_000);
    t.handle(phone(1_000));
    expect(t.tick(70_000)).toEqual([]);
    expect(t.liveCalls).toBe(0);
    expect(t.stats.callsTimedOut).toBe(1);
  });
});
