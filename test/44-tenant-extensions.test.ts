/**
 * Hosted, multi-tenant PBXes name endpoints `NNNN-TT` (extension NNNN of tenant TT); the capture group
 * named ext in `roles.extension_pattern` says which part is the extension (issue #12 item 5). Roles
 * on their own, the AMI channel names, the tracker telling two tenants' 1001 apart, then one
 * synthetic call replayed through the whole pipeline.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { partyOfChannel } from '../src/ami/channel.js';
import { AmiNormaliser } from '../src/ami/normalise.js';
import { parseConfig } from '../src/config/load.js';
import type { Config } from '../src/config/types.js';
import { endpointOf, type Party, type PbxEvent } from '../src/core/events.js';
import { isRering } from '../src/core/model.js';
import { RoleBook } from '../src/core/roles.js';
import { Tracker } from '../src/core/tracker.js';
import { jsonBodies, replayTrace } from './support/replayTrace.js';

const INI_PATH = 'config/all-schemas.webhooks.ini';

/** A config through the loader, as the daemon reads it: the loader resolves which group is the extension. */
function configWith(roles: string, extra = ''): Config {
  const yaml = `pbx: { type: asterisk, username: admin, secret: s }\nroles: ${roles}\n${extra}environment: LAB\nwebhooks: ./all-schemas.webhooks.ini\n`;
  return parseConfig(yaml, readFileSync(INI_PATH, 'utf8'), { yamlPath: 'config/tenant.yaml' }, {});
}

const rolesOf = (roles: string): RoleBook => new RoleBook(configWith(roles).roles);
const TENANT = String.raw`{ extension_pattern: '^(?<ext>\d+)-\d+$' }`;

describe('RoleBook with a tenant-suffixed extension pattern', () => {
  it('names the extension by the group called ext, keeping the endpoint name beside it', () => {
    const roles = rolesOf(TENANT);
    expect(roles.partyOf('1001-12')).toEqual({ kind: 'extension', id: '1001', endpoint: '1001-12' });
    expect(roles.partyOf('trunk')).toEqual({ kind: 'trunk', id: 'trunk' });
    expect(roles.partyOf('1001')).toEqual({ kind: 'trunk', id: '1001' }); // no tenant: not this pattern's phone
    expect(roles.extensionOf('1001-12')).toEqual({ kind: 'extension', id: '1001', endpoint: '1001-12' });
    expect(roles.extensionOf('alice')).toEqual({ kind: 'extension', id: 'alice' });
    expect(roles.extensionId('1001-12')).toBe('1001');
    expect(roles.extensionId('alice')).toBe('alice');
  });

  it('uses only a group named ext: unnamed groups and groups of other names leave the name whole, as before groups', () => {
    // A group written for alternation must not change an existing config: 123 stays 123, not 1.
    const alternation = rolesOf(String.raw`{ extension_pattern: '^(1|2)\d{2}$' }`);
    expect(alternation.partyOf('123')).toEqual({ kind: 'extension', id: '123' });
    expect(alternation.extensionId('123')).toBe('123');
    expect(rolesOf(String.raw`{ extension_pattern: '^(\d+)-\d+$' }`).partyOf('1001-12')).toEqual({ kind: 'extension', id: '1001-12' });
    expect(rolesOf(String.raw`{ extension_pattern: '^t(?<tenant>\d+)_(\d+)$' }`).partyOf('t12_1001').id).toBe('t12_1001');
    expect(rolesOf(String.raw`{ extension_pattern: '^(\d+)-(?<ext>\d+)$' }`).partyOf('12-1001')).toEqual({ kind: 'extension', id: '1001', endpoint: '12-1001' });
  });

  it('keeps the whole name without groups, or when the group takes no part or takes all of it', () => {
    expect(rolesOf(String.raw`{ extension_pattern: '^\d+-\d+$' }`).partyOf('1001-12')).toEqual({ kind: 'extension', id: '1001-12' });
    const either = rolesOf(String.raw`{ extension_pattern: '^(?<ext>\d+)-\d+$|^operator$' }`);
    expect(either.partyOf('operator')).toEqual({ kind: 'extension', id: 'operator' });
    expect(either.partyOf('1001-12')).toEqual({ kind: 'extension', id: '1001', endpoint: '1001-12' });
    expect(rolesOf(String.raw`{ extension_pattern: '^(?<ext>\d+)(-\d+)?$' }`).partyOf('1001')).toEqual({ kind: 'extension', id: '1001' });
  });

  it('leaves trunk_pattern as it was: it sees the whole endpoint name and wins', () => {
    const roles = rolesOf(String.raw`{ extension_pattern: '^(?<ext>\d+)-\d+$', trunk_pattern: '^9\d+-99$' }`);
    expect(roles.partyOf('900-99')).toEqual({ kind: 'trunk', id: '900-99' });
    expect(roles.partyOf('900-12')).toEqual({ kind: 'extension', id: '900', endpoint: '900-12' });
  });
});

describe('AMI channel names of a hosted PBX', () => {
  const roles = rolesOf(TENANT);

  it('drop the channel sequence at the last dash, then take the extension group', () => {
    expect(partyOfChannel('PJSIP/1001-12-0000002a', roles)).toEqual({ kind: 'extension', id: '1001', endpoint: '1001-12' });
    expect(partyOfChannel('SIP/1001-12-00000003', roles)).toEqual({ kind: 'extension', id: '1001', endpoint: '1001-12' });
    expect(partyOfChannel('PJSIP/trunk-00000016', roles)).toEqual({ kind: 'trunk', id: 'trunk' });
    expect(partyOfChannel('Local/1001-12@from-internal-00000001;2', roles)).toEqual({ kind: 'local', id: '1001-12@from-internal' });
  });

  it('are endpoint 1001-12 whole under the default pattern, as before (a trunk, since it is no bare number)', () => {
    expect(partyOfChannel('PJSIP/1001-12-0000002a', rolesOf('{}'))).toEqual({ kind: 'trunk', id: '1001-12' });
  });

  it('name mailboxes as extensions too, so the directory finds their person', () => {
    const n = new AmiNormaliser(roles, () => 0);
    const left = n.normalise({ fields: { event: 'MessageWaiting', uniqueid: 'c', mailbox: '1001-12@default', new: '1' } });
    expect(left).toMatchObject({ type: 'voicemail.left', mailbox: '1001' });
    const entered = n.normalise({ fields: { event: 'Newexten', uniqueid: 'c', context: 'macro-vm', exten: 's', application: 'VoiceMail', appdata: '1001-12@default,u' } });
    expect(entered).toMatchObject({ type: 'route.entered', role: 'voicemail', number: '1001' });
  });
});

/**
 * Extension 1001 of tenant 12 and extension 1001 of tenant 13 share the id 1001 (webhooks name
 * 1001), but they are two phones: the tracker keys what a phone does on its endpoint name.
 */
describe('tracker: the same extension of two tenants is two phones', () => {
  const tenant = (t: string) => ({ kind: 'extension', id: '1001', endpoint: `1001-${t}` }) as const;
  const trunk = { kind: 'trunk', id: 'trunk' } as const;
  const created = (channel: string, call: string, party: Party, at: number): PbxEvent => ({
    type: 'channel.created', at, channel, call, name: `PJSIP/${endpointOf(party)}-${channel}`, party,
    callerId: { num: party.id, name: party.id }, dialed: party.kind === 'trunk' ? '0212' : '2002',
  });

  /** A customer's call answered by 1001 of tenant 12, who then puts it on hold. */
  function heldByTenant12(): Tracker {
    const t = new Tracker(60_000);
    t.handle(created('a', 'A', trunk, 1));
    t.handle(created('b', 'A', tenant('12'), 2));
    t.handle({ type: 'dial.begin', at: 3, from: 'a', to: 'b', target: 'PJSIP/1001-12' });
    t.handle({ type: 'channel.ringing', at: 4, channel: 'b' });
    t.handle({ type: 'dial.end', at: 5, from: 'a', to: 'b', status: 'answer' });
    t.handle({ type: 'channel.hold', at: 6, channel: 'b', held: true });
    return t;
  }

  it('does not take a call placed by 1001 of tenant 13 for a consultation of tenant 12\'s held call', () => {
    const t = heldByTenant12();
    t.handle(created('c', 'C', tenant('13'), 7));
    expect(t.calls.get('C')?.consultFor).toBeUndefined();
    t.handle(created('d', 'C', { kind: 'extension', id: '2002', endpoint: '2002-13' }, 8));
    const dialled = t.handle({ type: 'dial.begin', at: 9, from: 'c', to: 'd', target: 'PJSIP/2002-13' });
    expect(dialled.map((e) => e.type)).toEqual(['call.started', 'leg.dialed']);
  });

  it('takes a call placed by 1001 of tenant 12 itself for a consultation of its held call', () => {
    const t = heldByTenant12();
    t.handle(created('c', 'C', tenant('12'), 7));
    expect(t.calls.get('C')?.consultFor).toBe('A');
  });

  it('announces each tenant\'s 1001 ringing for the same call: neither is a re-ring of the other', () => {
    const t = new Tracker(60_000);
    t.handle(created('a', 'A', trunk, 1));
    const ringing = (channel: string, party: Party, at: number) => {
      t.handle(created(channel, 'A', party, at));
      t.handle({ type: 'dial.begin', at, from: 'a', to: channel, target: `PJSIP/${endpointOf(party)}` });
      const e = t.handle({ type: 'channel.ringing', at, channel }).find((l) => l.type === 'leg.ringing');
      if (e?.type !== 'leg.ringing') throw new Error(`no leg.ringing for ${channel}`);
      return isRering(e.call, e.leg);
    };
    expect(ringing('b', tenant('12'), 2)).toBe(false);
    expect(ringing('c', tenant('13'), 3)).toBe(false);
    expect(ringing('d', tenant('12'), 4)).toBe(true); // tenant 12's phone again: a queue retrying it
  });
});

/**
 * An inbound call from the carrier trunk, answered by extension 1001 of tenant 12. Made from
 * ../shared/traces/asterisk-freepbx/fpbx-ext-answered.ami: only its Newchannel, DialBegin, Newstate,
 * DialEnd, BridgeEnter and Hangup events, fields the normaliser does not read left out, timestamps
 * kept, and phone 117 (PJSIP/117-00000017) renamed to the hosted endpoint 1001-12 (PJSIP/1001-12-0000002a).
 */
const TENANT_CALL = `Asterisk Call Manager/11.0.0

Event: Newchannel
Privilege: call,all
Timestamp: 1796399722.368846
Channel: PJSIP/trunk-00000016
ChannelStateDesc: Ring
CallerIDNum: 05552221133
CallerIDName: 05552221133
Context: from-pstn
Exten: 02125550117
Uniqueid: 1796399722.42
Linkedid: 1796399722.42

Event: Newchannel
Privilege: call,all
Timestamp: 1796399722.411780
Channel: PJSIP/1001-12-0000002a
ChannelStateDesc: Down
CallerIDNum: 1001
CallerIDName: Ext 1001
Context: from-internal
Exten: s
Uniqueid: 1796399722.43
Linkedid: 1796399722.42

Event: DialBegin
Privilege: call,all
Timestamp: 1796399722.414317
Channel: PJSIP/trunk-00000016
Uniqueid: 1796399722.42
Linkedid: 1796399722.42
DestChannel: PJSIP/1001-12-0000002a
DestUniqueid: 1796399722.43
DestLinkedid: 1796399722.42
DialString: 1001-12/sip:1001-12@127.0.0.1:5117

Event: Newstate
Privilege: call,all
Timestamp: 1796399722.417006
Channel: PJSIP/1001-12-0000002a
ChannelStateDesc: Ringing
Uniqueid: 1796399722.43
Linkedid: 1796399722.42

Event: Newstate
Privilege: call,all
Timestamp: 1796399725.423976
Channel: PJSIP/1001-12-0000002a
ChannelStateDesc: Up
Uniqueid: 1796399722.43
Linkedid: 1796399722.42

Event: DialEnd
Privilege: call,all
Timestamp: 1796399725.424898
Channel: PJSIP/trunk-00000016
Uniqueid: 1796399722.42
Linkedid: 1796399722.42
DestChannel: PJSIP/1001-12-0000002a
DestUniqueid: 1796399722.43
DialStatus: ANSWER

Event: Newstate
Privilege: call,all
Timestamp: 1796399725.424921
Channel: PJSIP/trunk-00000016
ChannelStateDesc: Up
Uniqueid: 1796399722.42
Linkedid: 1796399722.42

Event: BridgeEnter
Privilege: call,all
Timestamp: 1796399725.426685
BridgeUniqueid: d11bf0d9-3769-4bcc-8aab-875e0f293dde
Channel: PJSIP/1001-12-0000002a
Uniqueid: 1796399722.43
Linkedid: 1796399722.42

Event: BridgeEnter
Privilege: call,all
Timestamp: 1796399725.426709
BridgeUniqueid: d11bf0d9-3769-4bcc-8aab-875e0f293dde
Channel: PJSIP/trunk-00000016
Uniqueid: 1796399722.42
Linkedid: 1796399722.42

Event: Hangup
Privilege: call,all
Timestamp: 1796399733.438637
Channel: PJSIP/trunk-00000016
Uniqueid: 1796399722.42
Linkedid: 1796399722.42
Cause: 16
Cause-txt: Normal Clearing

Event: Hangup
Privilege: call,all
Timestamp: 1796399733.438681
Channel: PJSIP/1001-12-0000002a
Uniqueid: 1796399722.43
Linkedid: 1796399722.42
Cause: 16
Cause-txt: Normal Clearing

`.replace(/\n/g, '\r\n');

describe('replay: an inbound call answered by a tenant-suffixed extension', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pbxhook-tenant-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const trace = path.join(dir, 'tenant-answered.ami');
  writeFileSync(trace, TENANT_CALL);
  const directory = 'directory:\n  "1001": { name: Dana Tenant, email: dana@example.com, uid: u-1001 }\n';

  it('sends 3CX User 1001, and every schema names extension 1001, never the endpoint 1001-12', async () => {
    const { lines, summary } = await replayTrace(trace, configWith(TENANT, directory));
    expect(summary).toMatchObject({ callsStarted: 1, callsEnded: 1, callsOpen: 0, framesSkipped: 0, unknownEvents: 0 });
    const threecx = jsonBodies(lines, 'threecx-json');
    expect(threecx.map((b) => `${b['Event']} ${b['User']}`)).toEqual(['ringing 1001', 'incomingcall_started 1001', 'incoming 1001']);
    expect(threecx[0]).toMatchObject({ Usertype: 'ext' });
    expect(threecx.at(-1)).toMatchObject({ Finishtype: 'Ok' });
    // The directory is keyed by the extension: VXT names its person.
    expect(lines.find((l) => l.includes('"endpoint":"vxt"'))).toContain('dana@example.com');
    for (const l of lines) expect(JSON.parse(l).body).not.toContain('1001-12');
  });

  it('tells the same call with 1001-12 as a trunk under the default pattern (why the pattern is needed)', async () => {
    const { lines } = await replayTrace(trace, configWith('{}', directory));
    expect(lines.some((l) => l.includes('dana@example.com'))).toBe(false);
    expect(jsonBodies(lines, 'threecx-json').map((b) => b['User'])).not.toContain('1001');
  });
});
