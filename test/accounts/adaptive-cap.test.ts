// The cap on connection attempts in flight follows the event loop: halved for a late second,
// grown by half for a timely one, between 1 and the ceiling, and applied to the gate.
import { describe, expect, it } from 'vitest';
import { AdaptiveCap, LOOP_DELAY_TARGET_MS, loopDelayTargetMs } from '../../src/accounts/adaptive-cap.js';
import { Semaphore } from '../../src/semaphore.js';

describe('AdaptiveCap', () => {
  it('halves on late seconds down to 1, grows back on timely ones up to the ceiling, and the gate lets that many in', async () => {
    const gate = new Semaphore(32);
    const applied: number[] = [];
    const cap = new AdaptiveCap({ ceiling: 32, apply: (n) => (applied.push(n), gate.setLimit(n)) });
    expect(cap.cap).toBe(32);
    for (let i = 0; i < 7; i++) cap.observe(LOOP_DELAY_TARGET_MS + 1);
    expect(cap.cap).toBe(1);
    expect(applied).toEqual([32, 16, 8, 4, 2, 1]);
    // With the cap at 1, a second attempt waits for the first.
    const first = await gate.acquire();
    let second = false;
    void gate.acquire().then(() => (second = true));
    for (let i = 0; i < 5; i++) await Promise.resolve();
    expect(second).toBe(false);
    cap.observe(LOOP_DELAY_TARGET_MS);
    for (let i = 0; i < 5; i++) await Promise.resolve();
    expect(second).toBe(true); // the cap grew to 2
    for (let i = 0; i < 20; i++) cap.observe(5);
    expect(cap.cap).toBe(32);
    first();
  });

  it('a lower ceiling (a reload) caps it at once; it never grows past it', () => {
    const cap = new AdaptiveCap({ ceiling: 16, apply: () => {} });
    cap.setCeiling(4);
    expect(cap.cap).toBe(4);
    for (let i = 0; i < 5; i++) cap.observe(0);
    expect(cap.cap).toBe(4);
    cap.setCeiling(10);
    cap.observe(0);
    expect(cap.cap).toBe(6);
  });

  it('holds the loop to a quarter of the shortest probe deadline, between 100 ms and 1 s', () => {
    expect(loopDelayTargetMs(null)).toBe(LOOP_DELAY_TARGET_MS);
    expect(loopDelayTargetMs(3000)).toBe(750); // the default deadline
    expect(loopDelayTargetMs(600)).toBe(150);
    expect(loopDelayTargetMs(200)).toBe(100);
    expect(loopDelayTargetMs(60_000)).toBe(1000);
    const cap = new AdaptiveCap({ ceiling: 8, apply: () => {} });
    cap.observe(400, loopDelayTargetMs(3000)); // late for 100 ms, timely for 750
    expect(cap.cap).toBe(8);
    cap.observe(400, loopDelayTargetMs(600));
    expect(cap.cap).toBe(4);
  });
});
