import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import type { VoipRequestEndpoint } from '../src/config/types.js';
import type { RenderContext } from '../src/emit/context.js';
import { renderVoipRequest } from '../src/emit/voip-request.js';
import { declinedCall } from './support/declinedCall.js';
import { replayTrace } from './support/replayTrace.js';

/**
 * The CRM-side VoipWebhookRequest (issue #3): every request has the doc's properties, no other, none
 * of the required ones missing; srcPhone/dstPhone follow the doc's notes per direction. The property
 * list and which ones are optional are read from the vendor doc, not copied into this test.
 */
const DOC = readFileSync('test/fixtures/vendor-docs/crm-voip-webhook-request.txt', 'utf8');
const docProperties: Array<{ name: string; optional: boolean }> = [];
for (const line of DOC.slice(DOC.indexOf('\nProperties\n')).split('\n').map((l) => l.trim())) {
  const m = /^(Optional )?([a-z]\w*)$/.exec(line);
  if (m) docProperties.push({ name: m[2]!, optional: m[1] !== undefined });
}
const documented = new Set(docProperties.map((p) => p.name));
const required = docProperties.filter((p) => !p.optional).map((p) => p.name);

const cfg = loadConfig('config/all-schemas.example.yaml');
const ENDPOINT = cfg.endpoints.find((e): e is VoipRequestEndpoint => e.schema === 'voip-request')!;
const DIRS = ['test/fixtures/asterisk', 'test/fixtures/asterisk-synth', 'test/fixtures/asterisk-freepbx', 'test/fixtures/asterisk-freepbx-synth'];
const traces = DIRS.flatMap((d) => readdirSync(d).filter((f) => /\.ami(\.gz)?$/.test(f)).map((f) => join(d, f)));
const REAL = 'test/fixtures/asterisk';
const SYNTH = 'test/fixtures/asterisk-synth';

type Body = Record<string, string>;

/** Wire values that name the moment, so a test reads which notification went out. */
const LABELLED: VoipRequestEndpoint = {
  ...ENDPOINT,
  eventValues: { ringing: 'RINGING', answered: 'ANSWERED', ended: 'ENDED' },
  dispositionValues: {
    unknown: 'unknown', answered: 'answered', missed: 'missed', busy: 'busy', declined: 'declined', abandoned: 'abandoned',
    timeout: 'timeout', failed: 'failed',
  },
};

async function notifications(trace: string, endpoint: VoipRequestEndpoint = LABELLED): Promise<Body[]> {
  const { events } = await replayTrace(trace, cfg);
  const ctx: RenderContext<VoipRequestEndpoint> = {
    endpoint, timezone: 'UTC', names: cfg.roles.names, directory: cfg.directory, environment: cfg.environment,
  };
  return events.flatMap((e) => renderVoipRequest(e, ctx)).map((r) => JSON.parse(r.body) as Body);
}
const brief = (b: Body): string => `${b['event']} ${b['srcPhone']}→${b['dstPhone']} ${b['disposition']}`;

describe('the VoipWebhookRequest doc', () => {
  it('lists its properties, callId, dstPhoneExt and srcPhoneExt optional', () => {
    expect(docProperties).toEqual([
      { name: 'callId', optional: true }, { name: 'direction', optional: false }, { name: 'disposition', optional: false },
      { name: 'dstPhone', optional: false }, { name: 'dstPhoneExt', optional: true }, { name: 'event', optional: false },
      { name: 'srcPhone', optional: false }, { name: 'srcPhoneExt', optional: true },
    ]);
  });
});

describe('every VoipWebhookRequest of every trace', () => {
  for (const trace of traces) {
    it(trace, async () => {
      const { lines } = await replayTrace(trace, cfg);
      const sent = lines.map((l) => JSON.parse(l) as { endpoint: string; headers: Record<string, string>; body: string });
      for (const r of sent.filter((s) => s.endpoint === ENDPOINT.name)) {
        expect(r.headers['content-type']).toBe('application/json');
        const b = JSON.parse(r.body) as Record<string, unknown>;
        for (const key of Object.keys(b)) expect(documented, `${key} is documented`).toContain(key);
        for (const key of required) expect(Object.keys(b), `${key} is required`).toContain(key);
        for (const [k, v] of Object.entries(b)) expect(typeof v, k).toBe('string');
        // VoipCallDirection's values (the SDK's enum page): In = "in", Out = "out", Internal = "internal".
        expect(['in', 'out', 'internal']).toContain(b['direction']);
        expect(b['callId']).toMatch(/^\d+\.\d+$/);
      }
    });
  }
});

describe('which notifications go out', () => {
  it('in-queue-answered: the agent phone rings, answers, the call ends', async () => {
    expect((await notifications(`${REAL}/in-queue-answered.ami`)).map(brief)).toEqual([
      'RINGING 05552221133→202 unknown', 'ANSWERED 05552221133→202 answered', 'ENDED 05552221133→202 answered',
    ]);
  });

  it('out-answered: the client rings for the operator who dialled, answers, the call ends', async () => {
    expect((await notifications(`${REAL}/out-answered.ami`)).map(brief)).toEqual([
      'RINGING 117→05552221133 unknown', 'ANSWERED 117→05552221133 answered', 'ENDED 117→05552221133 answered',
    ]);
  });

  it('internal: the called operator rings, answers, the call ends', async () => {
    expect((await notifications(`${REAL}/internal.ami`)).map(brief)).toEqual([
      'RINGING 117→204 unknown', 'ANSWERED 117→204 answered', 'ENDED 117→204 answered',
    ]);
  });

  it('a missed queue call: the popup once although the queue rings the agent three times, then the end', async () => {
    expect((await notifications(`${SYNTH}/in-queue-missed.ami`)).map(brief)).toEqual([
      'RINGING 05552221133→202 unknown', 'ENDED 05552221133→202 timeout',
    ]);
  });

  it('missed, busy and abandoned calls end with their own disposition', async () => {
    expect((await notifications(`${REAL}/out-missed.ami`)).map(brief).at(-1)).toBe('ENDED 117→05552221133 missed');
    expect((await notifications(`${REAL}/in-busy.ami`)).map(brief)).toEqual(['ENDED 05552221133→202 busy']);
    expect((await notifications(`${REAL}/in-queue-abandoned.ami`)).map(brief).at(-1)).toBe('ENDED 05552221133→202 abandoned');
  });

  it('a call the phone declined ends with disposition_declined (issue #12)', () => {
    const ctx: RenderContext<VoipRequestEndpoint> = {
      endpoint: LABELLED, timezone: 'UTC', names: cfg.roles.names, directory: cfg.directory, environment: cfg.environment,
    };
    const sent = declinedCall(cfg).events.flatMap((e) => renderVoipRequest(e, ctx)).map((r) => JSON.parse(r.body) as Body);
    expect(sent.map(brief)).toEqual(['RINGING 05552221133→117 unknown', 'ENDED 05552221133→117 declined']);
  });

  it('a transfer: the second operator gets their own popup and answer', async () => {
    expect((await notifications(`${REAL}/in-queue-blind-transfer.ami`)).map(brief)).toEqual([
      'RINGING 05552221133→117 unknown', 'ANSWERED 05552221133→117 answered',
      'RINGING 05552221133→204 unknown', 'ANSWERED 05552221133→204 answered', 'ENDED 05552221133→204 answered',
    ]);
  });

  it('the events key filters on ringing, answered and ended', async () => {
    const only = await notifications(`${REAL}/in-queue-answered.ami`, { ...LABELLED, events: ['ringing'] });
    expect(only.map((b) => b['event'])).toEqual(['RINGING']);
  });
});

describe('srcPhone / dstPhone per direction, as the doc notes say', () => {
  const first = async (trace: string): Promise<Body> => (await notifications(trace))[0]!;

  it('incoming: src the client\'s external number, dst the operator receiving; no extensions', async () => {
    const b = await first(`${REAL}/in-queue-answered.ami`);
    expect(b).toEqual({ callId: '1795301990.9', event: 'RINGING', direction: 'in', srcPhone: '05552221133', dstPhone: '202', disposition: 'unknown' });
  });

  it('outgoing: src the operator who initiated, dst the client\'s external number', async () => {
    expect(await first(`${REAL}/out-answered.ami`)).toMatchObject({ direction: 'out', srcPhone: '117', dstPhone: '05552221133' });
    expect(await first(`${SYNTH}/out-click-to-call.ami`)).toMatchObject({ direction: 'out', srcPhone: '117', dstPhone: '05552221133' });
  });

  it('internal: src the operator who initiated, dst the operator receiving', async () => {
    expect(await first(`${REAL}/internal.ami`)).toMatchObject({ direction: 'internal', srcPhone: '117', dstPhone: '204' });
  });

  it('never sends srcPhoneExt or dstPhoneExt: the PSTN does not carry the client\'s extension', async () => {
    for (const trace of traces.filter((t) => !t.endsWith('.gz'))) {
      for (const b of await notifications(trace)) {
        expect(b).not.toHaveProperty('srcPhoneExt');
        expect(b).not.toHaveProperty('dstPhoneExt');
      }
    }
  });
});

describe('wire values', () => {
  it('default to the confirmed enum member names', () => {
    expect(ENDPOINT.eventValues).toEqual({ ringing: 'NotifyStart', answered: 'NotifyStart', ended: 'NotifyStart' });
    expect(ENDPOINT.dispositionValues).toEqual({
      unknown: 'Unknown', answered: 'Answered', missed: 'Unknown', busy: 'Unknown', declined: 'Unknown', abandoned: 'Unknown',
      timeout: 'Unknown', failed: 'Unknown',
    });
  });

  it('a GET endpoint gets the fields in the query string and an empty body', async () => {
    const { events } = await replayTrace(`${REAL}/out-answered.ami`, cfg);
    const ctx: RenderContext<VoipRequestEndpoint> = {
      endpoint: { ...ENDPOINT, method: 'GET' }, timezone: 'UTC', names: {}, directory: {}, environment: 'LAB',
    };
    const [r] = events.flatMap((e) => renderVoipRequest(e, ctx));
    expect(r).toMatchObject({ method: 'GET', body: '', headers: {} });
    expect(Object.fromEntries(new URL(r!.url).searchParams)).toEqual({
      callId: '1795302154.26', event: 'NotifyStart', direction: 'out', srcPhone: '117', dstPhone: '05552221133', disposition: 'Unknown',
    });
  });
});
