/**
 * The Debian package as a PBX admin meets it (issue #13 item 3): `npm run deb` builds it, `dpkg -i`
 * installs it on this machine, pbxhook runs from /usr/bin as the service would, `dpkg -r` keeps
 * /etc/pbxhook, `dpkg -P` purges it and the pbxhook user. Needs root and dpkg: CI runs as root on
 * Debian and must not skip; elsewhere the file skips and says why. Whatever happens, afterAll
 * purges the package, so a failure never leaves it installed.
 */
import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAsync, type Run } from './support/runAsync.js';
import { startReceiver } from './support/e2e.js';
import { startFakeAmi } from './support/fakeAmiServer.js';
import { waitFor } from './support/e2e.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const TRACE = path.join(ROOT, 'test/fixtures/asterisk/in-queue-answered.ami');
const CONFIG = '/etc/pbxhook/pbxhook.yaml';
/** The environment variables /etc/pbxhook/webhooks.ini (webhooks.ini.example) names. */
const SECRETS = { CRM_TOKEN: 'deb-test-token', CRM_SIGNING_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' };
/** The build compiles better-sqlite3 unless npm has it cached; a busy 2-core machine takes minutes. */
const BUILD_TIMEOUT_MS = 20 * 60_000;
const STEP_TIMEOUT_MS = 5 * 60_000;

function run(cmd: string, args: readonly string[], opts: SpawnSyncOptions = {}): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: STEP_TIMEOUT_MS, killSignal: 'SIGKILL', ...opts });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** The environment without PBXHOOK_* overrides, plus the example's secrets. */
function env(): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PBXHOOK_')));
  return { ...clean, ...SECRETS };
}

/** dpkg, waiting its turn when apt or another dpkg holds the lock (other work shares the machine). */
async function dpkg(args: readonly string[]): Promise<Run> {
  for (let tries = 0; ; tries++) {
    const r = await runAsync('dpkg', args, { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: STEP_TIMEOUT_MS });
    if (r.status === 0 || tries >= 30 || !/lock/i.test(r.stderr)) return r;
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

/** dpkg's status of pbxhook: 'install ok installed', 'deinstall ok config-files', or null if unknown to dpkg. */
function packageStatus(): string | null {
  const r = run('dpkg-query', ['-W', '-f=${Status}', 'pbxhook']);
  return r.status === 0 && r.stdout !== 'unknown ok not-installed' ? r.stdout : null;
}

const exists = (db: 'passwd' | 'group', name: string) => run('getent', [db, name]).status === 0;
const mode = (p: string) => (statSync(p).mode & 0o7777).toString(8);

/** Why this machine cannot run the test, or null. */
function missingPrerequisite(): string | null {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return 'it installs a .deb: needs root on Debian';
  for (const tool of ['dpkg', 'dpkg-deb']) {
    if (spawnSync(tool, ['--version']).error) return `${tool} is not installed`;
  }
  if (!existsSync('/usr/bin/node')) return "Debian's nodejs (/usr/bin/node) is not installed";
  // Never touch a real install or its user: this test purges what it installed.
  if (packageStatus() !== null) return 'pbxhook is already installed here (dpkg -P pbxhook to run this test)';
  if (exists('passwd', 'pbxhook')) return 'a pbxhook user exists here (a source install?): the purge would remove it';
  return null;
}

/** Debian's cluster `main` (postgresql-common's pg_lsclusters), or undefined when there is none. */
function debianCluster(): { version: string; port: string; down: boolean } | undefined {
  const r = spawnSync('pg_lsclusters', ['--no-header'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return undefined;
  const line = r.stdout.split('\n').map((l) => l.trim().split(/\s+/)).find((f) => f[1] === 'main');
  return line ? { version: line[0]!, port: line[2]!, down: line[3] !== 'online' } : undefined;
}

/** KEY=VALUE lines of /etc/pbxhook/pbxhook.env, read as root as systemd reads EnvironmentFile= (quotes around a value stripped). */
function envFile(): string[] {
  return readFileSync('/etc/pbxhook/pbxhook.env', 'utf8')
    .split('\n')
    .filter((l) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(l))
    .map((l) => l.replace(/^([^=]+)=(['"])(.*)\2$/, '$1=$3'));
}

/** A unit's User=, Environment= and ExecStart=, as systemd would run it (its sandboxing aside). */
function unitOf(file: string): { user: string; env: string[]; argv: string[] } {
  const text = readFileSync(file, 'utf8');
  const values = (key: string) => [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!.trim());
  return { user: values('User')[0]!, env: values('Environment'), argv: values('ExecStart')[0]!.split(/\s+/) };
}

/** The unit's command as its User= (uid and primary group, as systemd sets them), its exit status our own to read. */
function spawnAs(unit: { user: string; env: string[]; argv: string[] }) {
  const [uid, gid] = run('getent', ['passwd', unit.user]).stdout.split(':').slice(2, 4).map(Number);
  const vars = Object.fromEntries([...unit.env, ...envFile()].map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  const child = spawn(unit.argv[0]!, unit.argv.slice(1), { cwd: '/', uid: uid!, gid: gid!, env: { PATH: '/usr/bin:/bin', ...vars }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += String(d)));
  child.stderr.on('data', (d: Buffer) => (text += String(d)));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, exited, argv: unit.argv, log: () => text.slice(-2000) };
}

/** The first ```sh block after `marker` in the README. */
function codeBlockAfter(readme: string, marker: string): string {
  const from = readme.indexOf(marker);
  const start = readme.indexOf('```sh\n', from);
  if (from < 0 || start < 0) throw new Error(`README: no sh block after "${marker}"`);
  return readme.slice(start + 6, readme.indexOf('\n```', start + 6)).replace(/\\\n\s*/g, '');
}

const missing = missingPrerequisite();
const CI = Boolean(process.env.CI);
if (missing && !CI) console.warn(`test/52-deb skipped: ${missing}`);

describe.skipIf(missing !== null && !CI)('Debian package: build, install, run, remove, purge', { timeout: STEP_TIMEOUT_MS }, () => {
  let out = '';
  let deb = '';

  beforeAll(() => {
    // In CI the machine must be able to run this (.ci/run installs what it needs): fail, never skip.
    if (missing) throw new Error(`test/52-deb cannot run: ${missing}`);
    out = mkdtempSync(path.join(os.tmpdir(), 'pbxhook-deb-test-'));
  });

  afterAll(async () => {
    if (!missing && packageStatus() !== null) await dpkg(['--purge', 'pbxhook']);
    if (out) rmSync(out, { recursive: true, force: true });
  }, STEP_TIMEOUT_MS);

  it(
    'npm run deb builds pbxhook_<version>_<arch>.deb',
    async () => {
      const r = await runAsync('sh', ['scripts/deb/build.sh', out], { cwd: ROOT, timeout: BUILD_TIMEOUT_MS });
      expect(r.status, r.stderr.slice(-3000)).toBe(0);
      const arch = run('dpkg', ['--print-architecture']).stdout.trim();
      deb = r.stdout.trim().split('\n').at(-1) ?? '';
      expect(path.basename(deb)).toBe(`pbxhook_${VERSION}_${arch}.deb`);
      expect(existsSync(deb)).toBe(true);
    },
    BUILD_TIMEOUT_MS,
  );

  it('holds the app with production dependencies only, and the examples as conffiles', () => {
    const field = (name: string) => run('dpkg-deb', ['-f', deb, name]).stdout.trim();
    expect(field('Version')).toBe(VERSION);
    expect(field('Depends')).toMatch(/^nodejs \(>= 2\d\), nodejs \(<< 2\d\), adduser\b/);
    const files = run('dpkg-deb', ['-c', deb]).stdout.split('\n').map((l) => l.replace(/^.* \.\//, '/'));
    for (const f of ['/usr/bin/pbxhook', '/usr/lib/pbxhook/dist/cli.js', '/usr/lib/pbxhook/package.json', '/lib/systemd/system/pbxhook.service', '/etc/pbxhook/pbxhook.yaml', '/etc/pbxhook/webhooks.ini', '/usr/lib/pbxhook/node_modules/better-sqlite3/build/Release/better_sqlite3.node', '/usr/share/doc/pbxhook/copyright', '/usr/share/pbxhook/pbxhook.rules.yml']) {
      expect(files).toContain(f);
    }
    for (const dev of ['vitest', 'typescript', 'playwright-core', 'tsx', 'fast-check']) {
      expect(files.filter((f) => f.startsWith(`/usr/lib/pbxhook/node_modules/${dev}/`))).toEqual([]);
    }
    expect(files.filter((f) => /\/(test|bench|\.ci)\//.test(f) && !f.includes('/node_modules/'))).toEqual([]);
    const control = mkdtempSync(path.join(out, 'control-'));
    run('dpkg-deb', ['-e', deb, control]);
    expect(readFileSync(path.join(control, 'conffiles'), 'utf8').trim().split('\n').sort()).toEqual([
      '/etc/pbxhook/pbxhook.schema.json',
      '/etc/pbxhook/pbxhook.yaml',
      '/etc/pbxhook/webhooks.ini',
    ]);
  });

  it('dpkg -i installs it with a pbxhook system user, its state directory and a private /etc/pbxhook', async () => {
    const r = await dpkg(['-i', deb]);
    expect(r.status, r.stderr).toBe(0);
    expect(packageStatus()).toBe('install ok installed');
    const user = run('getent', ['passwd', 'pbxhook']).stdout.split(':');
    expect(Number(user[2])).toBeLessThan(1000); // a system user
    expect(user[6]?.trim()).toBe('/usr/sbin/nologin');
    expect(run('stat', ['-c', '%U:%G %a', '/var/lib/pbxhook']).stdout.trim()).toBe('pbxhook:pbxhook 750');
    expect(run('stat', ['-c', '%U:%G %a', '/etc/pbxhook']).stdout.trim()).toBe('root:pbxhook 750');
    expect(mode('/etc/pbxhook/pbxhook.env')).toBe('600');
  });

  it('runs from /usr/bin: --version, check-config of the installed example, as root and as pbxhook', () => {
    const v = run('/usr/bin/pbxhook', ['--version']);
    expect(v.stdout.trim()).toBe(VERSION);
    const check = run('/usr/bin/pbxhook', ['check-config', CONFIG], { env: env() });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    expect(check.stdout).toContain('config OK');
    // The service's user reads /etc/pbxhook through its group.
    const asUser = run('runuser', ['-u', 'pbxhook', '--', 'env', ...Object.entries(SECRETS).map(([k, v]) => `${k}=${v}`), '/usr/bin/pbxhook', 'check-config', CONFIG]);
    expect(asUser.status, asUser.stdout + asUser.stderr).toBe(0);
  });

  it('replays a recorded call from /usr/bin to the same bytes as the source build', () => {
    const installed = run('/usr/bin/pbxhook', ['replay', TRACE, '--config', CONFIG], { env: env() });
    expect(installed.status, installed.stderr).toBe(0);
    const lines = installed.stdout.trim().split('\n');
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(JSON.parse(l)).toHaveProperty('endpoint');
    const source = run(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'replay', TRACE, '--config', CONFIG], { env: env() });
    expect(installed.stdout).toBe(source.stdout);
  });

  it('installs a unit that systemd accepts, with the package paths', () => {
    const unit = readFileSync('/lib/systemd/system/pbxhook.service', 'utf8');
    expect(unit).toContain('ExecStart=/usr/bin/node --max-semi-space-size=2 --heap-growing-percent=50 /usr/lib/pbxhook/dist/cli.js run --config /etc/pbxhook/pbxhook.yaml');
    expect(unit).not.toContain('/opt/');
    const verify = spawnSync('systemd-analyze', ['verify', '/lib/systemd/system/pbxhook.service'], { encoding: 'utf8' });
    if (verify.error) {
      // .ci/run installs systemd; test/50 fails in CI without it.
      if (CI) throw new Error(`systemd-analyze is not installed: ${verify.error.message}`);
      console.warn('test/52-deb: systemd-analyze not installed, unit not verified');
      return;
    }
    const problems = `${verify.stdout}${verify.stderr}`.split('\n').filter((l) => l.includes('pbxhook.service'));
    expect(problems).toEqual([]);
    expect(verify.status).toBe(0);
  });

  // Issue #17: README "Running PostgreSQL for it on Debian" and "Delivery workers", run as written
  // on this machine (root without sudo: `sudo X` becomes X, `sudo -u U X` becomes `runuser -u U -- X`,
  // as the README says). Debian's own cluster over its socket with peer authentication; the package's
  // daemon leaves dead webhooks in the shared outbox (its CRM answers 410), `pbxhook outbox retry`
  // puts them back, and the worker's unit made by the README's sed sends every one of them.
  it("the README's fleet steps: Debian's cluster, the daemon and a delivery worker's unit share one outbox", async () => {
    const cluster = debianCluster();
    if (cluster === undefined) {
      if (CI) throw new Error("Debian's postgresql (pg_lsclusters, a cluster named main) is not installed: .ci/run installs it");
      console.warn("test/52-deb: no Debian PostgreSQL cluster 'main' here; the README's fleet steps not run");
      return;
    }
    const psql = (sql: string) => run('runuser', ['-u', 'postgres', '--', 'psql', '-p', cluster.port, '-tAc', sql]);
    const saved = new Map(['/etc/pbxhook/pbxhook.yaml', '/etc/pbxhook/webhooks.ini', '/etc/pbxhook/pbxhook.env'].map((f) => [f, readFileSync(f, 'utf8')]));
    const receiver = await startReceiver(0, () => ({ status: 410 }));
    const ami = await startFakeAmi({ trace: TRACE, username: 'pbxhook', secret: 'change-me' });
    const children: Array<ReturnType<typeof spawnAs>> = [];
    let created = false;
    try {
      if (cluster.down) expect(run('pg_ctlcluster', [cluster.version, 'main', 'start']).status).toBe(0);
      expect(psql("SELECT count(*) FROM pg_roles WHERE rolname = 'pbxhook'").stdout.trim(), 'a pbxhook role exists already: this test would drop it').toBe('0');
      // README: `sudo -u postgres createuser pbxhook` and `createdb -O pbxhook pbxhook`.
      expect(run('runuser', ['-u', 'postgres', '--', 'createuser', '-p', cluster.port, 'pbxhook']).status).toBe(0);
      created = true;
      expect(run('runuser', ['-u', 'postgres', '--', 'createdb', '-p', cluster.port, '-O', 'pbxhook', 'pbxhook']).status).toBe(0);
      const url = `postgres:///pbxhook?host=/var/run/postgresql&user=pbxhook${cluster.port === '5432' ? '' : `&port=${cluster.port}`}`;
      // The daemon's file: the README's outbox block; the example's AMI and CRM pointed at this test's.
      const yaml = saved.get('/etc/pbxhook/pbxhook.yaml')!
        .replace(/^(\s*)store: sqlite\b/m, `$1store: postgres\n$1url: ${url}`)
        .replace(/^(\s*)port: 5038\b/m, `$1port: ${ami.port}`)
        .replace(/^(\s*)listen: 127\.0\.0\.1:9464\b/m, '$1listen: 127.0.0.1:0');
      expect(yaml).toContain(`url: ${url}`);
      writeFileSync('/etc/pbxhook/pbxhook.yaml', yaml);
      writeFileSync('/etc/pbxhook/webhooks.ini', saved.get('/etc/pbxhook/webhooks.ini')!.replace(/^url = .*$/gm, `url = http://127.0.0.1:${receiver.port}/hook`));
      // README: the URL goes where the other secrets go (the fleet's way; the worker's file names none).
      // Quoted, as README says of values the shell reads specially (the `&`): systemd strips the quotes.
      appendFileSync('/etc/pbxhook/pbxhook.env', `${Object.entries(SECRETS).map(([k, v]) => `${k}=${v}`).join('\n')}\nPBXHOOK_OUTBOX_URL='${url}'\n`);

      const daemon = spawnAs(unitOf('/lib/systemd/system/pbxhook.service'));
      children.push(daemon);
      await ami.done;
      const outbox = (...args: string[]) => run('runuser', ['-u', 'pbxhook', '--', 'env', ...envFile(), '/usr/bin/pbxhook', 'outbox', ...args, '--config', CONFIG]);
      const counts = () => {
        const r = outbox('stats', '--json');
        return r.status === 0 ? (JSON.parse(r.stdout) as { counts: Array<{ state: string; count: number }> }).counts : undefined;
      };
      // Every webhook the trace makes (what replay prints) sent once and dead, none left to send.
      const expected = run('/usr/bin/pbxhook', ['replay', TRACE, '--config', CONFIG], { env: env() }).stdout.trim().split('\n').length;
      const allDead = () => receiver.requests.length >= expected && (counts() ?? []).every((c) => c.state === 'dead');
      await waitFor(allDead, () => `${receiver.requests.length} of ${expected} webhooks sent, outbox ${JSON.stringify(counts())}: ${daemon.log()}`, 60_000);
      daemon.child.kill('SIGTERM');
      expect(await daemon.exited, daemon.log()).toBe(0);
      const dead = receiver.requests.length;
      expect(dead).toBe(expected);
      const ids = new Set(receiver.requests.map((q) => q.headers['webhook-id']));
      expect(ids.size).toBe(dead);
      // README: as root, peer authentication refuses the outbox commands (exit 73).
      expect(run('/usr/bin/pbxhook', ['outbox', 'stats', '--config', CONFIG], { env: env() }).status).toBe(73);

      // README "Delivery workers", its block as written but for systemctl (no systemd runs here).
      const block = codeBlockAfter(readFileSync(path.join(ROOT, 'README.md'), 'utf8'), 'As a unit, beside');
      const steps = block.replace(/\bsudo -u (\S+) /g, 'runuser -u $1 -- ').replace(/\bsudo /g, '').split('\n').filter((l) => !l.includes('systemctl')).join('\n');
      const made = run('sh', ['-ec', steps], { env: { ...env(), PATH: `/usr/bin:/bin:/usr/sbin:/sbin` } });
      expect(made.status, made.stdout + made.stderr).toBe(0);
      const verify = spawnSync('systemd-analyze', ['verify', '/etc/systemd/system/pbxhook-deliver.service'], { encoding: 'utf8' });
      if (!verify.error) expect(`${verify.stdout}${verify.stderr}`.split('\n').filter((l) => l.includes('pbxhook-deliver.service'))).toEqual([]);

      receiver.handle(() => ({ status: 200 }));
      const retried = outbox('retry', '--all', '--state', 'dead');
      expect(retried.status, retried.stdout + retried.stderr).toBe(0);
      const worker = spawnAs(unitOf('/etc/systemd/system/pbxhook-deliver.service'));
      children.push(worker);
      expect(worker.argv).toContain('deliver');
      await waitFor(() => receiver.ok().length >= dead, () => `${receiver.ok().length} of ${dead} delivered by the worker: ${worker.log()}`, 60_000);
      expect(new Set(receiver.ok().map((q) => q.headers['webhook-id'])), 'the same webhook-ids, each once').toEqual(ids);
      expect(receiver.ok().length).toBe(dead);
      worker.child.kill('SIGTERM');
      expect(await worker.exited, worker.log()).toBe(0);
      const after = counts() ?? [];
      expect(after.filter((c) => c.state !== 'delivered'), 'nothing left undelivered or dead').toEqual([]);
      expect(after.reduce((n, c) => n + c.count, 0)).toBe(dead);
    } finally {
      for (const c of children) c.child.kill('SIGKILL');
      await receiver.close();
      await ami.close();
      for (const [f, text] of saved) writeFileSync(f, text);
      rmSync('/etc/pbxhook/deliver.yaml', { force: true });
      rmSync('/etc/systemd/system/pbxhook-deliver.service', { force: true });
      if (created) {
        run('runuser', ['-u', 'postgres', '--', 'dropdb', '-p', cluster.port, '--if-exists', 'pbxhook']);
        run('runuser', ['-u', 'postgres', '--', 'dropuser', '-p', cluster.port, '--if-exists', 'pbxhook']);
      }
      if (cluster.down) run('pg_ctlcluster', [cluster.version, 'main', 'stop']);
    }
  });

  it('keeps an edited conffile when installed again', async () => {
    appendFileSync(CONFIG, '# edited by test/52\n');
    const r = await dpkg(['-i', deb]);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(CONFIG, 'utf8')).toContain('# edited by test/52');
  });

  it('dpkg -r removes the program and keeps /etc/pbxhook, the user and the outbox', async () => {
    const r = await dpkg(['-r', 'pbxhook']);
    expect(r.status, r.stderr).toBe(0);
    expect(packageStatus()).toBe('deinstall ok config-files');
    expect(existsSync('/usr/bin/pbxhook')).toBe(false);
    expect(existsSync('/usr/lib/pbxhook')).toBe(false);
    expect(existsSync('/lib/systemd/system/pbxhook.service')).toBe(false);
    expect(readFileSync(CONFIG, 'utf8')).toContain('# edited by test/52');
    expect(existsSync('/etc/pbxhook/pbxhook.env')).toBe(true);
    expect(existsSync('/var/lib/pbxhook')).toBe(true);
    expect(exists('passwd', 'pbxhook')).toBe(true);
  });

  it('dpkg -P purges /etc/pbxhook, the state directory, the user and the group', async () => {
    const r = await dpkg(['-P', 'pbxhook']);
    expect(r.status, r.stderr).toBe(0);
    expect(packageStatus()).toBeNull();
    expect(existsSync('/etc/pbxhook')).toBe(false);
    expect(existsSync('/var/lib/pbxhook')).toBe(false);
    expect(exists('passwd', 'pbxhook')).toBe(false);
    expect(exists('group', 'pbxhook')).toBe(false);
  });
});
