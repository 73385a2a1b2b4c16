/**
 * A fake FreeSWITCH event socket (inbound mode) for tests: loopback TCP, sends `auth/request`,
 * checks `auth <password>`, answers every `event …` with +OK, and after the first `event plain …`
 * streams a recorded trace's event frames exactly as captured — at the trace's
 * own pace (`Event-Date-Timestamp`) divided by `speed`, or all at once. `exit` is answered like
 * mod_event_socket does (+OK bye, disconnect notice, close). For reconnect tests (issue #6) it can
 * stop and start listening, answer `api show channels as json` with the channels a test says are
 * up, and stream something else to the next subscriber.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { gunzipSync } from 'node:zlib';
import { pacing } from './pacing.js';

export interface FakeEslOptions {
  /** Raw trace bytes, or a path to a `.esl` / `.esl.gz` file. */
  readonly trace: Buffer | string;
  readonly password: string;
  /** Replay speed factor: 1 = real time, Infinity (default) = as fast as possible. */
  readonly speed?: number;
  /**
   * Raw bytes (hostile input, issue #14) written to the first subscriber only, right after its
   * subscription is answered and before the trace: a client that reconnects over them is
   * streamed the trace alone.
   */
  readonly before?: Buffer;
  /**
   * `show channels` also lists the channels this connection was streamed a CHANNEL_CREATE and no
   * CHANNEL_DESTROY for, as FreeSWITCH would: a call streamed from the moment a client subscribes
   * is up when its resync asks.
   */
  readonly channelsAsStreamed?: boolean;
}

export interface FakeEsl {
  readonly port: number;
  /** Resolves once a subscribed client has been sent the whole trace (the first time). */
  readonly done: Promise<void>;
  /** Every command line received, in order, all connections together (the password masked). */
  readonly commands: string[];
  /** Drops every client connection, keeps listening (a FreeSWITCH restart as a client sees it). */
  dropClients(): void;
  /** The Unique-IDs `api show channels as json` lists from now on (none by default). */
  setChannels(uuids: readonly string[]): void;
  /** What a client subscribing from now on is streamed instead of the trace (e.g. nothing). */
  setTrace(trace: Buffer): void;
  /** Writes raw ESL frames to every subscribed client now. */
  send(bytes: Buffer | string): void;
  /** Drops every connection and refuses new ones until `up()`: FreeSWITCH stopped. */
  down(): Promise<void>;
  /** Listens again, on the same port. */
  up(): Promise<void>;
  /** Drops every connection and stops listening. */
  close(): Promise<void>;
}

export function loadTrace(path: string): Buffer {
  const bytes = readFileSync(path);
  return path.endsWith('.gz') ? gunzipSync(bytes) : bytes;
}

export interface TraceFrame {
  readonly bytes: Buffer;
  /** The Unique-ID a CHANNEL_CREATE (+1) or CHANNEL_DESTROY (-1) is about. */
  readonly channel?: { readonly uuid: string; readonly change: 1 | -1 };
  /** Microseconds (`Event-Date-Timestamp`), undefined for frames without one. */
  readonly at: number | undefined;
  readonly event: boolean;
}

/** Cuts a trace into its frames by the same Content-Length rule FreeSWITCH writes them with. */
export function splitTrace(trace: Buffer): TraceFrame[] {
  const frames: TraceFrame[] = [];
  let pos = 0;
  while (pos < trace.length) {
    const blank = trace.indexOf('\n\n', pos);
    if (blank < 0) break;
    const head = trace.toString('latin1', pos, blank);
    const len = /(?:^|\n)Content-Length: (\d+)/.exec(head);
    const end = blank + 2 + (len ? Number(len[1]) : 0);
    const bytes = trace.subarray(pos, end);
    const event = /Content-Type: text\/event-(plain|json)/.test(head);
    const ts = event ? /Event-Date-Timestamp"?:\s*"?(\d+)/.exec(bytes.toString('latin1')) : null;
    const text = event ? bytes.toString('latin1') : '';
    const name = /Event-Name"?:\s*"?(CHANNEL_CREATE|CHANNEL_DESTROY)\b/.exec(text);
    const uuid = name ? /(?:^|\n|")Unique-ID"?:\s*"?([^"\n]+)/.exec(text) : null;
    const channel = name && uuid ? { uuid: uuid[1]!, change: name[1] === 'CHANNEL_CREATE' ? (1 as const) : (-1 as const) } : undefined;
    frames.push({ bytes, at: ts ? Number(ts[1]) : undefined, event, ...(channel ? { channel } : {}) });
    pos = end;
  }
  return frames;
}

const AUTH_REQUEST = 'Content-Type: auth/request\n\n';
const DISCONNECT_TEXT = 'Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n';
const DISCONNECT = `Content-Type: text/disconnect-notice\nContent-Length: ${Buffer.byteLength(DISCONNECT_TEXT)}\n\n${DISCONNECT_TEXT}`;

function reply(text: string): string {
  return `Content-Type: command/reply\nReply-Text: ${text}\n\n`;
}

export async function startFakeEsl(opts: FakeEslOptions): Promise<FakeEsl> {
  const trace = typeof opts.trace === 'string' ? loadTrace(opts.trace) : opts.trace;
  // The capture's own auth/request and command replies are not replayed: ours are sent live.
  let events = splitTrace(trace).filter((f) => f.event);
  let channels: readonly string[] = [];
  let before = opts.before;
  const subscribed = new Set<net.Socket>();
  const speed = opts.speed ?? Infinity;
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const commands: string[] = [];
  let markDone!: () => void;
  const done = new Promise<void>((resolve) => (markDone = resolve));

  /** Per connection, the channels its stream created and did not destroy (channelsAsStreamed). */
  const streamedUp = new Map<net.Socket, Set<string>>();
  const streamed = (sock: net.Socket, frames: readonly TraceFrame[]): void => {
    if (!opts.channelsAsStreamed) return;
    const up = streamedUp.get(sock) ?? new Set<string>();
    streamedUp.set(sock, up);
    for (const f of frames) {
      if (f.channel?.change === 1) up.add(f.channel.uuid);
      else if (f.channel) up.delete(f.channel.uuid);
    }
  };

  const stream = (sock: net.Socket): void => {
    const list = events; // this connection's stream, whatever setTrace does meanwhile
    if (speed === Infinity) {
      streamed(sock, list);
      sock.write(Buffer.concat(list.map((f) => f.bytes)), () => markDone());
      return;
    }
    const start = Date.now();
    // Events arrive in socket order, which is not quite timestamp order (late COMMAND events).
    const dues = pacing(list.map((f) => (f.at === undefined ? undefined : f.at / 1000)), speed);
    let i = 0;
    let due = 0;
    const step = (): void => {
      const batch: Buffer[] = [];
      const from = i;
      while (i < list.length) {
        due = dues[i]!;
        if (due > Date.now() - start) break;
        batch.push(list[i]!.bytes);
        i++;
      }
      streamed(sock, list.slice(from, i));
      const last = i === list.length;
      if (batch.length > 0 && !sock.destroyed) sock.write(Buffer.concat(batch), last ? () => markDone() : undefined);
      else if (last) markDone();
      if (!last) {
        const t = setTimeout(() => (timers.delete(t), step()), due - (Date.now() - start));
        timers.add(t);
      }
    };
    step();
  };

  const answer = (sock: net.Socket, line: string, state: { authed: boolean; streaming: boolean }): void => {
    const [verb = '', ...rest] = line.split(' ');
    commands.push(verb === 'auth' ? 'auth ***' : line);
    if (verb === 'auth') {
      if (rest.join(' ') === opts.password) {
        state.authed = true;
        sock.write(reply('+OK accepted'));
      } else {
        // mod_event_socket answers -ERR invalid and hangs up on a wrong password.
        sock.write(reply('-ERR invalid') + DISCONNECT, () => sock.end());
      }
    } else if (!state.authed) {
      sock.write(reply('-ERR command not found'));
    } else if (verb === 'event') {
      const format = rest[0] ?? 'plain';
      sock.write(reply(`+OK event listener enabled ${format}`));
      // modesl subscribes `event json BACKGROUND_JOB …` for itself first; the trace follows ours.
      if (!state.streaming && format === 'plain' && rest.length > 1) {
        state.streaming = true;
        subscribed.add(sock);
        if (before) sock.write(before);
        before = undefined;
        stream(sock);
      }
    } else if (verb === 'api') {
      // `show channels as json` as FreeSWITCH prints it; `{"row_count":0}` alone when there are none.
      const up = [...new Set([...channels, ...(streamedUp.get(sock) ?? [])])];
      const body = rest.join(' ') === 'show channels as json'
        ? JSON.stringify(up.length === 0 ? { row_count: 0 } : { row_count: up.length, rows: up.map((uuid) => ({ uuid, direction: 'inbound' })) })
        : '-ERR no such command\n';
      sock.write(`Content-Type: api/response\nContent-Length: ${Buffer.byteLength(body)}\n\n${body}`);
    } else if (verb === 'exit') {
      sock.write(reply('+OK bye') + DISCONNECT, () => sock.end());
    } else {
      sock.write(reply('+OK'));
    }
  };

  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => (sockets.delete(sock), subscribed.delete(sock), streamedUp.delete(sock)));
    sock.on('error', () => {}); // a client vanishing mid-trace is not a test failure here
    sock.setNoDelay(true);
    sock.write(AUTH_REQUEST);
    const state = { authed: false, streaming: false };
    let pending = '';
    sock.on('data', (chunk) => {
      pending += chunk.toString('utf8');
      // A command is one line (plus optional headers) ended by a blank line.
      for (let end = pending.indexOf('\n\n'); end >= 0; end = pending.indexOf('\n\n')) {
        const command = pending.slice(0, end).split('\n')[0]!.trim();
        pending = pending.slice(end + 2);
        answer(sock, command, state);
      }
    });
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => (server.off('error', reject), resolve()));
    });
  await listen(0);
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fake ESL: no TCP address');
  const dropClients = (): void => {
    for (const s of sockets) s.destroy();
  };

  return {
    port: address.port,
    done,
    commands,
    dropClients,
    setChannels: (uuids) => void (channels = [...uuids]),
    setTrace: (bytes) => void (events = splitTrace(bytes).filter((f) => f.event)),
    send: (bytes) => {
      for (const s of subscribed) s.write(bytes);
    },
    down: () =>
      new Promise<void>((resolve) => {
        dropClients();
        server.close(() => resolve());
      }),
    up: () => listen(address.port),
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
