import http from 'node:http';

/**
 * A minimal keep-alive receiver, run in its own process by the delivery benchmarks: 200 with an
 * empty body, counting requests. Prints its port, then answers `count` on stdin with the total, and
 * `ids` with the webhook-ids received since the last `ids`, in arrival order (one JSON line): the
 * fleet bench checks with them that each webhook came once and each lane in order (issue #17).
 */
/** argv[2]: ms before each answer, as a slow CRM's (bench/over-limit.ts); none by default. */
const answerAfterMs = Number(process.argv[2] ?? 0);
let count = 0;
let ids: string[] = [];
const server = http.createServer((req, res) => {
  const id = req.headers['webhook-id'];
  if (typeof id === 'string') ids.push(id);
  req.resume();
  req.on('end', () => {
    const answer = () => {
      count++;
      res.writeHead(200, { 'content-length': '0' }).end();
    };
    if (answerAfterMs > 0) setTimeout(answer, answerAfterMs);
    else answer();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as import('node:net').AddressInfo).port}\n`);
});
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d: string) => {
  if (d.includes('count')) process.stdout.write(`count ${count}\n`);
  if (d.includes('ids')) {
    process.stdout.write(`ids ${JSON.stringify(ids)}\n`);
    ids = [];
  }
  if (d.includes('exit')) process.exit(0);
});
// Its parent gone (killed by a timeout, crashed) closes stdin: no receiver outlives its bench.
process.stdin.on('end', () => process.exit(0));
