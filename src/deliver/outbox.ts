/** Opens the outbox of a config: the database under state_dir, the HTTP client and the worker. */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config/types.js';
import { createHttpClient } from './attempt.js';
import { tokensOf } from './auth.js';
import { OutboxStore } from './outbox-store.js';
import { OutboxWorker } from './outbox-worker.js';

export const OUTBOX_FILE = 'outbox.sqlite';

export function outboxPath(stateDir: string): string {
  return path.join(stateDir, OUTBOX_FILE);
}

/** Opens the database only (the `pbxhook outbox` commands); creates the folder if needed. */
export function openStore(stateDir: string): OutboxStore {
  mkdirSync(stateDir, { recursive: true, mode: 0o750 });
  return new OutboxStore(outboxPath(stateDir));
}

export interface Outbox {
  readonly store: OutboxStore;
  readonly worker: OutboxWorker;
  /** Stops the worker (in-flight attempts get delivery.stop_timeout), then closes sockets and the database. */
  close(): Promise<void>;
}

export function openOutbox(cfg: Pick<Config, 'stateDir' | 'delivery' | 'endpoints'>, log: Logger): Outbox {
  const store = openStore(cfg.stateDir);
  const http = createHttpClient({
    timeoutMs: cfg.delivery.timeoutMs,
    connectTimeoutMs: cfg.delivery.connectTimeoutMs,
    tokens: tokensOf(cfg),
  });
  const worker = new OutboxWorker({ store, http, log, endpoints: cfg.endpoints.filter((e) => e.enabled), delivery: cfg.delivery });
  return {
    store,
    worker,
    async close() {
      await worker.stop();
      http.close();
      store.close();
    },
  };
}
