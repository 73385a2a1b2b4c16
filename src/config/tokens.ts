/**
 * Bearer tokens for endpoints. Precedence: the PBXHOOK_TOKEN_<NAME> environment variable,
 * then the ini `token` key, which is a literal or a reference — `env:NAME` or
 * `file:/path` (systemd LoadCredential= puts secrets in files) — so the ini file itself
 * can stay free of secrets. Problems never quote the token.
 */
import path from 'node:path';

export type ReadSecretFile = (absolutePath: string) => string;

export interface TokenSources {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Folder of the ini file; `file:` paths are relative to it. */
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
  const fromEnv = envValue(src.env, tokenEnvName(endpoint));
  if (fromEnv !== undefined) return checked(fromEnv, `${tokenEnvName(endpoint)} `);
  if (configured === undefined) return { token: undefined };

  if (configured.startsWith('env:')) {
    const name = configured.slice(4).trim();
    const value = envValue(src.env, name);
    return value === undefined ? { problem: `environment variable ${name} is not set` } : checked(value, `${name} `);
  }
  if (configured.startsWith('file:')) {
    const file = path.resolve(src.iniDir, configured.slice(5).trim());
    let content: string;
    try {
      content = src.readSecretFile(file);
    } catch (err) {
      const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      return { problem: `cannot read token file ${JSON.stringify(file)} (${reason})` };
    }
    // Files written by `echo` or editors end in a newline that is not part of the token.
    const token = content.replace(/\s+$/, '');
    return token === '' ? { problem: `token file ${JSON.stringify(file)} is empty` } : checked(token, 'token file ');
  }
  return checked(configured, '');
}

/** It goes into an HTTP header: printable ASCII only, no spaces or line breaks. */
function checked(token: string, origin: string): TokenResult {
  return /^[\x21-\x7e]+$/.test(token)
    ? { token }
    : { problem: `${origin}value must be printable ASCII without spaces or line breaks` };
}
