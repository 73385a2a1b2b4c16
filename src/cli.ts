#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { EX_USAGE, parseCommandArgs, UsageError } from './args.js';
import { ConfigError, EX_CONFIG } from './config/errors.js';

/** sysexits.h EX_TEMPFAIL: another pbxhook sends from this state_dir (daemon.ts, outbox). */
const EX_TEMPFAIL = 75;

/**
 * Each command's module, loaded only when it runs: `pbxhook --help` or `check-config` never load
 * SQLite, axios or the pipeline (start-up was ~0.9 s with every module loaded, issue #15).
 */
interface Command {
  readonly usage: string;
  readonly run: (argv: string[]) => number | Promise<number>;
}
const COMMANDS: Record<string, () => Promise<Command>> = {
  run: async () => {
    const m = await import('./commands/run.js');
    return { usage: m.RUN_USAGE, run: m.runDaemonCommand };
  },
  deliver: async () => {
    const m = await import('./commands/deliver.js');
    return { usage: m.DELIVER_USAGE, run: m.runDeliverCommand };
  },
  replay: async () => {
    const m = await import('./commands/replay.js');
    return { usage: m.REPLAY_USAGE, run: m.runReplayCommand };
  },
  record: async () => {
    const m = await import('./record-cli.js');
    return { usage: m.RECORD_USAGE, run: m.runRecordCommand };
  },
  'check-config': async () => {
    const m = await import('./commands/check-config.js');
    return { usage: m.CHECK_USAGE, run: m.runCheckConfigCommand };
  },
  outbox: async () => {
    const m = await import('./outbox-cli.js');
    return { usage: m.OUTBOX_USAGE, run: m.runOutboxCommand };
  },
};

const USAGE = `pbxhook — PBX call events to CRM webhooks

Usage:
  pbxhook run --config FILE               run the daemon (live Asterisk AMI / FreeSWITCH ESL → webhooks)
  pbxhook deliver --config FILE           a delivery worker for the shared PostgreSQL outbox (no PBX)
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

const HELP = { type: 'boolean', short: 'h', default: false } as const;

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
  const load = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (load === undefined) {
    process.stderr.write(`pbxhook: unknown command "${command}"\n\n${USAGE}\n`);
    return EX_USAGE;
  }
  try {
    return await runCommand(await load(), rest);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`pbxhook ${command}: ${err.message} (pbxhook ${command} --help)\n`);
    return EX_USAGE;
  }
}

/** Each command parses its own options; `--help` anywhere prints that command's help. */
async function runCommand(command: Command, argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${command.usage}\n`);
    return 0;
  }
  return command.run(argv);
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
    // By its stable code: checking the class would load SQLite for every command.
    if ((err as { code?: unknown } | null)?.code === 'PBXHOOK_STATE_DIR_BUSY') {
      process.stderr.write(`pbxhook: ${(err as Error).message}\n`);
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
