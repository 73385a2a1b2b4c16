import { describe, expect, it } from 'vitest';
import { isUtcZone, localTime } from '../src/emit/time.js';

/** What the renderers got from Intl before UTC was read without it (issue #14 item 8). */
function viaIntl(ms: number, timeZone: string): Record<string, string> {
  const f = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  });
  const parts: Record<string, string> = {};
  for (const p of f.formatToParts(new Date(ms))) if (p.type !== 'literal') parts[p.type] = p.value;
  return parts;
}

describe('local time of a call', () => {
  it('UTC without Intl gives the fields Intl gives, over leap days, midnights and year ends', () => {
    const instants = [0, Date.UTC(2024, 1, 29, 0, 0, 0), Date.UTC(2024, 11, 31, 23, 59, 59), Date.UTC(2026, 0, 1, 9, 5, 7), 1795301990_123];
    // A bounded walk of prime strides through 2000–2040.
    for (let t = Date.UTC(2000, 0, 1), i = 0; i < 2_000; i++, t += 631_133_777) instants.push(t);
    for (const zone of ['UTC', 'Etc/UTC']) {
      expect(isUtcZone(zone)).toBe(true);
      for (const ms of instants) expect({ zone, ms, ...localTime(ms, zone) }).toEqual({ zone, ms, ...viaIntl(ms, zone) });
    }
  });

  it('other zones still go through Intl', () => {
    expect(isUtcZone('Europe/Berlin')).toBe(false);
    const ms = Date.UTC(2026, 6, 1, 12, 0, 0);
    expect(localTime(ms, 'Europe/Berlin')).toEqual(viaIntl(ms, 'Europe/Berlin'));
    expect(localTime(ms, 'Europe/Berlin').hour).toBe('14');
  });
});
