// Files of inbound media messages, on demand: the first request downloads and decrypts the file
// (through the connector, the only code that knows Baileys), checks it against the fileSha256
// the message stated, and keeps it in the cache; later requests are served from the cache.
import type { Log } from '../log.js';
import type { InboundMediaRef, WaConnector } from '../wa/types.js';
import { type CachedMedia, type InboundMediaCache, MediaHashMismatchError, MediaTooLargeError } from './media-cache.js';
import type { InboxBackend } from './backend.js';
import type { InboxRow } from './store.js';

/** How long one download (request and body) may take before it is given up. */
export const MEDIA_DOWNLOAD_TIMEOUT_MS = 60_000;

/** Kinds whose messages carry a downloadable file. */
export const MEDIA_KINDS: ReadonlySet<string> = new Set(['image', 'video', 'audio', 'document', 'sticker']);

/**
 * Why a file cannot be served. `not_media`: the row is not a media message. `no_reference`: it
 * is, but stored without what a download needs (before media references were kept, or its
 * message carried no key). `download_failed`, `corrupt` (the plaintext does not hash to the
 * stated fileSha256) and `timeout` are the server's side.
 */
export type MediaFailure = 'not_media' | 'no_reference' | 'download_failed' | 'corrupt' | 'timeout';

export class InboxMediaError extends Error {
  constructor(
    readonly reason: MediaFailure,
    message: string,
  ) {
    super(message);
    this.name = 'InboxMediaError';
  }
}

/** A file ready to serve. */
export interface InboxMediaFile extends CachedMedia {
  mimetype: string | null;
  fileName: string | null;
  /** True when no download was needed. */
  cached: boolean;
}

/** Serves the files of stored media messages. */
export class InboxMedia {
  readonly cache: InboundMediaCache;
  readonly #store: Pick<InboxBackend, 'mediaRef' | 'updateMediaRef'>;
  readonly #download: WaConnector['downloadMedia'];
  readonly #reupload: Reupload | undefined;
  readonly #timeoutMs: number;
  readonly #log: Log;
  /** Downloads in flight by file hash: two requests for one file share one download. */
  readonly #inflight = new Map<string, Promise<void>>();

  constructor(opts: {
    store: Pick<InboxBackend, 'mediaRef' | 'updateMediaRef'>;
    cache: InboundMediaCache;
    download: WaConnector['downloadMedia'];
    /** Asks the sender's phone to upload an expired file again (through the send gate). */
    reupload?: Reupload;
    log: Log;
    timeoutMs?: number;
  }) {
    this.#store = opts.store;
    this.#reupload = opts.reupload;
    this.cache = opts.cache;
    this.#download = opts.download;
    this.#log = opts.log;
    this.#timeoutMs = opts.timeoutMs ?? MEDIA_DOWNLOAD_TIMEOUT_MS;
  }

  /** The row's file, from the cache or downloaded now; throws InboxMediaError. The caller owns `fd`. */
  async file(row: InboxRow): Promise<InboxMediaFile> {
    const what = `message ${row.id} (cursor ${row.cursor})`;
    if (!MEDIA_KINDS.has(row.kind)) throw new InboxMediaError('not_media', `${what} is ${row.kind === 'undecryptable' ? 'undecryptable' : `a ${row.kind} message`}, not media: it has no file`);
    const ref = await this.#store.mediaRef(row.cursor);
    if (!ref) {
      throw new InboxMediaError('no_reference', `${what} is a ${row.kind}, but stored without what a download needs (it arrived before the daemon kept media references, or carried no media key): its file cannot be downloaded`);
    }
    const sha256 = ref.fileSha256 ? Buffer.from(ref.fileSha256, 'base64').toString('hex') : '';
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new InboxMediaError('corrupt', `${what} states no valid fileSha256: its file cannot be verified, so it is not served`);
    const describe = (c: CachedMedia, cached: boolean): InboxMediaFile => ({
      ...c,
      mimetype: ref.mimetype,
      fileName: typeof row.detail?.fileName === 'string' ? row.detail.fileName : null,
      cached,
    });
    const hit = this.cache.open(sha256);
    if (hit) return describe(hit, true);
    const running = this.#inflight.get(sha256);
    if (running) {
      // Another request is downloading it: share its outcome, then open the file it kept.
      await running;
      const after = this.cache.open(sha256);
      if (after) return describe(after, true);
    }
    const fetching = this.#fetch(row, ref, sha256, what);
    const shared = fetching.then(() => undefined);
    shared.catch(() => {}); // the error reaches the requests that wait for it
    this.#inflight.set(sha256, shared);
    try {
      return describe(await fetching, false);
    } finally {
      if (this.#inflight.get(sha256) === shared) this.#inflight.delete(sha256);
    }
  }

  /**
   * Starts the download; a file the media server no longer has (404 or 410: WhatsApp deletes
   * files after some weeks) is asked of the sender's phone again, once, and the row keeps where
   * it now is.
   */
  async #open(row: InboxRow, ref: InboundMediaRef, signal: AbortSignal): Promise<AsyncIterable<Uint8Array>> {
    try {
      return await this.#download(ref, { signal });
    } catch (err) {
      const status = (err as { output?: { statusCode?: number } }).output?.statusCode;
      if (!this.#reupload || (status !== 404 && status !== 410)) throw err;
      this.#log.info({ account: row.account, id: row.id, status }, "inbound media gone from the server; asking the sender's phone to upload it again");
      const moved = await this.#reupload(row, ref);
      const fresh = { ...ref, ...moved };
      await this.#store.updateMediaRef(row.cursor, fresh);
      return this.#download(fresh, { signal });
    }
  }

  async #fetch(row: InboxRow, ref: InboundMediaRef, sha256: string, what: string): Promise<CachedMedia> {
    const account = row.account;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new Error(`no complete download within ${this.#timeoutMs} ms`)), this.#timeoutMs);
    timer.unref?.();
    try {
      // The connector is asked to stop on abort too; these races make sure the wait ends.
      const source = await untilAborted(this.#open(row, ref, abort.signal), abort.signal);
      const kept = await this.cache.put(sha256, abortable(source, abort.signal), ref.fileLength ? { maxBytes: ref.fileLength } : {});
      this.#log.info({ account, sha256, bytes: kept.size }, 'inbound media downloaded, verified and cached');
      return kept;
    } catch (err) {
      if (abort.signal.aborted) {
        this.#log.warn({ account, sha256, timeoutMs: this.#timeoutMs }, 'inbound media download timed out');
        throw new InboxMediaError('timeout', `downloading the file of ${what} took longer than ${this.#timeoutMs} ms; nothing was kept`);
      }
      if (err instanceof MediaHashMismatchError || err instanceof MediaTooLargeError) {
        this.#log.warn({ account, expected: sha256, err: err.message }, 'inbound media failed verification; not kept');
        throw new InboxMediaError('corrupt', `the file of ${what}: ${err.message}`);
      }
      this.#log.warn({ account, sha256, err: (err as Error).message }, 'inbound media download failed');
      throw new InboxMediaError('download_failed', `downloading the file of ${what} failed: ${describeError(err)}`);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Where the sender's phone uploaded a file again. */
export type Reupload = (row: InboxRow, ref: InboundMediaRef) => Promise<{ directPath: string; url: string }>;

/** A download error without the URL (it carries the media server's auth parameters). */
function describeError(err: unknown): string {
  const e = err as { message?: string; output?: { statusCode?: number } } | undefined;
  const status = e?.output?.statusCode;
  const message = (e?.message ?? String(err)).replace(/https?:\/\/\S+/g, '<url>');
  return status ? `${message} (HTTP ${status})` : message;
}

/** `work`, or a rejection with the signal's reason once it aborts. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (err: unknown) => (signal.removeEventListener('abort', onAbort), reject(err as Error)),
    );
  });
}

/** The chunks of `source` until the signal aborts (then the iteration throws). */
async function* abortable(source: AsyncIterable<Uint8Array>, signal: AbortSignal): AsyncIterable<Uint8Array> {
  const it = source[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      const next = await untilAborted(it.next(), signal);
      if (next.done) {
        finished = true;
        return;
      }
      yield next.value;
    }
  } finally {
    if (!finished) void it.return?.()?.catch(() => {});
  }
}
