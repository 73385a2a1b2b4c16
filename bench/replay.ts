import { createRequire } from 'node:module';
import { connectAmi } from '../src/ami/client.js';
import { AmiFramer } from '../src/ami/framer.js';
import { wantsAmiEvent, wantsAmiEventNamed } from '../src/ami/normalise.js';
import type { Config } from '../src/config/types.js';
import { DEFAULT_ROLES } from '../src/core/roles.js';
import { Pipeline } from '../src/pipeline.js';
import { serveAmi } from './amiServer.js';
import { floorParse } from './floor.js';
import { chunks, filtered, repeatedLoad } from './inputs.js';

/** Issue #7 §1: replay throughput against the floor and asterisk-manager, in one process. */

const cfg: Pick<Config, 'roles' | 'calls' | 'endpoints' | 'directory' | 'environment'> = {
  roles: { ...DEFAULT_ROLES, ringGroups: ['830@internal', '831@internal'] },
  calls: { idleTimeoutSeconds: 14_400, timezone: 'UTC' },
  endpoints: [{ name: 'crm', enabled: true, schema: '3cx', url: 'http://127.0.0.1:9/3cx', method: 'POST', variant: 'json', events: [], recordingUrl: 'https://pbx.example.com/recordings/{file}' }],
  directory: {},
  environment: 'default',
};

export interface Measure {
  readonly ms: number;
  readonly events: number;
  readonly calls?: number;
  readonly requests?: number;
}

export function floor(buffers: readonly Buffer[]): Measure {
  const t0 = performance.now();
  let carry = '';
  let events = 0;
  for (const c of chunks(buffers)) {
    const r = floorParse(c, carry);
    carry = r.carry;
    events += r.frames;
  }
  return { ms: performance.now() - t0, events };
}

export function pipeline(buffers: readonly Buffer[]): Measure {
  const t0 = performance.now();
  const framer = new AmiFramer({ filter: wantsAmiEvent });
  const p = new Pipeline(cfg);
  let requests = 0;
  for (const c of chunks(buffers)) for (const f of framer.push(c)) requests += p.amiFrame(f).length;
  for (const f of framer.end()) requests += p.amiFrame(f).length;
  return { ms: performance.now() - t0, events: p.ami.stats.events + framer.stats.filtered, calls: p.tracker.stats.callsEnded, requests };
}

type Manager = {
  on(e: string, fn: (x: unknown) => void): void;
  connect(port: number, host: string, cb: () => void): void;
  login(cb: (err?: unknown) => void): void;
  disconnect(): void;
};
const createManager = createRequire(import.meta.url)('asterisk-manager') as (...a: unknown[]) => Manager;

/** asterisk-manager alone: its parser and event emitter over a local socket. */
export async function asteriskManager(buffers: readonly Buffer[], expected: number): Promise<Measure> {
  const server = await serveAmi(buffers);
  const mgr = createManager(undefined, '127.0.0.1', 'bench', 'bench', true);
  let events = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    mgr.on('managerevent', () => {
      if (++events >= expected) resolve();
    });
    mgr.connect(server.port, '127.0.0.1', () => mgr.login(() => undefined));
  });
  const ms = performance.now() - t0;
  mgr.disconnect();
  await server.close();
  return { ms, events };
}

/** The live path: the same socket through pbxhook's client (asterisk-manager) and the whole pipeline. */
export async function live(buffers: readonly Buffer[], expected: number): Promise<Measure> {
  const server = await serveAmi(buffers);
  const p = new Pipeline(cfg);
  let events = 0;
  let requests = 0;
  const quiet = { info: () => undefined, warn: () => undefined };
  const t0 = performance.now();
  let done: () => void = () => undefined;
  const finished = new Promise<void>((r) => (done = r));
  const res = await connectAmi(
    { host: '127.0.0.1', port: server.port, username: 'bench', secret: 'bench', timeoutMs: 60_000 },
    {
      onFrame: (f) => {
        requests += p.amiFrame(f).length;
        if (f.fields['event'] !== undefined && ++events >= expected) done();
      },
      // As the daemon does: noise is dropped by name before it becomes a frame; counted to know the end.
      accept: (event, variable) => {
        const keep = wantsAmiEventNamed(event, variable);
        if (!keep && ++events >= expected) done();
        return keep;
      },
    },
    quiet,
  );
  if (!res.ok) throw res.error;
  await finished;
  const ms = performance.now() - t0;
  await Promise.race([res.session.close(), new Promise((r) => setTimeout(r, 1000))]);
  await server.close();
  return { ms, events, calls: p.tracker.stats.callsEnded, requests };
}

export { filtered, repeatedLoad };
