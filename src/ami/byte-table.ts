/**
 * Values found by their bytes in place: the first time some bytes are seen they are decoded and
 * made into a value, afterwards the same bytes give that same value, with no native call and no
 * new string. AMI repeats a few dozen event names and a few hundred keys in every frame, so the
 * framer finds them here (issue #15: fewer native calls and less allocation per frame).
 *
 * Open addressing over a fixed power-of-two table, filled at most to three quarters, so a probe
 * ends at an empty slot within a few steps. Once full, the table stops growing and unseen bytes
 * are made into a value each time: garbage input cannot grow it without bound.
 */

/** FNV-1a, over the bytes (their latin1 characters): `h = hashStep(h, byte)` from `HASH_START`. */
export const HASH_START = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

export function hashStep(h: number, byte: number): number {
  return Math.imul(h ^ byte, FNV_PRIME);
}

/** A Buffer, or any byte array that decodes a range as latin1 text. */
export type Bytes = Uint8Array & { toString(encoding: 'latin1', start: number, end: number): string };

export class ByteTable<T> {
  /** The bytes of each slot as latin1 text (one character per byte), to compare on a probe. */
  private readonly raws: Array<string | undefined>;
  private readonly values: Array<T | undefined>;
  private readonly mask: number;
  private readonly limit: number;
  private count = 0;

  /** `make(raw)`: the value of bytes whose latin1 text is `raw`. Room for 3/4 of `slots`. */
  constructor(private readonly make: (raw: string) => T, slots = 1024) {
    let size = 16;
    while (size < slots) size *= 2;
    this.raws = new Array<string | undefined>(size).fill(undefined);
    this.values = new Array<T | undefined>(size).fill(undefined);
    this.mask = size - 1;
    this.limit = (size * 3) >>> 2;
  }

  get size(): number {
    return this.count;
  }

  /** The value of `data[from, to)`: the stored one when these bytes were seen before. */
  get(data: Bytes, from: number, to: number): T {
    let h = HASH_START;
    for (let i = from; i < to; i++) h = hashStep(h, data[i]!);
    return this.hashed(data, from, to, h);
  }

  /** `get` for a caller that hashed the bytes while reading them anyway (hashStep). */
  hashed(data: Bytes, from: number, to: number, h: number): T {
    const len = to - from;
    let slot = h & this.mask;
    for (let raw = this.raws[slot]; raw !== undefined; raw = this.raws[slot]) {
      if (raw.length === len && sameBytes(raw, data, from)) return this.values[slot]!;
      slot = (slot + 1) & this.mask;
    }
    const raw = data.toString('latin1', from, to);
    const value = this.make(raw);
    // `slot` is the empty slot that ended the probe: where these bytes belong.
    if (this.count < this.limit) {
      this.raws[slot] = raw;
      this.values[slot] = value;
      this.count++;
    }
    return value;
  }
}

function sameBytes(raw: string, data: Uint8Array, from: number): boolean {
  for (let i = 0; i < raw.length; i++) if (raw.charCodeAt(i) !== data[from + i]) return false;
  return true;
}
