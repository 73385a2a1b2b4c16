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
  readonly framesSkipped: number;
  readonly unknownEvents: number;
}

/** The bytes of a trace file, gunzipped when it ends in .gz. */
export function traceStream(path: string): AsyncIterable<Buffer> {
  const raw = createReadStream(path, { highWaterMark: 256 * 1024 });
  return path.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
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
  for await (const chunk of traceStream(path)) feed(framer.push(chunk));
  feed(framer.end());
  return requests;
}

function callCounts(pipeline: Pipeline): Pick<ReplaySummary, 'callsStarted' | 'callsEnded' | 'callsOpen'> {
  const ts = pipeline.tracker.stats;
  return { callsStarted: ts.callsStarted, callsEnded: ts.callsEnded, callsOpen: pipeline.tracker.liveCalls };
}

/** Replays a recorded AMI session through the same pipeline the daemon runs live. */
export async function replayAmi(path: string, pipeline: Pipeline, onRequest: (r: WebhookRequest) => void): Promise<ReplaySummary> {
  const framer = new AmiFramer({ filter: wantsAmiEvent });
  const requests = await feedTrace(path, framer, (f) => pipeline.amiFrame(f), pipeline, onRequest);
  const fs = framer.stats;
  return {
    frames: fs.frames,
    events: pipeline.ami.stats.events + fs.filtered,
    requests,
    ...callCounts(pipeline),
    framesSkipped: fs.oversizedFrames + fs.malformedLines,
    unknownEvents: pipeline.ami.stats.unknown,
  };
}

/** A recorded FreeSWITCH event socket session (`.esl`, `.esl.gz`; plain or json events). */
export function isEslTrace(path: string): boolean {
  return /\.esl(\.gz)?$/.test(path);
}

/** Replays a trace of either PBX, chosen by its file name (`.esl[.gz]` FreeSWITCH, else AMI). */
export function replayFile(path: string, pipeline: Pipeline, onRequest: (r: WebhookRequest) => void): Promise<ReplaySummary> {
  return isEslTrace(path) ? replayEsl(path, pipeline, onRequest) : replayAmi(path, pipeline, onRequest);
}

/** replayAmi for a recorded ESL session: the same pipeline, clock and summary. */
export async function replayEsl(path: string, pipeline: Pipeline, onRequest: (r: WebhookRequest) => void): Promise<ReplaySummary> {
  const framer = new EslFramer();
  const requests = await feedTrace(path, framer, (f) => pipeline.eslFrame(f), pipeline, onRequest);
  const fs = framer.stats;
  const ns = pipeline.esl.stats;
  return {
    frames: fs.frames,
    events: ns.events,
    requests,
    ...callCounts(pipeline),
    framesSkipped: fs.oversizedFrames + fs.malformedLines + fs.badContentLength + ns.malformedLines + ns.undecodable,
    unknownEvents: ns.unknown,
  };
}
