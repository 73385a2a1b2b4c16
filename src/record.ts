import { createWriteStream } from 'node:fs';
import net from 'node:net';
import { AmiFramer } from './ami/framer.js';
import type { PbxConfig } from './config/types.js';

export interface RecordOptions {
  readonly out: string;
  /** Stop after this long (seconds); otherwise on `stop`. */
  readonly seconds?: number;
  readonly stop: Promise<void>;
  /** Progress (events, calls, bytes); called about once a second. */
  readonly progress?: (p: RecordProgress) => void;
}

export interface RecordProgress {
  readonly bytes: number;
  readonly events: number;
  readonly calls: number;
}

export type RecordResult =
  | { readonly ok: true; readonly progress: RecordProgress }
  | { readonly ok: false; readonly code: string; readonly message: string };

/** Counts events and calls in the received bytes, for the progress line. */
interface Counter {
  push(chunk: Buffer): void;
  readonly events: number;
  readonly calls: number;
}

function amiCounter(): Counter {
  // Only Newchannel is parsed (a call starts where Uniqueid = Linkedid); the rest is just counted.
  const framer = new AmiFramer({ filter: (name) => name === 'Newchannel' });
  let newchannels = 0;
  const c = {
    events: 0,
    calls: 0,
    push(chunk: Buffer) {
      for (const f of framer.push(chunk)) {
        if (f.fields['event'] === undefined) continue; // the login answer
        newchannels++;
        if (f.fields['uniqueid'] === f.fields['linkedid']) c.calls++;
      }
      c.events = framer.stats.filtered + newchannels;
    },
  };
  return c;
}

function eslCounter(): Counter {
  const c = {
    events: 0,
    calls: 0,
    push(chunk: Buffer) {
      const text = chunk.toString('latin1');
      c.events += text.split('Content-Type: text/event-').length - 1;
      c.calls += text.split('Event-Name: CHANNEL_CREATE').length - 1;
    },
  };
  return c;
}

/**
 * Logs in when the PBX asks for it and reads its answer: AMI `Action: Login`, ESL `auth` then
 * `event plain ALL` (the trace format of both).
 */
function loginDialogue(pbx: PbxConfig, sock: net.Socket): (received: string) => 'wait' | 'ok' | 'refused' {
  let head = '';
  let sent = false;
  return (received) => {
    head += received;
    if (pbx.type === 'asterisk') {
      if (!sent && head.includes('\n')) {
        sent = true;
        sock.write(`Action: Login\r\nUsername: ${pbx.username}\r\nSecret: ${pbx.secret}\r\nEvents: on\r\n\r\n`);
      }
      if (!/Response: \w+/.test(head)) return 'wait';
      return /Response: Success/.test(head) ? 'ok' : 'refused';
    }
    if (!sent && head.includes('Content-Type: auth/request')) {
      sent = true;
      sock.write(`auth ${pbx.password}\n\n`);
    }
    if (head.includes('Reply-Text: -ERR')) return 'refused';
    if (!head.includes('Reply-Text: +OK accepted')) return 'wait';
    sock.write('event plain ALL\n\n');
    return 'ok';
  };
}

/**
 * `pbxhook record`: a trace is exactly the bytes the PBX sends on one connection, so this talks
 * plain TCP (no client library in between) and writes what it receives. What it sends — the
 * login with its secret — is never written.
 */
export async function recordTrace(pbx: PbxConfig, opts: RecordOptions): Promise<RecordResult> {
  const sock = net.createConnection({ host: pbx.host, port: pbx.port });
  const file = createWriteStream(opts.out);
  const counter = pbx.type === 'asterisk' ? amiCounter() : eslCounter();
  let bytes = 0;
  const progress = (): RecordProgress => ({ bytes, events: counter.events, calls: counter.calls });
  const dialogue = loginDialogue(pbx, sock);
  let loggedIn = false;
  const where = `${pbx.host}:${pbx.port}`;

  const result = await new Promise<RecordResult>((resolve) => {
    const ticker = setInterval(() => opts.progress?.(progress()), 1000);
    const timer = opts.seconds === undefined ? undefined : setTimeout(() => sock.end(), opts.seconds * 1000);
    const finish = (r: RecordResult): void => {
      clearInterval(ticker);
      if (timer) clearTimeout(timer);
      resolve(r);
    };
    // Still connecting (a black-holed host can take minutes): give up now rather than after.
    void opts.stop.then(() => (sock.connecting ? sock.destroy() : sock.end()));
    // A full disk or a vanished folder ends the recording with a reason instead of an uncaught error.
    file.once('error', (err: NodeJS.ErrnoException) => {
      finish({ ok: false, code: 'PBXHOOK_RECORD_WRITE', message: `cannot write ${opts.out}: ${err.code ?? err.message}` });
      sock.destroy();
    });
    sock.once('error', (err: NodeJS.ErrnoException) =>
      finish({ ok: false, code: 'PBXHOOK_RECORD_CONNECT', message: `cannot record from ${where}: ${err.code ?? err.message}` }));
    sock.once('close', () => finish({ ok: true, progress: progress() }));
    sock.on('data', (chunk: Buffer) => {
      file.write(chunk);
      bytes += chunk.length;
      counter.push(chunk);
      if (loggedIn) return;
      const verdict = dialogue(chunk.toString('latin1'));
      if (verdict === 'ok') loggedIn = true;
      if (verdict === 'refused') {
        const who = pbx.type === 'asterisk' ? ` for user ${pbx.username}` : '';
        finish({ ok: false, code: 'PBXHOOK_RECORD_AUTH', message: `${where} refused the login${who}` });
        sock.destroy();
      }
    });
  });
  sock.destroy();
  await new Promise<void>((done) => file.end(done));
  opts.progress?.(progress());
  return result;
}
