import type { Logger } from 'pino';
import type { AmiFrame } from './ami/frame.js';
import { startAmiIngest } from './ami/ingest.js';
import { wantsAmiEventNamed } from './ami/normalise.js';
import { loadConfig } from './config/load.js';
import type { Config } from './config/types.js';
import { type Outbox, openOutbox } from './deliver/outbox.js';
import { StateDirBusyError } from './deliver/state-lock.js';
import type { WebhookRequest } from './emit/request.js';
import type { EslFrame } from './esl/frame.js';
import { startEslIngest } from './esl/ingest.js';
import { eslSkipLog } from './esl/skips.js';
import { startOpsServer, type OpsServer } from './ops/server.js';
import { CONSOLE_PAGE, journalOf, startConsole } from './console/console.js';
import type { CallJournal } from './console/journal.js';
import { health, metricSources, statusSnapshot, type DaemonParts } from './ops/sources.js';
import type { ConnectError } from './ingest.js';
import { Pipeline } from './pipeline.js';
import { amiResync, eslResync } from './resync.js';
import { waitingFor } from './fleet/lease.js';
import { standbyPlaceOf, startStandby } from './fleet/standby.js';

/** Live AMI events worth a frame: what the model reads, plus the answer to a resync. */
function acceptAmi(event: string, detail: string | undefined): boolean {
  return wantsAmiEventNamed(event, detail) || event === 'CoreShowChannel' || event === 'CoreShowChannelsComplete';
}

/** sysexits: the PBX refused our credentials. (An unreachable PBX is retried, never an exit: issue #14 item 1.) */
export const EX_NOPERM = 77;
/** sysexits: the outbox database could not be created or opened. */
export const EX_CANTCREAT = 73;
/**
 * sysexits: another pbxhook sends from this state_dir, or this daemon lost its standby lease
 * (issue #17 item 3); once restarted, it sends again or stands by.
 */
export const EX_TEMPFAIL = 75;

/** Idle calls are looked for this often, and at least 8 times per calls.idle_timeout_seconds (1 s at most that often). */
const TICK_MS = 30_000;
const tickMsFor = (idleTimeoutSeconds: number): number => Math.min(TICK_MS, Math.max(1_000, (idleTimeoutSeconds * 1000) / 8));

export interface DaemonOptions {
  /** Resolves when the daemon should stop (SIGTERM in production, a test's signal otherwise). */
  readonly stop: Promise<void>;
  /** Called on each reload request (SIGHUP in production). */
  readonly onReload?: (reload: () => void) => void;
}

/**
 * `pbxhook run`: live PBX feed → pipeline → durable outbox → delivery (src/deliver/outbox-*.ts).
 * Returns the exit code. The outbox delivers from the start, whatever the PBX does: an unreachable
 * PBX, at start-up or later, is retried in the background (src/ingest.ts); only a login refused
 * before any session ends the run (77). Webhooks are on disk before any attempt, so a stop or a
 * crash loses none: the next start resumes them.
 */
export async function runDaemon(cfg: Config, log: Logger, opts: DaemonOptions): Promise<number> {
  const pbx = cfg.pbx;
  const attempts = new Map<string, Record<string, number>>();
  // Deliveries made before the ops server is up (it loads prom-client first) are counted once it is,
  // so the latency histogram never misses the first webhooks of a busy start.
  const early: Array<[string, number]> = [];
  let observe: (endpoint: string, seconds: number) => void = (endpoint, seconds) => {
    if (cfg.opsListen !== undefined && early.length < 10_000) early.push([endpoint, seconds]);
  };
  let outbox: Outbox;
  try {
    outbox = await openOutbox(cfg, log, (endpoint, outcome, sinceQueuedMs) => {
      const counts = attempts.get(endpoint) ?? {};
      counts[outcome] = (counts[outcome] ?? 0) + 1;
      attempts.set(endpoint, counts);
      if (outcome === 'delivered') observe(endpoint, sinceQueuedMs / 1000);
    });
    await outbox.worker.start();
  } catch (err) {
    if (err instanceof StateDirBusyError) {
      log.error({ code: err.code, stateDir: cfg.stateDir, holderPid: err.holderPid }, err.message);
      return EX_TEMPFAIL;
    }
    log.error({ code: 'PBXHOOK_OUTBOX_OPEN', stateDir: cfg.stateDir, err }, 'cannot open the outbox database (state_dir)');
    return EX_CANTCREAT;
  }
  const pipeline = new Pipeline(cfg);
  // The console's call journal hears every call from the first event (issue #16 item 4).
  const journal = cfg.opsListen !== undefined ? journalOf(cfg, pipeline, outbox.store) : undefined;
  // A standby waits for the PBX's lease before following it; the outbox delivers meanwhile (issue #17 item 3).
  const standby = startStandby(cfg, standbyPlaceOf(cfg), log);
  let fenced = false;
  let fence: () => void = () => undefined;
  let frameErrors = 0;

  // One PBX event's webhooks go to disk all or none, with the live calls as the event left them
  // (issue #14 item 2); the worker logs a failure to write (PBXHOOK_OUTBOX_WRITE). A lease not
  // confirmed lately is not acted on: another daemon may follow the PBX by now.
  const dispatch = (rs: WebhookRequest[]): void => {
    if (fenced) return;
    if (!standby.fresh()) return fence();
    outbox.worker.enqueue(rs);
    outbox.worker.changed();
  };
  // Bad PBX input is logged and skipped: one odd event must never take the daemon down.
  const guarded = <F>(toRequests: (f: F) => WebhookRequest[], describe: (f: F) => object) => (f: F): void => {
    try {
      dispatch(toRequests(f));
    } catch (err) {
      frameErrors++;
      log.warn({ err, ...describe(f), frameErrors }, 'PBX event skipped');
    }
  };
  // PBX input the live client dropped unread (over pbx.max_frame_bytes…), by reason; logged there.
  const inputSkipped: Record<string, number> = {};
  const onSkip = (reason: string): void => void (inputSkipped[reason] = (inputSkipped[reason] ?? 0) + 1);
  const amiFrame = guarded<AmiFrame>((f) => pipeline.amiFrame(f), (f) => ({ event: f.fields['event'] }));
  const eslFrame = guarded<EslFrame>((f) => pipeline.eslFrame(f), (f) => ({ contentType: f.headers['Content-Type'] }));
  // Event frames with no event in them, channel events naming no channel: one line, not one each.
  const eslSkips = eslSkipLog(log, { host: pbx.host, port: pbx.port });
  const onEslFrame = (f: EslFrame): void => {
    const { undecodable, noChannel } = pipeline.esl.stats;
    eslFrame(f);
    const now = pipeline.esl.stats;
    if (now.undecodable > undecodable) eslSkips.skipped('undecodable', { contentType: f.headers['Content-Type'] });
    if (now.noChannel > noChannel) eslSkips.skipped('no-channel');
  };
  // After a reconnect, calls that ended meanwhile are closed from the PBX's channel list.
  const amiSync = amiResync(pipeline, dispatch, log);
  const onAmiFrame = (f: AmiFrame): void => {
    amiFrame(f);
    amiSync.onFrame(f);
  };

  // Connecting runs in the background from the first attempt: the outbox delivers meanwhile.
  type Ingest = ReturnType<typeof startAmiIngest> | ReturnType<typeof startEslIngest>;
  let ingest: Ingest | undefined;
  let ticker: NodeJS.Timeout | undefined;
  const follow = async (): Promise<Ingest> => {
    // The live calls as the last daemon to follow this PBX left them: this one's last run, or the active one's.
    const restored = await restoreLiveCalls(pipeline, outbox, log);
    let resyncNow: () => void;
    let started: Ingest;
    if (pbx.type === 'asterisk') {
      const ami = startAmiIngest(pbx, onAmiFrame, log, (s) => amiSync.onRestored(s, 'reconnect'), acceptAmi, onSkip, cfg.roles);
      resyncNow = () => ami.session && amiSync.onRestored(ami.session, 'restart');
      started = ami;
    } else {
      const esl = startEslIngest(pbx, onEslFrame, log, eslResync(pipeline, dispatch, log, 'reconnect'), onSkip);
      const atStart = eslResync(pipeline, dispatch, log, 'restart');
      resyncNow = () => esl.session && atStart(esl.session);
      started = esl;
    }
    const endpoints = cfg.endpoints.filter((e) => e.enabled).map((e) => e.name);
    const connected = pbx.type === 'asterisk' ? 'connected to Asterisk AMI' : 'connected to FreeSWITCH ESL';
    void started.ready.then(() => {
      if (fenced) return;
      log.info({ host: pbx.host, port: pbx.port, endpoints }, connected);
      // Calls restored from the last run are checked against the PBX's channels, as after a reconnect.
      if (restored) resyncNow();
    });
    // Idle timeouts on the PBX's clock, never the host's: the two may be hours apart (issue #14 item 6).
    ticker = setInterval(() => dispatch(pipeline.tick(pipeline.pbxNow())), tickMsFor(cfg.calls.idleTimeoutSeconds));
    return started;
  };

  let endpointsNow = cfg.endpoints;
  const parts: DaemonParts = {
    cfg, pipeline, outbox, pbxConnected: () => ingest?.connected ?? false, pbxState: () => ingest?.state ?? (standby.role() === 'standby' ? 'standby' : 'connecting'), frameErrors: () => frameErrors,
    inputSkipped: () => inputSkipped, attempts, endpoints: () => endpointsNow, role: () => (standby.role() === 'standby' ? 'standby' : 'active'),
    waitingFor: () => waitingFor(standby.holder()),
  };
  const ops = await startOps(cfg, parts, journal, log);
  observe = ops ? ops.observe : () => undefined;
  for (const [endpoint, seconds] of early.splice(0)) observe(endpoint, seconds);

  opts.onReload?.(() => {
    const next = reload(cfg.file, pipeline, outbox, log);
    if (next) endpointsNow = next.endpoints;
  });

  // Fencing (issue #17 item 3): the lease gone, PBX input stops at once and the live calls are no
  // longer saved (the daemon that follows the PBX now saves them); webhooks already made still go.
  let markFenced!: () => void;
  const fencedNow = new Promise<'fenced'>((r) => (markFenced = () => r('fenced')));
  fence = () => {
    if (fenced) return;
    fenced = true;
    outbox.worker.saveLiveStateFrom(() => new Map());
    void ingest?.close();
    markFenced();
  };
  void standby.lost.then(fence);
  const stopped = opts.stop.then(() => 'stop' as const);
  const following = Promise.race([standby.active.then(() => 'active' as const), stopped]).then(async (next) => {
    if (next === 'stop' || fenced) return undefined;
    ingest = await follow();
    return ingest;
  });

  // Only a refused login ends the run by itself: retrying the same credentials cannot help.
  const refused = following.then((i): Promise<'stop' | ConnectError> => (i === undefined ? stopped : i.refused));
  const outcome = await Promise.race([stopped, fencedNow, refused]);
  let code = 0;
  if (outcome === 'fenced') {
    log.error({ code: 'PBXHOOK_LEASE_LOST' }, 'stopped following the PBX: its lease is lost, a standby follows it now; exiting to stand by again');
    code = EX_TEMPFAIL;
  } else if (outcome !== 'stop') {
    const user = pbx.type === 'asterisk' ? { username: pbx.username } : {};
    log.error({ code: outcome.code, host: pbx.host, port: pbx.port, ...user }, outcome.message);
    code = EX_NOPERM;
  }
  await stopWithin(cfg, log, () => {
    clearInterval(ticker);
    eslSkips.flush();
    log.info({ liveCalls: pipeline.tracker.liveCalls }, 'stopping');
    return { pbx: Promise.all([ingest?.close(), standby.close()]).then(() => undefined), ops: ops?.server.close(), outbox };
  });
  const { stats } = outbox.worker;
  log.info({ ...stats, undelivered: stats.outboxDepth }, 'stopped'); // undelivered ones wait in the outbox for the next start
  return code;
}

/**
 * A restart: the calls the last run was following, as its last commit left them (issue #14 item 2),
 * taken back before the PBX is connected; from then on every commit saves what changed. True when
 * there is something to check against the PBX's channel list.
 */
async function restoreLiveCalls(pipeline: Pipeline, outbox: Outbox, log: Logger): Promise<boolean> {
  let restored = false;
  const first = new Map<string, string | undefined>();
  pipeline.trackLiveState();
  try {
    const r = pipeline.restoreLiveState(await outbox.store.liveState());
    restored = r.calls > 0;
    if (r.calls > 0) log.info({ calls: r.calls, channels: r.channels }, 'live calls restored from the outbox; checking them against the PBX at login');
    if (r.unreadable.length > 0) {
      log.warn({ unreadable: r.unreadable.length, code: 'PBXHOOK_LIVE_STATE' }, 'live state saved by another pbxhook version not restored: those calls are lost');
    }
    // What could not be read goes at the first commit, so that it is not read again at every start.
    for (const key of r.unreadable) first.set(key, undefined);
  } catch (err) {
    log.error({ err, code: 'PBXHOOK_LIVE_STATE' }, 'live calls could not be read from the outbox; starting without them');
  }
  outbox.worker.saveLiveStateFrom(() => {
    const changes = pipeline.takeLiveState();
    for (const [k, v] of first) if (!changes.has(k)) changes.set(k, v);
    first.clear();
    return changes;
  });
  return restored;
}

/** Kept from the grace for the last outbox commit and closing the database after attempts are cut off. */
const COMMIT_RESERVE_MS = 500;
const STOP_MARGIN_MS = 250;

/**
 * The stop, within `shutdown_grace_seconds` whatever the peers do (issue #14 item 5). The PBX
 * session stops handing on events at once and gets a moment to close (a PBX that keeps its side
 * open without a word is not waited for); meanwhile attempts in flight get `delivery.stop_timeout`
 * (cut to what the grace leaves), then the last commit writes everything read and every answer.
 * Sockets still open after that go with the process (cli.ts exits once this returns).
 */
async function stopWithin(
  cfg: Config,
  log: Logger,
  begin: () => { pbx: Promise<void>; ops: Promise<void> | undefined; outbox: Outbox },
): Promise<void> {
  // Ends a little before the grace, where cli.ts's last-resort exit waits.
  const deadline = performance.now() + cfg.shutdownGraceMs - STOP_MARGIN_MS;
  const { pbx, ops, outbox } = begin();
  const attemptsMs = Math.max(0, Math.min(cfg.delivery.stopTimeoutMs, deadline - performance.now() - COMMIT_RESERVE_MS));
  await outbox.close(attemptsMs);
  let timer: NodeJS.Timeout | undefined;
  const graceLeft = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), Math.max(0, deadline - performance.now()))));
  const peers = await Promise.race([Promise.all([pbx, ops]).then(() => 'closed' as const), graceLeft]);
  clearTimeout(timer);
  if (peers === 'late') log.warn({ graceSeconds: cfg.shutdownGraceMs / 1000 }, 'stopping: the PBX or the ops server did not close in time; exiting anyway');
}

/** /metrics, /healthz and the status page; a busy port is logged, not fatal: webhooks matter more. */
async function startOps(
  cfg: Config,
  parts: DaemonParts,
  journal: CallJournal | undefined,
  log: Logger,
): Promise<{ server: OpsServer; observe: (endpoint: string, seconds: number) => void } | undefined> {
  if (cfg.opsListen === undefined) return undefined;
  // prom-client (~10 MB of RSS) is loaded only with ops on (issue #14, memory).
  const { createMetrics } = await import('./ops/metrics.js');
  const operatorConsole = startConsole(journal, parts, log);
  const deadLetters = () => new Map([...parts.endpoints().map((e) => [e.name, 0] as const), ...parts.outbox.worker.deadLetters]);
  const metrics = createMetrics({
    ...metricSources(parts),
    endpointStates: () => operatorConsole.endpointStates(),
    oldestUndelivered: () => operatorConsole.oldestUndelivered(Date.now()),
    deadLetters,
  });
  try {
    const server = await startOpsServer({
      listen: cfg.opsListen,
      ...(cfg.opsToken !== undefined ? { token: cfg.opsToken } : {}),
      registry: metrics.registry,
      health: () => health(parts),
      status: () => statusSnapshot(parts, Date.now()),
      page: CONSOLE_PAGE,
      console: operatorConsole.handler,
    });
    log.info({ listen: cfg.opsListen, port: server.port }, 'metrics, health and status page listening');
    return { server, observe: (endpoint, seconds) => metrics.deliveryLatency.observe({ endpoint }, seconds) };
  } catch (err) {
    log.error({ err, listen: cfg.opsListen, code: 'PBXHOOK_OPS_LISTEN' }, 'cannot serve metrics and status (ops.listen); running without them');
    return undefined;
  }
}

/**
 * SIGHUP: re-reads the config and swaps the endpoints (renderers, tokens, signing). Live calls
 * and the PBX connection are untouched; a bad file is logged and the running config kept.
 */
function reload(file: string, pipeline: Pipeline, outbox: Outbox, log: Logger): Config | undefined {
  let next: Config;
  try {
    next = loadConfig(file);
  } catch (err) {
    log.error({ err: err instanceof Error ? err.message : String(err), file }, 'reload refused: the config has problems; keeping the running one');
    return undefined;
  }
  pipeline.setEndpoints(next.endpoints, next);
  outbox.reload(next);
  log.info({ file, endpoints: next.endpoints.filter((e) => e.enabled).map((e) => e.name) }, 'config reloaded: endpoints updated');
  return next;
}
