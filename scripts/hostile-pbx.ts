/**
 * Hostile PBX bytes against the live clients (issue #14 item 4), through the test fake servers:
 * `npx tsx scripts/hostile-pbx.ts` runs every case in a child process of its own (a crash must not
 * end the others) and prints one line per case: did the client survive, did the next real event
 * get through, how long the event loop stood still at worst, how much memory it took.
 * `npx tsx scripts/hostile-pbx.ts CASE` runs one case in this process. It uses only the clients'
 * public interface (the ingest: connect, and reconnect after a lost connection), so the same script
 * measured asterisk-manager/modesl before and the framers after. The real event is written again
 * every half second until it arrives, so a client that reconnects is measured to its first event after.
 */
import { spawnSync } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import pino from 'pino';
import { startAmiIngest } from '../src/ami/ingest.js';
import { startEslIngest } from '../src/esl/ingest.js';
import { startFakeAmi } from '../test/support/fakeAmiServer.js';
import { startFakeEsl } from '../test/support/fakeEslServer.js';

const MB = 1024 * 1024;
/** A case still running after this long is reported as frozen. */
const LIMIT_MS = Number(process.env['HOSTILE_LIMIT_MS'] ?? 60_000);

const AMI_EVENT = 'Event: Newchannel\r\nChannel: PJSIP/117-00000001\r\nUniqueid: 1800000000.1\r\nLinkedid: 1800000000.1\r\n\r\n';
/** AMI junk: `size` bytes of header lines with no blank line, then the blank line that ends it. */
const amiNoBlank = (size: number): string => ('X-Junk: ' + 'a'.repeat(62) + '\r\n').repeat(Math.ceil(size / 72)) + '\r\n';

function eslPlain(text: string): string {
  return `Content-Length: ${Buffer.byteLength(text)}\nContent-Type: text/event-plain\n\n${text}`;
}
const ESL_EVENT = eslPlain('Event-Name: CHANNEL_CREATE\nUnique-ID: real-call-1\nEvent-Date-Timestamp: 1795400000000000\n\n');

interface Case {
  readonly pbx: 'ami' | 'esl';
  /** The hostile bytes, written in one go before a real event. */
  bytes(): string | Buffer;
}

const CASES: Record<string, Case> = {
  'ami-actionid-error': { pbx: 'ami', bytes: () => 'Response: Success\r\nActionID: error\r\nMessage: hello\r\n\r\n' },
  'ami-no-blank-1mb': { pbx: 'ami', bytes: () => amiNoBlank(1 * MB) },
  'ami-no-blank-4mb': { pbx: 'ami', bytes: () => amiNoBlank(4 * MB) },
  'ami-no-blank-1mb-short-lines': { pbx: 'ami', bytes: () => 'x\r\n'.repeat(MB / 3) + '\r\n' },
  'ami-256k-tiny-frames': { pbx: 'ami', bytes: () => 'A: b\r\n\r\n'.repeat(256 * 1024) },
  'esl-no-body': { pbx: 'esl', bytes: () => 'Content-Type: text/event-plain\n\n' },
  'esl-256k-tiny-frames': { pbx: 'esl', bytes: () => 'A: b\n\n'.repeat(256 * 1024) },
  'esl-content-length-2e9': { pbx: 'esl', bytes: () => 'Content-Type: text/event-plain\nContent-Length: 2000000000\n\n' },
  'esl-no-blank-4mb': { pbx: 'esl', bytes: () => ('X-Junk: ' + 'a'.repeat(62) + '\n').repeat((4 * MB) / 71) + '\n' },
};

interface Outcome {
  readonly case: string;
  /** The client reported the next real event. */
  readonly nextEvent: boolean;
  /** Connected at the end (after a reconnect, for a client that makes one). */
  readonly status: string;
  /** From the hostile bytes' write to the real event's arrival (or the limit). */
  readonly ms: number;
  /** The event loop's longest stall while the bytes were read. */
  readonly maxStallMs: number;
  readonly rssMb: number;
  readonly heapMb: number;
}

const quiet = pino({ level: 'silent' });

async function runCase(name: string): Promise<Outcome> {
  const c = CASES[name];
  if (!c) throw new Error(`unknown case ${name}; one of ${Object.keys(CASES).join(', ')}`);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  let seen = false;
  let connected: () => boolean;
  let close: () => Promise<void>;
  let send: (b: string | Buffer) => void;
  let stop: () => Promise<void>;
  if (c.pbx === 'ami') {
    const server = await startFakeAmi({ trace: Buffer.from('Asterisk Call Manager/11.0.0\r\n'), username: 'u', secret: 's' });
    const res = startAmiIngest(
      { type: 'asterisk', host: '127.0.0.1', port: server.port, username: 'u', secret: 's' },
      (f) => void (f.fields['uniqueid'] === '1800000000.1' && (seen = true)),
      quiet,
    );
    await res.ready;
    connected = () => res.connected;
    close = () => res.close();
    send = (b) => server.send(b);
    stop = () => server.close();
  } else {
    const server = await startFakeEsl({ trace: Buffer.alloc(0), password: 'p' });
    const res = startEslIngest(
      { type: 'freeswitch', host: '127.0.0.1', port: server.port, password: 'p' },
      (f) => void (f.body.includes('real-call-1') && (seen = true)),
      quiet,
    );
    await res.ready;
    connected = () => res.connected;
    close = () => res.close();
    send = (b) => server.send(b);
    stop = () => server.close();
  }
  loop.enable();
  const t0 = performance.now();
  send(c.bytes());
  const real = c.pbx === 'ami' ? AMI_EVENT : ESL_EVENT;
  send(real);
  for (let n = 1; !seen && performance.now() - t0 < LIMIT_MS; n++) {
    await new Promise((r) => setTimeout(r, 20));
    if (n % 25 === 0 && !seen) send(real);
  }
  const ms = performance.now() - t0;
  loop.disable();
  const mem = process.memoryUsage();
  const out: Outcome = {
    case: name, nextEvent: seen, status: connected() ? 'connected' : 'disconnected', ms: Math.round(ms), maxStallMs: Math.round(loop.max / 1e6),
    rssMb: Math.round(mem.rss / MB), heapMb: Math.round(mem.heapUsed / MB),
  };
  await Promise.race([close(), new Promise((r) => setTimeout(r, 500))]);
  await stop();
  return out;
}

const only = process.argv[2];
if (only) {
  runCase(only).then(
    (o) => (process.stdout.write(JSON.stringify(o) + '\n'), process.exit(0)),
    (err: unknown) => (process.stderr.write(String(err instanceof Error ? err.stack : err) + '\n'), process.exit(1)),
  );
} else {
  for (const name of Object.keys(CASES)) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', process.argv[1]!, name], {
      encoding: 'utf8', timeout: LIMIT_MS + 30_000, maxBuffer: 16 * MB,
    });
    const line = r.stdout.trim().split('\n').at(-1) ?? '';
    if (r.status === 0 && line.startsWith('{')) console.log(line);
    else if (r.error) console.log(JSON.stringify({ case: name, outcome: `killed: ${r.error.message}` }));
    else {
      const why = (r.stderr.split('\n').find((l) => /Error|error|RangeError/.test(l)) ?? r.stderr.slice(0, 200)).trim();
      console.log(JSON.stringify({ case: name, outcome: `crashed (exit ${r.status ?? r.signal})`, why }));
    }
  }
}
