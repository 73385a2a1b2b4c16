import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PbxEvent } from '../src/core/events.js';
import { openStore } from '../src/deliver/outbox.js';
import { benchPipeline } from './bench-pipeline.js';

/**
 * What saving the live calls costs each outbox commit (issue #14 item 2 → item 3 of the follow-up):
 * `calls` calls are up; each commit ends one of them and starts another (their webhooks, as the
 * daemon's pump writes them), so the number up stays `calls`. With `saving`, the commit also takes
 * what changed from the pipeline (`takeLiveState`: the calls touched, as JSON) and writes it to
 * `live_state` in the same transaction, as the daemon does; without, it writes the webhooks alone.
 * Timed: the commit (taking the state included), not the pipeline, which is the same either way.
 * Paired runs of the two in separate processes, interleaved, give the extra time (bench/run.ts).
 */
const trunk = { kind: 'trunk', id: 'trunk' } as const;

/** The smallest real call (trunk → queue → agent answers, recorded), as in bench/memory.ts. */
function opening(n: number, at: number): PbxEvent[] {
  const a = `${n}.1`;
  const b = `${n}.2`;
  return [
    { type: 'channel.created', at, channel: a, call: a, name: `PJSIP/trunk-${n}`, party: trunk, callerId: { num: '05552221133', name: '' }, dialed: '02125550800' },
    { type: 'route.entered', at, channel: a, role: 'queue', number: '820' },
    { type: 'recording.started', at, channel: a, file: `/var/spool/asterisk/monitor/${n}.wav` },
    { type: 'channel.created', at, channel: b, call: a, name: `PJSIP/202-${n}`, party: { kind: 'extension', id: '202' }, callerId: { num: '202', name: '' }, dialed: 's' },
    { type: 'dial.begin', at, from: a, to: b, target: 'PJSIP/202' },
    { type: 'channel.ringing', at, channel: b },
    { type: 'dial.end', at: at + 3000, from: a, to: b, status: 'answer' },
  ];
}

function closing(n: number, at: number): PbxEvent[] {
  return [
    { type: 'channel.hangup', at, channel: `${n}.2`, cause: 16 },
    { type: 'channel.hangup', at, channel: `${n}.1`, cause: 16 },
  ];
}

export interface LiveStateResult {
  calls: number;
  commits: number;
  saving: boolean;
  /** Per commit, in µs. */
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  /**
   * CPU time per commit, in µs (user + system, the whole process's: the checkpoint thread's share
   * included): unlike the wall times, it does not count the time a busy machine's neighbours had.
   */
  cpu: number;
  /** Webhooks written per commit, on average (the same with and without saving). */
  webhooksPerCommit: number;
  /** The live_state rows and their mean size once the calls are up (0 without saving). */
  stateRows: number;
  stateBytesPerRow: number;
}

export function liveStateCommits(calls: number, commits: number, saving: boolean): LiveStateResult {
  const dir = mkdtempSync(join(tmpdir(), 'pbxhook-bench-live-state-'));
  // As the daemon opens it (src/deliver/outbox.ts): the WAL copied on a thread, not inside commits.
  let checkpointFailure: Error | undefined;
  const store = openStore(dir, { backgroundCheckpoints: { onError: (err) => void (checkpointFailure = err) } });
  try {
    const p = benchPipeline();
    if (saving) p.trackLiveState();
    let at = 1_800_000_000_000;
    const now = Date.now();
    // The calls come up (not timed), written as the daemon would have written them.
    const setup = Array.from({ length: calls }, (_, i) => opening(i, at)).flat().flatMap((e) => p.pbxEvent(e));
    store.inTransaction(() => {
      store.insert(setup, now);
      if (saving) store.saveLiveState(p.takeLiveState());
    });
    const rows = saving ? store.liveState() : [];
    const stateBytesPerRow = rows.length === 0 ? 0 : rows.reduce((n, [k, v]) => n + k.length + v.length, 0) / rows.length;

    const times: number[] = [];
    let cpu = 0;
    let webhooks = 0;
    for (let i = 0; i < commits; i++) {
      at += 1000;
      const events = [...closing(i, at), ...opening(calls + i, at)];
      const reqs = events.flatMap((e) => p.pbxEvent(e));
      webhooks += reqs.length;
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      store.inTransaction(() => {
        store.insert(reqs, now);
        if (saving) store.saveLiveState(p.takeLiveState());
      });
      times.push((performance.now() - t0) * 1000);
      const c = process.cpuUsage(c0);
      cpu += c.user + c.system;
    }
    if (p.tracker.liveCalls !== calls) throw new Error(`expected ${calls} calls up, have ${p.tracker.liveCalls}`);
    if (checkpointFailure) throw checkpointFailure;
    times.sort((a, b) => a - b);
    const q = (f: number): number => Math.round(times[Math.min(times.length - 1, Math.floor(f * times.length))]! * 10) / 10;
    return {
      calls,
      commits,
      saving,
      p50: q(0.5),
      p90: q(0.9),
      p99: q(0.99),
      mean: Math.round((times.reduce((s, t) => s + t, 0) / times.length) * 10) / 10,
      cpu: Math.round((cpu / commits) * 10) / 10,
      webhooksPerCommit: webhooks / commits,
      stateRows: rows.length,
      stateBytesPerRow: Math.round(stateBytesPerRow),
    };
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
