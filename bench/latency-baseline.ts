import http from 'node:http';
import net from 'node:net';
import axios from 'axios';

/**
 * The latency baseline (issue #7 §3): the least a separate process can do between an AMI socket
 * and a CRM: log in, split frames, and for each Hangup POST one small body with axios over
 * keep-alive connections. No tracker, no renderer, no outbox. Run beside the daemon in the same
 * bench, its tail shows how much of the daemon's is the machine's.
 * Usage: node latency-baseline.js AMI_PORT RECEIVER_PORT
 */
const [amiPort, receiverPort] = process.argv.slice(2).map(Number);
const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
const client = axios.create({ httpAgent: agent, maxRedirects: 0, validateStatus: () => true });
const url = `http://127.0.0.1:${receiverPort}/baseline`;

const sock = net.connect(amiPort!, '127.0.0.1');
sock.setNoDelay(true);
sock.write('Action: Login\r\nUsername: bench\r\nSecret: bench\r\nActionID: 1\r\n\r\n');
let pending = '';
sock.setEncoding('utf8').on('data', (chunk: string) => {
  pending += chunk;
  let end: number;
  while ((end = pending.indexOf('\r\n\r\n')) !== -1) {
    const frame = pending.slice(0, end);
    pending = pending.slice(end + 4);
    if (!frame.startsWith('Event: Hangup')) continue;
    const seq = /Uniqueid: \d+\.(\d+)/.exec(frame)?.[1];
    // The receiver reads the call's number as the 3CX Id carries it: `_<seq>-<segment>"`.
    void client.post(url, `{"Id":"call_${seq}-0"}`, { headers: { 'content-type': 'application/json' } }).catch(() => undefined);
  }
});
sock.on('error', () => process.exit(1));
process.on('SIGTERM', () => {
  agent.destroy();
  sock.destroy();
  process.exit(0);
});
