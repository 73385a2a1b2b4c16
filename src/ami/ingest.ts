import type { Logger } from 'pino';
import type { AmiConfig } from '../config/types.js';
import { startIngest, type Ingest } from '../ingest.js';
import { connectAmi, type AmiHandlers, type AmiSession, type AmiSkipReason } from './client.js';
import type { AmiFrame } from './frame.js';

/** The live AMI feed: every frame to `onFrame`, reconnecting as src/ingest.ts does. */
export function startAmiIngest(
  pbx: AmiConfig,
  onFrame: (f: AmiFrame) => void,
  log: Logger,
  onRestored?: (s: AmiSession) => void,
  accept?: AmiHandlers['accept'],
  onSkip?: (reason: AmiSkipReason) => void,
): Ingest<AmiSession> {
  return startIngest<AmiSession>({
    label: 'AMI',
    where: { host: pbx.host, port: pbx.port },
    connect: (onLost) => connectAmi(pbx, { onFrame, onStatus: (s) => { if (s === 'disconnected') onLost(); }, ...(accept ? { accept } : {}), ...(onSkip ? { onSkip } : {}) }, log),
    ...(onRestored ? { onRestored } : {}),
    log,
  });
}
