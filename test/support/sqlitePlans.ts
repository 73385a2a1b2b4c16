/**
 * What SQLite plans for the outbox's statements (test/18, test/58): the statements a store
 * prepares while some calls run, and each one's EXPLAIN QUERY PLAN on the same file. A store
 * caches its statements, so a statement is captured the first time it is used.
 */
import Database from 'better-sqlite3';
import { vi } from 'vitest';

/** The SQL texts better-sqlite3 prepares while `fn` runs. */
export function preparedDuring(fn: () => void): string[] {
  const prepare = Database.prototype.prepare;
  const prepared: string[] = [];
  const spy = vi.spyOn(Database.prototype, 'prepare').mockImplementation(function (this: Database.Database, text: string) {
    prepared.push(text);
    return prepare.call(this, text);
  });
  try {
    fn();
  } finally {
    spy.mockRestore();
  }
  return prepared;
}

/** The details of EXPLAIN QUERY PLAN of each text, read on `file`, every parameter bound to 0. */
export function plansOf(file: string, texts: readonly string[]): Array<{ text: string; details: string[] }> {
  const reader = new Database(file, { readonly: true });
  try {
    return texts.map((text) => {
      const names = Object.fromEntries([...text.matchAll(/@(\w+)/g)].map((m) => [m[1]!, 0]));
      const positional = (text.match(/\?/g) ?? []).map(() => 0);
      const stmt = reader.prepare(`EXPLAIN QUERY PLAN ${text}`);
      const plan = (Object.keys(names).length > 0 ? stmt.all(names) : stmt.all(...positional)) as Array<{ detail: string }>;
      return { text, details: plan.map((p) => p.detail) };
    });
  } finally {
    reader.close();
  }
}
