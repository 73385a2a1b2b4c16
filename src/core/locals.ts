import type { Channel } from './model.js';

/**
 * Local channels are wires, not parties. Asterisk's `Local/202@from-queue-00000003` is a pair: the
 * `;1` half is what a dialler rings (app_queue, Dial, follow-me, an Originate); the `;2` half runs
 * the dialplan at `202@from-queue` and dials the real phone. FreePBX sends queue members, `#` ring
 * group members and follow-me through them, sometimes several pairs deep.
 */

/** Longest chain of Local pairs followed; FreePBX needs two at most, a loop in a dialplan needs a bound. */
const MAX_HOPS = 8;

/** `Local/202@from-queue-00000003;2` → `Local/202@from-queue-00000003`; undefined if not a Local half. */
export function localPairName(name: string): string | undefined {
  return name.startsWith('Local/') && /;[12]$/.test(name) ? name.slice(0, -2) : undefined;
}

/** The half a dialler rings (`;1`); the other runs the dialplan. */
function isEntryHalf(ch: Channel): boolean {
  return ch.name.endsWith(';1');
}

type Channels = ReadonlyMap<string, Channel>;

/**
 * Who really dials when `from` dials: through any chain of Local pairs, the channel that rang the
 * first `;1`. `undefined` when an Originate rang it (nobody dials a click-to-call's first phone).
 * A `;1` that dials (an Originate's dialplan side) dials for the phone its `;2` connected to. A pair
 * that nobody rang stands for itself (Atxfer's consultation channel).
 */
export function realDialler(channels: Channels, from: Channel, siblings: readonly string[]): Channel | undefined {
  let ch: Channel = from;
  for (let hop = 0; ch.party.kind === 'local' && hop < MAX_HOPS; hop++) {
    const peer = ch.localPeer === undefined ? undefined : channels.get(ch.localPeer);
    if (!peer) return ch;
    if (isEntryHalf(ch)) {
      const behind = reachedBy(channels, peer, siblings);
      if (!behind) return ch;
      ch = behind;
      continue;
    }
    if (peer.dialedBy === undefined) return peer.originated ? undefined : ch;
    const next = channels.get(peer.dialedBy);
    if (!next) return ch;
    ch = next;
  }
  return ch;
}

/** The channel `dialler` rang that answered (or, before an answer, the last one it rang). */
function reachedBy(channels: Channels, dialler: Channel, siblings: readonly string[]): Channel | undefined {
  let last: Channel | undefined;
  for (const id of siblings) {
    const ch = channels.get(id);
    if (ch?.dialedBy !== dialler.id) continue;
    if (ch.answeredAt !== undefined) return ch;
    last = ch;
  }
  return last;
}

/** True when `leg` was dialled through the Local pair whose `;1` is `entry`, at any depth. */
export function isWiredThrough(channels: Channels, leg: Channel, entry: Channel): boolean {
  let ch: Channel | undefined = leg;
  for (let hop = 0; ch && hop < MAX_HOPS; hop++) {
    const dialler: Channel | undefined = ch.dialedBy === undefined ? undefined : channels.get(ch.dialedBy);
    if (!dialler || dialler.party.kind !== 'local') return false;
    const head: Channel | undefined = isEntryHalf(dialler) ? dialler : dialler.localPeer === undefined ? undefined : channels.get(dialler.localPeer);
    if (head === entry) return true;
    ch = head;
  }
  return false;
}
