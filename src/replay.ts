import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { AmiFramer } from './ami/framer.js';
import { wantsAmiEvent } from './ami/normalise.js';
import { EslFramer } from './esl/framer.js';
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
}

/** Where a replay is, for a progress bar: file bytes read (compressed for .gz), events, calls. */
export interface ReplayProgress {
  readonly bytesRead: number;
  readonly events: number;
  readonly calls: number;
}

export type OnReplayProgress = (p: ReplayProgress) => void;

/** The bytes of a trace file, gunzipped when it ends in .gz; `bytesRead` counts the file's own bytes. */
function openTrace(path: string): { chunks: AsyncIterable<Buffer>; bytesRead: () => number } {
  const raw = createReadStream(path, { highWaterMark: 256 * 1024 });
  return { chunks: path.endsWith('.gz') ? raw.pipe(createGunzip()) : raw, bytesRead: () => raw.bytesRead };
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
 * Returns how many requests were made.
 */
async function feedTrace<F>(
  path: string,
  framer: Framer<F>,
  toRequests: (f: F) => WebhookRequest[],
  pipeline: Pipeline,
  onRequest: (r: WebhookRequest) => void,
  onChunk?: (bytesRead: number) => void,
): Promise<number> {
  let requests = 0;
  let nextTick = 0;
  const emit = (rs: WebhookRequest[]): void => {
    for (const r of rs) {
      requests++;
      onRequest(r);
    }
  };
  const feed = (frames: F[]): void => {
    for (const f of frames) {
      emit(toRequests(f));
      const at = pipeline.tracker.lastEventAt;
      if (at >= nextTick) {
        if (nextTick !== 0) emit(pipeline.tick(at));
        nextTick = at + TICK_MS;
      }
    }
  };
  const trace = openTrace(path);
  for await (const chunk of trace.chunks) {
    feed(framer.push(chunk));
    onChunk?.(trace.bytesRead());
  }
  feed(framer.end());
  onChunk?.(trace.bytesRead());
  return requests;
}

/** What the tracker counted, the same for either PBX. */
function trackerCounts(pipeline: Pipeline): Pick<ReplaySummary, 'callsStarted' | 'callsEnded' | 'callsOpen' | 'callsTimedOut' | 'orphanEvents'> {
  const ts = pipeline.tracker.stats;
  return {
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
  onProgress?: OnReplayProgress,
): Promise<ReplaySummary> {
  const framer = new AmiFramer({ filter: wantsAmiEvent });
  const progress = onProgress && ((bytesRead: number) =>
    onProgress({ bytesRead, events: pipeline.ami.stats.events + framer.stats.filtered, calls: pipeline.tracker.stats.callsStarted }));
  const requests = await feedTrace(path, framer, (f) => pipeline.amiFrame(f), pipeline, onRequest, progress);
  const fs = framer.stats;
  return {
    frames: fs.frames,
    events: pipeline.ami.stats.events + fs.filtered,
    requests,
    ...trackerCounts(pipeline),
    framesSkipped: fs.oversizedFrames + fs.malformedLines,
    unknownEvents: pipeline.ami.stats.unknown,
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
  onProgress?: OnReplayProgress,
): Promise<ReplaySummary> {
  return (isEslTrace(path) ? replayEsl : replayAmi)(path, pipeline, onRequest, onProgress);
}

/** replayAmi for a recorded ESL session: the same pipeline, clock and summary. */
export async function replayEsl(
  path: string,
  pipeline: Pipeline,
  onRequest: (r: WebhookRequest) => void,
  onProgress?: OnReplayProgress,
): Promise<ReplaySummary> {
  const framer = new EslFramer();
  const progress = onProgress && ((bytesRead: number) =>
    onProgress({ bytesRead, events: pipeline.esl.stats.events, calls: pipeline.tracker.stats.callsStarted }));
  const requests = await feedTrace(path, framer, (f) => pipeline.eslFrame(f), pipeline, onRequest, progress);
  const fs = framer.stats;
  const ns = pipeline.esl.stats;
  return {
    frames: fs.frames,
    events: ns.events,
    requests,
    ...trackerCounts(pipeline),
    framesSkipped: fs.oversizedFrames + fs.malformedLines + fs.badContentLength + ns.malformedLines + ns.undecodable,
    unknownEvents: ns.unknown,
  };
}
