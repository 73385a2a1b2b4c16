/**
 * `pbxhook outbox stats|list|retry|purge`: the operator's view of the outbox database, safe to run
 * beside the daemon (SQLite WAL; writes wait for the daemon's lock). Also `replay --send`, which
 * delivers through an outbox exactly as the daemon does.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { EX_USAGE, optionList, parseCommandArgs, UsageError } from './args.js';
import { span } from './config/explain.js';
import { loadConfig } from './config/load.js';
import { parseDuration } from './config/schema.js';
import type { Config } from './config/types.js';
import { type Outbox, type StoreConfig, openOutbox, openOutboxStore, outboxPath } from './deliver/outbox.js';
import { type OutboxState, STATES } from './deliver/outbox-state.js';
import type { AttemptRow, OutboxRow, OutboxStore } from './deliver/store.js';
import { type OutboxAction, runAction } from './deliver/outbox-actions.js';
import { parseListen } from './ops/server.js';
import { pino } from 'pino';

const EX_NOINPUT = 66;
const EX_UNAVAILABLE = 69;
const EX_NOPERM = 77;
/** sysexits EX_CANTCREAT: the outbox could not be opened (as pbxhook deliver's). */
const EX_CANTCREAT = 73;

const OPTIONS = {
  config: { type: 'string', short: 'c', value: 'FILE' },
  'state-dir': { type: 'string', value: 'DIR' },
  state: { type: 'string', value: 'S' },
  endpoint: { type: 'string', value: 'E' },
  id: { type: 'string', multiple: true, value: 'ID' },
  lane: { type: 'string', value: 'LANE' },
  all: { type: 'boolean', default: false },
  limit: { type: 'string', default: '50', value: 'N' },
  delivered: { type: 'boolean', default: false },
  dead: { type: 'boolean', default: false },
  'older-than': { type: 'string', value: 'AGE' },
  yes: { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export const OUTBOX_USAGE = `Usage: pbxhook outbox COMMAND (--config FILE | --state-dir DIR) [options]
  stats                              webhooks per endpoint and state; paused endpoints
  list [--state S] [--endpoint E]    newest first (default: all but delivered); --limit N (50),
       [--id ID]                     --id shows one webhook with every attempt
  retry (--id ID… | --endpoint E | --all) [--state dead|failed_waiting]
                                     back to pending with a fresh retry schedule
  retry --lane ENDPOINT:CALL         that call's next webhook, waiting for its retry, goes now
  resend (--id ID… | --endpoint E)   dead webhooks go again (a new attempt series, same
                                     webhook-id), as the console's "resend" buttons do
  probe --endpoint E                 a paused endpoint is probed now (asks the running daemon
                                     at ops.listen, with ops.token)
  purge --delivered --older-than 1d  delete delivered webhooks
  purge --dead [--older-than 7d] --yes
                                     delete dead webhooks (they are gone for good)
  --json                             stats and list as JSON
Options: ${optionList(OPTIONS)}
States: ${STATES.join(', ')}. IDs: the row number or the webhook-id (msg_…).`;

type Values = ReturnType<typeof parseCommandArgs<typeof OPTIONS>>['values'];

export function runOutboxCommand(argv: readonly string[], out: NodeJS.WritableStream = process.stdout): number | Promise<number> {
  // An unknown option is one line naming outbox's options (cli.ts prints the UsageError).
  const { values, positionals } = parseCommandArgs('outbox', OPTIONS, argv, 1);
  const [command] = positionals;
  if (values.help) {
    out.write(`${OUTBOX_USAGE}\n`);
    return 0;
  }
  try {
    if (!command || !['stats', 'list', 'retry', 'resend', 'probe', 'purge'].includes(command)) throw new UsageError(command ? `unknown outbox command "${command}"` : 'which outbox command?');
    checkUsage(command, values);
    const cfg = values.config !== undefined ? loadConfig(values.config) : undefined;
    if (command === 'probe') return probe(cfg, values.endpoint!, out);
    const stateDir = values['state-dir'] ?? cfg?.stateDir;
    if (stateDir === undefined) throw new UsageError('which outbox? give --config FILE or --state-dir DIR');
    // A shared outbox (outbox.store: postgres, issue #17) is in its database, not in state_dir.
    const shared = values['state-dir'] === undefined && cfg?.outbox?.store === 'postgres';
    if (!shared && !existsSync(outboxPath(stateDir))) {
      process.stderr.write(`pbxhook outbox: no outbox at ${outboxPath(stateDir)} (pbxhook run has not used this state_dir yet)\n`);
      return EX_NOINPUT;
    }
    const where: StoreConfig = { stateDir, ...(cfg ? { pbx: cfg.pbx } : {}), ...(shared ? { outbox: cfg.outbox } : {}) };
    return withStore(where, cfg, command, values, shared, out).catch(usageError);
  } catch (err) {
    return usageError(err);
  }
}

function usageError(err: unknown): number {
  if (err instanceof UsageError) {
    process.stderr.write(`pbxhook outbox: ${err.message}\n\n${OUTBOX_USAGE}\n`);
    return EX_USAGE;
  }
  throw err; // ConfigError and the rest: cli.ts reports them as for every command
}

/**
 * Why the PostgreSQL outbox did not open, for an admin (never the URL). Followed on Debian (issue
 * #17): with the README's local-socket URL, root running `pbxhook outbox` met a stack trace.
 */
function cannotOpen(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return /peer authentication failed/i.test(msg)
    ? `${msg}; a local-socket URL logs in as the system user of the same name: run it as that user (sudo -u pbxhook pbxhook outbox …)`
    : msg;
}

/** The command on the outbox's store, opened and closed around it. */
async function withStore(where: StoreConfig, cfg: Config | undefined, command: string, values: Values, shared: boolean, out: NodeJS.WritableStream): Promise<number> {
  let store: OutboxStore;
  try {
    store = await openOutboxStore(where);
  } catch (err) {
    if (where.outbox?.store !== 'postgres') throw err;
    process.stderr.write(`pbxhook outbox: cannot open the outbox on PostgreSQL: ${cannotOpen(err)}\n`);
    return EX_CANTCREAT;
  }
  try {
    const missing = await unknownNames(store, values, cfg);
    if (missing !== undefined) {
      process.stderr.write(`pbxhook outbox: ${missing}\n`);
      return EX_NOINPUT;
    }
    if (command === 'retry' && cfg !== undefined && values.endpoint !== undefined && !cfg.endpoints.some((e) => e.name === values.endpoint)) {
      process.stderr.write(`pbxhook outbox: note: endpoint "${values.endpoint}" is not in ${cfg.file}; its webhooks wait in the outbox until it is back\n`);
    }
    out.write(await perform(command, store, values, shared));
  } finally {
    await store.close();
  }
  return 0;
}

/** `shared`: the outbox of a fleet (postgres), whose rows come from several PBXes. */
async function perform(command: string, store: OutboxStore, v: Values, shared: boolean): Promise<string> {
  const states = v.state === undefined ? undefined : [stateOf(v.state)];
  const endpoint = v.endpoint;
  const now = Date.now();
  switch (command) {
    case 'stats':
      return stats(store, v.json, now);
    case 'list': {
      const limit = Number(v.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit: expected a whole number of at least 1, got ${v.limit}`);
      const rows = await store.list({ ...(v.id ? { ids: v.id } : {}), ...(endpoint ? { endpoint } : {}), states: states ?? (v.id ? undefined : ['pending', 'in_flight', 'failed_waiting', 'dead']) }, limit);
      const logs = v.id ? await Promise.all(rows.map((r) => store.attemptsOf(r.id))) : undefined;
      if (v.json) return `${JSON.stringify(rows.map((r, i) => ({ ...withoutPayload(r), attemptsLog: logs?.[i] })))}\n`;
      return list(rows, logs, now, shared);
    }
    case 'resend':
    case 'retry': {
      if (command === 'resend' || v.lane !== undefined) return act(store, v);
      const n = await store.retry({ ...(v.id ? { ids: v.id } : {}), ...(endpoint ? { endpoint } : {}), ...(states ? { states } : {}) }, now);
      return `${n} webhook(s) back to pending; a running pbxhook sends them within a second\n`;
    }
    default:
      return purge(store, v, now);
  }
}

/**
 * Why `--endpoint` or `--id` names nothing, if so (issue #13): a typo must not answer "0 webhook(s)"
 * and exit 0. An endpoint is known when the config has it (even with no webhooks yet) or the outbox
 * still holds webhooks of it (an endpoint removed from the config: retry and purge are how its rows
 * are dealt with). With --state-dir alone, the outbox is all there is to go by.
 */
async function unknownNames(store: OutboxStore, v: Values, cfg: Config | undefined): Promise<string | undefined> {
  const endpoint = v.endpoint;
  if (endpoint !== undefined && !cfg?.endpoints.some((e) => e.name === endpoint) && (await store.list({ endpoint }, 1)).length === 0) {
    const inOutbox = [...new Set((await store.counts()).map((c) => c.endpoint))];
    const known = [...new Set([...(cfg?.endpoints.map((e) => e.name) ?? []), ...inOutbox])];
    const where = cfg === undefined ? 'the outbox' : `${cfg.file} or the outbox`;
    return `no endpoint "${endpoint}" in ${where}; known: ${known.length === 0 ? '(none)' : known.join(', ')}`;
  }
  if (v.id !== undefined) {
    const found = await store.list({ ids: v.id }, v.id.length);
    const missing = v.id.filter((id) => !found.some((r) => String(r.id) === id || r.webhookId === id));
    if (missing.length > 0) {
      const which = missing.map((id) => JSON.stringify(id)).join(', ');
      return `no webhook ${which} in ${store.location} (an id is the row number or the webhook-id, msg_…; pbxhook outbox list shows them)`;
    }
  }
  return undefined;
}

/** Usage mistakes are reported before any database is opened. */
function checkUsage(command: string, v: Values): void {
  if (v.state !== undefined) stateOf(v.state);
  if (command === 'retry' && !v.id && !v.endpoint && !v.all && !v.lane) throw new UsageError('retry which webhooks? --id ID, --endpoint NAME, --all or --lane ENDPOINT:CALL');
  if (command === 'resend' && !v.id === !v.endpoint) throw new UsageError('resend which dead webhooks? --id ID… or --endpoint NAME');
  if (command === 'probe' && !v.endpoint) throw new UsageError('probe which endpoint? --endpoint NAME');
  if (command !== 'purge') return;
  if (v.delivered === v.dead) throw new UsageError('purge what? --delivered --older-than AGE, or --dead --yes');
  if (v['older-than'] !== undefined && parseDuration(v['older-than']) === undefined) {
    throw new UsageError(`--older-than: expected a duration such as 7d or 12h, got ${v['older-than']}`);
  }
  if (v.delivered && v['older-than'] === undefined) throw new UsageError('purge --delivered needs --older-than AGE (e.g. 1d)');
  if (v.dead && !v.yes) throw new UsageError('dead webhooks were never delivered; deleting them loses them: add --yes');
}

/** resend and retry --lane: the console's actions (outbox-actions.ts), logged as the shell user's. */
async function act(store: OutboxStore, v: Values): Promise<string> {
  const log = pino({ level: 'info' }, pino.destination(2));
  const target = { store, log };
  const who = `cli ${os.userInfo().username}`;
  const actions: OutboxAction[] = v.lane !== undefined
    ? [{ kind: 'retry-lane', lane: v.lane }]
    : v.id !== undefined ? v.id.map((id) => ({ kind: 'resend', id }) as const) : [{ kind: 'resend-dead', endpoint: v.endpoint! }];
  let said = '';
  for (const a of actions) said += `${(await runAction(target, a, who, Date.now())).message}\n`;
  return said;
}

/**
 * `probe`: the pause lives in the running daemon's worker, so the daemon is asked, as the
 * console's button does: POST /api/actions/probe at ops.listen with ops.token.
 */
async function probe(cfg: Config | undefined, endpoint: string, out: NodeJS.WritableStream): Promise<number> {
  if (cfg?.opsListen === undefined) {
    process.stderr.write('pbxhook outbox probe: needs --config with ops enabled: the running daemon does the probing\n');
    return EX_UNAVAILABLE;
  }
  const { host, port } = parseListen(cfg.opsListen);
  const at = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  try {
    const r = await fetch(`http://${at}:${port}/api/actions/probe`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(cfg.opsToken !== undefined ? { authorization: `Bearer ${cfg.opsToken}` } : {}) },
      body: JSON.stringify({ endpoint }),
      signal: AbortSignal.timeout(10_000),
    });
    const answer = (await r.json()) as { message?: string; error?: string };
    if (!r.ok) {
      process.stderr.write(`pbxhook outbox probe: the daemon refused (${r.status}): ${answer.error ?? ''}\n`);
      return r.status === 401 || r.status === 403 ? EX_NOPERM : EX_UNAVAILABLE;
    }
    out.write(`${answer.message ?? ''}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`pbxhook outbox probe: no daemon answering at ${cfg.opsListen} (${err instanceof Error ? err.message : String(err)})\n`);
    return EX_UNAVAILABLE;
  }
}

async function purge(store: OutboxStore, v: Values, now: number): Promise<string> {
  const age = v['older-than'] === undefined ? 0 : parseDuration(v['older-than'])!;
  const sel = v.endpoint ? { endpoint: v.endpoint } : {};
  if (v.delivered) return `${await store.purge('delivered', now - age, sel)} delivered webhook(s) deleted\n`;
  return `${await store.purge('dead', now - age + 1, sel)} dead webhook(s) deleted\n`;
}

function stateOf(s: string): OutboxState {
  const state = s.replace(/-/g, '_') as OutboxState;
  if (!STATES.includes(state)) throw new UsageError(`--state: expected one of ${STATES.join(', ')}, got ${s}`);
  return state;
}

async function stats(store: OutboxStore, json: boolean, now: number): Promise<string> {
  const counts = await store.counts();
  const health = [...(await store.health())];
  if (json) return `${JSON.stringify({ file: store.location, counts, endpoints: Object.fromEntries(health) })}\n`;
  const byEndpoint = new Map<string, Record<string, number>>();
  const oldest = new Map<string, number>();
  for (const c of counts) {
    byEndpoint.set(c.endpoint, { ...byEndpoint.get(c.endpoint), [c.state]: c.count });
    if (c.state !== 'delivered' && c.state !== 'dead') oldest.set(c.endpoint, Math.min(oldest.get(c.endpoint) ?? Infinity, c.oldest));
  }
  const head = ['endpoint', ...STATES, 'oldest undelivered'];
  const rows = [...byEndpoint].map(([e, m]) => [e, ...STATES.map((s) => String(m[s] ?? 0)), oldest.has(e) ? `${span(now - oldest.get(e)!)} ago` : '-']);
  const lines = [`outbox ${store.location}`, ...table([head, ...rows])];
  if (rows.length === 0) lines.push('(empty)');
  for (const [endpoint, h] of health) {
    if (h.pausedAt !== null) lines.push(`${endpoint}: PAUSED ${span(now - h.pausedAt)} ago; next probe in ${span(Math.max(0, (h.nextProbeAt ?? now) - now))}`);
    else if (h.failingSince !== null) lines.push(`${endpoint}: failing for ${span(now - h.failingSince)}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * `logs`: each row's attempts (with --id), shown under the table. A shared outbox says which PBX
 * each row came from: two PBXes' calls may share a call id, and only the PBX tells them apart.
 */
function list(rows: readonly OutboxRow[], logs: ReadonlyArray<readonly AttemptRow[]> | undefined, now: number, shared: boolean): string {
  const withPbx = (cells: string[]) => (shared ? cells : cells.slice(1));
  const head = withPbx(['pbx', 'id', 'state', 'endpoint', 'call', 'seq', 'event', 'attempts', 'next', 'last error']);
  const body = rows.map((r) => withPbx([
    r.pbx, String(r.id), r.state, r.endpoint, r.callId, String(r.seq), r.summary, String(r.attempts),
    r.state === 'pending' || r.state === 'failed_waiting' ? (r.nextAt <= now ? 'due' : `in ${span(r.nextAt - now)}`) : '-',
    r.lastError ?? '',
  ]));
  const lines = table([head, ...body]);
  if (logs !== undefined) {
    for (const [i, r] of rows.entries()) {
      lines.push('', `${r.webhookId}  ${r.method} ${r.url.replace(/\?.*$/, '?…')}`);
      for (const a of logs[i] ?? []) {
        lines.push(`  attempt ${a.n} ${new Date(a.startedAt).toISOString()} ${a.outcome ?? 'in flight'} ${a.status ?? ''} ${a.latencyMs ?? ''}ms ${a.error ?? ''}`.trimEnd());
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The body and headers may carry personal data and credentials: JSON output leaves them out. */
function withoutPayload(r: OutboxRow) {
  const { headers: _h, body: _b, url, ...rest } = r;
  return { ...rest, url: url.replace(/\?.*$/, '?…') };
}

function table(rows: readonly string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

// ---------------------------------------------------------------------------------------------
// `pbxhook replay --send`

export interface ReplayOutbox {
  readonly enqueue: Outbox['worker']['enqueue'];
  /** Waits until every webhook is delivered or dead (or SIGINT/SIGTERM), then closes; the counts. */
  finish(): Promise<{ delivered: number; dead: number; undelivered: number }>;
}

/** The outbox in `stateDir`, or in a temporary folder removed afterwards. */
export async function openReplayOutbox(cfg: Config, log: Logger, stateDir: string | undefined): Promise<ReplayOutbox> {
  const dir = stateDir ?? mkdtempSync(path.join(os.tmpdir(), 'pbxhook-replay-'));
  const outbox = await openOutbox({ ...cfg, stateDir: dir }, log);
  await outbox.worker.start();
  return {
    enqueue: (rs) => outbox.worker.enqueue(rs),
    async finish() {
      let interrupted = false;
      const stop = () => (interrupted = true);
      process.once('SIGINT', stop).once('SIGTERM', stop);
      // The worker's count includes webhooks enqueued but not yet committed.
      while (!interrupted && outbox.worker.stats.outboxDepth > 0) await new Promise((r) => setTimeout(r, 50));
      process.off('SIGINT', stop).off('SIGTERM', stop);
      await outbox.close();
      const { delivered, dead, outboxDepth: undelivered } = outbox.worker.stats;
      if (undelivered > 0) {
        log.warn({ undelivered, stateDir: stateDir ?? '(temporary, removed)' }, 'replay stopped with webhooks undelivered; keep them with --state-dir');
      }
      if (stateDir === undefined) rmSync(dir, { recursive: true, force: true });
      return { delivered, dead, undelivered };
    },
  };
}
