/**
 * The PBX's clock, as its events tell it (issue #14 item 6). Event times come from the PBX
 * (`Timestamp:`, `Event-Date-Timestamp`); idle timeouts and resync ends must be measured on that
 * same clock, never on the host's: a PBX clock hours behind would otherwise cut every call short,
 * one hours ahead would never time one out.
 *
 * Between events the PBX's time is carried on by the host's monotonic clock: each event sets the
 * offset between the two, so at the moment of an event the PBX's time is the event's own, and an
 * hour without events is an hour on both clocks whatever either wall clock says. Pure: the host's
 * time is passed in.
 */
export class PbxClock {
  /** PBX time minus host monotonic time, as of the latest event; undefined before any. */
  private offset: number | undefined;

  /** An event the PBX stamped `pbxAt`, read at host monotonic time `hostNow`. */
  observe(pbxAt: number, hostNow: number): void {
    this.offset = pbxAt - hostNow;
  }

  /** The PBX's time now; before its first event, `fallback` (the host's wall clock). */
  now(hostNow: number, fallback: number): number {
    return this.offset === undefined ? fallback : Math.round(hostNow + this.offset);
  }

  /** How far the PBX's clock is ahead of `wall` (negative: behind), for logs and the status page. */
  skew(hostNow: number, wall: number): number | undefined {
    return this.offset === undefined ? undefined : Math.round(hostNow + this.offset - wall);
  }
}
