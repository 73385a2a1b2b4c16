/**
 * Ratios from paired, interleaved runs (issue #15): each round measures subject and baseline back
 * to back, in alternating order, so both meet the same neighbours; the ratio is taken per round and
 * reported with its spread. A target is "met" only when the whole spread clears it, so one lucky
 * round never passes a verdict.
 */
export interface Spread {
  median: number;
  min: number;
  max: number;
  values: number[];
}

export function spread(values: number[]): Spread {
  if (values.length === 0) throw new Error('spread of no values');
  const sorted = [...values].sort((a, b) => a - b);
  return { median: sorted[Math.floor(sorted.length / 2)]!, min: sorted[0]!, max: sorted.at(-1)!, values };
}

/** Per-round ratio `num[i] / den[i]`: the two lists must come from the same rounds. */
export function pairedRatios(num: number[], den: number[]): Spread {
  if (num.length !== den.length) throw new Error(`unpaired runs: ${num.length} vs ${den.length}`);
  return spread(num.map((n, i) => n / den[i]!));
}

/** Runs `a` and `b` once per round, alternating which goes first. */
export async function interleaved<T>(rounds: number, a: () => T | Promise<T>, b: () => T | Promise<T>): Promise<{ a: T[]; b: T[] }> {
  const out = { a: [] as T[], b: [] as T[] };
  for (let round = 0; round < rounds; round++) {
    if (round % 2 === 0) {
      out.a.push(await a());
      out.b.push(await b());
    } else {
      out.b.push(await b());
      out.a.push(await a());
    }
  }
  return out;
}

/** `met` when every value clears the target; says how far the worst round missed otherwise. */
export function verdict(s: Spread, target: number, direction: 'atLeast' | 'atMost'): string {
  const ok = direction === 'atLeast' ? s.min >= target : s.max <= target;
  if (ok) return 'met';
  const worst = direction === 'atLeast' ? s.min : s.max;
  const clears = s.values.filter((v) => (direction === 'atLeast' ? v >= target : v <= target)).length;
  return `**not met** (worst round ${fmtRatio(worst)}; ${clears} of ${s.values.length} rounds clear it)`;
}

const fmtRatio = (n: number): string => n.toLocaleString('en-US', { maximumFractionDigits: 3, minimumFractionDigits: 3 });

/** `1.234× (1.101–1.305, 5 rounds)` */
export function showSpread(s: Spread, unit = '×', digits = 3): string {
  const f = (n: number): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  return `${f(s.median)}${unit} (${f(s.min)}–${f(s.max)}, ${s.values.length} rounds)`;
}
