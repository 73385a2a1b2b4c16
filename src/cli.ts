#!/usr/bin/env node
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, EX_CONFIG } from './config/errors.js';
import { explainConfig } from './config/explain.js';
import { loadConfig } from './config/load.js';
import type { Config } from './config/types.js';
import { EX_TEMPFAIL, runDaemon } from './daemon.js';
import { tokensOf } from './deliver/auth.js';
import { StateDirBusyError } from './deliver/state-lock.js';
import { createLogger } from './log.js';
import { openReplayOutbox, runOutboxCommand } from './outbox-cli.js';
import { Pipeline } from './pipeline.js';
import { replayProgressBar } from './progress.js';
import { runRecordCommand } from './record-cli.js';
import { replayFile, requestLine } from './replay.js';

const EX_USAGE = 64;
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
  pbxhook --version | --help

Exit codes: 0 ok, 64 usage, 66 trace or outbox not found, 69 PBX unreachable (record; run keeps
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

async function main(argv: string[]): Promise<number> {
  // The outbox and record commands have options of their own; they parse them.
  if (argv[0] === 'outbox') return runOutboxCommand(argv.slice(1));
  if (argv[0] === 'record') return runRecordCommand(argv.slice(1));
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      send: { type: 'boolean', default: false },
      'state-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
      version: { type: 'boolean', default: false },
    },
  });
  if (values.version) {
    process.stdout.write(version() + '\n');
    return 0;
  }
  const [command, arg] = positionals;
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (!command || !COMMANDS.has(command)) {
    process.stderr.write(`${command ? `pbxhook: unknown command "${command}"\n\n` : ''}${USAGE}\n`);
    return EX_USAGE;
  }
  const configPath = values.config ?? (command === 'check-config' ? arg : undefined);
  if (!configPath) {
    const how = command === 'check-config' ? 'pbxhook check-config FILE' : `pbxhook ${command} --config FILE`;
    process.stderr.write(`pbxhook ${command}: which config? ${how}\n`);
    return EX_USAGE;
  }
  const cfg = loadConfig(configPath);
  switch (command) {
    case 'check-config':
      process.stdout.write(explainConfig(cfg) + '\nconfig OK\n');
      return 0;
    case 'replay': {
      if (!arg) {
        process.stderr.write('pbxhook replay: which trace? e.g. pbxhook replay trace.ami --config pbxhook.yaml\n');
        return EX_USAGE;
      }
      try {
        accessSync(arg, constants.R_OK);
      } catch {
        process.stderr.write(`pbxhook replay: cannot read trace ${arg}\n`);
        return EX_NOINPUT;
      }
      return replay(arg, cfg, values.send, values['state-dir']);
    }
    case 'run': {
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
    case 'outbox':
      process.stderr.write('pbxhook outbox: put the outbox command first: pbxhook outbox stats --config FILE\n');
      return EX_USAGE;
    case 'record':
      process.stderr.write('pbxhook record: put the command first: pbxhook record --config FILE -o trace.ami\n');
      return EX_USAGE;
    default:
      return EX_USAGE;
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
    if (err instanceof Error && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`pbxhook: ${err.message}\n\n${USAGE}\n`);
      process.exitCode = EX_USAGE;
      return;
    }
    process.stderr.write(`pbxhook: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
