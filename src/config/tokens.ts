/**
 * Bearer tokens for endpoints. Precedence: the PBXHOOK_TOKEN_<NAME> environment variable,
 * then the ini `token` key, which is a literal or a reference — `env:NAME` or
 * `file:/path` (systemd LoadCredential= puts secrets in files) — so the ini file itself
 * can stay free of secrets. Problems never quote the token. Standard Webhooks signing secrets
 * (`signing_secret`, PBXHOOK_SIGNING_SECRET_<NAME>) come from the same sources.
 */
import path from 'node:path';

export type ReadSecretFile = (absolutePath: string) => string;

export interface TokenSources {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Folder of the file naming the secret (the ini, or the YAML for ops.token); `file:` paths are relative to it. */
  readonly iniDir: string;
  readonly readSecretFile: ReadSecretFile;
}

export type TokenResult = { readonly token: string | undefined } | { readonly problem: string };

/** `crm-prod` → `PBXHOOK_TOKEN_CRM_PROD`. */
export function tokenEnvName(endpoint: string): string {
  return `PBXHOOK_TOKEN_${endpoint.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** An empty variable counts as unset: systemd EnvironmentFile= lines like `X=` are common. */
export function envValue(env: TokenSources['env'], name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

export function resolveToken(endpoint: string, configured: string | undefined, src: TokenSources): TokenResult {
  const ref = secretValue(tokenEnvName(endpoint), configured, src, 'token');
  if (ref === undefined) return { token: undefined };
  return 'problem' in ref ? ref : checked(ref.value, ref.origin);
}

type Reference = { value: string; origin: string } | { problem: string };

/**
 * A secret's value: the variable `envName` when set (it wins, so systemd's EnvironmentFile= can
 * override the YAML), else the configured reference; undefined when neither is given.
 */
function secretValue(envName: string, configured: string | undefined, src: TokenSources, what: string): Reference | undefined {
  const fromEnv = envValue(src.env, envName);
  if (fromEnv !== undefined) return { value: fromEnv, origin: `${envName} ` };
  return configured === undefined ? undefined : readReference(configured, src, what);
}

/** `env:NAME`, `file:PATH` or the value itself; `origin` prefixes a problem with the value's source. */
function readReference(
  configured: string,
  src: TokenSources,
  what: string,
): Reference {
  if (configured.startsWith('env:')) {
    const name = configured.slice(4).trim();
    const value = envValue(src.env, name);
    return value === undefined ? { problem: `environment variable ${name} is not set` } : { value, origin: `${name} ` };
  }
  if (configured.startsWith('file:')) {
    const file = path.resolve(src.iniDir, configured.slice(5).trim());
    let content: string;
    try {
      content = src.readSecretFile(file);
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      return { problem: `cannot read ${what} file ${JSON.stringify(file)} (${reason})` };
    }
    // Files written by `echo` or editors end in a newline that is not part of the secret.
    const value = content.replace(/\s+$/, '');
    return value === '' ? { problem: `${what} file ${JSON.stringify(file)} is empty` } : { value, origin: `${what} file ` };
  }
  return { value: configured, origin: '' };
}

export const OPS_TOKEN_ENV = 'PBXHOOK_OPS_TOKEN';
/** Shorter is guessable by anyone who can reach a non-loopback ops.listen. */
const OPS_TOKEN_MIN = 16;

/**
 * `ops.token` (issue #13): PBXHOOK_OPS_TOKEN, else the YAML value (literal, env:NAME or file:PATH
 * relative to the YAML file). It guards callers' numbers on the status page, so it must be long.
 */
export function resolveOpsToken(configured: string | undefined, src: TokenSources): TokenResult {
  const ref = secretValue(OPS_TOKEN_ENV, configured, src, 'token');
  if (ref === undefined) return { token: undefined };
  if ('problem' in ref) return ref;
  const result = checked(ref.value, ref.origin);
  if ('token' in result && ref.value.length < OPS_TOKEN_MIN) {
    return { problem: `${ref.origin}value must be at least ${OPS_TOKEN_MIN} characters, e.g. from: head -c 24 /dev/urandom | base64` };
  }
  return result;
}

/** `crm-prod` → `PBXHOOK_SIGNING_SECRET_CRM_PROD`. */
export function signingSecretEnvName(endpoint: string): string {
  return tokenEnvName(endpoint).replace(/^PBXHOOK_TOKEN_/, 'PBXHOOK_SIGNING_SECRET_');
}

export type SigningSecretsResult = { readonly secrets: readonly string[] | undefined } | { readonly problem: string };

/**
 * Standard Webhooks secrets for an endpoint: `whsec_` + base64 of 24 to 64 random bytes, several
 * separated by commas (all sign, so a receiver can rotate). Same sources and precedence as tokens.
 */
export function resolveSigningSecrets(endpoint: string, configured: string | undefined, src: TokenSources): SigningSecretsResult {
  const ref = secretValue(signingSecretEnvName(endpoint), configured, src, 'signing secret');
  if (ref === undefined) return { secrets: undefined };
  if ('problem' in ref) return ref;
  const secrets = ref.value.split(/[\s,]+/).filter((x) => x !== '');
  if (secrets.length === 0) return { problem: `${ref.origin}value is empty` };
  for (const [i, secret] of secrets.entries()) {
    const which = secrets.length > 1 ? `secret ${i + 1} ` : '';
    const key = /^whsec_[A-Za-z0-9+/]+={0,2}$/.test(secret) ? Buffer.from(secret.slice(6), 'base64') : undefined;
    if (key === undefined) return { problem: `${ref.origin}${which}must be "whsec_" followed by base64` };
    // Standard Webhooks: "secret keys SHOULD be between 24 bytes (192 bits) and 64 bytes".
    if (key.length < 24 || key.length > 64) return { problem: `${ref.origin}${which}must decode to 24 to 64 bytes, got ${key.length}` };
  }
  return { secrets };
}

/** It goes into an HTTP header: printable ASCII only, no spaces or line breaks. */
function checked(token: string, origin: string): TokenResult {
  return /^[\x21-\x7e]+$/.test(token)
    ? { token }
    : { problem: `${origin}value must be printable ASCII without spaces or line breaks` };
}

export const OUTBOX_URL_ENV = 'PBXHOOK_OUTBOX_URL';

export type OutboxUrlResult = { readonly url: string | undefined } | { readonly problem: string };

/**
 * `outbox.url` (issue #17): PBXHOOK_OUTBOX_URL, else the YAML value (literal, env:NAME or file:PATH
 * relative to the YAML file). It may carry the database password, so a problem never quotes it.
 */
export function resolveOutboxUrl(configured: string | undefined, src: TokenSources): OutboxUrlResult {
  const ref = secretValue(OUTBOX_URL_ENV, configured, src, 'url');
  if (ref === undefined) return { url: undefined };
  if ('problem' in ref) return ref;
  const url = ref.value;
  const protocol = URL.canParse(url) ? new URL(url).protocol : undefined;
  if (protocol !== 'postgres:' && protocol !== 'postgresql:') {
    return { problem: `${ref.origin}value must be a PostgreSQL URL such as postgres://pbxhook@127.0.0.1:5432/pbxhook (not shown: it may hold a password)` };
  }
  return { url };
}
