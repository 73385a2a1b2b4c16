/**
 * `pbxhook record --config FILE -o OUT [--seconds N]`: saves a live PBX session as a trace that
 * `pbxhook replay` reads (issue #6). Progress and the summary go to stderr; stdout stays silent.
 */
import { closeSync, openSync, rmSync } from 'node:fs';
import { optionList, parseCommandArgs } from './args.js';
import { loadConfig } from './config/load.js';
import type { PbxConfig } from './config/types.js';
import { describeCounts, formatElapsed, StatusLine } from './progress.js';
import { type RecordProgress, recordTrace } from './record.js';

const EX_USAGE = 64;
/** sysexits.h: the PBX could not be reached. */
const EX_UNAVAILABLE = 69;
/** sysexits.h: the output file could not be created. */
const EX_CANTCREAT = 73;
/** sysexits.h: the PBX refused the login. */
const EX_NOPERM = 77;

const RECORD_OPTIONS = {
  config: { type: 'string', short: 'c', value: 'FILE' },
  output: { type: 'string', short: 'o', value: 'OUT' },
  seconds: { type: 'string', value: 'N' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export const RECORD_USAGE = `Usage: pbxhook record --config FILE -o OUT [--seconds N]
  Saves what the PBX of FILE sends on one connection as a trace for pbxhook replay:
  OUT ends in .ami (pbx.type asterisk) or .esl (freeswitch). The login and its secret are never
  saved. Stops after N seconds, or on Ctrl-C / SIGTERM; progress goes to stderr.
Options: ${optionList(RECORD_OPTIONS)}`;

/** Non-TTY stderr (journald, a log file) gets a progress line this often instead of every second. */
const LOG_EVERY_MS = 5_000;

const EXTENSION: Record<PbxConfig['type'], string> = { asterisk: '.ami', freeswitch: '.esl' };

/** A trace is replayed by its file name, so a mismatched name would replay with the wrong framer. */
export function extensionProblem(pbx: PbxConfig['type'], out: string): string | undefined {
  const want = EXTENSION[pbx];
  if (out.endsWith(want)) return undefined;
  const what = pbx === 'asterisk' ? 'an AMI session' : 'a FreeSWITCH event socket session';
  return `pbx.type is ${pbx}, so the trace is ${what} and its name must end in ${want} (got ${out})`;
}

export async function runRecordCommand(argv: readonly string[], stderr: NodeJS.WriteStream = process.stderr): Promise<number> {
  const { values } = parseCommandArgs('record', RECORD_OPTIONS, argv);
  if (values.help) {
    process.stdout.write(`${RECORD_USAGE}\n`);
    return 0;
  }
  const usage = (why: string): number => {
    stderr.write(`pbxhook record: ${why}\n${RECORD_USAGE}\n`);
    return EX_USAGE;
  };
  if (values.config === undefined) return usage('which config? --config FILE');
  if (values.output === undefined) return usage('where to? -o trace.ami (or .esl)');
  const seconds = values.seconds === undefined ? undefined : Number(values.seconds);
  if (seconds !== undefined && !(seconds > 0 && Number.isFinite(seconds))) {
    return usage(`--seconds: expected a number of seconds above 0, got ${JSON.stringify(values.seconds)}`);
  }
  const cfg = loadConfig(values.config);
  const out = values.output;
  const problem = extensionProblem(cfg.pbx.type, out);
  if (problem !== undefined) {
    stderr.write(`pbxhook record: ${problem}\n`);
    return EX_USAGE;
  }
  try {
    closeSync(openSync(out, 'w')); // fail before connecting, with a message, not a stream error later
  } catch (err) {
    stderr.write(`pbxhook record: cannot write ${out} (${(err as NodeJS.ErrnoException).code ?? String(err)})\n`);
    return EX_CANTCREAT;
  }
  return record(cfg.pbx, out, seconds, stderr);
}

async function record(pbx: PbxConfig, out: string, seconds: number | undefined, stderr: NodeJS.WriteStream): Promise<number> {
  const started = Date.now();
  /** Why the recording stopped, when pbxhook stopped it; otherwise the PBX closed the connection. */
  let stoppedBy: string | undefined;
  let stopRecording!: () => void;
  const stop = new Promise<void>((resolve) => (stopRecording = resolve));
  const stopFor = (why: string) => () => {
    stoppedBy ??= why;
    stopRecording();
  };
  const onInt = stopFor('stopped by SIGINT');
  const onTerm = stopFor('stopped by SIGTERM');
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  const timer = seconds === undefined ? undefined : setTimeout(stopFor(`--seconds ${seconds} elapsed`), seconds * 1000);

  const where = `${pbx.host}:${pbx.port}`;
  // Counts first: a narrow terminal cuts the line's end, and the path is the part already known.
  const status = (p: RecordProgress) => `${describeCounts(p)} in ${formatElapsed(Date.now() - started)} (${where} → ${out})`;
  // A terminal gets one line rewritten in place; a log gets a line every LOG_EVERY_MS.
  const tty = stderr.isTTY === true ? new StatusLine(stderr, 0) : undefined;
  let lastLogged = started;
  let last: RecordProgress = { bytes: 0, events: 0, calls: 0 };
  const progress = (p: RecordProgress): void => {
    last = p;
    if (tty) tty.update(() => `recording: ${status(p)}`, true);
    else if (Date.now() - lastLogged >= LOG_EVERY_MS) {
      lastLogged = Date.now();
      stderr.write(`pbxhook record: ${status(p)}\n`);
    }
  };
  tty?.update(() => `connecting to ${where}…`, true);

  const result = await recordTrace(pbx, { out, stop, progress });
  clearTimeout(timer);
  process.removeListener('SIGINT', onInt);
  process.removeListener('SIGTERM', onTerm);
  tty?.clear();

  if (result.ok) {
    const why = stoppedBy ?? 'the PBX closed the connection';
    stderr.write(`pbxhook record: ${describeCounts(result.progress)} in ${formatElapsed(Date.now() - started)} written to ${out} (${why})\n`);
    return 0;
  }
  stderr.write(`pbxhook record: ${result.message}\n`);
  if (last.events === 0) rmSync(out, { force: true }); // nothing worth keeping; a lost connection keeps what came
  else stderr.write(`pbxhook record: kept ${describeCounts(last)} in ${out}\n`);
  const codes: Record<string, number> = { PBXHOOK_RECORD_AUTH: EX_NOPERM, PBXHOOK_RECORD_WRITE: EX_CANTCREAT };
  return codes[result.code] ?? EX_UNAVAILABLE;
}
