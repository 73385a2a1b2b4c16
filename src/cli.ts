#!/usr/bin/env node
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { explainEventFilter } from './ami/event-filter.js';
import { EX_USAGE, optionList, parseCommandArgs, UsageError } from './args.js';
import { ConfigError, EX_CONFIG } from './config/errors.js';
import { explainConfig } from './config/explain.js';
import { loadConfig } from './config/load.js';
import type { Config } from './config/types.js';
import { EX_TEMPFAIL, runDaemon } from './daemon.js';
import { tokensOf } from './deliver/auth.js';
import { StateDirBusyError } from './deliver/state-lock.js';
import { createLogger } from './log.js';
import { OUTBOX_USAGE, openReplayOutbox, runOutboxCommand } from './outbox-cli.js';
import { Pipeline } from './pipeline.js';
import { replayProgressBar } from './progress.js';
import { RECORD_USAGE, runRecordCommand } from './record-cli.js';
import { replayFile, requestLine } from './replay.js';

const EX_NOINPUT = 66;

const COMMANDS = new Set(['run', 'replay', 'record', 'check-config', 'outbox']);

const USAGE = `pbxhook — PBX call events to CRM webhooks

Usage:
  pbxhook run --config FILE               run the daemon (live Asterisk AMI / FreeSWITCH ESL → webhooks)
  pbxhook replay TRACE --config FILE      print the webhooks a recorded trace produces (.ami AMI,
                                           .esl FreeSWITCH event socket; .gz too),
          [--send [--state-dir DIR]]       one JSON object per line; --send delivers them
  pbxhook record --config FILE -o OUT     save a live PBX session as a trace (OUT .ami or .esl;
          [--seconds N]                    no secret saved); Ctrl-C or N seconds stop it
  pbxhook check-config FILE               validate a config and explain it
  pbxhook outbox stats|list|retry|purge   inspect and manage the delivery outbox
          --config FILE | --state-dir DIR  (pbxhook outbox --help for the details)
  pbxhook --version | --help              (pbxhook COMMAND --help: that command's options)

Exit codes: 0 ok, 64 usage, 66 trace, outbox, endpoint or webhook not found, 69 PBX unreachable (record; run keeps
retrying), 73 outbox cannot be opened, 75 another pbxhook sends from this state_dir, 77 PBX login
refused, 78 bad config.`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * replay's webhook lines on stdout, one write each, as before. A reader that closes its end early
 * (`pbxhook replay … | head -1`) is no error: the write fails with EPIPE and, as `yes | head` does,
 * replay stops reading the trace and exits 0 (issue #12). Any other write error stops it too, and
 * is thrown once the replay has stopped.
 */
class StdoutLines {
  private readonly stopper = new AbortController();
  /** Aborted once stdout cannot take another line. */
  readonly signal = this.stopper.signal;
  /** A write error other than the reader leaving (a full disk…). */
  failure: Error | undefined;

  constructor(private readonly out: NodeJS.WriteStream) {
    // Listening is what keeps an EPIPE from being an uncaught 'error' event that kills the process.
    out.on('error', (err) => this.fail(err));
  }

  write(line: string): void {
    if (this.signal.aborted) return;
    this.out.write(line);
    // A failed pipe write is recorded at once; its 'error' event only follows on a later tick.
    if (this.out.errored) this.fail(this.out.errored);
  }

  /**
   * While the pipe is full Node would buffer every further line in memory: waiting for it to drain
   * keeps replay at its reader's pace, so it sees the reader leave after a chunk, not after the trace.
   */
  readonly drained = (): Promise<void> | undefined => {
    if (!this.out.writableNeedDrain || this.signal.aborted) return undefined;
    return new Promise((resolve) => {
      const done = (): void => {
        this.out.off('drain', done).off('close', done);
        this.signal.removeEventListener('abort', done);
        resolve();
      };
      this.out.once('drain', done).once('close', done);
      this.signal.addEventListener('abort', done);
    });
  };

  private fail(err: Error): void {
    if (this.signal.aborted) return;
    if ((err as NodeJS.ErrnoException).code !== 'EPIPE') this.failure = err;
    this.stopper.abort(err);
  }
}

/** `--send` delivers through an outbox (in --state-dir, or a temporary one) exactly as the daemon does. */
async function replay(trace: string, cfg: Config, send: boolean, stateDir: string | undefined): Promise<number> {
  const log = createLogger(cfg.log.level);
  const tokens = tokensOf(cfg);
  const pipeline = new Pipeline(cfg);
  const outbox = send ? openReplayOutbox(cfg, log, stateDir) : undefined;
  // With --send the worker logs each delivery on stderr, which would run through the bar's line.
  const bar = send ? undefined : replayProgressBar(statSync(trace).size);
  const stdout = new StdoutLines(process.stdout);
  const summary = await replayFile(
    trace,
    pipeline,
    (r) => {
      bar?.clear();
      stdout.write(requestLine(r, tokens) + '\n');
      // A reader gone mid-event still leaves the whole event enqueued: replay stops between events.
      outbox?.enqueue([r]);
    },
    { onProgress: bar?.update, signal: stdout.signal, drained: stdout.drained },
  );
  bar?.clear();
  const sent = await outbox?.finish();
  if (stdout.failure) throw stdout.failure;
  // Stopped early only because the reader had enough: said on stderr, and still a success.
  log.info({ trace, ...summary, ...sent }, summary.stoppedEarly ? 'replay stopped early: stdout was closed by its reader' : 'replay finished');
  return sent !== undefined && sent.dead + sent.undelivered > 0 ? 1 : 0;
}

const CONFIG = { type: 'string', short: 'c', value: 'FILE' } as const;
const HELP = { type: 'boolean', short: 'h', default: false } as const;

const RUN_OPTIONS = { config: CONFIG, help: HELP } as const;
const RUN_USAGE = `Usage: pbxhook run --config FILE
  The daemon: follows the PBX of FILE (Asterisk AMI or FreeSWITCH ESL) and sends each call's
  webhooks through the outbox in state_dir. SIGTERM or Ctrl-C stop it (attempts in flight may
  finish for delivery.stop_timeout); SIGHUP re-reads the endpoints.
Options: ${optionList(RUN_OPTIONS)}`;

const REPLAY_OPTIONS = { config: CONFIG, send: { type: 'boolean', default: false }, 'state-dir': { type: 'string', value: 'DIR' }, help: HELP } as const;
const REPLAY_USAGE = `Usage: pbxhook replay TRACE --config FILE [--send [--state-dir DIR]]
  Prints the webhooks a recorded trace produces with the endpoints of FILE, one JSON object per
  line: {"endpoint","method","url","headers","body"}. TRACE is an AMI session (.ami) or a FreeSWITCH
  event socket session (.esl), gzipped too (.gz). --send also delivers them through an outbox (in
  DIR, or a temporary one) exactly as the daemon would, and waits until each is delivered or dead.
Options: ${optionList(REPLAY_OPTIONS)}`;

const CHECK_OPTIONS = { config: CONFIG, help: HELP } as const;
const CHECK_USAGE = `Usage: pbxhook check-config FILE
  Validates the YAML config FILE, the webhooks ini file it names and the secrets they take from the
  environment or files, then explains what pbxhook will do. Every problem is printed at once as
  "file: key: problem", exit 78.
Options: ${optionList(CHECK_OPTIONS)} (instead of FILE)`;

const COMMAND_HELP: Record<string, string> = {
  run: RUN_USAGE, replay: REPLAY_USAGE, 'check-config': CHECK_USAGE, record: RECORD_USAGE, outbox: OUTBOX_USAGE,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command.startsWith('-')) {
    const { values } = parseCommandArgs('pbxhook', { help: HELP, version: { type: 'boolean', default: false } }, argv);
    if (values.version) {
      process.stdout.write(version() + '\n');
      return 0;
    }
    if (values.help) {
      process.stdout.write(USAGE + '\n');
      return 0;
    }
    process.stderr.write(`${USAGE}\n`);
    return EX_USAGE;
  }
  if (!COMMANDS.has(command)) {
    process.stderr.write(`pbxhook: unknown command "${command}"\n\n${USAGE}\n`);
    return EX_USAGE;
  }
  try {
    return await runCommand(command, rest);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`pbxhook ${command}: ${err.message} (pbxhook ${command} --help)\n`);
    return EX_USAGE;
  }
}

/** Each command parses its own options; `--help` anywhere prints that command's help. */
async function runCommand(command: string, argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${COMMAND_HELP[command]}\n`);
    return 0;
  }
  switch (command) {
    case 'outbox':
      return runOutboxCommand(argv);
    case 'record':
      return runRecordCommand(argv);
    case 'check-config': {
      const { values, positionals } = parseCommandArgs(command, CHECK_OPTIONS, argv, 1);
      const file = values.config ?? positionals[0];
      if (file === undefined) throw new UsageError('which config? pbxhook check-config FILE');
      const cfg = loadConfig(file);
      const filter = cfg.pbx.type === 'asterisk' ? explainEventFilter(cfg.pbx, cfg.roles).join('\n') + '\n' : '';
      process.stdout.write(explainConfig(cfg) + filter + '\nconfig OK\n');
      return 0;
    }
    case 'replay': {
      const { values, positionals } = parseCommandArgs(command, REPLAY_OPTIONS, argv, 1);
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
    default: {
      const { values } = parseCommandArgs(command, RUN_OPTIONS, argv);
      if (values.config === undefined) throw new UsageError('which config? pbxhook run --config FILE');
      const cfg = loadConfig(values.config);
      const log = createLogger(cfg.log.level);
      const stop = new Promise<void>((resolve) => {
        const onSignal = (): void => {
          resolve();
          // The daemon's own stop ends within the grace (daemon.ts); this is the last resort should one of its steps hang.
          setTimeout(() => {
            log.error({ code: 'PBXHOOK_STOP_GRACE', graceSeconds: cfg.shutdownGraceMs / 1000 }, 'shutdown_grace_seconds reached before the stop finished; exiting now');
            process.exit(1);
          }, cfg.shutdownGraceMs).unref();
        };
        process.once('SIGTERM', onSignal);
        process.once('SIGINT', onSignal);
      });
      const code = await runDaemon(cfg, log, { stop, onReload: (reload) => process.on('SIGHUP', reload) });
      // A socket a silent PBX or a hanging CRM keeps open must not keep the process (issue #14 item 5).
      process.exit(code);
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = EX_CONFIG;
      return;
    }
    if (err instanceof StateDirBusyError) {
      process.stderr.write(`pbxhook: ${err.message}\n`);
      process.exitCode = EX_TEMPFAIL;
      return;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`pbxhook: ${err.message} (pbxhook --help)\n`);
      process.exitCode = EX_USAGE;
      return;
    }
    process.stderr.write(`pbxhook: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
