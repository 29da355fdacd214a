// The event-loop delay monitor on a real loop: a synchronous stall of 300 ms shows in the last
// minute, since start and in the largest delay since a moment, and nothing does without one.
import { afterEach, describe, expect, it } from 'vitest';
import { delayOf, LoopHealth, type LoopTick } from '../../src/daemon/loop-health.js';

const started: LoopHealth[] = [];
afterEach(() => started.splice(0).forEach((l) => l.stop()));

function stall(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // the stall itself
  }
}

/** Longer than the monitor's 10 ms resolution: its timer has run since (it runs late after a stall). */
const nextTimers = () => new Promise((r) => setTimeout(r, 25));

describe('LoopHealth', () => {
  it('a 300 ms stall is the largest delay since before it (while it ends, and after), in the last minute and since start', async () => {
    const snaps: LoopTick[] = [];
    const loop = new LoopHealth({ onTick: (s) => snaps.push(s) });
    started.push(loop);
    loop.start();
    // The monitor measures between its own timer's runs: give it a few before the stall.
    await new Promise((r) => setTimeout(r, 50));
    loop.tick();
    const quiet = loop.snapshot();
    expect(quiet.lastMinute.maxMs).toBeLessThan(100);
    expect(quiet.lastTenSeconds.maxMs).toBeLessThan(100);
    const before = Date.now();
    stall(300);
    // Before any timer ran again: the beat shows the stall still ending.
    expect(loop.maxSince(before)).toBeGreaterThanOrEqual(190);
    await nextTimers();
    loop.tick();
    const after = loop.snapshot();
    expect(after.lastMinute.maxMs).toBeGreaterThanOrEqual(250);
    expect(after.lastTenSeconds.maxMs).toBeGreaterThanOrEqual(250);
    expect(after.sinceStart.maxMs).toBeGreaterThanOrEqual(250);
    expect(loop.maxSince(before)).toBeGreaterThanOrEqual(250);
    // A moment after the stall's bucket closed sees none of it.
    expect(loop.maxSince(Date.now() + 1)).toBeLessThan(100);
    expect(snaps).toHaveLength(2);
    // What the alert and the connect cap are fed each second: the minute's and the closed second's largest delay.
    expect(snaps[0]!.lastMinuteMaxMs).toBeLessThan(100);
    expect(snaps[1]!.lastMinuteMaxMs).toBeGreaterThanOrEqual(250);
    expect(snaps[1]!.lastSecondMaxMs).toBeGreaterThanOrEqual(250);
    // Ten seconds later the stall has left the last ten seconds, not the last minute.
    for (let i = 0; i < 10; i++) loop.tick();
    expect(loop.snapshot().lastTenSeconds.maxMs).toBeLessThan(100);
    expect(loop.snapshot().lastMinute.maxMs).toBeGreaterThanOrEqual(250);
  });

  it('the 99th percentile is a nearest rank: one stall in a minute of beats is the max, not the p99; two in a hundred are', () => {
    expect(delayOf([])).toEqual({ p99Ms: 0, maxMs: 0 });
    const minute = Array.from({ length: 600 }, (_, i) => (i === 17 ? 300 : 0.5));
    expect(delayOf(minute)).toEqual({ p99Ms: 0.5, maxMs: 300 });
    const hundred = Array.from({ length: 100 }, (_, i) => (i >= 98 ? 40 + i : (i % 7) / 10));
    expect(delayOf(hundred)).toEqual({ p99Ms: 138, maxMs: 139 });
  });

  it('answers the same snapshot until the next beat or bucket, then a new one', async () => {
    const loop = new LoopHealth();
    started.push(loop);
    loop.start();
    const first = loop.snapshot();
    expect(loop.snapshot()).toBe(first);
    loop.tick();
    const second = loop.snapshot();
    expect(second).not.toBe(first);
    await new Promise((r) => setTimeout(r, 150)); // a beat of 100 ms has run
    expect(loop.snapshot()).not.toBe(second);
  });
});
