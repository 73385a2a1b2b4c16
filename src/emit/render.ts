import type { EndpointConfig, SchemaName } from '../config/types.js';
import type { LifecycleEvent } from '../core/lifecycle.js';
import type { RenderContext } from './context.js';
import type { WebhookRequest } from './request.js';
import { renderThreeCx } from './threecx.js';

export type Render<E extends EndpointConfig = EndpointConfig> = (ev: LifecycleEvent, ctx: RenderContext<E>) => WebhookRequest[];

type RendererTable = { [S in SchemaName]: Render<Extract<EndpointConfig, { schema: S }>> | undefined };

/** One pure render function per vendor schema. */
const RENDERERS: RendererTable = {
  '3cx': renderThreeCx,
  voipappz: undefined,
  petdesk: undefined,
  vxt: undefined,
  'voip-request': undefined,
};

export function rendererFor(endpoint: EndpointConfig): Render {
  return (RENDERERS[endpoint.schema] as Render | undefined) ?? (() => []);
}
