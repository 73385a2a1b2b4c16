/**
 * Event names found by their bytes in place. The framer hands every event frame's name to its
 * filter; decoding it from the buffer was a native call and a new string per frame, for a few
 * dozen distinct names. Found here, the name is the string decoded the first time (issue #15:
 * fewer native calls and less allocation per frame). Bounded: byte-table.ts.
 */
import { ByteTable, type Bytes } from './byte-table.js';

export class EventNames {
  private readonly table: ByteTable<string>;

  /** Room for 3/4 of `slots` names (rounded up to a power of two). */
  constructor(slots = 1024) {
    this.table = new ByteTable((raw) => raw, slots);
  }

  get size(): number {
    return this.table.size;
  }

  /** `data[from, to)` as latin1 text: the stored string when these bytes were seen before. */
  nameOf(data: Bytes, from: number, to: number): string {
    return this.table.get(data, from, to);
  }
}
