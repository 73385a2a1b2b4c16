/**
 * A process holding one PBX's standby lease (bench/fleet.ts kills it -9 and times the takeover):
 * argv: URL PBX-NAME TAKEOVER-SECONDS. Prints `held` once it holds the lease, then waits.
 */
import pino from 'pino';
import { holdStandbyLease } from '../src/fleet/lease.js';

const [url, pbxName, seconds] = process.argv.slice(2);
const lease = holdStandbyLease({ url: url!, pbxName: pbxName!, takeoverSeconds: Number(seconds), log: pino({ level: 'silent' }) });
await lease.acquired;
process.stdout.write('held\n');
setInterval(() => undefined, 60_000);
