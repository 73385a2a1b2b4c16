/**
 * Standard Webhooks signing, checked by an independent implementation: the `standardwebhooks`
 * package a receiver would use. Pure: no sockets.
 */
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { resolveSigningSecrets } from '../src/config/tokens.js';
import { deliveryHeaders, sign, signingKey } from '../src/deliver/signing.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const NEXT = 'whsec_dGhpcy1pcy1hLW5ldy0zMi1ieXRlLXNlY3JldCE=';
const ID = 'msg_01M809TJ22TYYYYFKN7YM8VJH9';
const JSON_BODY = '{"Event":"ringing","Callerid":"05552221133","User":"800","Id":"261121225950_9-0"}';
const FORM_BODY = 'event=incoming&callerid=05552221133&title=%C3%9Cbergabe+an+202';

describe('Standard Webhooks signature', () => {
  it.each([
    ['JSON', JSON_BODY],
    ['urlencoded', FORM_BODY],
    ['empty (GET)', ''],
    ['non-ASCII', '{"name":"Zoë Ünal ☎"}'],
  ])('a %s body verifies with the standardwebhooks package', (_name, body) => {
    const headers = deliveryHeaders({ webhookId: ID, seq: 3, body }, Date.now(), [signingKey(SECRET)]);
    expect(headers['webhook-id']).toBe(ID);
    expect(headers['webhook-sequence']).toBe('3');
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+={0,2}$/);
    expect(() => new Webhook(SECRET).verify(body, headers, { jsonParse: false })).not.toThrow();
  });

  it('is byte-for-byte what the package computes for the same id, time and body', () => {
    const at = new Date('2026-01-01T10:00:00Z');
    expect(sign([signingKey(SECRET)], ID, at.getTime() / 1000, JSON_BODY)).toBe(new Webhook(SECRET).sign(ID, at, JSON_BODY));
  });

  it('signs with every secret during a rotation; a receiver knowing either accepts it', () => {
    const headers = deliveryHeaders({ webhookId: ID, seq: 1, body: JSON_BODY }, Date.now(), [SECRET, NEXT].map(signingKey));
    expect(headers['webhook-signature']!.split(' ')).toHaveLength(2);
    for (const secret of [SECRET, NEXT]) expect(() => new Webhook(secret).verify(JSON_BODY, headers)).not.toThrow();
  });

  it('fails verification for a changed body, id or an unknown secret', () => {
    const headers = deliveryHeaders({ webhookId: ID, seq: 1, body: JSON_BODY }, Date.now(), [signingKey(SECRET)]);
    const wh = new Webhook(SECRET);
    expect(() => wh.verify(JSON_BODY.replace('800', '801'), headers)).toThrow(/signature/i);
    expect(() => wh.verify(JSON_BODY, { ...headers, 'webhook-id': 'msg_other' })).toThrow(/signature/i);
    expect(() => new Webhook(NEXT).verify(JSON_BODY, headers)).toThrow(/signature/i);
  });

  it('stamps the attempt time, so a receiver’s 5-minute tolerance holds on every retry', () => {
    const old = deliveryHeaders({ webhookId: ID, seq: 1, body: JSON_BODY }, Date.now() - 10 * 60_000, [signingKey(SECRET)]);
    expect(() => new Webhook(SECRET).verify(JSON_BODY, old)).toThrow(/too old/);
  });

  it('without a secret: id, timestamp and sequence, no signature', () => {
    expect(Object.keys(deliveryHeaders({ webhookId: ID, seq: 1, body: '' }, 0, []))).toEqual(['webhook-id', 'webhook-timestamp', 'webhook-sequence']);
    // The PBX is said when the row knows it (issue #17: a fleet sharing one outbox).
    expect(deliveryHeaders({ webhookId: ID, seq: 1, body: '', pbx: 'berlin-1' }, 0, [])['webhook-pbx']).toBe('berlin-1');
  });
});

describe('signing secrets in config', () => {
  const src = (env: Record<string, string> = {}, files: Record<string, string> = {}) => ({
    env,
    iniDir: '/etc/pbxhook',
    readSecretFile: (p: string) => {
      if (!(p in files)) throw Object.assign(new Error('nope'), { code: 'ENOENT' });
      return files[p]!;
    },
  });

  it('takes a literal, several comma-separated, env:, file: and the PBXHOOK_SIGNING_SECRET_ override', () => {
    expect(resolveSigningSecrets('crm', undefined, src())).toEqual({ secrets: undefined });
    expect(resolveSigningSecrets('crm', SECRET, src())).toEqual({ secrets: [SECRET] });
    expect(resolveSigningSecrets('crm', `${SECRET}, ${NEXT}`, src())).toEqual({ secrets: [SECRET, NEXT] });
    expect(resolveSigningSecrets('crm', 'env:CRM_SIG', src({ CRM_SIG: NEXT }))).toEqual({ secrets: [NEXT] });
    expect(resolveSigningSecrets('crm', 'file:crm.sig', src({}, { '/etc/pbxhook/crm.sig': `${SECRET}\n${NEXT}\n` }))).toEqual({ secrets: [SECRET, NEXT] });
    expect(resolveSigningSecrets('crm-a', SECRET, src({ PBXHOOK_SIGNING_SECRET_CRM_A: NEXT }))).toEqual({ secrets: [NEXT] });
  });

  it('names what is wrong without quoting the secret', () => {
    const problem = (v: string, s = src()) => {
      const r = resolveSigningSecrets('crm', v, s);
      return 'problem' in r ? r.problem : undefined;
    };
    expect(problem('hunter2-not-a-secret')).toBe('must be "whsec_" followed by base64');
    expect(problem('whsec_c2hvcnQ=')).toBe('must decode to 24 to 64 bytes, got 5');
    expect(problem(`${SECRET},whsec_!!`)).toBe('secret 2 must be "whsec_" followed by base64');
    expect(problem('env:MISSING')).toBe('environment variable MISSING is not set');
    expect(problem('file:/run/creds/x')).toBe('cannot read signing secret file "/run/creds/x" (ENOENT)');
  });
});
