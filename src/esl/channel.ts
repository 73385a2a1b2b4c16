import type { Party } from '../core/events.js';
import type { RoleBook } from '../core/roles.js';
import { header, type EslEvent } from './frame.js';

/**
 * Who a FreeSWITCH channel is. FreeSWITCH says it outright more often than Asterisk does:
 * - a leg to a gateway carries `variable_sip_gateway_name` → trunk (the gateway's name);
 * - a leg dialled through `user/NNN` carries `variable_dialed_user`, and a phone that
 *   authenticated its INVITE against the directory carries `variable_user_name` → extension
 *   (its id is the group named ext of `extension_pattern` when that matches: `1001-12` → "1001",
 *   the user name kept as the party's `endpoint`);
 * - anything else (an unauthenticated caller on a profile) is judged by its name's user part
 *   (`sofia/external/05552221133@10.0.0.1:5060` → "05552221133") with the configured patterns;
 *   a trunk found that way is named after its SIP profile.
 * `trunk_pattern` overrides all of these, as it does for Asterisk.
 */
export function partyOfChannel(ev: EslEvent, roles: RoleBook): Party {
  const name = header(ev, 'Channel-Name');
  if (name.startsWith('loopback/')) return { kind: 'local', id: loopbackTarget(name) };
  const gateway = header(ev, 'variable_sip_gateway_name');
  if (gateway) return { kind: 'trunk', id: gateway };
  const user = header(ev, 'variable_dialed_user') || header(ev, 'variable_user_name');
  if (user) return roles.isTrunk(user) ? { kind: 'trunk', id: user } : roles.extensionOf(user);
  const endpoint = userPart(name) || header(ev, 'Caller-Username');
  if (!endpoint) return { kind: 'unknown', id: name };
  const party = roles.partyOf(endpoint);
  // A caller's number names no trunk; the SIP profile it came in on does.
  if (party.kind === 'trunk') return { kind: 'trunk', id: header(ev, 'variable_sofia_profile_name') || endpoint };
  return party;
}

/** `sofia/<profile>/<user>@<host>` → user; `sofia/gateway/<gw>/<number>` → number. */
function userPart(name: string): string {
  const parts = name.split('/');
  const last = parts[parts.length - 1] ?? '';
  if (parts.length < 3) return '';
  const at = last.indexOf('@');
  return at >= 0 ? last.slice(0, at) : last;
}

/** `loopback/117-a` → "117". */
function loopbackTarget(name: string): string {
  return name.slice('loopback/'.length).replace(/-[ab]$/, '');
}

/**
 * The dial string a leg stands for, in the shape the tracker reads a number from:
 * `sofia/gateway/carrier/05552221133`, `user/117@domain`, else the channel name.
 */
export function dialTargetOf(ev: EslEvent): string {
  const gateway = header(ev, 'variable_sip_gateway_name');
  if (gateway) return `sofia/gateway/${gateway}/${header(ev, 'Caller-Destination-Number')}`;
  const user = header(ev, 'variable_dialed_user');
  if (user) return `user/${user}@${header(ev, 'variable_dialed_domain')}`;
  return header(ev, 'Channel-Name');
}
