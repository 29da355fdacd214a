import { describe, expect, it } from 'vitest';
import { SLICE_MS, sliceBoundary, slicePauses } from '../../src/wa/loop-slices.js';

const busy = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until);
};

describe('sliceBoundary', () => {
  it('lets the loop take a turn within a slice of a long chain of promise-resolved work', async () => {
    let step = 0;
    let turnAt: number | null = null;
    setImmediate(() => (turnAt = step)); // I/O of other accounts, say
    const before = slicePauses();
    for (; step < 50; step++) {
      await sliceBoundary(); // a key read
      busy(2); // a device's encryption
    }
    // Without boundaries the loop would wait for all 100 ms; with them it ran within a slice or two.
    expect(turnAt).not.toBeNull();
    expect(turnAt!).toBeLessThanOrEqual(Math.ceil((2 * SLICE_MS) / 2) + 1);
    expect(slicePauses()).toBeGreaterThan(before);
  });

  it('does not pause short work', async () => {
    await new Promise((r) => setImmediate(r)); // a fresh turn
    const calls: Array<{ at: number; paused: boolean }> = [];
    const first = performance.now();
    for (let i = 0; i < 20; i++) calls.push({ paused: sliceBoundary() !== null, at: performance.now() - first });
    // Every call within a slice of the first went on at once (a preempted test process may pass a slice).
    expect(calls.filter((c) => c.at < SLICE_MS && c.paused)).toEqual([]);
    expect(calls[0]!.paused).toBe(false);
  });
});
