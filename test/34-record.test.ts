import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { frameAll } from '../src/ami/framer.js';
import { recordTrace } from '../src/record.js';
import { loadTrace, splitTrace, startFakeAmi, type FakeAmi } from './support/fakeAmiServer.js';

const TRACE = 'test/fixtures/asterisk/in-queue-answered.ami';
const SECRET = 'rec-Secret-42';
let server: FakeAmi | undefined;
let dir = '';
afterEach(async () => {
  await server?.close();
  server = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const pbx = (port: number, secret = SECRET) => ({ type: 'asterisk' as const, host: '127.0.0.1', port, username: 'admin', secret });

describe('pbxhook record', () => {
  it('writes exactly the bytes the PBX sent, never the login it sent, and counts progress', async () => {
    server = await startFakeAmi({ trace: TRACE, username: 'admin', secret: SECRET });
    dir = mkdtempSync(join(tmpdir(), 'pbxhook-rec-'));
    const out = join(dir, 'rec.ami');
    let stop: () => void = () => undefined;
    const stopped = new Promise<void>((r) => (stop = r));
    const pending = recordTrace(pbx(server.port), { out, stop: stopped });
    // Stop once the file holds the trace's last message, not after a guess at how long writing takes
    // (issue #13); the deadline only guards against a hang.
    const last = splitTrace(loadTrace(TRACE)).messages.at(-1)!.bytes;
    const deadline = Date.now() + 30_000;
    const holdsAll = () => existsSync(out) && readFileSync(out).subarray(-last.length).equals(last);
    while (!holdsAll()) {
      if (Date.now() > deadline) throw new Error(`${out} never received the trace's last message`);
      await new Promise((r) => setTimeout(r, 20));
    }
    stop();
    const r = await pending;
    expect(r.ok).toBe(true);
    const recorded = readFileSync(out);
    expect(recorded.toString('latin1')).not.toContain(SECRET);
    const want = frameAll(loadTrace(TRACE)).frames.slice(1); // the trace's own login answer is replaced by the server's
    const got = frameAll(recorded).frames;
    expect(got[0]!.fields['response']).toBe('Success');
    expect(got.slice(1)).toEqual(want);
    if (r.ok) {
      expect(r.progress.bytes).toBe(recorded.length);
      expect(r.progress.events).toBe(want.filter((f) => f.fields['event'] !== undefined).length);
      expect(r.progress.calls).toBe(1);
    }
  });

  it('says the login was refused, naming host:port and user, without the secret', async () => {
    server = await startFakeAmi({ trace: TRACE, username: 'admin', secret: SECRET });
    dir = mkdtempSync(join(tmpdir(), 'pbxhook-rec-'));
    const r = await recordTrace(pbx(server.port, 'wrong-secret'), { out: join(dir, 'x.ami'), stop: new Promise(() => undefined), seconds: 5 });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.code).toBe('PBXHOOK_RECORD_AUTH');
      expect(r.message).toContain(`127.0.0.1:${server.port}`);
      expect(r.message).toContain('admin');
      expect(r.message).not.toContain('wrong-secret');
    }
  });
});
