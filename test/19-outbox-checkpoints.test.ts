/**
 * The outbox's write-ahead log is copied into the database on a thread of its own
 * (src/deliver/checkpointer.ts): the log stays bounded while the daemon writes, nothing is lost, and
 * a failing thread hands checkpoints back to SQLite's commits, loudly.
 */
import { mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { Checkpointer } from '../src/deliver/checkpointer.js';
import { OutboxStore } from '../src/deliver/outbox-store.js';
import type { WebhookRequest } from '../src/emit/request.js';

const T0 = Date.parse('2026-01-01T10:00:00Z');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempFile(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pbxhook-ckpt-'));
  dirs.push(dir);
  return path.join(dir, 'outbox.sqlite');
}
const req = (i: number): WebhookRequest => ({
  endpoint: 'crm', method: 'POST', url: 'https://crm.example.com/hook', headers: {}, body: `{"n":${i},"pad":"${'x'.repeat(400)}"}`, orderKey: `crm:call-${i}`,
});
const walBytes = (file: string): number => statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0;
const nextTurn = () => new Promise((r) => setTimeout(r, 2));

async function writeMany(store: OutboxStore, file: string): Promise<{ maxWal: number }> {
  let maxWal = 0;
  for (let i = 0; i < 600; i++) {
    store.insert([req(2 * i), req(2 * i + 1)], T0 + i);
    if (i % 10 === 0) {
      maxWal = Math.max(maxWal, walBytes(file));
      await nextTurn();
    }
  }
  return { maxWal };
}

describe('checkpoints on a thread of their own', () => {
  it('keep the log bounded while the store writes, and lose nothing', async () => {
    const file = tempFile();
    const errors: Error[] = [];
    const store = new OutboxStore(file, { backgroundCheckpoints: { everyCommits: 10, restartPages: 40, onError: (e) => errors.push(e) } });
    expect((store as unknown as { db: Database.Database }).db.pragma('wal_autocheckpoint', { simple: true }), 'none inside commits').toBe(0);
    await new Promise((r) => setTimeout(r, 300)); // the thread is up
    const { maxWal } = await writeMany(store, file);
    store.close();
    expect(errors).toEqual([]);
    // 600 commits of several pages each leave ~13 MB in an unchecked log (the control below).
    expect(maxWal).toBeLessThan(4_000_000);
    const db = new Database(file, { readonly: true });
    expect(db.prepare('SELECT count(*) AS n FROM webhooks').get()).toEqual({ n: 1200 });
    db.close();
  });

  it('control: without the thread and without SQLite checkpoints, the same writes grow the log past that bound', async () => {
    const file = tempFile();
    const store = new OutboxStore(file);
    (store as unknown as { db: Database.Database }).db.pragma('wal_autocheckpoint = 0');
    const { maxWal } = await writeMany(store, file);
    store.close();
    expect(maxWal).toBeGreaterThan(4_000_000);
  });

  it('a thread that cannot work is reported, and the store checkpoints inside its commits again', async () => {
    const file = tempFile();
    const errors: Error[] = [];
    const store = new OutboxStore(file, { backgroundCheckpoints: { onError: (e) => errors.push(e) } });
    renameSync(file, `${file}.moved`); // before the thread opens it by name
    await new Promise((r) => setTimeout(r, 1_000));
    expect(errors.length).toBeGreaterThan(0);
    expect(String(errors[0])).toMatch(/unable to open|no such file|SQLITE_CANTOPEN|exited/i);
    expect((store as unknown as { db: Database.Database }).db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    store.close();
  });

  it('reports, once, a thread that cannot open the outbox, naming the file and the reason', async () => {
    const errors: Error[] = [];
    const file = path.join(tempFile(), 'missing-dir', 'x.sqlite');
    const c = new Checkpointer(file, { onError: (e) => errors.push(e), onLongLog: () => {} });
    await new Promise((r) => setTimeout(r, 1_000));
    c.stop();
    expect(errors.map(String)).toEqual([expect.stringContaining(file)]);
    expect(String(errors[0])).toMatch(/directory does not exist|SQLITE_CANTOPEN/);
  });
});
