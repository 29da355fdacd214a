/**
 * An account asks the sender's phone to upload a media file again (its download expired): the
 * client sends `<receipt type="server-error">` with `<rmr jid from_me participant?>` naming the
 * message; the server hands it to the sender's phone, which uploads the file again and answers
 * with `<notification type="mediaretry">`: the same `<rmr>` and the new direct path in a
 * MediaRetryNotification, AES-GCM encrypted with a key derived from the file's media key (the
 * message id as associated data), or `<error code>` when it no longer has the file.
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { type BinaryNode, proto } from '@whiskeysockets/baileys';
import { accountOf } from './account-of.js';
import type { EmulatorCore } from './core.js';
import { deliver } from './delivery.js';
import { hkdf } from './kdf.js';
import type { Session } from './session.js';
import { child } from './stanza.js';

/** Handles a media re-upload request; true when the receipt was one. */
export function handleMediaRetryRequest(core: EmulatorCore, session: Session, node: BinaryNode): boolean {
  const rmr = child(node, 'rmr');
  const id = node.attrs.id;
  const me = accountOf(core, session);
  if (node.attrs.type !== 'server-error' || !rmr || !id || !me) return false;
  const author = rmr.attrs.from_me === 'true' ? undefined : (rmr.attrs.participant ?? rmr.attrs.jid);
  const sender = author ? core.world.resolve(author)?.user : undefined;
  const sent = sender?.sent.get(id);
  const stored = sent?.media ? core.media.find(sent.media.directPath) : undefined;
  const answer = (content: BinaryNode[]) =>
    deliver(core, me.user, me.companion, {
      tag: 'notification',
      attrs: { from: me.user.jid, type: 'mediaretry', id, t: String(Math.floor(Date.now() / 1000)) },
      content: [{ tag: 'rmr', attrs: { ...rmr.attrs } }, ...content],
    });
  if (!sender || !sent?.media || !stored?.mediaKey) {
    // The phone does not have it (not a simulated peer's file): NOT_FOUND.
    answer([{ tag: 'error', attrs: { code: String(proto.MediaRetryNotification.ResultType.NOT_FOUND) } }]);
    session.event(`media re-upload of ${id} asked for: no simulated phone has its file`);
    return true;
  }
  const again = core.media.put(stored.type, stored.bytes, sender.phone);
  again.mediaKey = stored.mediaKey;
  sent.media.directPath = again.directPath;
  const plaintext = proto.MediaRetryNotification.encode({ stanzaId: id, directPath: again.directPath, result: proto.MediaRetryNotification.ResultType.SUCCESS }).finish();
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', hkdf(stored.mediaKey, 32, undefined, 'WhatsApp Media Retry Notification'), iv);
  cipher.setAAD(Buffer.from(id));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  answer([{ tag: 'encrypt', attrs: {}, content: [{ tag: 'enc_p', attrs: {}, content: ciphertext }, { tag: 'enc_iv', attrs: {}, content: iv }] }]);
  core.mediaReuploads += 1;
  session.event(`media re-upload of ${id}: phone ${sender.phone} uploaded it again as ${again.directPath}`);
  return true;
}
