import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeLaunch, serviceLaunch } from './service-env.js';

/**
 * The real path for the memory benchmarks (issues #14 item 8, #15): a fake AMI server → `pbxhook run`
 * (dist/cli.js; durable outbox and ops on) → a receiver answering 200. The daemon is started with
 * the shipped unit's node flags and environment (bench/service-env.ts), as the service runs it.
 * The caller streams AMI bytes through `stream`, which runs once the daemon has logged in.
 */
export interface LiveDaemon {
  readonly pid: number;
  /** Webhooks the receiver has answered. */
  webhooks(): number;
  /** The daemon's warning and error log lines so far, counted by message (issue #15: the 1M churn shortfall). */
  warnings(): Record<string, number>;
  scrape(): Promise<Record<string, number>>;
  rssMb(): number;
  /** Polls `cond` every 200 ms; throws with the daemon's log after `ms`, or if it exits. */
  until(cond: () => Promise<boolean> | boolean, what: string, ms: number): Promise<void>;
  /** The unit's node flags and environment, for the report. */
  readonly environment: string;
  stop(): void;
}

export interface LiveDaemonOptions {
  /** webhooks.ini `events =` of the 3CX endpoint; absent = every event. */
  readonly events?: string;
  /** `delivery.max_rows` of the daemon (absent: the shipped default, 100,000). */
  readonly maxRows?: number;
  /** Called with the daemon's socket after its login was accepted. */
  readonly stream: (sock: net.Socket) => void;
}

export const mb = (bytes: number | undefined): number => Math.round((bytes ?? NaN) / 104857.6) / 10;

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 102.4) / 10 : NaN;
}

async function scrape(port: number): Promise<Record<string, number>> {
  const text = await new Promise<string>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve(body));
    }).on('error', reject);
  });
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(pbxhook_[a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+)$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

export async function startLiveDaemon(o: LiveDaemonOptions): Promise<LiveDaemon> {
  let webhooks = 0;
  const receiver = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      webhooks++;
      res.writeHead(200, { 'content-length': '0' }).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const receiverPort = (receiver.address() as net.AddressInfo).port;

  let loggedIn: () => void = () => undefined;
  const login = new Promise<void>((r) => (loggedIn = r));
  const ami = net.createServer((sock) => {
    sock.write('Asterisk Call Manager/11.0.0\r\n');
    sock.on('error', () => undefined);
    sock.once('data', (d: Buffer) => {
      const id = /ActionID: (.*)\r\n/i.exec(String(d))?.[1];
      sock.write(`Response: Success\r\n${id ? `ActionID: ${id}\r\n` : ''}Message: Authentication accepted\r\n\r\n`);
      loggedIn();
      o.stream(sock);
    });
  });
  await new Promise<void>((r) => ami.listen(0, '127.0.0.1', r));
  const amiPort = (ami.address() as net.AddressInfo).port;

  const dir = mkdtempSync(join(tmpdir(), 'pbxhook-live-daemon-'));
  writeFileSync(join(dir, 'webhooks.ini'), `[crm]\nschema = 3cx\nurl = http://127.0.0.1:${receiverPort}/3cx\n${o.events ? `events = ${o.events}\n` : ''}`);
  writeFileSync(
    join(dir, 'pbxhook.yaml'),
    // event_filter off: this fake server streams every event and answers no Filter action; a daemon
    // left waiting for that answer would time its login out, reconnect and be streamed the calls again.
    `pbx:\n  type: asterisk\n  host: 127.0.0.1\n  port: ${amiPort}\n  username: bench\n  secret: bench\n  event_filter: off\nstate_dir: ./state\n` +
      `ops:\n  listen: 127.0.0.1:0\nlog:\n  level: info\nwebhooks: ./webhooks.ini\n` +
      (o.maxRows === undefined ? '' : `delivery:\n  max_rows: ${o.maxRows}\n`),
  );
  // BENCH_DAEMON_ROOT: another checkout's build and unit (its dist/ and systemd/), for A/B runs.
  const root = process.env['BENCH_DAEMON_ROOT'] ?? '.';
  const launch = serviceLaunch(join(root, 'systemd/pbxhook.service'));
  const child = spawn(process.execPath, [...launch.nodeArgs, join(root, 'dist/cli.js'), 'run', '--config', join(dir, 'pbxhook.yaml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...launch.env },
  });
  let opsPort = 0;
  let stderr = '';
  const warnings: Record<string, number> = {};
  let partial = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-20_000);
    const lines = (partial + d).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      const m = /"level":(\d+)/.exec(line);
      if (!m || Number(m[1]) < 40) continue;
      const msg = /"msg":"([^"]*)"/.exec(line)?.[1] ?? line.slice(0, 200);
      if (warnings[msg] === undefined) process.stderr.write(`daemon: ${line.slice(0, 2000)}\n`);
      warnings[msg] = (warnings[msg] ?? 0) + 1;
    }
    const m = /"port":(\d+)[^\n]*metrics, health and status page listening/.exec(stderr);
    if (m && opsPort === 0) opsPort = Number(m[1]);
  });
  const died = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`pbxhook exited ${code}:\n${stderr}`))));
  died.catch(() => undefined);
  const stop = (): void => {
    child.kill('SIGKILL');
    ami.close();
    receiver.closeAllConnections();
    receiver.close();
    rmSync(dir, { recursive: true, force: true });
  };
  const until = async (cond: () => Promise<boolean> | boolean, what: string, ms: number): Promise<void> => {
    const deadline = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${stderr}`);
      await Promise.race([new Promise((r) => setTimeout(r, 200)), died]);
    }
  };
  try {
    await Promise.race([login, died]);
    await until(() => opsPort > 0, 'the ops port', 10_000);
  } catch (err) {
    stop();
    throw err;
  }
  return {
    pid: child.pid!,
    webhooks: () => webhooks,
    warnings: () => ({ ...warnings }),
    scrape: () => scrape(opsPort),
    rssMb: () => rssOf(child.pid!),
    until,
    environment: describeLaunch(launch),
    stop,
  };
}

/** Waits until the daemon follows `live` calls, has started `total`, and has delivered every webhook, quiet for half a second. */
export async function settled(d: LiveDaemon, live: number, total: number | undefined, ms: number): Promise<Record<string, number>> {
  let m: Record<string, number> = {};
  await d.until(async () => {
    const before = d.webhooks();
    m = await d.scrape();
    if (m['pbxhook_calls_live'] !== live || m['pbxhook_outbox_depth'] !== 0) return false;
    if (total !== undefined && m['pbxhook_calls_total{outcome="started"}'] !== total) return false;
    await new Promise((r) => setTimeout(r, 500));
    return d.webhooks() === before;
  }, `${live} live calls${total === undefined ? '' : ` of ${total}`} and an empty outbox`, ms);
  return m;
}
