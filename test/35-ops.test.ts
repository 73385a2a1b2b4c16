/**
 * Operations (issue #6) with the real daemon: /healthz, /metrics and /status.json on the
 * configured loopback address while a trace plays through the fake AMI server; SIGHUP reloads
 * the endpoints (or refuses a broken config and keeps running); and no log line ever holds the
 * AMI secret, a bearer token or a signing secret. The logger's own redaction is checked first.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import { splitTrace, startFakeAmi } from './support/fakeAmiServer.js';
import { type Daemon, ROOT, cleanEnv, exitWithin, freePort, replay, startDaemon, startReceiver, waitFor, writeConfig, e2eSandbox } from './support/e2e.js';

const FIXTURES = path.join(ROOT, 'test/fixtures/asterisk');
const AMI_SECRET = 'labsecret'; // what support/e2e.ts writes
const TOKEN = 'ops-Bearer-tok-3Qw8';
const SIGNING = 'whsec_dGhpcy1pcy1hLW5ldy0zMi1ieXRlLXNlY3JldCE=';
const FAST = ['retry:', '  schedule: [20ms, 20ms, 20ms]'];

const sandbox = e2eSandbox('pbxhook-ops-');

describe('logs', () => {
  it('redacts secrets, tokens and Authorization headers wherever they are logged', () => {
    let out = '';
    const sink = new Writable({ write: (c: Buffer, _e, done) => ((out += c.toString()), done()) });
    const log = createLogger('info', sink);
    log.info({ secret: 's3cret-A', password: 'pw-B', token: 'tok-C', pbx: { secret: 's3cret-D' }, headers: { authorization: 'Bearer tok-E' } }, 'x');
    log.info({ endpoint: { token: 'tok-F', authorization: 'Bearer tok-G' }, request: { headers: { authorization: 'Bearer tok-H' } } }, 'y');
    for (const s of ['s3cret-A', 'pw-B', 'tok-C', 's3cret-D', 'tok-E', 'tok-F', 'tok-G', 'tok-H']) expect(out).not.toContain(s);
    expect(out).toContain('"***"');
  });
});

/** Three endpoints: the CRM (token + signing; each webhook's first attempt answered 500), a legacy one, a gone one (410). */
function ini(port: number, legacyEnabled = true): string {
  return [
    '[crm-json]', `url = http://127.0.0.1:${port}/3cx`, 'schema = 3cx', 'variant = json', `token = ${TOKEN}`, `signing_secret = ${SIGNING}`, '',
    '[crm-legacy]', `url = http://127.0.0.1:${port}/legacy`, 'schema = 3cx', 'variant = urlencoded', `enabled = ${legacyEnabled}`, '',
    '[crm-gone]', `url = http://127.0.0.1:${port}/gone`, 'schema = 3cx', 'variant = json', '',
  ].join('\n');
}

/** Prometheus text → `name{labels}` → value. */
function parseMetrics(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    m.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return m;
}

const get = async (port: number, p: string) => {
  const r = await fetch(`http://127.0.0.1:${port}${p}`);
  return { status: r.status, type: r.headers.get('content-type') ?? '', text: await r.text() };
};

/** Every stderr line is pino JSON, and none holds a secret. */
function expectCleanLogs(d: Daemon): void {
  for (const line of d.out.stderr.split('\n').filter((l) => l !== '')) {
    expect(() => JSON.parse(line), line).not.toThrow();
    for (const s of [AMI_SECRET, TOKEN, SIGNING, SIGNING.slice('whsec_'.length)]) expect(line).not.toContain(s);
  }
  expect(d.out.stdout).toBe('');
}

describe('pbxhook run: /healthz, /metrics, /status.json, SIGHUP', () => {
  it('reports a trace in its metrics and status, reloads on SIGHUP, refuses a broken config, and 503s without a PBX', async () => {
    const first = path.join(FIXTURES, 'in-queue-answered.ami');
    const crm = await startReceiver(0, (r, n) => (r.path === '/gone' ? { status: 410 } : r.path === '/3cx' && n === 1 ? { status: 500 } : { status: 200 }));
    sandbox.defer(() => crm.close());
    const ami = await startFakeAmi({ trace: first, username: 'admin', secret: AMI_SECRET });
    sandbox.defer(() => ami.close());
    const opsPort = await freePort();
    const { yaml } = writeConfig(sandbox.tmp, ami.port, [...FAST, 'ops:', `  listen: 127.0.0.1:${opsPort}`], ini(crm.port));
    const want = replay(first, yaml).filter((l) => l.endpoint === 'crm-json').length;
    expect(want).toBeGreaterThan(0);

    const daemon = startDaemon(yaml);
    // Every attempt is logged after it is counted: once the log has them all, so do the metrics.
    const logged = (prefix: string) => daemon.logs().filter((l) => String(l.msg).startsWith(prefix)).length;
    await waitFor(() => logged('webhook delivered') >= 2 * want && logged('webhook dead') >= want, () => `every webhook delivered or dead\n${daemon.out.stderr}`, 20_000);

    // /healthz: up, with the PBX connected.
    const health = await get(opsPort, '/healthz');
    expect(health.status).toBe(200);
    expect(JSON.parse(health.text)).toMatchObject({ ok: true, role: 'active', pbx: 'connected', liveCalls: 0, outboxDepth: 0 });

    // /metrics: every family the issue names, with the trace's numbers.
    const metrics = await get(opsPort, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.type).toMatch(/^text\/plain/);
    const m = parseMetrics(metrics.text);
    const v = (k: string) => m.get(k);
    expect(v('pbxhook_pbx_connected')).toBe(1);
    expect(v('pbxhook_pbx_events_total{type="channel.created"}')).toBeGreaterThanOrEqual(2);
    expect(v('pbxhook_pbx_events_total{type="channel.hangup"}')).toBeGreaterThanOrEqual(2);
    expect(v('pbxhook_frames_skipped_total{reason="failed"}')).toBe(0);
    expect(v('pbxhook_calls_live')).toBe(0);
    expect(v('pbxhook_calls_total{outcome="started"}')).toBe(1);
    expect(v('pbxhook_calls_total{outcome="ended"}')).toBe(1);
    expect(v('pbxhook_webhooks_total{endpoint="crm-json",outcome="delivered"}')).toBe(want);
    expect(v('pbxhook_webhooks_total{endpoint="crm-json",outcome="retry"}'), 'each first attempt was answered 500').toBe(want);
    expect(v('pbxhook_webhooks_total{endpoint="crm-legacy",outcome="delivered"}')).toBe(want);
    expect(v('pbxhook_webhooks_total{endpoint="crm-gone",outcome="dead"}'), '410 is permanent').toBe(want);
    expect(v('pbxhook_outbox_depth')).toBe(0);
    expect(v('pbxhook_dead_letters')).toBe(want);
    // Issue #16 item 6: the series the alert rules read, per endpoint.
    expect(v('pbxhook_dead_letters_total{endpoint="crm-gone"}')).toBe(want);
    expect(v('pbxhook_dead_letters_total{endpoint="crm-json"}')).toBe(0);
    expect(v('pbxhook_endpoint_state{endpoint="crm-json",state="ok"}')).toBe(1);
    expect(v('pbxhook_endpoint_state{endpoint="crm-json",state="paused"}')).toBe(0);
    expect(v('pbxhook_endpoint_state{endpoint="crm-gone",state="ok"}'), 'a 410 is an answer: the endpoint is up').toBe(1);
    expect(v('pbxhook_outbox_oldest_undelivered_seconds{endpoint="crm-json"}')).toBe(0);
    expect(v('pbxhook_outbox_webhooks{state="delivered"}')).toBe(2 * want);
    expect(v('pbxhook_delivery_latency_seconds_count{endpoint="crm-json"}')).toBe(want);
    expect(v('pbxhook_delivery_latency_seconds_bucket{le="+Inf",endpoint="crm-json"}')).toBe(want);
    expect(metrics.text).toContain('pbxhook_process_resident_memory_bytes');

    // /status.json: the page's data.
    const status = JSON.parse((await get(opsPort, '/status.json')).text) as Record<string, unknown>;
    expect(status).toMatchObject({ pbx: { type: 'asterisk', address: `127.0.0.1:${ami.port}`, connected: true }, calls: [], outbox: { delivered: 2 * want, dead: want } });
    expect(typeof status.now).toBe('number');
    const webhooks = status.webhooks as Array<Record<string, unknown>>;
    expect(webhooks.length).toBe(3 * want);
    expect(Object.keys(webhooks[0]!).sort()).toEqual(['at', 'attempts', 'call', 'endpoint', 'error', 'event', 'pbx', 'state'].sort());
    const dead = status.dead as Array<Record<string, unknown>>;
    expect(dead).toHaveLength(want);
    expect(dead[0]).toMatchObject({ endpoint: 'crm-gone', state: 'dead', attempts: 1, call: '1795301990.9' });
    expect(String(dead[0]!.error)).toContain('410');
    expect((await get(opsPort, '/')).text).toContain('<title>pbxhook console</title>');
    expect((await get(opsPort, '/nope')).status).toBe(404);

    // SIGHUP with crm-legacy disabled: reloaded, and the next call reaches crm-json only.
    const iniFile = path.join(path.dirname(yaml), 'webhooks.ini');
    writeFileSync(iniFile, ini(crm.port, false));
    daemon.child.kill('SIGHUP');
    await waitFor(() => daemon.logs().some((l) => String(l.msg).startsWith('config reloaded')), () => `"config reloaded"\n${daemon.out.stderr}`, 30_000);
    expect(daemon.logs().find((l) => String(l.msg).startsWith('config reloaded'))).toMatchObject({ endpoints: ['crm-json', 'crm-gone'] });
    const second = path.join(FIXTURES, 'out-answered.ami');
    const wantSecond = replay(second, yaml).filter((l) => l.endpoint === 'crm-json').length;
    expect(wantSecond).toBeGreaterThan(0);
    ami.send(Buffer.concat(splitTrace(readFileSync(second)).messages.map((x) => x.bytes)));
    await waitFor(() => crm.ok('/3cx').length >= want + wantSecond, () => `the second call's webhooks\n${daemon.out.stderr}`, 30_000);
    expect(crm.ok('/legacy'), 'nothing more to the disabled endpoint').toHaveLength(want);

    // A broken config + SIGHUP: refused, and the daemon goes on with the running one.
    const third = path.join(FIXTURES, 'in-busy.ami');
    const wantThird = replay(third, yaml).filter((l) => l.endpoint === 'crm-json').length;
    writeFileSync(iniFile, ini(crm.port, false) + `colour = blue\ntoken = ${TOKEN}\n`);
    daemon.child.kill('SIGHUP');
    await waitFor(() => daemon.logs().some((l) => String(l.msg).startsWith('reload refused')), () => `"reload refused"\n${daemon.out.stderr}`, 30_000);
    ami.send(Buffer.concat(splitTrace(readFileSync(third)).messages.map((x) => x.bytes)));
    await waitFor(() => crm.ok('/3cx').length >= want + wantSecond + wantThird, () => `the third call's webhooks\n${daemon.out.stderr}`, 30_000);
    expect(daemon.child.exitCode).toBeNull();
    expect(crm.ok('/legacy')).toHaveLength(want);

    // The PBX goes away: /healthz 503, pbx_connected 0.
    await ami.down();
    await waitFor(() => /connection lost/.test(daemon.out.stderr), () => 'connection lost', 30_000);
    const down = await get(opsPort, '/healthz');
    expect(down.status).toBe(503);
    expect(JSON.parse(down.text)).toMatchObject({ ok: false, pbx: 'disconnected' });
    expect(parseMetrics((await get(opsPort, '/metrics')).text).get('pbxhook_pbx_connected')).toBe(0);

    daemon.child.kill('SIGTERM');
    expect(await exitWithin(daemon, 30_000)).toEqual({ code: 0, signal: null });
    expectCleanLogs(daemon);
    // Every CRM request carried the token and a signature, and the secrets only where they belong.
    for (const r of crm.requests.filter((x) => x.path === '/3cx')) {
      expect(r.headers.authorization).toBe(`Bearer ${TOKEN}`);
      expect(r.headers['webhook-signature']).toMatch(/^v1,/);
    }
  });
});

describe('ops.listen off loopback (issue #13)', () => {
  const OPS_TOKEN = 'ops-token-Zq81-kW3x-pP0m';

  it('without ops.token the daemon refuses to start: exit 78, one line naming ops.token', async () => {
    const { yaml } = writeConfig(sandbox.tmp, 1, ['ops:', '  listen: 0.0.0.0:0'], ini(1));
    const daemon = startDaemon(yaml);
    expect(await exitWithin(daemon, 10_000)).toEqual({ code: 78, signal: null });
    expect(daemon.out.stderr).toBe(
      `${yaml}: ops.token: missing: ops.listen 0.0.0.0:0 is not a loopback address, and /status.json shows callers' numbers; ` +
        'set ops.token (or PBXHOOK_OPS_TOKEN; env:NAME and file:PATH work too), or listen on 127.0.0.1\n',
    );
  });

  it('with ops.token every request but /healthz needs it: Bearer, or Basic for a browser', async () => {
    const ami = await startFakeAmi({ trace: path.join(FIXTURES, 'in-busy.ami'), username: 'admin', secret: AMI_SECRET });
    sandbox.defer(() => ami.close());
    const { yaml } = writeConfig(sandbox.tmp, ami.port, ['ops:', '  listen: 0.0.0.0:0', `  token: ${OPS_TOKEN}`], ini(1));
    const daemon = startDaemon(yaml);
    sandbox.defer(async () => void daemon.child.kill('SIGKILL'));
    const listening = () => daemon.logs().find((l) => l.msg === 'metrics, health and status page listening');
    await waitFor(() => listening() !== undefined, () => daemon.out.stderr, 10_000);
    // /healthz is 200 once the PBX is connected (503 before): the page listens before the login,
    // which a busy machine can hold back (CI with both cores taken saw the 503).
    await waitFor(() => daemon.logs().some((l) => l.msg === 'connected to Asterisk AMI'), () => `the login\n${daemon.out.stderr}`, 20_000);
    const port = Number(listening()!.port);
    const status = async (p: string, authorization?: string) =>
      (await fetch(`http://127.0.0.1:${port}${p}`, authorization === undefined ? {} : { headers: { authorization } })).status;

    expect(await status('/healthz')).toBe(200);
    for (const p of ['/metrics', '/status.json', '/', '/nope']) {
      expect(await status(p), p).toBe(401);
      expect(await status(p, 'Bearer wrong-token-0123456789'), p).toBe(401);
      expect(await status(p, OPS_TOKEN), `${p} without a scheme`).toBe(401);
    }
    const r = await fetch(`http://127.0.0.1:${port}/status.json`);
    expect(r.headers.get('www-authenticate')).toContain('Bearer realm="pbxhook"');
    expect(await r.text()).not.toContain('"calls"');
    expect(await status('/metrics', `Bearer ${OPS_TOKEN}`)).toBe(200);
    expect(await status('/status.json', `bearer ${OPS_TOKEN}`)).toBe(200);
    expect(await status('/', `Basic ${Buffer.from(`admin:${OPS_TOKEN}`).toString('base64')}`)).toBe(200);
    expect(await status('/nope', `Bearer ${OPS_TOKEN}`)).toBe(404);

    daemon.child.kill('SIGTERM');
    expect(await exitWithin(daemon, 10_000)).toEqual({ code: 0, signal: null });
    expectCleanLogs(daemon);
    expect(daemon.out.stderr).not.toContain(OPS_TOKEN);
  });

  it('on loopback without a token, as before', async () => {
    const { yaml } = writeConfig(sandbox.tmp, 1, ['ops:', '  listen: 127.0.0.1:0'], ini(1));
    const r = spawnSync(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'check-config', yaml], { encoding: 'utf8', env: cleanEnv() });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('metrics, health and status page: http://127.0.0.1:0/, no token (loopback only; console actions refused)');
  });
});
