/**
 * The console's API (issue #16): which view or action a path names. The ops server decides who
 * may read and act (src/ops/auth.ts); the actions are the CLI's own (src/deliver/outbox-actions.ts).
 *
 *   GET  /api/endpoints                      endpoints at a glance
 *   GET  /api/webhooks?endpoint=&state=&call= newest first, with what each waits for
 *   GET  /api/webhooks/<id|msg_…>            one webhook's whole story
 *   GET  /api/calls?q=<number|call|ext>      call journeys (live and recent) from the journal
 *   POST /api/actions/<kind>                 resend {id}, resend-dead {endpoint}, retry-lane {lane}, probe {endpoint}
 */
import type { Logger } from 'pino';
import { ActionError, type ActionTarget, parseAction, runAction } from '../deliver/outbox-actions.js';
import type { ConsoleHandler } from '../ops/server.js';
import type { JourneyView } from './journal.js';
import { type ConsoleSources, endpointsView, webhookView, webhooksView } from './views.js';

const LIST_LIMIT = 100;

export function consoleRoutes(
  s: ConsoleSources & { readonly actions: ActionTarget; readonly journal?: { search(q: string): Promise<JourneyView[]> } },
  log: Logger,
  clock: () => number = Date.now,
): ConsoleHandler {
  return {
    async read(path, query) {
      const now = clock();
      if (path === 'endpoints') return { now, endpoints: await endpointsView(s, now) };
      if (path === 'webhooks') {
        const q = { endpoint: query.get('endpoint') ?? '', state: query.get('state') ?? '', call: query.get('call') ?? '' };
        return { now, webhooks: await webhooksView(s, q, LIST_LIMIT, now) };
      }
      const one = /^webhooks\/([^/]+)$/.exec(path)?.[1];
      if (one !== undefined) return webhookView(s, decodeURIComponent(one), now);
      if (path === 'calls' && s.journal) return { now, calls: await s.journal.search(query.get('q') ?? '') };
      return undefined;
    },
    async act(kind, body, verdict, remote) {
      const action = parseAction(kind, body);
      if (typeof action === 'string') return { status: 400, body: { error: action } };
      if (!verdict.ok) {
        log.warn({ action: kind, who: `anonymous ${remote}`, status: verdict.status, code: 'PBXHOOK_CONSOLE_REFUSED' }, 'outbox action refused: no valid ops.token');
        return { status: verdict.status, body: { error: verdict.message.trim() } };
      }
      try {
        return { status: 200, body: await runAction(s.actions, action, `console ${verdict.who}`, clock()) };
      } catch (err) {
        if (err instanceof ActionError) return { status: 409, body: { error: err.message } };
        throw err;
      }
    },
  };
}
