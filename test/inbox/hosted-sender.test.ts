// A message from a hosted device (a business on the Cloud API: `…:99@hosted`) is stored
// twice: once before the receipt under the hosted JID (inbound-capture.ts, jidNormalizedUser keeps
// the `hosted` server), once after it under the phone-number JID (the upsert backstop after
// Baileys' cleanMessage maps hosted to s.whatsapp.net). allowFrom sees two different senders.
import { cleanMessage, proto, type WAMessage } from '@whiskeysockets/baileys';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventBus } from '../../src/events/bus.js';
import { Inbox } from '../../src/inbox/inbox.js';
import { InboxStore } from '../../src/inbox/store.js';
import { closeStateDb, openStateDb, type StateDb } from '../../src/store/db.js';
import { InboundCapture } from '../../src/wa/inbound-capture.js';
import { toInbound } from '../../src/wa/message-mapping.js';
import type { InboundMessage } from '../../src/wa/types.js';
import { makeTmpDir } from '../helpers/tmp.js';

const ME = '15550009999:1@s.whatsapp.net';
const BUSINESS = '15550001111';

let tmp: { dir: string; cleanup: () => void };
let db: StateDb;
beforeEach(() => {
  tmp = makeTmpDir('wa-hosted-');
  db = openStateDb(tmp.dir);
});
afterEach(() => {
  closeStateDb(db);
  tmp.cleanup();
});

describe('hosted senders', () => {
  it('one message from a hosted device is one row, under the JID allowFrom lists', async () => {
    const inbox = new Inbox({ store: new InboxStore(db), bus: new EventBus(), log: pino({ level: 'silent' }), allowFrom: { main: [`${BUSINESS}@s.whatsapp.net`] } });
    const emitted: InboundMessage[] = [];
    const capture = new InboundCapture({ emit: (m) => {
      emitted.push(m);
      inbox.receive('main', m);
    }, me: () => ({ id: ME }), askAgain: () => undefined });
    const ciphertext = new Uint8Array([1, 2, 3]);
    const stanza = {
      tag: 'message',
      attrs: { id: 'HOSTED1', from: `${BUSINESS}:99@hosted`, t: '1700000000', type: 'text' },
      content: [{ tag: 'enc', attrs: { type: 'msg', v: '2' }, content: ciphertext }],
    };
    capture.onStanza(stanza as never);
    const plain = proto.Message.encode({ conversation: 'your order shipped' }).finish();
    const padded = new Uint8Array([...plain, 1]); // unpadRandomMax16: one byte of padding
    const repo = capture.wrap({ decryptMessage: async () => padded } as never, { get: async () => ({}), set: async () => {} } as never);
    await repo.decryptMessage({ jid: `${BUSINESS}:99@hosted`, type: 'msg', ciphertext });
    // ...Baileys sends the delivery receipt, cleans the key and emits messages.upsert:
    const upserted = { key: { id: 'HOSTED1', remoteJid: `${BUSINESS}:99@hosted`, fromMe: false }, messageTimestamp: 1700000000, message: { conversation: 'your order shipped' } } as WAMessage;
    cleanMessage(upserted, ME, '');
    inbox.receive('main', toInbound(upserted)!);
    const rows = inbox.store.list({ limit: 10, statuses: ['ok', 'undecryptable', 'ignored'] });
    console.log(JSON.stringify(rows.map((r) => ({ cursor: r.cursor, chat: r.chat, status: r.status }))));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.status).toBe('ok');
  });
});
