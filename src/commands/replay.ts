/** `pbxhook replay TRACE --config FILE [--send [--state-dir DIR]]`: the webhooks a recorded trace produces. */
import { accessSync, constants, statSync } from 'node:fs';
import { optionList, parseCommandArgs, UsageError } from '../args.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { tokensOf } from '../deliver/auth.js';
import { createLogger } from '../log.js';
import { Pipeline } from '../pipeline.js';
import { replayProgressBar } from '../progress.js';
import { replayFile, requestLine } from '../replay.js';
import { StdoutLines } from './stdout-lines.js';

const EX_NOINPUT = 66;

const REPLAY_OPTIONS = {
  config: { type: 'string', short: 'c', value: 'FILE' },
  send: { type: 'boolean', default: false },
  'state-dir': { type: 'string', value: 'DIR' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export const REPLAY_USAGE = `Usage: pbxhook replay TRACE --config FILE [--send [--state-dir DIR]]
  Prints the webhooks a recorded trace produces with the endpoints of FILE, one JSON object per
  line: {"endpoint","method","url","headers","body"}. TRACE is an AMI session (.ami) or a FreeSWITCH
  event socket session (.esl), gzipped too (.gz). --send also delivers them through an outbox (in
  DIR, or a temporary one) exactly as the daemon would, and waits until each is delivered or dead.
Options: ${optionList(REPLAY_OPTIONS)}`;

export async function runReplayCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseCommandArgs('replay', REPLAY_OPTIONS, argv, 1);
  const [trace] = positionals;
  if (trace === undefined) throw new UsageError('which trace? e.g. pbxhook replay trace.ami --config pbxhook.yaml');
  if (values.config === undefined) throw new UsageError('which config? pbxhook replay TRACE --config FILE');
  const cfg = loadConfig(values.config);
  try {
    accessSync(trace, constants.R_OK);
  } catch {
    process.stderr.write(`pbxhook replay: cannot read trace ${trace}\n`);
    return EX_NOINPUT;
  }
  return replay(trace, cfg, values.send, values['state-dir']);
}

/** `--send` delivers through an outbox (in --state-dir, or a temporary one) exactly as the daemon does. */
async function replay(trace: string, cfg: Config, send: boolean, stateDir: string | undefined): Promise<number> {
  const log = createLogger(cfg.log.level);
  const tokens = tokensOf(cfg);
  const pipeline = new Pipeline(cfg);
  // SQLite and axios are loaded only to send: a plain replay starts without them (issue #15).
  const outbox = send ? await (await import('../outbox-cli.js')).openReplayOutbox(cfg, log, stateDir) : undefined;
  // With --send the worker logs each delivery on stderr, which would run through the bar's line.
  const bar = send ? undefined : replayProgressBar(statSync(trace).size);
  const stdout = new StdoutLines(process.stdout, () => bar?.clear());
  const summary = await replayFile(
    trace,
    pipeline,
    (r) => {
      stdout.write(requestLine(r, tokens) + '\n');
      // A reader gone mid-event still leaves the whole event enqueued: replay stops between events.
      outbox?.enqueue([r]);
    },
    {
      // The lines read so far go out before the bar is drawn, so the bar stays up until the next chunk.
      onProgress: bar && ((p) => {
        stdout.flush();
        bar.update(p);
      }),
      signal: stdout.signal,
      drained: stdout.drained,
    },
  );
  stdout.flush();
  bar?.clear();
  const sent = await outbox?.finish();
  if (stdout.failure) throw stdout.failure;
  // Stopped early only because the reader had enough: said on stderr, and still a success.
  log.info({ trace, ...summary, ...sent }, summary.stoppedEarly ? 'replay stopped early: stdout was closed by its reader' : 'replay finished');
  return sent !== undefined && sent.dead + sent.undelivered > 0 ? 1 : 0;
}
