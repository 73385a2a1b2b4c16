import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import type { Config, PetDeskEndpoint } from '../src/config/types.js';
import type { LifecycleEvent, MessageEvent } from '../src/core/lifecycle.js';
import type { RenderContext } from '../src/emit/context.js';
import { renderPetDesk } from '../src/emit/petdesk.js';
import type { WebhookRequest } from '../src/emit/request.js';
import { replayTrace } from './support/replayTrace.js';

/**
 * PetDesk Phones (issue #3): every request pbxhook sends, for every shared trace, has exactly the
 * keys of the doc's template for its event, in the doc's order, with the doc's literal values.
 * The templates are read from the vendor doc itself, not copied into this test.
 */
const DOC = readFileSync('test/fixtures/vendor-docs/petdesk-phones-webhooks.txt', 'utf8');
const PLACEHOLDER = /^\{[A-Z_]+\}$/;

interface Template {
  readonly json: boolean;
  readonly fields: ReadonlyArray<readonly [string, string]>;
}

/** A template's name: its eventType, plus eventTarget where two templates share one (ringAttempt). */
const nameOf = (fields: ReadonlyArray<readonly [string, string]>): string => {
  const get = (k: string) => fields.find(([key]) => key === k)?.[1];
  return get('eventType') === 'ringAttempt' ? `ringAttempt/${String(get('eventTarget'))}` : String(get('eventType'));
};

function readTemplates(): Map<string, Template> {
  const out = new Map<string, Template>();
  for (const line of DOC.split('\n').map((l) => l.trim())) {
    if (!line.startsWith('eventType=')) continue;
    const fields = line.split('&').map((kv) => kv.split('=') as [string, string]);
    out.set(nameOf(fields), { json: false, fields });
  }
  for (const block of DOC.match(/^\{\n[\s\S]*?\n\}$/gm) ?? []) {
    const fields = Object.entries(JSON.parse(block) as Record<string, string>);
    out.set(nameOf(fields), { json: true, fields });
  }
  return out;
}
const templates = readTemplates();

function fieldsOf(r: WebhookRequest): Array<[string, string]> {
  const type = r.headers['content-type'] ?? '';
  if (type === 'application/json') return Object.entries(JSON.parse(r.body) as Record<string, string>);
  expect(type).toBe('application/x-www-form-urlencoded');
  return [...new URLSearchParams(r.body)];
}

/** Same keys, same order, literal values as written, every value a string. */
function checkAgainstDoc(r: WebhookRequest): string {
  const fields = fieldsOf(r);
  const name = nameOf(fields);
  const t = templates.get(name);
  expect(t, `${name} is a documented event`).toBeDefined();
  expect(r.headers['content-type']).toBe(t!.json ? 'application/json' : 'application/x-www-form-urlencoded');
  expect(fields.map(([k]) => k), name).toEqual(t!.fields.map(([k]) => k));
  t!.fields.forEach(([k, v], i) => {
    expect(typeof fields[i]![1], `${name}.${k}`).toBe('string');
    if (!PLACEHOLDER.test(v)) expect(fields[i]![1], `${name}.${k}`).toBe(v);
  });
  return name;
}

const DIRS = ['test/fixtures/asterisk', 'test/fixtures/asterisk-synth', 'test/fixtures/asterisk-freepbx', 'test/fixtures/asterisk-freepbx-synth'];
const traces = DIRS.flatMap((d) => readdirSync(d).filter((f) => /\.ami(\.gz)?$/.test(f)).map((f) => join(d, f)));
const cfg = loadConfig('config/all-schemas.example.yaml');
const petdesk = cfg.endpoints.filter((e): e is PetDeskEndpoint => e.schema === 'petdesk');
const events = new Map<string, LifecycleEvent[]>();

beforeAll(async () => {
  for (const t of traces) events.set(t.replace(/^.*\/|\.ami(\.gz)?$/g, ''), (await replayTrace(t, cfg)).events);
});

function ctxFor(over: Partial<PetDeskEndpoint>, config: Config = cfg): RenderContext<PetDeskEndpoint> {
  const base = petdesk.find((e) => e.target === (over.target ?? 'phoneNumber'))!;
  return { endpoint: { ...base, ...over }, timezone: 'UTC', names: config.roles.names, directory: config.directory, environment: '' };
}

function render(trace: string, ctx: RenderContext<PetDeskEndpoint>): WebhookRequest[] {
  return (events.get(trace) ?? []).flatMap((e) => renderPetDesk(e, ctx));
}

const form = (r: WebhookRequest): Record<string, string> => Object.fromEntries(fieldsOf(r));

describe('PetDesk doc templates', () => {
  it('reads ten urlencoded and two JSON templates from the doc', () => {
    expect([...templates.keys()].sort()).toEqual([
      'ExtensionAnswered', 'HangupCall', 'InboundCall', 'inboundCallCompleted', 'inboundMessage', 'outboundCall',
      'outboundMessage', 'queueEntered', 'ringAttempt/extension', 'ringAttempt/ringGroup', 'voicemailHangup',
    ].sort());
    expect([...templates.values()].filter((t) => t.json)).toHaveLength(2);
  });

  it('every request of every trace matches its template, and every template is produced', () => {
    const seen = new Set<string>();
    for (const [, evs] of events) {
      for (const ep of petdesk) for (const r of evs.flatMap((e) => renderPetDesk(e, ctxFor(ep)))) seen.add(checkAgainstDoc(r));
    }
    // No trace has a text sent from a phone: outboundMessage is checked below.
    expect([...seen].sort()).toEqual([...templates.keys()].filter((n) => n !== 'outboundMessage').sort());
  });
});

describe('PetDesk per target', () => {
  const section: Record<PetDeskEndpoint['target'], string[]> = {
    phoneNumber: ['InboundCall', 'HangupCall', 'inboundMessage', 'outboundMessage'],
    extension: ['ringAttempt/extension', 'ExtensionAnswered', 'inboundCallCompleted', 'voicemailHangup', 'outboundCall'],
    ringGroup: ['ringAttempt/ringGroup'],
    queue: ['queueEntered'],
  };
  for (const target of Object.keys(section) as PetDeskEndpoint['target'][]) {
    it(`${target} receives only its own section's events`, () => {
      for (const trace of events.keys()) {
        for (const r of render(trace, ctxFor({ target }))) expect(section[target], trace).toContain(nameOf(fieldsOf(r)));
      }
    });
  }

  it('numbers: an extension endpoint for 117 hears nothing of 204', () => {
    const all = render('in-ringgroup2-answered', ctxFor({ target: 'extension' }));
    const only117 = render('in-ringgroup2-answered', ctxFor({ target: 'extension', numbers: ['117'] }));
    expect(all.map((r) => form(r)['extNumber'] ?? form(r)['extensionNumber'])).toEqual(['117', '204', '117', '117']);
    expect(only117.map((r) => form(r)['eventType'])).toEqual(['ringAttempt', 'ExtensionAnswered', 'inboundCallCompleted']);
  });

  it('numbers: phone number, ring group and queue endpoints filter on the DID, rgNumber and queueNumber', () => {
    expect(render('in-queue-answered', ctxFor({ target: 'phoneNumber', numbers: ['02125550830'] }))).toEqual([]);
    expect(render('in-queue-answered', ctxFor({ target: 'phoneNumber', numbers: ['02125550800'] }))).toHaveLength(2);
    expect(render('in-ringgroup2-answered', ctxFor({ target: 'ringGroup', numbers: ['830'] }))).toEqual([]);
    expect(render('in-ringgroup2-answered', ctxFor({ target: 'ringGroup', numbers: ['831'] })).map(form)).toMatchObject([{ rgNumber: '831' }]);
    expect(render('in-queue-answered', ctxFor({ target: 'queue', numbers: ['821'] }))).toEqual([]);
    expect(render('in-queue-answered', ctxFor({ target: 'queue', numbers: ['820'] })).map(form)).toMatchObject([{ queueNumber: '820' }]);
  });

  it('events: an endpoint that lists event names gets only those', () => {
    const sent = render('in-queue-answered', ctxFor({ target: 'extension', events: ['ExtensionAnswered'] }));
    expect(sent.map((r) => form(r)['eventType'])).toEqual(['ExtensionAnswered']);
  });

  it('GET endpoints get the same fields in the query string', () => {
    const [r] = render('in-queue-answered', ctxFor({ target: 'queue', method: 'GET', url: 'http://127.0.0.1:8080/pd?k=1' }));
    expect(r?.body).toBe('');
    expect(r?.url).toMatch(/^http:\/\/127\.0\.0\.1:8080\/pd\?k=1&eventType=queueEntered&eventTarget=queue&/);
  });
});

describe('PetDesk values', () => {
  it('InboundCall: the DID, its configured name, the endpoint group and prefix, the caller', () => {
    const [r] = render('in-queue-answered', ctxFor({ target: 'phoneNumber', didGroup: 'Main', cidPrefix: 'VET:' }));
    expect(form(r!)).toEqual({
      eventType: 'InboundCall', eventTarget: 'phoneNumber', containerId: 'lab-container', tenantId: 'lab-tenant',
      didNumber: '02125550800', didDescription: 'Support line', didGroup: 'Main', cidPrefix: 'VET:',
      callUuid: '1795301990.9', callerIdNum: '05552221133', callerIdName: '05552221133',
    });
  });

  it('HangupCall: extNumber/extName only when a person answered', () => {
    const hangup = (trace: string) => render(trace, ctxFor({ target: 'phoneNumber' })).map(form).find((f) => f['eventType'] === 'HangupCall');
    expect(hangup('in-queue-answered')).toMatchObject({ extNumber: '202', extName: 'Bob Example' });
    // A transfer: the person the caller talked to last.
    expect(hangup('in-queue-blind-transfer')).toMatchObject({ extNumber: '204', extName: 'Carol Example' });
    for (const trace of ['in-queue-abandoned', 'in-queue-missed', 'in-voicemail', 'in-busy', 'in-ringgroup2-missed']) {
      expect(hangup(trace), trace).toMatchObject({ extNumber: '', extName: '' });
    }
  });

  it('the same callUuid for every event of a call, whatever the target', () => {
    const ids = new Set(petdesk.flatMap((ep) => render('in-queue-attended-transfer-refer', ctxFor(ep))).map((r) => form(r)['callUuid']));
    expect([...ids]).toEqual(['1795400142.105']);
  });

  it('extension: a voicemail left for 117, an outbound call placed by 117', () => {
    const vm = render('in-voicemail', ctxFor({ target: 'extension' })).map(form);
    expect(vm.map((f) => f['eventType'])).toEqual(['ringAttempt', 'voicemailHangup']);
    expect(vm[1]).toMatchObject({ extNumber: '117', extName: 'Alice Example', callerIdNum: '05552221133' });
    for (const trace of ['out-answered', 'out-missed', 'out-click-to-call', 'out-caller-cancel']) {
      expect(render(trace, ctxFor({ target: 'extension' })).map(form), trace).toEqual([{
        eventType: 'outboundCall', containerId: 'lab-container', tenantId: 'lab-tenant', extNumber: '117',
        extName: 'Alice Example', callUuid: expect.any(String), numberDialed: '05552221133',
      }]);
    }
  });

  it('an internal call reaches the called extension only, with the calling extension as caller', () => {
    const sent = petdesk.flatMap((ep) => render('internal', ctxFor(ep)));
    expect(sent.map((r) => [r.endpoint, form(r)['eventType'], form(r)['callerIdNum']])).toEqual([
      ['petdesk-extensions', 'ringAttempt', '117'],
      ['petdesk-extensions', 'ExtensionAnswered', '117'],
      ['petdesk-extensions', 'inboundCallCompleted', '117'],
    ]);
  });
});

describe('PetDesk text messages', () => {
  it('the in-message trace gives an inboundMessage exactly per the doc', () => {
    const [r, ...rest] = render('in-message', ctxFor({ target: 'phoneNumber' }));
    expect(rest).toEqual([]);
    expect(r?.headers).toEqual({ 'content-type': 'application/json' });
    expect(r?.body).toBe(
      '{"eventType":"inboundMessage","toNumber":"02125550800","fromNumber":"05552221133","containerID":"lab-container",' +
        '"tenantID":"lab-tenant","conversationID":"02125550800-05552221133","messageText":"Hello from the lab"}',
    );
    expect(checkAgainstDoc(r!)).toBe('inboundMessage');
  });

  it('a text from a phone is an outboundMessage of the same conversation; the text is JSON-escaped', () => {
    const text = 'Rex is "ready" \\ pick-up at 5\nThanks — Ünal 🐶';
    const ev: MessageEvent = { type: 'message', at: 1, from: '02125550800', to: '05552221133', body: text, direction: 'outbound' };
    const [r] = renderPetDesk(ev, ctxFor({ target: 'phoneNumber' }));
    expect(checkAgainstDoc(r!)).toBe('outboundMessage');
    expect(JSON.parse(r!.body)).toMatchObject({ fromNumber: '02125550800', toNumber: '05552221133', conversationID: '02125550800-05552221133', messageText: text });
    expect(r!.body).toContain('\\"ready\\" \\\\ pick-up at 5\\nThanks');
  });

  it('texts go to phone number endpoints only, filtered on the customer number', () => {
    const ev = (events.get('in-message') ?? [])[0]!;
    expect(renderPetDesk(ev, ctxFor({ target: 'extension' }))).toEqual([]);
    expect(renderPetDesk(ev, ctxFor({ target: 'phoneNumber', numbers: ['05552221133'] }))).toEqual([]);
    expect(renderPetDesk(ev, ctxFor({ target: 'phoneNumber', numbers: ['02125550800'] }))).toHaveLength(1);
  });
});
