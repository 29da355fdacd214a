// Invariant 2: every stanza that can reach another person goes through the send gate. Only src/wa
// holds a Baileys socket (one-gate.test.ts), so this reads src/wa and checks which of the socket's
// methods it uses: of the ones that can emit a stanza to a person (or any stanza at all), only
// relayMessage, inside the adapter's send (the gate's one call; the message is built, and its media
// uploaded to the media server with waUploadToServer, just before), and query, for the keepalive
// IQ addressed to the server. Of the server-only ones it uses groupMetadata, the query Baileys
// itself sends before a group send, to fill its group metadata cache. Every method of a real socket must be classified below, so a Baileys
// upgrade that adds one fails here until somebody decides what it can reach.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import makeWASocket, { initAuthCreds } from '@whiskeysockets/baileys';
import pino from 'pino';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { GateAccount } from '../../src/outbox/send-gate.js';
import type { WaSender } from '../../src/wa/types.js';

const WA = fileURLToPath(new URL('../../src/wa', import.meta.url));

/** Can put a message, receipt, presence, call answer, group or profile change in front of others. */
const REACHES_PEOPLE = [
  'sendMessage', 'relayMessage', 'sendPresenceUpdate', 'presenceSubscribe', 'readMessages', 'sendReceipt',
  'sendReceipts', 'sendRetryRequest', 'rejectCall', 'updateBlockStatus', 'updateMediaMessage',
  'updateProfileName', 'updateProfilePicture', 'removeProfilePicture', 'updateProfileStatus', 'updateCoverPhoto',
  'removeCoverPhoto', 'createCallLink', 'sendPeerDataOperationMessage', 'requestPlaceholderResend',
  'fetchMessageHistory', 'sendUnifiedSession', 'issuePrivacyTokens',
  'groupCreate', 'groupLeave', 'groupUpdateSubject', 'groupUpdateDescription', 'groupParticipantsUpdate',
  'groupRequestParticipantsUpdate', 'groupSettingUpdate', 'groupToggleEphemeral', 'groupJoinApprovalMode',
  'groupMemberAddMode', 'groupAcceptInvite', 'groupAcceptInviteV4', 'groupRevokeInvite', 'groupRevokeInviteV4',
  'groupInviteCode',
  'communityCreate', 'communityCreateGroup', 'communityLeave', 'communityUpdateSubject', 'communityUpdateDescription',
  'communityParticipantsUpdate', 'communityRequestParticipantsUpdate', 'communitySettingUpdate',
  'communityToggleEphemeral', 'communityJoinApprovalMode', 'communityMemberAddMode', 'communityAcceptInvite',
  'communityAcceptInviteV4', 'communityRevokeInvite', 'communityRevokeInviteV4', 'communityInviteCode',
  'communityLinkGroup', 'communityUnlinkGroup',
  'newsletterCreate', 'newsletterUpdate', 'newsletterUpdateName', 'newsletterUpdateDescription',
  'newsletterUpdatePicture', 'newsletterRemovePicture', 'newsletterReactMessage', 'newsletterFollow',
  'newsletterUnfollow', 'newsletterMute', 'newsletterUnmute', 'newsletterChangeOwner', 'newsletterDemote',
  'newsletterDelete', 'productCreate', 'productUpdate', 'productDelete', 'updateBussinesProfile',
] as const;

/** Send whatever stanza or frame they are given. */
const SENDS_ANYTHING = ['query', 'sendNode', 'sendRawMessage', 'sendMessageAck', 'sendWAMBuffer', 'upsertMessage'] as const;

/** Reach only the server or this account's own devices (app state, own settings, lookups). */
const SERVER_OR_OWN = [
  'addChatLabel', 'addLabel', 'addMessageLabel', 'addOrEditContact', 'addOrEditQuickReply', 'appPatch',
  'assertSessions', 'chatModify', 'cleanDirtyBits', 'communityFetchAllParticipating', 'communityFetchLinkedGroups',
  'communityGetInviteInfo', 'communityMetadata', 'communityRequestParticipantsList', 'createParticipantNodes',
  'digestKeyBundle', 'end', 'executeUSyncQuery', 'fetchAccountReachoutTimelock', 'fetchBlocklist',
  'fetchDisappearingDuration', 'fetchNewChatMessageCap', 'fetchPrivacySettings', 'fetchStatus', 'generateMessageTag',
  'getBotListV2', 'getBusinessProfile', 'getCatalog', 'getCollections', 'getMediaHost', 'getOrderDetails',
  'getUSyncDevices', 'groupFetchAllParticipating', 'groupGetInviteInfo', 'groupMetadata',
  'groupRequestParticipantsList', 'logout', 'newsletterAdminCount', 'newsletterFetchMessages', 'newsletterMetadata',
  'newsletterSubscribers', 'onUnexpectedError', 'onWhatsApp', 'profilePictureUrl', 'refreshMediaConn',
  'registerSocketEndHandler', 'removeChatLabel', 'removeContact', 'removeMessageLabel', 'removeQuickReply',
  'requestPairingCode', 'resyncAppState', 'rotateSignedPreKey', 'star', 'subscribeNewsletterUpdates',
  'updateCallPrivacy', 'updateDefaultDisappearingMode', 'updateDisableLinkPreviewsPrivacy', 'updateGroupsAddPrivacy',
  'updateLastSeenPrivacy', 'updateMemberLabel', 'updateMessagesPrivacy', 'updateOnlinePrivacy',
  'updateProfilePicturePrivacy', 'updateReadReceiptsPrivacy', 'updateServerTimeOffset', 'updateStatusPrivacy',
  'uploadPreKeys', 'uploadPreKeysToServerIfRequired', 'waUploadToServer', 'waitForConnectionUpdate',
  'waitForMessage', 'waitForSocketOpen',
] as const;

/** The socket members the adapter may touch at all. */
const ADAPTER_USES = new Set(['ws', 'ev', 'user', 'end', 'logout', 'requestPairingCode', 'query', 'relayMessage', 'waUploadToServer', 'readMessages', 'updateMediaMessage', 'groupMetadata', 'sendRetryRequest']);

/** The function-valued members of a real socket of the pinned Baileys (it never connects). */
async function socketMethods(): Promise<string[]> {
  const sock = makeWASocket({
    auth: { creds: initAuthCreds(), keys: { get: async () => ({}), set: async () => {} } },
    waWebSocketUrl: 'ws://127.0.0.1:9/ws/chat',
    logger: pino({ level: 'silent' }),
  });
  const names = Object.keys(sock).filter((k) => typeof (sock as unknown as Record<string, unknown>)[k] === 'function');
  const closed = new Promise<void>((resolve) => sock.ev.on('connection.update', (u) => u.connection === 'close' && resolve()));
  void sock.end(undefined);
  await closed;
  return names;
}

const KEYWORDS = new Set(['if', 'for', 'while', 'switch', 'catch', 'return', 'await', 'throw']);

/** Every `.name` member access in the adapter's source, with the function body it sits in. */
function memberUses(source: string, name: string): Array<{ index: number; enclosing: string }> {
  const uses: Array<{ index: number; enclosing: string }> = [];
  const re = new RegExp(`\\.${name}\\b`, 'g');
  for (let m = re.exec(source); m; m = re.exec(source)) {
    // The nearest method or function header above the use.
    const before = source.slice(0, m.index);
    const header = [...before.matchAll(/^\s*(?:async\s+)?(?:#?(\w+)\s*\(|function\s+(\w+)\s*\()/gm)]
      .filter((h) => !KEYWORDS.has(h[1] ?? ''))
      .pop();
    uses.push({ index: m.index, enclosing: header?.[1] ?? header?.[2] ?? '' });
  }
  return uses;
}

const adapterSources = readdirSync(WA)
  .filter((f) => f.endsWith('.ts'))
  .map((f) => ({ file: f, source: readFileSync(join(WA, f), 'utf8') }));

describe('Baileys socket methods that can reach a person', () => {
  it('are all classified: every method of a real socket is in exactly one list', async () => {
    const methods = await socketMethods();
    const lists = [...REACHES_PEOPLE, ...SENDS_ANYTHING, ...SERVER_OR_OWN];
    expect(new Set(lists).size).toBe(lists.length);
    const unclassified = methods.filter((m) => !lists.includes(m as never));
    expect(unclassified, 'new Baileys socket methods: decide whether they can reach a person').toEqual([]);
    // The lists name nothing the socket lacks (a renamed method would otherwise hide here).
    expect(lists.filter((m) => !methods.includes(m))).toEqual([]);
  });

  it('are used by the adapter only through send (relayMessage, with waUploadToServer for media), sendReadReceipt (readMessages), the keepalive (query) and the group metadata fetch', async () => {
    const methods = await socketMethods();
    const found: string[] = [];
    for (const { file, source } of adapterSources) {
      for (const name of methods) {
        for (const use of memberUses(source, name)) {
          if (!ADAPTER_USES.has(name)) found.push(`${file}: .${name} in ${use.enclosing}`);
        }
      }
    }
    expect(found).toEqual([]);

    const adapter = adapterSources.find((s) => s.file === 'baileys-connection.ts')!.source;
    expect(memberUses(adapter, 'relayMessage').map((u) => u.enclosing)).toEqual(['send']);
    expect(memberUses(adapter, 'sendMessage')).toEqual([]);
    // Media goes to the media server (never to a person) from the same send, before the relay.
    expect(memberUses(adapter, 'waUploadToServer').map((u) => u.enclosing)).toEqual(['send']);
    expect(SERVER_OR_OWN).toContain('waUploadToServer');
    expect(memberUses(adapter, 'readMessages').map((u) => u.enclosing)).toEqual(['sendReadReceipt']);
    // Asking a sender's phone to upload a file again reaches that phone: a WaSender method the gate calls.
    expect(memberUses(adapter, 'updateMediaMessage').map((u) => u.enclosing)).toEqual(['requestMediaReupload']);
    expect(memberUses(adapter, 'query').map((u) => u.enclosing)).toEqual(['ping']);
    // A retry receipt (no content) to the sender of a message received with a key already used,
    // as Baileys sends for any other failed decryption: only from askSenderAgain, which the inbound
    // capture calls for such a copy alone.
    expect(memberUses(adapter, 'sendRetryRequest').map((u) => u.enclosing)).toEqual(['askSenderAgain']);
    expect(adapter).toMatch(/askAgain: \(node\) => this\.#askSenderAgain\(node\)/);
    // The group metadata query (server only) is sent from the cache's fetch alone.
    expect(memberUses(adapter, 'groupMetadata').map((u) => u.enclosing)).toEqual(['fetchGroupMetadata']);
    expect(SERVER_OR_OWN).toContain('groupMetadata');
    // The one query is the keepalive ping, addressed to the server.
    expect(adapter).toMatch(/\.query\(\s*\{\s*tag: 'iq', attrs: \{ to: SERVER_JID, type: 'get', xmlns: 'w:p' \}/);
    expect(adapter).toMatch(/const SERVER_JID = 's\.whatsapp\.net';/);
    // No other file in src/wa touches a person-reaching or send-anything method at all.
    for (const { file, source } of adapterSources.filter((s) => s.file !== 'baileys-connection.ts')) {
      for (const name of [...REACHES_PEOPLE, ...SENDS_ANYTHING]) expect(memberUses(source, name), `${file} .${name}`).toEqual([]);
    }
  });

  it('cannot be reached by destructuring or handing the socket out', () => {
    const adapter = adapterSources.find((s) => s.file === 'baileys-connection.ts')!.source;
    // The socket lives in one private field, read only as `this.#sock.member` or through the `sock` alias.
    expect(adapter.match(/#sock\b(?!\.)/g)?.length).toBe(3); // the declaration, the assignment, `const sock = this.#sock`
    expect(adapter.match(/=\s*this\.#sock\s*;/g)?.length).toBe(1);
    expect(adapter).not.toMatch(/const\s*\{[^}]*\}\s*=\s*(?:this\.#sock|sock)\b/);
    expect(adapter).not.toMatch(/\bsock\s*\[/);
    expect(adapter).not.toMatch(/#sock\s*\[/);
  });

  it('are out of the send gate\'s reach by type: it is handed a connection as a WaSender (send, sendReadReceipt and requestMediaReupload only)', () => {
    // Checked by the type check (npm test runs tsc on the tests): the gate cannot ping, log out or
    // subscribe through what it is given, let alone reach Baileys.
    expectTypeOf<keyof WaSender>().toEqualTypeOf<'send' | 'sendReadReceipt' | 'requestMediaReupload'>();
    expectTypeOf<NonNullable<GateAccount['connection']>>().toEqualTypeOf<WaSender>();
  });

  it('are caught by this check when the adapter uses one (the checker can fail)', () => {
    const bad = "class X {\n  async sendText() { await this.#sock.sendMessage(a) }\n  async typing() { await this.#sock.sendPresenceUpdate('composing', jid) }\n}";
    expect(memberUses(bad, 'sendPresenceUpdate').map((u) => u.enclosing)).toEqual(['typing']);
    expect(memberUses(bad, 'sendMessage').map((u) => u.enclosing)).toEqual(['sendText']);
  });
});
