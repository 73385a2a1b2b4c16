/**
 * A fake Asterisk AMI server for tests: loopback TCP, sends the banner, answers Login (and
 * echoes other actions), then replays a recorded trace's bytes exactly as captured — at the
 * trace's own pace (its `Timestamp:` headers) divided by `speed`, or all at once.
 * For reconnect tests (issue #6) it can drop its clients, stop and start listening, answer
 * CoreShowChannels with the channels a test says are up, and stream something else next time.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { gunzipSync } from 'node:zlib';
import { pacing } from './pacing.js';
import { AmiFramer } from '../../src/ami/framer.js';
import type { AmiFrame } from '../../src/ami/frame.js';

export interface FakeAmiOptions {
  /** Raw trace bytes, or a path to a `.ami` / `.ami.gz` file. */
  readonly trace: Buffer | string;
  readonly username: string;
  readonly secret: string;
  /** Replay speed factor: 1 = real time, Infinity (default) = as fast as possible. */
  readonly speed?: number;
  /**
   * The stream stops before the first message matching this until `resume()`: a test looks at a
   * call while it is live for as long as it needs, instead of racing the trace's clock (issue #13).
   */
  readonly pauseBefore?: RegExp;
  /**
   * How the server answers the `Filter` action (issue #15): `apply` (default) as Asterisk does for
   * a user with `write = system`: from then on the session gets only the trace's events one of
   * its filters matches; `refuse` as Asterisk does without it (`Permission denied`); `ignore`
   * never answers it, as a proxy or AMI look-alike that drops actions it does not know.
   */
  readonly filter?: 'apply' | 'refuse' | 'ignore';
  /**
   * Start streaming at the answer to the client's first action after the Login (its Filter)
   * instead of at the Login: a test that compares filtered and unfiltered sessions needs the
   * whole trace to meet the filter.
   */
  readonly streamAfterFirstAction?: boolean;
  /**
   * One PBX timeline shared by every session (issue #17 item 5, failover): a session logging in is
   * streamed from where the last one stopped, not from the start, and CoreShowChannels lists the
   * channels up at that point of the trace (Newchannel minus Hangup), as a real Asterisk would.
   * A session that went away stops taking messages.
   */
  readonly handover?: boolean;
}

export interface FakeAmi {
  readonly port: number;
  /** Resolves once a logged-in client has been sent the whole trace. */
  readonly done: Promise<void>;
  /** Every action received (lower-case), all connections together. */
  readonly actions: string[];
  /** Messages of the trace a session's filters held back, all connections together. */
  readonly filteredOut: number;
  /** The Uniqueids CoreShowChannels lists from now on (none by default). */
  setChannels(uniqueids: readonly string[]): void;
  /** What a client logging in from now on is streamed instead of the trace (e.g. nothing). */
  setTrace(trace: Buffer): void;
  /** Writes raw AMI messages to every logged-in client now. */
  send(bytes: Buffer | string): void;
  /** Drops every client connection, keeps listening. */
  dropClients(): void;
  /** Drops every connection and refuses new ones until `up()`: Asterisk stopped. */
  down(): Promise<void>;
  /** Listens again, on the same port. */
  up(): Promise<void>;
  /** Drops every connection and stops listening. */
  close(): Promise<void>;
  /** Resolves once the stream has stopped at `pauseBefore` (never without it). */
  readonly paused: Promise<void>;
  /** Carries on after `pauseBefore`. */
  resume(): void;
}

const DEFAULT_BANNER = 'Asterisk Call Manager/11.0.0\r\n';

/** Reads a trace file, gunzipping `.gz`. */
export function loadTrace(path: string): Buffer {
  const bytes = readFileSync(path);
  return path.endsWith('.gz') ? gunzipSync(bytes) : bytes;
}

interface TraceMessage {
  readonly bytes: Buffer;
  /** Seconds (Asterisk `Timestamp:`), or undefined for messages without one (FullyBooted). */
  readonly at: number | undefined;
}

/** Splits a trace into its banner and the messages after its own Login response. */
export function splitTrace(trace: Buffer): { banner: Buffer; messages: TraceMessage[] } {
  const text = trace.toString('latin1'); // one char per byte, so offsets are byte offsets
  let pos = 0;
  let banner: Buffer = Buffer.from(DEFAULT_BANNER);
  if (text.startsWith('Asterisk Call Manager')) {
    pos = text.indexOf('\n') + 1;
    banner = trace.subarray(0, pos);
  }
  const messages: TraceMessage[] = [];
  const blank = /\r?\n\r?\n/g;
  let skippedLogin = false;
  while (pos < text.length) {
    blank.lastIndex = pos;
    const m = blank.exec(text);
    const end = m ? m.index + m[0].length : text.length;
    const body = text.slice(pos, end);
    if (!skippedLogin && /^Response:/i.test(body)) {
      skippedLogin = true; // the capture's own login answer; ours is sent live
    } else {
      const ts = /(?:^|\n)Timestamp: *([0-9.]+)/i.exec(body);
      messages.push({ bytes: trace.subarray(pos, end), at: ts ? Number(ts[1]) : undefined });
    }
    skippedLogin = true;
    pos = end;
  }
  return { banner, messages };
}

export async function startFakeAmi(opts: FakeAmiOptions): Promise<FakeAmi> {
  const trace = typeof opts.trace === 'string' ? loadTrace(opts.trace) : opts.trace;
  const split = splitTrace(trace);
  const banner = split.banner;
  let messages = split.messages;
  let channels: readonly string[] = [];
  const actions: string[] = [];
  const loggedIn = new Set<net.Socket>();
  const speed = opts.speed ?? Infinity;
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let markDone!: () => void;
  const done = new Promise<void>((resolve) => (markDone = resolve));
  let markPaused!: () => void;
  const paused = new Promise<void>((resolve) => (markPaused = resolve));
  let resumed = opts.pauseBefore === undefined;
  const waiting: Array<() => void> = [];

  let filteredOut = 0;
  /** Asterisk's per-session whitelist (manager.c match_filter): any regex found in the event text. */
  const passes = (m: TraceMessage, filters: readonly RegExp[]): boolean => {
    if (filters.length === 0) return true;
    const text = m.bytes.toString('latin1');
    // Only events are filtered; what answers an action goes to the session that asked.
    if (!/^Event:/i.test(text) || /(?:^|\n)ActionID:/i.test(text)) return true;
    if (filters.some((f) => f.test(text))) return true;
    filteredOut++;
    return false;
  };

  // The shared timeline's position (handover): the next message any session is to be sent.
  let cursor = 0;
  const channelsAtCursor = (): string[] => {
    const up = new Set<string>();
    for (const m of messages.slice(0, cursor)) {
      const text = m.bytes.toString('latin1');
      const id = /(?:^|\n)Uniqueid: *(\S+)/i.exec(text)?.[1];
      if (id === undefined) continue;
      if (/^Event: *Newchannel\b/i.test(text)) up.add(id);
      else if (/^Event: *Hangup\b/i.test(text)) up.delete(id);
    }
    return [...up];
  };

  const stream = (sock: net.Socket, filters: readonly RegExp[]): void => {
    const list = messages; // this connection's stream, whatever setTrace does meanwhile
    const hold = resumed ? -1 : list.findIndex((m) => opts.pauseBefore!.test(m.bytes.toString('latin1')));
    const start = Date.now();
    const dues = pacing(list.map((m) => (m.at === undefined ? undefined : m.at * 1000)), speed);
    let i = opts.handover ? cursor : 0;
    let due = 0;
    const step = (): void => {
      if (opts.handover) {
        if (sock.destroyed) return;
        i = cursor;
      }
      const batch: Buffer[] = [];
      // Write every message that is due; messages without a Timestamp go with the previous one.
      let holding = false;
      while (i < list.length) {
        if (i === hold && !resumed) {
          holding = true;
          break;
        }
        due = speed === Infinity ? 0 : dues[i]!;
        if (due > Date.now() - start) break;
        if (passes(list[i]!, filters)) batch.push(list[i]!.bytes);
        i++;
        if (opts.handover) cursor = i;
      }
      const last = i === list.length;
      if (batch.length > 0 && !sock.destroyed) sock.write(Buffer.concat(batch), last ? () => markDone() : undefined);
      else if (last) markDone();
      if (holding) {
        waiting.push(step);
        markPaused();
      } else if (!last) {
        const t = setTimeout(() => (timers.delete(t), step()), due - (Date.now() - start));
        timers.add(t);
      }
    };
    step();
  };

  interface Session {
    loggedIn: boolean;
    /** The Filter actions' regular expressions (the stream reads them at each message). */
    readonly filters: RegExp[];
    /** Streaming waits for the first action after the Login (streamAfterFirstAction). */
    waiting: boolean;
  }

  const answer = (sock: net.Socket, f: AmiFrame, state: Session): void => {
    const action = (f.fields.action ?? '').toLowerCase();
    actions.push(action);
    const id = f.fields.actionid;
    const reply = (lines: string[]): void => {
      if (id !== undefined) lines.splice(1, 0, `ActionID: ${id}`);
      sock.write(lines.join('\r\n') + '\r\n\r\n');
    };
    if (action === 'login') {
      if (f.fields.username === opts.username && f.fields.secret === opts.secret) {
        reply(['Response: Success', 'Message: Authentication accepted']);
        state.loggedIn = true;
        loggedIn.add(sock);
        if (opts.streamAfterFirstAction) state.waiting = true;
        else stream(sock, state.filters);
      } else {
        reply(['Response: Error', 'Message: Authentication failed']);
        sock.end(); // Asterisk ends the session after a failed login
      }
    } else if (!state.loggedIn) {
      reply(['Response: Error', 'Message: Authentication Required']);
    } else if (action === 'logoff') {
      reply(['Response: Goodbye', 'Message: Thanks for all the fish.']);
      sock.end();
    } else if (action === 'coreshowchannels') {
      // As Asterisk lists them: a Response, one event per channel, then the Complete event.
      reply(['Response: Success', 'EventList: start', 'Message: Channels will follow']);
      for (const u of opts.handover ? channelsAtCursor() : channels) reply(['Event: CoreShowChannel', `Channel: PJSIP/fake-${u}`, `Uniqueid: ${u}`, `Linkedid: ${u}`]);
      reply(['Event: CoreShowChannelsComplete', 'EventList: Complete', `ListItems: ${opts.handover ? channelsAtCursor().length : channels.length}`]);
    } else if (action === 'filter') {
      if (opts.filter === 'ignore') {
        // no answer at all
      } else if (opts.filter === 'refuse') {
        reply(['Response: Error', 'Message: Permission denied']);
      } else if ((f.fields.operation ?? '').toLowerCase() === 'add' && f.fields.filter) {
        // Asterisk compiles it POSIX extended without REG_NEWLINE, so `.` spans lines: JS's `s`.
        state.filters.push(new RegExp(f.fields.filter, 's'));
        reply(['Response: Success', 'Message: Filter Added Successfully']);
      } else {
        reply(['Response: Error', 'Message: Filter Not Added']);
      }
    } else {
      reply(['Response: Success']);
    }
    if (state.waiting && action !== 'login') {
      state.waiting = false;
      stream(sock, state.filters);
    }
  };

  const server = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => (sockets.delete(sock), loggedIn.delete(sock)));
    sock.on('error', () => {}); // a client vanishing mid-trace is not a test failure here
    sock.setNoDelay(true);
    sock.write(banner);
    const framer = new AmiFramer();
    const state: Session = { loggedIn: false, filters: [], waiting: false };
    sock.on('data', (chunk) => {
      for (const f of framer.push(chunk)) answer(sock, f, state);
    });
  });
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => (server.off('error', reject), resolve()));
    });
  await listen(0);
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fake AMI: no TCP address');
  const dropClients = (): void => {
    for (const s of sockets) s.destroy();
  };

  return {
    port: address.port,
    done,
    actions,
    get filteredOut() {
      return filteredOut;
    },
    setChannels: (ids) => void (channels = [...ids]),
    setTrace: (bytes) => void (messages = splitTrace(bytes).messages),
    send: (bytes) => {
      for (const s of loggedIn) s.write(bytes);
    },
    dropClients,
    down: () =>
      new Promise<void>((resolve) => {
        dropClients();
        server.close(() => resolve());
      }),
    up: () => listen(address.port),
    paused,
    resume: () => {
      resumed = true;
      for (const step of waiting.splice(0)) step();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
