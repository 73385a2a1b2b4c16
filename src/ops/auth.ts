/**
 * Who may read and who may act (issues #13, #16 item 3). `ops.token` is the one credential: sent
 * as `Authorization: Bearer`, as the password of HTTP Basic, or as the console's session cookie
 * (set by the login form; it holds a digest of the token, never the token, HttpOnly and
 * SameSite=Strict so another site's page cannot act with it). Compared as digests in constant
 * time, so the answer's timing says nothing about the token.
 *
 *   reads    open on loopback; off loopback (where a token is required) they need it too
 *   writes   403 when no ops.token is configured (nobody may act), 401 when missing or wrong
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';

export const SESSION_COOKIE = 'pbxhook_console';

/** The credential of `Bearer <token>`, or the password of `Basic base64(user:password)`. */
function credentialOf(header: string | undefined): string | undefined {
  const [scheme = '', value = ''] = (header ?? '').trim().split(/\s+/, 2);
  if (/^bearer$/i.test(scheme)) return value;
  if (!/^basic$/i.test(scheme)) return undefined;
  const pair = Buffer.from(value, 'base64').toString('utf8');
  return pair.includes(':') ? pair.slice(pair.indexOf(':') + 1) : undefined;
}

const digest = (s: string) => createHash('sha256').update(s).digest();
const same = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

/** The cookie's value for a token: an HMAC, so the cookie jar never holds the token itself. */
export function sessionOf(token: string): string {
  return createHmac('sha256', token).update('pbxhook console session').digest('base64url');
}

function cookieOf(req: http.IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/** How the request proved it holds the token, or undefined when it did not. */
export function credentialKind(req: http.IncomingMessage, token: string): 'bearer' | 'cookie' | undefined {
  const given = credentialOf(req.headers.authorization);
  if (given !== undefined && same(given, token)) return 'bearer';
  const session = cookieOf(req, SESSION_COOKIE);
  if (session !== undefined && same(session, sessionOf(token))) return 'cookie';
  return undefined;
}

export type Verdict = { readonly ok: true; readonly who: string } | { readonly ok: false; readonly status: 401 | 403; readonly message: string };

/** Who is acting, for the log: how they proved it and from where (never the credential). */
function whoOf(req: http.IncomingMessage, kind: string): string {
  return `${kind} ${req.socket.remoteAddress ?? 'unknown'}`;
}

/** May this request change something? */
export function mayWrite(req: http.IncomingMessage, token: string | undefined): Verdict {
  if (token === undefined) return { ok: false, status: 403, message: 'write actions need ops.token in the config; none is set\n' };
  const kind = credentialKind(req, token);
  if (kind === undefined) return { ok: false, status: 401, message: 'unauthorized: log in, or send Authorization: Bearer <ops.token>\n' };
  return { ok: true, who: whoOf(req, kind) };
}

/** May this request read? Always on loopback; elsewhere only with the token (issue #13). */
export function mayRead(req: http.IncomingMessage, token: string | undefined, loopback: boolean): boolean {
  return token === undefined || loopback || credentialKind(req, token) !== undefined;
}

/** Set-Cookie for a good login: the whole console, the browser's session only. */
export function sessionCookie(token: string): string {
  return `${SESSION_COOKIE}=${sessionOf(token)}; Path=/; HttpOnly; SameSite=Strict`;
}

export const LOGOUT_COOKIE = `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;

/** The login form's token, compared like a header's. */
export function loginMatches(given: string, token: string): boolean {
  return same(given, token);
}
