/**
 * Claim holders on a shared outbox (issue #17, claim-holder.ts): a worker restarted on the same
 * host takes back at once the claims of a predecessor whose process is gone, and only then.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { holderGone, machineKey, newHolder } from '../src/deliver/claim-holder.js';

/** The PID of a process that has ended (spawned and waited for). */
function endedPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

const key = machineKey();

describe('claim holders', () => {
  it('name the host, the process and this boot and PID namespace', () => {
    expect(key, 'Linux /proc gives the machine key').toMatch(/^[0-9a-f]{16}$/);
    const h = newHolder();
    expect(h).toMatch(new RegExp(`:${process.pid}:[0-9a-f]{8}@${key}$`));
    expect(newHolder()).not.toBe(h);
    expect(machineKey(), 'the same key all along').toBe(key);
  });

  it('a holder whose process ended on this machine is gone', () => {
    const pid = endedPid();
    expect(holderGone(`pbx1:${pid}:0badf00d@${key}`)).toBe(true);
  });

  it('any doubt means not gone: alive, this process, another machine, no key, a name not ours', () => {
    expect(holderGone(newHolder()), 'this very process').toBe(false);
    expect(holderGone(`pbx1:${process.ppid}:0badf00d@${key}`), 'a live process').toBe(false);
    expect(holderGone(`pbx1:${endedPid()}:0badf00d@0123456789abcdef`), 'another boot or namespace').toBe(false);
    expect(holderGone(`pbx1:${endedPid()}:0badf00d`), 'an older pbxhook, no machine key').toBe(false);
    expect(holderGone(`pbx1:${endedPid()}:0badf00d@${key}`, null), 'this machine cannot tell its key').toBe(false);
    expect(holderGone('seed'), 'a name pbxhook did not make').toBe(false);
    expect(holderGone(`pbx1:1:0badf00d@${key}`, key ?? null, () => true), 'a PID that exists, even reused').toBe(false);
  });
});
