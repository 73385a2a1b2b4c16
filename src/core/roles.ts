import { EXTENSION_GROUP } from '../config/pattern.js';
import type { RoleConfig } from '../config/types.js';
import type { Party, RouteRole } from './events.js';

export interface Route {
  readonly role: RouteRole;
  readonly number: string;
}

export interface InferredRoute extends Route {
  /** What named it: a config key, a FreePBX context, an application. */
  readonly rule: string;
}

const CONFIG_KEY: Record<RouteRole, string> = { ivr: 'ivrs', queue: 'queues', ringgroup: 'ring_groups', voicemail: 'voicemail' };

/** FreePBX findmefollow's contexts: a call to an extension with follow-me on passes one of them. */
const FOLLOW_ME = new Set(['ext-findmefollow', 'followme-check', 'followme-sub']);
const IVR_CONTEXT = 'ivr-';

/**
 * The beginnings of the context names routeAt knows by themselves, for the filter pbxhook asks
 * Asterisk for (src/ami/event-filter.ts): a dialplan step anywhere else names no route unless the
 * config or its application does.
 */
export const ROUTE_CONTEXTS: readonly string[] = ['ext-queues', 'ext-group', ...FOLLOW_ME, IVR_CONTEXT];

/** Dialplan extensions that are entry points, not numbers: start, invalid, timeout, hangup… */
function isSpecialExten(exten: string): boolean {
  return /^(s|i|t|T|h|e|o|a)$/.test(exten);
}

/** A dialplan generating numbers in a loop must not grow memory: past this, routes are not kept. */
const MAX_RULES_KEPT = 1000;

/**
 * Endpoints whose one Party object is kept: a PBX's phones and trunks. Past it, each channel gets
 * its own, as before; a PBX naming endpoints in a loop cannot grow memory.
 */
const MAX_PARTIES_KEPT = 10_000;

interface Sighting {
  route: Route;
  rule: string;
  /** First sightings in order, across roles. */
  order: number;
}

/**
 * Knows which numbers are IVRs, queues and ring groups, and which endpoints are extensions
 * or trunks. Built once at start-up from config; every lookup is a Map/Set hit or one regex.
 */
export class RoleBook {
  private readonly byTarget = new Map<string, RouteRole>();
  private readonly extension: RegExp;
  private readonly trunk: RegExp | undefined;
  /** Per role, each number named so far: its one Route object and the rule that named it first. */
  private readonly seen: Record<RouteRole, Map<string, Sighting>> = {
    ivr: new Map(),
    queue: new Map(),
    ringgroup: new Map(),
    voicemail: new Map(),
  };
  private kept = 0;
  /**
   * Endpoint → its Party, the same frozen object for every channel of that phone or trunk: each
   * live channel held a Party and its id string of its own (~60 bytes; issue #15, memory).
   */
  private readonly parties = new Map<string, Party>();

  constructor(cfg: RoleConfig) {
    for (const t of cfg.ivrs) this.byTarget.set(t, 'ivr');
    for (const t of cfg.queues) this.byTarget.set(t, 'queue');
    for (const t of cfg.ringGroups) this.byTarget.set(t, 'ringgroup');
    this.extension = new RegExp(cfg.extensionPattern);
    this.trunk = cfg.trunkPattern ? new RegExp(cfg.trunkPattern) : undefined;
  }

  /**
   * Classifies an endpoint (the "117" of PJSIP/117-0000001a, a gateway name…). An extension's id is
   * the pattern's group named ext when it has one (`1001-12` → "1001", issue #12 item 5): the id
   * the directory and the payloads' User key on; the endpoint name stays in `endpoint`.
   */
  partyOf(endpoint: string): Party {
    const known = this.parties.get(endpoint);
    if (known) return known;
    const party = Object.freeze(this.classify(endpoint));
    if (this.parties.size < MAX_PARTIES_KEPT) this.parties.set(endpoint, party);
    return party;
  }

  private classify(endpoint: string): Party {
    if (this.trunk?.test(endpoint)) return { kind: 'trunk', id: endpoint };
    const m = this.extension.exec(endpoint);
    return m ? extensionIn(m, endpoint) : { kind: 'trunk', id: endpoint };
  }

  /**
   * The extension a name stands for when the PBX has already said it is one (a FreeSWITCH
   * directory user): the group named ext if the pattern matches, else the name as given.
   */
  extensionOf(name: string): Party {
    const m = this.extension.exec(name);
    return m ? extensionIn(m, name) : { kind: 'extension', id: name };
  }

  /** The extension id of such a name (a mailbox): see extensionOf. */
  extensionId(name: string): string {
    return this.extensionOf(name).id;
  }

  /** True when `trunk_pattern` claims this endpoint: config overrides what the PBX says it is. */
  isTrunk(endpoint: string): boolean {
    return this.trunk?.test(endpoint) ?? false;
  }

  /**
   * The route a dialplan position stands for: configured `exten@context` or bare `exten` first,
   * then FreePBX's context names (ext-queues, ext-group, ext-findmefollow, ivr-N), which need no
   * configuration. FreePBX 16 runs the same contexts; only its macros differ, and they name no route.
   */
  routeAt(context: string, exten: string): Route | undefined {
    const role = this.byTarget.get(`${exten}@${context}`) ?? this.byTarget.get(exten);
    if (role) return this.found(role, exten, () => `roles.${CONFIG_KEY[role]} in the config`);
    if (exten === '' || isSpecialExten(exten)) {
      if (context.startsWith(IVR_CONTEXT)) return this.found('ivr', context.slice(IVR_CONTEXT.length), () => `FreePBX context ${context}`);
      return undefined;
    }
    if (context === 'ext-queues') return this.found('queue', exten, () => 'FreePBX context ext-queues');
    if (context === 'ext-group') return this.found('ringgroup', exten, () => 'FreePBX context ext-group');
    // Follow-me is FreePBX's ring group of one extension's phones and numbers, named by the extension.
    if (FOLLOW_ME.has(context)) return this.found('ringgroup', exten.replace(/^FM/, ''), () => `FreePBX context ${context} (follow-me)`);
    if (context.startsWith(IVR_CONTEXT)) return this.found('ivr', context.slice(IVR_CONTEXT.length), () => `FreePBX context ${context}`);
    return undefined;
  }

  /**
   * A route seen by what the dialplan ran there (an IVR's Background, a Dial to several phones…).
   * An IVR entered at `s` (or a timeout's `t`) is named after its context, never "s".
   */
  routeBy(role: RouteRole, context: string, exten: string, rule: string): Route {
    const number = exten === '' || isSpecialExten(exten) ? context : exten;
    return this.found(role, number, () => (context ? `${rule} in ${context}` : rule));
  }

  /** Which rule named each route so far, first sighting first: check-config and replay show it. */
  inferred(): readonly InferredRoute[] {
    const all = Object.values(this.seen).flatMap((byNumber) => [...byNumber.values()]);
    return all.sort((a, b) => a.order - b.order).map(({ route, rule }) => ({ ...route, rule }));
  }

  /**
   * The route of a number, the same object each time: routes are named on every dialplan step of
   * a call, so no key string and no object is built once a number is known. The rule's text is
   * built only at its first sighting.
   */
  private found(role: RouteRole, number: string, rule: () => string): Route {
    const byNumber = this.seen[role];
    const known = byNumber.get(number);
    if (known) return known.route;
    const route: Route = Object.freeze({ role, number });
    // A dialplan generating numbers in a loop must not grow memory: past the bound, nothing is kept.
    if (this.kept < MAX_RULES_KEPT) byNumber.set(number, { route, rule: rule(), order: this.kept++ });
    return route;
  }
}

/**
 * The extension a pattern match names: its group named ext, else the whole name (no such group, or
 * one that took no part in this match: an optional group, another alternative). Any other group
 * changes nothing, so `^(1|2)\d{2}$` keeps "123" whole (src/config/pattern.ts).
 */
function extensionIn(m: RegExpExecArray, endpoint: string): Party {
  const id = m.groups?.[EXTENSION_GROUP];
  return id && id !== endpoint ? { kind: 'extension', id, endpoint } : { kind: 'extension', id: endpoint };
}

export const DEFAULT_ROLES: RoleConfig = {
  ivrs: [],
  queues: [],
  ringGroups: [],
  extensionPattern: '^[0-9]{2,6}$',
  trunkPattern: '',
  names: {},
};
