/**
 * A throwaway PostgreSQL cluster for one test file (issue #17 item 5): Debian's server binaries,
 * a data directory under the OS temp dir, TCP on 127.0.0.1 only, no system service. A cluster per
 * file keeps files that run in parallel from seeing each other's rows; initdb takes a second or two.
 *
 * PostgreSQL refuses to run as root, so when the tests run as root (CI containers) the server runs
 * as the `postgres` user the Debian package creates.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requires, type Requirement } from './requires.js';

/** Newest Debian server binaries (/usr/lib/postgresql/N/bin), or PBXHOOK_PG_BIN. */
export function postgresBinDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.PBXHOOK_PG_BIN) return existsSync(join(env.PBXHOOK_PG_BIN, 'initdb')) ? env.PBXHOOK_PG_BIN : undefined;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const bin = join(root, v, 'bin');
    if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl'))) return bin;
  }
  return undefined;
}

export const postgresRequirement: Requirement = requires('PostgreSQL', postgresBinDir() !== undefined, 'apt-get install postgresql');

export interface TestPostgres {
  /** postgres://pbxhook@127.0.0.1:PORT/pbxhook (trust auth: loopback, throwaway). */
  readonly url: string;
  readonly port: number;
  /**
   * A fresh database in this cluster, for a test that wants a clean outbox. `icuLocale` (`en-US`):
   * its text sorts as a production database created under that locale does, not bytewise as the
   * cluster's C.UTF-8 does, so a query whose order depends on the collation shows it.
   */
  createDatabase(name: string, opts?: { icuLocale?: string }): string;
  stop(): void;
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

/** `settings`: more server options (`-c name=value` each), e.g. pg_stat_statements for a profile. */
export async function startPostgres(settings: readonly string[] = []): Promise<TestPostgres> {
  const bin = postgresBinDir();
  if (bin === undefined) throw new Error('PostgreSQL server binaries not found (apt-get install postgresql)');
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'pbxhook-pg-'));
  const data = join(dir, 'data');
  const run = (cmd: string, args: string[]): string => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]] : [join(bin, cmd), args];
    const r = spawnSync(file, argv, { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`${cmd} failed (${r.status}): ${r.stderr || r.stdout}`);
    return r.stdout;
  };
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  run('initdb', ['-D', data, '-U', 'pbxhook', '-A', 'trust', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  // fsync off: a throwaway cluster; the tests kill pbxhook, never PostgreSQL.
  const opts = `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200${settings.map((x) => ` -c ${x}`).join('')}`;
  run('pg_ctl', ['-D', data, '-o', opts, '-l', join(dir, 'log'), '-w', '-t', '60', 'start']);
  const psql = (sql: string): void => {
    const r = spawnSync(join(bin, 'psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'pbxhook', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-c', sql], { encoding: 'utf8', timeout: 30_000 });
    if (r.status !== 0) throw new Error(`psql failed: ${r.stderr}`);
  };
  psql('CREATE DATABASE pbxhook');
  let stopped = false;
  return {
    url: `postgres://pbxhook@127.0.0.1:${port}/pbxhook`,
    port,
    createDatabase(name: string, opts: { icuLocale?: string } = {}) {
      const icu = opts.icuLocale === undefined ? '' : ` TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '${opts.icuLocale.replace(/'/g, '')}'`;
      psql(`CREATE DATABASE "${name.replace(/"/g, '')}"${icu}`);
      return `postgres://pbxhook@127.0.0.1:${port}/${encodeURIComponent(name)}`;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', '-t', '30', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
