/** Dispatches a client stanza by tag to the handler that owns it. */
import type { BinaryNode } from '@whiskeysockets/baileys';
import { handleClientMessage } from './client-messages.js';
import { handleClientAck, handleClientReceipt } from './client-receipts.js';
import type { EmulatorCore } from './core.js';
import { handleIq } from './iq-router.js';
import type { Session } from './session.js';

/** Stanzas that need no answer and change nothing here (presence, typing, telemetry). */
const IGNORED = new Set(['presence', 'chatstate', 'ib', 'call']);

/** Handles one stanza from a client. */
export async function routeStanza(core: EmulatorCore, session: Session, node: BinaryNode): Promise<void> {
  switch (node.tag) {
    case 'iq':
      handleIq(core, session, node);
      return;
    case 'message':
      handleClientMessage(core, session, node);
      return;
    case 'receipt':
      handleClientReceipt(core, session, node);
      return;
    case 'ack':
      handleClientAck(core, session, node);
      return;
    default:
      if (!IGNORED.has(node.tag)) session.event(`unhandled stanza <${node.tag}>`);
  }
}
