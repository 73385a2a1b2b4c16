/**
 * Secrets out of what the console shows: the request as sent, minus credentials. A header or a
 * query parameter is masked when its name says it carries one; the body is shown as rendered.
 */
const SECRET_NAME = /auth|token|secret|signature|password|passwd|api[-_]?key|cookie|session/i;
export const MASK = '****';

export function maskHeaders(headers: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, SECRET_NAME.test(k) ? maskValue(k, v) : v]));
}

/** `Bearer abc` → `Bearer ••••`: the scheme helps debugging, the credential never shows. */
function maskValue(name: string, value: string): string {
  const scheme = /^(bearer|basic|token)\s+/i.exec(value);
  return /authorization/i.test(name) && scheme ? `${scheme[1]} ${MASK}` : MASK;
}

/** User info and secret-looking query values masked; anything unparsable shown as such. */
export function maskUrl(url: string): string {
  if (!URL.canParse(url)) return '(invalid URL)';
  const u = new URL(url);
  if (u.password !== '') u.password = 'x';
  for (const key of [...u.searchParams.keys()]) if (SECRET_NAME.test(key)) u.searchParams.set(key, MASK);
  return u.toString().replace(/:x@/, `:${MASK}@`);
}
