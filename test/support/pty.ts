/**
 * Runs a command on a pseudo-terminal with util-linux `script`, so stdout and stderr are TTYs as
 * they are for a person at a shell. What the terminal shows comes back as one string (stdout and
 * stderr interleaved, `\n` as the tty writes it, `\r\n`).
 */
import { spawn, spawnSync } from 'node:child_process';

/** `script -qfec` is util-linux's; BSD/macOS `script` takes other options. */
export function ptyAvailable(): boolean {
  const r = spawnSync('script', ['--version'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('util-linux');
}

const quote = (arg: string): string => `'${arg.replace(/'/g, `'\\''`)}'`;

/** `pipeTo`: a shell command stdout is piped into inside the terminal (stderr stays the tty). */
export function runInPty(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  opts: { pipeTo?: string; timeoutMs?: number } = {},
): Promise<{ status: number | null; output: string }> {
  const command = argv.map(quote).join(' ') + (opts.pipeTo !== undefined ? ` | ${opts.pipeTo}` : '');
  return new Promise((resolve, reject) => {
    // -e: script exits with the command's status; -f: flush as it comes; /dev/null: no typescript file.
    const child = spawn('script', ['-qfec', command, '/dev/null'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => out.push(c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command}: no exit within ${opts.timeoutMs ?? 30_000} ms`));
    }, opts.timeoutMs ?? 30_000);
    child.once('error', reject);
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, output: Buffer.concat(out).toString('utf8') });
    });
  });
}
