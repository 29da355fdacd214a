// The lease keeper's own rules, on a fake store and a fake clock (the store's SQL is tested on a
// real server in leases.test.ts): callbacks that throw never stop fencing, a lease answered too late
// is not used, a hand-over that failed never releases, a slow hand-over does not hold renewals up,
// a renewal that comes back after its lease was fenced gives it back, and stopping is bounded when
// the store hangs.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LeaseKeeper, fairShare, pastMargin, type LeaseKeeperOptions } from '../../src/cluster/lease-keeper.js';
import type { HeldLease } from '../../src/cluster/lease-store.js';

const TTL = 1600;
const RENEW = 300;
const MARGIN = 400;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});

const wait = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const never = () => new Promise<never>(() => undefined);

/** A store in memory; `mode` makes every call fail or hang, as an unreachable database does. */
function fakeStore(o: { accounts: string[]; live?: number; acquireDelayMs?: number; renewDelayMs?: number }) {
  const s = {
    mode: 'ok' as 'ok' | 'fail' | 'hang',
    live: o.live ?? 1,
    free: [...o.accounts],
    epoch: 0,
    released: [] as string[],
    renewals: 0,
    async gate() {
      if (s.mode === 'fail') throw new Error('store unreachable');
      if (s.mode === 'hang') await never();
    },
    register: async () => s.gate(),
    heartbeat: async () => (await s.gate(), { liveDaemons: s.live, accounts: o.accounts.length, rank: 0 }),
    /** Free accounts that have stayed free long enough to be taken beyond a fair share. */
    orphans: [] as string[],
    acquire: async (_owner: string, limit: number, _ttl?: number, _known?: readonly string[], freeForMs = 0): Promise<HeldLease[]> => {
      await s.gate();
      if (freeForMs > 0) return s.orphans.splice(0, limit).map((account) => ({ account, epoch: ++s.epoch }));
      const got = s.free.splice(0, limit).map((account) => ({ account, epoch: ++s.epoch }));
      if (o.acquireDelayMs) await wait(o.acquireDelayMs);
      return got;
    },
    renew: async (_owner: string, held: readonly HeldLease[]) => {
      await s.gate();
      s.renewals++;
      if (o.renewDelayMs) await wait(o.renewDelayMs);
      return new Set(held.map((h) => h.account));
    },
    release: async (_owner: string, l: HeldLease) => {
      s.released.push(l.account);
      return true;
    },
    leave: async () => undefined,
  };
  return s;
}

function keeper(store: ReturnType<typeof fakeStore>, o: Partial<LeaseKeeperOptions> = {}) {
  const errors: string[] = [];
  const k = new LeaseKeeper({
    store,
    me: { id: 'me', host: 'h', pid: 1, socket: null },
    ttlMs: TTL,
    renewEveryMs: RENEW,
    fenceMarginMs: MARGIN,
    accounts: () => ['a', 'b', 'c', 'd'],
    onAcquired: () => undefined,
    onLost: () => undefined,
    onHandover: async () => undefined,
    onCallbackError: (err, cb, account) => errors.push(`${cb} ${account}: ${err.message}`),
    now: () => Date.now(),
    random: () => 0.5,
    ...o,
  });
  return { k, errors };
}

describe('LeaseKeeper', () => {
  it('an onLost that throws for one account does not keep the other from being fenced', async () => {
    const store = fakeStore({ accounts: ['a', 'b'] });
    const running = new Set<string>();
    const { k, errors } = keeper(store, {
      onAcquired: (l) => void running.add(l.account),
      onLost: (a) => {
        running.delete(a);
        if (a === 'a') throw new Error('stop threw');
      },
    });
    await k.start();
    expect([...running].sort()).toEqual(['a', 'b']);
    store.mode = 'fail';
    await vi.advanceTimersByTimeAsync(TTL);
    expect([...running]).toEqual([]);
    expect(errors).toEqual(['onLost a: stop threw']);
  });

  it('a fence says how late it ran against its margin: on time 0 ms, after a stall the stall', async () => {
    const fenced = async (stallMs: number) => {
      const store = fakeStore({ accounts: ['a', 'b'] });
      let stall = 0;
      const lost: Array<[string, string, number | undefined, number | undefined]> = [];
      const { k } = keeper(store, { now: () => Date.now() + stall, onLost: (a, reason, f) => void lost.push([a, reason, f?.lateMs, f?.marginMs]) });
      await k.start();
      store.mode = 'hang';
      // The loop stalls: the fence timer fires at its time on the timer clock, stallMs late on the keeper's.
      stall = stallMs;
      await vi.advanceTimersByTimeAsync(TTL);
      return lost.sort();
    };
    expect(await fenced(0)).toEqual([
      ['a', 'fenced', 0, MARGIN],
      ['b', 'fenced', 0, MARGIN],
    ]);
    expect(await fenced(700)).toEqual([
      ['a', 'fenced', 700, MARGIN],
      ['b', 'fenced', 700, MARGIN],
    ]);
    // Late by the margin or more: the lease may have expired first, which the daemon reports.
    expect([pastMargin(undefined), pastMargin({ lateMs: MARGIN - 1, marginMs: MARGIN }), pastMargin({ lateMs: MARGIN, marginMs: MARGIN })]).toEqual([false, false, true]);
  });

  it('an onAcquired that throws gives that lease back, and the others are still fenced', async () => {
    const store = fakeStore({ accounts: ['a', 'b'] });
    const running = new Set<string>();
    const { k, errors } = keeper(store, {
      onAcquired: (l) => {
        if (l.account === 'b') throw new Error('start failed');
        running.add(l.account);
      },
      onLost: (a) => void running.delete(a),
    });
    await k.start();
    expect(k.held().map((h) => h.account)).toEqual(['a']);
    expect(store.released).toEqual(['b']);
    store.mode = 'fail';
    await vi.advanceTimersByTimeAsync(TTL);
    expect([...running]).toEqual([]);
    expect(errors).toEqual(['onAcquired b: start failed']);
  });

  it('an account removed from the config is handed over at the next period (socket closed, then the lease released)', async () => {
    const store = fakeStore({ accounts: ['a', 'b'] });
    let known = ['a', 'b'];
    const handed: string[] = [];
    const { k } = keeper(store, { accounts: () => known, onHandover: async (a) => void handed.push(a) });
    await k.start();
    expect(k.held().map((h) => h.account).sort()).toEqual(['a', 'b']);
    known = ['a'];
    await k.runNow();
    await vi.advanceTimersByTimeAsync(0);
    expect(handed).toEqual(['b']);
    expect(store.released).toEqual(['b']);
    expect(k.held().map((h) => h.account)).toEqual(['a']);
  });

  it('at its share a daemon takes an account that stayed free (no daemon below its share knows it), and hands over another one, not it', async () => {
    const store = fakeStore({ accounts: ['a', 'b', 'c', 'd'], live: 2 }); // share 2
    const handed: string[] = [];
    const { k } = keeper(store, { accounts: () => ['a', 'b', 'c', 'd', 'x'], onHandover: async (a) => void handed.push(a) });
    await k.start();
    expect(k.held().map((h) => h.account)).toEqual(['a', 'b']);
    store.orphans.push('x'); // in this daemon's config only
    await k.runNow();
    expect(k.held().map((h) => h.account).sort()).toEqual(['a', 'b', 'x']);
    await k.runNow(); // now above its share by one: a non-orphan goes
    await vi.advanceTimersByTimeAsync(0);
    expect(handed).toEqual(['a']);
    expect(k.held().map((h) => h.account).sort()).toEqual(['b', 'x']);
  });

  it('a lease answered after it could have expired is given back, not used', async () => {
    const store = fakeStore({ accounts: ['a'], acquireDelayMs: TTL - MARGIN });
    const started: string[] = [];
    const { k } = keeper(store, { onAcquired: (l) => void started.push(l.account) });
    const first = k.start();
    await vi.advanceTimersByTimeAsync(TTL);
    await first;
    expect(started).toEqual([]);
    expect(store.released).toEqual(['a']);
  });

  it('a hand-over that failed never releases the lease (the socket may be open): the account is stopped and the lease left to expire', async () => {
    const store = fakeStore({ accounts: ['a'] });
    const lost: string[] = [];
    const { k, errors } = keeper(store, {
      onHandover: async () => {
        throw new Error('close timed out');
      },
      onLost: (a, why) => void lost.push(`${a} ${why}`),
    });
    await k.start();
    await k.stop();
    expect(store.released).toEqual([]);
    expect(lost).toEqual(['a handover failed']);
    expect(errors).toEqual(['onHandover a: close timed out']);
  });

  it('a slow hand-over of the surplus does not hold the other leases renewals up', async () => {
    const store = fakeStore({ accounts: ['a', 'b', 'c', 'd'] });
    const lost: string[] = [];
    const { k } = keeper(store, { onLost: (a, why) => void lost.push(`${a} ${why}`), onHandover: () => wait(3 * TTL) });
    await k.start();
    expect(k.held()).toHaveLength(4);
    store.live = 2; // a daemon joined: the share is 2, two accounts are handed over
    const before = store.renewals;
    await vi.advanceTimersByTimeAsync(2 * TTL);
    expect(lost).toEqual([]);
    expect(store.renewals - before).toBeGreaterThanOrEqual(5);
    await vi.advanceTimersByTimeAsync(2 * TTL);
    expect(k.held()).toHaveLength(2);
    expect(store.released).toHaveLength(2);
  });

  it('a renewal that comes back after its lease was fenced gives the lease back (a fence margin later) instead of keeping it dark', async () => {
    const store = fakeStore({ accounts: ['a'] });
    const lost: string[] = [];
    const { k } = keeper(store, { onLost: (a, why) => void lost.push(`${a} ${why}`) });
    await k.start();
    store.mode = 'hang';
    await vi.advanceTimersByTimeAsync(TTL);
    expect(lost).toEqual(['a fenced']);
    // The store answers again; the hung renewal is gone with its connection, a new period renews nothing held.
    store.mode = 'ok';
    const late = fakeStore({ accounts: ['a'], renewDelayMs: TTL });
    const second = keeper(late, { onLost: (a, why) => void lost.push(`second ${a} ${why}`) });
    await second.k.start();
    await vi.advanceTimersByTimeAsync(RENEW * 1.2); // a renewal is on its way, answered only after the fence
    await vi.advanceTimersByTimeAsync(TTL);
    expect(lost).toContain('second a fenced');
    // Given back once the fence margin (the time its socket had to close) has passed since.
    expect(late.released).toEqual([]);
    await vi.advanceTimersByTimeAsync(MARGIN);
    expect(late.released).toEqual(['a']);
  });

  it('stopping with a hung store ends within one TTL; the account, which could not be handed over, was fenced meanwhile', async () => {
    const store = fakeStore({ accounts: ['a'] });
    const handed: string[] = [];
    const lost: string[] = [];
    const { k } = keeper(store, { onHandover: async (a) => void handed.push(a), onLost: (a, why) => void lost.push(`${a} ${why}`) });
    await k.start();
    store.mode = 'hang';
    await vi.advanceTimersByTimeAsync(RENEW * 2); // a period is stuck on the store
    let stopped = false;
    void k.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(TTL + 1);
    expect(stopped).toBe(true);
    expect(lost).toEqual(['a fenced']);
    expect([handed, store.released]).toEqual([[], []]);
  });
});

describe('fairShare', () => {
  // Before: every daemon aimed at ceil(accounts / live), so 4 accounts on 3 daemons could settle
  // at 2, 2, 0 with no daemon above its share to hand one over.
  it('gives the live daemons, in id order, shares that add up to the accounts and differ by at most one', () => {
    for (const [accounts, live] of [[4, 3], [30, 3], [100, 3], [5, 7], [0, 2], [1, 1]] as const) {
      const shares = Array.from({ length: live }, (_, rank) => fairShare(accounts, live, rank));
      expect(shares.reduce((a, b) => a + b, 0)).toBe(accounts);
      expect(Math.max(...shares) - Math.min(...shares)).toBeLessThanOrEqual(1);
    }
    expect([0, 1, 2].map((rank) => fairShare(4, 3, rank))).toEqual([2, 1, 1]);
  });
});
