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
  /**
   * Legs read or written since `takeChanged()`: the handlers change a leg through what `get` and
   * `dialledBy` hand them, so every leg handed out may have changed (saved with the outbox).
   */
  private changed: Set<string> | undefined;

  /** From now on, remember which legs change, for `takeChanged` (the daemon; not replay). */
  trackChanges(): void {
    this.changed ??= new Set();
  }

  constructor(private readonly max = MAX_TRACKED_CHANNELS) {}

  get size(): number {
    return this.legs.size;
  }

  get(uuid: string | undefined): LegState | undefined {
    const leg = uuid ? this.legs.get(uuid) : undefined;
    if (leg) this.changed?.add(uuid!);
    return leg;
  }

  /** The legs that may have changed since the last call, undefined for one gone (issue #14 item 2). */
  takeChanged(): Array<[string, LegState | undefined]> {
    const out = [...(this.changed ?? [])].map((uuid): [string, LegState | undefined] => [uuid, this.legs.get(uuid)]);
    this.changed?.clear();
    return out;
  }

  /** Takes back legs saved by `takeChanged` (a restart). */
  restore(entries: Iterable<[string, LegState]>): void {
    for (const [uuid, leg] of entries) this.legs.set(uuid, leg);
  }

  add(uuid: string, call: string, dialer: string | undefined): LegState {
    const leg: LegState = {
      call, dialer, dialed: false, originated: false, connected: false,
      partner: undefined, formerPartner: undefined, up: true, transferred: false,
    };
    this.legs.delete(uuid);
    this.legs.set(uuid, leg);
    this.changed?.add(uuid);
    if (this.legs.size > this.max) {
      const oldest = this.legs.keys().next().value;
      if (oldest !== undefined) this.delete(oldest);
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
      this.changed?.add(self); // not handed out by get(): saved here, or a restart would forget it
    }
  }

  /** The live legs `uuid` dialled. */
  *dialledBy(uuid: string): Iterable<[string, LegState]> {
    for (const entry of this.legs) {
      if (entry[1].dialer !== uuid) continue;
      this.changed?.add(entry[0]);
      yield entry;
    }
  }

  delete(uuid: string): void {
    this.legs.delete(uuid);
    this.changed?.add(uuid);
  }

  /** After a reconnect: channels FreeSWITCH no longer has sent their CHANNEL_DESTROY to nobody. */
  keepOnly(alive: ReadonlySet<string>): void {
    for (const uuid of [...this.legs.keys()]) if (!alive.has(uuid)) this.delete(uuid);
  }
}
