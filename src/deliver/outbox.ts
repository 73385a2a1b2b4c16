/**
 * Opens the outbox of a config: the store (the one place a backend is chosen), the HTTP client and
 * the worker.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { pbxNameOf } from '../config/pbx-name.js';
import type { Config } from '../config/types.js';
import { createHttpClient } from './attempt.js';
import { tokensOf } from './auth.js';
import { SqliteOutbox } from './outbox-store.js';
import { SqliteStore } from './sqlite-store.js';
import type { OutboxStore } from './store.js';
import { OutboxWorker, type WorkerOptions } from './outbox-worker.js';
import { NOTIFY_ENDPOINT, notifyRequest, shouldNotify } from './notify.js';
import { holdStateDir } from './state-lock.js';

export const OUTBOX_FILE = 'outbox.sqlite';

export function outboxPath(stateDir: string): string {
  return path.join(stateDir, OUTBOX_FILE);
}

/** The SQLite outbox of a state_dir itself, synchronous (benchmarks and tests); creates the folder if needed. */
export function openStore(stateDir: string, opts?: ConstructorParameters<typeof SqliteOutbox>[1]): SqliteOutbox {
  mkdirSync(stateDir, { recursive: true, mode: 0o750 });
  return new SqliteOutbox(outboxPath(stateDir), opts);
}

/** What the store of a config is opened for. */
export interface StoreUse {
  /** The sending process (the daemon): its log hears of background trouble (SQLite's checkpoint thread). */
  readonly log?: Logger;
}

/** What a store needs of the config. */
export type StoreConfig = Pick<Config, 'stateDir'> & { readonly pbx?: Pick<Config['pbx'], 'host' | 'name'>; readonly outbox?: Config['outbox'] };

/**
 * The PBX a process enqueues for, as rows name it: the one name config/pbx-name.ts decides, which
 * the standby lease uses too; '' without a PBX (the CLI reading a state_dir).
 */
function rowsPbxOf(cfg: StoreConfig): string {
  return cfg.pbx === undefined ? '' : pbxNameOf(cfg.pbx);
}

/**
 * The outbox store of a config: the one place a backend is chosen (issue #17). Today SQLite in
 * state_dir; another backend is one more branch here, behind the same interface (store.ts).
 */
export async function openOutboxStore(cfg: StoreConfig, use: StoreUse = {}): Promise<OutboxStore> {
  const { log } = use;
  if (cfg.outbox?.store === 'postgres') {
    // Loaded only here: a SQLite outbox never loads node-postgres.
    const { openPgOutboxStore } = await import('../outbox-pg/open.js');
    return openPgOutboxStore(cfg.outbox.url, rowsPbxOf(cfg), log);
  }
  const sqlite = openStore(cfg.stateDir, {
    pbx: rowsPbxOf(cfg),
    ...(log !== undefined
      ? {
          backgroundCheckpoints: {
            onError: (err: unknown) => log.error({ err, code: 'PBXHOOK_OUTBOX_CHECKPOINT' }, 'outbox checkpoint thread failed; SQLite checkpoints inside commits again'),
          },
        }
      : {}),
  });
  return Promise.resolve(new SqliteStore(sqlite));
}

export interface Outbox {
  readonly store: OutboxStore;
  readonly worker: OutboxWorker;
  /** SIGHUP: new endpoints, tokens and signing secrets; queued webhooks keep their URL and body. */
  reload(cfg: Pick<Config, 'endpoints'>): void;
  /** Stops the worker (in-flight attempts get delivery.stop_timeout, or `waitMs` if shorter), then closes sockets and the database. */
  close(waitMs?: number): Promise<void>;
}

/**
 * The outbox a sending process uses: the store, the HTTP client and the worker. Rejects with
 * StateDirBusyError when another process already sends from this state_dir (state-lock.ts).
 */
export async function openOutbox(
  cfg: StoreConfig & Pick<Config, 'delivery' | 'endpoints'>,
  log: Logger,
  onAttempt?: WorkerOptions['onAttempt'],
): Promise<Outbox> {
  mkdirSync(cfg.stateDir, { recursive: true, mode: 0o750 });
  // A shared outbox needs no state_dir lock: its leases keep processes apart (issue #17).
  const lock = cfg.outbox?.store === 'postgres' ? { release: () => undefined } : holdStateDir(cfg.stateDir);
  let store: OutboxStore;
  try {
    store = await openOutboxStore(cfg, { log });
  } catch (err) {
    lock.release();
    throw err;
  }
  // The client reads this map on every request, so a reload updates it in place.
  const tokens = tokensOf(cfg);
  const http = createHttpClient({ timeoutMs: cfg.delivery.timeoutMs, connectTimeoutMs: cfg.delivery.connectTimeoutMs, tokens });
  // delivery.notify_url is one more endpoint of the outbox: retried, paused and ordered like a CRM's.
  const notifyUrl = cfg.delivery.notifyUrl;
  const notify = notifyUrl === undefined ? [] : [{ name: NOTIFY_ENDPOINT }];
  const enabled = (c: Pick<Config, 'endpoints'>) => [...c.endpoints.filter((e) => e.enabled), ...notify];
  const onEndpointEvent: WorkerOptions['onEndpointEvent'] =
    notifyUrl === undefined
      ? undefined
      : (ev) => {
          if (shouldNotify(ev)) worker.enqueue([notifyRequest(ev, notifyUrl)]);
        };
  const worker: OutboxWorker = new OutboxWorker({
    store, http, log, endpoints: enabled(cfg), delivery: cfg.delivery, ...(onAttempt ? { onAttempt } : {}), ...(onEndpointEvent ? { onEndpointEvent } : {}),
  });
  return {
    store,
    worker,
    reload(next) {
      tokens.clear();
      for (const [name, token] of tokensOf(next)) tokens.set(name, token);
      worker.setEndpoints(enabled(next));
    },
    async close(waitMs) {
      await worker.stop(waitMs);
      http.close();
      await store.close();
      lock.release();
    },
  };
}
