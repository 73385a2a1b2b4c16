import { describe, expect, it } from 'vitest';
import { DEFAULT_ROLES, RoleBook } from '../src/core/roles.js';

// Issue #15 (memory): every channel of a phone or trunk shares one frozen Party, not one each;
// a PBX naming endpoints without end cannot grow the book past its bound.
describe('RoleBook: one Party per endpoint', () => {
  it('gives every channel of an endpoint the same frozen Party, classified as before', () => {
    const book = new RoleBook({ ...DEFAULT_ROLES, trunkPattern: '^trunk' });
    const phone = book.partyOf('202');
    expect(phone).toEqual({ kind: 'extension', id: '202' });
    expect(book.partyOf('202')).toBe(phone);
    expect(Object.isFrozen(phone)).toBe(true);
    expect(book.partyOf('trunk')).toEqual({ kind: 'trunk', id: 'trunk' });
    expect(book.partyOf('trunk')).not.toBe(phone);
  });

  it('past 10,000 endpoints, classifies each channel afresh instead of keeping it', () => {
    const book = new RoleBook(DEFAULT_ROLES);
    for (let i = 0; i < 10_000; i++) book.partyOf(`ep-${i}`);
    expect(book.partyOf('ep-0')).toBe(book.partyOf('ep-0'));
    const late = book.partyOf('1001');
    expect(late).toEqual({ kind: 'extension', id: '1001' });
    expect(book.partyOf('1001')).not.toBe(late);
  });
});
