// Inbound messages, caught between decryption and the delivery receipt.
//
// Baileys sends a message's delivery receipt before it emits messages.upsert, so a listener on
// the upsert is too late to keep a message: a crash between the two loses it for good, as the
// server deletes what was receipted. The receipt comes only after Baileys' decrypt step, which
// calls the socket's signal repository. This module wraps that repository (the makeSignalRepository
// option): once the repository has returned the plaintext, and before Baileys can go on to the
// receipt, the message is decoded and emitted as `inbound`, whose listener commits it.
//
// The repository sees ciphertext, not message ids, so the stanza is read first: a `CB:message`
// listener put ahead of Baileys' own decodes the envelope (id, chat, sender, time) with Baileys'
// own decodeMessageNode, so keys match what Baileys reports, and maps each encrypted part (the
// same Uint8Array the repository later gets) to it.
//
// Order on disk: the message row first, then the Signal session (see wrap). A crash between the
// two leaves the message stored and the session where it was: the redelivered copy decrypts again
// and lands on the same row.
//
// A copy whose message key is already used ("Key used already or never filled") is one the
// session has moved past. Baileys takes it for a duplicate and refuses it without asking the
// sender. Its row may be stored, or its content may have been lost before it was (however the
// session got ahead of the inbox). So the sender is asked for it again with a retry receipt. The
// copy it re-sends is encrypted with a new key, so it decrypts, and it lands on the one row kept
// for the id. A duplicate costs one re-send.
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  type BinaryNode,
  type SignalKeyStore,
  type SignalKeyStoreWithTransaction,
  type SignalRepositoryWithLIDStore,
  type WAMessageKey,
  MISSING_KEYS_ERROR_TEXT,
  decodeMessageNode,
  proto,
  unpadRandomMax16,
} from '@whiskeysockets/baileys';
import { describeContent, inboundFrom, undecryptable } from './message-mapping.js';
import type { InboundMessage } from './types.js';

/** One received stanza, from its envelope until its parts are decrypted. */
interface Envelope {
  /** The stanza, to ask its sender for it again. */
  node: BinaryNode;
  /** Its sender was asked for it again (once per stanza). */
  asked: boolean;
  /** A group message: Baileys asks for it again itself when a part fails (see #decrypting). */
  group: boolean;
  key: WAMessageKey & { id: string; remoteJid: string };
  timestamp: number;
  offline: boolean;
  /** The decrypted parts so far, merged as Baileys merges them. */
  content: proto.IMessage | null;
  emitted: boolean;
}

type Repository = SignalRepositoryWithLIDStore;

/** Watches stanzas and decryptions of one socket; `emit` must commit before it returns (or its promise settles). */
export class InboundCapture {
  readonly #envelopes = new WeakMap<Uint8Array, Envelope>();
  readonly #emit: (message: InboundMessage) => void | Promise<void>;
  readonly #me: () => { id?: string; lid?: string } | undefined;
  readonly #askAgain: (node: BinaryNode) => void;
  /** Runs a function in the async context of construction: outside any key-store transaction. */
  readonly #outside: <R>(fn: () => R) => R;

  /** `askAgain` sends the stanza's sender a retry receipt (called after the failed decryption is over, outside its transaction). */
  constructor(opts: { emit: (message: InboundMessage) => void | Promise<void>; me: () => { id?: string; lid?: string } | undefined; askAgain: (node: BinaryNode) => void }) {
    this.#emit = opts.emit;
    this.#me = opts.me;
    this.#askAgain = opts.askAgain;
    this.#outside = AsyncLocalStorage.snapshot();
  }

  /** The `CB:message` listener (prepended, so it runs before Baileys starts on the stanza). */
  onStanza(node: BinaryNode): void {
    if (!Array.isArray(node.content)) return;
    const me = this.#me();
    if (!me?.id) return;
    let decoded: ReturnType<typeof decodeMessageNode>;
    try {
      decoded = decodeMessageNode(node, me.id, me.lid ?? '');
    } catch {
      return; // Baileys refuses the stanza too, and sends no receipt
    }
    const { key, messageTimestamp } = decoded.fullMessage;
    if (key.fromMe || !key.id || !key.remoteJid) return; // our own messages are the outbox's
    const envelope: Envelope = {
      node,
      asked: false,
      group: node.content.some((part) => part.tag === 'enc' && part.attrs.type === 'skmsg'),
      key: key as Envelope['key'],
      timestamp: Number(messageTimestamp ?? 0),
      offline: node.attrs.offline !== undefined,
      content: null,
      emitted: false,
    };
    for (const part of node.content) {
      if (part.tag === 'enc' && part.content instanceof Uint8Array) this.#envelopes.set(part.content, envelope);
    }
  }

  /**
   * Wraps a signal repository so every decryption of a watched stanza is reported first. The
   * decryption and the report run in one key-store transaction: the Signal session moves on only
   * after the message is committed, and not at all when the commit fails (the transaction rolls
   * back), so a message the daemon could not keep can still be decrypted when it comes again.
   */
  wrap(repository: Repository, keys: SignalKeyStore | SignalKeyStoreWithTransaction): Repository {
    // Baileys hands makeSignalRepository its transaction-capable store; a store without
    // transactions would commit the session first (a crash then loses the message).
    const transaction = 'transaction' in keys ? keys.transaction.bind(keys) : <T>(work: () => Promise<T>) => work();
    const inTransaction = (ciphertext: Uint8Array, key: string, decrypt: () => Promise<Uint8Array>) => {
      const envelope = this.#envelopes.get(ciphertext);
      if (!envelope) return decrypt();
      return transaction(() => this.#decrypting(envelope, decrypt), key);
    };
    return {
      ...repository,
      decryptMessage: (opts) => inTransaction(opts.ciphertext, opts.jid, () => repository.decryptMessage(opts)),
      decryptGroupMessage: (opts) => inTransaction(opts.msg, opts.group, () => repository.decryptGroupMessage(opts)),
    };
  }

  async #decrypting(envelope: Envelope, decrypt: () => Promise<Uint8Array>): Promise<Uint8Array> {
    let plaintext: Uint8Array;
    try {
      plaintext = await decrypt();
    } catch (err) {
      // A key already used (see the top): asked for again once, whether or not the row below
      // commits. Not for a group message, whose other part fails too and makes Baileys ask itself.
      // Later, and outside this key-store transaction (its context would otherwise carry over into
      // the callback), which rolls back: the keys a later receipt carries must reach the disk.
      if ((err as Error)?.message === MISSING_KEYS_ERROR_TEXT && !envelope.asked && !envelope.group) {
        envelope.asked = true;
        const node = envelope.node;
        this.#outside(() => setImmediate(() => this.#askAgain(node)));
      }
      // Kept, marked, and replaced if a retry later decrypts it. Baileys sends a retry receipt
      // (not a delivery receipt) after this, except for a key already used.
      if (!envelope.emitted) await this.#emit(inboundFrom(envelope.key, envelope.timestamp, undecryptable((err as Error)?.message), envelope.offline));
      throw err;
    }
    let part: proto.IMessage;
    try {
      const decoded = proto.Message.decode(unpadRandomMax16(plaintext));
      part = decoded.deviceSentMessage?.message ?? decoded;
    } catch (err) {
      // Baileys fails the same way on this plaintext and marks the message as a ciphertext stub.
      await this.#emit(inboundFrom(envelope.key, envelope.timestamp, undecryptable(`undecodable content: ${(err as Error).message}`), envelope.offline));
      return plaintext;
    }
    envelope.content = envelope.content ? Object.assign(envelope.content, part) : part;
    const content = describeContent(envelope.content);
    // A group message's first part may carry only the sender key: the message comes with the next.
    if (content) {
      envelope.emitted = true;
      await this.#emit(inboundFrom(envelope.key, envelope.timestamp, content, envelope.offline));
    }
    return plaintext;
  }
}
