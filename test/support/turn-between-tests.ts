/**
 * Lets the worker's event loop turn between two tests (vitest.config.ts `setupFiles`). Vitest's
 * runner awaits only promises between tests, so a file of synchronous tests (test/31: one
 * spawnSync of the CLI each) never reads the main process's answers to its progress reports;
 * when such a run lasted a minute on a busy machine, the next turn of the loop fired vitest's
 * 60 s RPC timeout first: `[vitest-worker]: Timeout calling "onTaskUpdate"`, failing a run whose
 * tests had all passed (issue #13).
 */
import { afterEach } from 'vitest';

afterEach(() => new Promise<void>((resolve) => setImmediate(() => setImmediate(resolve))));
