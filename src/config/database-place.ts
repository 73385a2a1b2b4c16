/**
 * What logs, `check-config` and the outbox's location may say of `outbox.url` (issue #17): its
 * host (or socket folder), port and database, never the user or password. One function, so the
 * explanation and the daemon's log lines name a database the same way: a socket URL
 * (`?host=/var/run/postgresql`, README "Running PostgreSQL for it on Debian") once said "localhost"
 * in one of them.
 */

/** `postgres://user:secret@db.example:5432/pbxhook` → `db.example:5432/pbxhook`; undefined when not a URL. */
export function databasePlaceOf(url: string): string | undefined {
  if (!URL.canParse(url)) return undefined;
  const u = new URL(url);
  // libpq's rule: no host in the URL and none in `?host=` is the default socket, named "localhost".
  const host = u.hostname || u.searchParams.get('host') || 'localhost';
  const port = u.port || u.searchParams.get('port');
  return `${host.startsWith('/') ? 'socket ' : ''}${host}${port ? `:${port}` : ''}${u.pathname}`;
}
