/**
 * One HTTP request and its answer on node:http/https, for the outbox's attempts (attempt.ts).
 * It replaced axios on this path (issue #15): profiled, axios's per-request config merging,
 * interceptor chain and stream plumbing were a third of the outbox's CPU per webhook, for features
 * a webhook never uses. What it does, and all it does:
 *
 * - one request on a keep-alive agent; the body is the exact wire text, with its Content-Length;
 * - no redirects followed (a 3xx is an answer like any other: attempt.ts makes it permanent);
 * - no proxy, no Accept-Encoding (so no decompression), no retries;
 * - the answer read up to `keepBytes`, then its connection closed rather than read on (issue #14
 *   item 7); a complete answer lets the socket go back to the agent;
 * - one deadline for the whole exchange, and the shutdown signal: before the status either fails
 *   the exchange; after it, they only cut the body short (the status has decided).
 */
import type http from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { urlToHttpOptions } from 'node:url';

export interface ExchangeRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** undefined or '' sends no body. */
  readonly body: string | undefined;
}

export interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** The first `keepBytes` of the body, as UTF-8 text. */
  readonly text: string;
}

/** Why an exchange failed before its status arrived: a socket's own code, or one of these. */
export const DEADLINE = 'PBXHOOK_DEADLINE';
export const ABORTED = 'PBXHOOK_ABORTED';

export class ExchangeError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ExchangeOptions {
  readonly httpAgent: http.Agent;
  readonly httpsAgent: http.Agent;
  readonly timeoutMs: number;
  readonly keepBytes: number;
}

export interface Exchanger {
  exchange(req: ExchangeRequest, signal?: AbortSignal): Promise<Answer>;
}

/** Parsed URLs, per URL text: an endpoint's URL is the same for every webhook. */
const URL_CACHE_MAX = 256;

export function createExchanger(opts: ExchangeOptions): Exchanger {
  const { httpAgent, httpsAgent, timeoutMs, keepBytes } = opts;
  const targets = new Map<string, http.RequestOptions>();
  /**
   * Exchanges in flight: how to stop each, and the shutdown signal it obeys. One listener per
   * signal, not one added and removed per attempt.
   */
  const live = new Map<(reason: string) => void, AbortSignal | undefined>();
  const watched = new WeakSet<AbortSignal>();

  function target(url: string): http.RequestOptions {
    let t = targets.get(url);
    if (t !== undefined) return t;
    if (!URL.canParse(url)) throw new ExchangeError('ERR_INVALID_URL', 'invalid URL');
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ExchangeError('ERR_NOT_SUPPORT', `unsupported protocol ${u.protocol}`);
    // Only what a request reads: the agent copies every option of every request (issue #15).
    const o = urlToHttpOptions(u);
    t = { protocol: o.protocol, hostname: o.hostname, path: o.path, agent: u.protocol === 'https:' ? httpsAgent : httpAgent };
    if (o.port !== undefined) t.port = o.port;
    if (o.auth !== undefined) t.auth = o.auth; // user:password@ in the URL: Basic, as Node sends it
    if (targets.size >= URL_CACHE_MAX) targets.clear();
    targets.set(url, t);
    return t;
  }

  function watch(signal: AbortSignal): void {
    if (watched.has(signal)) return;
    watched.add(signal);
    signal.addEventListener('abort', () => {
      for (const [stop, s] of [...live]) if (s === signal) stop(ABORTED);
    }, { once: true });
  }

  function exchange(r: ExchangeRequest, signal?: AbortSignal): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      if (signal?.aborted) return reject(new ExchangeError(ABORTED, 'aborted before it started'));
      let t: http.RequestOptions;
      try {
        t = target(r.url);
      } catch (err) {
        return reject(err);
      }
      const body = r.body === undefined || r.body === '' ? undefined : r.body;
      const headers: Record<string, string | number> = { ...r.headers };
      if (body !== undefined) headers['Content-Length'] = Buffer.byteLength(body);
      let req: http.ClientRequest;
      try {
        const options = { ...t, method: r.method, headers };
        req = t.agent === httpsAgent ? httpsRequest(options) : httpRequest(options);
      } catch (err) {
        // Bad header names or values throw here (ERR_INVALID_CHAR…): the same request would again.
        return reject(err);
      }
      let res: http.IncomingMessage | undefined;
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const finish = (): void => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        live.delete(stop);
        if (res === undefined) return;
        const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: all.subarray(0, keepBytes).toString('utf8') });
      };
      const fail = (err: unknown): void => {
        if (res !== undefined) return finish(); // the status is in: a cut body changes nothing
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        live.delete(stop);
        reject(err);
      };
      const stop = (reason: string): void => {
        const err = new ExchangeError(reason, reason === DEADLINE ? `no answer within ${timeoutMs} ms` : 'aborted');
        fail(err);
        req.destroy(err);
      };
      const deadline = setTimeout(stop, timeoutMs, DEADLINE);
      live.set(stop, signal);
      if (signal !== undefined) watch(signal);
      req.on('error', fail);
      req.on('response', (answer: http.IncomingMessage) => {
        res = answer;
        answer.on('data', (chunk: Buffer) => {
          chunks.push(chunk);
          size += chunk.length;
          // The rest is never read: the connection goes, the memory stays at keepBytes.
          if (size >= keepBytes) {
            finish();
            answer.destroy();
          }
        });
        answer.on('end', finish);
        answer.on('error', finish);
        answer.on('close', finish);
      });
      req.end(body);
    });
  }

  return { exchange };
}
