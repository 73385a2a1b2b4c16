/**
 * One sending process per state_dir (src/deliver/state-lock.ts): a second one is refused at once,
 * naming the folder and the holder's pid; the lock goes with its process, even after kill -9.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LOCK_FILE, PID_FILE, StateDirBusyError, holdStateDir } from '../src/deliver/state-lock.js';
import { ROOT, ensureBuilt } from './support/e2e.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function stateDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'pbxhook-lock-'));
  dirs.push(d);
  return d;
}

describe('the state_dir lock', () => {
  it('refuses a second holder, naming the folder and the first one pid; free again once released', () => {
    const dir = stateDir();
    const first = holdStateDir(dir);
    expect(readFileSync(path.join(dir, PID_FILE), 'utf8')).toBe(`${process.pid}\n`);
    expect(readdirSync(dir).sort(), 'the lock and the pid, nothing else').toEqual([LOCK_FILE, PID_FILE]);
    let refused: unknown;
    try {
      holdStateDir(dir);
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(StateDirBusyError);
    expect(refused).toMatchObject({ code: 'PBXHOOK_STATE_DIR_BUSY', stateDir: dir, holderPid: process.pid });
    expect((refused as Error).message).toContain(`state_dir ${dir} is in use by another pbxhook (pid ${process.pid})`);

    first.release();
    expect(existsSync(path.join(dir, PID_FILE)), 'the pid file goes with the lock').toBe(false);
    const second = holdStateDir(dir);
    second.release();
    second.release(); // twice is harmless
  });

  it('does not lock out a different state_dir', () => {
    const a = holdStateDir(stateDir());
    const b = holdStateDir(stateDir());
    a.release();
    b.release();
  });

  it('pbxhook replay --send on a state_dir in use exits 75 with the reason, having sent nothing', () => {
    ensureBuilt();
    const dir = stateDir();
    const held = holdStateDir(dir);
    try {
      const r = spawnSync(
        process.execPath,
        [path.join(ROOT, 'dist/cli.js'), 'replay', 'test/fixtures/asterisk/in-queue-answered.ami', '--config', 'config/lab.example.yaml', '--send', '--state-dir', dir],
        { cwd: ROOT, encoding: 'utf8', timeout: 30_000 },
      );
      expect(r.status).toBe(75);
      expect(r.stderr).toBe(`pbxhook: state_dir ${dir} is in use by another pbxhook (pid ${process.pid}): one daemon per state_dir, or every webhook would be sent twice; stop the other one or give this one its own state_dir\n`);
      expect(r.stdout, 'no webhook printed, none queued').toBe('');
    } finally {
      held.release();
    }
  });

  it('is free again after its holder is killed with SIGKILL (no stale lock)', async () => {
    ensureBuilt();
    const dir = stateDir();
    const script = `import { holdStateDir } from ${JSON.stringify(path.join(ROOT, 'dist/deliver/state-lock.js'))};
      holdStateDir(${JSON.stringify(dir)}); process.stdout.write('held\\n'); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.setEncoding('utf8').on('data', (d: string) => d.includes('held') && resolve());
        child.once('exit', (code) => reject(new Error(`the holder exited early (${code})`)));
        setTimeout(() => reject(new Error('the holder did not take the lock within 30 s')), 30_000);
      });
      expect(() => holdStateDir(dir)).toThrow(`(pid ${child.pid})`);
    } finally {
      child.kill('SIGKILL');
    }
    await new Promise((r) => (child.exitCode === null && child.signalCode === null ? child.once('exit', r) : r(undefined)));
    const after = holdStateDir(dir);
    expect(readFileSync(path.join(dir, PID_FILE), 'utf8'), 'the stale pid file is overwritten').toBe(`${process.pid}\n`);
    after.release();
  });
});
