/**
 * After a reconnect the daemon asks Asterisk which channels are up (`Action: CoreShowChannels`).
 * The answer comes through the ordinary event stream, every part tagged with our ActionID: a
 * Response (Success, or Error when manager.conf's read= lacks `reporting`), one CoreShowChannel
 * event per channel, then CoreShowChannelsComplete with `ListItems`. This collects the Uniqueids.
 */
import type { AmiFrame } from './frame.js';

export type ChannelListResult =
  | { readonly ok: true; readonly channels: string[] }
  | { readonly ok: false; readonly message: string };

export class AmiChannelList {
  private pending: { readonly id: string; readonly channels: string[] } | undefined;
  private count = 0;

  /** The action to send. A new request replaces an unfinished one (the connection dropped again). */
  request(): Record<string, string> {
    const id = `pbxhook-resync-${++this.count}`;
    this.pending = { id, channels: [] };
    return { Action: 'CoreShowChannels', ActionID: id };
  }

  /** Feed every frame; returns the outcome once the listing is complete or refused. */
  frame(f: AmiFrame): ChannelListResult | undefined {
    const p = this.pending;
    if (p === undefined || f.fields.actionid !== p.id) return undefined;
    const event = (f.fields.event ?? '').toLowerCase();
    if (event === 'coreshowchannel') {
      const id = f.fields.uniqueid;
      if (id) p.channels.push(id);
      return undefined;
    }
    if (event === 'coreshowchannelscomplete') {
      this.pending = undefined;
      // A short list would hang up live calls: only a complete one is believed.
      const items = Number(f.fields.listitems ?? p.channels.length);
      if (items !== p.channels.length) return { ok: false, message: `CoreShowChannels listed ${p.channels.length} of ${items} channels` };
      return { ok: true, channels: p.channels };
    }
    if ((f.fields.response ?? '').toLowerCase() === 'error') {
      this.pending = undefined;
      return { ok: false, message: `CoreShowChannels refused: ${f.fields.message ?? 'no message'}` };
    }
    return undefined;
  }
}
