/**
 * One HTTP attempt of one webhook, classified; no retrying and no logging here. The durable
 * outbox worker (outbox-worker.ts) decides what follows (schedule.ts).
 *
 *   2xx                       ok
 *   3xx                       PBXHOOK_HTTP_REDIRECT, never followed (the body would go elsewhere)
 *   4xx, 5xx                  PBXHOOK_HTTP_STATUS (retryable for 408, 429, 5xx), Retry-After kept
 *   no answer in time         PBXHOOK_HTTP_TIMEOUT (phase connect or response)
 *   reset, refused, DNS…      PBXHOOK_HTTP_NETWORK
 *   shutdown cut it off       PBXHOOK_HTTP_ABORTED
 *
 * TLS certificates are always verified (Node's default); add private CAs with NODE_EXTRA_CA_CERTS.
 */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { WebhookRequest } from '../emit/request.js';
import { parseRetryAfter } from './backoff.js';
import {
  DeliveryAbortedError,
  type DeliveryError,
  HttpNetworkError,
  HttpRedirectError,
  HttpStatusError,
  HttpTimeoutError,
} from './errors.js';
import { ABORTED, type Answer, DEADLINE, createExchanger } from './http-exchange.js';

export interface HttpClientOptions {
  /** The whole exchange: connect, send, response. */
  readonly timeoutMs: number;
  /** TCP (and TLS) connect only; undefined = bounded by timeoutMs alone. */
  readonly connectTimeoutMs?: number;
  /** Endpoint name → bearer token. */
  readonly tokens: ReadonlyMap<string, string>;
}

export type AttemptResult =
  | {
      readonly ok: true;
      readonly status: number;
      readonly latencyMs: number;
      /** The start of the answer (RESPONSE_KEEP_CHARS), tokens masked: kept with the attempt. */
      readonly body?: string | undefined;
    }
  | {
      readonly ok: false;
      readonly error: DeliveryError;
      readonly status: number | undefined;
      readonly latencyMs: number;
      /** The start of the answer (RESPONSE_KEEP_CHARS), tokens masked: kept with the attempt, safe to log. */
      readonly body: string | undefined;
    };

export interface HttpClient {
  /** `extraHeaders` win over the rendered ones (delivery headers: webhook-id, signature…). */
  attempt(req: WebhookRequest, extraHeaders?: Readonly<Record<string, string>>, signal?: AbortSignal): Promise<AttemptResult>;
  /** Closes idle keep-alive sockets. */
  close(): void;
}

/** Client-side faults that the same request would hit again. */
const PERMANENT_NETWORK_CODES = new Set([
  'ERR_INVALID_URL',
  'ERR_BAD_OPTION',
  'ERR_BAD_OPTION_VALUE',
  'ERR_NOT_SUPPORT',
  'ERR_INVALID_CHAR',
  'ERR_INVALID_HTTP_TOKEN',
  'ERR_UNESCAPED_CHARACTERS',
]);

const CONNECT_TIMEOUT_CODE = 'PBXHOOK_CONNECT_TIMEOUT';

/**
 * How much of an answer is read (issue #14 item 7): the status decides the outcome, the body is
 * only kept for the attempt log. Beyond this the answer is not read at all: its connection is
 * closed, so a CRM answering 200 with hundreds of megabytes costs 64 KB and is still a success.
 */
export const ANSWER_KEEP_BYTES = 64 * 1024;

/** What of an answer the attempt keeps (the console shows it, issue #16 item 2); logs take less. */
export const RESPONSE_KEEP_CHARS = 1024;

export function createHttpClient(opts: HttpClientOptions): HttpClient {
  const { timeoutMs, connectTimeoutMs, tokens } = opts;
  const httpAgent = new http.Agent({ keepAlive: true });
  const httpsAgent = new https.Agent({ keepAlive: true });
  if (connectTimeoutMs !== undefined) {
    armConnectTimeout(httpAgent, connectTimeoutMs, 'connect');
    armConnectTimeout(httpsAgent, connectTimeoutMs, 'secureConnect');
  }
  const exchanger = createExchanger({ httpAgent, httpsAgent, timeoutMs, keepBytes: ANSWER_KEEP_BYTES });

  async function attempt(
    req: WebhookRequest,
    extraHeaders: Readonly<Record<string, string>> = {},
    signal?: AbortSignal,
  ): Promise<AttemptResult> {
    const started = performance.now();
    const latency = () => Math.round(performance.now() - started);
    let answer: Answer;
    try {
      answer = await exchanger.exchange(
        { method: req.method, url: req.url, headers: withAuthorization(req, extraHeaders, tokens.get(req.endpoint)), body: req.body },
        signal,
      );
    } catch (err) {
      const error = signal?.aborted
        ? new DeliveryAbortedError(req.endpoint)
        : classifyFailure(req.endpoint, err, timeoutMs, connectTimeoutMs);
      return { ok: false, error, status: undefined, latencyMs: latency(), body: undefined };
    }
    const { status } = answer;
    if (status >= 200 && status < 300) return { ok: true, status, latencyMs: latency(), body: bodyForLog(answer.text, req, tokens) };
    const error =
      status >= 300 && status < 400
        ? new HttpRedirectError(req.endpoint, status, locationForLog(answer))
        : new HttpStatusError(req.endpoint, status, parseRetryAfter(header(answer, 'retry-after'), Date.now()));
    return { ok: false, error, status, latencyMs: latency(), body: bodyForLog(answer.text, req, tokens) };
  }

  return {
    attempt,
    close() {
      httpAgent.destroy();
      httpsAgent.destroy();
    },
  };
}

/**
 * Node has no connect timeout of its own: a SYN into a black hole waits for the kernel (minutes).
 * Only new sockets pass through createConnection, so keep-alive reuse is not affected.
 */
function armConnectTimeout(agent: http.Agent, ms: number, connected: 'connect' | 'secureConnect'): void {
  const create = agent.createConnection.bind(agent);
  agent.createConnection = (options, callback) => {
    const socket = create(options, callback) as net.Socket | null | undefined;
    if (!socket) return socket;
    const timer = setTimeout(() => {
      socket.destroy(Object.assign(new Error(`no connection within ${ms} ms`), { code: CONNECT_TIMEOUT_CODE }));
    }, ms);
    socket.once(connected, () => clearTimeout(timer));
    socket.once('close', () => clearTimeout(timer));
    return socket;
  };
}

/**
 * What a header name is, by the name as written: every webhook of an endpoint carries the same few
 * names, so each is lower-cased once, not once per request (issue #15). Bounded, as names come
 * from renderers and configs, not from the network.
 */
const NAME_KINDS = new Map<string, 'authorization' | 'user-agent' | 'other'>();

function kindOf(name: string): 'authorization' | 'user-agent' | 'other' {
  let kind = NAME_KINDS.get(name);
  if (kind === undefined) {
    const lower = name.toLowerCase();
    kind = lower === 'authorization' || lower === 'user-agent' ? lower : 'other';
    if (NAME_KINDS.size >= 1024) NAME_KINDS.clear();
    NAME_KINDS.set(name, kind);
  }
  return kind;
}

/**
 * The rendered headers, then `extra` (winning), then Authorization and User-Agent unless already
 * there in any case: the order `{ ...rendered, ...extra }` gives, built in one pass. A renderer may
 * have set Authorization itself; then it is left alone.
 */
function withAuthorization(
  req: WebhookRequest,
  extra: Readonly<Record<string, string>>,
  token: string | undefined,
): Record<string, string> {
  const headers: Record<string, string> = {};
  let authorization = false;
  let userAgent = false;
  for (const from of [req.headers, extra]) {
    for (const k in from) {
      headers[k] = from[k]!;
      const kind = kindOf(k);
      if (kind === 'authorization') authorization = true;
      else if (kind === 'user-agent') userAgent = true;
    }
  }
  if (token !== undefined && !authorization) headers['Authorization'] = `Bearer ${token}`;
  if (!userAgent) headers['User-Agent'] = 'pbxhook';
  return headers;
}

function classifyFailure(
  endpoint: string,
  err: unknown,
  timeoutMs: number,
  connectTimeoutMs: number | undefined,
): DeliveryError {
  const code = (err as { code?: unknown }).code;
  if (code === CONNECT_TIMEOUT_CODE) return new HttpTimeoutError(endpoint, connectTimeoutMs ?? timeoutMs, 'connect');
  if (code === DEADLINE) return new HttpTimeoutError(endpoint, timeoutMs);
  if (code === ABORTED) return new DeliveryAbortedError(endpoint);
  const name = typeof code === 'string' ? code : 'UNKNOWN';
  return new HttpNetworkError(endpoint, name, !PERMANENT_NETWORK_CODES.has(name));
}

function header(res: Answer, name: string): string | undefined {
  const value: unknown = res.headers[name];
  return typeof value === 'string' ? value : undefined;
}

function locationForLog(res: Answer): string | undefined {
  const location = header(res, 'location');
  return location && urlForLog(location);
}

/** Scheme, host and path only: userinfo and query strings may carry credentials. */
export function urlForLog(url: string): string {
  if (!URL.canParse(url)) return '(invalid URL)';
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

/** The start of an answer helps debugging; any token echoed back is masked. */
function bodyForLog(answer: string, req: WebhookRequest, tokens: ReadonlyMap<string, string>): string | undefined {
  if (answer === '') return undefined;
  let text = answer.slice(0, RESPONSE_KEEP_CHARS);
  const auth = Object.entries(req.headers).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
  const secrets = [tokens.get(req.endpoint), auth?.replace(/^\S+\s+/, '')]
    .filter((x): x is string => x !== undefined && x.length >= 4)
    .sort((a, b) => b.length - a.length); // longest first, so a prefix cannot leave a tail behind
  for (const s of secrets) text = text.replaceAll(s, '***');
  return text;
}
