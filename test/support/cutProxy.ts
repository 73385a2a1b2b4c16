/**
 * A loopback TCP proxy whose link can be cut like a network cable (issue #17 item 3): `cut()` stops
 * carrying bytes either way and closes nothing, so neither end hears a FIN or a reset; only its own
 * timers (keepalive, timeouts, liveness queries) tell it the peer is gone.
 */
import net from 'node:net';

export interface CutProxy {
  readonly port: number;
  /** Connections opened so far. */
  connections(): number;
  cut(): void;
  close(): Promise<void>;
}

export async function startCutProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<CutProxy> {
  let isCut = false;
  let opened = 0;
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket): void => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => undefined);
  };
  const server = net.createServer((client) => {
    opened++;
    track(client);
    const upstream = net.connect(targetPort, targetHost);
    track(upstream);
    // Bytes go through by hand (not pipe) so that a cut can swallow them without ending either side.
    client.on('data', (b) => void (isCut || upstream.write(b)));
    upstream.on('data', (b) => void (isCut || client.write(b)));
    client.on('end', () => void (isCut || upstream.end()));
    upstream.on('end', () => void (isCut || client.end()));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    connections: () => opened,
    cut: () => void (isCut = true),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
