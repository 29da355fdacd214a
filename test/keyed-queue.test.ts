// One key's steps one after another (a failure does not stop the rest); keys side by side.
import { describe, expect, it } from 'vitest';
import { KeyedQueue } from '../src/keyed-queue.js';

function gate(): { open: () => void; wait: Promise<void> } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { open, wait };
}

describe('KeyedQueue', () => {
  it('runs a key\'s steps in order, each after the one before ended (also one that failed); another key does not wait', async () => {
    const q = new KeyedQueue();
    const log: string[] = [];
    const first = gate();
    const a1 = q.run('a', async () => (log.push('a1 start'), await first.wait, log.push('a1 end')));
    const a2 = q.run('a', async () => {
      log.push('a2');
      throw new Error('a2 failed');
    });
    const a3 = q.run('a', async () => (log.push('a3'), 3));
    await q.run('b', async () => void log.push('b1'));
    expect(log).toEqual(['a1 start', 'b1']);
    first.open();
    await a1;
    await expect(a2).rejects.toThrow('a2 failed');
    expect(await a3).toBe(3);
    expect(log).toEqual(['a1 start', 'b1', 'a1 end', 'a2', 'a3']);
  });

  it('idle and allIdle resolve only once what was asked so far has run', async () => {
    const q = new KeyedQueue();
    const g = gate();
    let done = false;
    void q.run('a', async () => (await g.wait, (done = true)));
    let idle = false;
    void q.allIdle().then(() => (idle = true));
    await Promise.resolve();
    expect(idle).toBe(false);
    g.open();
    await q.idle('a');
    expect(done).toBe(true);
    await q.allIdle();
    expect(idle).toBe(true);
    await expect(q.idle('never')).resolves.toBeUndefined();
  });

  it('drained waits for steps that queued further steps; allIdle does not', async () => {
    const q = new KeyedQueue();
    const g = gate();
    const ran: string[] = [];
    void q.run('a', async () => {
      ran.push('first');
      void q.run('b', async () => {
        await g.wait;
        ran.push('queued by the first');
        // A step queued while drained is already waiting, that takes a turn of the event loop.
        void q.run('c', async () => (await new Promise((r) => setImmediate(r)), void ran.push('queued by the second')));
      });
    });
    await q.allIdle(); // what was queued when it was asked: the first step only
    let drained = false;
    void q.drained().then(() => (drained = true));
    for (let i = 0; i < 5; i++) await Promise.resolve();
    expect(drained).toBe(false);
    g.open();
    await q.drained();
    expect(ran).toEqual(['first', 'queued by the first', 'queued by the second']);
  });
});
