import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';

/** The recorded load trace (17,723 events, 115 calls, 158 s). */
export function loadTrace(): Buffer {
  return gunzipSync(readFileSync('test/fixtures/asterisk/load.ami.gz'));
}

const ID_LINE = /^(\w*(?:uniqueid|linkedid)): (\d+)\.(\d+)\r$/gim;
const TIMESTAMP_LINE = /^Timestamp: (\d+)\.(\d+)\r$/gm;

/**
 * `copies` back-to-back copies of the load trace's events, each shifted 200 s later and with its
 * Uniqueids/Linkedids renumbered, so the tracker sees distinct calls (issue #7). Banner and login
 * response only once, at the start.
 */
export function repeatedLoad(copies: number): Buffer[] {
  const text = loadTrace().toString('utf8');
  const firstEvent = text.indexOf('Event: ');
  const head = text.slice(0, firstEvent);
  const body = text.slice(firstEvent);
  const out: Buffer[] = [Buffer.from(head)];
  for (let i = 0; i < copies; i++) {
    const shifted = body
      .replace(ID_LINE, (_, key: string, sec: string, seq: string) => `${key}: ${sec}.${Number(seq) + i * 100_000}\r`)
      .replace(TIMESTAMP_LINE, (_, sec: string, frac: string) => `Timestamp: ${Number(sec) + i * 200}.${frac}\r`);
    out.push(Buffer.from(shifted));
  }
  return out;
}

/** Splits buffers into socket-sized chunks, as a TCP stream would deliver them. */
export function* chunks(buffers: readonly Buffer[], size = 64 * 1024): Generator<Buffer> {
  for (const b of buffers) for (let i = 0; i < b.length; i += size) yield b.subarray(i, Math.min(b.length, i + size));
}

/** The events the model uses: what an AMI event filter would let through (bench: filtered trace). */
export const NEEDED_EVENTS = [
  'Newchannel', 'NewCallerid', 'Newstate', 'DialBegin', 'DialState', 'DialEnd', 'Newexten', 'VarSet',
  'QueueCallerJoin', 'QueueCallerAbandon', 'AgentConnect', 'BridgeEnter', 'BridgeLeave', 'BlindTransfer',
  'AttendedTransfer', 'Hold', 'Unhold', 'MessageWaiting', 'Hangup', 'UserEvent',
];

/** Keeps only the frames Asterisk sends with the eventfilter whitelist the README recommends. */
export function filtered(buffers: readonly Buffer[]): Buffer[] {
  const keep = new Set(NEEDED_EVENTS);
  return buffers.map((b) =>
    Buffer.from(
      b
        .toString('utf8')
        .split('\r\n\r\n')
        .filter((frame) => {
          const m = /^Event: (\w+)/.exec(frame);
          if (!m) return true;
          // The second whitelist line: eventfilter=Variable: (MIXMONITOR_FILENAME|QUEUESTATUS)
          if (m[1] === 'VarSet') return /\r\nVariable: (MIXMONITOR_FILENAME|QUEUESTATUS)\r\n/.test(frame);
          // The third: eventfilter=EventName: STREAM_(BEGIN|END)
          if (m[1] === 'CEL') return /\r\nEventName: STREAM_(BEGIN|END)\r\n/.test(frame);
          return keep.has(m[1]!);
        })
        .join('\r\n\r\n'),
    ),
  );
}
