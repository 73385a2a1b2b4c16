import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { amiSessionFilter } from '../src/ami/event-filter.js';
import { serviceLaunch } from './service-env.js';

/**
 * Issue #15: end-to-end latency under the real traces' event mix. A call on a real Asterisk is
 * ~150 AMI events with `read=all` (the lab's load trace), ~775 on FreePBX (its load trace), not
 * the 2 of bench/latency.ts. This server streams a load trace's events, evenly, at the rate that
 * makes `callsPerSecond` of its calls (copies renumbered so every call is new), into the real
 * daemon; among them it writes a probe call (Newchannel, Hangup) every `probeEveryMs`, and the
 * latency is from the write of a probe's Hangup to the arrival of its webhook: the daemon reads
 * in order, so a probe waits behind everything the mix put before it.
 *
 * With `filter`, the daemon's Filter action (pbx.event_filter: auto) is answered as Asterisk does
 * and the server then writes only the events it matches (decided once per template event): the
 * same calls, the same time slots, fewer bytes. Without it the daemon is configured `off`.
 */
export type Mix = 'vanilla' | 'freepbx';

const TRACES: Record<Mix, string> = {
  vanilla: 'test/fixtures/asterisk/load.ami.gz',
  freepbx: 'test/fixtures/asterisk-freepbx/fpbx-load.ami.gz',
};

export interface MixLatencyResult {
  readonly mix: Mix;
  readonly filter: boolean;
  readonly callsPerSecond: number;
  /** AMI events written per second (the mix's, filtered or not, plus the probes). */
  readonly eventsPerSecond: number;
  readonly megabytesPerSecond: number;
  /** Probes after the warm-up: latency percentiles, ms. */
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly probes: number;
  /** Probes whose webhook arrived by `drainSeconds` after the stream; fewer than `probes`: saturated (percentiles are of those that arrived). */
  readonly received: number;
  /** All webhooks that arrived (probes and the mix's calls). */
  readonly webhooks: number;
  /** How far behind its schedule the server fell at worst (its own stalls or backpressure), ms. */
  readonly serverLagMs: number;
  /** CPU the daemon used, start-up to the last probe (user + system, from /proc), ms; NaN elsewhere. */
  readonly daemonCpuMs: number;
  /** The same from its login (start-up left out) per call streamed, probes counted as calls. */
  readonly cpuMsPerCall: number;
  /** Seconds streamed (warm-up included). */
  readonly seconds: number;
}

/** utime + stime of a process, ms (Linux /proc; clock ticks of 10 ms). */
function cpuMs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}

/**
 * A load trace laid out for streaming: the messages after its login answer back to back in
 * `whole`, `starts[k]` the offset of template message k (`starts[n]` the end), and where each
 * 10-digit epoch second of a Uniqueid/Linkedid/Timestamp value sits, to renumber a copy in place.
 * The filtered layout holds only the messages the filter passes, `starts` still by template index.
 */
interface Layout {
  readonly whole: Buffer;
  readonly starts: Int32Array;
  readonly offsets: Int32Array;
  readonly values: Float64Array;
}

interface Template {
  readonly all: Layout;
  readonly passing: Layout;
  /** Template messages (the pacing counts these, filtered or not). */
  readonly messages: number;
  readonly calls: number;
  /** Seconds each copy is shifted by: more than the trace's span, so copies never share an id. */
  readonly shift: number;
}

const SECONDS = /^(?:\w*(?:uniqueid|linkedid)|Timestamp): (\d{10})\./gim;

function layout(bodies: readonly string[], keep: (k: number) => boolean): Layout {
  const starts = new Int32Array(bodies.length + 1);
  const parts: Buffer[] = [];
  const offsets: number[] = [];
  const values: number[] = [];
  let pos = 0;
  bodies.forEach((body, k) => {
    starts[k] = pos;
    if (!keep(k)) return;
    for (const m of body.matchAll(SECONDS)) {
      offsets.push(pos + m.index + m[0].length - 11);
      values.push(Number(m[1]));
    }
    const b = Buffer.from(body, 'latin1');
    parts.push(b);
    pos += b.length;
  });
  starts[bodies.length] = pos;
  return { whole: Buffer.concat(parts), starts, offsets: Int32Array.from(offsets), values: Float64Array.from(values) };
}

function template(mix: Mix): Template {
  const text = gunzipSync(readFileSync(TRACES[mix])).toString('latin1');
  // Banner, login answer and trailing bytes are not the mix.
  const bodies = text.split('\r\n\r\n').filter((p) => p.startsWith('Event:')).map((p) => `${p}\r\n\r\n`);
  // The daemon's config has no roles: the filter it asks for. `s`: POSIX `.` spans lines too.
  const filter = new RegExp(amiSessionFilter(), 's');
  const passes = bodies.map((b) => filter.test(b));
  const all = layout(bodies, () => true);
  const linked = new Set(bodies.filter((b) => b.startsWith('Event: Newchannel')).map((b) => /\r\nLinkedid: (\S+)/.exec(b)?.[1]));
  const lo = Math.min(...all.values);
  const hi = Math.max(...all.values);
  return { all, passing: layout(bodies, (k) => passes[k]!), messages: bodies.length, calls: linked.size, shift: Math.ceil(hi - lo + 60) };
}

/** Copy `n` of a layout: every epoch second moved `n × shift` on (same width, so same offsets). */
function copyOf(l: Layout, n: number, shift: number): Buffer {
  if (n === 0) return l.whole;
  const out = Buffer.from(l.whole);
  const delta = n * shift;
  for (let j = 0; j < l.offsets.length; j++) out.write(String(l.values[j]! + delta), l.offsets[j]!, 10, 'latin1');
  return out;
}

function probe(seq: number): { start: Buffer; end: Buffer } {
  const id = `1900000000.${seq}`;
  const chan = `PJSIP/probe-${seq.toString(16).padStart(8, '0')}`;
  const common = `Channel: ${chan}\r\nCallerIDNum: 0777${String(seq).padStart(7, '0')}\r\nCallerIDName: probe\r\nContext: from-trunk\r\nExten: 02125550117\r\nUniqueid: ${id}\r\nLinkedid: ${id}\r\n`;
  return {
    start: Buffer.from(`Event: Newchannel\r\nChannelState: 4\r\nChannelStateDesc: Ring\r\n${common}\r\n`),
    end: Buffer.from(`Event: Hangup\r\nCause: 16\r\n${common}\r\n`),
  };
}

export interface MixLatencyOptions {
  readonly mix: Mix;
  readonly callsPerSecond: number;
  readonly filter: boolean;
  /** Measured seconds, after `warmupSeconds`. */
  readonly seconds: number;
  readonly warmupSeconds?: number;
  readonly probeEveryMs?: number;
  /** Probes not in by this long after the stream ends count as not received. */
  readonly drainSeconds?: number;
}

export async function mixLatency(o: MixLatencyOptions): Promise<MixLatencyResult> {
  const t = template(o.mix);
  const warmup = o.warmupSeconds ?? 1;
  const probeEvery = o.probeEveryMs ?? 20;
  const total = warmup + o.seconds;
  const rate = (o.callsPerSecond * t.messages) / t.calls; // template messages per second
  const count = Math.ceil(rate * total);

  const probes = Math.floor((total * 1000) / probeEvery);
  const endSentAt = new Map<number, number>();
  const arrivals = new Map<number, number>();
  let webhooks = 0;
  let allIn: () => void = () => undefined;
  const received = new Promise<void>((r) => (allIn = r));
  const receiver = http.createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      webhooks++;
      const seq = /0777(\d{7})/.exec(Buffer.concat(parts).toString('latin1'))?.[1];
      if (seq !== undefined && !arrivals.has(Number(seq))) arrivals.set(Number(seq), performance.now());
      res.writeHead(200, { 'content-length': '0' }).end();
      if (arrivals.size >= probes) allIn();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const receiverPort = (receiver.address() as net.AddressInfo).port;

  let written = 0;
  let bytes = 0;
  let serverLagMs = 0;
  let streamed: () => void = () => undefined;
  const streamDone = new Promise<void>((r) => (streamed = r));
  let childPid: number | undefined;
  let cpuAtLogin = NaN;
  const stream = (sock: net.Socket, filtered: boolean): void => {
    cpuAtLogin = cpuMs(childPid);
    const l = filtered ? t.passing : t.all;
    let copy = -1;
    let copyBuf = l.whole;
    const t0 = performance.now();
    let i = 0;
    let p = 0;
    const step = (): void => {
      const now = performance.now() - t0;
      const due = Math.min(count, Math.floor((now / 1000) * rate));
      const ends: number[] = [];
      sock.cork();
      while (i < due) {
        const n = Math.floor(i / t.messages);
        if (n !== copy) {
          copy = n;
          copyBuf = copyOf(l, n, t.shift);
        }
        const to = Math.min(due, (n + 1) * t.messages);
        const piece = copyBuf.subarray(l.starts[i - n * t.messages]!, l.starts[to - n * t.messages]!);
        if (piece.length > 0) sock.write(piece);
        bytes += piece.length;
        for (let k = i; k < to; k++) if (!filtered || l.starts[k - n * t.messages + 1]! > l.starts[k - n * t.messages]!) written++;
        i = to;
      }
      const probesDue = Math.min(probes, Math.floor(now / probeEvery) + 1);
      for (; p < probesDue; p++) {
        const c = probe(p + 1);
        sock.write(c.start);
        sock.write(c.end);
        bytes += c.start.length + c.end.length;
        written += 2;
        ends.push(p + 1);
      }
      sock.uncork();
      const at = performance.now();
      for (const seq of ends) endSentAt.set(seq, at);
      // Behind its schedule: this process (the machine's neighbours) or the socket held it back.
      const lag = at - t0 - (i / rate) * 1000;
      if (i < count && lag > serverLagMs) serverLagMs = lag;
      if (i >= count && p >= probes) return streamed();
      // A full socket buffer waits for drain: the daemon not reading is latency, never loss.
      if (sock.writableNeedDrain) sock.once('drain', () => setTimeout(step, 1));
      else setTimeout(step, 1);
    };
    step();
  };

  const ami = net.createServer((sock) => {
    sock.setNoDelay(true);
    sock.write('Asterisk Call Manager/11.0.0\r\n');
    let seen = '';
    let phase: 'login' | 'filter' | 'streaming' = 'login';
    sock.on('data', (d: Buffer) => {
      if (phase === 'streaming') return;
      seen += d.toString('latin1');
      for (let end = seen.indexOf('\r\n\r\n'); end >= 0; end = seen.indexOf('\r\n\r\n')) {
        const action = seen.slice(0, end);
        seen = seen.slice(end + 4);
        const id = /actionid: (.*)/i.exec(action)?.[1]?.trim();
        const answer = (msg: string): boolean => sock.write(`Response: Success\r\n${id ? `ActionID: ${id}\r\n` : ''}Message: ${msg}\r\n\r\n`);
        if (phase === 'login') {
          answer('Authentication accepted');
          phase = o.filter ? 'filter' : 'streaming';
          if (!o.filter) stream(sock, false);
        } else if (/^action: filter/im.test(action)) {
          answer('Filter Added Successfully');
          phase = 'streaming';
          stream(sock, true);
        }
      }
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => ami.listen(0, '127.0.0.1', r));
  const amiPort = (ami.address() as net.AddressInfo).port;

  // The shipped default (info: a 'webhook delivered' line per webhook) unless BENCH_LATENCY_LOG_LEVEL says.
  const logLevel = process.env['BENCH_LATENCY_LOG_LEVEL'] ?? 'info';
  const dir = mkdtempSync(join(tmpdir(), 'pbxhook-latency-mix-'));
  writeFileSync(join(dir, 'webhooks.ini'), `[crm]\nschema = 3cx\nurl = http://127.0.0.1:${receiverPort}/3cx\n`);
  writeFileSync(
    join(dir, 'pbxhook.yaml'),
    `pbx:\n  type: asterisk\n  host: 127.0.0.1\n  port: ${amiPort}\n  username: bench\n  secret: bench\n  event_filter: ${o.filter ? 'auto' : 'off'}\n` +
      `state_dir: ./state\nops:\n  enabled: false\nlog:\n  level: ${logLevel}\nwebhooks: ./webhooks.ini\n`,
  );
  const launch = serviceLaunch();
  // BENCH_DAEMON_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof": profile the daemon of a run.
  const extra = (process.env['BENCH_DAEMON_NODE_ARGS'] ?? '').split(/\s+/).filter(Boolean);
  const child = spawn(process.execPath, [...launch.nodeArgs, ...extra, 'dist/cli.js', 'run', '--config', join(dir, 'pbxhook.yaml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...launch.env },
  });
  // Its log is read from a pipe, as journald reads the service's; only warnings and worse are shown.
  let logTail = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    const lines = (logTail + d).split('\n');
    logTail = lines.pop() ?? '';
    for (const line of lines) if (!/^\{"level":[1-3]\d,/.test(line)) process.stderr.write(line + '\n');
  });
  childPid = child.pid;
  await streamDone;
  const timeout = setTimeout(() => allIn(), (o.drainSeconds ?? 10) * 1000);
  await received;
  clearTimeout(timeout);
  const daemonCpuMs = cpuMs(child.pid);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  ami.close();
  receiver.close();
  rmSync(dir, { recursive: true, force: true });

  const firstMeasured = Math.floor((warmup * 1000) / probeEvery);
  const lat: number[] = [];
  for (const [seq, at] of arrivals) if (seq > firstMeasured) lat.push(at - (endSentAt.get(seq) ?? at));
  // BENCH_LATENCY_DUMP=FILE: each probe's send time and latency (ms), to see whether a tail is one stall or many.
  const dump = process.env['BENCH_LATENCY_DUMP'];
  if (dump) writeFileSync(dump, [...arrivals].map(([seq, at]) => `${seq} ${(endSentAt.get(seq)! - (endSentAt.get(1) ?? 0)).toFixed(1)} ${(at - endSentAt.get(seq)!).toFixed(2)}`).join('\n') + '\n');
  lat.sort((a, b) => a - b);
  const q = (p: number): number => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  const measured = probes - firstMeasured;
  return {
    mix: o.mix,
    filter: o.filter,
    callsPerSecond: o.callsPerSecond,
    eventsPerSecond: Math.round(written / total),
    megabytesPerSecond: Math.round(bytes / total / 1e5) / 10,
    p50: q(0.5),
    p99: q(0.99),
    max: lat.at(-1) ?? NaN,
    probes: measured,
    received: lat.length,
    webhooks,
    serverLagMs: Math.round(serverLagMs),
    daemonCpuMs,
    cpuMsPerCall: Math.round(((daemonCpuMs - cpuAtLogin) / (o.callsPerSecond * total + probes)) * 100) / 100,
    seconds: total,
  };
}
