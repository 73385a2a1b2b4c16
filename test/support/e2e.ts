/**
 * Helpers for end-to-end tests of the real `node dist/cli.js` process: a loopback HTTP receiver
 * whose answer each test chooses, config files in a temp folder, the daemon as a child process
 * (always SIGKILLed by killAll in afterEach) and bounded waits.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll } from 'vitest';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = path.join(ROOT, 'dist/cli.js');

/** Builds dist/ when it is missing or older than any file in src/. */
export function ensureBuilt(): void {
  const newest = (dir: string): number =>
    Math.max(
      0,
      ...readdirSync(dir, { withFileTypes: true }).map((d) =>
        d.isDirectory() ? newest(path.join(dir, d.name)) : statSync(path.join(dir, d.name)).mtimeMs,
      ),
    );
  if (existsSync(CLI) && statSync(CLI).mtimeMs >= newest(path.join(ROOT, 'src'))) return;
  const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`build failed (npx tsc -p tsconfig.json):\n${r.stdout}${r.stderr}`);
}

export interface Received {
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  readonly at: number;
  status: number;
}

/** Answers a request: a status (and headers), or 'reset' to drop the connection, after an optional delay. */
export type Answer = { status: number; headers?: Record<string, string>; delayMs?: number; body?: string } | 'reset';
export type Handler = (r: Received, nthForThisId: number) => Answer;

export interface Receiver {
  readonly port: number;
  readonly requests: Received[];
  /** Delivered: answered 2xx. */
  ok(urlPath?: string): Received[];
  handle(h: Handler): void;
  close(): Promise<void>;
}

export async function startReceiver(port = 0, handler: Handler = () => ({ status: 200 })): Promise<Receiver> {
  const requests: Received[] = [];
  const seen = new Map<string, number>();
  let h = handler;
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const r: Received = { path: req.url ?? '', headers: req.headers, body, at: Date.now(), status: 0 };
      requests.push(r);
      const key = `${r.path.split('?')[0]}|${String(req.headers['webhook-id'])}`;
      const n = (seen.get(key) ?? 0) + 1;
      seen.set(key, n);
      const answer = h(r, n);
      if (answer === 'reset') {
        r.status = -1;
        req.socket.destroy();
        return;
      }
      let gone = false; // the client gave up (timeout, kill): nothing was answered
      res.once('close', () => (gone = !res.writableFinished));
      const send = () => {
        if (gone) return;
        r.status = answer.status;
        res.writeHead(answer.status, { 'content-type': 'text/plain', ...answer.headers }).end(answer.body ?? 'x');
      };
      if (!answer.delayMs) send();
      else {
        const t = setTimeout(() => (timers.delete(t), send()), answer.delayMs);
        timers.add(t);
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    requests,
    ok: (p) => requests.filter((r) => r.status >= 200 && r.status < 300 && (p === undefined || r.path.split('?')[0] === p)),
    handle: (next) => (h = next),
    close: () => {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * A case folder: pbxhook.yaml from `head` (pbx:, roles: and the like) and `yamlExtra` lines, with the
 * state dir, the webhooks file and a free ops port, plus webhooks.ini.
 */
function writeCase(
  folder: string,
  head: readonly string[],
  stateDir: string,
  yamlExtra: readonly string[],
  ini: string,
): { yaml: string; stateDir: string } {
  const yaml = path.join(folder, 'pbxhook.yaml');
  writeFileSync(
    yaml,
    [
      ...head,
      'log:', '  level: info',
      `state_dir: ${stateDir}`,
      'webhooks: ./webhooks.ini',
      // Metrics on any free port (test files run in parallel), unless the test chooses its own.
      ...(yamlExtra.some((l) => l.startsWith('ops:')) ? [] : ['ops:', '  listen: 127.0.0.1:0']),
      ...yamlExtra,
      '',
    ].join('\n'),
  );
  writeFileSync(path.join(folder, 'webhooks.ini'), ini);
  return { yaml, stateDir };
}

/** pbxhook.yaml (with `yamlExtra` lines appended) + webhooks.ini in a fresh folder under `root`. */
export function writeConfig(
  root: string,
  amiPort: number,
  yamlExtra: readonly string[],
  ini: string,
  stateDir = path.join(mkdtempSync(path.join(root, 'state-')), 'state'),
): { yaml: string; stateDir: string } {
  const head = [
    'pbx:', '  type: asterisk', '  host: 127.0.0.1', `  port: ${amiPort}`, '  username: admin', '  secret: labsecret',
    'roles:', '  ring_groups: ["830@internal", "831@internal"]',
  ];
  return writeCase(mkdtempSync(path.join(root, 'case-')), head, stateDir, yamlExtra, ini);
}

/**
 * As writeConfig, for FreeSWITCH: pbx.type freeswitch on `eslPort` with `password` (and `pbxExtra`
 * lines under pbx:), the lab's ring groups.
 */
export function writeEslConfig(
  root: string,
  eslPort: number,
  password: string,
  yamlExtra: readonly string[],
  ini: string,
  pbxExtra: readonly string[] = [],
): { yaml: string; stateDir: string } {
  const folder = mkdtempSync(path.join(root, 'case-'));
  const head = [
    'pbx:', '  type: freeswitch', '  host: 127.0.0.1', `  port: ${eslPort}`, `  password: ${password}`, ...pbxExtra,
    'roles:', '  ring_groups: ["830@default", "831@default"]',
    'calls:', '  timezone: UTC',
  ];
  return writeCase(folder, head, path.join(folder, 'state'), yamlExtra, ini);
}

/** The ops port the daemon picked (ops.listen 127.0.0.1:0), from its log. */
export async function opsPort(d: Daemon): Promise<number> {
  const line = () => d.logs().find((l) => l.msg === 'metrics, health and status page listening');
  await waitFor(() => line() !== undefined, () => `the ops server\n${d.out.stderr.slice(-3000)}`, 20_000);
  return line()!.port as number;
}

/** GET /healthz on the daemon's ops port. */
export async function healthz(port: number): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`http://127.0.0.1:${port}/healthz`);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

/** One sample of /metrics, e.g. `pbxhook_frames_skipped_total{reason="desync"}`; undefined when absent. */
export async function metric(port: number, sample: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

export function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PBXHOOK_')));
}

export interface Daemon {
  readonly child: ChildProcess;
  readonly out: { stdout: string; stderr: string };
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  logs(): Array<Record<string, unknown>>;
}

const children = new Set<ChildProcess>();

/** `wrap`: a command that execs the daemon's (e.g. `unshare -m sh -c 'mount … && exec "$@"' sh`). */
export function startDaemon(yaml: string, wrap: readonly string[] = []): Daemon {
  const argv = [process.execPath, CLI, 'run', '--config', yaml];
  const [cmd, ...args] = [...wrap, ...argv] as [string, ...string[]];
  const child = spawn(cmd, args, { cwd: ROOT, env: cleanEnv(), stdio: 'pipe' });
  children.add(child);
  const out = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (out.stdout += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (out.stderr += c));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve({ code, signal });
    }),
  );
  const logs = () =>
    out.stderr
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { child, out, exit, logs };
}

export function killAll(): void {
  for (const c of children) c.kill('SIGKILL');
}

export async function exitWithin(d: Daemon, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`pbxhook did not exit within ${ms} ms\nstderr:\n${d.out.stderr.slice(-4000)}`)), ms);
  });
  try {
    return await Promise.race([d.exit, late]);
  } finally {
    clearTimeout(timer);
  }
}

export async function waitFor(cond: () => boolean, what: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface ReplayLine {
  readonly endpoint: string;
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** What `pbxhook replay` prints: the webhooks the trace must produce, in order. */
export function replay(trace: string, yaml: string): ReplayLine[] {
  const r = spawnSync(process.execPath, [CLI, 'replay', trace, '--config', yaml], { cwd: ROOT, env: cleanEnv(), encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`pbxhook replay failed:\n${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as ReplayLine);
}

/** `pbxhook outbox …` on a state dir. */
export function outboxCli(args: readonly string[], stateDir: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'outbox', ...args, '--state-dir', stateDir], { cwd: ROOT, env: cleanEnv(), encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The hooks every daemon e2e file needs: a build, a temp folder, and after each test every child
 * killed and every server closed (`defer`), even when the test failed.
 */
export function e2eSandbox(prefix: string): { readonly tmp: string; defer(step: () => Promise<void>): void } {
  let tmp = '';
  let steps: Array<() => Promise<void>> = [];
  beforeAll(() => {
    ensureBuilt();
    tmp = mkdtempSync(path.join(os.tmpdir(), prefix));
  });
  afterEach(async () => {
    killAll();
    for (const step of steps.reverse()) await step();
    steps = [];
  });
  afterAll(() => {
    killAll();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });
  return {
    get tmp() {
      return tmp;
    },
    defer(step) {
      steps.push(step);
    },
  };
}
