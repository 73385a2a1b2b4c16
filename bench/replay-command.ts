import { spawnSync } from 'node:child_process';
import { closeSync, createReadStream, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { floorParse } from './floor.js';
import { repeatedLoad } from './inputs.js';
import { asteriskManager } from './replay.js';
import { interleaved, pairedRatios, type Spread } from './stats.js';

/**
 * Issue #15 item 1: `pbxhook replay BIG.ami --config … > /dev/null` timed as a user runs it, a
 * process from spawn to exit (start-up, reading the file, output), against the floor and
 * asterisk-manager run the same way: each a process of its own reading the same file.
 */

/** The lab's ring groups and one 3CX endpoint, as bench/replay.ts configures the in-process pipeline. */
const CONFIG = `pbx:
  type: asterisk
  host: 127.0.0.1
  port: 5038
  username: bench
  secret: bench
roles:
  ring_groups: ["830@internal", "831@internal"]
calls:
  timezone: UTC
  idle_timeout_seconds: 14400
webhooks: ./webhooks.ini
`;
const WEBHOOKS = `[crm]
url = http://127.0.0.1:9/3cx
schema = 3cx
variant = json
recording_url = https://pbx.example.com/recordings/{file}
`;

export interface CommandInput {
  readonly dir: string;
  readonly trace: string;
  readonly config: string;
  readonly close: () => void;
}

/** BIG.ami (the load trace `copies` times, as the in-process rows) and a config, in a temporary folder. */
export function writeCommandInput(copies: number): CommandInput {
  const dir = mkdtempSync(path.join(tmpdir(), 'pbxhook-bench-'));
  const trace = path.join(dir, 'BIG.ami');
  writeFileSync(trace, Buffer.concat(repeatedLoad(copies)));
  writeFileSync(path.join(dir, 'pbxhook.yaml'), CONFIG);
  writeFileSync(path.join(dir, 'webhooks.ini'), WEBHOOKS);
  return { dir, trace, config: path.join(dir, 'pbxhook.yaml'), close: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface ProcessTime {
  /** Wall time from spawn to exit. */
  readonly ms: number;
  /** CPU time (user + system) of the child and its threads: what neighbours on a busy machine disturb least. */
  readonly cpuMs: number;
}

/**
 * The CPU time of this process's waited-for children (Linux /proc/self/stat, `cutime` + `cstime`,
 * in clock ticks of 10 ms): a spawnSync'd child's share is the difference across the call.
 */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // cutime and cstime are fields 16 and 17 of the whole line: 14 and 15 after pid and (comm).
  return (Number(fields[13]) + Number(fields[14])) * 10;
}

/** One process, stdout to /dev/null as in `… > /dev/null`; throws on a failed run. */
export function timeProcess(args: readonly string[]): ProcessTime {
  const devNull = openSync('/dev/null', 'w');
  try {
    const cpu0 = childrenCpuMs();
    const t0 = performance.now();
    const r = spawnSync(process.execPath, args, { stdio: ['ignore', devNull, 'pipe'], timeout: 600_000, maxBuffer: 1 << 20 });
    const ms = performance.now() - t0;
    if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr.toString()}`);
    return { ms, cpuMs: childrenCpuMs() - cpu0 };
  } finally {
    closeSync(devNull);
  }
}

/** The floor as a program: read the file in 256 KB chunks (as replay does) and split every frame. */
export async function floorFile(file: string): Promise<{ events: number }> {
  let carry = '';
  let events = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 256 * 1024 })) {
    const r = floorParse(chunk as Buffer, carry);
    carry = r.carry;
    events += r.frames;
  }
  return { events };
}

/** asterisk-manager as a program: the file's bytes served on loopback to its parser, every event emitted. */
export async function asteriskManagerFile(file: string): Promise<{ events: number }> {
  const bytes = readFileSync(file);
  // serveAmi sends its own banner and login response in place of the trace's (the first buffer).
  const first = bytes.indexOf('Event: ');
  return asteriskManager([bytes.subarray(0, first), bytes.subarray(first)], countEvents(bytes));
}

/** Event frames in a trace (their first line), counted natively: the program must know when it has seen them all. */
function countEvents(bytes: Buffer): number {
  const needle = Buffer.from('\nEvent: ');
  let n = 0;
  for (let at = bytes.indexOf(needle); at >= 0; at = bytes.indexOf(needle, at + needle.length)) n++;
  return n;
}

export interface CommandRatios {
  readonly command: ProcessTime[];
  readonly floor: ProcessTime[];
  readonly asteriskManager: ProcessTime[];
  /** floor time / command time, per round: ≥ 1 means the command is at least as fast as the floor. */
  readonly vsFloor: Spread;
  readonly vsAsteriskManager: Spread;
  /** The same ratios of CPU time (user + system), from the same runs. */
  readonly vsFloorCpu: Spread;
  readonly vsAsteriskManagerCpu: Spread;
  /** `pbxhook --help`, paired with `node -e ''`: the start-up every command pays. */
  readonly help: ProcessTime[];
  readonly bareNode: ProcessTime[];
  readonly startup: Spread;
}

const wall = (ts: ProcessTime[]): number[] => ts.map((t) => t.ms);
const cpu = (ts: ProcessTime[]): number[] => ts.map((t) => t.cpuMs);

/** Paired, interleaved rounds of the three programs; `child` is bench/child.js, `cli` dist/cli.js. */
export async function replayCommand(rounds: number, copies: number, cli: string, child: string, log: (s: string) => void): Promise<CommandRatios> {
  const input = writeCommandInput(copies);
  try {
    const command = (): ProcessTime => timeProcess([cli, 'replay', input.trace, '--config', input.config]);
    const floor = (): ProcessTime => timeProcess([child, 'floor-file', input.trace]);
    const am = (): ProcessTime => timeProcess([child, 'asterisk-manager-file', input.trace]);
    const vsFloor = await interleaved(rounds, command, floor);
    const vsAm = await interleaved(rounds, command, am);
    const startup = await interleaved(Math.max(5, rounds), () => timeProcess([cli, '--help']), () => timeProcess(['-e', '']));
    const show = (t: ProcessTime): string => `${Math.round(t.ms)} ms (cpu ${Math.round(t.cpuMs)})`;
    for (let i = 0; i < rounds; i++) {
      log(`round ${i + 1} command ${show(vsFloor.a[i]!)}, floor ${show(vsFloor.b[i]!)}; command ${show(vsAm.a[i]!)}, asterisk-manager ${show(vsAm.b[i]!)}`);
    }
    log(`--help ${startup.a.map(show).join(', ')}; node -e '' ${startup.b.map(show).join(', ')}`);
    return {
      command: [...vsFloor.a, ...vsAm.a],
      floor: vsFloor.b,
      asteriskManager: vsAm.b,
      vsFloor: pairedRatios(wall(vsFloor.b), wall(vsFloor.a)),
      vsAsteriskManager: pairedRatios(wall(vsAm.b), wall(vsAm.a)),
      vsFloorCpu: pairedRatios(cpu(vsFloor.b), cpu(vsFloor.a)),
      vsAsteriskManagerCpu: pairedRatios(cpu(vsAm.b), cpu(vsAm.a)),
      help: startup.a,
      bareNode: startup.b,
      startup: pairedRatios(wall(startup.a), wall(startup.b)),
    };
  } finally {
    input.close();
  }
}
