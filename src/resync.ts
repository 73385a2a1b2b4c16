import type { Logger } from 'pino';
import type { AmiSession } from './ami/client.js';
import type { AmiFrame } from './ami/frame.js';
import { AmiChannelList } from './ami/resync.js';
import type { WebhookRequest } from './emit/request.js';
import type { EslSession } from './esl/client.js';
import { SHOW_CHANNELS, channelsFromShowJson, type ChannelListResult } from './esl/resync.js';
import type { Pipeline } from './pipeline.js';

const LIST_TIMEOUT_MS = 30_000;

/**
 * Resync after a reconnect (issue #6): the PBX lists the channels it has up; calls whose channels
 * all ended while we were away close now (endReason 'resync', with their usual end webhooks) and
 * calls still up are kept. A failed list changes nothing: the idle timeout stays the backstop.
 */
class Resync {
  private generation = 0;
  /** The request still waiting for its list, if any. */
  private waiting: number | undefined;

  constructor(
    private readonly pipeline: Pipeline,
    private readonly dispatch: (rs: WebhookRequest[]) => void,
    private readonly log: Logger,
  ) {}

  private why: 'reconnect' | 'restart' = 'reconnect';

  begin(why: 'reconnect' | 'restart' = 'reconnect'): number {
    this.why = why;
    this.pipeline.beginResync();
    const generation = ++this.generation;
    this.waiting = generation;
    // A list that never comes (a filter, a dead link) must not keep the pipeline collecting forever.
    const message = `no channel list within ${LIST_TIMEOUT_MS / 1000} s`;
    setTimeout(() => this.listed({ ok: false, message }, generation), LIST_TIMEOUT_MS).unref();
    return generation;
  }

  /** Applies the PBX's list once; a late answer, or one to an older request, is ignored. */
  listed(result: ChannelListResult, generation: number): void {
    if (generation !== this.waiting) return;
    this.waiting = undefined;
    if (!result.ok) {
      this.pipeline.cancelResync();
      this.log.warn({ err: result.message }, 'resync failed: live calls are kept until they end or time out');
      return;
    }
    const t = this.pipeline.tracker;
    const before = t.stats.callsResynced;
    try {
      // Calls closed now end at the PBX's time, as their other events are timed (issue #14 item 6).
      this.dispatch(this.pipeline.pbxEvent({ type: 'channels.snapshot', at: this.pipeline.pbxNow(), channels: result.channels }));
    } catch (err) {
      this.log.error({ err }, 'resync failed');
      return;
    }
    const closed = t.stats.callsResynced - before;
    this.log.info({ pbxChannels: result.channels.length, callsClosed: closed, liveCalls: t.liveCalls }, `resynced live calls after ${this.why}`);
  }
}

/** AMI: `Action: CoreShowChannels`, whose answer arrives in the frame stream (fed by `onFrame`). */
export function amiResync(pipeline: Pipeline, dispatch: (rs: WebhookRequest[]) => void, log: Logger) {
  const resync = new Resync(pipeline, dispatch, log);
  const list = new AmiChannelList();
  let generation = 0;
  return {
    onRestored(session: AmiSession, why: 'reconnect' | 'restart' = 'reconnect'): void {
      generation = resync.begin(why);
      session.action(list.request());
    },
    onFrame(f: AmiFrame): void {
      const result = list.frame(f);
      if (result) resync.listed(result, generation);
    },
  };
}

/** ESL: `api show channels as json`, answered on the same socket after the events before it. */
export function eslResync(pipeline: Pipeline, dispatch: (rs: WebhookRequest[]) => void, log: Logger, why: 'reconnect' | 'restart' = 'reconnect') {
  const resync = new Resync(pipeline, dispatch, log);
  return (session: EslSession): void => {
    const generation = resync.begin(why);
    session.api(SHOW_CHANNELS).then(
      (body) => resync.listed(channelsFromShowJson(body), generation),
      (err: unknown) => resync.listed({ ok: false, message: err instanceof Error ? err.message : String(err) }, generation),
    );
  };
}
