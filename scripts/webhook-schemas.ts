/**
 * Builds docs/webhooks/<schema>.schema.json, the JSON Schema of every body pbxhook sends, from the
 * renderers' own TypeScript types (src/emit/*.ts) with ts-json-schema-generator, so a renamed or
 * retyped field changes the schema with the code (issue #13 item 5).
 *   npx tsx scripts/webhook-docs.ts          writes the pages and these schemas
 *   test/49-webhook-schemas.test.ts          fails when a schema is stale, and checks every golden body against it
 *
 * A schema with several body shapes has one definition per shape; the root accepts any of them.
 * Objects are closed (`additionalProperties: false`): each vendor doc lists every field.
 */
import { writeFileSync } from 'node:fs';
import { createGenerator } from 'ts-json-schema-generator';

/** How a request carries its body: a JSON body, a form-encoded body, or fields in the URL's query string (GET). */
export type Carrier = 'json' | 'form' | 'query';

export interface SchemaSpec {
  readonly title: string;
  readonly description: string;
  /** The TypeScript type (exported from src/emit) describing the decoded body of each carrier. */
  readonly variants: Partial<Record<Carrier, string>>;
}

export const WEBHOOK_SCHEMAS: Readonly<Record<string, SchemaSpec>> = {
  '3cx': {
    title: 'pbxhook: 3CX WebhooksApi bodies',
    description:
      'variant = json: an application/json body (ThreeCxJsonBody). variant = urlencoded: an ' +
      'application/x-www-form-urlencoded body, decoded into its fields (ThreeCxFormBody); its recording ' +
      'webhook is the recording URL alone as text/plain. With method = GET the same fields are in the query ' +
      'string (FileUrls comma-separated). See docs/webhooks/3cx.md.',
    variants: { json: 'ThreeCxJsonBody', form: 'ThreeCxFormBody', query: 'ThreeCxFormBody' },
  },
  voipappz: {
    title: 'pbxhook: VoipAppz webhook bodies',
    description:
      "The doc's full body, sent by a webhook object without body_file: an application/json body (VoipAppzBody), " +
      'or with method = GET the same fields in the query string, numbers as text and null as empty (VoipAppzQuery). ' +
      'A body_file template sends the shape its author wrote instead. See docs/webhooks/voipappz.md.',
    variants: { json: 'VoipAppzBody', query: 'VoipAppzQuery' },
  },
  petdesk: {
    title: 'pbxhook: PetDesk Phones webhook bodies',
    description:
      'Call events are application/x-www-form-urlencoded, decoded into their fields (PetDeskCallForm); text ' +
      'messages are application/json (PetDeskMessageBody). With method = GET the fields are in the query string. ' +
      'See docs/webhooks/petdesk.md.',
    variants: { form: 'PetDeskCallForm', json: 'PetDeskMessageBody', query: 'PetDeskCallForm' },
  },
  vxt: {
    title: 'pbxhook: VXT webhook payloads (version 3)',
    description: 'An application/json body: a callLog or a voicemail (VxtPayload). See docs/webhooks/vxt.md.',
    variants: { json: 'VxtPayload' },
  },
  'voip-request': {
    title: 'pbxhook: VoipWebhookRequest bodies',
    description:
      'An application/json body (VoipWebhookRequest), or with method = GET the same properties in the query ' +
      'string. See docs/webhooks/voip-request.md.',
    variants: { json: 'VoipWebhookRequest', query: 'VoipWebhookRequest' },
  },
};

export const schemaPath = (schema: string): string => `docs/webhooks/${schema}.schema.json`;

/** Every schema file's text, by path. Compiling src/emit takes a few seconds: one program for all. */
export function webhookSchemas(): Map<string, string> {
  const generator = createGenerator({
    path: 'src/emit/*.ts',
    tsconfig: 'tsconfig.json',
    skipTypeCheck: true, // npm run typecheck does that
    additionalProperties: false,
    expose: 'none', // each definition self-contained: a reader sees a payload in one place
    topRef: false,
    jsDoc: 'extended',
    sortProps: false, // the order the types (and the wire) have
  });
  const files = new Map<string, string>();
  for (const [schema, spec] of Object.entries(WEBHOOK_SCHEMAS)) {
    const types = [...new Set(Object.values(spec.variants))];
    const definitions = Object.fromEntries(types.map((t) => {
      const { $schema: _, ...definition } = generator.createSchema(t);
      return [t, definition];
    }));
    const root = {
      $schema: 'http://json-schema.org/draft-07/schema#',
      title: spec.title,
      description: `${spec.description} Generated from the types in src/emit by scripts/webhook-schemas.ts.`,
      anyOf: types.map((t) => ({ $ref: `#/definitions/${t}` })),
      definitions,
    };
    files.set(schemaPath(schema), `${JSON.stringify(root, null, 2)}\n`);
  }
  return files;
}

export function writeWebhookSchemas(): void {
  for (const [path, text] of webhookSchemas()) writeFileSync(path, text);
}

if (process.argv[1]?.endsWith('webhook-schemas.ts')) writeWebhookSchemas();
