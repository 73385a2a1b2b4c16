import type { Party } from '../core/events.js';
import type { RoleBook } from '../core/roles.js';

/**
 * Asterisk channel names are `Tech/resource-sequence` (PJSIP/117-0000001a, SIP/trunk-00000003)
 * or `Local/exten@context-sequence;1|2`. The resource is the endpoint (extension or trunk). The
 * sequence follows the last dash, so a hosted PBX's `PJSIP/1001-12-0000002a` is endpoint `1001-12`,
 * whose extension the group named ext of `roles.extension_pattern` may pick out (issue #12 item 5):
 * the party is then id `1001`, endpoint `1001-12`.
 */
export function partyOfChannel(name: string, roles: RoleBook): Party {
  const slash = name.indexOf('/');
  if (slash < 0) return { kind: 'unknown', id: name };
  const tech = name.slice(0, slash);
  let rest = name.slice(slash + 1);
  const semi = rest.lastIndexOf(';');
  if (semi >= 0) rest = rest.slice(0, semi);
  const dash = rest.lastIndexOf('-');
  const endpoint = dash > 0 ? rest.slice(0, dash) : rest;
  if (tech === 'Local') return { kind: 'local', id: endpoint };
  return roles.partyOf(endpoint);
}
