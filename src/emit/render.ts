import type { EndpointConfig } from '../config/types.js';
import type { CallEvent } from '../core/lifecycle.js';
import type { RenderContext } from './context.js';
import type { WebhookRequest } from './request.js';
import { renderThreeCx } from './threecx.js';

export type Render = (ev: CallEvent, ctx: RenderContext) => WebhookRequest[];

/** One pure render function per vendor schema. */
const RENDERERS: Record<EndpointConfig['schema'], Render> = {
  '3cx': renderThreeCx,
};

export function rendererFor(endpoint: EndpointConfig): Render {
  return RENDERERS[endpoint.schema];
}
