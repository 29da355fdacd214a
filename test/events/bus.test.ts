import { describe, expect, it } from 'vitest';
import { EventBus, matchesFilter, type BusEvent } from '../../src/events/bus.js';

const ev = (e: Partial<BusEvent> & { type: string }): BusEvent => ({ at: '2026-01-01T00:00:00.000Z', seq: 1, ...e });

describe('matchesFilter', () => {
  it.each([
    [{}, ev({ type: 'x' }), true],
    [{ accounts: ['a'] }, ev({ type: 'x', account: 'a' }), true],
    [{ accounts: ['a'] }, ev({ type: 'x', account: 'b' }), false],
    [{ accounts: ['a'] }, ev({ type: 'daemon.started' }), false],
    [{ types: ['account.*'] }, ev({ type: 'account.state' }), true],
    [{ types: ['account.*'] }, ev({ type: 'accounts' }), false],
    [{ types: ['account.state'] }, ev({ type: 'account.statex' }), false],
    [{ requestId: 'r1' }, ev({ type: 'x', requestId: 'r1' }), true],
    [{ requestId: 'r1' }, ev({ type: 'x', requestId: 'r2' }), false],
    [{ requestId: 'r1' }, ev({ type: 'x' }), false],
    [{ accounts: ['a', 'b'], types: ['t'] }, ev({ type: 't', account: 'b' }), true],
  ])('filter %j on %j -> %s', (filter, event, expected) => {
    expect(matchesFilter(filter, event)).toBe(expected);
  });
});

describe('EventBus', () => {
  it('stamps time and a growing sequence, and delivers only matching events', () => {
    const bus = new EventBus({ now: () => new Date('2026-11-21T10:00:00Z') });
    const a: BusEvent[] = [];
    const b: BusEvent[] = [];
    bus.subscribe({ accounts: ['a'] }, (e) => a.push(e));
    const unsubscribe = bus.subscribe({ types: ['daemon.*'] }, (e) => b.push(e));
    bus.publish({ type: 'account.state', account: 'a' });
    bus.publish({ type: 'daemon.started' });
    unsubscribe();
    bus.publish({ type: 'daemon.stopping' });
    expect(a).toEqual([{ type: 'account.state', account: 'a', at: '2026-11-21T10:00:00.000Z', seq: 1 }]);
    expect(b.map((e) => [e.type, e.seq])).toEqual([['daemon.started', 2]]);
    expect(bus.subscriberCount).toBe(1);
  });

  it('keeps delivering to others when one listener throws', () => {
    const errors: unknown[] = [];
    const bus = new EventBus({ onListenerError: (err) => errors.push(err) });
    const got: string[] = [];
    bus.subscribe({}, () => {
      throw new Error('bad listener');
    });
    bus.subscribe({}, (e) => got.push(e.type));
    bus.publish({ type: 'x' });
    expect(got).toEqual(['x']);
    expect(errors).toHaveLength(1);
  });
});
