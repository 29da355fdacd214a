// The cache of downloaded inbound media files: decrypted plaintext under <stateDir>/media-in/,
// one file per content (named by the hex SHA-256 the message stated for it), written only once
// its hash is checked. Bounded by total size and by age since a file was last served.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, renameSync, statSync, unlinkSync, utimesSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';

/** Default `media.inboundCacheMaxBytes`: the most the cache keeps, in total. */
export const DEFAULT_INBOUND_CACHE_MAX_BYTES = 512 * 1024 ** 2;
/** Default `media.inboundCacheMaxAgeMs`: a file not served for this long is deleted. */
export const DEFAULT_INBOUND_CACHE_MAX_AGE_MS = 7 * 86_400_000;
/** The largest file accepted when the message does not state its length (WhatsApp's limit is 2 GB). */
export const MAX_INBOUND_MEDIA_BYTES = 2 * 1024 ** 3;

/** The cache's limits; read anew on every use, so a config reload applies. */
export interface InboundCacheLimits {
  maxBytes: number;
  maxAgeMs: number;
}

/** A file in the cache, opened for reading: eviction cannot take it away from under a reader. */
export interface CachedMedia {
  sha256: string;
  size: number;
  /** An open file descriptor; the caller reads it (or closes it). */
  fd: number;
}

/** The downloaded plaintext does not hash to what the message stated; nothing was kept. */
export class MediaHashMismatchError extends Error {
  constructor(
    readonly expected: string,
    readonly actual: string,
    readonly bytes: number,
  ) {
    super(`the downloaded file (${bytes} bytes) hashes to sha256 ${actual}, not ${expected} as the message states: corrupted or altered, not kept`);
    this.name = 'MediaHashMismatchError';
  }
}

/** The download sent more bytes than the message said the file has; nothing was kept. */
export class MediaTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`the download sent more than the ${limit} bytes the file has; not kept`);
    this.name = 'MediaTooLargeError';
  }
}

const NAME = /^[0-9a-f]{64}$/;
const TEMP_PREFIX = '.tmp-';

/** Content-addressed files under one directory. */
export class InboundMediaCache {
  readonly dir: string;
  readonly #limits: () => InboundCacheLimits;
  readonly #now: () => number;

  /** Creates the directory (0700) and clears what a crash left behind, then applies the limits. */
  constructor(opts: { dir: string; limits?: () => Partial<InboundCacheLimits> | undefined; now?: () => number }) {
    this.dir = opts.dir;
    this.#now = opts.now ?? Date.now;
    this.#limits = () => {
      const l = opts.limits?.() ?? {};
      return { maxBytes: l.maxBytes ?? DEFAULT_INBOUND_CACHE_MAX_BYTES, maxAgeMs: l.maxAgeMs ?? DEFAULT_INBOUND_CACHE_MAX_AGE_MS };
    };
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    // A temp file is a download that never finished: no run is writing it now.
    for (const name of readdirSync(this.dir)) if (name.startsWith(TEMP_PREFIX)) unlinkQuiet(join(this.dir, name));
    this.evict();
  }

  /**
   * The cached file with this hash, opened, or null. Serving it counts as a use: its age starts
   * again. A file past the age limit is deleted instead.
   */
  open(sha256: string): CachedMedia | null {
    if (!NAME.test(sha256)) return null;
    const path = join(this.dir, sha256);
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    const st = fstatSync(fd);
    const now = this.#now();
    if (now - st.mtimeMs > this.#limits().maxAgeMs) {
      closeSync(fd);
      unlinkQuiet(path);
      return null;
    }
    touch(path, now);
    return { sha256, size: st.size, fd };
  }

  /**
   * Writes a download to a temp file while hashing it; only when the hash is `sha256` is it
   * renamed into place (then the limits are applied, sparing it). On a mismatch, an error of
   * the source or more than `maxBytes`, the temp file is deleted and the error thrown.
   */
  async put(sha256: string, source: AsyncIterable<Uint8Array>, opts: { maxBytes?: number } = {}): Promise<CachedMedia> {
    if (!NAME.test(sha256)) throw new Error(`not a hex SHA-256: ${JSON.stringify(sha256)}`);
    const limit = opts.maxBytes ?? MAX_INBOUND_MEDIA_BYTES;
    const temp = join(this.dir, `${TEMP_PREFIX}${sha256}-${randomBytes(6).toString('hex')}`);
    const hash = createHash('sha256');
    let size = 0;
    const fh = await open(temp, 'wx', 0o600);
    try {
      try {
        for await (const chunk of source) {
          size += chunk.length;
          if (size > limit) throw new MediaTooLargeError(limit);
          hash.update(chunk);
          for (let off = 0; off < chunk.length; ) off += (await fh.write(chunk, off)).bytesWritten;
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      const actual = hash.digest('hex');
      if (actual !== sha256) throw new MediaHashMismatchError(sha256, actual, size);
    } catch (err) {
      unlinkQuiet(temp);
      throw err;
    }
    const path = join(this.dir, sha256);
    touch(temp, this.#now());
    renameSync(temp, path);
    const fd = openSync(path, 'r');
    this.evict(sha256);
    return { sha256, size, fd };
  }

  /**
   * Applies the limits: deletes files not served within the age limit, then the least recently
   * served ones until the total fits. `keep` (the file just written) is never deleted, so one
   * file larger than the whole limit is still served once. Returns what was deleted.
   */
  evict(keep?: string): { files: number; bytes: number } {
    const { maxBytes, maxAgeMs } = this.#limits();
    const now = this.#now();
    const files: Array<{ name: string; size: number; mtimeMs: number }> = [];
    for (const name of readdirSync(this.dir)) {
      if (!NAME.test(name)) continue;
      try {
        const st = statSync(join(this.dir, name));
        files.push({ name, size: st.size, mtimeMs: st.mtimeMs });
      } catch {
        // gone meanwhile
      }
    }
    const removed = { files: 0, bytes: 0 };
    const remove = (f: { name: string; size: number }) => {
      unlinkQuiet(join(this.dir, f.name));
      removed.files += 1;
      removed.bytes += f.size;
    };
    const kept = files.filter((f) => {
      if (f.name === keep || now - f.mtimeMs <= maxAgeMs) return true;
      remove(f);
      return false;
    });
    kept.sort((a, b) => a.mtimeMs - b.mtimeMs || a.name.localeCompare(b.name));
    let total = kept.reduce((n, f) => n + f.size, 0);
    for (const f of kept) {
      if (total <= maxBytes) break;
      if (f.name === keep) continue;
      remove(f);
      total -= f.size;
    }
    return removed;
  }

  /** Files and bytes the cache holds now. */
  usage(): { files: number; bytes: number } {
    let files = 0;
    let bytes = 0;
    for (const name of readdirSync(this.dir)) {
      if (!NAME.test(name)) continue;
      try {
        bytes += statSync(join(this.dir, name)).size;
        files += 1;
      } catch {
        // gone meanwhile
      }
    }
    return { files, bytes };
  }
}

/** Sets a file's times to `now` (the cache's clock, so ages follow it). */
function touch(path: string, now: number): void {
  const t = now / 1000;
  utimesSync(path, t, t);
}

function unlinkQuiet(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}
