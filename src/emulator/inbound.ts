/**
 * A simulated peer sends a text or a file to an account: its phone encrypts one copy per companion of
 * the account (starting a Signal session from the companion's uploaded keys if needed) and the
 * server delivers each, or queues it for the next login.
 */
import { randomBytes } from 'node:crypto';
import { companionAddress } from './account-of.js';
import type { EmulatorCore } from './core.js';
import { deliver } from './delivery.js';
import { corruptCiphertext } from './inbound-retry.js';
import { EmulatorError } from './errors.js';
import { type PeerContent, type SentMedia, peerContent } from './peer-media.js';
import type { DeliveredCopy } from './inbound-retry.js';
import type { User } from './user.js';

/** A peer-to-account text, or file (`media`, stored encrypted on the media server first). */
export interface InboundText extends PeerContent {
  /** The peer's phone number (created as a peer if unknown). */
  from: string;
  /** The account's phone number (must have a paired companion). */
  to: string;
  /** Message id to use (default: a fresh phone-style id); reuse one to send a wire duplicate. */
  id?: string;
  /**
   * Corrupt the first copy on the wire, so the account cannot decrypt it and asks for it again
   * with a retry receipt; the peer then re-sends it intact (inbound-retry.ts).
   */
  undecryptable?: boolean;
}

/** A message id in the style phones use (20 uppercase hex characters). */
export function newMessageId(): string {
  return `3A${randomBytes(9).toString('hex').toUpperCase()}`;
}

/** Encrypts and delivers a text or file from a peer; resolves with its id once handed to the server. */
export function sendInbound(core: EmulatorCore, request: InboundText): Promise<{ id: string; delivered: boolean }> {
  return core.inboundQueue.run(async () => {
    const account = core.world.user(request.to);
    if (!account || account.companions.size === 0) {
      throw new EmulatorError(404, 'unknown_account', `to: ${request.to} has no paired companion`, 'to');
    }
    if (request.from === request.to) throw new EmulatorError(400, 'bad_request', 'from: must differ from to', 'from');
    const peer = core.world.ensureUser(request.from);
    const id = request.id ?? newMessageId();
    const content = peerContent(core, peer.phone, request);
    let delivered = false;
    const copies: DeliveredCopy[] = [];
    for (const companion of account.companions.values()) {
      const encrypted = await peer.phoneDevice.encrypt(companionAddress(account.phone, companion.device), content.message, () => companion.bundle());
      const { type } = encrypted;
      const ciphertext = request.undecryptable ? corruptCiphertext(encrypted.ciphertext) : encrypted.ciphertext;
      const node = {
        tag: 'message',
        attrs: {
          from: peer.jid,
          id,
          t: String(Math.floor(Date.now() / 1000)),
          type: content.media ? 'media' : 'text',
          notify: peer.name,
          sender_lid: peer.lidJid,
        },
        content: [{ tag: 'enc', attrs: { v: '2', type, ...(content.media ? { mediatype: content.media.kind } : {}) }, content: ciphertext }],
      };
      delivered = deliver(core, account, companion, node) || delivered;
      copies.push({ companion, node });
    }
    core.inboundResends.remember(id, { peer, account, message: content.message, mediaKind: content.media?.kind, copies });
    recordSent(peer, id, account.phone, content, delivered);
    core.events.add(account.phone, null, `peer ${peer.phone} sent ${id}${delivered ? '' : ' (queued: no active connection)'}`);
    return { id, delivered };
  });
}

/** Records (or keeps the first record of) a text a simulated user sent, with its delivery status. */
export function recordSent(user: User, id: string, to: string, content: { text: string; media?: SentMedia | undefined }, delivered: boolean): void {
  const previous = user.sent.get(id);
  user.sent.set(id, {
    id,
    to,
    text: content.text,
    ...(content.media ? { media: content.media } : {}),
    at: previous?.at ?? Date.now(),
    status: previous?.status ?? (delivered ? 'sent' : 'queued'),
  });
}
