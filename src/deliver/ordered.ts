/**
 * Ordered delivery: requests with the same `orderKey` (one call) go out strictly one
 * after another in arrival order — a later event waits while an earlier one is retried,
 * so a CRM never sees "call ended" before "call answered" — while different keys run in
 * parallel up to `concurrency`. A request that finally fails does not block its key:
 * the next one is sent after it (the failure is the caller's to record).
 */
import type { WebhookRequest } from '../emit/request.js';
import type { DeliveryResult } from './send.js';

export type SendFn = (req: WebhookRequest) => Promise<DeliveryResult>;

export interface OrderedDispatcher {
  /** Queues `req`; resolves with its delivery result once it is sent or has failed for good. */
  dispatch(req: WebhookRequest): Promise<DeliveryResult>;
  /** Resolves when nothing is queued or in flight (stop feeding it first, e.g. on SIGTERM). */
  drain(): Promise<void>;
  /** Requests waiting behind their key or for a free slot. */
  readonly queued: number;
  /** Keys with a request being sent (retries included). */
  readonly inFlight: number;
}

interface Job {
  readonly req: WebhookRequest;
  readonly resolve: (r: DeliveryResult) => void;
  readonly reject: (err: unknown) => void;
}

export function createOrderedDispatcher(send: SendFn, opts: { readonly concurrency: number }): OrderedDispatcher {
  const { concurrency } = opts;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a whole number of at least 1, got ${concurrency}`);
  }
  // A key has a queue while it is in flight or waiting in `ready`; the queue head is the one sent.
  const queues = new Map<string, Job[]>();
  const ready: string[] = [];
  const active = new Set<string>();
  let idleWaiters: Array<() => void> = [];
  let queued = 0;

  function pump(): void {
    while (active.size < concurrency && ready.length > 0) {
      const key = ready.shift()!;
      active.add(key);
      void run(key);
    }
    if (active.size === 0 && queues.size === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  async function run(key: string): Promise<void> {
    const queue = queues.get(key)!;
    const job = queue[0]!;
    queued--;
    let settle: () => void;
    try {
      const result = await send(job.req);
      settle = () => job.resolve(result);
    } catch (err) {
      settle = () => job.reject(err);
    }
    queue.shift();
    active.delete(key);
    if (queue.length > 0) ready.push(key);
    else queues.delete(key);
    settle();
    pump();
  }

  return {
    dispatch(req) {
      return new Promise<DeliveryResult>((resolve, reject) => {
        const job = { req, resolve, reject };
        queued++;
        const queue = queues.get(req.orderKey);
        if (queue !== undefined) queue.push(job);
        else {
          queues.set(req.orderKey, [job]);
          ready.push(req.orderKey);
        }
        pump();
      });
    },
    drain() {
      if (active.size === 0 && queues.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    get queued() {
      return queued;
    },
    get inFlight() {
      return active.size;
    },
  };
}
