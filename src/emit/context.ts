import type { DirectoryEntry, EndpointConfig } from '../config/types.js';

/** What a renderer may know besides the event: the endpoint it renders for and start-up settings. */
export interface RenderContext<E extends EndpointConfig = EndpointConfig> {
  readonly endpoint: E;
  readonly timezone: string;
  /** Display names from config (`roles.names`), e.g. a DID's label. */
  readonly names: Readonly<Record<string, string>>;
  /** Extension → person (`directory` in the YAML). */
  readonly directory: Readonly<Record<string, DirectoryEntry>>;
  /** The VoipAppz environment this PBX serves. */
  readonly environment: string;
}
