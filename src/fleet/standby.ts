/**
 * The daemon's role among the `pbxhook run` of one PBX (issue #17 item 3): without `standby`, always
 * active; with it, standby until this PBX's lease (lease.ts) is held, active while it is confirmed,
 * and `lost` for good once it is not: the daemon then stops following the PBX and exits, and its
 * supervisor starts it again as a standby.
 */
import type { Logger } from 'pino';
import { pbxNameOf } from '../config/pbx-name.js';
import type { Config } from '../config/types.js';
import { holdStandbyLease, type LeaseLoss, type LeaseRole } from './lease.js';

export interface Standby {
  role(): LeaseRole;
  /** While standing by: who holds the lease (its address), once seen. */
  holder(): string | undefined;
  /** Resolves when this daemon may follow the PBX. */
  readonly active: Promise<void>;
  /** Resolves when a held lease is lost; never without standby. */
  readonly lost: Promise<LeaseLoss>;
  /** May PBX input be acted on now? False once the lease is not confirmed lately (fencing). */
  fresh(): boolean;
  close(): Promise<void>;
}

const never = new Promise<never>(() => undefined);

/** Where the lease lives: the PostgreSQL outbox's database, for the PBX of `pbxName`. */
export interface StandbyPlace {
  readonly url: string;
  readonly pbxName: string;
}

export function startStandby(cfg: Pick<Config, 'standby'>, place: StandbyPlace | undefined, log: Logger): Standby {
  if (cfg.standby?.enabled !== true || place === undefined) {
    return { role: () => 'active', holder: () => undefined, active: Promise.resolve(), lost: never, fresh: () => true, close: async () => undefined };
  }
  const lease = holdStandbyLease({ url: place.url, pbxName: place.pbxName, takeoverSeconds: cfg.standby.takeoverSeconds, log });
  return { role: lease.role, holder: lease.holder, active: lease.acquired, lost: lease.lost, fresh: lease.fresh, close: lease.close };
}

/** The lease's database and key, from the config: none while the outbox is not on PostgreSQL. */
export function standbyPlaceOf(cfg: Pick<Config, 'pbx' | 'outbox'>): StandbyPlace | undefined {
  const outbox = cfg.outbox;
  if (outbox?.store !== 'postgres') return undefined;
  return { url: outbox.url, pbxName: pbxNameOf(cfg.pbx) };
}
