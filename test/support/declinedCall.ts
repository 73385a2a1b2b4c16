import type { Config } from '../../src/config/types.js';
import type { PbxEvent } from '../../src/core/events.js';
import type { LifecycleEvent } from '../../src/core/lifecycle.js';
import { Pipeline } from '../../src/pipeline.js';
import { requestLine } from '../../src/replay.js';

/**
 * A carrier call to extension 117 that the phone declines (SIP 603: AMI HangupRequest cause 21,
 * then Dial's NOANSWER, as fpbx-ringgroup-declined.ami shows for one member), with nothing after
 * it: the whole call is declined. The neutral events the AMI normaliser makes of it, since no
 * recorded trace has a call that ends this way.
 */
export function declinedCall(cfg: Config): { lines: string[]; events: LifecycleEvent[] } {
  const t0 = 1_796_486_840_000;
  const trunk = { kind: 'trunk', id: 'trunk' } as const;
  const phone = { kind: 'extension', id: '117' } as const;
  const script: PbxEvent[] = [
    { type: 'channel.created', at: t0, channel: 'a', call: 'a', name: 'PJSIP/trunk-00000001', party: trunk, callerId: { num: '05552221133', name: '' }, dialed: '02125550117' },
    { type: 'channel.created', at: t0 + 10, channel: 'b', call: 'a', name: 'PJSIP/117-00000002', party: phone, callerId: { num: '117', name: 'Ext 117' }, dialed: 's' },
    { type: 'dial.begin', at: t0 + 10, from: 'a', to: 'b', target: 'PJSIP/117' },
    { type: 'channel.ringing', at: t0 + 20, channel: 'b' },
    { type: 'channel.cause', at: t0 + 2_500, channel: 'b', cause: 21 },
    { type: 'dial.end', at: t0 + 2_500, from: 'a', to: 'b', status: 'noanswer' },
    { type: 'channel.hangup', at: t0 + 2_501, channel: 'b', cause: 21 },
    { type: 'channel.hangup', at: t0 + 2_510, channel: 'a', cause: 21 },
  ];
  const p = new Pipeline(cfg);
  const events: LifecycleEvent[] = [];
  p.onLifecycleEvent = (e) => events.push(e);
  const lines = script.flatMap((ev) => p.pbxEvent(ev)).map((r) => requestLine(r, new Map()));
  return { lines, events };
}
