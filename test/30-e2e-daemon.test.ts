/**
 * End to end, with the real daemon process: a recorded trace served by the fake AMI server
 * → `node dist/cli.js run` → a real HTTP receiver on loopback. What the receiver gets must be,
 * per endpoint and in order, exactly what `pbxhook replay` prints for the same trace and config:
 * the live path and the replay path agree byte for byte. Also proven here: graceful SIGTERM
 * (exit 0), secrets never in the logs, a refused login (exit 77), an unreachable PBX (retried, no
 * exit) and delivery through retryable 500s.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeAmi, type FakeAmi } from './support/fakeAmiServer.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = path.join(ROOT, 'dist/cli.js');
const FIXTURES = path.join(ROOT, 'test/fixtures/asterisk');

const AMI_USER = 'admin';
const AMI_SECRET = 'labsecret';
const TOKEN = 'e2e-tok-7Qx9vL2mW4';
const JSON_PATH = '/3cx';
const LEGACY_PATH = '/3cx-legacy';
/** Trace time divided by this: the 15-30 s lab calls play out in a few hundred ms. */
const SPEED = 100;
/** Fast retries so the 500 test takes milliseconds; the schedule itself is 11-deliver's business. */
const FAST_RETRY = { retries: 3, min_timeout_ms: 5, max_timeout_ms: 20, timeout_ms: 2000 };

// ---------------------------------------------------------------------------------------------
// The CRM side: a real HTTP server that records every request.

interface Received {
  readonly method: string;
  /** Path and query, as the request line had it. */
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  /** What the receiver answered. */
  readonly status: number;
}

/** Chooses the answer to a request that passed the token check; 200 by default. */
type Respond = (req: Omit<Received, 'status'>) => number;

interface Receiver {
  readonly port: number;
  readonly requests: Received[];
  close(): Promise<void>;
}

/** Requests to JSON_PATH must carry `Authorization: Bearer TOKEN`; a wrong or missing one gets 401. */
async function startReceiver(respond: Respond = () => 200): Promise<Receiver> {
  const requests: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seen = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      const authorised = seen.path !== JSON_PATH || req.headers.authorization === `Bearer ${TOKEN}`;
      const status = authorised ? respond(seen) : 401;
      requests.push({ ...seen, status });
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The daemon side: config files in a temp dir and the real CLI as a child process.

interface Setup {
  readonly amiPort: number;
  readonly receiverPort: number;
  readonly secret?: string;
}

let tmpRoot: string;

/** Writes pbxhook.yaml + webhooks.ini into a fresh folder; returns the YAML's path. */
function writeConfig(s: Setup): string {
  const folder = mkdtempSync(path.join(tmpRoot, 'case-'));
  const yaml = path.join(folder, 'pbxhook.yaml');
  writeFileSync(
    yaml,
    [
      'pbx:',
      '  type: asterisk',
      '  host: 127.0.0.1',
      `  port: ${s.amiPort}`,
      `  username: ${AMI_USER}`,
      `  secret: ${s.secret ?? AMI_SECRET}`,
      'roles:',
      '  ring_groups: ["830@internal", "831@internal"]',
      'calls:',
      '  timezone: UTC',
      'retry:',
      ...Object.entries(FAST_RETRY).map(([k, v]) => `  ${k}: ${v}`),
      'log:',
      '  level: info',
      'ops:',
      '  listen: 127.0.0.1:0', // any free port: test files run in parallel
      `state_dir: ${path.join(folder, 'state')}`, // the outbox (issue #4), never /var/lib here
      'webhooks: ./webhooks.ini',
      '',
    ].join('\n'),
  );
  writeFileSync(
    path.join(folder, 'webhooks.ini'),
    [
      '[crm-json]',
      `url = http://127.0.0.1:${s.receiverPort}${JSON_PATH}`,
      'schema = 3cx',
      'variant = json',
      `token = ${TOKEN}`,
      '',
      '[crm-legacy]',
      `url = http://127.0.0.1:${s.receiverPort}${LEGACY_PATH}`,
      'schema = 3cx',
      'variant = urlencoded',
      '',
    ].join('\n'),
  );
  return yaml;
}

/** The environment without PBXHOOK_* overrides, so only the files under test configure the run. */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PBXHOOK_')));
}

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

interface Daemon {
  readonly child: ChildProcess;
  readonly out: { stdout: string; stderr: string };
  readonly exit: Promise<Exit>;
}

const children = new Set<ChildProcess>();

function startDaemon(yaml: string): Daemon {
  const child = spawn(process.execPath, [CLI, 'run', '--config', yaml], { cwd: ROOT, env: cleanEnv(), stdio: 'pipe' });
  children.add(child);
  const out = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out.stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (out.stderr += c));
  const exit = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    });
  });
  return { child, out, exit };
}

async function exitWithin(d: Daemon, ms: number, what: string): Promise<Exit> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: pbxhook did not exit within ${ms} ms\nstderr:\n${d.out.stderr}`)), ms);
  });
  try {
    return await Promise.race([d.exit, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitFor(cond: () => boolean, what: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A replay line: exactly what `pbxhook replay` prints for one webhook. */
interface ReplayLine {
  readonly endpoint: string;
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

function replay(trace: string, yaml: string): ReplayLine[] {
  const r = spawnSync(process.execPath, [CLI, 'replay', trace, '--config', yaml], {
    cwd: ROOT,
    env: cleanEnv(),
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(r.status, `pbxhook replay failed:\n${r.stderr}`).toBe(0);
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as ReplayLine);
}

/** pino writes one JSON object per line on stderr; anything else there is a finding. */
function logRecords(stderr: string): Array<Record<string, unknown>> {
  return stderr
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new Error(`stderr line is not pino JSON: ${l}`);
      }
    });
}

function expectNoSecrets(d: Daemon, secrets: readonly string[]): void {
  for (const s of secrets) {
    expect(d.out.stderr, `log must not contain ${JSON.stringify(s)}`).not.toContain(s);
    expect(d.out.stdout, `stdout must not contain ${JSON.stringify(s)}`).not.toContain(s);
  }
}

/** What one endpoint should have received: method, path, content type and body bytes, in order. */
function wire(lines: readonly ReplayLine[], endpoint: string) {
  return lines
    .filter((l) => l.endpoint === endpoint)
    .map((l) => {
      const u = new URL(l.url);
      return { method: l.method, path: u.pathname + u.search, contentType: l.headers['content-type'], body: l.body };
    });
}

function received(rs: readonly Received[], urlPath: string) {
  return rs
    .filter((r) => r.path.split('?')[0] === urlPath)
    .map((r) => ({ method: r.method, path: r.path, contentType: r.headers['content-type'], body: r.body.toString('utf8') }));
}

/** The bytes as sent, compared as bytes: a re-encoding on the way would show here. */
function expectSameBytes(got: readonly Received[], want: readonly ReplayLine[]): void {
  expect(got.map((r) => r.body.toString('hex'))).toEqual(want.map((l) => Buffer.from(l.body, 'utf8').toString('hex')));
}

// ---------------------------------------------------------------------------------------------

let cleanup: Array<() => Promise<void>> = [];

beforeAll(() => {
  if (!existsSync(CLI)) {
    const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) throw new Error(`build failed (npx tsc -p tsconfig.json):\n${r.stdout}${r.stderr}`);
  }
  tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'pbxhook-e2e-'));
});

afterEach(async () => {
  // Whatever the test did, no daemon outlives it.
  for (const child of children) child.kill('SIGKILL');
  const steps = cleanup;
  cleanup = [];
  for (const step of steps.reverse()) await step();
});

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  if (tmpRoot) rmSync(tmpRoot, { recursive: true, force: true });
});

async function receiver(respond?: Respond): Promise<Receiver> {
  const r = await startReceiver(respond);
  cleanup.push(() => r.close());
  return r;
}

async function fakeAmi(trace: string): Promise<FakeAmi> {
  const server = await startFakeAmi({ trace, username: AMI_USER, secret: AMI_SECRET, speed: SPEED });
  cleanup.push(() => server.close());
  return server;
}

/** Runs the daemon until `expected` requests arrived, then SIGTERM; asserts the clean exit. */
async function runUntil(yaml: string, crm: Receiver, expected: number, ami: FakeAmi) {
  const daemon = startDaemon(yaml);
  await waitFor(
    () => crm.requests.length >= expected || daemon.child.exitCode !== null,
    () => `${expected} webhook requests (have ${crm.requests.length})\nstderr:\n${daemon.out.stderr}`,
    20_000,
  );
  expect(daemon.child.exitCode, `pbxhook exited early:\n${daemon.out.stderr}`).toBeNull();
  await ami.done;
  daemon.child.kill('SIGTERM');
  const exit = await exitWithin(daemon, 30_000, 'after SIGTERM');
  expect(exit, `stderr:\n${daemon.out.stderr}`).toEqual({ code: 0, signal: null });
  return { daemon, logs: logRecords(daemon.out.stderr) };
}

describe('pbxhook run: live AMI → webhooks, same bytes as replay', () => {
  // The vanilla lab and FreePBX's Local-channel queue members (issue #12): live and replay are one path.
  it.each(['in-queue-answered.ami', 'in-queue-blind-transfer.ami', '../asterisk-freepbx/fpbx-queue-answered.ami', '../asterisk-freepbx/fpbx-queue-blind-transfer.ami'])('%s', async (name) => {
    const trace = path.join(FIXTURES, name);
    const crm = await receiver();
    const ami = await fakeAmi(trace);
    const yaml = writeConfig({ amiPort: ami.port, receiverPort: crm.port });
    const want = replay(trace, yaml);
    expect(want.length, 'the trace should produce webhooks').toBeGreaterThan(0);

    const { daemon, logs } = await runUntil(yaml, crm, want.length, ami);

    // Nothing more arrived before the exit, and nothing was refused.
    expect(crm.requests).toHaveLength(want.length);
    expect(crm.requests.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.path}`)).toEqual([]);
    for (const [endpoint, urlPath] of [['crm-json', JSON_PATH], ['crm-legacy', LEGACY_PATH]] as const) {
      const expected = wire(want, endpoint);
      expect(expected.length, `${endpoint} gets webhooks`).toBeGreaterThan(0);
      expect(received(crm.requests, urlPath), endpoint).toEqual(expected);
      expectSameBytes(
        crm.requests.filter((r) => r.path.split('?')[0] === urlPath),
        want.filter((l) => l.endpoint === endpoint),
      );
    }
    for (const r of crm.requests) {
      const auth = r.headers.authorization;
      expect(auth, `authorization on ${r.path}`).toBe(r.path === JSON_PATH ? `Bearer ${TOKEN}` : undefined);
    }

    expect(daemon.out.stdout, 'the daemon logs on stderr; stdout stays quiet').toBe('');
    const stopped = logs.find((l) => l.msg === 'stopped');
    expect(stopped, 'a "stopped" log line').toMatchObject({ delivered: want.length, dead: 0 });
    expectNoSecrets(daemon, [TOKEN, AMI_SECRET]);
    // pbx.event_filter is auto by default: the daemon asked Asterisk for only what it reads (issue #15).
    expect(ami.actions).toContain('filter');
    expect(logs.find((l) => l.msg === 'AMI connected')).toMatchObject({ eventFilter: 'on' });
  });
});

describe('pbxhook run: start-up failures', () => {
  it('a wrong AMI secret exits 77, naming host:port and user, never the secret', async () => {
    const crm = await receiver();
    const ami = await fakeAmi(path.join(FIXTURES, 'in-queue-answered.ami'));
    const wrong = 'wrong-Secret-5v8K';
    const yaml = writeConfig({ amiPort: ami.port, receiverPort: crm.port, secret: wrong });
    const daemon = startDaemon(yaml);
    const exit = await exitWithin(daemon, 30_000, 'wrong AMI secret');
    expect(exit, `stderr:\n${daemon.out.stderr}`).toEqual({ code: 77, signal: null });
    const lines = daemon.out.stderr.split('\n');
    expect(
      lines.some((l) => l.includes(`127.0.0.1:${ami.port}`) && l.includes(AMI_USER) && /PBXHOOK_AMI_AUTH/.test(l)),
      `a log line naming 127.0.0.1:${ami.port} and user ${AMI_USER}:\n${daemon.out.stderr}`,
    ).toBe(true);
    logRecords(daemon.out.stderr);
    expectNoSecrets(daemon, [wrong, AMI_SECRET, TOKEN]);
    expect(crm.requests).toHaveLength(0);
  });

  // An unreachable PBX is no reason to stop: the outbox must still be delivered (issue #14 item 1).
  it('a closed AMI port keeps the daemon running, retrying in the background, naming host:port; SIGTERM exits 0', async () => {
    const port = await freePort();
    const yaml = writeConfig({ amiPort: port, receiverPort: 9 });
    const daemon = startDaemon(yaml);
    await waitFor(() => /PBXHOOK_AMI_CONNECT/.test(daemon.out.stderr), () => `the connect failure logged\n${daemon.out.stderr}`, 30_000);
    expect(daemon.child.exitCode, `stderr:\n${daemon.out.stderr}`).toBeNull();
    const failure = logRecords(daemon.out.stderr).find((l) => l.code === 'PBXHOOK_AMI_CONNECT');
    expect(failure, 'a log line naming host:port').toMatchObject({ host: '127.0.0.1', port });
    daemon.child.kill('SIGTERM');
    expect(await exitWithin(daemon, 30_000, 'after SIGTERM'), `stderr:\n${daemon.out.stderr}`).toEqual({ code: 0, signal: null });
    expectNoSecrets(daemon, [AMI_SECRET, TOKEN]);
  });
});

describe('pbxhook run: retryable answers', () => {
  it('a receiver answering 500 twice then 200 still gets every webhook, in order', async () => {
    const trace = path.join(FIXTURES, 'in-queue-answered.ami');
    // Per distinct request (path + body): attempts 1 and 2 fail, attempt 3 succeeds.
    const attempts = new Map<string, number>();
    const crm = await receiver((r) => {
      const key = `${r.path}\n${r.body.toString('hex')}`;
      const n = (attempts.get(key) ?? 0) + 1;
      attempts.set(key, n);
      return n % 3 === 0 ? 200 : 500;
    });
    const ami = await fakeAmi(trace);
    const yaml = writeConfig({ amiPort: ami.port, receiverPort: crm.port });
    const want = replay(trace, yaml);

    const { daemon, logs } = await runUntil(yaml, crm, 3 * want.length, ami);

    expect(crm.requests).toHaveLength(3 * want.length);
    for (const [endpoint, urlPath] of [['crm-json', JSON_PATH], ['crm-legacy', LEGACY_PATH]] as const) {
      const all = crm.requests.filter((r) => r.path.split('?')[0] === urlPath);
      const expected = wire(want, endpoint);
      // Each webhook is tried until it gets through before the next one of its call goes out.
      expect(all.map((r) => r.status)).toEqual(expected.flatMap(() => [500, 500, 200]));
      expect(received(all.filter((r) => r.status === 200), urlPath), endpoint).toEqual(expected);
      expect(received(all, urlPath).map((r) => r.body)).toEqual(expected.flatMap((e) => [e.body, e.body, e.body]));
    }
    expect(crm.requests.filter((r) => r.status === 401)).toHaveLength(0);

    const failedAttempts = logs.filter((l) => l.msg === 'webhook attempt failed');
    expect(failedAttempts).toHaveLength(2 * want.length);
    for (const l of failedAttempts) expect(l).toMatchObject({ status: 500, retryable: true, willRetry: true });
    expect(logs.find((l) => l.msg === 'stopped')).toMatchObject({ delivered: want.length, dead: 0 });
    expectNoSecrets(daemon, [TOKEN, AMI_SECRET]);
  });
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}
