// The outbound media store and the type check of media kinds, on real files in a temporary
// directory: content addressing, limits that keep nothing behind, collection of unreferenced
// files, and what each kind accepts.
import { existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HttpError } from '../../src/control/http-error.js';
import { MediaStore, UNREFERENCED_GRACE_MS } from '../../src/outbox/media-store.js';
import { checkMimetype } from '../../src/outbox/media-type.js';
import { mediaFile, sha256Hex } from '../helpers/media-files.js';
import { tmpDirs } from '../helpers/tmp.js';

const tmp = tmpDirs(afterEach, 'wa-media-');

async function* chunks(b: Buffer, size = 1000): AsyncGenerator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

function files(dir: string): string[] {
  return readdirSync(dir).filter((f) => f !== 'tmp');
}

describe('MediaStore', () => {
  it('stores a streamed file under its sha256, flushed whole, and the same bytes twice as one file', async () => {
    const dir = tmp();
    const store = new MediaStore(dir);
    const pdf = mediaFile('pdf', 10_000);
    const a = await store.put(chunks(pdf));
    expect(a).toEqual({ sha256: sha256Hex(pdf), bytes: pdf.length, detected: 'application/pdf' });
    expect(readFileSync(store.pathOf(a.sha256)).equals(pdf)).toBe(true);
    await store.put([pdf]);
    expect(files(dir)).toEqual([a.sha256]);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
    expect(await store.find(a.sha256)).toEqual(a);
    expect(await store.find('0'.repeat(64))).toBeNull();
    await expect(store.find('../../etc/passwd')).rejects.toMatchObject({ status: 400 });
  });

  it('refuses a file past maxBytes (413) and past the store total (507), keeping nothing of it', async () => {
    const dir = tmp();
    const store = new MediaStore(dir, { maxBytes: 5000, storeMaxBytes: 1024 ** 2 });
    await expect(store.put(chunks(mediaFile('pdf', 6000)))).rejects.toMatchObject({ status: 413, code: 'body_too_large' });
    expect(files(dir)).toEqual([]);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
    store.setLimits({ maxBytes: 1024 ** 2, storeMaxBytes: 1024 ** 2 + 10 });
    await store.put([mediaFile('pdf', 1024 ** 2 - 100)]);
    await expect(store.put([mediaFile('pdf', 200)])).rejects.toMatchObject({ status: 507, code: 'insufficient_storage' });
    expect(files(dir)).toHaveLength(1);
    await expect(store.put([])).rejects.toMatchObject({ status: 400, message: 'media: the file is empty' });
  });

  it('removes what a crash left half-written at start, and collects only unreferenced files past the grace period', async () => {
    const dir = tmp();
    const first = new MediaStore(dir);
    writeFileSync(join(dir, 'tmp', 'dead.part'), 'half a file');
    const kept = await first.put([mediaFile('pdf')]);
    const dropped = await first.put([mediaFile('jpeg')]);
    const young = await first.put([mediaFile('png')]);
    const store = new MediaStore(dir);
    expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
    const now = Date.now();
    const old = (now - UNREFERENCED_GRACE_MS - 1000) / 1000;
    for (const f of [kept, dropped]) utimesSync(store.pathOf(f.sha256), old, old);
    expect(store.collect(new Set([kept.sha256]), now)).toBe(1);
    expect(existsSync(join(dir, dropped.sha256))).toBe(false);
    expect(files(dir).sort()).toEqual([kept.sha256, young.sha256].sort());
    expect(() => store.pathOf(dropped.sha256)).toThrow();
  });
});

describe('checkMimetype', () => {
  const refusal = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(HttpError);
      return (err as HttpError).message;
    }
    throw new Error('expected a refusal');
  };

  it('takes the type the bytes show for images, video, audio and stickers; voice notes are Ogg Opus', () => {
    expect(checkMimetype('image', 'image/png', undefined, false)).toBe('image/png');
    expect(checkMimetype('image', 'image/jpeg', 'image/jpg', false)).toBe('image/jpeg');
    expect(checkMimetype('video', 'video/mp4', 'video/mp4', false)).toBe('video/mp4');
    expect(checkMimetype('audio', 'audio/ogg; codecs=opus', undefined, true)).toBe('audio/ogg; codecs=opus');
    expect(checkMimetype('sticker', 'image/webp', undefined, false)).toBe('image/webp');
    expect(refusal(() => checkMimetype('image', 'application/pdf', undefined, false))).toMatch(/^media: image files must be/);
    expect(refusal(() => checkMimetype('image', null, 'image/png', false))).toContain('of no type its bytes show');
    expect(refusal(() => checkMimetype('image', 'image/png', 'image/jpeg', false))).toBe('media.mimetype: declared image/jpeg but the file is image/png');
    expect(refusal(() => checkMimetype('audio', 'audio/mpeg', undefined, true))).toMatch(/^media\.voice: a voice note must be Ogg Opus/);
    expect(refusal(() => checkMimetype('sticker', 'image/png', undefined, false))).toMatch(/^media: sticker files must be image\/webp/);
  });

  it('a document is any file, named by its declared type unless its bytes show another', () => {
    expect(checkMimetype('document', null, 'text/csv', false)).toBe('text/csv');
    expect(checkMimetype('document', null, undefined, false)).toBe('application/octet-stream');
    expect(checkMimetype('document', 'application/pdf', undefined, false)).toBe('application/pdf');
    expect(checkMimetype('document', 'application/pdf', 'application/octet-stream', false)).toBe('application/pdf');
    expect(refusal(() => checkMimetype('document', 'application/pdf', 'text/plain', false))).toBe('media.mimetype: declared text/plain but the file is application/pdf');
    expect(refusal(() => checkMimetype('document', null, 'not a type', false))).toMatch(/^media\.mimetype: "not a type" is not a mimetype/);
  });
});
