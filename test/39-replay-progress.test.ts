/**
 * `pbxhook replay`'s progress bar (issue #6): drawn on stderr only for a person at a terminal,
 * at most ~10 times a second, and erased so that what stays on screen is exactly the webhook
 * lines. Pipes and files must get the same bytes as ever.
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { EventEmitter } from 'node:events';
import { StdoutLines } from '../src/commands/stdout-lines.js';
import { BAR_MIN_BYTES, formatBytes, formatElapsed, progressBar, StatusLine, wantsProgressBar } from '../src/progress.js';
import { ptyAvailable, runInPty } from './support/pty.js';
import { requires } from './support/requires.js';

/** A terminal for the child: util-linux `script` (test/support/pty.ts). */
const terminalNeeded = requires('util-linux script', ptyAvailable(), 'apt-get install bsdutils');

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = path.join(ROOT, 'dist/cli.js');
/** The one bundled trace above BAR_MIN_BYTES. */
const BIG = 'test/fixtures/freeswitch/load.esl.gz';
const SMALL = 'test/fixtures/freeswitch/in-queue-answered.esl';
const CONFIG = 'config/freeswitch-lab.example.yaml';
const ERASE = '\r\x1b[K';

function env(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PBXHOOK_')));
}

describe('the texts', () => {
  it('sizes in decimal units, durations in the largest units', () => {
    expect([999, 1_000, 12_345, 1_234_567, 38_302_599, 5e12].map(formatBytes)).toEqual(['999 B', '1.0 kB', '12 kB', '1.2 MB', '38 MB', '5.0 TB']);
    expect([0, 4_000, 312_000, 3_720_000].map(formatElapsed)).toEqual(['0s', '4s', '5m12s', '1h02m']);
  });

  it('the bar: fraction of the file, bytes, events, calls, within the width', () => {
    const bar = progressBar({ bytes: 19_000_000, total: 38_000_000, events: 1234, calls: 1 }, 80);
    expect(bar).toBe('[###############...............]   50%  19 MB / 38 MB  1,234 events  1 call');
    expect(bar.length).toBeLessThan(80);
    expect(progressBar({ bytes: 0, total: 2e6, events: 0, calls: 0 }, 80)).toMatch(/^\[\.{30}\]    0%/);
    expect(progressBar({ bytes: 3e6, total: 2e6, events: 0, calls: 0 }, 80)).toMatch(/^\[#{30}\]  100%/);
    // Too narrow for a bar: the numbers alone, cut to fit.
    const narrow = progressBar({ bytes: 1e6, total: 2e6, events: 5, calls: 2 }, 30);
    expect(narrow.length).toBeLessThan(30);
    expect(narrow.startsWith(' 50%')).toBe(true);
  });
});

describe('when there is a bar', () => {
  it.each([
    [true, true, BAR_MIN_BYTES + 1, true],
    [false, true, BAR_MIN_BYTES + 1, false], // stdout piped or redirected: the bytes must not change
    [true, false, BAR_MIN_BYTES + 1, false], // stderr to a log file: no \r and escape codes in it
    [true, true, BAR_MIN_BYTES, false], // a small trace is done before a bar could say anything
  ])('stdout TTY %s, stderr TTY %s, %i bytes → %s', (stdoutTTY, stderrTTY, traceBytes, want) => {
    expect(wantsProgressBar({ stdoutTTY, stderrTTY, traceBytes })).toBe(want);
  });

  it('redraws at most once per interval, never before the first one, and erases only what it drew', () => {
    let t = 1_000;
    const written: string[] = [];
    const out = { columns: 40, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
    const line = new StatusLine(out, 100, () => t);
    line.clear(); // nothing drawn: nothing to erase
    line.update(() => 'a');
    t += 99;
    line.update(() => 'b');
    expect(written).toEqual([]);
    t += 1;
    line.update(() => 'c');
    t += 50;
    line.update(() => 'd');
    line.update(() => 'x'.repeat(100), true);
    line.clear();
    line.clear();
    expect(written).toEqual([`${ERASE}c`, `${ERASE}${'x'.repeat(39)}`, ERASE]);
  });
});

/** A stdout that records each write; `fail` makes the next write fail as a closed pipe does. */
function fakeStdout(): { out: NodeJS.WriteStream; writes: string[]; fail: () => void } {
  const writes: string[] = [];
  let broken = false;
  const out = Object.assign(new EventEmitter(), {
    errored: null as Error | null,
    writableNeedDrain: false,
    write(s: string) {
      if (broken) out.errored = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
      else writes.push(s);
      return true;
    },
  });
  return { out: out as unknown as NodeJS.WriteStream, writes, fail: () => (broken = true) };
}

// Issue #15: one write per line was 12 % of a replay; the lines now go out in large writes.
describe('replay output', () => {
  const line = (i: number): string => `{"endpoint":"crm","n":${i},"body":"${'x'.repeat(200)}"}\n`;

  it('the same bytes in the same order, in far fewer writes than lines, erasing the bar before each', () => {
    const { out, writes } = fakeStdout();
    const order: string[] = [];
    const lines = new StdoutLines(out, () => order.push(`clear before write ${writes.length}`));
    const want: string[] = [];
    for (let i = 0; i < 2_000; i++) {
      want.push(line(i));
      lines.write(line(i));
    }
    expect(lines.drained()).toBeUndefined();
    expect(writes.join('')).toBe(want.join(''));
    expect(writes.length).toBeLessThan(20);
    expect(order).toEqual(writes.map((_, i) => `clear before write ${i}`));
    lines.flush(); // nothing waiting: nothing written, nothing erased
    expect(order).toHaveLength(writes.length);
  });

  it('a reader that left (EPIPE) stops the replay quietly; nothing more is written', () => {
    const { out, writes, fail } = fakeStdout();
    const lines = new StdoutLines(out);
    lines.write(line(0));
    lines.flush();
    fail();
    lines.write(line(1));
    expect(lines.signal.aborted).toBe(false); // still waiting in memory
    lines.flush();
    expect(lines.signal.aborted).toBe(true);
    expect(lines.failure).toBeUndefined();
    lines.write(line(2));
    lines.flush();
    expect(writes).toEqual([line(0)]);
  });
});

describe.skipIf(terminalNeeded.skip)(`pbxhook replay on a terminal${terminalNeeded.note}`, () => {
  beforeAll(() => terminalNeeded.check());
  const replay = (trace: string, pipeTo?: string) =>
    runInPty([process.execPath, CLI, 'replay', trace, '--config', CONFIG], env(), pipeTo === undefined ? {} : { pipeTo });
  const plain = (trace: string) => spawnSync(process.execPath, [CLI, 'replay', trace, '--config', CONFIG], { cwd: ROOT, env: env(), encoding: 'utf8' });

  it(`shows a bar for a trace over ${BAR_MIN_BYTES} bytes and erases it: what stays is the webhook lines`, async () => {
    expect(statSync(path.join(ROOT, BIG)).size).toBeGreaterThan(BAR_MIN_BYTES);
    const r = await replay(BIG);
    expect(r.status).toBe(0);
    const bars = [...r.output.matchAll(/\r\x1b\[K(\[[#.]+\][^\r]*)/g)].map((m) => m[1]!);
    expect(bars.length).toBeGreaterThan(0);
    for (const bar of bars) expect(bar).toMatch(/^\[[#.]{30}\] +\d+%  [\d.]+ [kM]B \/ 1\.3 MB  [\d,]+ events?  [\d,]+ calls?$/);
    // Every bar is followed by its erasure before anything else is written.
    const screen = r.output.replace(/\r\x1b\[K\[[^\r]*\r\x1b\[K/g, '').replace(/\r\n/g, '\n');
    expect(screen).not.toContain('\x1b');
    const want = plain(BIG);
    expect(want.status).toBe(0);
    const lines = screen.split('\n').filter((l) => l !== '');
    expect(lines.at(-1)).toContain('"msg":"replay finished"'); // the log line, after the bar is gone
    expect(lines.slice(0, -1).join('\n') + '\n').toBe(want.stdout);
  });

  it('shows no bar when stdout is piped, even with stderr on the terminal', async () => {
    const r = await replay(BIG, 'wc -c');
    expect(r.status).toBe(0);
    expect(r.output).not.toContain('\x1b');
    expect(r.output).toContain(`${Buffer.byteLength(plain(BIG).stdout)}\r\n`);
  });

  // Issue #12: a reader that leaves early ends the replay quietly, the terminal shows no EPIPE.
  it('piped into `head -n 1`, stderr on the terminal: the first line and the stopped-early summary, exit 0', async () => {
    const pipeline = 'set -o pipefail; "$0" "$@" | head -n 1';
    const r = await runInPty(['bash', '-c', pipeline, process.execPath, CLI, 'replay', BIG, '--config', CONFIG], env());
    expect(r.status, r.output).toBe(0);
    expect(r.output).not.toContain('\x1b');
    expect(r.output).not.toContain('EPIPE');
    const lines = r.output.split('\r\n').filter((l) => l !== '');
    expect(lines, r.output).toHaveLength(2);
    expect(lines).toContain(plain(BIG).stdout.split('\n')[0]);
    expect(lines.find((l) => l.includes('"msg":"replay stopped early: stdout was closed by its reader"'))).toContain('"stoppedEarly":true');
  });

  it('shows no bar for a small trace', async () => {
    const r = await replay(SMALL);
    expect(r.status).toBe(0);
    expect(r.output).not.toContain('\x1b');
  });
});
