/**
 * Waits for what a worker does a few turns of the event loop later: a condition, never a fixed
 * sleep, which a busy machine can outlast (issue #13). The deadline only guards against a hang.
 */
export async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`still waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
