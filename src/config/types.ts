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
  /**
   * Regex over a channel's endpoint name (PJSIP/117-0001 → "117") that marks an extension. Its group
   * named ext, if any, is the extension id (`^(?<ext>\d+)-\d+$`: 1001-12 → 1001); any other group
   * leaves the whole name the id (src/config/pattern.ts).
   */
  readonly extensionPattern: string;
  /** Regex over an endpoint name that marks a trunk even when it looks like an extension. */
  readonly trunkPattern: string;
  /** Optional display names for extensions, queues, ring groups, IVRs: number → name. */
  readonly names: Readonly<Record<string, string>>;
}

export interface AmiConfig {
  readonly type: 'asterisk';
  /** pbx.name: which PBX a row of a shared outbox, a webhook, a metric came from; loadConfig fills it in. */
  readonly name?: string;
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly secret: string;
  /** pbx.max_frame_bytes: a longer AMI message is logged, counted and skipped. */
  readonly maxFrameBytes?: number;
  /** pbx.event_filter: `auto` (absent too) asks Asterisk at each login for only the events pbxhook reads. */
  readonly eventFilter?: 'auto' | 'off';
}

export interface EslConfig {
  readonly type: 'freeswitch';
  /** pbx.name, as AmiConfig's. */
  readonly name?: string;
  readonly host: string;
  readonly port: number;
  readonly password: string;
  /** pbx.max_frame_bytes: a longer event body is logged and counted, and the connection made again. */
  readonly maxFrameBytes?: number;
}

export type PbxConfig = AmiConfig | EslConfig;

export interface CallsConfig {
  /** A call with no event for this long is closed with reason `idle-timeout`. */
  readonly idleTimeoutSeconds: number;
  /** IANA time zone for timestamps rendered as local time (3CX Id, VoipAppz start_at). */
  readonly timezone: string;
}

/** The durable outbox (src/deliver/outbox-*.ts): its retry schedule, worker and limits. Times in ms. */
export interface DeliveryConfig {
  /** Wait after failed attempt 1, 2, …; a failure after the last step makes the webhook dead. */
  readonly schedule: readonly number[];
  /** Each wait is scaled by a random factor in [1 - jitter, 1 + jitter]. */
  readonly jitter: number;
  /** A Retry-After longer than the scheduled wait is honoured up to this. */
  readonly retryAfterMaxMs: number;
  readonly connectTimeoutMs: number;
  /** The whole exchange: connect, send, response. */
  readonly timeoutMs: number;
  /** Webhooks in flight at once per endpoint. */
  readonly concurrency: number;
  /** An endpoint whose attempts have all failed for this long is paused. */
  readonly pauseAfterMs: number;
  /** While paused, one webhook is tried this often; a success resumes the endpoint. */
  readonly probeEveryMs: number;
  /** SIGTERM: how long in-flight attempts may take before they are cut off (and kept for next time). */
  readonly stopTimeoutMs: number;
  /** Undelivered webhooks kept at most; beyond, the oldest are dead-lettered (logged). */
  readonly maxRows: number;
  /** An undelivered webhook older than this is dead-lettered (logged). */
  readonly maxAgeMs: number;
  readonly keepDeliveredMs: number;
  readonly keepDeadMs: number;
  /** delivery.notify_url: pauses, resumes and dead webhooks are told there (src/deliver/notify.ts). */
  readonly notifyUrl?: string;
}

/** A call's direction as the tracker tells it (src/core/model.ts `Direction`). */
export const DIRECTIONS = ['inbound', 'outbound', 'internal'] as const;

/**
 * Which calls' webhooks an endpoint takes (issue #16 item 5), from the ini's `only_*` keys. Each
 * list empty = any; a call must match every list that is set, and one value in each.
 */
export interface EndpointRouting {
  readonly dids: readonly string[];
  readonly queues: readonly string[];
  readonly ringGroups: readonly string[];
  readonly extensions: readonly string[];
  readonly directions: readonly (typeof DIRECTIONS)[number][];
}

/** What every endpoint in webhooks.ini has, whatever its schema. */
export interface EndpointBase {
  readonly name: string;
  readonly enabled: boolean;
  readonly url: string;
  readonly method: 'GET' | 'POST';
  /** Event names this endpoint wants (the schema's own names); empty = all. */
  readonly events: readonly string[];
  /** Bearer token; never logged. */
  readonly token?: string;
  /** Standard Webhooks secrets (`whsec_…`); each signs every webhook, so a receiver may rotate. Never logged. */
  readonly signingSecrets?: readonly string[];
  /** 4xx statuses retried like 5xx (e.g. 404 while a CRM deploys); other 4xx are permanent. */
  readonly retryOn?: readonly number[];
  /** Absent = every call (no `only_*` key set). */
  readonly routing?: EndpointRouting;
}

/**
 * Where the PBX serves recordings, for the schemas that send a recording's URL (3CX, VoipAppz):
 * `{file}` (basename), `{path}`, `{id}` (schema call id), `{n}` (1-based file number). There is no
 * default (issue #13): without it no URL is ever made up; 3CX sends no `recording` event and
 * VoipAppz sends `recording_url: null`.
 */
export interface RecordingUrl {
  readonly recordingUrl?: string;
}

export const THREECX_EVENTS = ['ringing', 'dialing', 'incomingcall_started', 'outgoingcall_started', 'incoming', 'outgoing', 'recording'] as const;
/** The urlencoded variant's own names for the `*call_started` events (3CX doc, legacy table). */
export const THREECX_URLENCODED_EVENTS = [...THREECX_EVENTS, 'hangupincoming', 'hangupoutgoing'] as const;

/** 3CX WebhooksApi.ini: the JSON variant or the legacy urlencoded one. */
export interface ThreeCxEndpoint extends EndpointBase, RecordingUrl {
  readonly schema: '3cx';
  readonly variant: 'json' | 'urlencoded';
}

export const VOIPAPPZ_EVENTS = ['Call:Ringing', 'Call:Answer', 'Call:Hangup', 'Call:Reporting', 'Ivr:Start', 'Ivr:End'] as const;
export type VoipAppzEvent = (typeof VOIPAPPZ_EVENTS)[number];

/** Every field of the VoipAppz doc's "Supported field types" body, in the doc's order: the body template's placeholders. */
export const VOIPAPPZ_FIELDS = [
  'direction', 'uuid', 'type', 'created_at', 'contact_number', 'caller_id_number', 'duration', 'ring_duration',
  'destination', 'start_at', 'answer_at', 'environment_name', 'user_fullname', 'user_name', 'extension_username',
  'cause', 'sip_status', 'recording_url', 'duration_time', 'billing_duration', 'billing_duration_time', 'did_number',
  'did_name', 'queue_disposition', 'ivr_name', 'call_state', 'queue_name',
] as const;

/** A VoipAppz webhook object: one event, a JSON body template, the environments it is subscribed to. */
export interface VoipAppzEndpoint extends EndpointBase, RecordingUrl {
  readonly schema: 'voipappz';
  readonly uuid: string;
  readonly event: VoipAppzEvent;
  /** Environments this webhook is subscribed to; it fires only if `Config.environment` is one. */
  readonly environments: readonly string[];
  /** The body template (JSON with `{placeholders}`) from `body_file`; undefined = the doc's full body. */
  readonly body: string | undefined;
  /** `body_file` as the ini names it, for check-config. */
  readonly bodyFile?: string;
}

export const PETDESK_TARGETS = ['phoneNumber', 'extension', 'ringGroup', 'queue'] as const;
export type PetDeskTarget = (typeof PETDESK_TARGETS)[number];

/** The `eventType`s each PetDesk set-up receives (the doc's sections, docs/webhooks/petdesk.md). */
export const PETDESK_EVENTS: Readonly<Record<PetDeskTarget, readonly string[]>> = {
  phoneNumber: ['InboundCall', 'HangupCall', 'inboundMessage', 'outboundMessage'],
  extension: ['ringAttempt', 'ExtensionAnswered', 'inboundCallCompleted', 'voicemailHangup', 'outboundCall'],
  ringGroup: ['ringAttempt'],
  queue: ['queueEntered'],
};

/** PetDesk Phones: configured per target as in the doc's setup sections. */
export interface PetDeskEndpoint extends EndpointBase {
  readonly schema: 'petdesk';
  readonly containerId: string;
  readonly tenantId: string;
  readonly target: PetDeskTarget;
  /** The DIDs / extensions / ring groups / queues this endpoint is set up for; empty = all. */
  readonly numbers: readonly string[];
  readonly didGroup: string;
  readonly cidPrefix: string;
}

export const VXT_EVENTS = ['callLog', 'voicemail'] as const;

/** VXT callLog / voicemail v3. */
export interface VxtEndpoint extends EndpointBase {
  readonly schema: 'vxt';
  /** ISO 3166-1 alpha-2 country for numbers without a country code (E.164 normalisation). */
  readonly defaultCountry: string;
  /** The company number for outbound calls when the trunk does not tell (E.164 or national). */
  readonly phoneNumber: string;
  /** Template of the payload's `url`: `{id}` is the message id. */
  readonly webUrl: string;
}

/** VoipWebhookRequest notifications, as `events =` names them (their wire values are configurable). */
export const VOIP_REQUEST_EVENTS = ['ringing', 'answered', 'ended'] as const;

/** The CRM-side VoipWebhookRequest (ELMA365/BRIX365 telephony SDK). Wire values are configurable. */
export interface VoipRequestEndpoint extends EndpointBase {
  readonly schema: 'voip-request';
  readonly eventValues: { readonly ringing: string; readonly answered: string; readonly ended: string };
  readonly dispositionValues: Readonly<Record<'unknown' | 'answered' | 'missed' | 'busy' | 'declined' | 'abandoned' | 'timeout' | 'failed', string>>;
}

export type EndpointConfig = ThreeCxEndpoint | VoipAppzEndpoint | PetDeskEndpoint | VxtEndpoint | VoipRequestEndpoint;
export type SchemaName = EndpointConfig['schema'];

/** A person behind an extension, for schemas that name users (VXT user, PetDesk extName, VoipAppz user_fullname). */
export interface DirectoryEntry {
  readonly name?: string;
  readonly email?: string;
  /** The user's id in the CRM (VXT `uid`). */
  readonly uid?: string;
}

/** Where the outbox lives (issue #17): `url` is a secret (it may carry a password), never logged. */
export type OutboxConfig = { readonly store: 'sqlite' } | { readonly store: 'postgres'; readonly url: string };

export interface Config {
  /** Absolute path of the YAML file it came from, for messages. */
  readonly file: string;
  readonly pbx: PbxConfig;
  /**
   * A file for `pbxhook deliver` alone, read without a `pbx:` section: `pbx` is then a stand-in of
   * which only the name (rows the worker enqueues, delivery.notify_url's) is read.
   */
  readonly deliverOnly?: true;
  readonly roles: RoleConfig;
  readonly calls: CallsConfig;
  readonly delivery: DeliveryConfig;
  /** Absolute path of the folder holding the outbox database. */
  readonly stateDir: string;
  /** The outbox's backend; absent = SQLite in stateDir. */
  readonly outbox?: OutboxConfig;
  /** Where /metrics, /healthz and the status page listen; undefined = off. */
  readonly opsListen: string | undefined;
  /**
   * Bearer token every ops request but /healthz must carry; required off loopback (issue #13), since
   * the status page shows callers' numbers. Never logged.
   */
  readonly opsToken?: string;
  /** The console's call journal (ops.journal_calls, ops.journal_minutes); absent = the defaults. */
  readonly opsJournal?: { readonly calls: number; readonly keepMs: number };
  /** SIGTERM to exit at most, whatever the peers do; `delivery.stopTimeoutMs` is shorter (schema.ts). */
  readonly shutdownGraceMs: number;
  readonly endpoints: readonly EndpointConfig[];
  /** The endpoints ini file (`webhooks:`), resolved; undefined when the YAML names none. */
  readonly webhooksFile?: string;
  /** Extension → person. */
  readonly directory: Readonly<Record<string, DirectoryEntry>>;
  /** The VoipAppz environment this PBX serves (`environment_name`). */
  readonly environment: string;
  readonly log: { readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' };
  /** standby.*: wait for the PBX's lease before following it (src/fleet/lease.ts); absent = off. */
  readonly standby?: StandbyConfig;
}

/** Issue #17 item 3. */
export interface StandbyConfig {
  readonly enabled: boolean;
  readonly takeoverSeconds: number;
}
