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
 * text: `Event: Hangup` also passes HangupHandlerRun, which the client's own filter then drops. A
 * filter passing too much costs time; one passing too little loses calls: test/09 proves the
 * webhooks equal over the traces.
 */
import type { AmiConfig, RoleConfig } from '../config/types.js';
import { ROUTE_CONTEXTS } from '../core/roles.js';
import { AMI_EVENTS } from './events.js';
import { HANDLED_AMI_EVENTS, ROUTE_APPLICATIONS, USED_CEL_EVENTS, USED_VARIABLES } from './normalise.js';

/** The configured routes (`roles:`) a filter must let through, by the extension part of each target. */
export type RouteTargets = Pick<RoleConfig, 'ivrs' | 'queues' | 'ringGroups'>;

const NO_ROUTES: RouteTargets = { ivrs: [], queues: [], ringGroups: [] };

/** Spelled as Asterisk sends them (both of `Newexten`/`NewExten`, which versions differ on). */
function spellings(lowerCase: readonly string[]): string {
  const wanted = new Set(lowerCase);
  return AMI_EVENTS.filter((name) => wanted.has(name.toLowerCase())).join('|');
}

/** POSIX extended has no case-insensitive flag a filter can carry: `Dial` → `[Dd][Ii][Aa][Ll]`. */
function anyCase(word: string): string {
  return [...word].map((c) => (c.toLowerCase() !== c.toUpperCase() ? `[${c.toUpperCase()}${c.toLowerCase()}]` : escape(c))).join('');
}

function escape(text: string): string {
  return text.replace(/[.[\]()*+?{}|^$\\]/g, (c) => `\\${c}`);
}

/**
 * One regular expression per manager.conf `eventfilter` line: an event passes if any matches.
 * A dialplan step (Newexten, ~90 % of what FreePBX sends that pbxhook reads otherwise) passes
 * only where it can name a route: a context routeAt knows, an application routeOf knows, or a
 * configured target's extension. Asterisk compiles a filter POSIX extended without REG_NEWLINE
 * (manager.c), so `.*` spans the event's lines.
 */
export function amiEventFilters(routes: RouteTargets = NO_ROUTES): string[] {
  const dialplan = `Event: (${spellings(['newexten'])})`;
  const others = HANDLED_AMI_EVENTS.filter((n) => n !== 'varset' && n !== 'cel' && n !== 'newexten');
  const configured = [...new Set([...routes.ivrs, ...routes.queues, ...routes.ringGroups].map((t) => t.split('@')[0]!))];
  return [
    `Event: (${spellings(others)})`,
    `${dialplan}.*Context: (${ROUTE_CONTEXTS.map(escape).join('|')})`,
    `${dialplan}.*Application: (${ROUTE_APPLICATIONS.map(anyCase).join('|')})`,
    ...(configured.length > 0 ? [`${dialplan}.*Exten: (${configured.map(escape).join('|')})`] : []),
    `Variable: (${USED_VARIABLES.join('|')})`,
    `EventName: (${USED_CEL_EVENTS.join('|')})`,
  ];
}

/** The `Filter:` of the one `Filter` action sent at login: the lines above as one alternation. */
export function amiSessionFilter(routes: RouteTargets = NO_ROUTES): string {
  return amiEventFilters(routes).join('|');
}

/** What to put in manager.conf by hand, for the README, check-config and the refusal's log line. */
export function managerConfLines(username: string, routes: RouteTargets = NO_ROUTES): string[] {
  return [
    `[${username}]`,
    'read = call,dialplan,agent,user',
    'write = reporting          ; CoreShowChannels, for the resync after a reconnect',
    ...amiEventFilters(routes).map((f) => `eventfilter = ${f}`),
  ];
}

/** `pbxhook check-config`'s lines on the filter: what pbxhook will ask, and the manual way. */
export function explainEventFilter(pbx: AmiConfig, routes: RouteTargets): string[] {
  const asks =
    pbx.eventFilter === 'off'
      ? 'AMI event filter: off (pbx.event_filter); Asterisk sends every event the user may read'
      : 'AMI event filter: auto (pbx.event_filter); at each login pbxhook asks Asterisk for only the events it reads (Filter action: the user needs write = system; refused, it reads every event)';
  return [asks, '  or filter in manager.conf, which needs no write class:', ...managerConfLines(pbx.username, routes).map((l) => `    ${l}`)];
}
