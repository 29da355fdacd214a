import { describe, expect, it } from 'vitest';
import { backoffCeiling, backoffDelay } from '../../src/accounts/backoff.js';
import { actionForClose } from '../../src/accounts/close-policy.js';
import { FlapDetector, regularInterval } from '../../src/accounts/flap-detector.js';

describe('actionForClose (the close-code table)', () => {
  it.each([
    [515, 'restartRequired', { kind: 'reconnect_now' }],
    [408, 'connectionLost', { kind: 'backoff' }],
    [428, 'connectionClosed', { kind: 'backoff' }],
    [503, 'unavailableService', { kind: 'backoff' }],
    [500, 'badSession', { kind: 'backoff' }],
    [null, 'stale', { kind: 'backoff' }],
    [null, 'watchdog', { kind: 'backoff' }],
    [503, 'upgrade_refused', { kind: 'backoff' }],
    [401, 'loggedOut', { kind: 'stop', state: 'needs_pairing' }],
    [411, 'multideviceMismatch', { kind: 'stop', state: 'needs_pairing' }],
    [440, 'connectionReplaced', { kind: 'stop', state: 'conflict' }],
    [403, 'forbidden', { kind: 'stop', state: 'forbidden' }],
    [499, 'unknown', { kind: 'backoff' }],
  ])('%s %s -> %j', (code, name, action) => {
    expect(actionForClose({ code, name, message: '' })).toEqual(action);
  });
  it('a refused upgrade with 401 is a transport failure, not a logout', () => {
    expect(actionForClose({ code: 401, name: 'upgrade_refused', message: '' })).toEqual({ kind: 'backoff' });
  });
});

describe('backoff', () => {
  const policy = { initialMs: 1000, maxMs: 30_000, factor: 2 };
  it('grows the ceiling exponentially up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffCeiling(policy, n))).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  });
  it('draws the delay uniformly below the ceiling (full jitter)', () => {
    expect(backoffDelay(policy, 3, () => 0)).toBe(0);
    expect(backoffDelay(policy, 3, () => 0.5)).toBe(2000);
    expect(backoffDelay(policy, 3, () => 0.999999)).toBe(3999);
    expect(backoffDelay(policy, 50, () => 0.5)).toBe(15000);
  });
});

describe('FlapDetector', () => {
  const min = 60_000;
  it('reports once when N closes fall within the window, with the regular interval', () => {
    const f = new FlapDetector({ closes: 4, windowMs: 60 * min });
    expect(f.recordClose(0, 408)).toBeNull();
    expect(f.recordClose(15 * min, 408)).toBeNull();
    expect(f.recordClose(30 * min + 2000, 408)).toBeNull();
    expect(f.recordClose(45 * min - 1000, 408)).toEqual({
      closes: 4,
      windowMs: 60 * min,
      regularIntervalMs: 15 * min,
      codes: [408, 408, 408, 408],
    });
    expect(f.recordClose(46 * min, 428)).toBeNull(); // not once per close
    expect(f.flapping).toBe(true);
  });

  it('does not call irregular closes a metronome', () => {
    const f = new FlapDetector({ closes: 4, windowMs: 60 * min });
    [0, 1 * min, 9 * min, 10 * min].slice(0, 3).forEach((t) => f.recordClose(t, 428));
    expect(f.recordClose(10 * min, 428)?.regularIntervalMs).toBeNull();
  });

  it('forgets closes older than the window', () => {
    const f = new FlapDetector({ closes: 3, windowMs: 10 * min });
    f.recordClose(0, 408);
    f.recordClose(5 * min, 408);
    expect(f.recordClose(16 * min, 408)).toBeNull();
  });

  it('clears after staying open longer than the window, and can report again', () => {
    const f = new FlapDetector({ closes: 2, windowMs: 10 * min });
    f.recordClose(0, 408);
    expect(f.recordClose(1000, 408)).not.toBeNull();
    expect(f.recordStable(2000, 5 * min)).toBe(false);
    expect(f.recordStable(2000, 11 * min)).toBe(true);
    expect(f.flapping).toBe(false);
    f.recordClose(20 * min, 408);
    expect(f.recordClose(20 * min + 1, 408)).not.toBeNull();
  });

  it('regularInterval needs at least two gaps within 10 % of the median', () => {
    expect(regularInterval([0, 100])).toBeNull();
    expect(regularInterval([0, 100, 205])).toBe(105);
    expect(regularInterval([0, 100, 250])).toBeNull();
  });
});
