import type { EndpointConfig } from '../config/types.js';

/** What a renderer may know besides the event: the endpoint it renders for and start-up settings. */
export interface RenderContext {
  readonly endpoint: EndpointConfig;
  readonly timezone: string;
  /** Display names from config (`roles.names`), e.g. a DID's label. */
  readonly names: Readonly<Record<string, string>>;
}
