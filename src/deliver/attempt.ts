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
import type { Readable } from 'node:stream';
import axios, { type AxiosResponse } from 'axios';
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

export interface HttpClientOptions {
  /** The whole exchange: connect, send, response. */
  readonly timeoutMs: number;
  /** TCP (and TLS) connect only; undefined = bounded by timeoutMs alone. */
  readonly connectTimeoutMs?: number;
  /** Endpoint name → bearer token. */
  readonly tokens: ReadonlyMap<string, string>;
}

export type AttemptResult =
  | { readonly ok: true; readonly status: number; readonly latencyMs: number }
  | {
      readonly ok: false;
      readonly error: DeliveryError;
      readonly status: number | undefined;
      readonly latencyMs: number;
      /** The start of the answer, tokens masked: safe to log. */
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

export function createHttpClient(opts: HttpClientOptions): HttpClient {
  const { timeoutMs, connectTimeoutMs, tokens } = opts;
  const httpAgent = new http.Agent({ keepAlive: true });
  const httpsAgent = new https.Agent({ keepAlive: true });
  if (connectTimeoutMs !== undefined) {
    armConnectTimeout(httpAgent, connectTimeoutMs, 'connect');
    armConnectTimeout(httpsAgent, connectTimeoutMs, 'secureConnect');
  }
  const client = axios.create({
    httpAgent,
    httpsAgent,
    maxRedirects: 0,
    validateStatus: () => true,
    // axios's timeout is a socket idle timer; the AbortSignal per attempt bounds the whole exchange.
    timeout: timeoutMs,
    transitional: { clarifyTimeoutError: true },
    // The body is already the exact wire text; the answer is only logged, never parsed, and read
    // from its stream up to ANSWER_KEEP_BYTES (readAnswer).
    transformRequest: [(data: unknown) => data],
    transformResponse: [(data: unknown) => data],
    responseType: 'stream',
    decompress: true,
  });

  async function attempt(
    req: WebhookRequest,
    extraHeaders: Readonly<Record<string, string>> = {},
    signal?: AbortSignal,
  ): Promise<AttemptResult> {
    const started = performance.now();
    const latency = () => Math.round(performance.now() - started);
    if (signal?.aborted) return { ok: false, error: new DeliveryAbortedError(req.endpoint), status: undefined, latencyMs: 0, body: undefined };
    // One controller for both the deadline and shutdown: AbortSignal.timeout + any cost ~15 µs per
    // attempt, a controller and a timer ~1 µs (issue #7, delivery throughput).
    const controller = new AbortController();
    let deadlinePassed = false;
    const deadline = setTimeout(() => {
      deadlinePassed = true;
      controller.abort();
    }, timeoutMs);
    const stop = () => controller.abort();
    signal?.addEventListener('abort', stop, { once: true });
    let res: AxiosResponse<Readable>;
    let answer: string;
    try {
      res = await client.request<Readable>({
        method: req.method,
        url: req.url,
        headers: withAuthorization(req, extraHeaders, tokens.get(req.endpoint)),
        data: req.body === '' ? undefined : req.body,
        signal: controller.signal,
      });
      // The status is in: whatever happens to the body now (too long, cut, slow) cannot change the outcome.
      answer = await readAnswer(res.data, ANSWER_KEEP_BYTES, controller.signal);
    } catch (err) {
      const error = signal?.aborted
        ? new DeliveryAbortedError(req.endpoint)
        : classifyFailure(req.endpoint, err, deadlinePassed, timeoutMs, connectTimeoutMs);
      return { ok: false, error, status: undefined, latencyMs: latency(), body: undefined };
    } finally {
      clearTimeout(deadline);
      signal?.removeEventListener('abort', stop);
    }
    const { status } = res;
    if (status >= 200 && status < 300) return { ok: true, status, latencyMs: latency() };
    const error =
      status >= 300 && status < 400
        ? new HttpRedirectError(req.endpoint, status, locationForLog(res))
        : new HttpStatusError(req.endpoint, status, parseRetryAfter(header(res, 'retry-after'), Date.now()));
    return { ok: false, error, status, latencyMs: latency(), body: bodyForLog(answer, req, tokens) };
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

/** A renderer may have set Authorization itself; then it is left alone. */
function withAuthorization(
  req: WebhookRequest,
  extra: Readonly<Record<string, string>>,
  token: string | undefined,
): Record<string, string> {
  const headers: Record<string, string> = { ...req.headers, ...extra };
  let authorization = false;
  let userAgent = false;
  for (const k in headers) {
    const name = k.toLowerCase();
    authorization ||= name === 'authorization';
    userAgent ||= name === 'user-agent';
  }
  if (token !== undefined && !authorization) headers['Authorization'] = `Bearer ${token}`;
  if (!userAgent) headers['User-Agent'] = 'pbxhook';
  return headers;
}

function classifyFailure(
  endpoint: string,
  err: unknown,
  deadlinePassed: boolean,
  timeoutMs: number,
  connectTimeoutMs: number | undefined,
): DeliveryError {
  const code = (err as { code?: unknown }).code;
  const cause = (err as { cause?: { code?: unknown } }).cause?.code;
  if (code === CONNECT_TIMEOUT_CODE || cause === CONNECT_TIMEOUT_CODE) {
    return new HttpTimeoutError(endpoint, connectTimeoutMs ?? timeoutMs, 'connect');
  }
  if (deadlinePassed || code === 'ETIMEDOUT') return new HttpTimeoutError(endpoint, timeoutMs);
  const name = typeof code === 'string' ? code : 'UNKNOWN';
  return new HttpNetworkError(endpoint, name, !PERMANENT_NETWORK_CODES.has(name));
}

/**
 * The first `keep` bytes of an answer, as text; never rejects. A longer answer is not read on: its
 * stream (and socket) is destroyed. One that fails or is cut off midway (the attempt's deadline or
 * a shutdown aborts `signal`) gives what had arrived: by then the status has decided.
 */
function readAnswer(body: Readable, keep: number, signal: AbortSignal): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cut = (): void => {
      body.destroy();
      done();
    };
    const done = (): void => {
      body.off('data', onData);
      signal.removeEventListener('abort', cut);
      resolve(Buffer.concat(chunks).subarray(0, keep).toString('utf8'));
    };
    if (signal.aborted) return cut();
    signal.addEventListener('abort', cut, { once: true });
    const onData = (chunk: Buffer | string): void => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      chunks.push(b);
      size += b.length;
      if (size >= keep) cut(); // the rest is never read: the connection goes, the memory stays at `keep`
    };
    body.on('data', onData);
    body.once('end', done);
    body.once('error', done);
    body.once('close', done);
  });
}

function header(res: AxiosResponse<unknown>, name: string): string | undefined {
  const value: unknown = res.headers[name];
  return typeof value === 'string' ? value : undefined;
}

function locationForLog(res: AxiosResponse<unknown>): string | undefined {
  const location = header(res, 'location');
  return location && urlForLog(location);
}

/** Scheme, host and path only: userinfo and query strings may carry credentials. */
export function urlForLog(url: string): string {
  if (!URL.canParse(url)) return '(invalid URL)';
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

/** The start of an error answer helps debugging; any token echoed back is masked. */
function bodyForLog(answer: string, req: WebhookRequest, tokens: ReadonlyMap<string, string>): string | undefined {
  if (answer === '') return undefined;
  let text = answer.slice(0, 200);
  const auth = Object.entries(req.headers).find(([k]) => k.toLowerCase() === 'authorization')?.[1];
  const secrets = [tokens.get(req.endpoint), auth?.replace(/^\S+\s+/, '')]
    .filter((x): x is string => x !== undefined && x.length >= 4)
    .sort((a, b) => b.length - a.length); // longest first, so a prefix cannot leave a tail behind
  for (const s of secrets) text = text.replaceAll(s, '***');
  return text;
}
