/** One HTTP request a renderer wants sent; `body` is the exact string for the wire. */
export interface WebhookRequest {
  readonly endpoint: string;
  readonly method: 'GET' | 'POST';
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** Ordering key: requests with the same key are delivered strictly in order. */
  readonly orderKey: string;
}
