/** The validated configuration: what the rest of the daemon sees after start-up checks. */

/** `exten@context`, or a bare `exten` matching any context. */
export type DialplanTarget = string;

export interface RoleConfig {
  /** IVR numbers (exten or exten@context). Auto: Background/WaitExten/Read in the dialplan, FreePBX ivr-N. */
  readonly ivrs: readonly DialplanTarget[];
  /** Queue numbers. Auto: the Queue application / Queue* events, FreePBX ext-queues. */
  readonly queues: readonly DialplanTarget[];
  /** Ring group numbers. Auto: Dial() to several endpoints at once, FreePBX ext-group. */
  readonly ringGroups: readonly DialplanTarget[];
  /** Regex over a channel's endpoint name (PJSIP/117-0001 → "117") that marks an extension. */
  readonly extensionPattern: string;
  /** Regex over an endpoint name that marks a trunk even when it looks like an extension. */
  readonly trunkPattern: string;
  /** Optional display names for extensions, queues, ring groups, IVRs: number → name. */
  readonly names: Readonly<Record<string, string>>;
}

export interface AmiConfig {
  readonly type: 'asterisk';
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly secret: string;
}

export interface EslConfig {
  readonly type: 'freeswitch';
  readonly host: string;
  readonly port: number;
  readonly password: string;
}

export type PbxConfig = AmiConfig | EslConfig;

export interface CallsConfig {
  /** A call with no event for this long is closed with reason `idle-timeout`. */
  readonly idleTimeoutSeconds: number;
  /** IANA time zone for timestamps rendered as local time (3CX Id, VoipAppz start_at). */
  readonly timezone: string;
}

export interface RetryConfig {
  readonly retries: number;
  readonly minTimeoutMs: number;
  readonly maxTimeoutMs: number;
  readonly timeoutMs: number;
}

/** One endpoint from webhooks.ini. */
export interface EndpointConfig {
  readonly name: string;
  readonly enabled: boolean;
  readonly schema: '3cx';
  readonly url: string;
  readonly method: 'GET' | 'POST';
  /** 3CX: `json` or the legacy `urlencoded` variant. */
  readonly variant: 'json' | 'urlencoded';
  /** Event names this endpoint wants (schema's own names); empty = all. */
  readonly events: readonly string[];
  /** Bearer token; never logged. */
  readonly token?: string;
  /** `{file}` (basename), `{path}`, `{id}` (schema call id), `{n}` (1-based file number). */
  readonly recordingUrl: string;
}

export interface Config {
  /** Absolute path of the YAML file it came from, for messages. */
  readonly file: string;
  readonly pbx: PbxConfig;
  readonly roles: RoleConfig;
  readonly calls: CallsConfig;
  readonly retry: RetryConfig;
  readonly endpoints: readonly EndpointConfig[];
  readonly log: { readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' };
}
