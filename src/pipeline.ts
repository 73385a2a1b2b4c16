import type { AmiFrame } from './ami/frame.js';
import { AmiNormaliser } from './ami/normalise.js';
import type { Config, EndpointConfig } from './config/types.js';
import type { EslFrame } from './esl/frame.js';
import { EslNormaliser } from './esl/normalise.js';
import type { PbxEvent } from './core/events.js';
import type { LifecycleEvent } from './core/lifecycle.js';
import { PbxClock } from './core/clock.js';
import { RoleBook } from './core/roles.js';
import { Tracker } from './core/tracker.js';
import { decodeCall, encodeCall, encodeJson, undefinedForNull, type CallRecord } from './core/persist.js';
import { LIVE_CALL_KEY_PREFIX } from './deliver/store.js';
import type { LegState } from './esl/legs.js';
import type { Recording } from './ami/voicemail.js';
import type { RenderContext } from './emit/context.js';
import { rendererFor, type Render } from './emit/render.js';
import { EndpointRouter } from './emit/routing.js';
import { prepareZone } from './emit/time.js';
import type { WebhookRequest } from './emit/request.js';

/**
 * The live state a restart must find again, as keyed texts (issue #14 item 2): `call:<id>` a call
 * and its channels, `esl:<uuid>` what the ESL normaliser knows of a channel, `vm:<uniqueid>` a
 * voicemail being recorded, `clock` how far the PBX's clock is from the host's, `numbering` the
 * number the next call without one of its own gets (FreeSWITCH's, in 3CX call ids). A key mapped
 * to `undefined` is gone.
 */
export type LiveStateChanges = Map<string, string | undefined>;

/** The PBX's clock offset is saved again when it moved more than this. */
const CLOCK_SAVE_MS = 1_000;

export type PipelineConfig = Pick<Config, 'roles' | 'calls' | 'endpoints' | 'directory' | 'environment'>;

/**
 * Frames in, webhook requests out: normaliser → tracker → one renderer per enabled endpoint.
 * The live daemon and `pbxhook replay` both drive this same object; it does no I/O.
 */
export class Pipeline {
  readonly roles: RoleBook;
  readonly ami: AmiNormaliser;
  readonly esl: EslNormaliser;
  readonly tracker: Tracker;
  private targets: { ctx: RenderContext; render: Render; router: EndpointRouter | undefined }[] = [];
  /** Neutral events in, by type (metrics). */
  readonly eventsByType = new Map<string, number>();
  /** Optional tap on lifecycle events (status page, tests). */
  onLifecycleEvent: ((e: LifecycleEvent) => void) | undefined;
  /** Optional tap on each lifecycle event with the webhooks rendered for it (the console's call journal). */
  onRendered: ((e: LifecycleEvent, requests: readonly WebhookRequest[]) => void) | undefined;
  /** Optional tap on holds of a tracked call's channels (the console's call journal): no webhook renders them. */
  onHold: ((h: { call: string; party: string; held: boolean; at: number }) => void) | undefined;
  /** Channels created since a resync asked the PBX for its channel list, which may predate them. */
  private createdDuringResync: Set<string> | undefined;
  /** The PBX's time as its events tell it: the live daemon's one clock (issue #14 item 6). */
  readonly clock = new PbxClock();
  /** The PBX's clock minus the host's, as last saved. */
  private savedSkew: number | undefined;
  /** `tracker.nextCallNumber` as last saved. */
  private savedCallNumber = 0;

  /**
   * `wallClock` and `monotonic` are the host's clocks, read only to carry the PBX's time on between
   * its events (`pbxNow`); an event without a time of its own gets that time too.
   */
  constructor(
    cfg: PipelineConfig,
    private readonly wallClock: () => number = Date.now,
    private readonly monotonic: () => number = () => performance.now(),
  ) {
    this.roles = new RoleBook(cfg.roles);
    const pbxNow = (): number => this.pbxNow();
    this.ami = new AmiNormaliser(this.roles, pbxNow);
    this.esl = new EslNormaliser(this.roles, pbxNow);
    this.tracker = new Tracker(cfg.calls.idleTimeoutSeconds * 1000);
    this.setEndpoints(cfg.endpoints, cfg);
  }

  /** Swaps the endpoint list (SIGHUP) without touching live calls. */
  setEndpoints(endpoints: readonly EndpointConfig[], cfg: Omit<PipelineConfig, 'endpoints'>): void {
    prepareZone(cfg.calls.timezone);
    // A reload keeps what an endpoint with the same routing holds: its calls' earlier webhooks.
    const before = new Map(this.targets.map((t) => [t.ctx.endpoint.name, t.router]));
    this.targets = endpoints
      .filter((e) => e.enabled)
      .map((endpoint) => ({
        ctx: {
          endpoint,
          timezone: cfg.calls.timezone,
          names: cfg.roles.names,
          directory: cfg.directory,
          environment: cfg.environment,
        },
        render: rendererFor(endpoint),
        router: routerFor(endpoint, before.get(endpoint.name)),
      }));
  }

  amiFrame(frame: AmiFrame): WebhookRequest[] {
    const ev = this.ami.normalise(frame);
    return ev ? this.pbxEvent(ev) : [];
  }

  /** One ESL frame may stand for several neutral events (a transfer, then the hangup it caused). */
  eslFrame(frame: EslFrame): WebhookRequest[] {
    const evs = this.esl.normalise(frame);
    if (evs.length === 1) return this.pbxEvent(evs[0]!);
    const out: WebhookRequest[] = [];
    for (const ev of evs) for (const r of this.pbxEvent(ev)) out.push(r);
    return out;
  }

  pbxEvent(ev: PbxEvent): WebhookRequest[] {
    this.eventsByType.set(ev.type, (this.eventsByType.get(ev.type) ?? 0) + 1);
    this.clock.observe(ev.at, this.monotonic());
    if (ev.type === 'channel.created') this.createdDuringResync?.add(ev.channel);
    else if (ev.type === 'channels.snapshot') ev = this.completeResync(ev);
    const out = this.render(this.tracker.handle(ev));
    if (ev.type === 'channel.hold' && this.onHold !== undefined) {
      const where = this.tracker.whereIs(ev.channel);
      if (where !== undefined) this.onHold({ ...where, held: ev.held, at: ev.at });
    }
    return out;
  }

  /** A reconnect asked the PBX which channels are up; the answer comes as a `channels.snapshot`. */
  beginResync(): void {
    this.createdDuringResync = new Set();
  }

  /** The list never came (refused, or the connection dropped again). */
  cancelResync(): void {
    this.createdDuringResync = undefined;
  }

  /** Channels that appeared while the list was on its way are alive too; gone ones are forgotten. */
  private completeResync(ev: Extract<PbxEvent, { type: 'channels.snapshot' }>): PbxEvent {
    const alive = new Set([...ev.channels, ...(this.createdDuringResync ?? [])]);
    this.createdDuringResync = undefined;
    this.esl.legs.keepOnly(alive);
    return { ...ev, channels: [...alive] };
  }

  /** Per endpoint with `only_*` keys: webhooks dropped and held (metrics, replay, tests). */
  routing(): Map<string, { heldDropped: number; unmatched: number; heldNow: number }> {
    const out = new Map<string, { heldDropped: number; unmatched: number; heldNow: number }>();
    for (const t of this.targets) if (t.router) out.set(t.ctx.endpoint.name, { ...t.router.stats, heldNow: t.router.heldNow });
    return out;
  }

  /** From now on, remember what changes, for `takeLiveState` (the daemon; replay keeps nothing). */
  trackLiveState(): void {
    this.tracker.trackChanges();
    this.esl.legs.trackChanges();
    this.ami.voicemail.trackChanges();
  }

  /**
   * What changed since the last call (once `trackLiveState` was called): the daemon writes it with the webhooks of the same events,
   * in one commit, so that a kill -9 loses at most what a commit had not written yet.
   */
  takeLiveState(): LiveStateChanges {
    const out: LiveStateChanges = new Map();
    for (const [id, r] of this.tracker.takeChanged()) out.set(`${LIVE_CALL_KEY_PREFIX}${id}`, r && encodeCall(r));
    for (const [uuid, leg] of this.esl.legs.takeChanged()) out.set(`esl:${uuid}`, leg && encodeJson(leg));
    for (const [ch, rec] of this.ami.voicemail.takeChanged()) out.set(`vm:${ch}`, rec && encodeJson(rec));
    if (this.tracker.nextCallNumber !== this.savedCallNumber) {
      this.savedCallNumber = this.tracker.nextCallNumber;
      out.set('numbering', encodeJson({ nextCall: this.savedCallNumber }));
    }
    const skew = this.clock.skew(this.monotonic(), this.wallClock());
    if (skew !== undefined && (this.savedSkew === undefined || Math.abs(skew - this.savedSkew) > CLOCK_SAVE_MS)) {
      this.savedSkew = skew;
      out.set('clock', encodeJson({ pbxAheadMs: skew }));
    }
    return out;
  }

  /**
   * A restart: the state saved by `takeLiveState`, before the PBX is connected (its channel list
   * then ends the calls that ended meanwhile). Records this pbxhook cannot read are counted, not used.
   */
  restoreLiveState(entries: Iterable<readonly [string, string]>): { calls: number; channels: number; unreadable: string[] } {
    const calls: CallRecord[] = [];
    const legs: Array<[string, LegState]> = [];
    const recordings: Array<[string, Recording]> = [];
    const unreadable: string[] = [];
    for (const [key, text] of entries) {
      const colon = key.indexOf(':');
      const [kind, id] = colon < 0 ? [key, ''] : [key.slice(0, colon), key.slice(colon + 1)];
      try {
        if (kind === 'call') {
          const r = decodeCall(text);
          if (r) calls.push(r);
          else unreadable.push(key);
        } else if (kind === 'esl') legs.push([id, undefinedForNull(JSON.parse(text)) as LegState]);
        else if (kind === 'vm') recordings.push([id, undefinedForNull(JSON.parse(text)) as Recording]);
        else if (kind === 'clock') this.restoreClock((JSON.parse(text) as { pbxAheadMs: number }).pbxAheadMs);
        else if (kind === 'numbering') this.restoreNumbering((JSON.parse(text) as { nextCall: number }).nextCall);
        else unreadable.push(key);
      } catch {
        unreadable.push(key);
      }
    }
    this.tracker.restore(calls);
    this.esl.legs.restore(legs);
    this.ami.voicemail.restore(recordings);
    return { calls: calls.length, channels: calls.reduce((n, r) => n + r.channels.length, 0), unreadable };
  }

  private restoreNumbering(nextCall: number): void {
    if (!Number.isSafeInteger(nextCall) || nextCall < 0) throw new RangeError(`numbering: ${nextCall}`);
    this.tracker.nextCallNumber = nextCall;
    this.savedCallNumber = nextCall;
  }

  /** Until the PBX's first event, its time is the host's plus the offset it had before the restart. */
  private restoreClock(pbxAheadMs: number): void {
    if (!Number.isFinite(pbxAheadMs)) return;
    this.savedSkew = pbxAheadMs;
    this.clock.observe(this.wallClock() + pbxAheadMs, this.monotonic());
  }

  /**
   * The PBX's time now: its latest event's time, carried on by the host's monotonic clock; the
   * host's wall clock until the first event. The live daemon ticks and resyncs on it.
   */
  pbxNow(): number {
    return this.clock.now(this.monotonic(), this.wallClock());
  }

  /** Closes idle calls; call it on a timer with `pbxNow()` (live) or from event time (replay): one clock either way. */
  tick(now: number): WebhookRequest[] {
    return this.render(this.tracker.tick(now));
  }

  private render(events: LifecycleEvent[]): WebhookRequest[] {
    if (events.length === 0) return [];
    const out: WebhookRequest[] = [];
    for (const e of events) {
      this.onLifecycleEvent?.(e);
      const from = out.length;
      for (const t of this.targets) {
        const rendered = t.render(e, t.ctx);
        for (const r of t.router === undefined ? rendered : t.router.route(e, rendered)) out.push(r);
      }
      // Sliced only for a tap: replay and daemons without the console render on the hot path (issue #15).
      if (this.onRendered !== undefined) this.onRendered(e, out.slice(from));
    }
    return out;
  }
}

function routerFor(endpoint: EndpointConfig, before: EndpointRouter | undefined): EndpointRouter | undefined {
  if (endpoint.routing === undefined) return undefined;
  const same = before !== undefined && JSON.stringify(before.routing) === JSON.stringify(endpoint.routing);
  return same ? before : new EndpointRouter(endpoint.routing);
}
