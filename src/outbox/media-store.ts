// The outbound media store: files a message will carry, kept content-addressed under the state
// directory from the moment the message is accepted until nothing refers to them. A file is
// written to a temporary name while it is hashed and counted, flushed to disk, then renamed to
// its sha256, so a crash leaves either the whole file or nothing under that name. The bytes are
// streamed through, never held whole in memory, and read again from disk for every upload.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { HttpError } from '../control/http-error.js';
import { MEDIA_KINDS, type MediaFile, type MediaKind } from './content.js';
import { checkMimetype, sniffMimetype } from './media-type.js';

/** Limits of the store (config `media`). */
export interface MediaLimits {
  /** Largest file, in bytes. */
  maxBytes: number;
  /** Largest total of all files kept, in bytes. */
  storeMaxBytes: number;
}

export const DEFAULT_MEDIA_LIMITS: MediaLimits = { maxBytes: 16 * 1024 ** 2, storeMaxBytes: 2 * 1024 ** 3 };

/** Uploads written at once; one more is a 503 (each holds up to maxBytes in the temporary directory). */
export const MAX_CONCURRENT_UPLOADS = 8;

/** An unreferenced file younger than this is kept: it may be an upload whose message is on its way. */
export const UNREFERENCED_GRACE_MS = 60 * 60_000;

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** What putting a file gave: its name in the store, size and sniffed type. */
export interface StoredMedia {
  sha256: string;
  bytes: number;
  /** The type read from the file's first bytes, or null when it has no signature (text, CSV...). */
  detected: string | null;
}

export class MediaStore {
  readonly dir: string;
  #limits: MediaLimits;
  #tmp: string;
  /** Uploads being written now. */
  #uploads = 0;

  constructor(dir: string, limits: MediaLimits = DEFAULT_MEDIA_LIMITS) {
    this.dir = dir;
    this.#limits = limits;
    this.#tmp = join(dir, 'tmp');
    mkdirSync(this.#tmp, { recursive: true, mode: 0o700 });
    // Leftovers of writes a crash interrupted: never renamed, so nothing refers to them.
    for (const f of readdirSync(this.#tmp)) rmSync(join(this.#tmp, f), { force: true });
  }

  setLimits(limits: MediaLimits): void {
    this.#limits = limits;
  }

  get limits(): MediaLimits {
    return this.#limits;
  }

  /**
   * Streams bytes into the store; refuses (413) past maxBytes and (507) past storeMaxBytes without
   * keeping anything. The same bytes twice are one file.
   */
  async put(source: AsyncIterable<Buffer | Uint8Array | string> | Iterable<Buffer | Uint8Array>): Promise<StoredMedia> {
    // The total is checked when the file is complete (the same bytes again add nothing), in the
    // same synchronous step as the rename, so parallel uploads cannot together pass it; what
    // uploads in progress hold on disk meanwhile is bounded by their number.
    if (this.#uploads >= MAX_CONCURRENT_UPLOADS) {
      throw new HttpError(503, 'unavailable', `media: ${MAX_CONCURRENT_UPLOADS} uploads are in progress, the most the daemon takes at once; retry when one has finished`, { connection: 'close' });
    }
    this.#uploads++;
    try {
      return await this.#write(source);
    } finally {
      this.#uploads--;
    }
  }

  async #write(source: AsyncIterable<Buffer | Uint8Array | string> | Iterable<Buffer | Uint8Array>): Promise<StoredMedia> {
    const tmp = join(this.#tmp, `${randomBytes(8).toString('hex')}.part`);
    const fd = openSync(tmp, 'wx', 0o600);
    const hash = createHash('sha256');
    let bytes = 0;
    let closed = false;
    try {
      for await (const chunk of source) {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        bytes += buf.length;
        if (bytes > this.#limits.maxBytes) throw new HttpError(413, 'body_too_large', `media: larger than media.maxBytes (${this.#limits.maxBytes} bytes)`, { connection: 'close' });
        hash.update(buf);
        let off = 0;
        while (off < buf.length) off += writeSync(fd, buf, off);
      }
      if (bytes === 0) throw new HttpError(400, 'bad_request', 'media: the file is empty');
      fsyncSync(fd);
      closeSync(fd);
      closed = true;
      const sha256 = hash.digest('hex');
      const detected = await sniffMimetype(tmp);
      const target = this.#path(sha256);
      const known = existsSync(target);
      if (!known && this.totalBytes() + bytes > this.#limits.storeMaxBytes) {
        throw new HttpError(507, 'insufficient_storage', `media: the media store is full (media.storeMaxBytes ${this.#limits.storeMaxBytes} bytes); messages hold their files until they are pruned`);
      }
      if (known) {
        // The same bytes are one file: kept as it is, fresh again for the unreferenced grace period.
        rmSync(tmp, { force: true });
        touch(target);
      } else {
        renameSync(tmp, target);
        syncDir(this.dir);
      }
      return { sha256, bytes, detected };
    } catch (err) {
      if (!closed) closeSync(fd);
      rmSync(tmp, { force: true });
      throw err;
    }
  }

  /**
   * Checks a stored file against what a message says it is (kind and mimetype) and returns the
   * MediaFile a row keeps. Refuses what the file's own bytes contradict.
   */
  describe(stored: StoredMedia, kind: MediaKind, declared: { mimetype?: string | undefined; fileName?: string | undefined; voice?: boolean | undefined }): MediaFile {
    const mimetype = checkMimetype(kind, stored.detected, declared.mimetype, declared.voice === true);
    return { sha256: stored.sha256, bytes: stored.bytes, mimetype, ...(declared.fileName ? { fileName: declared.fileName } : {}) };
  }

  /** A file already in the store, by its sha256 (as `POST /v1/media` answered it); null when absent. */
  async find(sha256: string): Promise<StoredMedia | null> {
    if (!SHA256_HEX.test(sha256)) throw new HttpError(400, 'bad_request', 'media.sha256: expected 64 lower-case hex digits');
    const p = this.#path(sha256);
    try {
      const st = statSync(p);
      // Named by a message now: fresh again, so collection cannot take it before the row refers to it.
      touch(p);
      return { sha256, bytes: st.size, detected: await sniffMimetype(p) };
    } catch {
      return null;
    }
  }

  /** The file's path, for an upload; throws when it is gone (pruned, or the state directory damaged). */
  pathOf(sha256: string): string {
    const p = this.#path(sha256);
    statSync(p);
    return p;
  }

  /** Opens the file for reading (an upload streams it). */
  open(sha256: string): NodeJS.ReadableStream {
    return createReadStream(this.pathOf(sha256));
  }

  totalBytes(): number {
    let n = 0;
    for (const f of this.#files()) n += f.bytes;
    return n;
  }

  /** Deletes files no row refers to, once past the grace period; returns how many. */
  collect(referenced: ReadonlySet<string>, now = Date.now(), graceMs = UNREFERENCED_GRACE_MS): number {
    let n = 0;
    for (const f of this.#files()) {
      if (referenced.has(f.sha256) || now - f.mtimeMs < graceMs) continue;
      rmSync(join(this.dir, f.sha256), { force: true });
      n++;
    }
    return n;
  }

  #files(): Array<{ sha256: string; bytes: number; mtimeMs: number }> {
    const out: Array<{ sha256: string; bytes: number; mtimeMs: number }> = [];
    for (const name of readdirSync(this.dir)) {
      if (!SHA256_HEX.test(name)) continue;
      try {
        const st = statSync(join(this.dir, name));
        out.push({ sha256: name, bytes: st.size, mtimeMs: st.mtimeMs });
      } catch {
        // removed meanwhile
      }
    }
    return out;
  }

  #path(sha256: string): string {
    if (!SHA256_HEX.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
    return join(this.dir, sha256);
  }
}

/** True for a media kind name. */
export function isMediaKind(v: unknown): v is MediaKind {
  return typeof v === 'string' && (MEDIA_KINDS as readonly string[]).includes(v);
}

function touch(path: string): void {
  const now = new Date();
  utimesSync(path, now, now);
}

function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
