import type { Config } from '../config/types.js';

/** Endpoint name → bearer token, for the sender. Built once at start-up. */
export function tokensOf(cfg: Pick<Config, 'endpoints'>): Map<string, string> {
  const tokens = new Map<string, string>();
  for (const e of cfg.endpoints) if (e.token) tokens.set(e.name, e.token);
  return tokens;
}
