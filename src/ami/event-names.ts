/**
 * Event names found by their bytes in place. The framer hands every event frame's name to its
 * filter; decoding it from the buffer was a native call and a new string per frame, for a few
 * dozen distinct names. Found here, the name is the string decoded the first time (issue #15:
 * fewer native calls and less allocation per frame).
 *
 * Open addressing over a fixed power-of-two table, filled at most to three quarters, so a probe
 * ends at an empty slot within a few steps. Once full, the table stops growing and names are
 * decoded each time: garbage input cannot grow it without bound.
 */

/** FNV-1a, over the bytes of a name (its latin1 characters). */
const FNV_PRIME = 0x01000193;
const FNV_OFFSET = 0x811c9dc5 | 0;

export class EventNames {
  private readonly names: Array<string | undefined>;
  private readonly mask: number;
  private readonly limit: number;
  private count = 0;

  /** Room for 3/4 of `slots` names (rounded up to a power of two). */
  constructor(slots = 1024) {
    let size = 16;
    while (size < slots) size *= 2;
    this.names = new Array<string | undefined>(size).fill(undefined);
    this.mask = size - 1;
    this.limit = (size * 3) >>> 2;
  }

  get size(): number {
    return this.count;
  }

  /** `data[from, to)` as latin1 text: the stored string when these bytes were seen before. */
  nameOf(data: Uint8Array & { toString(encoding: 'latin1', start: number, end: number): string }, from: number, to: number): string {
    let h = FNV_OFFSET;
    for (let i = from; i < to; i++) h = Math.imul(h ^ data[i]!, FNV_PRIME);
    const len = to - from;
    let slot = h & this.mask;
    for (let name = this.names[slot]; name !== undefined; name = this.names[slot]) {
      if (name.length === len && sameBytes(name, data, from)) return name;
      slot = (slot + 1) & this.mask;
    }
    const name = data.toString('latin1', from, to);
    // `slot` is the empty slot that ended the probe: where these bytes belong.
    if (this.count < this.limit) {
      this.names[slot] = name;
      this.count++;
    }
    return name;
  }
}

function sameBytes(name: string, data: Uint8Array, from: number): boolean {
  for (let i = 0; i < name.length; i++) if (name.charCodeAt(i) !== data[from + i]) return false;
  return true;
}
