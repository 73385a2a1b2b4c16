/**
 * Who holds a claim on a shared outbox (issue #17): `host:pid:random@machine`, where `machine`
 * names this kernel's boot and PID namespace. A worker restarted on the same host (systemctl
 * restart, a crash and Restart=on-failure) finds its predecessor's claims still in flight under a
 * lease of delivery timeout + 5 s; when the predecessor's PID no longer exists in this very
 * namespace, nothing of it can still be sending, so those claims are taken back at once instead of
 * at the lease's end.
 *
 * "Gone" is decided only when it is sure: another machine, another namespace or boot, a holder name
 * this code did not make, or a PID that exists (even a reused one, or another user's: EPERM) all
 * mean "maybe alive", and those claims wait for their lease as before.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

const HOLDER = /^[^@]*:(\d+):[0-9a-f]+@([0-9a-f]{16})$/;

/** This kernel boot and PID namespace, as 16 hex digits; undefined where /proc cannot tell. */
export function machineKey(): string | undefined {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const ns = readlinkSync('/proc/self/ns/pid');
    return createHash('sha256').update(`${boot}\n${ns}`).digest('hex').slice(0, 16);
  } catch {
    return undefined;
  }
}

/** A new holder name for this process (a restart is a new holder). */
export function newHolder(key = machineKey()): string {
  const base = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  return key === undefined ? base : `${base}@${key}`;
}

/** Whether nothing of `holder` can still be running: its PID is gone from this machine's namespace. */
export function holderGone(holder: string, key: string | null = machineKey() ?? null, alive: (pid: number) => boolean = pidExists): boolean {
  const m = HOLDER.exec(holder);
  if (m === null || key === null || m[2] !== key) return false;
  const pid = Number(m[1]);
  return pid !== process.pid && !alive(pid);
}

function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, another user's.
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
