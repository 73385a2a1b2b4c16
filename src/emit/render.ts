import type { EndpointConfig, SchemaName } from '../config/types.js';
import type { LifecycleEvent } from '../core/lifecycle.js';
import type { RenderContext } from './context.js';
import { prepareE164 } from './e164.js';
import type { WebhookRequest } from './request.js';
import { renderPetDesk } from './petdesk.js';
import { renderThreeCx } from './threecx.js';
import { renderVoipRequest } from './voip-request.js';
import { renderVoipAppz } from './voipappz.js';
import { renderVxt } from './vxt.js';

export type Render<E extends EndpointConfig = EndpointConfig> = (ev: LifecycleEvent, ctx: RenderContext<E>) => WebhookRequest[];

type RendererTable = { [S in SchemaName]: Render<Extract<EndpointConfig, { schema: S }>> | undefined };

/** One pure render function per vendor schema. */
const RENDERERS: RendererTable = {
  '3cx': renderThreeCx,
  voipappz: renderVoipAppz,
  petdesk: renderPetDesk,
  vxt: renderVxt,
  'voip-request': renderVoipRequest,
};

export function rendererFor(endpoint: EndpointConfig): Render {
  // VXT's phone-number library is loaded only with a VXT endpoint, before its first call needs it.
  if (endpoint.schema === 'vxt') prepareE164();
  return (RENDERERS[endpoint.schema] as Render | undefined) ?? (() => []);
}
