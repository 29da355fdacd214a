// Attacks on the media store and on composing a message, as units: limits that concurrent
// uploads must not get round, the state-directory guard of media.path, and the limits a body's
// fields promise.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpError } from '../../src/control/http-error.js';
import { composeContent } from '../../src/control/compose-message.js';
import { OPERATOR } from '../../src/control/roles.js';
import { MediaStore } from '../../src/outbox/media-store.js';
import { mediaFile } from '../helpers/media-files.js';
import { tmpDirs } from '../helpers/tmp.js';

const tmp = tmpDirs(afterEach, 'wa-media-attack-');

/** A source that yields `first`, then waits for `release` before yielding `rest`. */
function paused(first: Buffer, rest: Buffer, started: () => void, release: Promise<void>): AsyncIterable<Buffer> {
  return {
    async *[Symbol.asyncIterator]() {
      yield first;
      started();
      await release;
      yield rest;
    },
  };
}

async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 201;
  } catch (err) {
    if (err instanceof HttpError) return err.status;
    throw err;
  }
}

describe('media store limits under attack', () => {
  it('two concurrent uploads cannot together exceed media.storeMaxBytes', async () => {
    const dir = tmp();
    const store = new MediaStore(dir, { maxBytes: 1000, storeMaxBytes: 1000 });
    const a = mediaFile('pdf', 600);
    const b = mediaFile('pdf', 600);
    let release!: () => void;
    const go = new Promise<void>((r) => (release = r));
    let begun = 0;
    let pa!: Promise<unknown>;
    let pb!: Promise<unknown>;
    const bothStarted = new Promise<void>((resolve) => {
      const started = () => {
        if (++begun === 2) resolve();
      };
      pa = store.put(paused(a.subarray(0, 300), a.subarray(300), started, go));
      pb = store.put(paused(b.subarray(0, 300), b.subarray(300), started, go));
    });
    await bothStarted;
    release();
    const statuses = [await statusOf(pa), await statusOf(pb)].sort();
    // 1200 bytes do not fit in a store of 1000: one of them must be refused (507).
    expect(store.totalBytes()).toBeLessThanOrEqual(1000);
    expect(statuses).toEqual([201, 507]);
  });

  it('the same bytes again add nothing, so they are accepted when the store is more than half full', async () => {
    const dir = tmp();
    const store = new MediaStore(dir, { maxBytes: 1000, storeMaxBytes: 1000 });
    const a = mediaFile('pdf', 600);
    const first = await store.put([a]);
    // "The same bytes twice are one file": storing them again costs no space.
    const again = await store.put([a]).catch((e: unknown) => e);
    expect(again).toEqual(first);
    expect(store.totalBytes()).toBe(600);
  });
});

describe('composing: guards a body must not get round', () => {
  const outbox = { findSent: () => null };

  it('media.path: a file in the state directory whose name starts with ".." is still in the state directory', async () => {
    const stateDir = tmp();
    const media = new MediaStore(join(stateDir, 'media'));
    mkdirSync(join(stateDir, 'secrets'), { recursive: true });
    const inside = join(stateDir, '..state.db-backup');
    writeFileSync(inside, 'SQLite format 3\0 the whole state, with session keys');
    const err = await composeContent({ account: 'a', to: '15550001234', media: { path: inside, kind: 'document' } }, OPERATOR, { outbox, media, stateDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpError);
    expect((err as HttpError).message).toBe('media.path: files in the state directory are never sent');
  });

  it('a caption given as `text` is held to the 4096 characters media.caption is', async () => {
    const stateDir = tmp();
    const media = new MediaStore(join(stateDir, 'media'));
    const jpeg = mediaFile('jpeg', 2000).toString('base64');
    const viaField = await composeContent({ account: 'a', to: '15550001234', media: { base64: jpeg, caption: 'x'.repeat(5000) } }, OPERATOR, { outbox, media, stateDir }).catch((e: unknown) => e);
    expect(viaField).toBeInstanceOf(HttpError);
    const viaText = await composeContent({ account: 'a', to: '15550001234', text: 'x'.repeat(5000), media: { base64: jpeg } }, OPERATOR, { outbox, media, stateDir }).catch((e: unknown) => e);
    expect(viaText).toBeInstanceOf(HttpError);
    expect((viaText as HttpError).status).toBe(400);
  });

  it('reaction.emoji: a word is not an emoji', async () => {
    const findSent = () => ({ kind: 'message', text: 'hi', wireSends: 1, state: 'sent' }) as never;
    const err = await composeContent({ account: 'a', to: '15550001234', reaction: { messageId: 'ABCDEF123456', emoji: 'PAY NOW' } }, OPERATOR, { outbox: { findSent } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpError);
    expect((err as HttpError).message).toMatch(/^reaction\.emoji: /);
  });

  it('replyTo: a message of ours that never went out (held) is not quoted', async () => {
    const findSent = () => ({ kind: 'message', text: 'the held secret', wireSends: 0, state: 'held' }) as never;
    const err = await composeContent({ account: 'a', to: '15550001234', location: { latitude: 1, longitude: 2 }, replyTo: 'ABCDEF123456' }, OPERATOR, { outbox: { findSent } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpError);
  });
});
