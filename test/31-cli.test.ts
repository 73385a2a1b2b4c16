/**
 * The CLI as a user meets it: the real `node dist/cli.js` as a child process, judged only by
 * exit code, stdout and stderr. Exit codes are sysexits: 0 ok, 64 usage, 66 no input, 78 config.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/deliver/outbox.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = path.join(ROOT, 'dist/cli.js');
const LAB_YAML = 'config/lab.example.yaml';
const LAB_INI = 'config/lab.webhooks.ini';
/** The secrets in the lab config; check-config and replay must never print them. */
const LAB_SECRET = 'labsecret';
const LAB_TOKEN = 'lab-token';
const TRACE = 'test/fixtures/asterisk/in-queue-answered.ami';
const RUN_TIMEOUT_MS = 30_000;

interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment without PBXHOOK_* overrides, plus what a test adds. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PBXHOOK_')));
  return { ...clean, ...extra };
}

function cli(args: readonly string[], extraEnv?: Record<string, string>): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: env(extraEnv),
    encoding: 'utf8',
    timeout: RUN_TIMEOUT_MS,
    killSignal: 'SIGKILL',
  });
  if (r.error) throw new Error(`pbxhook ${args.join(' ')}: ${r.error.message}`);
  if (r.signal) throw new Error(`pbxhook ${args.join(' ')}: killed by ${r.signal} (over ${RUN_TIMEOUT_MS} ms?)`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** For runs in parallel: stdout as raw bytes, bounded like `cli`. */
function cliBytes(nodeArgs: readonly string[], args: readonly string[], extraEnv?: Record<string, string>) {
  return new Promise<{ status: number | null; stdout: Buffer; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, CLI, ...args], { cwd: ROOT, env: env(extraEnv) });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pbxhook ${args.join(' ')}: no exit within ${RUN_TIMEOUT_MS} ms`));
    }, RUN_TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout: Buffer.concat(out), stderr });
    });
  });
}

/** "one message": the error output is a single line. */
function oneLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '');
  expect(lines, `expected exactly one line on stderr, got:\n${stderr}`).toHaveLength(1);
  return lines[0]!;
}

let tmp: string;

beforeAll(() => {
  if (!existsSync(CLI)) {
    const r = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    if (r.status !== 0) throw new Error(`build failed (npx tsc -p tsconfig.json):\n${r.stdout}${r.stderr}`);
  }
  tmp = mkdtempSync(path.join(os.tmpdir(), 'pbxhook-cli-'));
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('usage', () => {
  it('--help prints the usage on stdout and exits 0', () => {
    for (const flag of ['--help', '-h']) {
      const r = cli([flag]);
      expect(r.status, flag).toBe(0);
      expect(r.stdout).toContain('Usage:');
      for (const command of ['run', 'replay', 'check-config']) expect(r.stdout).toContain(`pbxhook ${command}`);
      expect(r.stderr).toBe('');
    }
  });

  it('--version prints the package version', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const r = cli(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${pkg.version}\n`);
  });

  it('an unknown command exits 64, naming it, with the usage', () => {
    const r = cli(['frobnicate', '--config', LAB_YAML]);
    expect(r.status).toBe(64);
    expect(r.stderr).toContain('unknown command "frobnicate"');
    expect(r.stderr).toContain('Usage:');
    expect(r.stdout).toBe('');
  });

  // The command is checked before the config: a typo must not send the user looking for a config problem.
  it('an unknown command without --config still says the command is unknown', () => {
    const r = cli(['frobnicate']);
    expect(r.status).toBe(64);
    expect(r.stderr).toContain('unknown command "frobnicate"');
  });

  it('an unknown option or no command at all exits 64', () => {
    const bogus = cli(['replay', TRACE, '--config', LAB_YAML, '--bogus']);
    expect(bogus.status).toBe(64);
    expect(bogus.stderr).toContain('--bogus');
    expect(bogus.stdout).toBe('');
    expect(cli([]).status).toBe(64);
  });
});

describe('each command: its own --help, and one line for a wrong option (issue #13)', () => {
  it.each([
    ['run', 'Usage: pbxhook run --config FILE'],
    ['replay', 'Usage: pbxhook replay TRACE --config FILE'],
    ['check-config', 'Usage: pbxhook check-config FILE'],
    ['record', 'Usage: pbxhook record --config FILE -o OUT'],
    ['outbox', 'Usage: pbxhook outbox COMMAND'],
  ])('%s --help prints its own usage on stdout, exit 0', (command, head) => {
    for (const args of [[command, '--help'], [command, '-h'], [command, '--config', 'nope.yaml', '--help']]) {
      const r = cli(args);
      expect(r.status, args.join(' ')).toBe(0);
      expect(r.stdout.startsWith(`${head}`), r.stdout).toBe(true);
      expect(r.stdout).toMatch(/\nOptions: .*--help/);
      expect(r.stderr).toBe('');
    }
    expect(cli(['outbox', 'retry', '--help']).stdout).toContain('retry (--id ID… | --endpoint E | --all)');
  });

  it.each([
    [['run', '--conf', 'x'], 'pbxhook run: unknown option --conf; run takes -c, --config FILE, -h, --help (pbxhook run --help)'],
    [['replay', TRACE, '--config', LAB_YAML, '--sned'], 'pbxhook replay: unknown option --sned; replay takes -c, --config FILE, --send, --state-dir DIR, -h, --help (pbxhook replay --help)'],
    [['check-config', '--verbose', LAB_YAML], 'pbxhook check-config: unknown option --verbose; check-config takes -c, --config FILE, --deliver, -h, --help (pbxhook check-config --help)'],
    [['record', '--config', LAB_YAML, '--out', 'x.ami'], 'pbxhook record: unknown option --out; record takes -c, --config FILE, -o, --output OUT, --seconds N, -h, --help (pbxhook record --help)'],
    [['outbox', 'retry', '--endpont', 'crm'], 'pbxhook outbox: unknown option --endpont; outbox takes -c, --config FILE, --state-dir DIR, --state S, --endpoint E, --id ID, --lane LANE, --all, --limit N, --delivered, --dead, --older-than AGE, --yes, --json, -h, --help (pbxhook outbox --help)'],
    [['run', '--config'], 'pbxhook run: --config needs a value: --config FILE (pbxhook run --help)'],
    [['replay', TRACE, '--config', LAB_YAML, '--send=yes'], 'pbxhook replay: --send takes no value (pbxhook replay --help)'],
    [['run', 'pbxhook.yaml'], 'pbxhook run: unexpected "pbxhook.yaml": run takes no arguments; options: -c, --config FILE, -h, --help (pbxhook run --help)'],
    [['--verbose'], 'pbxhook: unknown option --verbose; pbxhook takes -h, --help, --version (pbxhook --help)'],
  ])('%j: one line naming the command\'s options, exit 64', (args, line) => {
    const r = cli(args);
    expect(r.status).toBe(64);
    expect(r.stderr).toBe(`${line}\n`);
    expect(r.stdout).toBe('');
  });
});

describe('check-config', () => {
  it('explains the lab config, exits 0 and prints no secret', () => {
    const r = cli(['check-config', LAB_YAML]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`config: ${path.join(ROOT, LAB_YAML)}`);
    expect(r.stdout).toContain('pbx: asterisk at 127.0.0.1:5038, user admin, secret ***');
    expect(r.stdout).toContain('ring groups: 830@internal, 831@internal');
    expect(r.stdout).toMatch(/\[crm-json\]\n {4}3cx\/json: POST http:\/\/127\.0\.0\.1:8080\/3cx\n.*\n {4}token: set\n/);
    expect(r.stdout).toMatch(/\[crm-legacy\]\n {4}3cx\/urlencoded: POST .*\n.*\n {4}token: not set\n/);
    expect(r.stdout).toMatch(/config OK\n$/);
    for (const secret of [LAB_SECRET, LAB_TOKEN]) {
      expect(r.stdout).not.toContain(secret);
      expect(r.stderr).not.toContain(secret);
    }
  });

  it('prints no secret that came from the environment either', () => {
    const amiSecret = 'env-ami-Secret-4411';
    const token = 'env-token-8c2f19';
    const r = cli(['check-config', LAB_YAML], { PBXHOOK_AMI_SECRET: amiSecret, PBXHOOK_TOKEN_CRM_JSON: token });
    expect(r.status, r.stderr).toBe(0);
    for (const secret of [amiSecret, token, LAB_SECRET, LAB_TOKEN]) expect(r.stdout + r.stderr).not.toContain(secret);
  });

  const SECRET = 'do-not-print-Q7';
  const yaml = (pbxExtra: string[], top: string[] = ['webhooks: ./webhooks.ini']) =>
    ['pbx:', '  type: asterisk', '  username: admin', `  secret: ${SECRET}`, ...pbxExtra.map((l) => `  ${l}`), ...top, ''].join('\n');

  /** A folder with a good webhooks.ini and the given pbxhook.yaml; returns the YAML's path. */
  function configDir(name: string, yamlText: string): string {
    const folder = mkdtempSync(path.join(tmp, `${name}-`));
    writeFileSync(path.join(folder, 'webhooks.ini'), readFileSync(path.join(ROOT, LAB_INI)));
    writeFileSync(path.join(folder, 'pbxhook.yaml'), yamlText);
    return path.join(folder, 'pbxhook.yaml');
  }

  it('accepts the minimal config these cases start from', () => {
    const file = configDir('good', yaml([]));
    const r = cli(['check-config', file]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).not.toContain(SECRET);
  });

  it.each([
    ['an unknown top-level key', yaml([], ['retyr:', '  retries: 2', 'webhooks: ./webhooks.ini']), 'retyr', /unknown key \(did you mean "retry"\?\)/],
    ['an unknown pbx key', yaml(['hostname: pbx.lan']), 'pbx.hostname', /unknown key/],
    ['a port out of range', yaml(['port: 70000']), 'pbx.port', /1 to 65535.*70000/],
    ['a port that is not a number', yaml(['port: ami']), 'pbx.port', /number.*"ami"/],
    ['a missing webhooks ini', yaml([], ['webhooks: ./nope.ini']), 'webhooks', /nope\.ini.*no such file/],
  ])('%s → exit 78, one line naming the file and the key', (_name, text, key, message) => {
    const file = configDir('bad', text);
    const r = cli(['check-config', file]);
    expect(r.status, r.stderr).toBe(78);
    expect(r.stdout).toBe('');
    const line = oneLine(r.stderr);
    expect(line.startsWith(`${file}: ${key}: `), line).toBe(true);
    expect(line).toMatch(message);
    expect(line).not.toContain(SECRET);
  });

  it('names the file when it does not exist', () => {
    const file = path.join(tmp, 'absent.yaml');
    const r = cli(['check-config', file]);
    expect(r.status).toBe(78);
    expect(oneLine(r.stderr)).toBe(`${file}: cannot read the file (no such file)`);
  });

  it.each([LAB_INI, 'webhooks.ini.example'])('given the ini file %s, says it wants the YAML config that references it', (ini) => {
    const r = cli(['check-config', ini]);
    expect(r.status).toBe(78);
    expect(r.stdout).toBe('');
    const line = oneLine(r.stderr);
    expect(line.startsWith(`${ini}: `), line).toBe(true);
    expect(line).toContain('YAML config');
    expect(line).toContain(`webhooks: ./${path.basename(ini)}`);
    expect(line).not.toContain('YAML:'); // none of the parser's errors about ini lines
    expect(line).not.toContain(LAB_TOKEN);
  });
});

describe('replay', () => {
  it('a missing trace exits 66 naming it', () => {
    const r = cli(['replay', 'test/fixtures/asterisk/no-such-trace.ami', '--config', LAB_YAML]);
    expect(r.status).toBe(66);
    expect(r.stdout).toBe('');
    expect(oneLine(r.stderr)).toContain('no-such-trace.ami');
  });

  it('without a trace exits 64', () => {
    const r = cli(['replay', '--config', LAB_YAML]);
    expect(r.status).toBe(64);
    expect(r.stdout).toBe('');
  });

  it('prints one JSON object per line: endpoint, method, url, headers, body; the token masked', () => {
    const r = cli(['replay', TRACE, '--config', LAB_YAML]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.endsWith('\n')).toBe(true);
    const lines = r.stdout.slice(0, -1).split('\n');
    expect(lines.length).toBeGreaterThan(0);
    const endpoints = new Set<string>();
    for (const line of lines) {
      const o = JSON.parse(line) as Record<string, unknown>;
      expect(Object.keys(o), line).toEqual(['endpoint', 'method', 'url', 'headers', 'body']);
      expect(typeof o.endpoint).toBe('string');
      expect(['GET', 'POST']).toContain(o.method);
      expect(URL.canParse(String(o.url)), line).toBe(true);
      expect(typeof o.body).toBe('string');
      const headers = o.headers as Record<string, string>;
      expect(Object.values(headers).every((v) => typeof v === 'string'), line).toBe(true);
      const auth = Object.entries(headers).filter(([k]) => k.toLowerCase() === 'authorization');
      // crm-json has a token, crm-legacy has none.
      expect(auth, line).toEqual(o.endpoint === 'crm-json' ? [['authorization', 'Bearer ***']] : []);
      endpoints.add(String(o.endpoint));
    }
    expect([...endpoints].sort()).toEqual(['crm-json', 'crm-legacy']);
    expect(r.stdout).not.toContain(LAB_TOKEN);

    // stderr is the log: pino JSON, ending with a summary that counts what was printed.
    const logs = r.stderr.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logs.find((l) => l.msg === 'replay finished')).toMatchObject({
      requests: lines.length,
      framesSkipped: 0,
      unknownEvents: 0,
      orphanEvents: 0,
      callsTimedOut: 0,
      stoppedEarly: false,
    });
  });

  it('masks a token given through the environment too', () => {
    const token = 'env-token-5d0e77';
    const r = cli(['replay', TRACE, '--config', LAB_YAML], { PBXHOOK_TOKEN_CRM_JSON: token });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toContain(token);
    expect(r.stdout).toContain('"authorization":"Bearer ***"');
  });

  const traces = ['test/fixtures/asterisk', 'test/fixtures/asterisk-synth'].flatMap((dir) =>
    readdirSync(path.join(ROOT, dir))
      .filter((f) => /\.ami(\.gz)?$/.test(f))
      .map((f) => `${dir}/${f}`),
  );

  // Two runs, the second three days later by its own clock and in another time zone: the
  // tracker and renderers take time only from the trace, so the bytes must not move.
  const LATER = 'data:text/javascript,const n=Date.now;Date.now=()=>n()+2.592e8;';
  it.each(traces)('is deterministic: %s', async (trace) => {
    const args = ['replay', trace, '--config', LAB_YAML];
    const [a, b] = await Promise.all([cliBytes([], args), cliBytes(['--import', LATER], args, { TZ: 'Pacific/Chatham' })]);
    expect(a.status, a.stderr).toBe(0);
    expect(b.status, b.stderr).toBe(0);
    expect(b.stdout.equals(a.stdout), `second run differs for ${trace}`).toBe(true);
  });
});

/** Runs pbxhook with stdout read by this process until the first line, then closed (as `head -n 1` does). */
function firstLineThenClose(args: readonly string[]) {
  return new Promise<{ status: number | null; firstLine: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: env() });
    let out = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      if (out.includes('\n')) child.stdout.destroy();
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pbxhook ${args.join(' ')}: no exit within ${RUN_TIMEOUT_MS} ms`));
    }, RUN_TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, firstLine: out.slice(0, out.indexOf('\n')), stderr });
    });
  });
}

// Issue #12: `pbxhook replay … | head` used to die of an unhandled EPIPE, exit 1. Every schema on the
// load trace renders 1.3 MB of lines, far more than a pipe or socket buffer holds; replay waits for a
// full stdout to drain, so when the reader leaves after one line it cannot have read the whole trace.
describe('replay into a reader that stops after the first line', () => {
  const args = ['replay', 'test/fixtures/asterisk/load.ami.gz', '--config', 'config/all-schemas.example.yaml'];
  const logsOf = (stderr: string) => stderr.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
  let full: { status: number | null; stdout: Buffer; stderr: string };
  let fullSummary: Record<string, unknown>;

  beforeAll(async () => {
    full = await cliBytes([], args);
    expect(full.status, full.stderr).toBe(0);
    [fullSummary] = logsOf(full.stderr) as [Record<string, unknown>];
    expect(fullSummary).toMatchObject({ msg: 'replay finished', stoppedEarly: false });
  });

  /** Exit 0, nothing on stderr but the summary, which says it stopped early, having read less. */
  function expectStoppedQuietly(r: { status: number | null; stderr: string }): void {
    expect(r.status, r.stderr).toBe(0);
    const logs = logsOf(r.stderr);
    expect(logs, r.stderr).toHaveLength(1);
    expect(logs[0]).toMatchObject({ msg: 'replay stopped early: stdout was closed by its reader', stoppedEarly: true });
    expect(logs[0]!.frames).toBeLessThan(fullSummary.frames as number);
    expect(logs[0]!.requests).toBeLessThan(fullSummary.requests as number);
  }

  it('stops reading the trace and exits 0, saying so on stderr and nothing about EPIPE', async () => {
    const r = await firstLineThenClose(args);
    expectStoppedQuietly(r);
    expect(r.firstLine).toBe(full.stdout.subarray(0, full.stdout.indexOf(10)).toString('utf8'));
  });

  it('does the same through a shell pipe into `head -n 1`', () => {
    const r = spawnSync('bash', ['-c', '"$0" "$@" | head -n 1; exit "${PIPESTATUS[0]}"', process.execPath, CLI, ...args], {
      cwd: ROOT,
      env: env(),
      encoding: 'utf8',
      timeout: RUN_TIMEOUT_MS,
      killSignal: 'SIGKILL',
    });
    expect(r.error).toBeUndefined();
    expectStoppedQuietly(r);
    expect(r.stdout.split('\n')).toHaveLength(2); // one line and its newline
  });
});

describe('pbxhook outbox naming an endpoint or a webhook that does not exist (issue #13)', () => {
  /** An outbox with one webhook of crm-json (in the config) and one of crm-old (removed from it). */
  function outboxWithRows(): { yaml: string; stateDir: string } {
    const folder = mkdtempSync(path.join(tmp, 'outbox-names-'));
    const stateDir = path.join(folder, 'state');
    writeFileSync(path.join(folder, 'webhooks.ini'), readFileSync(path.join(ROOT, LAB_INI)));
    const yaml = path.join(folder, 'pbxhook.yaml');
    writeFileSync(yaml, `pbx: {type: asterisk, username: admin, secret: s}\nstate_dir: ./state\nwebhooks: ./webhooks.ini\n`);
    const store = openStore(stateDir);
    const request = (endpoint: string) =>
      ({ endpoint, method: 'POST', url: 'http://127.0.0.1:9/x', headers: {}, body: 'event=ringing', orderKey: `${endpoint}:c1` }) as const;
    store.insert([request('crm-json'), request('crm-old')], Date.now());
    store.close();
    return { yaml, stateDir };
  }

  it('an unknown --endpoint exits 66 with one line listing the known ones; an unknown --id too', () => {
    const { yaml, stateDir } = outboxWithRows();
    for (const command of [['retry'], ['list'], ['purge', '--dead', '--yes']]) {
      const r = cli(['outbox', ...command, '--endpoint', 'nope', '--config', yaml]);
      expect(r.status, command.join(' ')).toBe(66);
      expect(r.stderr).toBe(`pbxhook outbox: no endpoint "nope" in ${yaml} or the outbox; known: crm-json, crm-legacy, crm-old\n`);
      expect(r.stdout).toBe('');
    }
    const bare = cli(['outbox', 'retry', '--endpoint', 'nope', '--state-dir', stateDir]);
    expect(bare.status).toBe(66);
    expect(bare.stderr).toBe('pbxhook outbox: no endpoint "nope" in the outbox; known: crm-json, crm-old\n');
    const id = cli(['outbox', 'retry', '--id', '1', '--id', '99', '--id', 'msg_nope', '--config', yaml]);
    expect(id.status).toBe(66);
    expect(id.stderr).toMatch(/^pbxhook outbox: no webhook "99", "msg_nope" in .*outbox\.sqlite \(an id is the row number or the webhook-id, msg_…; pbxhook outbox list shows them\)\n$/);
    expect(cli(['outbox', 'list', '--id', '42', '--state-dir', stateDir]).status).toBe(66);
  });

  it('a configured endpoint with no webhooks, or a removed one that still has some, is fine', () => {
    const { yaml } = outboxWithRows();
    const none = cli(['outbox', 'retry', '--endpoint', 'crm-legacy', '--config', yaml]);
    expect(none.status, none.stderr).toBe(0);
    expect(none.stdout).toMatch(/^0 webhook\(s\) back to pending/);
    const removed = cli(['outbox', 'list', '--endpoint', 'crm-old', '--config', yaml]);
    expect(removed.status, removed.stderr).toBe(0);
    expect(removed.stdout).toContain('crm-old');
    const retried = cli(['outbox', 'retry', '--endpoint', 'crm-old', '--state', 'pending', '--config', yaml]);
    expect(retried.status, retried.stderr).toBe(0);
    expect(retried.stderr).toBe(`pbxhook outbox: note: endpoint "crm-old" is not in ${yaml}; its webhooks wait in the outbox until it is back\n`);
    expect(cli(['outbox', 'list', '--id', '1', '--config', yaml]).status).toBe(0);
  });
});
