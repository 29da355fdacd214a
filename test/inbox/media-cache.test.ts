// The inbound media cache and the service in front of it: files written only once their hash
// matches, eviction by total size and by age (a fake clock, no waiting), a second request served
// without a download, and what a row without a reference, a corrupt file or a slow server gives.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InboundMediaCache, MediaHashMismatchError } from '../../src/inbox/media-cache.js';
import { InboxMedia, InboxMediaError } from '../../src/inbox/media.js';
import { InboxStore, inboxRowToJson } from '../../src/inbox/store.js';
import { closeStateDb, openStateDb, type StateDb } from '../../src/store/db.js';
import type { InboundMediaRef } from '../../src/wa/types.js';
import { FakeConnector } from '../fakes/wa-connector.js';
import { tmpDirs } from '../helpers/tmp.js';
import { inboundMessage, silentLog } from './support.js';

const newDir = tmpDirs(afterEach, 'wa-media-');
const dbs: StateDb[] = [];
afterEach(() => dbs.splice(0).forEach(closeStateDb));

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
async function* chunks(...parts: Buffer[]): AsyncIterable<Uint8Array> {
  for (const p of parts) yield p;
}
const MB = 1024 ** 2;

/** A cache on a fresh directory with a clock the test moves. */
function cache(limits: { maxBytes?: number; maxAgeMs?: number } = {}, dir = join(newDir(), 'media-in')) {
  const clock = { now: 1_700_000_000_000 };
  const c = new InboundMediaCache({ dir, limits: () => limits, now: () => clock.now });
  return { c, clock, dir };
}

/** Puts a file and closes the descriptor put hands back. */
async function put(c: InboundMediaCache, bytes: Buffer): Promise<string> {
  const kept = await c.put(sha(bytes), chunks(bytes.subarray(0, 10), bytes.subarray(10)));
  closeSync(kept.fd);
  return kept.sha256;
}

function has(c: InboundMediaCache, hash: string): boolean {
  const got = c.open(hash);
  if (got) closeSync(got.fd);
  return got !== null;
}

describe('InboundMediaCache', () => {
  it('keeps a file under its sha256 only when the bytes hash to it; a mismatch leaves nothing behind', async () => {
    const { c, dir } = cache();
    const file = randomBytes(5000);
    const hash = await put(c, file);
    expect(readFileSync(join(dir, hash))).toEqual(file);
    const opened = c.open(hash)!;
    expect(opened.size).toBe(file.length);
    closeSync(opened.fd);

    const other = randomBytes(100);
    const wrong = sha(randomBytes(100));
    await expect(c.put(wrong, chunks(other))).rejects.toBeInstanceOf(MediaHashMismatchError);
    expect(readdirSync(dir)).toEqual([hash]); // no temp file, nothing under the wrong name
    await expect(c.put(sha(other), chunks(other, other), { maxBytes: other.length })).rejects.toThrow(/more than the 100 bytes/);
    expect(readdirSync(dir)).toEqual([hash]);
  });

  it('beyond the size limit the least recently served files go, never the one just written', async () => {
    const { c, clock } = cache({ maxBytes: 3 * MB });
    const files = [randomBytes(MB), randomBytes(MB), randomBytes(MB)];
    const hashes: string[] = [];
    for (const f of files) {
      hashes.push(await put(c, f));
      clock.now += 1000;
    }
    expect(c.usage()).toEqual({ files: 3, bytes: 3 * MB });
    // serving the oldest makes it the most recent
    expect(has(c, hashes[0]!)).toBe(true);
    clock.now += 1000;
    const fourth = await put(c, randomBytes(MB));
    expect(has(c, hashes[1]!)).toBe(false); // the least recently served
    expect([hashes[0], hashes[2], fourth].every((h) => has(c, h!))).toBe(true);
    expect(c.usage().bytes).toBe(3 * MB);
    // a file larger than the whole cache is kept (served once), the rest goes
    clock.now += 1000;
    const huge = await put(c, randomBytes(4 * MB));
    expect(c.usage()).toEqual({ files: 1, bytes: 4 * MB });
    expect(has(c, huge)).toBe(true);
  });

  it('a file not served within the age limit is gone, on open and on the next write', async () => {
    const { c, clock } = cache({ maxAgeMs: 60_000 });
    const a = await put(c, randomBytes(100));
    clock.now += 30_000;
    const b = await put(c, randomBytes(100));
    clock.now += 40_000; // a: 70 s, b: 40 s
    expect(has(c, a)).toBe(false);
    expect(has(c, b)).toBe(true); // and serving renews it
    clock.now += 50_000;
    expect(has(c, b)).toBe(true);
    clock.now += 61_000;
    await put(c, randomBytes(100));
    expect(c.usage().files).toBe(1);
  });

  it('at start: leftovers of an interrupted download are deleted, and the limits applied', async () => {
    const { c, dir, clock } = cache({ maxAgeMs: 60_000 });
    const old = await put(c, randomBytes(100));
    writeFileSync(join(dir, `.tmp-${old}-abcdef`), 'half a file');
    clock.now += 61_000;
    new InboundMediaCache({ dir, limits: () => ({ maxAgeMs: 60_000 }), now: () => clock.now });
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('InboxMedia', () => {
  function setup(opts: { timeoutMs?: number } = {}) {
    const db = openStateDb(newDir());
    dbs.push(db);
    const store = new InboxStore(db);
    const connector = new FakeConnector();
    const { c } = cache();
    const media = new InboxMedia({ store, cache: c, download: (ref, o) => connector.downloadMedia(ref, o), log: silentLog, ...opts });
    const file = randomBytes(3000);
    const ref: InboundMediaRef = {
      mediaType: 'document',
      mediaKey: randomBytes(32).toString('base64'),
      directPath: '/v/t62.7119-24/doc.enc',
      url: null,
      fileEncSha256: randomBytes(32).toString('base64'),
      fileSha256: createHash('sha256').update(file).digest('base64'),
      fileLength: file.length,
      mimetype: 'application/pdf',
    };
    connector.mediaFiles.set(ref.directPath!, file);
    const row = store.store('main', inboundMessage({ kind: 'document', text: null, detail: { mimetype: 'application/pdf', fileName: 'a.pdf' }, media: ref }), 'ok').row;
    return { store, connector, media, file, ref, row };
  }

  it('the reference is stored apart from the row readers see; the first request downloads, the second is served from the cache', async () => {
    const { store, connector, media, file, row, ref } = setup();
    expect(store.mediaRef(row.cursor)).toEqual(ref);
    expect(JSON.stringify(inboxRowToJson(row))).not.toContain(ref.mediaKey);
    expect(JSON.stringify(row)).not.toContain(ref.mediaKey);
    const first = await media.file(row);
    expect(first).toMatchObject({ size: file.length, sha256: sha(file), mimetype: 'application/pdf', fileName: 'a.pdf', cached: false });
    expect(readFileSync(first.fd)).toEqual(file);
    closeSync(first.fd);
    const second = await media.file(row);
    expect(second.cached).toBe(true);
    closeSync(second.fd);
    expect(connector.downloads).toHaveLength(1);
  });

  it('two requests at once share one download', async () => {
    const { connector, media, row } = setup();
    const [a, b] = await Promise.all([media.file(row), media.file(row)]);
    closeSync(a.fd);
    closeSync(b.fd);
    expect(connector.downloads).toHaveLength(1);
  });

  it('a corrupted download is refused and not kept; the next request downloads again', async () => {
    const { connector, media, row, ref, file } = setup();
    const bad = Buffer.from(file);
    bad[1500] = bad[1500]! ^ 1;
    connector.mediaFiles.set(ref.directPath!, bad);
    await expect(media.file(row)).rejects.toMatchObject({ reason: 'corrupt', message: expect.stringContaining('not kept') });
    expect(media.cache.usage().files).toBe(0);
    connector.mediaFiles.set(ref.directPath!, file);
    const ok = await media.file(row);
    closeSync(ok.fd);
    expect(connector.downloads).toHaveLength(2);
  });

  it('a failed download names no URL; a server that never answers is a timeout', async () => {
    const { connector, media, row } = setup({ timeoutMs: 50 });
    connector.downloadMedia = async () => {
      throw new Error('Failed to fetch stream from https://mmg.whatsapp.net/v/x.enc?oh=secret');
    };
    const failed = (await media.file(row).catch((e: unknown) => e)) as InboxMediaError;
    expect(failed).toMatchObject({ reason: 'download_failed' });
    expect(failed.message).not.toContain('oh=secret');
    let signal: AbortSignal | undefined;
    connector.downloadMedia = (_ref, o) => {
      signal = o?.signal;
      return new Promise((_resolve, reject) => o?.signal?.addEventListener('abort', () => reject(o.signal!.reason)));
    };
    await expect(media.file(row)).rejects.toMatchObject({ reason: 'timeout' });
    expect(signal?.aborted).toBe(true);
  });

  it('not media, or media stored without a reference: said so, nothing downloaded', async () => {
    const { store, connector, media } = setup();
    const text = store.store('main', inboundMessage(), 'ok').row;
    await expect(media.file(text)).rejects.toMatchObject({ reason: 'not_media' });
    const old = store.store('main', inboundMessage({ kind: 'image', text: null, detail: { mimetype: 'image/jpeg' } }), 'ok').row;
    await expect(media.file(old)).rejects.toMatchObject({ reason: 'no_reference', message: expect.stringContaining('cannot be downloaded') });
    expect(connector.downloads).toHaveLength(0);
    expect(existsSync(media.cache.dir)).toBe(true);
  });
});
