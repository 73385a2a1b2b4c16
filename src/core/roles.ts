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

  /**
   * Classifies an endpoint (the "117" of PJSIP/117-0000001a, a gateway name…). An extension's id is
   * the pattern's extension group when it has one (`1001-12` → "1001", issue #12 item 5): the id
   * the directory, the payloads' User and the tracker's per-extension state all key on.
   */
  partyOf(endpoint: string): Party {
    if (this.trunk?.test(endpoint)) return { kind: 'trunk', id: endpoint };
    const m = this.extension.exec(endpoint);
    if (m) return { kind: 'extension', id: this.idIn(m, endpoint) };
    return { kind: 'trunk', id: endpoint };
  }

  /**
   * The extension a name the PBX gives one stands for, when the PBX has already said it is one
   * (a FreeSWITCH directory user, a mailbox): the extension group if the pattern matches, else the
   * name as given.
   */
  extensionId(name: string): string {
    const m = this.extension.exec(name);
    return m ? this.idIn(m, name) : name;
  }

  private idIn(m: RegExpExecArray, name: string): string {
    const g = this.cfg.extensionGroup;
    const id = g === undefined ? undefined : typeof g === 'number' ? m[g] : m.groups?.[g];
    // A group that took no part in this match (an optional group, another alternative) leaves the name whole.
    return id || name;
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
  extensionGroup: undefined,
  trunkPattern: '',
  names: {},
};
