import { wantsAmiEvent } from '../src/ami/normalise.js';
import { callTemplate, copy } from './live-memory.js';
import { type LiveDaemon, mb, settled, startLiveDaemon } from './live-daemon.js';

/**
 * Issue #15: does the live daemon's memory stay flat as calls come and go? A fake AMI server streams
 * `calls` calls into `pbxhook run` (socket → daemon, outbox and ops on, the unit's node flags),
 * `window` of them up at any moment: each call is the recorded in-queue-answered call as Asterisk
 * sends it with the README's event filter (36 events, ~17 KB; renumbered and re-timed per copy),
 * call i's start written together with call i−window's end. At each sample point (calls started) the server stops,
 * waits until the daemon has followed every call and delivered every webhook, and the bench reads
 * RSS (/proc) and the JS heap (/metrics); the state is the same at every point (`window` calls up,
 * an empty outbox), so what differs is what the calls before left behind.
 * The endpoint sends the 3CX call log only (`events = incoming`): one webhook per call, so the
 * outbox's rate does not set the run's length.
 *
 * The stream is paced (issue #15): every `paceEvery` calls it waits until the daemon has read every
 * call written and owes at most `backlog` webhooks. Unpaced, the daemon read ~2,000 calls/s while
 * the outbox delivered ~1,000 webhooks/s, so between the 1M run's samples (150k–500k calls apart)
 * the backlog passed `delivery.max_rows` (100,000) and the outbox dead-lettered the oldest, as
 * designed (PBXHOOK_OUTBOX_FULL): 413,736 of 999,000 webhooks arrived, though the outbox was empty
 * at every sample. Each sample now fails the run unless every ended call's webhook arrived.
 */
export interface ChurnSample {
  readonly calls: number;
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  /** Seconds since the first call. */
  readonly s: number;
  /** Webhooks the receiver counted so far, and calls ended: one webhook per ended call is expected. */
  readonly received: number;
  readonly ended: number;
  /** The daemon's own counts (/metrics): where a webhook that was not received went. */
  readonly counts: Record<string, number>;
  /** The daemon's warning/error log lines so far, by message. */
  readonly warnings: Record<string, number>;
}

export interface LiveChurnResult {
  readonly calls: number;
  readonly window: number;
  readonly baselineRss: number;
  readonly samples: readonly ChurnSample[];
  readonly webhooks: number;
  readonly environment: string;
}

/** The template's frames the README's filter lets through, split at the caller's HangupRequest. */
function filteredHalves(): [string, string] {
  const frames = callTemplate('whole').split('\r\n\r\n').filter((f) => {
    const b = Buffer.from(`${f}\r\n\r\n`, 'latin1');
    const name = /^Event: (\S+)/.exec(f)?.[1];
    return name !== undefined && wantsAmiEvent(name, b, 0, b.length);
  });
  const cut = frames.findIndex((f) => f.startsWith('Event: HangupRequest'));
  const join = (fs: string[]): string => fs.map((f) => `${f}\r\n\r\n`).join('');
  return [join(frames.slice(0, cut)), join(frames.slice(cut))];
}

/** The metrics each sample keeps: calls by outcome, webhooks by outcome and state, skipped frames. */
const COUNTED = ['pbxhook_calls_total', 'pbxhook_webhooks_total', 'pbxhook_outbox_webhooks', 'pbxhook_dead_letters', 'pbxhook_frames_skipped_total', 'pbxhook_routing_held'];

/** Sample points: 100k, 250k, 500k, 1M for a million calls (the figure), the same fractions of fewer. */
export const churnPoints = (calls: number): number[] => [0.1, 0.25, 0.5, 1].map((f) => Math.round(calls * f));

export interface ChurnOptions {
  /** Calls up at any moment. */
  readonly window?: number;
  /** Webhooks the daemon may owe when the stream goes on (checked every `paceEvery` calls). */
  readonly backlog?: number;
  readonly paceEvery?: number;
  /** The daemon's `delivery.max_rows` (absent: the shipped default). */
  readonly maxRows?: number;
}

/** Why a sample shows webhooks missing, or undefined when one arrived per ended call and none went dead. */
export function shortfall(s: Pick<ChurnSample, 'calls' | 'received' | 'ended' | 'counts' | 'warnings'>): string | undefined {
  const dead = Object.entries(s.counts)
    .filter(([k]) => k.startsWith('pbxhook_dead_letters_total'))
    .reduce((n, [, v]) => n + v, 0);
  if (s.received === s.ended && dead === 0) return undefined;
  return `at ${s.calls} calls the receiver counted ${s.received} webhooks where ${s.ended} were expected (one per ended call); ` +
    `dead letters ${dead}; the daemon's warnings and errors: ${JSON.stringify(s.warnings)}`;
}

export async function liveChurn(calls: number, o: ChurnOptions = {}): Promise<LiveChurnResult> {
  const { window = 1000, backlog = 10_000, paceEvery = 1000, maxRows } = o;
  let daemon: LiveDaemon | undefined;
  const [startHalf, endHalf] = filteredHalves();
  const first = Number(/^Timestamp: (\d+\.\d+)\r$/m.exec(startHalf)![1]);
  const points = churnPoints(calls);
  let resume: () => void = () => undefined;
  let paused: number | undefined;
  let go: () => void = () => undefined;
  const start = new Promise<void>((r) => (go = r));
  // The daemon has read the first `written` calls (and the ends written with them) and owes at most `backlog` webhooks.
  const caughtUp = async (written: number): Promise<boolean> => {
    const m = await daemon!.scrape();
    return (
      m['pbxhook_calls_total{outcome="started"}'] === written &&
      m['pbxhook_calls_total{outcome="ended"}'] === Math.max(0, written - window) &&
      (m['pbxhook_outbox_depth'] ?? Infinity) <= backlog
    );
  };
  const d = await startLiveDaemon({
    events: 'incoming',
    ...(maxRows === undefined ? {} : { maxRows }),
    stream: (sock) =>
      void (async () => {
        await start;
        // 2 ms apart in PBX time: calls last ~30 s, so about `window` overlap as they would live.
        const t0 = Date.now() / 1000;
        const write = async (b: Buffer): Promise<void> => {
          if (!sock.write(b)) await new Promise((r) => sock.once('drain', r));
        };
        for (let i = 0; i < calls; i++) {
          await write(copy(startHalf, i, t0 + i * 0.002, first));
          if (i >= window) await write(copy(endHalf, i - window, t0 + (i - window) * 0.002, first));
          if ((i + 1) % paceEvery === 0) await daemon!.until(() => caughtUp(i + 1), `the daemon to catch up at call ${i + 1}`, 600_000);
          if (points.includes(i + 1)) {
            paused = i + 1;
            await new Promise<void>((r) => (resume = r));
          }
        }
      })(),
  });
  daemon = d;
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const baselineRss = d.rssMb();
    const samples: ChurnSample[] = [];
    const t0 = performance.now();
    go();
    for (const point of points) {
      // Paused with `point` calls started and the last `window` of them up.
      await d.until(() => paused === point, `the stream to reach call ${point}`, 1_200_000);
      const m = await settled(d, Math.min(window, point), point, 600_000);
      samples.push({
        calls: point,
        rss: d.rssMb(),
        heapUsed: mb(m['pbxhook_nodejs_heap_size_used_bytes']),
        heapTotal: mb(m['pbxhook_nodejs_heap_size_total_bytes']),
        s: Math.round((performance.now() - t0) / 100) / 10,
        received: d.webhooks(),
        ended: point - Math.min(window, point),
        counts: Object.fromEntries(Object.entries(m).filter(([k]) => COUNTED.some((c) => k.startsWith(c)))),
        warnings: d.warnings(),
      });
      process.stderr.write(`churn ${JSON.stringify(samples.at(-1))}\n`);
      const missing = shortfall(samples.at(-1)!);
      if (missing !== undefined) throw new Error(`live churn: webhooks missing: ${missing}`);
      resume();
    }
    return { calls, window, baselineRss, samples, webhooks: d.webhooks(), environment: d.environment };
  } finally {
    d.stop();
  }
}
