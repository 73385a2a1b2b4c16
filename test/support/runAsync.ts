import { spawn } from 'node:child_process';

export interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * A child process that does not block the test worker's event loop: vitest's worker must answer its
 * main process within 60 s (`Timeout calling "onTaskUpdate"`), so a step that may take minutes on a
 * busy machine (a build, npm, dpkg) never runs through spawnSync.
 */
export function runAsync(cmd: string, args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr = (stderr + c).slice(-20_000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeout);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} ${args.join(' ')}: ${e.message}`));
    });
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      if (signal) reject(new Error(`${cmd} ${args.join(' ')}: killed by ${signal} (over ${opts.timeout} ms?)\n${stderr}`));
      else resolve({ status, stdout, stderr });
    });
  });
}
