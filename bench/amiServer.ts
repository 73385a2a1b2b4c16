import net from 'node:net';

/**
 * A lean AMI server for benchmarks: banner, accepts any Login, then writes the given buffers as
 * fast as the socket takes them (backpressure respected). 127.0.0.1 only.
 */
export async function serveAmi(buffers: readonly Buffer[]): Promise<{ port: number; close(): Promise<void> }> {
  const server = net.createServer((sock) => {
    sock.setNoDelay(true);
    sock.write('Asterisk Call Manager/11.0.0\r\n');
    let seen = '';
    const onData = (d: Buffer): void => {
      seen += d.toString('utf8');
      if (!seen.includes('\r\n\r\n')) return;
      sock.off('data', onData);
      const id = /actionid: (.*)\r\n/i.exec(seen)?.[1];
      sock.write(`Response: Success\r\n${id ? `ActionID: ${id}\r\n` : ''}Message: Authentication accepted\r\n\r\n`);
      void (async () => {
        // The first buffer is the trace's banner + login response: the client already had ours.
        for (const b of buffers.slice(1)) {
          if (!sock.write(b)) await new Promise((r) => sock.once('drain', r));
        }
      })();
    };
    sock.on('data', onData);
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.emit('close');
      }),
  };
}
