import { field, type AmiFrame } from './frame.js';

/**
 * How long a voicemail message is, as far as AMI can tell (issue #12 item 6). app_voicemail
 * reports neither the length nor the start of the recording; its MessageWaiting comes once the
 * message is saved. With CEL on the manager backend (cel.conf `events=ALL`, or at least
 * STREAM_BEGIN,STREAM_END), the prompts it plays show: the recording starts when the `beep` ends
 * (STREAM_END) and stops at the next prompt (STREAM_BEGIN: a review menu, a goodbye) or, at the
 * latest, when the message is saved. That span is an upper bound of the audio's length, within a
 * few milliseconds of it when the caller hangs up (lab: 8.88 s for an 8 s message); a silence that
 * app_voicemail trims from the end makes the audio shorter still. A second beep (re-recording after
 * a review) starts the span again.
 */

export interface Recording {
  /** The beep is playing; the recording starts when it ends. */
  beeping: boolean;
  from: number | undefined;
  to: number | undefined;
}

/** Channels in VoiceMail that heard a beep: entries leave at Hangup, so this cap only guards against lost Hangups. */
const MAX_CHANNELS = 10_000;

export class VoicemailRecordings {
  private readonly byChannel = new Map<string, Recording>();
  /** Channels whose recording changed since `takeChanged()` (saved with the outbox: issue #14 item 2). */
  private changed: Set<string> | undefined;

  /** From now on, remember which recordings change, for `takeChanged` (the daemon; not replay). */
  trackChanges(): void {
    this.changed ??= new Set();
  }

  /** The recordings that changed since the last call, undefined for one gone. */
  takeChanged(): Array<[string, Recording | undefined]> {
    const out = [...(this.changed ?? [])].map((ch): [string, Recording | undefined] => [ch, this.byChannel.get(ch)]);
    this.changed?.clear();
    return out;
  }

  /** Takes back recordings saved by `takeChanged` (a restart). */
  restore(entries: Iterable<[string, Recording]>): void {
    for (const [ch, rec] of entries) this.byChannel.set(ch, rec);
  }

  /** A CEL event: only VoiceMail's STREAM_BEGIN/STREAM_END matter. */
  cel(f: AmiFrame, at: number): void {
    if (field(f, 'application').toLowerCase() !== 'voicemail') return;
    const channel = field(f, 'uniqueid');
    const name = field(f, 'eventname');
    const rec = this.byChannel.get(channel);
    if (rec) this.changed?.add(channel);
    if (name === 'STREAM_BEGIN') {
      if (soundOf(field(f, 'extra')) === 'beep') this.start(channel);
      else if (rec && rec.from !== undefined && rec.to === undefined) rec.to = at;
    } else if (name === 'STREAM_END' && rec?.beeping) {
      rec.beeping = false;
      rec.from = at;
    }
  }

  /** The message just saved on `channel`: its recording's length in ms, if a beep was seen. */
  messageSaved(channel: string, at: number): number | undefined {
    const rec = this.byChannel.get(channel);
    this.forget(channel);
    if (rec?.from === undefined) return undefined;
    return Math.max(0, (rec.to ?? at) - rec.from);
  }

  forget(channel: string): void {
    if (this.byChannel.delete(channel)) this.changed?.add(channel);
  }

  get size(): number {
    return this.byChannel.size;
  }

  private start(channel: string): void {
    this.byChannel.delete(channel); // a re-recording starts over, and moves to the newest end
    if (this.byChannel.size >= MAX_CHANNELS) {
      const oldest = this.byChannel.keys().next().value;
      if (oldest !== undefined) this.forget(oldest);
    }
    this.byChannel.set(channel, { beeping: true, from: undefined, to: undefined });
    this.changed?.add(channel);
  }
}

/** CEL STREAM_BEGIN's Extra: `{"sound":"beep","format":"gsm","language":"en"}`. */
function soundOf(extra: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(extra);
    const sound = parsed !== null && typeof parsed === 'object' ? (parsed as { sound?: unknown }).sound : undefined;
    return typeof sound === 'string' ? sound : undefined;
  } catch {
    return undefined;
  }
}
