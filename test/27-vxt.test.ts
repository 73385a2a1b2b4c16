import { readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import type { DirectoryEntry, VxtEndpoint } from '../src/config/types.js';
import type { LifecycleEvent } from '../src/core/lifecycle.js';
import { tokensOf } from '../src/deliver/auth.js';
import { createHttpClient } from '../src/deliver/attempt.js';
import type { RenderContext } from '../src/emit/context.js';
import { toE164 } from '../src/emit/e164.js';
import type { WebhookRequest } from '../src/emit/request.js';
import { renderVxt } from '../src/emit/vxt.js';
import { frameAll as frameAmi } from '../src/ami/framer.js';
import { decodeEvent } from '../src/esl/frame.js';
import { frameAll as frameEsl } from '../src/esl/framer.js';
import { loadTrace as loadAmiTrace } from './support/fakeAmiServer.js';
import { loadTrace as loadEslTrace } from './support/fakeEslServer.js';
import { replayTrace } from './support/replayTrace.js';

/**
 * VXT (issue #3): every payload of every shared trace is checked against the TypeScript types of
 * the vendor doc, parsed from the doc itself with the TypeScript compiler: no key the doc does not
 * list, none it lists missing (unless optional), the doc's key order, and each value of its type.
 */
const doc = ts.createSourceFile('vxt.ts', readFileSync('test/fixtures/vendor-docs/vxt-webhook-payloads.txt', 'utf8'), ts.ScriptTarget.ES2022, true);
const aliases = new Map(doc.statements.filter(ts.isTypeAliasDeclaration).map((s) => [s.name.text, s.type]));

/** Why `value` is not of `type`, or [] if it is. */
function mismatches(value: unknown, type: ts.TypeNode, at: string): string[] {
  if (ts.isParenthesizedTypeNode(type)) return mismatches(value, type.type, at);
  if (ts.isTypeReferenceNode(type)) {
    const target = aliases.get(type.typeName.getText(doc));
    return target ? mismatches(value, target, at) : [`${at}: unknown type ${type.typeName.getText(doc)}`];
  }
  if (ts.isUnionTypeNode(type)) {
    const tries = type.types.map((t) => mismatches(value, t, at));
    return tries.some((m) => m.length === 0) ? [] : [`${at}: ${JSON.stringify(value)} matches no member of ${type.getText(doc).replace(/\s+/g, ' ').slice(0, 80)}`];
  }
  if (ts.isArrayTypeNode(type)) {
    if (!Array.isArray(value)) return [`${at}: not an array`];
    return value.flatMap((v, i) => mismatches(v, type.elementType, `${at}[${i}]`));
  }
  if (ts.isLiteralTypeNode(type)) {
    const lit = type.literal;
    if (lit.kind === ts.SyntaxKind.NullKeyword) return value === null ? [] : [`${at}: not null`];
    const want = ts.isStringLiteral(lit) ? lit.text : ts.isNumericLiteral(lit) ? Number(lit.text) : undefined;
    return value === want ? [] : [`${at}: ${JSON.stringify(value)} is not ${JSON.stringify(want)}`];
  }
  if (type.kind === ts.SyntaxKind.StringKeyword) return typeof value === 'string' ? [] : [`${at}: not a string`];
  if (type.kind === ts.SyntaxKind.NumberKeyword) return typeof value === 'number' ? [] : [`${at}: not a number`];
  if (ts.isTypeLiteralNode(type)) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${at}: not an object`];
    const members = type.members.filter(ts.isPropertySignature);
    const present = members.filter((m) => m.questionToken === undefined || m.name.getText(doc) in value);
    const keys = Object.keys(value);
    // Same keys in the doc's order: nothing undocumented, nothing required left out.
    if (keys.join() !== present.map((m) => m.name.getText(doc)).join()) return [`${at}: keys ${keys.join()} ≠ doc ${present.map((m) => m.name.getText(doc)).join()}`];
    return present.flatMap((m) => mismatches((value as Record<string, unknown>)[m.name.getText(doc)], m.type!, `${at}.${m.name.getText(doc)}`));
  }
  return [`${at}: unsupported doc type ${ts.SyntaxKind[type.kind]}`];
}
const checkAgainstDoc = (body: unknown): string[] => mismatches(body, aliases.get('WebhookPayload')!, 'payload');

const DIRS = ['test/fixtures/asterisk', 'test/fixtures/asterisk-synth', 'test/fixtures/asterisk-freepbx', 'test/fixtures/asterisk-freepbx-synth'];
const traces = DIRS.flatMap((d) => readdirSync(d).filter((f) => /\.ami(\.gz)?$/.test(f)).map((f) => join(d, f)));
const cfg = loadConfig('config/all-schemas.example.yaml');
const vxt = cfg.endpoints.find((e): e is VxtEndpoint => e.schema === 'vxt')!;
const events = new Map<string, LifecycleEvent[]>();

beforeAll(async () => {
  for (const t of traces) events.set(t.replace(/^.*\/|\.ami(\.gz)?$/g, ''), (await replayTrace(t, cfg)).events);
});

/** The lab's numbers (0212 555 0800, 0555 222 1133) are national numbers of TR, not of the US. */
function ctxFor(over: Partial<VxtEndpoint> = {}, directory: Record<string, DirectoryEntry> = cfg.directory): RenderContext<VxtEndpoint> {
  return { endpoint: { ...vxt, ...over }, timezone: 'UTC', names: cfg.roles.names, directory, environment: '' };
}
const TR = { defaultCountry: 'TR', phoneNumber: '+90 212 555 0800' };
const US = { defaultCountry: 'US', phoneNumber: '+12125550800' };

function render(trace: string, ctx = ctxFor(TR)): WebhookRequest[] {
  return (events.get(trace) ?? []).flatMap((e) => renderVxt(e, ctx));
}
const bodies = (trace: string, ctx = ctxFor(TR)): any[] => render(trace, ctx).map((r) => JSON.parse(r.body));
const at = (trace: string, type: LifecycleEvent['type']): number => events.get(trace)!.find((e) => e.type === type)!.at;
/** When the call's first channel appeared (an outbound call's call.started comes with its dial). */
const startedAt = (trace: string): number => {
  const e = events.get(trace)!.find((x) => x.type === 'call.ended');
  return e?.type === 'call.ended' ? e.call.startedAt : NaN;
};

describe('VXT doc types', () => {
  it('reads the five payload types of the doc', () => {
    expect([...aliases.keys()]).toEqual(['WebhookPayload', 'WebhookUser', 'WebhookOtherParty', 'CallLogWebhookPayload', 'VoicemailWebhookPayload']);
    expect(checkAgainstDoc({ event: 'callLog', callLog: { version: 3 } })).not.toEqual([]);
  });

  for (const country of ['US', 'TR']) {
    it(`every request of every trace is a documented payload (default country ${country})`, () => {
      const seen = new Set<string>();
      for (const trace of events.keys()) {
        for (const r of render(trace, ctxFor(country === 'TR' ? TR : US))) {
          expect(r.headers).toEqual({ 'content-type': 'application/json' });
          expect(r.headers).not.toHaveProperty('authorization'); // added by src/deliver only
          const body = JSON.parse(r.body) as any;
          expect(checkAgainstDoc(body), `${trace}: ${r.body}`).toEqual([]);
          const p = body.callLog ?? body.voicemail;
          seen.add(`${body.event} ${p.result?.type ?? ''} ${(p.otherParties ?? [p.callerId])[0].type} ${p.phoneNumberE164 === null ? 'null' : 'number'}`);
        }
      }
      if (country === 'TR') expect([...seen].sort()).toEqual(['callLog answered phoneNumber number', 'callLog missed phoneNumber number', 'voicemail  phoneNumber number']);
      // With US as the default country the lab's 0-prefixed national numbers are no US numbers: nothing is made up.
      else expect([...seen].sort()).toEqual(['callLog answered unknown null', 'callLog answered unknown number', 'callLog missed unknown null', 'callLog missed unknown number', 'voicemail  unknown null']);
    });
  }
});

describe('VXT callLog from the real traces', () => {
  it('answered: start, answer and hangup in Unix ms; the answering user; the DID and the caller in E.164', () => {
    expect(bodies('in-queue-answered')).toEqual([{
      event: 'callLog',
      callLog: {
        version: 3, id: '1795301990.9-callLog', url: 'https://app.vxt.co/1795301990.9-callLog',
        result: { type: 'answered', startTimestamp: startedAt('in-queue-answered'), answerTimestamp: at('in-queue-answered', 'leg.answered'), hangupTimestamp: at('in-queue-answered', 'call.ended') },
        direction: 'inbound', user: { type: 'user', uid: 'u-202', email: 'bob@example.com' },
        phoneNumberE164: '+902125550800', otherParties: [{ type: 'phoneNumber', phoneNumberE164: '+905552221133' }],
      },
    }]);
    // The trunk channel appeared at 1795301990.761 (the INVITE); 202 answered 6.448 s later.
    expect(startedAt('in-queue-answered')).toBe(1795301990761);
    expect(at('in-queue-answered', 'leg.answered') - startedAt('in-queue-answered')).toBe(6448);
  });

  it('missed: only the start time, and no user unless a voicemail node took it', () => {
    for (const trace of ['in-queue-abandoned', 'in-queue-missed', 'in-ringgroup2-missed', 'in-busy']) {
      const [b] = bodies(trace);
      expect(b.callLog.result, trace).toEqual({ type: 'missed', startTimestamp: startedAt(trace) });
      expect(b.callLog.user, trace).toBeNull();
    }
    expect(bodies('in-voicemail')[1].callLog).toMatchObject({ result: { type: 'missed' }, user: { uid: 'u-117' } });
  });

  it('outbound: the user who dialled, the configured company number, the number dialled', () => {
    const [answered] = bodies('out-answered');
    expect(answered.callLog).toMatchObject({
      direction: 'outbound', result: { type: 'answered', answerTimestamp: at('out-answered', 'leg.answered') },
      user: { uid: 'u-117' }, phoneNumberE164: '+902125550800', otherParties: [{ type: 'phoneNumber', phoneNumberE164: '+905552221133' }],
    });
    expect(bodies('out-missed')[0].callLog.result).toEqual({ type: 'missed', startTimestamp: startedAt('out-missed') });
    expect(bodies('out-click-to-call')[0].callLog).toMatchObject({ direction: 'outbound', result: { type: 'answered' } });
  });

  it('a transfer is one callLog; the user is the one who answered first', () => {
    for (const trace of ['in-queue-blind-transfer', 'in-queue-attended-transfer', 'in-queue-attended-transfer-refer']) {
      const all = bodies(trace);
      expect(all, trace).toHaveLength(1);
      expect(all[0].callLog.user.uid, trace).toBe('u-117');
    }
  });

  it('internal calls and text messages send nothing ("webhooks do not deliver internal user-to-user" messages)', () => {
    expect(render('internal')).toEqual([]);
    expect(render('in-message')).toEqual([]);
  });

  it('user: only a directory person with both uid and email', () => {
    expect(bodies('in-queue-answered', ctxFor(TR, {}))[0].callLog.user).toBeNull();
    expect(bodies('in-queue-answered', ctxFor(TR, { '202': { name: 'Bob', email: 'bob@example.com' } }))[0].callLog.user).toBeNull();
    expect(bodies('in-queue-answered', ctxFor(TR, { '202': { uid: 'u-2', email: 'b@x.test' } }))[0].callLog.user).toEqual({ type: 'user', uid: 'u-2', email: 'b@x.test' });
  });

  it('url: the endpoint web_url with the message id', () => {
    const [b] = bodies('in-busy', ctxFor({ ...TR, webUrl: 'https://crm.example.com/vxt?m={id}' }));
    expect(b.callLog.url).toBe('https://crm.example.com/vxt?m=1795302617.56-callLog');
  });
});

/** When VoiceMail's beep ended in an AMI trace (CEL STREAM_END after the `beep` STREAM_BEGIN): the recording starts. */
function beepEndedAt(trace: string): number {
  const { frames } = frameAmi(loadAmiTrace(trace));
  const beep = frames.findIndex((f) => f.fields['eventname'] === 'STREAM_BEGIN' && f.fields['extra']?.includes('"sound":"beep"'));
  const end = frames.slice(beep).find((f) => f.fields['eventname'] === 'STREAM_END' && f.fields['uniqueid'] === frames[beep]?.fields['uniqueid']);
  return Math.round(Number(end?.fields['timestamp']) * 1000);
}

describe('VXT voicemail', () => {
  it('timestamp when the caller reached the mailbox, duration from the beep\'s end to the message, no transcription, the caller', () => {
    const vm = events.get('in-voicemail')!;
    const reached = vm.find((e) => e.type === 'route.entered' && e.route.role === 'voicemail')!.at;
    const [voicemail, callLog] = bodies('in-voicemail');
    expect(voicemail).toEqual({
      event: 'voicemail',
      voicemail: {
        version: 3, id: '1795302547.52-voicemail', url: 'https://app.vxt.co/1795302547.52-voicemail',
        timestamp: reached, duration: at('in-voicemail', 'voicemail.left') - beepEndedAt('test/fixtures/asterisk/in-voicemail.ami'), transcription: null,
        user: { type: 'user', uid: 'u-117', email: 'alice@example.com' }, phoneNumberE164: '+902125550117',
        callerId: { type: 'phoneNumber', phoneNumberE164: '+905552221133' },
      },
    });
    // "The duration of the voicemail audio": the greeting is not in it (issue #12 item 6).
    expect(voicemail.voicemail.duration).toBeLessThan(at('in-voicemail', 'voicemail.left') - reached);
    expect(callLog.event).toBe('callLog');
  });

  it('without a length from the PBX (Asterisk without CEL): the span from reaching the mailbox to the message', () => {
    const left = events.get('in-voicemail')!.find((e) => e.type === 'voicemail.left')!;
    if (left.type !== 'voicemail.left') throw new Error('unreachable');
    const reached = left.call.routes.find((r) => r.role === 'voicemail')!.at;
    const call = { ...left.call, voicemail: { mailbox: left.mailbox, leftAt: left.at } };
    const [r] = renderVxt({ ...left, call }, ctxFor(TR));
    expect(JSON.parse(r!.body).voicemail.duration).toBe(left.at - reached);
  });

  it('FreeSWITCH: the length of the recording, as the leave-message event reports it', async () => {
    const trace = 'test/fixtures/freeswitch/in-voicemail.esl';
    const { lines } = await replayTrace(trace, loadConfig('config/freeswitch-lab.example.yaml'));
    const [voicemail] = lines.map((l) => JSON.parse(l)).filter((r) => r.endpoint === vxt.name).map((r) => JSON.parse(r.body));
    const decoded = { malformedLines: 0, undecodable: 0 };
    const leave = frameEsl(loadEslTrace(trace)).frames.map((f) => decodeEvent(f, decoded)).find((e) => e?.headers['VM-Action'] === 'leave-message');
    expect(leave?.headers['variable_record_ms']).toMatch(/^\d+$/);
    expect(voicemail.event).toBe('voicemail');
    expect(voicemail.voicemail.duration).toBe(Number(leave!.headers['variable_record_ms']));
  });
});

describe('E.164 normalisation (libphonenumber-js)', () => {
  it.each([
    ['(212) 555-0800', 'US', '+12125550800'],
    ['2125550800', 'US', '+12125550800'],
    ['1 212 555 0800', 'US', '+12125550800'],
    ['020 7946 0018', 'GB', '+442079460018'],
    ['02125550800', 'TR', '+902125550800'],
    ['+44 20 7946 0018', 'US', '+442079460018'],
    ['011 44 20 7946 0018', 'US', '+442079460018'],
    ['00442079460018', 'GB', '+442079460018'],
  ])('%s in %s → %s', (number, country, e164) => {
    expect(toE164(number, country)).toBe(e164);
  });

  it.each(['', 'anonymous', 'Anonymous', 'Restricted', 'private', 'unknown', 'Unavailable', '117', 'sip:2125550800@carrier', '02125550800'])(
    '%j is no number in US → undefined',
    (number) => expect(toE164(number, 'US')).toBeUndefined(),
  );

  it('an unsupported default country normalises nothing', () => {
    expect(toE164('2125550800', 'XX')).toBeUndefined();
  });

  it('a private caller is an unknown party', () => {
    const ev = events.get('in-busy')!.find((e) => e.type === 'call.ended')!;
    if (ev.type !== 'call.ended') throw new Error('unreachable');
    for (const hidden of ['anonymous', 'Restricted', '']) {
      const [r] = renderVxt({ ...ev, call: { ...ev.call, customerNumber: hidden } }, ctxFor(TR));
      expect(JSON.parse(r!.body).callLog.otherParties).toEqual([{ type: 'unknown' }]);
    }
  });
});

describe('VXT delivery', () => {
  const seen: { url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
  let status = 200;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ url: req.url ?? '', headers: req.headers, body });
      if (status === 301) res.writeHead(301, { location: '/moved' });
      else res.writeHead(status);
      res.end();
    });
  });
  beforeAll(() => new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve)));
  afterAll(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));

  /** One attempt through the daemon's HTTP client, which adds the bearer token at delivery. */
  async function send(req: WebhookRequest) {
    const client = createHttpClient({ timeoutMs: 2000, tokens: tokensOf(cfg) });
    try {
      return await client.attempt(req);
    } finally {
      client.close();
    }
  }

  it('sends the rendered body with "Authorization: Bearer {token}" from the endpoint config', async () => {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/vxt`;
    const [req] = render('in-queue-answered', ctxFor({ url }));
    seen.length = 0;
    status = 200;
    expect(await send(req!)).toMatchObject({ ok: true, status: 200 });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers.authorization).toBe('Bearer vxt-lab-token');
    expect(seen[0]!.headers['content-type']).toBe('application/json');
    expect(seen[0]!.body).toBe(req!.body);
  });

  it('does not follow a redirect: a 301 is a failure, sent once, the new location never asked', async () => {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/vxt`;
    const [req] = render('in-queue-answered', ctxFor({ url }));
    seen.length = 0;
    status = 301;
    const result = await send(req!);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.code).toBe('PBXHOOK_HTTP_REDIRECT');
    expect(seen.map((s) => s.url)).toEqual(['/vxt']);
  });
});
