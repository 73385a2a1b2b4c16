/**
 * A test that needs a tool the machine may lack (Chromium, systemd's tools). In CI (`CI` set, as
 * .ci/run runs; it installs them) the test always runs, and a missing tool fails it, naming the
 * tool. Elsewhere it is skipped, and says why: in its title and in one line on the console, so a
 * skip is never silent (issue #13).
 */
export interface Requirement {
  /** Skip the tests: the tool is missing and this is not CI. */
  readonly skip: boolean;
  /** Appended to the describe title: empty when the tests run. */
  readonly note: string;
  /** For beforeAll: throws in CI when the tool is missing. */
  check(): void;
}

export function inCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = env.CI?.trim().toLowerCase();
  return ci !== undefined && ci !== '' && ci !== '0' && ci !== 'false';
}

export function requires(tool: string, present: boolean, install: string, env: NodeJS.ProcessEnv = process.env): Requirement {
  const ci = inCi(env);
  const skip = !present && !ci;
  const why = `${tool} not found (${install}; CI installs it)`;
  if (skip) console.warn(`skipped: the tests that need ${tool}: ${why}`);
  return {
    skip,
    note: skip ? ` [skipped: ${why}]` : '',
    check() {
      if (!present) throw new Error(`${tool} is required in CI and is missing: ${install} (.ci/run installs it)`);
    },
  };
}
