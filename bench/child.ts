import { backlog, bareAxios, autocannon, outbox, startReceiver } from './delivery.js';
import { latency } from './latency.js';
import { mixLatency, type Mix } from './latency-mix.js';
import { liveChurn } from './live-churn.js';
import { liveMemory } from './live-memory.js';
import { liveStateCommits } from './live-state.js';
import { memory } from './memory.js';
import { overLimit } from './over-limit.js';
import { upkeep } from './upkeep.js';
import { asteriskManagerFile, floorFile } from './replay-command.js';
import { asteriskManager, filtered, floor, live, pipeline, repeatedLoad } from './replay.js';

/** One measurement per process, so memory and JIT state of one never colour another. */
const [what, arg] = process.argv.slice(2);
const copies = Number(arg ?? 57);

async function main(): Promise<unknown> {
  switch (what) {
    case 'floor':
      return floor(repeatedLoad(copies));
    case 'pipeline':
      return pipeline(repeatedLoad(copies));
    case 'pipeline-filtered':
      return pipeline(filtered(repeatedLoad(copies)));
    case 'asterisk-manager': {
      const input = repeatedLoad(copies);
      return asteriskManager(input, floor(input).events);
    }
    case 'live': {
      const input = repeatedLoad(copies);
      return live(input, floor(input).events);
    }
    // Issue #15: the baselines of the command-level rows, as programs reading the same file.
    case 'floor-file':
      return floorFile(arg!);
    case 'asterisk-manager-file':
      return asteriskManagerFile(arg!);
    case 'axios':
    case 'outbox':
    case 'autocannon':
    case 'backlog': {
      const receiver = await startReceiver();
      const n = Number(arg ?? 20_000);
      try {
        if (what === 'axios') return await bareAxios(n, receiver.url, 16);
        if (what === 'outbox') return await outbox(n, receiver.url);
        if (what === 'backlog') return await backlog(n, receiver.url);
        return await autocannon(receiver.url, 16, 5);
      } finally {
        receiver.stop();
      }
    }
    case 'latency':
      return latency(300, 10, arg === 'baseline' ? 'baseline' : 'daemon');
    case 'latency-mix': {
      // `freepbx:300:on`: the trace's mix, calls/s, Asterisk's filter; seconds from BENCH_LATENCY_SECONDS.
      const [mix, rate, filter] = (arg ?? 'freepbx:300:on').split(':');
      const seconds = Number(process.env['BENCH_LATENCY_SECONDS'] ?? 5);
      return mixLatency({ mix: mix as Mix, callsPerSecond: Number(rate), filter: filter === 'on', seconds });
    }
    case 'upkeep':
      return upkeep(Number(arg ?? 500_000));
    case 'over-limit':
      return overLimit(Number(arg ?? 8));
    case 'memory':
      return memory(10_000, Number(arg ?? 1_000_000));
    case 'live-memory':
      return liveMemory(Number(arg ?? 10_000));
    case 'live-state': {
      // `<calls up>:<commits>:with|without` (saving the live calls in each commit, or not)
      const [calls = '1000', commits = '5000', saving = 'with'] = (arg ?? '').split(':');
      return liveStateCommits(Number(calls), Number(commits), saving === 'with');
    }
    case 'live-churn':
      return liveChurn(Number(arg ?? 100_000));
    default:
      throw new Error(`unknown measurement ${what}`);
  }
}

main().then(
  (r) => {
    process.stdout.write(JSON.stringify(r) + '\n');
    process.exit(0);
  },
  (err: unknown) => {
    process.stderr.write(String(err instanceof Error ? err.stack : err) + '\n');
    process.exit(1);
  },
);
