// Baileys gives every socket's key store a transaction context through AsyncLocalStorage. Unpatched,
// each socket created its own storage and never disabled it, and on Node < 24 every enabled
// storage is visited on every promise the process creates: a daemon got slower with every
// reconnect. The project's patch (patches/) makes all key stores share one storage. These tests
// fail on an unpatched Baileys, and check that sharing keeps key stores isolated.
import { AsyncLocalStorage } from 'node:async_hooks';
import { addTransactionCapability, type SignalDataSet, type SignalKeyStore } from '@whiskeysockets/baileys';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { baileysSharesContextStore } from '../../src/wa/context-store.js';

const log = pino({ level: 'silent' });
const TX_OPTS = { maxCommitRetries: 1, delayBetweenTriesMs: 0 };

/** A key store in memory that records every write it receives. */
function memoryStore(): SignalKeyStore & { writes: SignalDataSet[]; data: Record<string, Record<string, unknown>> } {
  const data: Record<string, Record<string, unknown>> = {};
  const writes: SignalDataSet[] = [];
  return {
    data,
    writes,
    async get(type, ids) {
      const out: Record<string, unknown> = {};
      for (const id of ids) if (data[type]?.[id] !== undefined) out[id] = data[type]![id];
      return out as never;
    },
    async set(set) {
      writes.push(set);
      for (const [type, entries] of Object.entries(set)) {
        data[type] ??= {};
        Object.assign(data[type]!, entries);
      }
    },
  };
}

const originalRun = AsyncLocalStorage.prototype.run;
afterEach(() => {
  AsyncLocalStorage.prototype.run = originalRun;
});

describe('Baileys key-store transactions', () => {
  it('use one AsyncLocalStorage however many key stores (sockets) the process has made', async () => {
    const storages = new Set<AsyncLocalStorage<unknown>>();
    AsyncLocalStorage.prototype.run = function (this: AsyncLocalStorage<unknown>, ...args: Parameters<typeof originalRun>) {
      storages.add(this);
      return originalRun.apply(this, args) as never;
    } as typeof originalRun;

    for (let i = 0; i < 50; i++) {
      const keys = addTransactionCapability(memoryStore(), log, TX_OPTS);
      await keys.transaction(async () => {
        await keys.set({ session: { [`peer${i}`]: Buffer.from([i]) } });
        await keys.get('session', [`peer${i}`]);
      }, `k${i}`);
    }
    // Unpatched: 50 storages, one per key store, each enabled for the life of the process.
    expect(storages.size).toBe(1);
    expect(baileysSharesContextStore()).toBe(true);
  });

  it('keep each key store its own transaction while sharing the storage', async () => {
    const aState = memoryStore();
    const bState = memoryStore();
    const a = addTransactionCapability(aState, log, TX_OPTS);
    const b = addTransactionCapability(bState, log, TX_OPTS);

    await a.transaction(async () => {
      expect(a.isInTransaction()).toBe(true);
      // B is not in A's transaction: its write goes straight to its own state.
      expect(b.isInTransaction()).toBe(false);
      await b.set({ session: { bob: Buffer.from('b1') } });
      expect(bState.writes).toHaveLength(1);
      // A's write is held until A's transaction commits.
      await a.set({ session: { alice: Buffer.from('a1') } });
      expect(aState.writes).toHaveLength(0);
      expect(await a.get('session', ['alice'])).toHaveProperty('alice');

      // A transaction of B inside A's: B's own context, committed when B's ends, not A's.
      await b.transaction(async () => {
        expect(b.isInTransaction()).toBe(true);
        await b.set({ session: { bob2: Buffer.from('b2') } });
        expect(bState.writes).toHaveLength(1);
        expect(await b.get('session', ['alice'])).toEqual({});
      }, 'b');
      expect(bState.writes).toHaveLength(2);
      expect(aState.writes).toHaveLength(0);
      expect(a.isInTransaction()).toBe(true);
    }, 'a');

    expect(aState.writes).toHaveLength(1);
    expect(Object.keys(aState.data.session!)).toEqual(['alice']);
    expect(Object.keys(bState.data.session!).sort()).toEqual(['bob', 'bob2']);
    expect(a.isInTransaction()).toBe(false);
  });

  it('run concurrent transactions of different key stores without mixing their writes', async () => {
    const states = Array.from({ length: 8 }, () => memoryStore());
    const stores = states.map((s) => addTransactionCapability(s, log, TX_OPTS));
    await Promise.all(
      stores.map((keys, i) =>
        keys.transaction(async () => {
          for (let j = 0; j < 5; j++) {
            await new Promise((r) => setImmediate(r));
            await keys.set({ session: { [`s${i}-${j}`]: Buffer.from([j]) } });
          }
        }, 'same-key'),
      ),
    );
    states.forEach((s, i) => {
      expect(s.writes).toHaveLength(1);
      expect(Object.keys(s.data.session!)).toEqual([0, 1, 2, 3, 4].map((j) => `s${i}-${j}`));
    });
  });
});
