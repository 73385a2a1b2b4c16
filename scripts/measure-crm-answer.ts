/**
 * What a huge CRM answer costs one delivery attempt (issue #14 item 7): a loopback server answers
 * 200 with MB megabytes streamed from a generator, and one attempt is made through the daemon's
 * own HTTP client (src/deliver/attempt.ts). Prints the outcome, the peak RSS above the baseline and
 * the bytes the server got to send before the client closed the connection. With `--whole`, the
 * same request through axios reading the answer whole (the client before the fix), for comparison.
 *
 *   npx tsx scripts/measure-crm-answer.ts [MB=700] [--whole]
 *
 * Loopback only. Memory is measured here, never asserted in tests.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import axios from 'axios';
import { createHttpClient } from '../src/deliver/attempt.js';

const mb = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 700);
const whole = process.argv.includes('--whole');
const total = mb * 1024 * 1024;

const chunk = Buffer.alloc(64 * 1024, 'x');
let written = 0;
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(total) });
    res.on('error', () => {});
    const pump = (): void => {
      while (written < total && !res.destroyed) {
        const n = Math.min(chunk.length, total - written);
        written += n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once('drain', pump);
      }
      if (written >= total) res.end();
    };
    pump();
  });
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;

global.gc?.();
const baseline = process.memoryUsage().rss;
let peak = baseline;
const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);

const started = performance.now();
let outcome: string;
if (whole) {
  try {
    const res = await axios.post(url, '{}', { responseType: 'text', timeout: 600_000, maxContentLength: -1, maxBodyLength: -1, transformResponse: [(d: unknown) => d] });
    outcome = `HTTP ${res.status}, ${(res.data as string).length} chars read`;
  } catch (err) {
    outcome = `failed: ${(err as Error).message}`;
  }
} else {
  const client = createHttpClient({ timeoutMs: 600_000, connectTimeoutMs: 5_000, tokens: new Map() });
  const r = await client.attempt({ endpoint: 'crm', method: 'POST', url, headers: { 'content-type': 'application/json' }, body: '{}', orderKey: 'k' });
  outcome = r.ok ? `ok, HTTP ${r.status}` : `failed: ${r.error.code} ${r.error.message}`;
  client.close();
}
const ms = Math.round(performance.now() - started);
peak = Math.max(peak, process.memoryUsage().rss);
clearInterval(sampler);
await new Promise((r) => setTimeout(r, 100)); // the server sees the close
const MiB = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
console.log(
  JSON.stringify({
    client: whole ? 'axios, answer read whole (before #14)' : 'pbxhook attempt.ts',
    answer: MiB(total),
    outcome,
    ms,
    rssBaseline: MiB(baseline),
    rssPeakAbove: MiB(peak - baseline),
    serverSent: MiB(written),
  }),
);
server.closeAllConnections();
server.close();
