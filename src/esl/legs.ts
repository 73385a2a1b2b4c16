/**
 * What the ESL normaliser must remember about live channels, because FreeSWITCH does not repeat
 * it on every event: which call a leg belongs to (no Linkedid: an agent leg of mod_callcenter names
 * only its member, a leg dialled by an agent leg names only the agent leg), who dialled it, and
 * whom it was last bridged with (transfers are recognised from those). Entries are dropped at
 * CHANNEL_DESTROY; the map is capped so that lost DESTROY events cannot grow it without bound.
 */
export interface LegState {
  /** The call (the first channel's Unique-ID) this leg belongs to. */
  call: string;
  /** The channel that dialled it (Other-Leg-Unique-ID at creation, or the queue member). */
  readonly dialer: string | undefined;
  /** CHANNEL_ORIGINATE seen: the tracker has a leg for it. */
  dialed: boolean;
  /** A leg created by `originate` with nobody dialling it (click-to-call). */
  originated: boolean;
  /** The dial ended in an answer (bridged, or connected by the queue). */
  connected: boolean;
  /** The latest bridge partner, kept after the bridge ends. */
  partner: string | undefined;
  /** The partner before that (an agent's caller while the agent consults). */
  formerPartner: string | undefined;
  /** False from CHANNEL_HANGUP on. */
  up: boolean;
  /** A transfer was already reported for this channel (FreeSWITCH shows some transfers twice). */
  transferred: boolean;
}

export const MAX_TRACKED_CHANNELS = 50_000;

export class LegBook {
  private readonly legs = new Map<string, LegState>();
  /** Entries dropped by the cap: each one is a CHANNEL_DESTROY that never came. */
  evicted = 0;

  constructor(private readonly max = MAX_TRACKED_CHANNELS) {}

  get size(): number {
    return this.legs.size;
  }

  get(uuid: string | undefined): LegState | undefined {
    return uuid ? this.legs.get(uuid) : undefined;
  }

  add(uuid: string, call: string, dialer: string | undefined): LegState {
    const leg: LegState = {
      call, dialer, dialed: false, originated: false, connected: false,
      partner: undefined, formerPartner: undefined, up: true, transferred: false,
    };
    this.legs.delete(uuid);
    this.legs.set(uuid, leg);
    if (this.legs.size > this.max) {
      const oldest = this.legs.keys().next().value;
      if (oldest !== undefined) this.legs.delete(oldest);
      this.evicted++;
    }
    return leg;
  }

  /** The call a new channel joins: its dialler's call, else the call FreeSWITCH names, else its own. */
  callFor(uuid: string, dialer: string | undefined, callUuid: string | undefined): string {
    return this.get(dialer)?.call ?? this.get(callUuid)?.call ?? dialer ?? callUuid ?? uuid;
  }

  bridged(a: string, b: string): void {
    for (const [self, other] of [[a, b], [b, a]] as const) {
      const leg = this.legs.get(self);
      if (!leg || leg.partner === other) continue;
      leg.formerPartner = leg.partner;
      leg.partner = other;
    }
  }

  /** The live legs `uuid` dialled. */
  *dialledBy(uuid: string): Iterable<[string, LegState]> {
    for (const entry of this.legs) if (entry[1].dialer === uuid) yield entry;
  }

  delete(uuid: string): void {
    this.legs.delete(uuid);
  }

  /** After a reconnect: channels FreeSWITCH no longer has sent their CHANNEL_DESTROY to nobody. */
  keepOnly(alive: ReadonlySet<string>): void {
    for (const uuid of [...this.legs.keys()]) if (!alive.has(uuid)) this.legs.delete(uuid);
  }
}
