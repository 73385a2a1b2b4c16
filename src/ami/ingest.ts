import type { Logger } from 'pino';
import type { AmiConfig } from '../config/types.js';
import { startIngest, type Ingest } from '../ingest.js';
import { connectAmi, type AmiHandlers, type AmiSession, type AmiSkipReason } from './client.js';
import { amiSessionFilter, managerConfLines, type RouteTargets } from './event-filter.js';
import type { AmiFrame } from './frame.js';

/** The live AMI feed: every frame to `onFrame`, reconnecting as src/ingest.ts does. */
export function startAmiIngest(
  pbx: AmiConfig,
  onFrame: (f: AmiFrame) => void,
  log: Logger,
  onRestored?: (s: AmiSession) => void,
  accept?: AmiHandlers['accept'],
  onSkip?: (reason: AmiSkipReason) => void,
  /** The configured routes (`roles:`), whose dialplan steps the filter must pass. */
  routes?: RouteTargets,
): Ingest<AmiSession> {
  // Asterisk filters for us unless the user said not to (pbx.event_filter, issue #15).
  const filter = pbx.eventFilter === 'off' ? {} : { sessionFilter: amiSessionFilter(routes) };
  // One line per process: a PBX that refused once refuses at every reconnect too.
  let told = false;
  const onFilterRefused = (said: string): void => {
    if (told) return;
    told = true;
    log.warn(
      { host: pbx.host, port: pbx.port, username: pbx.username, code: 'PBXHOOK_AMI_FILTER_REFUSED', said, managerConf: managerConfLines(pbx.username, routes).join('\n') },
      `AMI refused the Filter action ("${said}"): reading every event. Add system to the user's write = in manager.conf, or its eventfilter lines (managerConf; pbxhook check-config prints them), or set pbx.event_filter: off`,
    );
  };
  return startIngest<AmiSession>({
    label: 'AMI',
    where: { host: pbx.host, port: pbx.port },
    connect: (onLost) =>
      connectAmi(
        { ...pbx, ...filter },
        { onFrame, onStatus: (s) => { if (s === 'disconnected') onLost(); }, onFilterRefused, ...(accept ? { accept } : {}), ...(onSkip ? { onSkip } : {}) },
        log,
      ),
    ...(onRestored ? { onRestored } : {}),
    log,
  });
}
