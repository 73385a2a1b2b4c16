/**
 * What pbxhook asks Asterisk to send (issue #15): the events the normaliser reads
 * (HANDLED_AMI_EVENTS), the VarSets of the variables it reads and VoiceMail's CEL prompts. With
 * `read = all` a FreePBX call is ~900 AMI events, of which pbxhook reads about one in nine; at
 * 300 calls/s that is ~270k events/s, more than any AMI client reads on one core. Filtering in
 * Asterisk keeps the rest off the socket.
 *
 * The same regular expressions serve two ways in:
 * - the AMI `Filter` action at each login (`pbx.event_filter: auto`): one action carrying them all
 *   as one alternation, so Asterisk takes all or none: a whitelist missing a part would lose calls.
 *   The action needs the `system` write class ("this command requires the system permission
 *   because this command can be used to create filters that may bypass filters defined in
 *   manager.conf", Asterisk's Filter action documentation, versions 10 to 22);
 * - `eventfilter =` lines in the user's manager.conf section, which need no write class at all
 *   (`pbxhook check-config` and the README print them).
 * Asterisk matches them, unanchored and case-sensitive (POSIX extended), against the whole event
 * text: `Event: Hangup` also passes HangupHandlerRun, which the client's own filter then drops.
 */
import type { AmiConfig } from '../config/types.js';
import { AMI_EVENTS } from './events.js';
import { HANDLED_AMI_EVENTS, USED_CEL_EVENTS, USED_VARIABLES } from './normalise.js';

/** Spelled as Asterisk sends them (both of `Newexten`/`NewExten`, which versions differ on). */
function eventNames(): string[] {
  const handled = new Set(HANDLED_AMI_EVENTS.filter((n) => n !== 'varset' && n !== 'cel'));
  return AMI_EVENTS.filter((name) => handled.has(name.toLowerCase()));
}

/** One regular expression per manager.conf `eventfilter` line: an event passes if any matches. */
export const AMI_EVENT_FILTERS: readonly string[] = [
  `Event: (${eventNames().join('|')})`,
  `Variable: (${USED_VARIABLES.join('|')})`,
  `EventName: (${USED_CEL_EVENTS.join('|')})`,
];

/** The `Filter:` of the one `Filter` action sent at login: the lines above as one alternation. */
export const AMI_SESSION_FILTER: string = AMI_EVENT_FILTERS.join('|');

/** What to put in manager.conf by hand, for the README, check-config and the refusal's log line. */
export function managerConfLines(username: string): string[] {
  return [
    `[${username}]`,
    'read = call,dialplan,agent,user',
    'write = reporting          ; CoreShowChannels, for the resync after a reconnect',
    ...AMI_EVENT_FILTERS.map((f) => `eventfilter = ${f}`),
  ];
}

/** `pbxhook check-config`'s lines on the filter: what pbxhook will ask, and the manual way. */
export function explainEventFilter(pbx: AmiConfig): string[] {
  const asks =
    pbx.eventFilter === 'off'
      ? 'AMI event filter: off (pbx.event_filter); Asterisk sends every event the user may read'
      : 'AMI event filter: auto (pbx.event_filter); at each login pbxhook asks Asterisk for only the events it reads (Filter action: the user needs write = system; refused, it reads every event)';
  return [asks, '  or filter in manager.conf, which needs no write class:', ...managerConfLines(pbx.username).map((l) => `    ${l}`)];
}
