import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serviceLaunch } from './service-env.js';

/**
 * Issue #7 §3: end-to-end latency. A fake AMI server streams calls at a steady rate into the real
 * daemon (dist/cli.js run, durable outbox on) which posts to a receiver in this process; latency is
 * from the moment the server wrote the event that ends a call to the arrival of its webhook.
 * The stream starts the moment the daemon logs in, so its first second measures a cold process
 * (code not yet compiled, no connection to the CRM yet): that second is reported apart, as the
 * start-up figure, and the steady rate is measured over the seconds after it. The same stream into
 * latency-baseline.ts instead of the daemon gives the baseline.
 */
function call(seq: number): { start: string; end: string } {
  const id = `1800000000.${seq}`;
  const chan = `PJSIP/trunk-${seq.toString(16).padStart(8, '0')}`;
  const common = `Channel: ${chan}\r\nCallerIDNum: 05552221133\r\nCallerIDName: 05552221133\r\nContext: from-trunk\r\nExten: 02125550117\r\nUniqueid: ${id}\r\nLinkedid: ${id}\r\n`;
  return {
    start: `Event: Newchannel\r\nChannelState: 4\r\nChannelStateDesc: Ring\r\n${common}\r\n`,
    end: `Event: Hangup\r\nCause: 16\r\n${common}\r\n`,
  };
}

export interface LatencyResult {
  /** Steady rate, the calls after the warm-up second. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly calls: number;
  readonly received: number;
  /** The warm-up second: the first call's latency and that second's p99. */
  readonly startup: { readonly first: number; readonly p99: number; readonly calls: number };
  /**
   * The longest time this measuring process's own event loop stood still while calls streamed:
   * a stall here (the machine's neighbours) delays the stream and the arrival stamps alike, so a
   * tail that comes with one is the machine's, not the daemon's.
   */
  readonly benchStallMs: number;
}

/** `daemon`: the real `pbxhook run`; `baseline`: latency-baseline.ts, the least any process could do. */
export type LatencySubject = 'daemon' | 'baseline';

export async function latency(callsPerSecond: number, seconds: number, subject: LatencySubject = 'daemon', warmupSeconds = 1): Promise<LatencyResult> {
  const warmup = callsPerSecond * warmupSeconds;
  const total = warmup + callsPerSecond * seconds;
  const endSentAt = new Map<number, number>();
  const arrivals = new Map<number, number>();
  let allIn: () => void = () => undefined;
  const received = new Promise<void>((r) => (allIn = r));

  const receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const seq = Number(/_(\d+)-\d+"/.exec(body)?.[1]);
      if (!Number.isNaN(seq) && !arrivals.has(seq)) arrivals.set(seq, performance.now());
      res.writeHead(200, { 'content-length': '0' }).end();
      if (arrivals.size >= total) allIn();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const receiverPort = (receiver.address() as net.AddressInfo).port;

  let streaming: Promise<void> = Promise.resolve();
  let benchStallMs = 0;
  const ami = net.createServer((sock) => {
    sock.setNoDelay(true);
    sock.write('Asterisk Call Manager/11.0.0\r\n');
    sock.once('data', (d: Buffer) => {
      const id = /ActionID: (.*)\r\n/i.exec(String(d))?.[1];
      sock.write(`Response: Success\r\n${id ? `ActionID: ${id}\r\n` : ''}Message: Authentication accepted\r\n\r\n`);
      streaming = (async () => {
        const t0 = performance.now();
        let tick = t0;
        const probe = setInterval(() => {
          const now = performance.now();
          if (now - tick > benchStallMs) benchStallMs = now - tick;
          tick = now;
        }, 1);
        for (let i = 0; i < total; i++) {
          const due = t0 + (i * 1000) / callsPerSecond;
          const wait = due - performance.now();
          if (wait > 1) await new Promise((r) => setTimeout(r, wait));
          const c = call(i + 1);
          sock.write(c.start);
          sock.write(c.end);
          endSentAt.set(i + 1, performance.now());
        }
        await received;
        clearInterval(probe);
      })();
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => ami.listen(0, '127.0.0.1', r));
  const amiPort = (ami.address() as net.AddressInfo).port;

  const dir = mkdtempSync(join(tmpdir(), 'pbxhook-latency-'));
  writeFileSync(join(dir, 'webhooks.ini'), `[crm]\nschema = 3cx\nurl = http://127.0.0.1:${receiverPort}/3cx\n`);
  // event_filter off: this server answers no Filter action (a daemon waiting for the answer would
  // time its login out and reconnect mid-run); bench/latency-mix.ts measures the filter.
  writeFileSync(
    join(dir, 'pbxhook.yaml'),
    `pbx:\n  type: asterisk\n  host: 127.0.0.1\n  port: ${amiPort}\n  username: bench\n  secret: bench\n  event_filter: off\nstate_dir: ./state\nops:\n  enabled: false\nlog:\n  level: warn\nwebhooks: ./webhooks.ini\n`,
  );
  const args = subject === 'daemon' ? ['dist/cli.js', 'run', '--config', join(dir, 'pbxhook.yaml')] : ['dist-bench/bench/latency-baseline.js', String(amiPort), String(receiverPort)];
  // The daemon as the service runs it (the unit's node flags and environment); the baseline as a bare node process.
  const launch = subject === 'daemon' ? serviceLaunch() : { nodeArgs: [], env: {} };
  const child = spawn(process.execPath, [...launch.nodeArgs, ...args], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...launch.env } });
  const timeout = setTimeout(() => allIn(), (seconds + 30) * 1000);
  await received;
  clearTimeout(timeout);
  await streaming;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  ami.close();
  receiver.close();
  rmSync(dir, { recursive: true, force: true });

  const waited = (from: number, to: number): number[] => {
    const out: number[] = [];
    for (const [seq, at] of arrivals) if (seq > from && seq <= to) out.push(at - (endSentAt.get(seq) ?? at));
    return out.sort((a, b) => a - b);
  };
  const q = (lat: number[], p: number): number => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  const steady = waited(warmup, total);
  const cold = waited(0, warmup);
  const first = arrivals.get(1);
  return {
    p50: q(steady, 0.5),
    p99: q(steady, 0.99),
    max: steady.at(-1) ?? NaN,
    calls: total - warmup,
    received: steady.length,
    startup: { first: first === undefined ? NaN : first - (endSentAt.get(1) ?? first), p99: q(cold, 0.99), calls: warmup },
    benchStallMs,
  };
}
