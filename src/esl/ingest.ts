import type { Logger } from 'pino';
import type { EslConfig } from '../config/types.js';
import { startIngest, type Ingest } from '../ingest.js';
import { connectEsl, type EslSession, type EslSkipReason } from './client.js';
import type { EslFrame } from './frame.js';

/**
 * The live ESL feed: every event frame to `onFrame`, reconnecting as src/ingest.ts does; each new
 * connection authenticates and subscribes again (an ESL subscription lives as long as its socket).
 */
export function startEslIngest(
  pbx: EslConfig,
  onFrame: (f: EslFrame) => void,
  log: Logger,
  onRestored?: (s: EslSession) => void,
  onSkip?: (reason: EslSkipReason) => void,
): Ingest<EslSession> {
  return startIngest<EslSession>({
    label: 'ESL',
    where: { host: pbx.host, port: pbx.port },
    connect: (onLost) => connectEsl(pbx, { onFrame, onStatus: (s) => { if (s === 'disconnected') onLost(); }, ...(onSkip ? { onSkip } : {}) }, log),
    ...(onRestored ? { onRestored } : {}),
    log,
  });
}
