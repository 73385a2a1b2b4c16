import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { VOIPAPPZ_PLACEHOLDERS } from '../src/config/endpoints.js';
import { ConfigError } from '../src/config/errors.js';
import { loadConfig, parseConfig } from '../src/config/load.js';
import type { VoipAppzEndpoint, VoipAppzEvent } from '../src/config/types.js';
import type { LifecycleEvent } from '../src/core/lifecycle.js';
import type { RenderContext } from '../src/emit/context.js';
import { renderVoipAppz } from '../src/emit/voipappz.js';
import { DEFAULT_BODY_TEMPLATE, VOIPAPPZ_FIELDS } from '../src/emit/voipappz-template.js';
import { declinedCall } from './support/declinedCall.js';
import { replayTrace } from './support/replayTrace.js';

/**
 * VoipAppz (issue #3): every body pbxhook sends has exactly the doc's fields, in the doc's order,
 * with the doc's types and value spellings. The field list, example types and enumerations are read
 * from the vendor doc's "Supported field types" body, not copied into this test.
 */
const DOC = readFileSync('test/fixtures/vendor-docs/voipappz-webhooks.txt', 'utf8');
const BODY = DOC.slice(DOC.indexOf('Supported field types:'));

type DocType = 'string' | 'number' | 'null';
const docFields: Array<{ name: string; type: DocType }> = [];
for (const line of BODY.split('\n')) {
  const m = /^\s*,?\s*"(\w+)"\s*:\s*("[^"]*"|[^,\s/]+)/.exec(line);
  if (m) docFields.push({ name: m[1]!, type: m[2]!.startsWith('"') ? 'string' : m[2] === 'null' ? 'null' : 'number' });
}
const docType = new Map(docFields.map((f) => [f.name, f.type]));

/** "Cause Of Call: answer/busy/no_answer" */
const CAUSES = /Cause Of Call: ([\w/]+)/.exec(BODY)![1]!.split('/');
/** "Direction Of Call: Incoming / Outgoing", spelled in lower case as the example's "outgoing". */
const DIRECTIONS = /Direction Of Call: (.*)$/m.exec(BODY)![1]!.split('/').map((s) => s.trim().toLowerCase());
/** "Queue Disposition: timeout (system timeout) / abandoned (caller hung)/ anser": "anser" is sent as "answer" (docs/webhooks/voipappz.md). */
const QUEUE_DISPOSITIONS = /Queue Disposition: (.*)$/m
  .exec(BODY)![1]!
  .split('/')
  .map((s) => s.replace(/\(.*\)/, '').trim())
  .map((s) => (s === 'anser' ? 'answer' : s));

/** Doc string fields that are null when the call has no such value (no DID, not answered, no queue…). */
const NULLABLE = new Set(['answer_at', 'cause', 'sip_status', 'recording_url', 'did_number', 'did_name', 'queue_disposition', 'queue_name']);

const cfg = loadConfig('config/all-schemas.example.yaml');
const DIRS = ['test/fixtures/asterisk', 'test/fixtures/asterisk-synth', 'test/fixtures/asterisk-freepbx', 'test/fixtures/asterisk-freepbx-synth'];
const traces = DIRS.flatMap((d) => readdirSync(d).filter((f) => /\.ami(\.gz)?$/.test(f)).map((f) => join(d, f)));

interface Sent {
  endpoint: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}
const voipappz = (lines: string[]): Sent[] => lines.map((l) => JSON.parse(l) as Sent).filter((r) => r.endpoint.startsWith('voipappz'));
const fieldsOf = (r: Sent): Record<string, unknown> =>
  r.method === 'GET' ? Object.fromEntries(new URL(r.url).searchParams) : (JSON.parse(r.body) as Record<string, unknown>);

function checkTypes(b: Record<string, unknown>, where: string): void {
  for (const [key, value] of Object.entries(b)) {
    const at = `${where}: ${key} = ${JSON.stringify(value)}`;
    const t = docType.get(key);
    // The doc's bare 039000000 is not valid JSON and a number would drop the leading 0: sent as text.
    if (key === 'destination') expect(typeof value === 'string' || value === null, at).toBe(true);
    else if (t === 'number') expect(typeof value, at).toBe('number');
    else if (t === 'string' && !NULLABLE.has(key)) expect(typeof value, at).toBe('string');
    else expect(typeof value === 'string' || value === null, at).toBe(true);
  }
  expect(DIRECTIONS, where).toContain(b['direction']);
  expect([...CAUSES, null], where).toContain(b['cause']);
  expect([...QUEUE_DISPOSITIONS, null], where).toContain(b['queue_disposition']);
  expect(b['uuid'], where).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  expect(b['created_at'], where).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$/);
  for (const k of ['start_at', 'duration_time', 'billing_duration_time']) expect(b[k], `${where}: ${k}`).toMatch(/^\d\d:\d\d:\d\d$/);
  if (b['answer_at'] !== null) expect(b['answer_at'], where).toMatch(/^\d\d:\d\d:\d\d$/);
  if (b['sip_status'] !== null) expect(b['sip_status'], where).toMatch(/^[2-6]\d\d$/);
  expect(b['environment_name'], where).toBe('LAB');
}

describe('the VoipAppz doc', () => {
  it('lists 27 body fields; pbxhook and its config check know exactly those, in the doc order', () => {
    expect(docFields).toHaveLength(27);
    expect([...VOIPAPPZ_FIELDS]).toEqual(docFields.map((f) => f.name));
    expect(VOIPAPPZ_PLACEHOLDERS).toEqual(docFields.map((f) => f.name));
  });
  it('is the default body, printed in full on docs/webhooks/voipappz.md', () => {
    expect(Object.keys(JSON.parse(DEFAULT_BODY_TEMPLATE) as object)).toEqual(docFields.map((f) => f.name));
    expect(readFileSync('docs/webhooks/src/voipappz.md', 'utf8')).toContain(DEFAULT_BODY_TEMPLATE);
  });
  it('enumerates the directions, causes and queue dispositions', () => {
    expect(DIRECTIONS).toEqual(['incoming', 'outgoing']);
    expect(CAUSES).toEqual(['answer', 'busy', 'no_answer']);
    expect(QUEUE_DISPOSITIONS).toEqual(['timeout', 'abandoned', 'answer']);
  });
});

describe('every VoipAppz webhook of every trace', () => {
  for (const trace of traces) {
    it(trace, async () => {
      const { lines, events } = await replayTrace(trace, cfg);
      const sent = voipappz(lines);
      for (const [i, r] of sent.entries()) {
        const b = fieldsOf(r);
        const where = `${trace} #${i + 1} [${r.endpoint}]`;
        // No undocumented field, none missing, in the doc's order: the default body is the doc's.
        expect(Object.keys(b), where).toEqual(docFields.map((f) => f.name));
        if (r.method === 'GET') {
          expect(r.body, where).toBe('');
          expect(r.headers['content-type'], where).toBeUndefined();
        } else {
          expect(r.headers['content-type'], where).toBe('application/json');
          checkTypes(b, where);
        }
      }
      // Call:Reporting once per call, and every webhook of a call carries the same uuid.
      const ended = events.filter((e) => e.type === 'call.ended').length;
      expect(sent.filter((r) => r.endpoint === 'voipappz-reporting')).toHaveLength(ended);
      const uuids = new Set(sent.map((r) => fieldsOf(r)['uuid']));
      expect(uuids.size).toBe(ended);
    });
  }
});

describe('VoipAppz events in the recorded calls', () => {
  const run = async (trace: string) => voipappz((await replayTrace(trace, cfg)).lines);

  it('in-queue-answered: IVR start and end, the agent rings and answers, hangup, then reporting', async () => {
    const sent = await run('test/fixtures/asterisk/in-queue-answered.ami');
    expect(sent.map((r) => r.endpoint)).toEqual([
      'voipappz-ivr-start', 'voipappz-ivr-end', 'voipappz-ringing', 'voipappz-answer', 'voipappz-hangup', 'voipappz-reporting',
    ]);
    const [start, end, ringing, answer, , reporting] = sent.map(fieldsOf);
    expect(start).toMatchObject({ ivr_name: 'Main menu', call_state: 'ivr', type: 'did_to_ivr' });
    expect(end).toMatchObject({ ivr_name: 'Main menu', call_state: 'queue', type: 'did_to_que', queue_name: 'Support queue' });
    expect(ringing).toMatchObject({ extension_username: '202', user_fullname: 'Bob Example', call_state: 'ringing', cause: null });
    expect(answer).toMatchObject({ extension_username: '202', cause: 'answer', sip_status: '200', queue_disposition: 'answer', call_state: 'answered' });
    expect(reporting).toMatchObject({
      direction: 'incoming', type: 'did_to_que', contact_number: '05552221133', did_number: '02125550800', did_name: 'Support line',
      cause: 'answer', sip_status: '200', queue_disposition: 'answer', call_state: null, duration: 13, billing_duration: 6,
      duration_time: '00:00:13', billing_duration_time: '00:00:06', ring_duration: 3, start_at: '22:59:50', answer_at: '22:59:57',
      created_at: '2026-11-21T22:59:50.761+00:00',
      recording_url: 'https://pbx.example.com/recordings/20261121-225954-05552221133-1795301990.9.wav',
    });
  });

  it('queue timeout and caller abandon are the queue dispositions of missed queue calls', async () => {
    const missed = fieldsOf((await run('test/fixtures/asterisk-synth/in-queue-missed.ami')).at(-1)!);
    expect(missed).toMatchObject({ cause: 'no_answer', sip_status: '480', queue_disposition: 'timeout', billing_duration: 0, answer_at: null });
    const abandoned = fieldsOf((await run('test/fixtures/asterisk/in-queue-abandoned.ami')).at(-1)!);
    expect(abandoned).toMatchObject({ cause: 'no_answer', sip_status: '487', queue_disposition: 'abandoned', recording_url: null });
  });

  it('a call the phone declined (SIP 603) is busy with sip_status 603, never a ring timeout (issue #12)', () => {
    const ended = voipappz(declinedCall(cfg).lines).filter((r) => r.endpoint === 'voipappz-hangup').map(fieldsOf);
    expect(ended).toHaveLength(1);
    expect(ended[0]).toMatchObject({ cause: 'busy', sip_status: '603', extension_username: '117' });
  });

  it('busy, outbound and internal calls', async () => {
    expect(fieldsOf((await run('test/fixtures/asterisk/in-busy.ami')).at(-1)!)).toMatchObject({ type: 'did_to_ext', cause: 'busy', sip_status: '486' });
    const out = (await run('test/fixtures/asterisk/out-answered.ami')).map(fieldsOf);
    expect(out[0]).toMatchObject({
      direction: 'outgoing', type: 'ext_to_did', destination: '05552221133', extension_username: '117', caller_id_number: '117', did_number: null,
    });
    const internal = (await run('test/fixtures/asterisk/internal.ami')).map(fieldsOf);
    expect(internal.at(-1)).toMatchObject({ direction: 'incoming', type: 'ext_to_ext', contact_number: '117', destination: '204' });
  });
});

describe('renderVoipAppz', () => {
  let events: LifecycleEvent[] = [];
  beforeAll(async () => {
    events = (await replayTrace('test/fixtures/asterisk/in-queue-answered.ami', cfg)).events;
  });
  const endpoint = (event: VoipAppzEvent): VoipAppzEndpoint => {
    const ep = cfg.endpoints.find((e): e is VoipAppzEndpoint => e.schema === 'voipappz' && e.event === event);
    return ep!;
  };
  const ctx = (ep: VoipAppzEndpoint, environment = cfg.environment): RenderContext<VoipAppzEndpoint> => ({
    endpoint: ep, timezone: 'UTC', names: cfg.roles.names, directory: cfg.directory, environment,
  });
  const render = (c: RenderContext<VoipAppzEndpoint>) => events.flatMap((e) => renderVoipAppz(e, c));

  it('fires only in an environment the webhook is subscribed to', () => {
    const ep = endpoint('Call:Hangup');
    expect(render(ctx(ep))).toHaveLength(1);
    expect(render(ctx(ep, 'PROD'))).toEqual([]);
    expect(render(ctx({ ...ep, environments: ['PROD', 'LAB'] }, 'PROD'))).toHaveLength(1);
  });

  it('sends a custom template: picked and renamed fields keep their types, text placeholders become text', () => {
    const body = JSON.stringify({
      id: '{uuid}', seconds: '{duration}', agent: 'Agent {user_fullname} ({extension_username})', answered: '{answer_at}',
      nothing: '{contact_number}', source: 'pbxhook', recorded: true, call: { queue: '{queue_name}', did: '{did_number}' },
    });
    const [r] = render(ctx({ ...endpoint('Call:Reporting'), body }));
    const b = JSON.parse(r!.body) as Record<string, unknown>;
    expect(Object.keys(b)).toEqual(['id', 'seconds', 'agent', 'answered', 'nothing', 'source', 'recorded', 'call']);
    expect(b).toMatchObject({
      seconds: 13, agent: 'Agent Bob Example (202)', answered: '22:59:57', nothing: '05552221133', source: 'pbxhook', recorded: true,
      call: { queue: 'Support queue', did: '02125550800' },
    });
    expect(b['id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('null stays null in a whole placeholder and is empty inside text and in a GET query', () => {
    const body = JSON.stringify({ contact: '{answer_at}', text: 'at {answer_at}.' });
    const [post] = render(ctx({ ...endpoint('Ivr:Start'), method: 'POST', body }));
    expect(JSON.parse(post!.body)).toEqual({ contact: null, text: 'at .' });
    const [get] = render(ctx({ ...endpoint('Ivr:Start'), method: 'GET', url: 'https://crm.example.com/hook?k=1', body }));
    expect(get).toMatchObject({ method: 'GET', body: '', url: 'https://crm.example.com/hook?k=1&contact=&text=at+.' });
  });

  it('recording_url from the recording_url template: {id} is the call uuid, as in the doc example', () => {
    const ep = { ...endpoint('Call:Reporting'), recordingUrl: 'https://cloud.example.io/recordings/{id}' };
    const b = JSON.parse(render(ctx(ep))[0]!.body) as Record<string, unknown>;
    expect(b['recording_url']).toBe(`https://cloud.example.io/recordings/${String(b['uuid'])}`);
  });

  it('an endpoint events filter that leaves out its own Event sends nothing', () => {
    expect(render(ctx({ ...endpoint('Call:Answer'), events: ['Call:Hangup'] }))).toEqual([]);
  });
});

describe('a VoipAppz body template at start-up', () => {
  const YAML = 'pbx:\n  type: asterisk\n  username: u\n  secret: s\nenvironment: LAB\nwebhooks: ./webhooks.ini\n';
  const ini = (extra: string) =>
    `[va]\nschema = voipappz\nevent = Call:Hangup\nurl = https://crm.example.com/va\nenvironments = LAB\nbody_file = body.json\n${extra}`;
  const load = (body: string, extra = '') =>
    parseConfig(YAML, ini(extra), {
      yamlPath: 'config/pbxhook.yaml',
      readSecretFile: (p) => {
        if (p.endsWith('body.json')) return body;
        throw Object.assign(new Error('no'), { code: 'ENOENT' });
      },
    }, {});
  const problem = (body: string, extra = ''): string => {
    try {
      load(body, extra);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).message;
    }
    throw new Error('expected a ConfigError');
  };

  it('loads a valid template as the body', () => {
    const body = '{"secs": "{billing_duration}"}';
    const ep = load(body).endpoints[0] as VoipAppzEndpoint;
    expect(ep.body).toBe(body);
  });

  it('rejects text that is not JSON, naming the ini file, the section and body_file', () => {
    expect(problem('{"duration": "{duration}",}')).toMatch(
      /^config\/webhooks\.ini: \[va\] body_file: "body\.json" is not valid JSON \(.+\)$/,
    );
  });

  it('rejects a JSON value that is not an object', () => {
    expect(problem('["{duration}"]')).toBe('config/webhooks.ini: [va] body_file: "body.json" must hold a JSON object, the webhook body');
  });

  it('rejects an unknown placeholder, so a typo never reaches a CRM', () => {
    expect(problem('{"d": "{durration}", "e": "at {Start_At}"}')).toMatch(
      /^config\/webhooks\.ini: \[va\] body_file: "body\.json" has unknown placeholder \{durration\}, \{Start_At\}; placeholders are the doc's field names: direction, uuid, .*queue_name$/,
    );
  });

  it('rejects nested values when the fields go in a GET query string', () => {
    expect(problem('{"call": {"id": "{uuid}"}}', 'method = GET\n')).toBe(
      'config/webhooks.ini: [va] body_file: "body.json" has "call" as an object or list, but with method = GET the fields go in the query string',
    );
  });

  it('reports a missing body file under the same key', () => {
    expect(() =>
      parseConfig(YAML, ini('').replace('body.json', 'nope.json'), {
        yamlPath: 'config/pbxhook.yaml',
        readSecretFile: () => {
          throw Object.assign(new Error('no'), { code: 'ENOENT' });
        },
      }, {}),
    ).toThrow(/^config\/webhooks\.ini: \[va\] body_file: cannot read ".*nope\.json" \(no such file\)$/);
  });
});
