import { describe, expect, it } from 'vitest';
import { EventNames } from '../src/ami/event-names.js';

/** Issue #15: the framer finds each frame's event name by its bytes instead of decoding it every time. */
describe('EventNames', () => {
  it('decodes a name once and hands back that same string for the same bytes', () => {
    const names = new EventNames();
    const data = Buffer.from('xxVarSetyyVarSet');
    const first = names.nameOf(data, 2, 8);
    expect(first).toBe('VarSet');
    expect(names.nameOf(data, 10, 16)).toBe(first);
    expect(names.size).toBe(1);
  });

  it('tells apart names that differ in one byte, in length, or only in bytes above 0x7f (latin1)', () => {
    const names = new EventNames();
    const words = ['Hangup', 'Hangu', 'HangupRequest', 'hangup', 'Hangup\xe9', 'Hangup\xe8', ''];
    const buffers = words.map((w) => Buffer.from(w, 'latin1'));
    for (let round = 0; round < 2; round++) {
      expect(buffers.map((b) => names.nameOf(b, 0, b.length))).toEqual(words);
    }
    expect(names.size).toBe(words.length);
  });

  it('stops storing at 3/4 of its slots and still names every frame right', () => {
    const names = new EventNames(16);
    const words = Array.from({ length: 40 }, (_, i) => `Event${i}`);
    for (let round = 0; round < 3; round++) {
      for (const w of words) expect(names.nameOf(Buffer.from(w), 0, w.length)).toBe(w);
    }
    expect(names.size).toBe(12);
  });
});
