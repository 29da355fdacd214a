// The per-connection group metadata cache behind Baileys' cachedGroupMetadata.
import { describe, expect, it } from 'vitest';
import { GroupMetadataCache } from '../../src/wa/group-metadata-cache.js';

type Meta = { id: string; subject: string; participants: string[] };
const G = '120363000000000001@g.us';
const meta = (subject: string, participants = ['a@lid', 'b@lid']): Meta => ({ id: G, subject, participants });

/** A fetch that counts its calls and answers what the test resolves. */
function deferredFetch(): { fetch: () => Promise<Meta>; calls: () => number; answer: (m: Meta) => void; fail: (e: Error) => void } {
  let calls = 0;
  let settle: { resolve: (m: Meta) => void; reject: (e: Error) => void } | null = null;
  return {
    fetch: () => {
      calls += 1;
      return new Promise<Meta>((resolve, reject) => (settle = { resolve, reject }));
    },
    calls: () => calls,
    answer: (m) => settle!.resolve(m),
    fail: (e) => settle!.reject(e),
  };
}

describe('GroupMetadataCache', () => {
  it('asks once for concurrent sends, then answers from what it kept', async () => {
    const cache = new GroupMetadataCache<Meta>({ ttlMs: 60_000, maxEntries: 10 });
    const f = deferredFetch();
    const a = cache.get(G, f.fetch);
    const b = cache.get(G, f.fetch);
    f.answer(meta('one'));
    expect(await a).toEqual(meta('one'));
    expect(await b).toEqual(meta('one'));
    expect(await cache.get(G, f.fetch)).toEqual(meta('one'));
    expect(f.calls()).toBe(1);
  });

  it('keeps no failed answer: the next send asks again', async () => {
    const cache = new GroupMetadataCache<Meta>({ ttlMs: 60_000, maxEntries: 10 });
    const f = deferredFetch();
    const a = cache.get(G, f.fetch);
    f.fail(new Error('forbidden'));
    await expect(a).rejects.toThrow('forbidden');
    const b = cache.get(G, f.fetch);
    f.answer(meta('ok'));
    expect(await b).toEqual(meta('ok'));
    expect(f.calls()).toBe(2);
  });

  it('asks again once the entry is older than ttlMs', async () => {
    let now = 1_000;
    const cache = new GroupMetadataCache<Meta>({ ttlMs: 500, maxEntries: 10, now: () => now });
    cache.put(G, meta('old'));
    const f = deferredFetch();
    now += 499;
    expect(await cache.get(G, f.fetch)).toEqual(meta('old'));
    now += 1;
    const fresh = cache.get(G, f.fetch);
    f.answer(meta('new'));
    expect(await fresh).toEqual(meta('new'));
    expect(f.calls()).toBe(1);
  });

  it('forget (members changed) makes the next send ask, and an answer already in flight is not kept', async () => {
    const cache = new GroupMetadataCache<Meta>({ ttlMs: 60_000, maxEntries: 10 });
    cache.put(G, meta('kept'));
    cache.forget(G);
    expect(cache.size).toBe(0);
    const f = deferredFetch();
    const inFlight = cache.get(G, f.fetch);
    cache.forget(G); // a change seen while the server was answering: that answer may predate it
    f.answer(meta('stale', ['a@lid']));
    expect(await inFlight).toEqual(meta('stale', ['a@lid']));
    expect(cache.size).toBe(0);
    const next = cache.get(G, f.fetch);
    f.answer(meta('current', ['a@lid', 'c@lid']));
    expect(await next).toEqual(meta('current', ['a@lid', 'c@lid']));
    expect(f.calls()).toBe(2);
  });

  it('merges a partial update into a kept entry and keeps at most maxEntries groups', async () => {
    const cache = new GroupMetadataCache<Meta>({ ttlMs: 60_000, maxEntries: 2 });
    cache.put(G, meta('before'));
    cache.merge(G, { subject: 'after' });
    const f = deferredFetch();
    expect(await cache.get(G, f.fetch)).toEqual(meta('after'));
    cache.merge('120363000000000009@g.us', { subject: 'unknown group' }); // nothing kept: nothing to merge into
    expect(cache.size).toBe(1);
    cache.put('120363000000000002@g.us', meta('two'));
    cache.put('120363000000000003@g.us', meta('three'));
    expect(cache.size).toBe(2);
    const refetch = cache.get(G, f.fetch); // the oldest went first
    f.answer(meta('asked'));
    expect(await refetch).toEqual(meta('asked'));
    expect(f.calls()).toBe(1);
  });
});
