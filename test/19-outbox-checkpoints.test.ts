/**
 * The outbox's write-ahead log is copied into the database on a thread of its own
 * (src/deliver/checkpointer.ts), and bounded by the store itself: past `walLimitBytes` the writing
 * connection checkpoints and truncates it after the commit, so the -wal file never exceeds the
 * limit by more than one commit, whatever the thread does (issue #13: this file used to race the
 * thread against the writes, and a busy machine decided). Nothing is lost; a failing thread hands
 * checkpoints back to SQLite's commits, loudly.
 *
 * Every size asserted here is the file's size after a commit: it depends on the bytes written, not
 * on when the thread ran.
 */
import { mkdtempSync, renameSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { Checkpointer } from '../src/deliver/checkpointer.js';
import { SqliteOutbox, type SqliteOutboxOptions, WAL_LIMIT_BYTES } from '../src/deliver/outbox-store.js';
import type { WebhookRequest } from '../src/emit/request.js';

const T0 = Date.parse('2026-01-01T10:00:00Z');
const LIMIT = 256 * 1024;
const COMMITS = 600;
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
const dbOf = (store: SqliteOutbox) => (store as unknown as { db: Database.Database }).db;

/**
 * COMMITS commits of two webhooks each, the -wal file's size read after every one. `grown` is the
 * largest growth of the file in one commit: what "one commit" weighs in the bound.
 */
async function writeMany(store: SqliteOutbox, file: string): Promise<{ sizes: number[]; grown: number }> {
  const sizes: number[] = [];
  let grown = 0;
  let before = walBytes(file);
  for (let i = 0; i < COMMITS; i++) {
    store.insert([req(2 * i), req(2 * i + 1)], T0 + i);
    const size = walBytes(file);
    sizes.push(size);
    grown = Math.max(grown, size - before);
    before = size;
    // Let the thread (if any) run between commits, as the daemon's event loop does.
    if (i % 10 === 0) await new Promise((r) => setImmediate(r));
  }
  return { sizes, grown };
}

function rowsIn(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM webhooks').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

async function boundedRun(opts: SqliteOutboxOptions, setUp: (store: SqliteOutbox) => void = () => {}) {
  const file = tempFile();
  const store = new SqliteOutbox(file, { walLimitBytes: LIMIT, ...opts });
  setUp(store);
  const { sizes, grown } = await writeMany(store, file);
  const wal = { ...store.wal };
  store.close();
  return { file, sizes, grown, wal, max: Math.max(...sizes) };
}

describe('the store bounds its write-ahead log itself', () => {
  it('control: without any checkpoint the same writes grow the log far past the limit', async () => {
    const { max, grown } = await boundedRun({ walLimitBytes: Infinity }, (s) => dbOf(s).pragma('wal_autocheckpoint = 0'));
    expect(max).toBeGreaterThan(10 * LIMIT);
    // Each of these webhooks starts a lane: rows, lanes and their indexes, up to 18 pages (4 KB) when splits coincide.
    expect(grown, 'a commit of two webhooks is a few pages').toBeLessThan(LIMIT / 3);
  });

  it('with no thread and no automatic checkpoint, the log never exceeds the limit by more than one commit', async () => {
    const { file, sizes, grown, wal, max } = await boundedRun({}, (s) => dbOf(s).pragma('wal_autocheckpoint = 0'));
    expect(max).toBeLessThanOrEqual(LIMIT + grown);
    expect(sizes.filter((s) => s === 0).length, 'truncated, then grown again').toBe(wal.truncated);
    expect(wal.truncated).toBeGreaterThan(0);
    expect(wal.blocked).toBe(0);
    expect(rowsIn(file)).toBe(2 * COMMITS);
  });

  it('with the thread stalled (it never checkpoints), the same bound holds', async () => {
    const errors: Error[] = [];
    const { file, grown, wal, max } = await boundedRun({ backgroundCheckpoints: { everyCommits: Number.MAX_SAFE_INTEGER, onError: (e) => errors.push(e) } });
    expect(max).toBeLessThanOrEqual(LIMIT + grown);
    expect(wal.truncated).toBeGreaterThan(0);
    expect(errors).toEqual([]);
    expect(rowsIn(file)).toBe(2 * COMMITS);
  });

  it('with the thread checkpointing after every commit, racing the writer, the same bound holds and nothing is lost', async () => {
    const errors: Error[] = [];
    const { file, grown, wal, max } = await boundedRun({ backgroundCheckpoints: { everyCommits: 1, onError: (e) => errors.push(e) } });
    expect(max).toBeLessThanOrEqual(LIMIT + grown);
    expect(wal.blocked, 'the thread never made the store checkpoint in vain').toBe(0);
    expect(errors).toEqual([]);
    expect(rowsIn(file)).toBe(2 * COMMITS);
  });

  it('the daemon gets SQLite checkpoints off its commits, and a default limit', () => {
    const store = new SqliteOutbox(tempFile(), { backgroundCheckpoints: { onError: () => {} } });
    expect(dbOf(store).pragma('wal_autocheckpoint', { simple: true }), 'none inside commits').toBe(0);
    expect((store as unknown as { walLimitBytes: number }).walLimitBytes).toBe(WAL_LIMIT_BYTES);
    store.close();
  });
});

describe('a checkpoint thread that cannot work', () => {
  it('is reported, and the store checkpoints inside its commits again', async () => {
    const file = tempFile();
    let reported!: (e: Error) => void;
    const error = new Promise<Error>((r) => (reported = r));
    const store = new SqliteOutbox(file, { backgroundCheckpoints: { everyCommits: 1, onError: (e) => reported(e) } });
    renameSync(file, `${file}.moved`); // before the thread opens it by name: the first checkpoint starts it
    store.insert([req(0)], T0);
    expect(String(await error)).toMatch(/unable to open|no such file|SQLITE_CANTOPEN|exited/i);
    expect(dbOf(store).pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    store.close();
  });

  it('is reported once, naming the file and the reason', async () => {
    const errors: Error[] = [];
    const file = path.join(tempFile(), 'missing-dir', 'x.sqlite');
    const c = new Checkpointer(file, { everyCommits: 1, onError: (e) => errors.push(e) });
    c.committed(); // the thread starts with the first checkpoint asked
    await c.exited; // every report it could make is made by now
    c.stop();
    expect(errors.map(String)).toEqual([expect.stringContaining(file)]);
    expect(String(errors[0])).toMatch(/directory does not exist|SQLITE_CANTOPEN/);
  });
});

describe('a checkpoint thread only while checkpoints are asked for (issue #15, memory)', () => {
  it('starts with the first checkpoint, is retired when idle, and comes back on the next', async () => {
    const file = tempFile();
    const store = new SqliteOutbox(file);
    store.insert([req(0)], T0);
    const errors: Error[] = [];
    const c = new Checkpointer(file, { everyCommits: 1, idleMs: 1, onError: (e) => errors.push(e) });
    expect(c.running, 'no thread before any checkpoint').toBe(false);
    c.committed();
    expect(c.running).toBe(true);
    for (let i = 0; i < 500 && c.running; i++) await new Promise((r) => setTimeout(r, 10));
    expect(c.running, 'retired once idle').toBe(false);
    await c.exited;
    c.committed();
    expect(c.running, 'a new thread for the next checkpoint').toBe(true);
    store.insert([req(1)], T0 + 1);
    c.stop();
    await c.exited;
    store.close();
    expect(errors, 'a retired thread is no failure').toEqual([]);
  });
});
