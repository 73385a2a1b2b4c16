/**
 * Every AMI key pbxhook reads (lower-case), by reader. The live client's framer and replay's build
 * only these values and step over the other lines (AmiFramerOptions.keys): a FreePBX dialplan step
 * is 20 lines of which the model reads 7, and decoding the rest was most of the daemon's framing
 * time at 300 calls/s (issue #15). A key read but missing here reads as "" everywhere, live and
 * replay alike: test/07-ami-keys records the keys the pipeline reads over every AMI trace and
 * fails on one not listed.
 */
export const READ_AMI_KEYS: ReadonlySet<string> = new Set([
  // normalise.ts: the event, its time and the fields of its handler
  'event', 'timestamp', 'uniqueid', 'linkedid', 'channel', 'calleridnum', 'calleridname', 'exten',
  'extension', 'context', 'application', 'appdata', 'channelstatedesc', 'destuniqueid', 'dialstring',
  'dialstatus', 'variable', 'value', 'queue', 'bridgeuniqueid', 'result', 'transfereruniqueid',
  'transfereeuniqueid', 'origtransfereruniqueid', 'secondtransfereruniqueid', 'transfertargetuniqueid',
  'mailbox', 'new', 'cause', 'userevent', 'from', 'to', 'body', 'direction',
  // voicemail.ts: VoiceMail's CEL prompts
  'eventname', 'extra',
  // client.ts (Login and Filter answers) and resync.ts (CoreShowChannels)
  'response', 'message', 'actionid', 'listitems',
]);

/**
 * Keys whose values come from a small set (event names, dialplan contexts and applications, channel
 * states): the framer keeps each such value once and hands the same string back for the same bytes
 * (src/ami/byte-table.ts, bounded), without a native call or a new string per frame (issue #15).
 */
export const FEW_VALUED_AMI_KEYS: ReadonlySet<string> = new Set([
  'event', 'context', 'application', 'channelstatedesc', 'dialstatus', 'eventname', 'response', 'cause',
]);
