/**
 * The headers every delivered webhook carries, and Standard Webhooks signing
 * (https://www.standardwebhooks.com, spec "Signature scheme"):
 *
 *   webhook-id         stable per webhook across retries and restarts: receivers dedupe on it
 *   webhook-timestamp  unix seconds of this attempt
 *   webhook-signature  `v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`, one per secret,
 *                      space-separated (several secrets = rotation); only when a secret is configured
 *   webhook-sequence   1, 2, 3… per call and endpoint, in sending order; a gap is a dead webhook
 *   webhook-pbx        the PBX the call happened on (`pbx.name`), when known: a CRM fed by a fleet
 *                      sharing one outbox tells its PBXes apart (issue #17 item 2); not signed
 *
 * Pure: the caller passes the time.
 */
import { createHmac } from 'node:crypto';

/** `whsec_<base64>` → key bytes (the config check already proved the format). */
export function signingKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
}

export function sign(keys: readonly Buffer[], webhookId: string, timestampSec: number, body: string): string {
  const content = `${webhookId}.${timestampSec}.${body}`;
  return keys.map((k) => `v1,${createHmac('sha256', k).update(content, 'utf8').digest('base64')}`).join(' ');
}

export interface DeliveryIdentity {
  readonly webhookId: string;
  readonly seq: number;
  readonly body: string;
  /** The PBX whose call it is; '' or absent: not said. */
  readonly pbx?: string;
}

export function deliveryHeaders(w: DeliveryIdentity, nowMs: number, keys: readonly Buffer[]): Record<string, string> {
  const timestamp = Math.floor(nowMs / 1000);
  const headers: Record<string, string> = {
    'webhook-id': w.webhookId,
    'webhook-timestamp': String(timestamp),
    'webhook-sequence': String(w.seq),
  };
  if (w.pbx) headers['webhook-pbx'] = w.pbx;
  if (keys.length > 0) headers['webhook-signature'] = sign(keys, w.webhookId, timestamp, w.body);
  return headers;
}
