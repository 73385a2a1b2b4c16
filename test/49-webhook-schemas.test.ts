/**
 * docs/webhooks/<schema>.schema.json (issue #13 item 5): generated from the renderers' types, and
 * every request body of every golden (Asterisk, FreePBX, FreeSWITCH) is valid against its schema's
 * definition for the way it was carried (JSON body, form body, GET query). The schemas are strict
 * (closed objects, literal event names), so a renamed, added or dropped field fails here.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { describe, expect, it } from 'vitest';
import { type Carrier, schemaPath, WEBHOOK_SCHEMAS, webhookSchemas } from '../scripts/webhook-schemas.js';

const GOLDEN_DIRS = ['test/golden/asterisk', 'test/golden/asterisk-freepbx', 'test/golden/freeswitch'];

interface Line { endpoint: string; method: string; url: string; headers: Record<string, string>; body: string }

/** How the golden request carries its body, and the body decoded; undefined for 3CX's text/plain recording URL. */
function decode(r: Line): { carrier: Carrier; body: unknown } | { carrier: 'text'; body: string } {
  const type = r.headers['content-type'] ?? '';
  if (r.method === 'GET' && r.body === '') return { carrier: 'query', body: Object.fromEntries(new URL(r.url).searchParams) };
  if (type.startsWith('application/json')) return { carrier: 'json', body: JSON.parse(r.body) as unknown };
  if (type.startsWith('application/x-www-form-urlencoded')) return { carrier: 'form', body: Object.fromEntries(new URLSearchParams(r.body)) };
  if (type.startsWith('text/plain')) return { carrier: 'text', body: r.body };
  throw new Error(`${r.endpoint}: no carrier for ${r.method} ${type}`);
}

/** The golden files' schema: `in-busy.voip-request.jsonl` → voip-request, `in-queue-answered.json.vxt.jsonl` → vxt. */
const schemaOf = (file: string): string => file.replace(/\.jsonl$/, '').split('.').at(-1)!;

const goldens = GOLDEN_DIRS.flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.jsonl')).map((f) => path.join(d, f)));
const ajv = new Ajv({ strict: true, allErrors: true });
const validators = new Map<string, ValidateFunction>();
function validator(schema: string, type: string): ValidateFunction {
  const key = `${schema}#${type}`;
  let v = validators.get(key);
  if (!v) {
    const doc = JSON.parse(readFileSync(schemaPath(schema), 'utf8')) as { definitions: Record<string, object> };
    if (!ajv.getSchema(schema)) ajv.addSchema(doc, schema);
    v = ajv.getSchema(`${schema}#/definitions/${type}`)!;
    validators.set(key, v);
  }
  return v;
}

describe('docs/webhooks/*.schema.json', () => {
  it('are generated from the renderers\' current types (npx tsx scripts/webhook-docs.ts)', () => {
    const files = webhookSchemas();
    expect([...files.keys()].sort()).toEqual(Object.keys(WEBHOOK_SCHEMAS).map(schemaPath).sort());
    for (const [file, text] of files) expect(readFileSync(file, 'utf8'), file).toBe(text);
  });

  it('every schema page links its schema', () => {
    for (const schema of Object.keys(WEBHOOK_SCHEMAS)) {
      expect(readFileSync(`docs/webhooks/${schema}.md`, 'utf8')).toContain(`](${schema}.schema.json)`);
    }
  });

  const checked = new Map<string, number>();
  for (const file of goldens) {
    const schema = schemaOf(path.basename(file));
    it(`${file}: every body is valid`, () => {
      const spec = WEBHOOK_SCHEMAS[schema];
      expect(spec, `no schema for ${schema}`).toBeDefined();
      const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line);
      const errors: string[] = [];
      for (const [i, r] of lines.entries()) {
        const d = decode(r);
        if (d.carrier === 'text') {
          // 3CX's urlencoded variant sends a recording as its URL alone.
          expect(schema).toBe('3cx');
          expect(() => new URL(d.body)).not.toThrow();
          continue;
        }
        const type = spec!.variants[d.carrier];
        if (type === undefined) {
          errors.push(`line ${i + 1}: ${schema} has no ${d.carrier} variant`);
          continue;
        }
        const validate = validator(schema, type);
        if (!validate(d.body)) errors.push(`line ${i + 1} (${type}): ${ajv.errorsText(validate.errors)}`);
        checked.set(`${schema} ${d.carrier}`, (checked.get(`${schema} ${d.carrier}`) ?? 0) + 1);
      }
      expect(errors).toEqual([]);
    });
  }

  it('the goldens exercise every schema and each carrier they use', () => {
    // Every schema's JSON or form body, VoipAppz's GET query and PetDesk's JSON texts are in the goldens.
    for (const k of ['3cx json', '3cx form', 'voipappz json', 'voipappz query', 'petdesk form', 'petdesk json', 'vxt json', 'voip-request json']) {
      expect(checked.get(k) ?? 0, k).toBeGreaterThan(0);
    }
  });

  it('are strict: a renamed, extra or missing field, or an unknown event name, is refused', () => {
    const ringing = { Event: 'ringing', Callerid: '05552221133', User: '800', Usertype: 'other', Did: '02125550800', Id: '261121231216_9-0' };
    const v = validator('3cx', 'ThreeCxJsonBody');
    expect(v(ringing)).toBe(true);
    const { Callerid, ...rest } = ringing;
    expect(v({ ...rest, CallerId: Callerid })).toBe(false);
    expect(v({ ...ringing, Extra: 'x' })).toBe(false);
    expect(v(rest)).toBe(false);
    expect(v({ ...ringing, Event: 'ringin' })).toBe(false);
    expect(v({ ...ringing, Id: '2611212312_9' })).toBe(false);
    const body = { callId: '1', event: 'NotifyStart', direction: 'in', srcPhone: '0555', dstPhone: '202', disposition: 'Unknown' };
    expect(validator('voip-request', 'VoipWebhookRequest')(body)).toBe(true);
    expect(validator('voip-request', 'VoipWebhookRequest')({ ...body, direction: 'inbound' })).toBe(false);
  });
});
