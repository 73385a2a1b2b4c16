/**
 * Routing by number (issue #16 item 5): `only_*` keys limit an endpoint to some calls. With real
 * traces, an endpoint taking one queue, DID, ring group or direction gets exactly the webhooks an
 * unfiltered endpoint of the same schema gets for those calls, in the same order; the webhooks
 * rendered before the match is known are held, then released in order, or dropped unmatched.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config/errors.js';
import { explainConfig } from '../src/config/explain.js';
import { loadConfig, parseConfig } from '../src/config/load.js';
import type { Config, EndpointConfig, EndpointRouting } from '../src/config/types.js';
import type { LifecycleEvent } from '../src/core/lifecycle.js';
import type { CallView } from '../src/core/model.js';
import { EndpointRouter, HELD_PER_CALL } from '../src/emit/routing.js';
import type { WebhookRequest } from '../src/emit/request.js';
import { createMetrics } from '../src/ops/metrics.js';
import { Pipeline } from '../src/pipeline.js';
import { replayFile } from '../src/replay.js';
import { LAB_CONFIG } from './support/replayTrace.js';

const A = 'test/fixtures/asterisk';

/** The lab config with one unfiltered 3CX endpoint and filtered copies of it. */
function labWith(filtered: Record<string, Partial<EndpointRouting>>): Config {
  const lab = loadConfig(LAB_CONFIG);
  const all = lab.endpoints.find((e) => e.name === 'crm-json')!;
  const none: EndpointRouting = { dids: [], queues: [], ringGroups: [], extensions: [], directions: [] };
  const copies: EndpointConfig[] = Object.entries(filtered).map(([name, r]) => ({ ...all, name, routing: { ...none, ...r } }));
  return { ...lab, endpoints: [{ ...all, name: 'all' }, ...copies] };
}

/** Replays the traces one after another through one pipeline, as one PBX's day. */
async function replay(cfg: Config, traces: string[]): Promise<{ requests: WebhookRequest[]; callsOf: Map<string, Set<string>>; pipeline: Pipeline }> {
  const pipeline = new Pipeline(cfg);
  const requests: WebhookRequest[] = [];
  const callsOf = new Map<string, Set<string>>();
  let current = new Set<string>();
  pipeline.onLifecycleEvent = (e: LifecycleEvent) => {
    if (e.type !== 'message') current.add(e.call.id);
  };
  for (const t of traces) {
    current = new Set();
    await replayFile(t, pipeline, (r) => requests.push(r));
    callsOf.set(t, current);
  }
  return { requests, callsOf, pipeline };
}

const callOf = (r: WebhookRequest) => r.orderKey.slice(r.orderKey.indexOf(':') + 1);
/** An endpoint's requests with its name taken out, to compare with another endpoint's. */
const as = (requests: WebhookRequest[], endpoint: string) =>
  requests.filter((r) => r.endpoint === endpoint).map((r) => ({ ...r, endpoint: 'x', orderKey: callOf(r) }));
const ofCalls = (list: ReturnType<typeof as>, calls: Set<string>) => list.filter((r) => calls.has(r.orderKey));
/** Per call, its webhooks in order: what delivery keeps (one lane per call and endpoint). */
function byCall(list: ReturnType<typeof as>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of list) out.set(r.orderKey, [...(out.get(r.orderKey) ?? []), JSON.stringify(r)]);
  return out;
}

describe('routing by number over real traces', () => {
  const SCENARIOS = ['in-queue-answered', 'in-voicemail', 'out-answered', 'in-ringgroup-answered', 'internal'];
  /** Which scenario each filter takes: the same numbers in the Asterisk and the FreeSWITCH lab. */
  const FILTERS: Record<string, [Partial<EndpointRouting>, string]> = {
    sales: [{ queues: ['820'] }, 'in-queue-answered'],
    reception: [{ dids: ['02125550117'] }, 'in-voicemail'],
    desk: [{ ringGroups: ['830'] }, 'in-ringgroup-answered'],
    out: [{ directions: ['outbound'] }, 'out-answered'],
    ext204: [{ extensions: ['204'], directions: ['internal'] }, 'internal'],
  };
  const PBXES = [
    { pbx: 'Asterisk (AMI), 3CX endpoints', config: LAB_CONFIG, dir: 'test/fixtures/asterisk', ext: 'ami' },
    { pbx: 'FreeSWITCH (ESL), an endpoint of every schema', config: 'config/freeswitch-lab.example.yaml', dir: 'test/fixtures/freeswitch', ext: 'esl' },
  ];

  it.each(PBXES)('$pbx: endpoints each taking one queue, DID, ring group, direction or extension get exactly their calls’ webhooks, in order', async ({ config, dir, ext }) => {
    const lab = loadConfig(config);
    const none: EndpointRouting = { dids: [], queues: [], ringGroups: [], extensions: [], directions: [] };
    const base = lab.endpoints.filter((e) => e.enabled);
    const copies = base.flatMap((e) => Object.entries(FILTERS).map(([tag, [r]]) => ({ ...e, name: `${e.name}--${tag}`, routing: { ...none, ...r } }) as EndpointConfig));
    const trace = (t: string) => `${dir}/${t}.${ext}`;
    const { requests, callsOf } = await replay({ ...lab, endpoints: [...base, ...copies] }, SCENARIOS.map(trace));
    let compared = 0;
    for (const e of base) {
      const all = as(requests, e.name);
      for (const [tag, [, scenario]] of Object.entries(FILTERS)) {
        const got = as(requests, `${e.name}--${tag}`);
        // Traces play one after another, so even the order across calls is the unfiltered one.
        expect(got, `${e.name}--${tag}`).toEqual(ofCalls(all, callsOf.get(trace(scenario))!));
        compared += got.length;
      }
    }
    expect(base.length).toBeGreaterThan(0);
    expect(compared).toBeGreaterThan(base.length * 5);
  });

  it('the load trace: concurrent calls split by queue and direction, each stream identical to the unfiltered one', async () => {
    const cfg = labWith({ queue820: { queues: ['820'], directions: ['inbound'] }, outbound: { directions: ['outbound'], extensions: ['117', '202', '204'] } });
    const { requests, pipeline } = await replay(cfg, [`${A}/load.ami.gz`]);
    const all = as(requests, 'all');
    const inbound = as(requests, 'queue820');
    const outbound = as(requests, 'outbound');
    const callsIn = new Set(inbound.map((r) => r.orderKey));
    const callsOut = new Set(outbound.map((r) => r.orderKey));
    expect(callsIn.size).toBe(105);
    expect(callsOut.size).toBe(10);
    // Calls overlap: a held call's webhooks go out later than the unfiltered endpoint's, but each
    // call's own sequence (its delivery lane) is the same, in the same order.
    expect(byCall(inbound)).toEqual(byCall(ofCalls(all, callsIn)));
    expect(byCall(outbound)).toEqual(byCall(ofCalls(all, callsOut)));
    expect(inbound.length + outbound.length).toBe(all.length);
    const stats = pipeline.routing();
    expect(stats.get('queue820')).toEqual({ heldDropped: 0, unmatched: ofCalls(all, callsOut).length, heldNow: 0 });
    expect(stats.get('outbound')).toEqual({ heldDropped: 0, unmatched: ofCalls(all, callsIn).length, heldNow: 0 });
    expect(stats.has('all')).toBe(false);
  });
});

describe('EndpointRouter', () => {
  const routing: EndpointRouting = { dids: [], queues: ['820'], ringGroups: [], extensions: [], directions: [] };
  const call = (over: Partial<CallView> = {}): CallView =>
    ({ id: 'c1', did: '', direction: 'inbound', directionKnown: true, routes: [], legs: [], originExtension: '', endedAt: undefined, ...over }) as CallView;
  const req = (n: number): WebhookRequest => ({ endpoint: 'e', method: 'POST', url: 'http://127.0.0.1/', headers: {}, body: String(n), orderKey: 'e:c1' });
  const inQueue = { routes: [{ role: 'queue' as const, number: '820', at: 0 }] };

  it(`holds at most ${HELD_PER_CALL} webhooks per call, counts the rest, releases the held ones in order`, () => {
    const r = new EndpointRouter(routing);
    for (let i = 0; i < HELD_PER_CALL + 3; i++) expect(r.route({ type: 'leg.ringing', at: i, call: call(), leg: {} as never }, [req(i)])).toEqual([]);
    expect(r.heldNow).toBe(HELD_PER_CALL);
    expect(r.stats.heldDropped).toBe(3);
    const out = r.route({ type: 'route.entered', at: 9, call: call(inQueue), route: inQueue.routes[0]! }, [req(-1)]);
    expect(out.map((x) => x.body)).toEqual([...Array.from({ length: HELD_PER_CALL }, (_, i) => String(i)), '-1']);
    expect(r.heldNow).toBe(0);
    // Matched: later webhooks pass at once, until the call ends.
    expect(r.route({ type: 'call.ended', at: 10, call: call({ ...inQueue, endedAt: 10 }) }, [req(7)])).toEqual([req(7)]);
  });

  it('a call that ends unmatched drops what it held; an event rendering nothing may release', () => {
    const r = new EndpointRouter(routing);
    r.route({ type: 'call.started', at: 0, call: call() }, [req(1)]);
    expect(r.route({ type: 'call.ended', at: 1, call: call({ endedAt: 1 }) }, [req(2)])).toEqual([]);
    expect(r.stats.unmatched).toBe(2);
    expect(r.heldNow).toBe(0);
    r.route({ type: 'call.started', at: 0, call: call({ id: 'c2' }) }, [req(3)]);
    expect(r.route({ type: 'route.entered', at: 1, call: call({ id: 'c2', ...inQueue }), route: inQueue.routes[0]! }, [])).toEqual([req(3)]);
  });

  it('a direction counts once final; messages match by DID and direction only', () => {
    const r = new EndpointRouter({ ...routing, queues: [], directions: ['outbound'] });
    expect(r.route({ type: 'call.started', at: 0, call: call({ direction: 'outbound', directionKnown: false }) }, [req(1)])).toEqual([]);
    expect(r.route({ type: 'leg.dialed', at: 1, call: call({ direction: 'outbound' }), leg: {} as never }, [req(2)])).toEqual([req(1), req(2)]);
    const msg = { type: 'message' as const, at: 0, from: '117', to: '02125550100', body: 'hi', direction: 'outbound' as const };
    expect(r.route(msg, [req(3)])).toEqual([req(3)]);
    expect(new EndpointRouter({ ...routing, queues: [], dids: ['02125550100'] }).route({ ...msg, direction: 'inbound' }, [req(4)])).toEqual([req(4)]);
    expect(new EndpointRouter(routing).route(msg, [req(5)])).toEqual([]);
  });
});

describe('routing metrics', () => {
  it('/metrics exports per routed endpoint what is held and what was dropped past the bound', async () => {
    const routing = new Map([['sales', { heldNow: 3, heldDropped: 0 }], ['desk', { heldNow: 0, heldDropped: 7 }]]);
    const { registry } = createMetrics({
      pbxConnected: () => true, eventsByType: () => new Map(), framesSkipped: () => ({}),
      calls: () => ({ live: 0, started: 0, ended: 0, timedOut: 0, resynced: 0 }),
      webhooks: () => new Map(), outbox: () => new Map(), outboxDepth: () => 0, routing: () => routing,
    });
    const text = await registry.metrics();
    expect(text).toContain('pbxhook_routing_held{endpoint="sales"} 3\n');
    expect(text).toContain('pbxhook_routing_held_dropped_total{endpoint="desk"} 7\n');
    expect(text).toContain('pbxhook_routing_held_dropped_total{endpoint="sales"} 0\n');
  });
});

describe('only_* keys', () => {
  const yaml = 'pbx:\n  type: asterisk\n  username: u\n  secret: s\nwebhooks: ./webhooks.ini\n';
  const parse = (keys: string) => parseConfig(yaml, `[sales]\nurl = https://crm.example.com/hook\nschema = 3cx\n${keys}`, { yamlPath: 'config/pbxhook.yaml' }, {});

  it('a wrong direction names file, key and problem (exit 78)', () => {
    let err: unknown;
    try {
      parse('only_directions = inbound, sideways\n');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain('config/webhooks.ini: [sales] only_directions.1: expected inbound, outbound, internal, comma-separated');
  });

  it('check-config shows the routing table', () => {
    const cfg = parse('only_queues = 820, 821\nonly_directions = inbound\n');
    expect(cfg.endpoints[0]!.routing).toEqual({ dids: [], queues: ['820', '821'], ringGroups: [], extensions: [], directions: ['inbound'] });
    const text = explainConfig(cfg);
    expect(text).toContain('routing (only_* keys; a call must match every key set, and one value of each):\n  [sales] → calls with queue 820 or 821 and direction inbound\n');
    expect(explainConfig(parse(''))).toContain('  [sales] → every call\n');
    expect(parse('').endpoints[0]!.routing).toBeUndefined();
  });
});
