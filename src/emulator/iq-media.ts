/**
 * `<iq xmlns="w:m" type="set"><media_conn/>`: where and how to upload media. The answer names
 * the emulator's HTTPS media server as the one host and carries the account's upload token.
 */
import type { BinaryNode } from '@whiskeysockets/baileys';
import { accountOf } from './account-of.js';
import type { EmulatorCore } from './core.js';
import { MAX_MEDIA_BYTES } from './media-store.js';
import type { Session } from './session.js';
import { iqError, iqResult } from './stanza.js';

/** Seconds Baileys may reuse the answer before asking again. */
const MEDIA_CONN_TTL_S = 300;

export function mediaConnIq(core: EmulatorCore, session: Session, iq: BinaryNode): BinaryNode {
  const account = accountOf(core, session);
  if (!account) return iqError(iq, 401, 'not-authorized');
  const attrs = { auth: core.media.authFor(account.user.phone), ttl: String(MEDIA_CONN_TTL_S), auth_ttl: String(MEDIA_CONN_TTL_S), max_buckets: '12' };
  const host = { tag: 'host', attrs: { hostname: core.media.host, maxContentLengthBytes: String(MAX_MEDIA_BYTES) } };
  return iqResult(iq, [{ tag: 'media_conn', attrs, content: [host] }]);
}
