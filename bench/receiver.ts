import http from 'node:http';

/**
 * A minimal keep-alive receiver, run in its own process by the delivery benchmarks: 200 with an
 * empty body, counting requests. Prints its port, then answers `count` on stdin with the total.
 */
let count = 0;
const server = http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    count++;
    res.writeHead(200, { 'content-length': '0' }).end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as import('node:net').AddressInfo).port}\n`);
});
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d: string) => {
  if (d.includes('count')) process.stdout.write(`count ${count}\n`);
  if (d.includes('exit')) process.exit(0);
});
