/**
 * What an operator may do to the outbox (issue #16 item 3), one function each, shared by
 * `pbxhook outbox resend|retry-lane|probe` and the console's buttons, so both do exactly the same:
 *
 *   resend        a dead webhook → pending, a new attempt series (fresh schedule), same webhook-id
 *   resend-dead   every dead webhook of an endpoint, likewise
 *   retry-lane    a lane's head waiting for its retry is due now (its schedule step kept)
 *   probe         a paused endpoint's probe is due now (needs the running daemon's worker)
 *
 * Every action is logged with who asked and what changed; nothing here checks who may ask (the
 * console's src/ops/auth.ts and the shell's file permissions do).
 */
import type { Logger } from 'pino';
import type { OutboxStore } from './store.js';

export type OutboxAction =
  | { readonly kind: 'resend'; readonly id: string }
  | { readonly kind: 'resend-dead'; readonly endpoint: string }
  /** `pbx`: the lane's PBX (a row's `pbx`); absent: the store's own (`pbxhook outbox retry --lane`). */
  | { readonly kind: 'retry-lane'; readonly lane: string; readonly pbx?: string }
  | { readonly kind: 'probe'; readonly endpoint: string };

export const ACTION_KINDS = ['resend', 'resend-dead', 'retry-lane', 'probe'] as const;

export interface ActionTarget {
  readonly store: OutboxStore;
  /** The daemon's worker: woken after a change; absent in the CLI (the daemon polls every second). */
  readonly worker?: { probeNow(endpoint: string): boolean; kick(): void };
  readonly log: Logger;
}

export interface ActionResult {
  /** Webhooks (or endpoints, for probe) the action changed; 0 means it found nothing to do. */
  readonly changed: number;
  readonly message: string;
}

export class ActionError extends Error {
  override readonly name = 'ActionError';
  readonly code = 'PBXHOOK_ACTION';
}

/** Runs one action, logs it with `who` (`console bearer 127.0.0.1`, `cli root`…), and says what it did. */
export async function runAction(t: ActionTarget, action: OutboxAction, who: string, now: number): Promise<ActionResult> {
  const result = await apply(t, action, now);
  if (result.changed > 0) t.worker?.kick();
  t.log.info({ action: action.kind, ...targetOf(action), who, changed: result.changed }, `outbox action: ${result.message}`);
  return result;
}

async function apply(t: ActionTarget, a: OutboxAction, now: number): Promise<ActionResult> {
  switch (a.kind) {
    case 'resend': {
      const n = await t.store.retry({ ids: [a.id], states: ['dead'] }, now);
      return { changed: n, message: n > 0 ? `webhook ${a.id} sent again (new attempt series, same webhook-id)` : `webhook ${a.id} is not dead: nothing to resend` };
    }
    case 'resend-dead': {
      const n = await t.store.retry({ endpoint: a.endpoint, states: ['dead'] }, now);
      return { changed: n, message: `${n} dead webhook${n === 1 ? '' : 's'} of ${a.endpoint} sent again` };
    }
    case 'retry-lane': {
      const n = await t.store.retryLaneNow({ pbx: a.pbx ?? t.store.pbx, lane: a.lane }, now);
      return { changed: n, message: n > 0 ? `lane ${a.lane}: its head is due now` : `lane ${a.lane}: nothing waits for a retry` };
    }
    case 'probe': {
      if (t.worker === undefined) throw new ActionError('probe needs the running daemon: use the console, or wait for delivery.probe_every');
      const ok = t.worker.probeNow(a.endpoint);
      return { changed: ok ? 1 : 0, message: ok ? `endpoint ${a.endpoint}: probing now` : `endpoint ${a.endpoint} is not paused (or not enabled): nothing to probe` };
    }
  }
}

function targetOf(a: OutboxAction): Record<string, string> {
  return a.kind === 'resend' ? { id: a.id } : a.kind === 'retry-lane' ? { lane: a.lane, ...(a.pbx !== undefined ? { pbx: a.pbx } : {}) } : { endpoint: a.endpoint };
}

/** An action from untrusted JSON (the console's POST body), or a message saying what is wrong. */
export function parseAction(kind: string, body: unknown): OutboxAction | string {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const field = (k: string) => (typeof b[k] === 'string' && b[k] !== '' ? (b[k] as string) : undefined);
  switch (kind) {
    case 'resend': {
      const id = field('id') ?? (typeof b['id'] === 'number' ? String(b['id']) : undefined);
      return id !== undefined ? { kind, id } : 'resend needs "id" (row number or webhook-id)';
    }
    case 'resend-dead':
    case 'probe': {
      const endpoint = field('endpoint');
      return endpoint !== undefined ? { kind, endpoint } : `${kind} needs "endpoint"`;
    }
    case 'retry-lane': {
      const lane = field('lane');
      const pbx = field('pbx');
      return lane !== undefined ? { kind, lane, ...(pbx !== undefined ? { pbx } : {}) } : 'retry-lane needs "lane"';
    }
    default:
      return `unknown action "${kind}": ${ACTION_KINDS.join(', ')}`;
  }
}
