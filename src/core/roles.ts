import type { RoleConfig } from '../config/types.js';
import type { Party, RouteRole } from './events.js';

export interface Route {
  readonly role: RouteRole;
  readonly number: string;
}

/**
 * Knows which numbers are IVRs, queues and ring groups, and which endpoints are extensions
 * or trunks. Built once at start-up from config; every lookup is a Map/Set hit or one regex.
 */
export class RoleBook {
  private readonly byTarget = new Map<string, RouteRole>();
  private readonly extension: RegExp;
  private readonly trunk: RegExp | undefined;

  constructor(private readonly cfg: RoleConfig) {
    for (const t of cfg.ivrs) this.byTarget.set(t, 'ivr');
    for (const t of cfg.queues) this.byTarget.set(t, 'queue');
    for (const t of cfg.ringGroups) this.byTarget.set(t, 'ringgroup');
    this.extension = new RegExp(cfg.extensionPattern);
    this.trunk = cfg.trunkPattern ? new RegExp(cfg.trunkPattern) : undefined;
  }

  /** Classifies an endpoint (the "117" of PJSIP/117-0000001a, a gateway name…). */
  partyOf(endpoint: string): Party {
    if (this.trunk?.test(endpoint)) return { kind: 'trunk', id: endpoint };
    if (this.extension.test(endpoint)) return { kind: 'extension', id: endpoint };
    return { kind: 'trunk', id: endpoint };
  }

  /** True when `trunk_pattern` claims this endpoint: config overrides what the PBX says it is. */
  isTrunk(endpoint: string): boolean {
    return this.trunk?.test(endpoint) ?? false;
  }

  /**
   * The route a dialplan position stands for: configured `exten@context` or bare `exten` first,
   * then FreePBX's context names (ext-queues, ext-group, ivr-N), which need no configuration.
   */
  routeAt(context: string, exten: string): Route | undefined {
    const role = this.byTarget.get(`${exten}@${context}`) ?? this.byTarget.get(exten);
    if (role) return { role, number: exten };
    if (context === 'ext-queues' && exten !== 's' && exten !== 'h') return { role: 'queue', number: exten };
    if (context === 'ext-group' && exten !== 's' && exten !== 'h') return { role: 'ringgroup', number: exten };
    if (context.startsWith('ivr-')) return { role: 'ivr', number: context.slice(4) };
    return undefined;
  }

  /** True when config names this number for a role, so automatic detection must not relabel it. */
  isConfigured(context: string, exten: string): boolean {
    return this.byTarget.has(`${exten}@${context}`) || this.byTarget.has(exten);
  }

  displayName(number: string): string | undefined {
    return this.cfg.names[number];
  }
}

export const DEFAULT_ROLES: RoleConfig = {
  ivrs: [],
  queues: [],
  ringGroups: [],
  extensionPattern: '^[0-9]{2,6}$',
  trunkPattern: '',
  names: {},
};
