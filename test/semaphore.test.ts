// The semaphore behind the cap on connection attempts and on messages built at once.
import { describe, expect, it } from 'vitest';
import { Semaphore } from '../src/semaphore.js';

describe('Semaphore', () => {
  it('lets in up to its limit, then one waiter per release, in order', async () => {
    const s = new Semaphore(2);
    const a = await s.acquire();
    await s.acquire();
    const order: number[] = [];
    const third = s.acquire().then((r) => (order.push(3), r));
    const fourth = s.acquire().then((r) => (order.push(4), r));
    expect([s.inUse, s.waiting]).toEqual([2, 2]);
    a();
    a(); // twice is harmless: one slot given back
    await third;
    expect([s.inUse, s.waiting, order]).toEqual([2, 1, [3]]);
    (await third)();
    await fourth;
    expect(order).toEqual([3, 4]);
  });

  it('an aborted wait leaves the queue and rejects with the reason; a grown limit lets waiters in', async () => {
    const s = new Semaphore(1);
    await s.acquire();
    const ac = new AbortController();
    const aborted = s.acquire(ac.signal);
    const other = s.acquire();
    ac.abort(new Error('gone'));
    await expect(aborted).rejects.toThrow('gone');
    expect(s.waiting).toBe(1);
    s.setLimit(2);
    await other;
    expect([s.inUse, s.waiting]).toEqual([2, 0]);
    await expect(s.acquire(AbortSignal.abort(new Error('early')))).rejects.toThrow('early');
    expect(() => new Semaphore(0)).toThrow(/positive integer/);
  });
});
