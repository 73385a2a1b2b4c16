import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AmiFramer } from '../src/ami/framer.js';
import { wantsAmiEvent } from '../src/ami/normalise.js';
import { DEFAULT_ROLES } from '../src/core/roles.js';
import { Pipeline } from '../src/pipeline.js';
import { describeLaunch, serviceLaunch } from './service-env.js';

/**
 * Issue #14 item 8: the live daemon's memory with N calls up at once, on the real path: a fake AMI
 * server → `pbxhook run` (dist/cli.js; durable outbox and ops on) → a receiver answering 200.
 * Each call is the recorded in-queue-answered call (every event Asterisk sent, unfiltered) up to the
 * caller's HangupRequest: answered, bridged, still up. Its Uniqueids, Linkedid, channel names and
 * bridge id are renumbered per copy and its times moved to now, so the daemon follows N distinct
 * live calls. Measured once the daemon holds them all and has delivered every webhook:
 * RSS (/proc) and the JS heap (the daemon's own /metrics). The daemon runs with the environment
 * the shipped unit gives it (node flags and environment, bench/service-env.ts), as the service runs it.
 */
const TRACE = 'test/fixtures/asterisk/in-queue-answered.ami';

function callTemplate(): string {
  const text = readFileSync(TRACE, 'latin1');
  const start = text.indexOf('Event: Newchannel');
  const end = text.indexOf('Event: HangupRequest');
  return text.slice(start, end);
}

/** Copy `i` of the call, its times shifted so that its first event happens at `t0` (seconds). */
function copy(template: string, i: number, t0: number, first: number): Buffer {
  const hex = (n: number): string => n.toString(16).padStart(8, '0');
  const text = template
    .replaceAll('1795301990.9', `${1795301990 + i}.9`)
    .replaceAll('1795301994.10', `${1795301994 + i}.10`)
    .replaceAll('PJSIP/trunk-00000007', `PJSIP/trunk-${hex(2 * i)}`)
    .replaceAll('PJSIP/202-00000008', `PJSIP/202-${hex(2 * i + 1)}`)
    .replaceAll('cf807582-d118-4048-8206', `${hex(i)}-d118-4048-8206`)
    .replace(/^Timestamp: (\d+\.\d+)\r$/gm, (_, ts: string) => `Timestamp: ${(t0 + (Number(ts) - first) + i / 1000).toFixed(6)}\r`);
  return Buffer.from(text, 'latin1');
}

export interface LiveMemoryResult {
  readonly calls: number;
  readonly liveCalls: number;
  readonly webhooks: number;
  /** After login, before any call. */
  readonly baselineRss: number;
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  /** The same, 15 s later without traffic: V8 gives back heap it grew for the burst. */
  readonly settledRss: number;
  readonly settledHeapUsed: number;
  readonly settledHeapTotal: number;
  /** The daemon's heap after login, before any call. */
  readonly baselineHeapTotal: number;
  /**
   * The calls' own data: the same bytes through the live framer and the pipeline in this process
   * (--expose-gc), JS heap after a full collection, with values copied (as live) and sliced.
   */
  readonly callsHeap: number;
  readonly callsHeapSliced: number;
  /** MB of AMI bytes streamed. */
  readonly streamedMb: number;
  readonly ms: number;
  /** The unit's node flags and environment the daemon ran with. */
  readonly environment: string;
}

const mb = (bytes: number | undefined): number => Math.round((bytes ?? NaN) / 104857.6) / 10;

function rssMb(pid: number): number {
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

/** JS heap (MB, after a full GC) that `calls` live calls take in framer → pipeline. */
function callsHeap(calls: number, copyValues: boolean): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return NaN;
  const template = callTemplate();
  const first = Number(/^Timestamp: (\d+\.\d+)\r$/m.exec(template)![1]);
  const framer = new AmiFramer({ filter: wantsAmiEvent, copyValues });
  const p = new Pipeline({
    roles: DEFAULT_ROLES,
    calls: { idleTimeoutSeconds: 14_400, timezone: 'UTC' },
    endpoints: [{ name: 'crm', enabled: true, schema: '3cx', url: 'http://127.0.0.1:9/3cx', method: 'POST', variant: 'json', events: [], recordingUrl: 'https://pbx.example.com/recordings/{file}' }],
    directory: {},
    environment: 'default',
  });
  gc();
  const before = process.memoryUsage().heapUsed;
  const t0 = Date.now() / 1000;
  for (let i = 0; i < calls; i++) {
    const b = copy(template, i, t0, first);
    for (let o = 0; o < b.length; o += 65_536) for (const f of framer.push(b.subarray(o, o + 65_536))) p.amiFrame(f);
  }
  gc();
  if (p.tracker.liveCalls !== calls) throw new Error(`expected ${calls} live calls, have ${p.tracker.liveCalls}`);
  return mb(process.memoryUsage().heapUsed - before);
}

export async function liveMemory(calls: number): Promise<LiveMemoryResult> {
  const heapCopied = callsHeap(calls, true);
  const heapSliced = callsHeap(calls, false);
  const template = callTemplate();
  const first = Number(/^Timestamp: (\d+\.\d+)\r$/m.exec(template)![1]);
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
  let go: () => void = () => undefined;
  const start = new Promise<void>((r) => (go = r));
  let streamed = 0;
  let sent: () => void = () => undefined;
  const allSent = new Promise<void>((r) => (sent = r));
  const ami = net.createServer((sock) => {
    sock.write('Asterisk Call Manager/11.0.0\r\n');
    sock.on('error', () => undefined);
    sock.once('data', (d: Buffer) => {
      const id = /ActionID: (.*)\r\n/i.exec(String(d))?.[1];
      sock.write(`Response: Success\r\n${id ? `ActionID: ${id}\r\n` : ''}Message: Authentication accepted\r\n\r\n`);
      loggedIn();
      void (async () => {
        await start;
        const t0 = Date.now() / 1000;
        for (let i = 0; i < calls; i++) {
          const b = copy(template, i, t0, first);
          streamed += b.length;
          if (!sock.write(b)) await new Promise((r) => sock.once('drain', r));
        }
        sent();
      })();
    });
  });
  await new Promise<void>((r) => ami.listen(0, '127.0.0.1', r));
  const amiPort = (ami.address() as net.AddressInfo).port;

  const dir = mkdtempSync(join(tmpdir(), 'pbxhook-live-memory-'));
  writeFileSync(join(dir, 'webhooks.ini'), `[crm]\nschema = 3cx\nurl = http://127.0.0.1:${receiverPort}/3cx\n`);
  writeFileSync(
    join(dir, 'pbxhook.yaml'),
    `pbx:\n  type: asterisk\n  host: 127.0.0.1\n  port: ${amiPort}\n  username: bench\n  secret: bench\nstate_dir: ./state\n` +
      `ops:\n  listen: 127.0.0.1:0\nlog:\n  level: info\nwebhooks: ./webhooks.ini\n`,
  );
  const launch = serviceLaunch();
  const child = spawn(process.execPath, [...launch.nodeArgs, 'dist/cli.js', 'run', '--config', join(dir, 'pbxhook.yaml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...launch.env },
  });
  let opsPort = 0;
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-20_000);
    const m = /"port":(\d+)[^\n]*metrics, health and status page listening/.exec(stderr);
    if (m && opsPort === 0) opsPort = Number(m[1]);
  });
  const died = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`pbxhook exited ${code}:\n${stderr}`))));
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
    await new Promise((r) => setTimeout(r, 1000));
    const baselineRss = rssMb(child.pid!);
    const baselineHeapTotal = mb((await scrape(opsPort))['pbxhook_nodejs_heap_size_total_bytes']);
    const t0 = performance.now();
    go();
    await Promise.race([allSent, died]);
    let m: Record<string, number> = {};
    // Every call followed and every webhook delivered, with nothing more arriving for half a second.
    await until(async () => {
      const before = webhooks;
      m = await scrape(opsPort);
      if (m['pbxhook_calls_live'] !== calls || m['pbxhook_outbox_depth'] !== 0) return false;
      await new Promise((r) => setTimeout(r, 500));
      return webhooks === before;
    }, `${calls} live calls and an empty outbox`, 600_000);
    const ms = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 2000));
    m = await scrape(opsPort);
    const rss = rssMb(child.pid!);
    await new Promise((r) => setTimeout(r, 15_000));
    const settled = await scrape(opsPort);
    return {
      calls,
      liveCalls: m['pbxhook_calls_live'] ?? NaN,
      webhooks,
      baselineRss,
      rss,
      heapUsed: mb(m['pbxhook_nodejs_heap_size_used_bytes']),
      heapTotal: mb(m['pbxhook_nodejs_heap_size_total_bytes']),
      settledRss: rssMb(child.pid!),
      settledHeapUsed: mb(settled['pbxhook_nodejs_heap_size_used_bytes']),
      settledHeapTotal: mb(settled['pbxhook_nodejs_heap_size_total_bytes']),
      baselineHeapTotal,
      callsHeap: heapCopied,
      callsHeapSliced: heapSliced,
      streamedMb: Math.round(streamed / 104857.6) / 10,
      ms: Math.round(ms),
      environment: describeLaunch(launch),
    };
  } finally {
    child.kill('SIGKILL');
    ami.close();
    receiver.closeAllConnections();
    receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
