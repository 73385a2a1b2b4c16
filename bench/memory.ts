import type { PbxEvent } from '../src/core/events.js';
import { benchPipeline } from './bench-pipeline.js';

/**
 * Issue #7 §4: RSS with N calls live at once, and after M calls have come and gone. Calls are
 * the smallest real shape (trunk → queue → agent answers → both hang up), fed as neutral events.
 */
const trunk = { kind: 'trunk', id: 'trunk' } as const;

function* callEvents(n: number, at: number, phase: 'open' | 'close'): Generator<PbxEvent> {
  const a = `${n}.1`;
  const b = `${n}.2`;
  if (phase === 'open') {
    yield { type: 'channel.created', at, channel: a, call: a, name: `PJSIP/trunk-${n}`, party: trunk, callerId: { num: '05552221133', name: '' }, dialed: '02125550800' };
    yield { type: 'route.entered', at, channel: a, role: 'queue', number: '820' };
    yield { type: 'recording.started', at, channel: a, file: `/var/spool/asterisk/monitor/${n}.wav` };
    yield { type: 'channel.created', at, channel: b, call: a, name: `PJSIP/202-${n}`, party: { kind: 'extension', id: '202' }, callerId: { num: '202', name: '' }, dialed: 's' };
    yield { type: 'dial.begin', at, from: a, to: b, target: 'PJSIP/202' };
    yield { type: 'channel.ringing', at, channel: b };
    yield { type: 'dial.end', at: at + 3000, from: a, to: b, status: 'answer' };
  } else {
    yield { type: 'channel.hangup', at, channel: b, cause: 16 };
    yield { type: 'channel.hangup', at, channel: a, cause: 16 };
  }
}

function heapMb(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return Math.round((process.memoryUsage().heapUsed / 1024 / 1024) * 10) / 10;
}

function rssMb(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return Math.round((process.memoryUsage().rss / 1024 / 1024) * 10) / 10;
}

export function memory(
  live: number,
  total: number,
): { baseline: number; liveRss: number; afterSmall: number; afterLarge: number; heapLive: number; heapSmall: number; heapLarge: number; ms: number } {
  const baseline = rssMb();
  const p = benchPipeline();
  const t = p.tracker;
  // Requests are rendered and dropped: this measures what the daemon keeps, not an outbox.
  const handle = (e: PbxEvent): void => void p.pbxEvent(e);
  let at = 1_800_000_000_000;
  for (let i = 0; i < live; i++) for (const e of callEvents(i, at, 'open')) handle(e);
  const liveRss = rssMb();
  const heapLive = heapMb();
  if (t.liveCalls !== live) throw new Error(`expected ${live} live calls, have ${t.liveCalls}`);
  for (let i = 0; i < live; i++) for (const e of callEvents(i, at + 10_000, 'close')) handle(e);
  const afterSmall = rssMb();
  const heapSmall = heapMb();
  const t0 = performance.now();
  // Then `total` calls through, `live` at a time, on an advancing clock.
  for (let base = live; base < total; base += live) {
    at += 60_000;
    for (let i = base; i < base + live; i++) for (const e of callEvents(i, at, 'open')) handle(e);
    for (let i = base; i < base + live; i++) for (const e of callEvents(i, at + 10_000, 'close')) handle(e);
  }
  const ms = performance.now() - t0;
  if (t.liveCalls !== 0 || t.channels.size !== 0) throw new Error('calls left in the tracker');
  return { baseline, liveRss, afterSmall, afterLarge: rssMb(), heapLive, heapSmall, heapLarge: heapMb(), ms };
}
