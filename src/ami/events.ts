/**
 * AMI event names, from the Asterisk 22 AMI event documentation. Names outside this list are
 * kept as "unknown" and counted, never an error: a newer Asterisk may add events.
 */
export const AMI_EVENTS = [
  'AgentCalled', 'AgentComplete', 'AgentConnect', 'AgentDump', 'AgentLogin', 'AgentLogoff',
  'AgentRingNoAnswer', 'AttendedTransfer', 'BlindTransfer', 'BridgeCreate', 'BridgeDestroy',
  'BridgeEnter', 'BridgeInfoChannel', 'BridgeInfoComplete', 'BridgeLeave', 'BridgeMerge',
  'BridgeVideoSourceUpdate', 'Cdr', 'CEL', 'ChallengeResponseFailed', 'ChallengeSent',
  'ChanSpyStart', 'ChanSpyStop', 'ConfbridgeEnd', 'ConfbridgeJoin', 'ConfbridgeLeave',
  'ConfbridgeStart', 'CoreShowChannel', 'CoreShowChannelsComplete', 'DeviceStateChange',
  'DialBegin', 'DialEnd', 'DialState', 'DTMFBegin', 'DTMFEnd', 'ExtensionStatus', 'FullyBooted',
  'Hangup', 'HangupHandlerPop', 'HangupHandlerPush', 'HangupHandlerRun', 'HangupRequest', 'Hold',
  'InvalidAccountID', 'InvalidPassword', 'LocalBridge', 'LocalOptimizationBegin',
  'LocalOptimizationEnd', 'MessageWaiting', 'MixMonitorMute', 'MixMonitorStart', 'MixMonitorStop',
  'MusicOnHoldStart', 'MusicOnHoldStop', 'NewAccountCode', 'NewCallerid', 'Newchannel',
  'NewConnectedLine', 'NewExten', 'Newexten', 'Newstate', 'OriginateResponse', 'ParkedCall',
  'ParkedCallGiveUp', 'ParkedCallTimeOut', 'PeerStatus', 'QueueCallerAbandon', 'QueueCallerJoin',
  'QueueCallerLeave', 'QueueMemberAdded', 'QueueMemberPause', 'QueueMemberPenalty',
  'QueueMemberRemoved', 'QueueMemberRinginuse', 'QueueMemberStatus', 'Registry', 'Reload',
  'Rename', 'RTCPReceived', 'RTCPSent', 'SoftHangupRequest', 'Shutdown', 'SuccessfulAuth',
  'Unhold', 'UserEvent', 'VarSet', 'VoicemailPasswordChange',
] as const;

export type AmiEventName = (typeof AMI_EVENTS)[number];

const known = new Set<string>(AMI_EVENTS.map((n) => n.toLowerCase()));

export function isKnownAmiEvent(name: string): boolean {
  return known.has(name.toLowerCase());
}
