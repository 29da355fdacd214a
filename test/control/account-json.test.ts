// The account lists' entries are kept as bytes between requests: each must still show the
// account's JSON and counts of this request, and the kept bytes of removed accounts must go.
import { describe, expect, it } from 'vitest';
import { AccountEntries, type AccountCounts, type AccountJson } from '../../src/control/account-json.js';

const account = (id: string, fields: Record<string, unknown> = {}, origin?: string): AccountJson => ({
  id,
  state: 'open',
  ...(origin ? { origin } : {}),
  json: JSON.stringify({ id, state: 'open', ...fields }),
});
// Through array(), the joined buffer answered again while nothing changed: every case below also checks it is not answered stale.
const parse = (entries: AccountEntries, list: AccountJson[], counts: AccountCounts = {}) => JSON.parse(entries.array(list, counts).toString()) as Array<Record<string, unknown>>;

describe('AccountEntries', () => {
  it('joins each account with its origin and counts, zeros where an account has none', () => {
    const entries = new AccountEntries();
    const counts: AccountCounts = { queued: new Map([['a', { queued: 2, held: 1 }]]), received: new Map([['b', { ok: 5, undecryptable: 1 }]]) };
    expect(parse(entries, [account('a', { n: 1 }, 'config'), account('b')], counts)).toEqual([
      { id: 'a', state: 'open', n: 1, origin: 'config', queue: { queued: 2, sending: 0, unknown: 0, held: 1 }, inbox: { messages: 0, undecryptable: 0, ignored: 0 } },
      { id: 'b', state: 'open', queue: { queued: 0, sending: 0, unknown: 0, held: 0 }, inbox: { messages: 5, undecryptable: 1, ignored: 0 } },
    ]);
    expect(parse(entries, [])).toEqual([]);
    expect(parse(entries, [{ id: 'c', state: 'open', json: '{}' }], { queued: new Map() })).toEqual([{ queue: { queued: 0, sending: 0, unknown: 0, held: 0 } }]);
  });

  it('answers the same joined buffer while no entry changed, and a new one when one did, or the list did', () => {
    const entries = new AccountEntries();
    const list = [account('a', { n: 1 }), account('b', { n: 2 })];
    const counts: AccountCounts = { queued: new Map([['a', { queued: 1 }]]) };
    const first = entries.array(list, counts);
    expect(entries.array([...list], { queued: new Map([['a', { queued: 1 }]]) })).toBe(first);
    const moved = entries.array(list, { queued: new Map([['a', { queued: 2 }]]) });
    expect(moved).not.toBe(first);
    expect(JSON.parse(moved.toString())[0].queue.queued).toBe(2);
    expect(entries.array(list.slice(0, 1), counts).toString()).toBe(`[${JSON.parse(first.toString()).slice(0, 1).map((x: unknown) => JSON.stringify(x)).join(',')}]`);
    expect(entries.array([list[1]!, list[0]!], counts)).not.toBe(first);
  });

  it('shows a changed JSON, changed counts, a changed origin and counts no longer shown, on the next request', () => {
    const entries = new AccountEntries();
    const a1 = account('a', { probes: 1 });
    expect(parse(entries, [a1], { queued: new Map([['a', { queued: 1 }]]) })[0]).toMatchObject({ probes: 1, queue: { queued: 1 } });
    // Same JSON, a count moved: the kept bytes must not be reused.
    expect(parse(entries, [a1], { queued: new Map([['a', { sending: 1 }]]) })[0]).toMatchObject({ probes: 1, queue: { queued: 0, sending: 1 } });
    // A new JSON, same counts.
    expect(parse(entries, [account('a', { probes: 2 })], { queued: new Map([['a', { sending: 1 }]]) })[0]).toMatchObject({ probes: 2, queue: { sending: 1 } });
    // Counts not shown any more (a daemon without an outbox in a route test), and an origin added.
    const plain = parse(entries, [account('a', { probes: 2 }, 'runtime')])[0]!;
    expect(plain).toEqual({ id: 'a', state: 'open', probes: 2, origin: 'runtime' });
  });

  it('gives the same bytes for an unchanged account, and forgets accounts that are gone', () => {
    const entries = new AccountEntries();
    const many = Array.from({ length: 100 }, (_, i) => account(`a${i}`));
    const first = entries.arrayParts(many, {});
    const second = entries.arrayParts(many, {});
    expect(second[1]).toBe(first[1]);
    // 100 new accounts and the old ones removed, many times: the kept entries stay bounded.
    for (let round = 1; round <= 20; round++) entries.arrayParts(Array.from({ length: 100 }, (_, i) => account(`r${round}-${i}`)), {});
    const again = entries.arrayParts(many, {});
    expect(again[1]).not.toBe(first[1]);
    expect(Buffer.concat(again).toString()).toBe(Buffer.concat(first).toString());
  });
});
