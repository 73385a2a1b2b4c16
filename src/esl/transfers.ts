/**
 * FreeSWITCH has no one transfer event. Each way a call is transferred leaves its own trace, and
 * each must be reported before the transferer's hangup, or the tracker ends the agent's segment as
 * a plain hangup:
 *
 * | how | what shows it | when |
 * |---|---|---|
 * | `uuid_transfer <uuid> [-bleg] <dest>` over ESL | `API` event (API-Command/-Argument) | before the agent leg hangs up |
 * | `transfer -bleg <dest>` run on a bridged leg (a feature code) | CHANNEL_EXECUTE transfer | same |
 * | blind SIP REFER | `variable_transfer_disposition: recv_replace`, `variable_transfer_destination: blind:<dest>` on the transferer | its HANGUP_COMPLETE |
 * | attended SIP REFER (Replaces) | `variable_transfer_to: att:<target uuid>`, `variable_refer_uuid` on the transferer; then the caller is bridged with the target | its HANGUP_COMPLETE, or that bridge |
 * | `att_xfer` (the agent hangs up while consulting) | the consulted leg, dialled by the agent, gets bridged with the agent's caller | that bridge, or the agent's HANGUP_COMPLETE |
 * | `sofia::transferor` (profile `fire-transfer-events`) | att_xfer_destination_call_id / _peer_uuid | before the bridge |
 *
 * Whichever comes first is reported; the `transferred` flags keep the others quiet.
 */
import type { PbxEvent } from '../core/events.js';
import { header, type EslEvent } from './frame.js';
import type { LegBook } from './legs.js';

/** `<uuid> [-bleg|-both] <dest> [dialplan] [context]` (uuid_transfer) or the same without the uuid (transfer app). */
function blindTransfer(legs: LegBook, uuid: string, args: string[], at: number): PbxEvent[] {
  const flag = args[0]?.startsWith('-') ? args.shift() : undefined;
  const target = args[0] ?? '';
  if (flag === '-both' || target === '') return []; // both sides leave: nobody stays to be transferred
  const self = legs.get(uuid);
  const other = self?.partner;
  // With -bleg the named leg hands its partner over; without, the named leg itself is sent away.
  const [transferer, transferee] = flag === '-bleg' ? [uuid, other] : [other, uuid];
  const t = legs.get(transferer);
  const e = legs.get(transferee);
  if (!transferer || !transferee || !t || !e || !t.up || !e.up || t.partner !== transferee || t.transferred) return [];
  t.transferred = true;
  return [{ type: 'transfer.blind', at, transferer, transferee, target }];
}

export function blindFromApi(legs: LegBook, ev: EslEvent, at: number): PbxEvent[] {
  if (header(ev, 'API-Command') !== 'uuid_transfer') return [];
  const [uuid, ...args] = header(ev, 'API-Command-Argument').trim().split(/\s+/);
  return uuid ? blindTransfer(legs, uuid, args, at) : [];
}

export function blindFromApp(legs: LegBook, ev: EslEvent, at: number): PbxEvent[] {
  const args = header(ev, 'Application-Data').trim().split(/\s+/);
  // A plain `transfer <exten>` is dialplan routing of the channel itself, not a call transfer.
  if (args[0] !== '-bleg') return [];
  return blindTransfer(legs, header(ev, 'Unique-ID'), args, at);
}

export function blindFromRefer(legs: LegBook, ev: EslEvent, at: number): PbxEvent[] {
  const destination = header(ev, 'variable_transfer_destination');
  if (header(ev, 'variable_transfer_disposition') !== 'recv_replace' || !destination.startsWith('blind:')) return [];
  const transferer = header(ev, 'Unique-ID');
  const leg = legs.get(transferer);
  if (!leg || leg.transferred) return [];
  const to = header(ev, 'variable_transfer_to');
  const transferee = to.startsWith('blind:') ? to.slice('blind:'.length) : leg.partner;
  if (!transferee) return [];
  leg.transferred = true;
  return [{ type: 'transfer.blind', at, transferer, transferee, target: destination.slice('blind:'.length) }];
}

function attended(legs: LegBook, transferer: string, consult: string, target: string, at: number): PbxEvent[] {
  const t = legs.get(target);
  const from = legs.get(transferer);
  if (!t || !from || t.transferred) return [];
  t.transferred = true;
  t.call = from.call;
  return [{ type: 'transfer.attended', at, transferer, consultTransferer: consult, target }];
}

export function attendedAtHangup(legs: LegBook, ev: EslEvent, at: number): PbxEvent[] {
  const channel = header(ev, 'Unique-ID');
  const to = header(ev, 'variable_transfer_to');
  if (to.startsWith('att:')) {
    return attended(legs, channel, header(ev, 'variable_refer_uuid') || channel, to.slice('att:'.length), at);
  }
  const leg = legs.get(channel);
  const caller = legs.get(leg?.formerPartner);
  if (!leg?.formerPartner || !caller?.up || caller.partner !== channel) return [];
  // att_xfer: the agent hangs up while bridged to the phone it dialled; FreeSWITCH joins that
  // phone with the agent's caller (mod_dptools att_thread_run).
  for (const [uuid, consult] of legs.dialledBy(channel)) {
    if (consult.up && consult.connected && consult.partner === channel) return attended(legs, channel, channel, uuid, at);
  }
  return [];
}

export function attendedFromTransferor(legs: LegBook, ev: EslEvent, at: number): PbxEvent[] {
  const target = header(ev, 'att_xfer_destination_call_id');
  const consult = header(ev, 'att_xfer_destination_peer_uuid');
  if (!target || !consult) return [];
  return attended(legs, header(ev, 'Unique-ID'), consult, target, at);
}
