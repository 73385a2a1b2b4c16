/**
 * Reliable delivery end to end (issue #4), with the real daemon process, a fake AMI server playing
 * recorded traces and a real HTTP receiver on 127.0.0.1: the receiver down while a trace plays then
 * up; kill -9 mid-stream and restart; 500, 429 + Retry-After, 301, slow answers, connection resets,
 * 410; SIGTERM with an attempt in flight; signatures checked by the standardwebhooks package; the
 * outbox CLI on the database the daemon used; `pbxhook replay --send`; a second daemon refused on a
 * state_dir in use.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { startFakeAmi, type FakeAmi } from './support/fakeAmiServer.js';
import {
  type Daemon,
  type Receiver,
  type ReplayLine,
  CLI,
  ROOT,
  cleanEnv,
  exitWithin,
  freePort,
  outboxCli,
  replay,
  startDaemon,
  startReceiver,
  waitFor,
  writeConfig,
  type Answer,
  e2eSandbox,
} from './support/e2e.js';

const FIXTURES = path.join(ROOT, 'test/fixtures/asterisk');
const ANSWERED = path.join(FIXTURES, 'in-queue-answered.ami');
const LOAD = path.join(FIXTURES, 'load.ami.gz');
/** Two secrets: the receiver knows only the second, as during a rotation. */
const SECRET_OLD = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const SECRET_NEW = 'whsec_dGhpcy1pcy1hLW5ldy0zMi1ieXRlLXNlY3JldCE=';
const TOKEN = 'e2e-outbox-tok-5Vq';

const sandbox = e2eSandbox('pbxhook-e2e-outbox-');

async function receiver(port?: number): Promise<Receiver> {
  const r = await startReceiver(port);
  sandbox.defer(() => r.close());
  return r;
}

async function fakeAmi(trace: string | Buffer, speed = 100): Promise<FakeAmi> {
  const s = await startFakeAmi({ trace, username: 'admin', secret: 'labsecret', speed });
  sandbox.defer(() => s.close());
  return s;
}

/** A PBX with nothing to say: for restarts that only resume the outbox. */
const quietAmi = () => fakeAmi(Buffer.from('Asterisk Call Manager/11.0.0\r\n'));

function section(name: string, port: number, urlPath: string, extra: readonly string[] = []): string {
  return [`[${name}]`, `url = http://127.0.0.1:${port}${urlPath}`, 'schema = 3cx', ...extra, ''].join('\n');
}

const FAST = ['retry:', '  schedule: [20ms, 20ms, 20ms, 20ms, 20ms]', '  retry_after_max: 2s'];

async function sigterm(d: Daemon): Promise<void> {
  d.child.kill('SIGTERM');
  expect(await exitWithin(d, 30_000), d.out.stderr.slice(-3000)).toEqual({ code: 0, signal: null });
}

/** webhook-id → lane and seq, read from the daemon's own database. */
function rowsOf(stateDir: string) {
  const db = new Database(path.join(stateDir, 'outbox.sqlite'), { readonly: true });
  try {
    return db.prepare('SELECT webhook_id AS id, endpoint, lane, seq, body, state FROM webhooks ORDER BY id').all() as Array<{
      id: string; endpoint: string; lane: string; seq: number; body: string; state: string;
    }>;
  } finally {
    db.close();
  }
}

/**
 * Each call's webhooks reached the receiver in order: a request of sequence s only after the
 * 2xx of s-1 in its lane. And the outbox holds, per endpoint, exactly what replay prints (as a set:
 * different calls may interleave differently live than in replay; within a call, seq is the order).
 */
function expectOrderedAndComplete(r: Receiver, stateDir: string, want: readonly ReplayLine[]): void {
  const rows = rowsOf(stateDir);
  for (const endpoint of new Set(want.map((w) => w.endpoint))) {
    expect(rows.filter((x) => x.endpoint === endpoint).map((x) => x.body).sort(), endpoint).toEqual(
      want.filter((w) => w.endpoint === endpoint).map((w) => w.body).sort(),
    );
  }
  const byId = new Map(rows.map((x) => [x.id, x]));
  const deliveredSeq = new Map<string, number>();
  for (const req of r.requests) {
    const row = byId.get(String(req.headers['webhook-id']));
    expect(row, `a request with an unknown webhook-id ${String(req.headers['webhook-id'])}`).toBeDefined();
    expect(req.headers['webhook-sequence']).toBe(String(row!.seq));
    expect(req.body).toBe(row!.body);
    const done = deliveredSeq.get(row!.lane) ?? 0;
    expect(row!.seq, `lane ${row!.lane}: seq ${row!.seq} sent before ${done + 1} was delivered`).toBeLessThanOrEqual(done + 1);
    if (req.status >= 200 && req.status < 300) deliveredSeq.set(row!.lane, Math.max(done, row!.seq));
  }
  expect(rows.every((x) => x.state === 'delivered'), 'every row delivered').toBe(true);
}

describe('receiver down, then up', () => {
  it('delivers every webhook of a 100-call trace once, each call in order, signed; endpoints pause and resume', async () => {
    const port = await freePort();
    const ami = await fakeAmi(LOAD);
    const ini =
      section('crm-json', port, '/3cx', [`token = ${TOKEN}`, `signing_secret = ${SECRET_OLD}, ${SECRET_NEW}`]) +
      section('crm-legacy', port, '/3cx-legacy', ['variant = urlencoded']);
    const { yaml, stateDir } = writeConfig(sandbox.tmp, ami.port, [
      'retry:', `  schedule: [${Array(40).fill('100ms').join(', ')}]`,
      'delivery:', '  pause_after: 300ms', '  probe_every: 100ms',
    ], ini);
    const want = replay(LOAD, yaml);
    expect(want.length).toBeGreaterThan(500);

    const daemon = startDaemon(yaml);
    await ami.done;
    const paused = () => daemon.logs().filter((l) => String(l.msg).startsWith('endpoint paused')).length;
    await waitFor(() => paused() === 2, () => `both endpoints paused (${paused()})\n${daemon.out.stderr.slice(-2000)}`, 20_000);

    const crm = await receiver(port);
    const verifier = new Webhook(SECRET_NEW);
    const badSignatures: string[] = [];
    crm.handle((req) => {
      if (req.path === '/3cx') {
        try {
          verifier.verify(req.body, req.headers as Record<string, string>);
        } catch (err) {
          badSignatures.push(String(err));
          return { status: 400 };
        }
        if (req.headers.authorization !== `Bearer ${TOKEN}`) return { status: 401 };
      }
      return { status: 200 };
    });
    await waitFor(() => crm.ok().length >= want.length, () => `${want.length} deliveries (have ${crm.ok().length})`, 40_000);
    await sigterm(daemon);

    expect(badSignatures).toEqual([]);
    const ids = crm.ok().map((r) => String(r.headers['webhook-id']));
    expect(new Set(ids).size, 'each webhook delivered once').toBe(want.length);
    expect(ids).toHaveLength(want.length);
    expectOrderedAndComplete(crm, stateDir, want);
    const logs = daemon.logs();
    expect(logs.filter((l) => String(l.msg).startsWith('endpoint resumed')).map((l) => l.endpoint).sort()).toEqual(['crm-json', 'crm-legacy']);
    expect(logs.find((l) => l.msg === 'stopped')).toMatchObject({ delivered: want.length, dead: 0, outboxDepth: 0 });
    expect(daemon.out.stderr).not.toContain(TOKEN);
    expect(daemon.out.stderr).not.toContain(SECRET_NEW.slice(6));
  });
});

describe('kill -9 mid-stream, restart', () => {
  it('loses nothing; only the webhooks in flight come twice, with the same webhook-id', async () => {
    const crm = await receiver();
    crm.handle(() => ({ status: 200, delayMs: 250 }));
    const ami = await fakeAmi(ANSWERED);
    const ini = section('crm-json', crm.port, '/3cx') + section('crm-legacy', crm.port, '/3cx-legacy', ['variant = urlencoded']);
    const first = writeConfig(sandbox.tmp, ami.port, FAST, ini);
    const want = replay(ANSWERED, first.yaml);

    const d1 = startDaemon(first.yaml);
    await ami.done;
    await waitFor(() => crm.requests.length >= 4, () => `4 requests (have ${crm.requests.length})`, 20_000);
    d1.child.kill('SIGKILL');
    expect(await exitWithin(d1, 30_000)).toEqual({ code: null, signal: 'SIGKILL' });
    const beforeKill = crm.requests.length;
    // The last request of each endpoint before the kill was in flight: the only ones allowed twice.
    const inFlight = new Set(
      ['/3cx', '/3cx-legacy'].map((p) => crm.requests.filter((r) => r.path === p).at(-1)?.headers['webhook-id']).filter(Boolean),
    );
    expect(crm.ok().length, 'the kill came before everything was delivered').toBeLessThan(want.length);

    const quiet = await quietAmi();
    const second = writeConfig(sandbox.tmp, quiet.port, FAST, ini, first.stateDir);
    const d2 = startDaemon(second.yaml);
    const distinct = () => new Set(crm.ok().map((r) => r.headers['webhook-id'])).size;
    await waitFor(() => distinct() >= want.length, () => `${want.length} distinct deliveries (have ${distinct()})`, 20_000);
    await new Promise((r) => setTimeout(r, 400)); // answers still on their way
    await sigterm(d2);

    const counts = new Map<string, number>();
    for (const r of crm.requests) counts.set(String(r.headers['webhook-id']), (counts.get(String(r.headers['webhook-id'])) ?? 0) + 1);
    const twice = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
    for (const id of twice) expect(inFlight.has(id), `${id} came twice but was not in flight at the kill`).toBe(true);
    expect([...counts.values()].every((n) => n <= 2)).toBe(true);
    expect(counts.size).toBe(want.length);
    expect(crm.requests.length - beforeKill).toBeGreaterThan(0);
    expect(d2.logs().find((l) => l.msg === 'outbox open')).toMatchObject({ recovered: expect.any(Number) });
    expectOrderedAndComplete(crm, first.stateDir, want);
  });
});

describe('what the endpoint answers', () => {
  // That a slow endpoint delays no other is proven without a stopwatch in test/14 (an answer that
  // never comes while another endpoint delivers everything); a wall-clock comparison here failed on
  // a busy machine (issue #13).
  it('500, 429 + Retry-After, slow, reset: retried and delivered in order; 301 and 410: dead after one try', async () => {
    const crm = await receiver();
    crm.handle((req, n): Answer => {
      const first = n === 1;
      switch (req.path) {
        case '/500': return { status: n <= 2 ? 500 : 200 };
        case '/429': return first && req.headers['webhook-sequence'] === '1' ? { status: 429, headers: { 'Retry-After': '1' } } : { status: 200 };
        case '/301': return { status: 301, headers: { Location: `http://127.0.0.1:${crm.port}/moved` } };
        case '/slow': return first ? { status: 200, delayMs: 1_200 } : { status: 200 };
        case '/reset': return first ? 'reset' : { status: 200 };
        case '/410': return { status: 410 };
        default: return { status: 200 };
      }
    });
    const ami = await fakeAmi(ANSWERED);
    const names = ['500', '429', '301', 'slow', 'reset', '410', 'ok'];
    const ini = names.map((n) => section(`e${n}`, crm.port, `/${n}`)).join('');
    const { yaml, stateDir } = writeConfig(sandbox.tmp, ami.port, [...FAST, '  timeout_ms: 400'], ini);
    const want = replay(ANSWERED, yaml);
    const per = want.filter((w) => w.endpoint === 'eok').length;
    expect(per).toBeGreaterThan(3);

    const daemon = startDaemon(yaml);
    const on = (p: string) => crm.requests.filter((r) => r.path === p);
    const settled = () =>
      ['/500', '/429', '/slow', '/reset', '/ok'].every((p) => crm.ok(p).length === per) && on('/301').length === per && on('/410').length === per;
    await waitFor(settled, () => names.map((n) => `${n}: ${crm.ok(`/${n}`).length}/${on(`/${n}`).length}`).join(', '), 30_000);
    await new Promise((r) => setTimeout(r, 300)); // room for any attempt that should not happen
    await sigterm(daemon);

    const bodies = (p: string) => crm.ok(p).map((r) => r.body);
    const wantBodies = want.filter((w) => w.endpoint === 'eok').map((w) => w.body);
    for (const p of ['/500', '/429', '/slow', '/reset', '/ok']) expect(bodies(p), p).toEqual(wantBodies);
    expect(on('/500').map((r) => r.status)).toEqual(wantBodies.flatMap(() => [500, 500, 200]));
    const [limited, after] = on('/429');
    expect(limited!.status).toBe(429);
    expect(after!.at - limited!.at, 'Retry-After: 1 honoured over a 20 ms schedule').toBeGreaterThanOrEqual(950);
    expect(on('/slow')).toHaveLength(2 * per);
    expect(on('/reset')).toHaveLength(2 * per);
    expect(on('/301')).toHaveLength(per);
    expect(on('/410')).toHaveLength(per);
    expect(on('/moved'), 'redirects are never followed').toHaveLength(0);

    const logs = daemon.logs();
    const dead = logs.filter((l) => String(l.msg).startsWith('webhook dead'));
    expect(dead.filter((l) => l.endpoint === 'e301').every((l) => String(l.reason).includes('PBXHOOK_HTTP_REDIRECT'))).toBe(true);
    expect(dead.map((l) => l.endpoint).sort()).toEqual([...Array(per).fill('e301'), ...Array(per).fill('e410')]);
    expect(logs.some((l) => l.endpoint === 'eslow' && l.code === 'PBXHOOK_HTTP_TIMEOUT' && l.willRetry === true)).toBe(true);
    expect(logs.some((l) => l.endpoint === 'ereset' && l.code === 'PBXHOOK_HTTP_NETWORK' && l.willRetry === true)).toBe(true);
    expect(logs.find((l) => l.msg === 'stopped')).toMatchObject({ dead: 2 * per, delivered: 5 * per });

    // The operator's side, on the same database: see the dead letters, retry them once the CRM is fixed.
    const stats = JSON.parse(outboxCli(['stats', '--json'], stateDir).stdout) as { counts: Array<{ endpoint: string; state: string; count: number }> };
    expect(stats.counts.filter((c) => c.state === 'dead')).toEqual([
      { endpoint: 'e301', state: 'dead', count: per, oldest: expect.any(Number) },
      { endpoint: 'e410', state: 'dead', count: per, oldest: expect.any(Number) },
    ]);
    const list = outboxCli(['list', '--state', 'dead', '--endpoint', 'e410'], stateDir);
    expect(list.status).toBe(0);
    expect(list.stdout.split('\n').filter((l) => / dead +e410 /.test(l))).toHaveLength(per);
    expect(list.stdout).toContain('PBXHOOK_HTTP_STATUS: e410: HTTP 410 (permanent)');
    expect(outboxCli(['retry', '--endpoint', 'e410'], stateDir).stdout).toContain(`${per} webhook(s) back to pending`);
    crm.handle(() => ({ status: 200 }));
    const quiet = await quietAmi();
    const again = startDaemon(writeConfig(sandbox.tmp, quiet.port, FAST, ini, stateDir).yaml);
    await waitFor(() => crm.ok('/410').length === per, () => `e410 redelivered (${crm.ok('/410').length})`, 20_000);
    await sigterm(again);
    expect(crm.ok('/410').map((r) => r.body)).toEqual(wantBodies);

    const refused = outboxCli(['purge', '--dead'], stateDir);
    expect(refused.status).toBe(64);
    expect(refused.stderr).toContain('--yes');
    expect(outboxCli(['purge', '--dead', '--yes'], stateDir).stdout).toBe(`${per} dead webhook(s) deleted\n`);
    expect(rowsOf(stateDir).filter((r) => r.state !== 'delivered')).toEqual([]);
  });
});

describe('SIGTERM with an attempt in flight', () => {
  it('exits 0 after stop_timeout; the webhook stays in the outbox and the next start sends it with the same webhook-id', async () => {
    const crm = await receiver();
    // The first answer would come after the test (the receiver's close cancels it), and the attempt's
    // own timeout is longer than that: the daemon exiting at all (sigterm() allows 10 s, a hang
    // guard) proves stop_timeout cut the attempt off; no stopwatch (issue #13).
    crm.handle(() => (crm.requests.length === 1 ? { status: 200, delayMs: 600_000 } : { status: 200 }));
    const ami = await fakeAmi(ANSWERED);
    const ini = section('crm-json', crm.port, '/3cx');
    const first = writeConfig(sandbox.tmp, ami.port, [...FAST, '  timeout_ms: 600000', 'delivery:', '  stop_timeout: 300ms'], ini);
    const want = replay(ANSWERED, first.yaml);
    const d1 = startDaemon(first.yaml);
    await ami.done;
    await waitFor(() => crm.requests.length >= 1, () => 'the first request', 20_000);
    await sigterm(d1);
    expect(crm.requests[0]!.status, 'never answered').toBe(0);
    expect(d1.logs().find((l) => l.msg === 'stopped')).toMatchObject({ requeued: 1, outboxDepth: want.length });
    expect(outboxCli(['stats'], first.stateDir).stdout).toMatch(new RegExp(`crm-json +${want.length} +0 +0 +0 +0`));

    const quiet = await quietAmi();
    const d2 = startDaemon(writeConfig(sandbox.tmp, quiet.port, FAST, ini, first.stateDir).yaml);
    await waitFor(() => crm.ok().length >= want.length, () => `${want.length} deliveries (have ${crm.ok().length})\n${d2.out.stderr.slice(-3000)}`, 20_000);
    await sigterm(d2);
    expect(crm.requests[1]!.headers['webhook-id']).toBe(crm.requests[0]!.headers['webhook-id']);
    expect(crm.ok().map((r) => r.body)).toEqual(want.map((w) => w.body));
  });
});

/** `node dist/cli.js …` without blocking this process (whose receiver must answer meanwhile). */
function runCli(args: readonly string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: cleanEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pbxhook ${args.join(' ')}: no exit within 30 s\n${stderr.slice(-3000)}`));
    }, 30_000);
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

describe('pbxhook replay --send (testers: a trace in, real webhooks out)', () => {
  it('delivers exactly what it prints, each call in order, once, then exits 0; --state-dir keeps the outbox', async () => {
    const crm = await receiver();
    const ini = section('crm-json', crm.port, '/3cx') + section('crm-legacy', crm.port, '/3cx-legacy', ['variant = urlencoded']);
    const cfg = writeConfig(sandbox.tmp, await freePort(), FAST, ini); // the PBX is never contacted
    const want = replay(ANSWERED, cfg.yaml);
    const r = await runCli(['replay', ANSWERED, '--config', cfg.yaml, '--send', '--state-dir', cfg.stateDir]);
    expect(r.status, r.stderr.slice(-3000)).toBe(0);
    expect(r.stdout.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as ReplayLine).body), 'prints what replay prints').toEqual(
      want.map((w) => w.body),
    );
    expect(crm.ok()).toHaveLength(want.length);
    expectOrderedAndComplete(crm, cfg.stateDir, want);
    const logs = r.stderr.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logs.find((l) => l.msg === 'replay finished')).toMatchObject({ delivered: want.length, dead: 0, undelivered: 0 });
  });

  it('a webhook the CRM refuses for good (410) is dead: exit 1, the count in the log', async () => {
    const crm = await receiver();
    crm.handle((req) => (req.path === '/gone' ? { status: 410 } : { status: 200 }));
    const cfg = writeConfig(sandbox.tmp, await freePort(), FAST, section('crm', crm.port, '/3cx') + section('gone', crm.port, '/gone'));
    const want = replay(ANSWERED, cfg.yaml);
    const perEndpoint = want.filter((w) => w.endpoint === 'gone').length;
    const r = await runCli(['replay', ANSWERED, '--config', cfg.yaml, '--send']);
    expect(r.status).toBe(1);
    const logs = r.stderr.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logs.find((l) => l.msg === 'replay finished')).toMatchObject({ delivered: want.length - perEndpoint, dead: perEndpoint, undelivered: 0 });
    expect(crm.ok('/3cx').map((q) => q.body)).toEqual(want.filter((w) => w.endpoint === 'crm').map((w) => w.body));
  });
});

describe('a second daemon on the same state_dir', () => {
  it('exits 75 before connecting, naming the folder and the first one pid; the first delivers every webhook once', async () => {
    const crm = await receiver();
    crm.handle(() => ({ status: 200, delayMs: 100 }));
    const ami = await fakeAmi(ANSWERED);
    const ini = section('crm-json', crm.port, '/3cx');
    const first = writeConfig(sandbox.tmp, ami.port, FAST, ini);
    const want = replay(ANSWERED, first.yaml);
    const d1 = startDaemon(first.yaml);
    await waitFor(() => d1.logs().some((l) => l.msg === 'outbox open'), () => `the first daemon's outbox\n${d1.out.stderr}`, 20_000);

    const other = await quietAmi();
    const d2 = startDaemon(writeConfig(sandbox.tmp, other.port, FAST, ini, first.stateDir).yaml);
    expect(await exitWithin(d2, 30_000)).toEqual({ code: 75, signal: null });
    expect(d2.logs().find((l) => l.code === 'PBXHOOK_STATE_DIR_BUSY')).toMatchObject({
      level: 50, // pino's error
      stateDir: first.stateDir,
      holderPid: d1.child.pid,
      msg: expect.stringContaining(`state_dir ${first.stateDir} is in use by another pbxhook (pid ${d1.child.pid})`),
    });
    expect(other.actions, 'the second daemon never logged in to its PBX').toEqual([]);

    await ami.done;
    await waitFor(() => crm.ok().length >= want.length, () => `${want.length} deliveries (have ${crm.ok().length})`, 20_000);
    await sigterm(d1);
    expect(crm.requests.map((r) => r.body), 'each webhook once, in order').toEqual(want.map((w) => w.body));
  });
});

describe('pbxhook outbox: usage', () => {
  it('explains itself, refuses to guess the outbox, and says when there is none', () => {
    const help = outboxCli(['--help'], sandbox.tmp);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('pbxhook outbox COMMAND');
    const none = outboxCli(['stats'], path.join(sandbox.tmp, 'no-such-state'));
    expect(none.status).toBe(66);
    expect(none.stderr).toContain('no outbox at');
    const unknown = outboxCli(['frobnicate'], sandbox.tmp);
    expect(unknown.status).toBe(64);
    expect(unknown.stderr).toContain('unknown outbox command "frobnicate"');
    expect(outboxCli(['retry'], sandbox.tmp).status).toBe(64);
  });
});
