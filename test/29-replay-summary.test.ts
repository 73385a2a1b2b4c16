/**
 * What `pbxhook replay`'s summary counts (issue #12 item 7): besides frames skipped and unknown
 * events, the events about channels the tracker never saw created (orphans) and the calls it closed
 * by idle timeout, so a tester can tell a trace that replayed whole from one that was partly
 * ignored; and `stoppedEarly` when the reader of the output went away.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { Pipeline } from '../src/pipeline.js';
import { replayFile } from '../src/replay.js';
import { LAB_CONFIG, replayTrace } from './support/replayTrace.js';

const CLEAN = 'test/fixtures/asterisk/in-busy.ami';
const BIG = 'test/fixtures/asterisk/load.ami.gz';

/** `calls.idle_timeout_seconds` of the lab config (the default). */
const IDLE_S = 14_400;
const T0 = 1_795_302_617;

/**
 * Handcrafted, not recorded: the banner and login response of a real trace, then the trunk
 * channel's Newchannel copied from in-busy.ami (its Hangup never comes: a lost event), and two
 * events about PJSIP/117-00000030, a channel whose Newchannel came before the recording began. The
 * second of those is past the idle timeout, so the trunk call is closed by it on the trace's clock.
 */
const ORPHAN_TRACE = [
  'Asterisk Call Manager/11.0.0',
  'Response: Success',
  'Message: Authentication accepted',
  '',
  'Event: Newchannel',
  'Privilege: call,all',
  `Timestamp: ${T0}.375671`,
  'Channel: PJSIP/trunk-00000034',
  'ChannelState: 4',
  'ChannelStateDesc: Ring',
  'CallerIDNum: 05552221133',
  'CallerIDName: 05552221133',
  'ConnectedLineNum: <unknown>',
  'ConnectedLineName: <unknown>',
  'Language: en',
  'AccountCode: ',
  'Context: from-trunk',
  'Exten: 02125550202',
  'Priority: 1',
  `Uniqueid: ${T0}.56`,
  `Linkedid: ${T0}.56`,
  '',
  'Event: Newstate',
  'Privilege: call,all',
  `Timestamp: ${T0 + 1}.000000`,
  'Channel: PJSIP/117-00000030',
  'ChannelState: 6',
  'ChannelStateDesc: Up',
  'Uniqueid: 1795302500.40',
  'Linkedid: 1795302500.40',
  '',
  'Event: Hangup',
  'Privilege: call,all',
  `Timestamp: ${T0 + IDLE_S + 120}.000000`,
  'Channel: PJSIP/117-00000030',
  'Uniqueid: 1795302500.40',
  'Linkedid: 1795302500.40',
  'Cause: 16',
  'Cause-txt: Normal Clearing',
  '',
  '',
].join('\r\n');

const tmp = mkdtempSync(path.join(os.tmpdir(), 'pbxhook-summary-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('the replay summary', () => {
  it('counts events about channels never seen created, and calls closed by the idle timeout', async () => {
    expect(loadConfig(LAB_CONFIG).calls.idleTimeoutSeconds).toBe(IDLE_S);
    const trace = path.join(tmp, 'orphans.ami');
    writeFileSync(trace, ORPHAN_TRACE);
    const { summary } = await replayTrace(trace);
    expect(summary).toMatchObject({
      callsStarted: 1,
      callsEnded: 1,
      callsTimedOut: 1,
      callsOpen: 0,
      orphanEvents: 2,
      framesSkipped: 0,
      unknownEvents: 0,
      stoppedEarly: false,
    });
  });

  it('counts none of them for a clean real trace', async () => {
    const { summary } = await replayTrace(CLEAN);
    expect(summary).toMatchObject({ callsTimedOut: 0, callsOpen: 0, orphanEvents: 0, framesSkipped: 0, unknownEvents: 0, stoppedEarly: false });
  });
});

describe('stopping a replay (the reader of its output went away)', () => {
  const replay = (opts: Parameters<typeof replayFile>[3], onRequest: () => void = () => {}) =>
    replayFile(BIG, new Pipeline(loadConfig(LAB_CONFIG)), onRequest, opts);

  it('stops between two events: the whole of the event that was being rendered, nothing after it', async () => {
    const full = await replay({});
    const stop = new AbortController();
    let requests = 0;
    const early = await replay({ signal: stop.signal }, () => {
      requests++;
      stop.abort();
    });
    expect(full.stoppedEarly).toBe(false);
    expect(early.stoppedEarly).toBe(true);
    // The first event to make requests makes one per endpoint of the lab config (two).
    expect(early.requests).toBe(2);
    expect(requests).toBe(2);
    expect(early.frames).toBeLessThan(full.frames);
  });

  it('waits for the output to drain after each chunk, and reads no further when stopped meanwhile', async () => {
    const stop = new AbortController();
    let waits = 0;
    const early = await replay({
      signal: stop.signal,
      drained: () => {
        waits++;
        stop.abort(); // the reader leaves while replay waits for it
        return Promise.resolve();
      },
    });
    expect(waits).toBe(1);
    expect(early.stoppedEarly).toBe(true);
    expect(early.frames).toBeGreaterThan(0);
  });
});
