/**
 * Hostile bytes from the PBX, end to end with the real daemon process (issue #14 item 4): a fake
 * AMI server streams each input the issue measured (an `ActionID: error` response that crashed
 * asterisk-manager, a megabyte without a blank line, 256k tiny frames, binary noise) and then a
 * real recorded call. The daemon must stay up, skip what it cannot read, and send the call's
 * webhooks exactly as `pbxhook replay` prints them. test/08 covers the same inputs (and the ESL
 * ones) at the client; this is the same through `pbxhook run`.
 *
 * Deadlines here are hang guards only, generous; no test asserts how fast anything happened.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { startFakeAmi } from './support/fakeAmiServer.js';
import { ROOT, e2eSandbox, exitWithin, replay, startDaemon, startReceiver, waitFor, writeConfig } from './support/e2e.js';

const TRACE = path.join(ROOT, 'test/fixtures/asterisk/in-queue-answered.ami');
const sandbox = e2eSandbox('pbxhook-e2e-hostile-');

/** A deterministic byte soup: NULs, high bytes, stray CR/LF, colons (no blank line inside). */
function noise(n: number): Buffer {
  const out = Buffer.alloc(n);
  let x = 0x2545f491;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return Buffer.from(out.toString('latin1').replace(/(\r?\n){2,}/g, '\n'), 'latin1');
}

/** Each input, and whether it is over `pbx.max_frame_bytes` (64 KiB) and so logged as skipped. */
const HOSTILE: ReadonlyArray<readonly [string, Buffer, boolean]> = [
  ['a Response with ActionID: error', Buffer.from('Response: Success\r\nActionID: error\r\nMessage: x\r\n\r\n'), false],
  ['1 MB of short lines without a blank line', Buffer.from('x\r\n'.repeat(350_000) + '\r\n'), true],
  ['256k tiny frames', Buffer.from('a: b\r\n\r\n'.repeat(262_144)), false],
  ['binary noise', Buffer.concat([noise(200_000), Buffer.from('\r\n\r\n')]), true],
];

/** The recorded trace with `bad` streamed right after its login answer, before the call. */
function withHostilePrefix(bad: Buffer): Buffer {
  const trace = readFileSync(TRACE);
  const loginEnd = trace.indexOf('\r\n\r\n', trace.indexOf('Response:')) + 4;
  return Buffer.concat([trace.subarray(0, loginEnd), bad, trace.subarray(loginEnd)]);
}

describe('pbxhook run: hostile AMI input (issue #14 item 4)', () => {
  it.each(HOSTILE)('%s: the daemon stays up and the next real call is right', async (_name, bad, oversized) => {
    const crm = await startReceiver(0);
    sandbox.defer(() => crm.close());
    const ami = await startFakeAmi({ trace: withHostilePrefix(bad), username: 'admin', secret: 'labsecret', speed: 100 });
    sandbox.defer(() => ami.close());
    const ini = ['[crm-json]', `url = http://127.0.0.1:${crm.port}/3cx`, 'schema = 3cx', ''].join('\n');
    const { yaml } = writeConfig(sandbox.tmp, ami.port, [], ini);
    const want = replay(TRACE, yaml);
    expect(want.length).toBeGreaterThan(0);

    const d = startDaemon(yaml);
    await ami.done;
    await waitFor(() => crm.requests.length >= want.length, () => `${want.length} webhooks (have ${crm.requests.length})\n${d.out.stderr.slice(-3000)}`, 60_000);
    expect(crm.requests.map((r) => r.body.toString())).toEqual(want.map((w) => w.body));
    // Still running, and never lost the PBX over it.
    expect(d.child.exitCode).toBeNull();
    expect(d.logs().filter((l) => l.msg === 'AMI disconnected')).toEqual([]);
    const skipped = d.logs().filter((l) => l.code === 'PBXHOOK_AMI_FRAME_SKIPPED');
    expect(skipped.length > 0, 'an oversized message is logged as skipped').toBe(oversized);
    d.child.kill('SIGTERM');
    expect(await exitWithin(d, 30_000), d.out.stderr.slice(-3000)).toEqual({ code: 0, signal: null });
  });
});
