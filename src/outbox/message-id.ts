import { randomBytes } from 'node:crypto';

/**
 * A new WhatsApp message id, fixed when a message is enqueued and reused on every send of it, so
 * that a replay is the same message to the peer (which shows an id once), never a second one.
 * The shape follows what WhatsApp Web clients use: "3EB0" and upper-case hex.
 */
export function newMessageId(): string {
  return `3EB0${randomBytes(10).toString('hex').toUpperCase()}`;
}
