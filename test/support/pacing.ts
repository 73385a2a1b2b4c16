/**
 * When each message of a trace is due, in ms after the stream starts: its time (ms, from the trace)
 * after the first timed one, divided by `speed`; never before the one before it (an untimed message
 * goes with the previous one). The fake AMI and ESL servers pace their streams with it; being pure,
 * the pace is tested without a stopwatch (test/03, test/06; issue #13).
 */
export function pacing(atMs: ReadonlyArray<number | undefined>, speed: number): number[] {
  const first = atMs.find((a) => a !== undefined) ?? 0;
  let due = 0;
  return atMs.map((a) => (due = a === undefined ? due : Math.max(due, (a - first) / speed)));
}
