/**
 * The media server's storage: encrypted files by direct path, the upload auth tokens handed out
 * in `media_conn`, and armed tampering (a test corrupting a file at rest). In memory only.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { sha256 } from './media-crypto.js';

/** The upload path types the server accepts (`/mms/<type>/…`; a sticker uploads as an image). */
export const UPLOAD_TYPES = ['image', 'video', 'audio', 'document'] as const;
export type UploadType = (typeof UPLOAD_TYPES)[number];

/** Largest upload accepted, also announced as `maxContentLengthBytes`. */
export const MAX_MEDIA_BYTES = 64 * 1024 * 1024;

/** The CDN path segment WhatsApp uses per type (cosmetic: lookups go by the whole path). */
const PATH_CODE: Record<UploadType, string> = { image: 't62.7118-24', video: 't62.7161-24', audio: 't62.7114-24', document: 't62.7119-24' };

/** One stored file. */
export interface StoredMedia {
  /** What a message carries as `directPath` (path and query). */
  directPath: string;
  type: UploadType;
  bytes: Buffer;
  /** SHA-256 of the bytes as uploaded (before any tampering). */
  encSha256: Buffer;
  /** The account (upload) or peer (inbound media) that stored it. */
  storedBy: string;
  at: number;
  /** GETs served and phone reads. */
  downloads: number;
  tampered: boolean;
  /** Expired: downloads answer 410, as WhatsApp's servers do once a file is gone; the sender's phone can upload it again. */
  expired?: boolean;
  /** For a file a simulated phone stored: its media key (what the phone needs to answer a re-upload request). Never listed. */
  mediaKey?: Buffer;
}

/** A stored file as the control API lists it. */
export interface MediaSummary {
  directPath: string;
  url: string;
  type: UploadType;
  size: number;
  /** Hex SHA-256 of the bytes stored now (differs from the upload's after tampering). */
  encSha256: string;
  storedBy: string;
  at: number;
  downloads: number;
  tampered: boolean;
  /** Downloads answer 410 (POST /media/expire). */
  expired: boolean;
}

/** Files, tokens and tamper arming of one emulator. */
export class MediaStore {
  /** `host:port` of the HTTPS media server, set once it listens. */
  host = '';
  private readonly files = new Map<string, StoredMedia>();
  private readonly authByPhone = new Map<string, string>();
  private readonly phoneByAuth = new Map<string, string>();
  private tamperNext = 0;
  /** Uploads to hold (never answer), in order: before the file is stored, or after. */
  private readonly holds: Array<'before-store' | 'after-store'> = [];
  /** Uploads held so far. */
  private heldCount = 0;
  private readonly heldWaiters: Array<{ n: number; resolve: () => void }> = [];

  /** The upload token for an account (one per account, stable). */
  authFor(phone: string): string {
    let auth = this.authByPhone.get(phone);
    if (!auth) {
      auth = randomBytes(24).toString('base64');
      this.authByPhone.set(phone, auth);
      this.phoneByAuth.set(auth, phone);
    }
    return auth;
  }

  /** The account an upload token belongs to. */
  phoneForAuth(auth: string): string | undefined {
    return this.phoneByAuth.get(auth);
  }

  /** Stores a file under a new direct path (corrupting it if tampering is armed). */
  put(type: UploadType, bytes: Buffer, storedBy: string): StoredMedia {
    const name = `${randomInt(1e8, 1e9)}_${randomInt(1e12, 1e13)}_${randomInt(1e12, 1e13)}_n.enc`;
    const expiry = (Math.floor(Date.now() / 1000) + 30 * 86400).toString(16).toUpperCase();
    const directPath = `/v/${PATH_CODE[type]}/${name}?ccb=11-4&oh=01_${randomBytes(16).toString('hex')}&oe=${expiry}&_nc_sid=5e03e0`;
    const stored: StoredMedia = { directPath, type, bytes: Buffer.from(bytes), encSha256: sha256(bytes), storedBy, at: Date.now(), downloads: 0, tampered: false };
    this.files.set(pathKey(directPath), stored);
    if (this.tamperNext > 0) {
      this.tamperNext -= 1;
      corrupt(stored);
    }
    return stored;
  }

  /** The file a direct path or URL names (query and host are ignored). */
  find(pathOrUrl: string): StoredMedia | undefined {
    return this.files.get(pathKey(pathOrUrl));
  }

  /** The URL clients download a file from. */
  urlFor(stored: StoredMedia): string {
    return `https://${this.host}${stored.directPath}&mms3=true`;
  }

  /** Corrupts one stored file now; undefined if there is none at that path. */
  tamper(pathOrUrl: string): StoredMedia | undefined {
    const stored = this.find(pathOrUrl);
    if (stored) corrupt(stored);
    return stored;
  }

  /**
   * Makes the next upload go unanswered for as long as its client keeps the connection: the
   * file is dropped (`before-store`) or kept (`after-store`, so the uploader crashed after its
   * file was on the server but before it could send the message).
   */
  armHold(stage: 'before-store' | 'after-store'): void {
    this.holds.push(stage);
  }

  get held(): number {
    return this.heldCount;
  }

  /** Counts an upload being held, waking those waiting for it. */
  noteHeld(): void {
    this.heldCount += 1;
    for (const w of this.heldWaiters.splice(0)) {
      if (this.heldCount >= w.n) w.resolve();
      else this.heldWaiters.push(w);
    }
  }

  /** Resolves once `n` uploads have been held in all. */
  waitHeld(n: number): Promise<void> {
    if (this.heldCount >= n) return Promise.resolve();
    return new Promise((resolve) => this.heldWaiters.push({ n, resolve }));
  }

  /** The hold armed for the next upload, if any. */
  takeHold(): 'before-store' | 'after-store' | undefined {
    return this.holds.shift();
  }

  /** Marks a stored file expired (downloads answer 410); undefined if there is none at that path. */
  expire(pathOrUrl: string): StoredMedia | undefined {
    const stored = this.find(pathOrUrl);
    if (stored) stored.expired = true;
    return stored;
  }

  /** Makes the next upload (or inbound media file) be stored corrupted. */
  armTamper(): void {
    this.tamperNext += 1;
  }

  list(): MediaSummary[] {
    return [...this.files.values()].map((m) => ({
      directPath: m.directPath,
      url: this.urlFor(m),
      type: m.type,
      size: m.bytes.length,
      encSha256: sha256(m.bytes).toString('hex'),
      storedBy: m.storedBy,
      at: m.at,
      downloads: m.downloads,
      tampered: m.tampered,
      expired: m.expired === true,
    }));
  }
}

function pathKey(pathOrUrl: string): string {
  try {
    return new URL(pathOrUrl, 'https://media.invalid').pathname;
  } catch {
    return pathOrUrl; // not a URL: matches nothing stored
  }
}

/** Flips one bit in the middle of the ciphertext, as bit rot would. */
function corrupt(stored: StoredMedia): void {
  const at = Math.floor(stored.bytes.length / 2);
  stored.bytes[at] = stored.bytes[at]! ^ 0x01;
  stored.tampered = true;
}
