/**
 * FreeSWITCH event names, from EVENT_NAMES in switch_event.c (1.10.12). Names outside this list
 * are kept as "unknown" and counted, never an error: a newer FreeSWITCH may add events.
 */
export const ESL_EVENTS = [
  'CUSTOM', 'CLONE', 'CHANNEL_CREATE', 'CHANNEL_DESTROY', 'CHANNEL_STATE', 'CHANNEL_CALLSTATE',
  'CHANNEL_ANSWER', 'CHANNEL_HANGUP', 'CHANNEL_HANGUP_COMPLETE', 'CHANNEL_EXECUTE',
  'CHANNEL_EXECUTE_COMPLETE', 'CHANNEL_HOLD', 'CHANNEL_UNHOLD', 'CHANNEL_BRIDGE', 'CHANNEL_UNBRIDGE',
  'CHANNEL_PROGRESS', 'CHANNEL_PROGRESS_MEDIA', 'CHANNEL_OUTGOING', 'CHANNEL_PARK', 'CHANNEL_UNPARK',
  'CHANNEL_APPLICATION', 'CHANNEL_ORIGINATE', 'CHANNEL_UUID', 'API', 'LOG', 'INBOUND_CHAN',
  'OUTBOUND_CHAN', 'STARTUP', 'SHUTDOWN', 'PUBLISH', 'UNPUBLISH', 'TALK', 'NOTALK', 'SESSION_CRASH',
  'MODULE_LOAD', 'MODULE_UNLOAD', 'DTMF', 'MESSAGE', 'PRESENCE_IN', 'NOTIFY_IN', 'PRESENCE_OUT',
  'PRESENCE_PROBE', 'MESSAGE_WAITING', 'MESSAGE_QUERY', 'ROSTER', 'CODEC', 'BACKGROUND_JOB',
  'DETECTED_SPEECH', 'DETECTED_TONE', 'PRIVATE_COMMAND', 'HEARTBEAT', 'TRAP', 'ADD_SCHEDULE',
  'DEL_SCHEDULE', 'EXE_SCHEDULE', 'RE_SCHEDULE', 'RELOADXML', 'NOTIFY', 'PHONE_FEATURE',
  'PHONE_FEATURE_SUBSCRIBE', 'SEND_MESSAGE', 'RECV_MESSAGE', 'REQUEST_PARAMS', 'CHANNEL_DATA',
  'GENERAL', 'COMMAND', 'SESSION_HEARTBEAT', 'CLIENT_DISCONNECTED', 'SERVER_DISCONNECTED',
  'SEND_INFO', 'RECV_INFO', 'RECV_RTCP_MESSAGE', 'SEND_RTCP_MESSAGE', 'CALL_SECURE', 'NAT',
  'RECORD_START', 'RECORD_STOP', 'PLAYBACK_START', 'PLAYBACK_STOP', 'CALL_UPDATE', 'FAILURE',
  'SOCKET_DATA', 'MEDIA_BUG_START', 'MEDIA_BUG_STOP', 'CONFERENCE_DATA_QUERY', 'CONFERENCE_DATA',
  'CALL_SETUP_REQ', 'CALL_SETUP_RESULT', 'CALL_DETAIL', 'DEVICE_STATE', 'TEXT', 'SHUTDOWN_REQUESTED',
  'CERT_RELOAD',
] as const;

export type EslEventName = (typeof ESL_EVENTS)[number];

const known = new Set<string>(ESL_EVENTS);

export function isKnownEslEvent(name: string): name is EslEventName {
  return known.has(name);
}

/**
 * What the live client subscribes to: the channel life cycle, the events that carry transfers
 * (API for uuid_transfer, the sofia:: transfer events when the profile fires them), recordings,
 * mod_callcenter and mod_voicemail's CUSTOM events, and MESSAGE. Fewer events than ALL keep the
 * socket light: FreeSWITCH drops events for a client whose queue fills up.
 */
export const SUBSCRIBED_EVENTS: readonly EslEventName[] = [
  'CHANNEL_CREATE', 'CHANNEL_ORIGINATE', 'CHANNEL_PROGRESS', 'CHANNEL_PROGRESS_MEDIA',
  'CHANNEL_ANSWER', 'CHANNEL_BRIDGE', 'CHANNEL_UNBRIDGE', 'CHANNEL_EXECUTE', 'CHANNEL_HOLD',
  'CHANNEL_UNHOLD', 'CHANNEL_HANGUP', 'CHANNEL_HANGUP_COMPLETE', 'CHANNEL_DESTROY', 'API',
  'BACKGROUND_JOB', 'RECORD_START', 'MESSAGE',
];

/** CUSTOM subclasses the model reads. */
export const SUBSCRIBED_SUBCLASSES: readonly string[] = [
  'callcenter::info', 'vm::maintenance', 'sofia::transferor', 'sofia::transferee', 'sofia::replaced',
];

/**
 * The `event plain …` command. mod_event_socket reads every word after CUSTOM as a subclass name,
 * so CUSTOM and its subclasses come last.
 */
export function subscribeCommand(): string {
  return `event plain ${SUBSCRIBED_EVENTS.join(' ')} CUSTOM ${SUBSCRIBED_SUBCLASSES.join(' ')}`;
}
