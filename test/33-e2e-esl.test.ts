/**
 * End to end with FreeSWITCH, as test/30 does with Asterisk: a recorded ESL session served by the
 * fake event socket → `node dist/cli.js run` with pbx.type freeswitch → a real HTTP receiver on
 * loopback. What the receiver gets must be, per endpoint and in order, byte for byte what
 * `pbxhook replay` prints for the same trace and config. Also: graceful SIGTERM, the password never
 * in the logs, a refused auth (exit 77) and an unreachable PBX (retried, no exit).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeEsl, type FakeEsl } from './support/fakeEslServer.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = path.join(ROOT, 'dist/cli.js');
const PASSWORD = 'Clue-Con-e2e-9x';
const TOKEN = 'e2e-tok-Fs7Kq2';
const JSON_PATH = '/3cx';
const LEGACY_PATH = '/3cx-legacy';
/** Trace time divided by this: the 30 s lab calls play out in a few hundred ms. */
const SPEED = 100;

interface Received {
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

async function startReceiver(): Promise<{ port: number; requests: Received[]; close(): Promise<void> }> {
  const requests: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let tmpRoot: string;
const children = new Set<ChildProcess>();
let cleanup: Array<() => Promise<void>> = [];

function writeConfig(eslPort: number, receiverPort: number, password = PASSWORD): string {
  const folder = mkdtempSync(path.join(tmpRoot, 'case-'));
  const yaml = path.join(folder, 'pbxhook.yaml');
  writeFileSync(
    yaml,
    [
      'pbx:',
      '  type: freeswitch',
      '  host: 127.0.0.1',
      `  port: ${eslPort}`,
      `  password: ${password}`,
      'roles:',
      '  ring_groups: ["830@default", "831@default"]',
      'calls:',
      '  timezone: UTC',
      'retry:',
      '  retries: 3',
      '  min_timeout_ms: 5',
      '  max_timeout_ms: 20',
      '  timeout_ms: 2000',
      'ops:',
      '  listen: 127.0.0.1:0', // any free port: test files run in parallel
      `state_dir: ${path.join(folder, 'state')}`,
      'webhooks: ./webhooks.ini',
      '',
    ].join('\n'),
  );
  writeFileSync(
    path.join(folder, 'webhooks.ini'),
    [
      '[crm-json]', `url = http://127.0.0.1:${receiverPort}${JSON_PATH}`, 'schema = 3cx', 'variant = json', `token = ${TOKEN}`, '',
      '[crm-legacy]', `url = http://127.0.0.1:${receiverPort}${LEGACY_PATH}`, 'schema = 3cx', 'variant = urlencoded', '',
    ].join('\n'),
  );
  return yaml;
}

function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PBXHOOK_')));
}

function startDaemon(yaml: string) {
  const child = spawn(process.execPath, [CLI, 'run', '--config', yaml], { cwd: ROOT, env: cleanEnv(), stdio: 'pipe' });
  children.add(child);
  const out = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out.stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (out.stderr += c));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  return { child, out, exit };
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitFor(cond: () => boolean, what: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface ReplayLine {
  readonly endpoint: string;
  readonly url: string;
  readonly body: string;
}

function replay(trace: string, yaml: string): ReplayLine[] {
  const r = spawnSync(process.execPath, [CLI, 'replay', trace, '--config', yaml], { cwd: ROOT, env: cleanEnv(), encoding: 'utf8', timeout: 30_000 });
  expect(r.status, `pbxhook replay failed:\n${r.stderr}`).toBe(0);
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as ReplayLine);
}

beforeAll(() => {
  if (!existsSync(CLI)) {
    const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) throw new Error(`build failed:\n${r.stdout}${r.stderr}`);
  }
  tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'pbxhook-e2e-esl-'));
});

afterEach(async () => {
  for (const child of children) child.kill('SIGKILL');
  const steps = cleanup;
  cleanup = [];
  for (const step of steps.reverse()) await step();
});

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  if (tmpRoot) rmSync(tmpRoot, { recursive: true, force: true });
});

async function fixture(trace: string): Promise<{ esl: FakeEsl; crm: Awaited<ReturnType<typeof startReceiver>> }> {
  const crm = await startReceiver();
  cleanup.push(() => crm.close());
  const esl = await startFakeEsl({ trace, password: PASSWORD, speed: SPEED });
  cleanup.push(() => esl.close());
  return { esl, crm };
}

describe('pbxhook run: live FreeSWITCH ESL → webhooks, same bytes as replay', () => {
  it.each([
    'test/fixtures/freeswitch/in-queue-answered.esl',
    'test/fixtures/freeswitch/in-queue-blind-transfer.esl',
    'test/fixtures/freeswitch-synth/in-queue-attended-transfer.esl',
  ])('%s', async (rel) => {
    const trace = path.join(ROOT, rel);
    const { esl, crm } = await fixture(trace);
    const yaml = writeConfig(esl.port, crm.port);
    const want = replay(trace, yaml);
    expect(want.length, 'the trace should produce webhooks').toBeGreaterThan(0);

    const daemon = startDaemon(yaml);
    await waitFor(
      () => crm.requests.length >= want.length || daemon.child.exitCode !== null,
      () => `${want.length} webhooks (have ${crm.requests.length})\nstderr:\n${daemon.out.stderr}`,
      20_000,
    );
    expect(daemon.child.exitCode, `pbxhook exited early:\n${daemon.out.stderr}`).toBeNull();
    await esl.done;
    daemon.child.kill('SIGTERM');
    expect(await within(daemon.exit, 30_000, 'exit after SIGTERM'), daemon.out.stderr).toEqual({ code: 0, signal: null });

    expect(crm.requests).toHaveLength(want.length);
    for (const [endpoint, urlPath] of [['crm-json', JSON_PATH], ['crm-legacy', LEGACY_PATH]] as const) {
      const got = crm.requests.filter((r) => r.path.split('?')[0] === urlPath).map((r) => r.body.toString('hex'));
      const expected = want.filter((l) => l.endpoint === endpoint).map((l) => Buffer.from(l.body, 'utf8').toString('hex'));
      expect(expected.length, `${endpoint} gets webhooks`).toBeGreaterThan(0);
      expect(got, endpoint).toEqual(expected);
    }
    for (const r of crm.requests) expect(r.headers.authorization).toBe(r.path === JSON_PATH ? `Bearer ${TOKEN}` : undefined);
    expect(daemon.out.stderr).toContain('connected to FreeSWITCH ESL');
    expect(esl.commands.some((c) => c.startsWith('event plain CHANNEL_CREATE'))).toBe(true);
    for (const secret of [PASSWORD, TOKEN]) expect(daemon.out.stderr + daemon.out.stdout).not.toContain(secret);
  });
});

describe('pbxhook run: FreeSWITCH start-up failures', () => {
  it('a wrong ESL password exits 77, naming host:port, never the password', async () => {
    const { esl, crm } = await fixture(path.join(ROOT, 'test/fixtures/freeswitch/in-busy.esl'));
    const wrong = 'wrong-Pass-5v8K';
    const daemon = startDaemon(writeConfig(esl.port, crm.port, wrong));
    expect(await within(daemon.exit, 30_000, 'wrong password'), daemon.out.stderr).toEqual({ code: 77, signal: null });
    expect(daemon.out.stderr).toMatch(new RegExp(`PBXHOOK_ESL_AUTH.*127\\.0\\.0\\.1:${esl.port}|127\\.0\\.0\\.1:${esl.port}.*PBXHOOK_ESL_AUTH`));
    for (const secret of [wrong, PASSWORD, TOKEN]) expect(daemon.out.stderr + daemon.out.stdout).not.toContain(secret);
    expect(crm.requests).toHaveLength(0);
  });

  // An unreachable PBX is no reason to stop: the outbox must still be delivered (issue #14 item 1).
  it('a closed ESL port keeps the daemon running, retrying in the background, naming host:port; SIGTERM exits 0', async () => {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const { port } = s.address() as net.AddressInfo;
    await new Promise<void>((r) => s.close(() => r()));
    const daemon = startDaemon(writeConfig(port, 9));
    await waitFor(() => daemon.out.stderr.includes('PBXHOOK_ESL_CONNECT'), () => `the connect failure logged\n${daemon.out.stderr}`, 30_000);
    expect(daemon.child.exitCode, daemon.out.stderr).toBeNull();
    expect(daemon.out.stderr).toContain(`"port":${port}`);
    daemon.child.kill('SIGTERM');
    expect(await within(daemon.exit, 30_000, 'SIGTERM'), daemon.out.stderr).toEqual({ code: 0, signal: null });
  });
});
