import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { READ_AMI_KEYS } from './ami/fields.js';
import { AmiFramer } from './ami/framer.js';
import { wantsAmiEvent } from './ami/normalise.js';
import { EslFramer } from './esl/framer.js';
import type { InferredRoute } from './core/roles.js';
import type { Pipeline } from './pipeline.js';
import type { WebhookRequest } from './emit/request.js';

export interface ReplaySummary {
  readonly frames: number;
  readonly events: number;
  readonly requests: number;
  readonly callsStarted: number;
  readonly callsEnded: number;
  /** Calls the trace never finished (cut recording): left open, not invented an ending. */
  readonly callsOpen: number;
  /** Calls closed after `calls.idle_timeout_seconds` of trace time without an event (a lost Hangup). */
  readonly callsTimedOut: number;
  readonly framesSkipped: number;
  readonly unknownEvents: number;
  /**
   * Events about a channel the tracker never saw created (the trace began mid-call, or lost an
   * event): decoded, then ignored. The daemon counts them as `pbxhook_frames_skipped_total{reason="orphan"}`.
   */
  readonly orphanEvents: number;
  /** `signal` stopped the replay before the trace's end: the counts cover only what was read. */
  readonly stoppedEarly: boolean;
  /**
   * Every IVR, queue, ring group and voicemail the trace went through, with the rule that named it
   * (a `roles:` key, a FreePBX context, an application): what pbxhook inferred, for the tester.
   */
  readonly routes: readonly InferredRoute[];
}

export interface ReplayOptions {
  readonly onProgress?: OnReplayProgress | undefined;
  /** Stops the replay between two frames (`pbxhook replay`: the reader closed stdout). */
  readonly signal?: AbortSignal | undefined;
  /**
   * Awaited after each chunk of the trace when it returns a promise: the output's backpressure,
   * so a replay reads no faster than its reader and notices promptly when the reader goes away.
   */
  readonly drained?: (() => Promise<void> | undefined) | undefined;
}

/** Where a replay is, for a progress bar: file bytes read (compressed for .gz), events, calls. */
export interface ReplayProgress {
  readonly bytesRead: number;
  readonly events: number;
  readonly calls: number;
}

export type OnReplayProgress = (p: ReplayProgress) => void;

/** The bytes of a trace file, gunzipped when it ends in .gz; `bytesRead` counts the file's own bytes. */
function openTrace(path: string): { chunks: AsyncIterable<Buffer>; bytesRead: () => number; close: () => void } {
  const raw = createReadStream(path, { highWaterMark: 256 * 1024 });
  // Leaving a for-await destroys the gunzip stream only; `close` lets go of the file too.
  return { chunks: path.endsWith('.gz') ? raw.pipe(createGunzip()) : raw, bytesRead: () => raw.bytesRead, close: () => raw.destroy() };
}

/** The bytes of a trace file, gunzipped when it ends in .gz. */
export function traceStream(path: string): AsyncIterable<Buffer> {
  return openTrace(path).chunks;
}

/** The line `replay` prints: what goes on the wire, with the bearer token masked. */
export function requestLine(r: WebhookRequest, tokens: ReadonlyMap<string, string>): string {
  const headers = tokens.has(r.endpoint) ? { ...r.headers, authorization: 'Bearer ***' } : r.headers;
  return JSON.stringify({ endpoint: r.endpoint, method: r.method, url: r.url, headers, body: r.body });
}

/** Idle calls are closed on the trace's own clock, checked once a minute of trace time. */
const TICK_MS = 60_000;

/** Anything that turns bytes into frames: the AMI and ESL framers. */
interface Framer<F> {
  push(chunk: Buffer): F[];
  end(): F[];
}

/**
 * Feeds a trace through a framer into the pipeline, closing idle calls on the trace's own clock.
 * Returns how many requests were made, and whether `signal` stopped it before the trace's end.
 */
async function feedTrace<F>(
  path: string,
  framer: Framer<F>,
  toRequests: (f: F) => WebhookRequest[],
  pipeline: Pipeline,
  onRequest: (r: WebhookRequest) => void,
  opts: Omit<ReplayOptions, 'onProgress'> & { onChunk?: ((bytesRead: number) => void) | undefined },
): Promise<{ requests: number; stoppedEarly: boolean }> {
  const { signal, drained, onChunk } = opts;
  let requests = 0;
  let nextTick = 0;
  let stoppedEarly = false;
  const emit = (rs: WebhookRequest[]): void => {
    for (const r of rs) {
      requests++;
      onRequest(r);
    }
  };
  // Checked between frames, so each PBX event's requests are all made or none (as the daemon enqueues them).
  const feed = (frames: F[]): void => {
    for (const f of frames) {
      if (signal?.aborted) {
        stoppedEarly = true;
        return;
      }
      emit(toRequests(f));
      const at = pipeline.tracker.lastEventAt;
      if (at >= nextTick) {
        if (nextTick !== 0) emit(pipeline.tick(at));
        nextTick = at + TICK_MS;
      }
    }
  };
  const trace = openTrace(path);
  try {
    for await (const chunk of trace.chunks) {
      feed(framer.push(chunk));
      if (stoppedEarly) break;
      onChunk?.(trace.bytesRead());
      const wait = drained?.();
      if (wait) await wait;
      if (signal?.aborted) {
        stoppedEarly = true;
        break;
      }
    }
  } finally {
    trace.close();
  }
  if (stoppedEarly) return { requests, stoppedEarly };
  feed(framer.end());
  onChunk?.(trace.bytesRead());
  return { requests, stoppedEarly };
}

/** What the tracker counted, the same for either PBX. */
function trackerCounts(pipeline: Pipeline): Pick<ReplaySummary, 'callsStarted' | 'callsEnded' | 'callsOpen' | 'callsTimedOut' | 'orphanEvents' | 'routes'> {
  const ts = pipeline.tracker.stats;
  return {
    routes: pipeline.roles.inferred(),
    callsStarted: ts.callsStarted,
    callsEnded: ts.callsEnded,
    callsOpen: pipeline.tracker.liveCalls,
    callsTimedOut: ts.callsTimedOut,
    orphanEvents: ts.orphanEvents,
  };
}

/** Replays a recorded AMI session through the same pipeline the daemon runs live. */
export async function replayAmi(
  path: string,
  pipeline: Pipeline,
  onRequest: (r: WebhookRequest) => void,
  opts: ReplayOptions = {},
): Promise<ReplaySummary> {
  // The frames the live client reads: the same events, the same keys (issue #15).
  const framer = new AmiFramer({ filter: wantsAmiEvent, keys: READ_AMI_KEYS });
  const { onProgress } = opts;
  const onChunk = onProgress && ((bytesRead: number) =>
    onProgress({ bytesRead, events: pipeline.ami.stats.events + framer.stats.filtered, calls: pipeline.tracker.stats.callsStarted }));
  const fed = await feedTrace(path, framer, (f) => pipeline.amiFrame(f), pipeline, onRequest, { ...opts, onChunk });
  const fs = framer.stats;
  return {
    frames: fs.frames,
    events: pipeline.ami.stats.events + fs.filtered,
    requests: fed.requests,
    ...trackerCounts(pipeline),
    framesSkipped: fs.oversizedFrames + fs.malformedLines,
    unknownEvents: pipeline.ami.stats.unknown,
    stoppedEarly: fed.stoppedEarly,
  };
}

/** A recorded FreeSWITCH event socket session (`.esl`, `.esl.gz`; plain or json events). */
export function isEslTrace(path: string): boolean {
  return /\.esl(\.gz)?$/.test(path);
}

/** Replays a trace of either PBX, chosen by its file name (`.esl[.gz]` FreeSWITCH, else AMI). */
export function replayFile(
  path: string,
  pipeline: Pipeline,
  onRequest: (r: WebhookRequest) => void,
  opts: ReplayOptions = {},
): Promise<ReplaySummary> {
  return (isEslTrace(path) ? replayEsl : replayAmi)(path, pipeline, onRequest, opts);
}

/** replayAmi for a recorded ESL session: the same pipeline, clock and summary. */
export async function replayEsl(
  path: string,
  pipeline: Pipeline,
  onRequest: (r: WebhookRequest) => void,
  opts: ReplayOptions = {},
): Promise<ReplaySummary> {
  const framer = new EslFramer();
  const { onProgress } = opts;
  const onChunk = onProgress && ((bytesRead: number) =>
    onProgress({ bytesRead, events: pipeline.esl.stats.events, calls: pipeline.tracker.stats.callsStarted }));
  const fed = await feedTrace(path, framer, (f) => pipeline.eslFrame(f), pipeline, onRequest, { ...opts, onChunk });
  const fs = framer.stats;
  const ns = pipeline.esl.stats;
  return {
    frames: fs.frames,
    events: ns.events,
    requests: fed.requests,
    ...trackerCounts(pipeline),
    framesSkipped: fs.oversizedFrames + fs.malformedLines + fs.badContentLength + ns.malformedLines + ns.undecodable,
    unknownEvents: ns.unknown,
    stoppedEarly: fed.stoppedEarly,
  };
}
