// Messages beyond text, end to end: the daemon's real Baileys builds, encrypts and uploads media
// to the emulator's HTTPS media server and sends every kind through the one gate; the emulator's
// simulated phones download, check and decrypt what arrives, and are the truth about it.
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError } from '../../src/control/client.js';
import { mediaFile, sha256Hex } from '../helpers/media-files.js';
import { runCli } from '../helpers/cli-process.js';
import { httpUnix } from '../helpers/http-unix.js';
import { useWorlds, type World } from '../helpers/world.js';
import { mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const newWorld = useWorlds(afterEach);
const MAIN = '15550001111';
const PEER = '15550008100';

type Accepted = { id: number; messageId: string; state: string; reason?: string };
type Row = { id: number; kind: string; state: string; text: string; wireSends: number; content?: Record<string, unknown> };

async function send(w: World, body: Record<string, unknown>): Promise<Accepted> {
  return (await w.client.request<Accepted>('POST', '/v1/messages', { account: 'main', to: PEER, ...body })).body;
}

async function refused(w: World, body: Record<string, unknown>): Promise<{ status: number; message: string }> {
  const err = await w.client.request('POST', '/v1/messages', { account: 'main', to: PEER, ...body }).catch((e: unknown) => e);
  if (!(err instanceof ApiError)) throw new Error(`expected a refusal, got ${JSON.stringify(err)}`);
  return { status: err.status, message: err.message };
}

async function upload(w: World, bytes: Buffer): Promise<{ sha256: string; bytes: number; mimetype: string | null }> {
  const res = await httpUnix(w.socket, 'POST', '/v1/media', bytes, { 'content-type': 'application/octet-stream' });
  if (res.status !== 201) throw new Error(`upload answered ${res.status}: ${res.body}`);
  return JSON.parse(res.body) as { sha256: string; bytes: number; mimetype: string | null };
}


describe('media and the other kinds, sent through the gate', () => {
  it('every media kind reaches the peer, whose phone decrypts a file with the sha256 of the one sent', async () => {
    const w = await newWorld({ config: (url) => ({ accounts: [{ id: 'main', wsUrl: url }] }) });
    await w.pair('main', MAIN);
    const image = mediaFile('jpeg', 20_000);
    const video = mediaFile('mp4', 50_000);
    const voice = mediaFile('ogg', 8000);
    const pdf = mediaFile('pdf', 30_000);
    const sticker = mediaFile('webp', 6000);
    const uploaded = await upload(w, video);
    expect(uploaded).toEqual({ sha256: sha256Hex(video), bytes: video.length, mimetype: 'video/mp4' });
    const sends = [
      { kind: 'image', file: image, body: { text: 'a photo', media: { base64: image.toString('base64') } } },
      { kind: 'video', file: video, body: { media: { sha256: uploaded.sha256, caption: 'a clip' } } },
      { kind: 'audio', file: voice, body: { media: { base64: voice.toString('base64'), voice: true } } },
      { kind: 'document', file: pdf, body: { media: { base64: pdf.toString('base64'), fileName: 'invoice.pdf', mimetype: 'application/pdf' } } },
      { kind: 'sticker', file: sticker, body: { media: { base64: sticker.toString('base64') } } },
    ];
    for (const s of sends) {
      const accepted = await send(w, s.body);
      expect(accepted.state).toBe('queued');
      const got = await w.emulator.waitForDecrypted(PEER, (m) => m.id === accepted.messageId);
      expect(got.media, s.kind).toMatchObject({ kind: s.kind, sha256: sha256Hex(s.file), size: s.file.length, error: null });
      expect(got.copies).toBe(1);
      await w.waitEvent((e) => e.type === 'message.sent' && e.id === accepted.id);
      const row = (await w.client.request<Row>('GET', `/v1/messages/${accepted.id}`)).body;
      expect(['sent', 'delivered']).toContain(row.state);
      expect(row).toMatchObject({ kind: s.kind, wireSends: 1, content: { type: s.kind, media: { sha256: sha256Hex(s.file), bytes: s.file.length } } });
    }
    const received = w.emulator.peerMessages(PEER);
    expect(received.map((m) => m.kind)).toEqual(['imageMessage', 'videoMessage', 'audioMessage', 'documentMessage', 'stickerMessage']);
    expect(received[0]!.detail).toMatchObject({ caption: 'a photo' });
    expect(received[1]!.detail).toMatchObject({ caption: 'a clip' });
    expect(received[2]!.media).toMatchObject({ mimetype: 'audio/ogg; codecs=opus' });
    expect(received[3]!.media).toMatchObject({ mimetype: 'application/pdf', fileName: 'invoice.pdf' });
  });

  it('location, contact card, reply, reaction, edit and delete: the peer reads each as what it is, pointing at the right message', async () => {
    const w = await newWorld({ config: (url) => ({ accounts: [{ id: 'main', wsUrl: url }] }) });
    await w.pair('main', MAIN);
    const original = await send(w, { text: 'the original' });
    await w.emulator.waitForDecrypted(PEER, (m) => m.id === original.messageId);
    await w.waitEvent((e) => e.type === 'message.sent' && e.id === original.id);
    // A message from the peer, to reply and react to.
    const { id: theirs } = await w.emulator.sendInbound({ from: PEER, to: MAIN, text: 'from the peer' });
    await w.waitEvent((e) => e.type === 'message.inbound' && e.id === theirs);

    const location = await send(w, { location: { latitude: 52.52, longitude: 13.405, name: 'Office' } });
    const contact = await send(w, { contact: { name: 'Support desk', phone: '+1 555 000 4242' } });
    const reply = await send(w, { text: 'answering you', replyTo: theirs });
    const reaction = await send(w, { reaction: { messageId: theirs, emoji: '👍' } });
    const edit = await send(w, { edit: original.messageId, text: 'the original, corrected' });
    const del = await send(w, { delete: original.messageId });
    const at = async (a: Accepted) => w.emulator.waitForDecrypted(PEER, (m) => m.id === a.messageId);
    expect(await at(location)).toMatchObject({ kind: 'locationMessage', detail: { latitude: 52.52, longitude: 13.405, name: 'Office' } });
    const card = await at(contact);
    expect(card).toMatchObject({ kind: 'contactMessage', detail: { displayName: 'Support desk' } });
    expect(card.detail!.vcard).toContain('waid=15550004242');
    expect(await at(reply)).toMatchObject({ text: 'answering you', detail: { quotedId: theirs } });
    expect(await at(reaction)).toMatchObject({ kind: 'reactionMessage', detail: { reaction: '👍', targetId: theirs } });
    expect(await at(edit)).toMatchObject({ kind: 'protocolMessage', detail: { edited: 'the original, corrected', targetId: original.messageId } });
    expect(await at(del)).toMatchObject({ kind: 'protocolMessage', detail: { revoked: true, targetId: original.messageId } });
    const kinds = [];
    for (const a of [location, contact, reply, reaction, edit, del]) kinds.push((await w.client.request<Row>('GET', `/v1/messages/${a.id}`)).body.kind);
    expect(kinds).toEqual(['location', 'contact', 'message', 'reaction', 'edit', 'delete']);
    // Each arrived once; nothing else reached the peer.
    expect(w.emulator.peerMessages(PEER).map((m) => m.copies)).toEqual([1, 1, 1, 1, 1, 1, 1]);

    // Targets must be messages of this chat; own messages only for edits and deletes.
    expect(await refused(w, { reaction: { messageId: 'MADEUP0000000001', emoji: '👍' } })).toMatchObject({ status: 400, message: expect.stringMatching(/^reaction\.messageId: account main has no message MADEUP0000000001 in chat/) });
    expect(await refused(w, { edit: theirs, text: 'not mine' })).toMatchObject({ status: 400, message: expect.stringContaining('only its own messages can be edited') });
    expect(await refused(w, { delete: theirs })).toMatchObject({ status: 400, message: expect.stringContaining('only its own messages can be deleted') });
    expect(await refused(w, { edit: location.messageId, text: 'x' })).toMatchObject({ status: 400, message: expect.stringContaining('only text messages can be edited') });
    expect(await refused(w, { to: '15550008999', replyTo: theirs, text: 'wrong chat' })).toMatchObject({ status: 400, message: expect.stringContaining('has no message') });
    expect(await refused(w, { location: { latitude: 91, longitude: 0 } })).toMatchObject({ status: 400, message: expect.stringMatching(/^location\.latitude: /) });
    expect(await refused(w, { reaction: { messageId: theirs, emoji: '👍' }, text: 'x' })).toMatchObject({ status: 400, message: 'text: a reaction carries no text' });
    expect(await refused(w, { location: { latitude: 1, longitude: 2 }, contact: { name: 'x', phone: '15550001234' } })).toMatchObject({ status: 400, message: 'location, contact: give one of them per message' });
  });

  it('refuses media the bytes contradict, too large, or named by path by a client; nothing is queued', async () => {
    const w = await newWorld({ config: (url) => ({ media: { maxBytes: 64 * 1024 }, accounts: [{ id: 'main', wsUrl: url }] }) });
    await w.pair('main', MAIN);
    const pdf = mediaFile('pdf');
    expect(await refused(w, { media: { base64: pdf.toString('base64'), kind: 'image' } })).toMatchObject({ status: 400, message: expect.stringContaining('image files must be image/jpeg, image/png; this file is application/pdf') });
    expect(await refused(w, { media: { base64: mediaFile('png').toString('base64'), mimetype: 'image/jpeg' } })).toMatchObject({ status: 400, message: 'media.mimetype: declared image/jpeg but the file is image/png' });
    expect(await refused(w, { media: { base64: mediaFile('jpeg').toString('base64'), voice: true } })).toMatchObject({ status: 400, message: 'media.voice: only audio can be a voice note' });
    expect(await refused(w, { media: { base64: 'not base64!' } })).toMatchObject({ status: 400, message: expect.stringMatching(/^media\.base64: /) });
    expect(await refused(w, { media: { path: 'relative.pdf' } })).toMatchObject({ status: 400, message: expect.stringMatching(/^media\.path: expected an absolute path/) });
    // The state directory's files are never sent, also through a link from elsewhere.
    const stateFile = readdirSync(join(w.dir, 'state')).find((f) => f.endsWith('.db'))!;
    expect(await refused(w, { media: { path: join(w.dir, 'state', stateFile), kind: 'document' } })).toMatchObject({ status: 400, message: 'media.path: files in the state directory are never sent' });
    symlinkSync(join(w.dir, 'state', stateFile), join(w.dir, 'innocent.pdf'));
    expect(await refused(w, { media: { path: join(w.dir, 'innocent.pdf'), kind: 'document' } })).toMatchObject({ status: 400, message: 'media.path: files in the state directory are never sent' });
    expect(await refused(w, { media: { path: join(w.dir, 'missing.pdf') } })).toMatchObject({ status: 400, message: expect.stringContaining('no such file') });
    expect(await refused(w, { media: { sha256: 'a'.repeat(64) } })).toMatchObject({ status: 400, message: expect.stringContaining('no file') });
    expect(await refused(w, { media: { url: 'https://example.com/x.jpg' } })).toMatchObject({ status: 400, message: expect.stringMatching(/^media: /) });
    const big = await httpUnix(w.socket, 'POST', '/v1/media', mediaFile('pdf', 100 * 1024), { 'content-type': 'application/octet-stream' });
    expect(big.status).toBe(413);
    const rows = (await w.client.request<{ messages: Row[] }>('GET', '/v1/messages')).body.messages;
    expect(rows).toEqual([]);
    expect(w.emulator.peerMessages(PEER)).toEqual([]);
  });
});

describe('media across a kill -9', () => {
  for (const stage of ['before-store', 'after-store'] as const) {
    it(`killed while the upload was in flight (${stage === 'before-store' ? 'before the media server stored the file' : 'after the file was stored, before the message was sent'}): one message at the peer after the restart`, async () => {
      const w = await newWorld({ config: (url) => ({ accounts: [{ id: 'main', wsUrl: url }] }) });
      await w.pair('main', MAIN);
      const pdf = mediaFile('pdf', 40_000);
      w.emulator.holdMediaUpload(stage);
      const accepted = await send(w, { media: { base64: pdf.toString('base64'), fileName: 'kill.pdf' } });
      await w.emulator.waitMediaUploadsHeld(1);
      const storedBefore = w.emulator.media().length;
      expect(storedBefore).toBe(stage === 'after-store' ? 1 : 0);
      await w.restartDaemon({ kill: true });
      await w.waitState('main', 'open');
      const got = await w.emulator.waitForDecrypted(PEER, (m) => m.id === accepted.messageId);
      expect(got).toMatchObject({ copies: 1, media: { kind: 'document', sha256: sha256Hex(pdf), error: null } });
      await w.waitEvent((e) => e.type === 'message.sent' && e.id === accepted.id);
      // Uploaded again after the restart (a second file on the server), sent once.
      expect(w.emulator.media().length).toBe(storedBefore + 1);
      expect(w.emulator.peerMessages(PEER)).toHaveLength(1);
      const row = (await w.client.request<Row>('GET', `/v1/messages/${accepted.id}`)).body;
      expect(['sent', 'delivered']).toContain(row.state);
      expect(row.wireSends).toBe(1);
    });
  }

  it('a retry receipt after a restart is answered with the very image message (same media keys), which the peer then decrypts', async () => {
    const w = await newWorld({ config: (url) => ({ accounts: [{ id: 'main', wsUrl: url }] }) });
    await w.pair('main', MAIN);
    const image = mediaFile('png', 12_000);
    w.emulator.failDecrypt(PEER, { hold: true });
    const sent = await send(w, { media: { base64: image.toString('base64'), caption: 'asked for again' } });
    await w.waitEvent((e) => e.type === 'message.sent' && e.id === sent.id);
    expect(w.emulator.peerMessages(PEER)).toEqual([]);
    const uploads = w.emulator.media().length;
    await w.restartDaemon();
    await w.waitState('main', 'open');
    const from = w.events.length;
    expect(w.emulator.releaseRetries(PEER)).toBe(1);
    await w.waitEvent((e) => e.type === 'message.retry_requested' && e.messageId === sent.messageId, { from });
    const got = await w.emulator.waitForDecrypted(PEER, (m) => m.id === sent.messageId);
    expect(got).toMatchObject({ copies: 1, detail: { caption: 'asked for again' }, media: { sha256: sha256Hex(image), error: null } });
    // The re-sent message points at the file uploaded the first time: nothing was uploaded again.
    expect(w.emulator.media().length).toBe(uploads);
  });
});

describe('the CLI', () => {
  it('send --document/--voice/--location, reply, react, edit and delete: each arrives as what it is; bad input exits 64 with nothing queued', async () => {
    const w = await newWorld({ config: (url) => ({ accounts: [{ id: 'main', wsUrl: url }] }) });
    await w.pair('main', MAIN);
    const dir = mkdtempSync(join(tmpdir(), 'wa-cli-media-'));
    const pdf = mediaFile('pdf', 25_000);
    const ogg = mediaFile('ogg', 5000);
    writeFileSync(join(dir, 'report.pdf'), pdf);
    writeFileSync(join(dir, 'note.ogg'), ogg);
    const cli = async (...args: string[]) => {
      const r = await runCli([...args, '--account', 'main', '--to', PEER, '--json', '--socket', w.socket], w.env);
      return { ...r, json: r.code === 0 ? (JSON.parse(r.stdout) as Accepted) : null };
    };
    const doc = await cli('send', '--document', join(dir, 'report.pdf'), '--caption', 'the report');
    expect(doc.code, doc.stderr).toBe(0);
    expect(await w.emulator.waitForDecrypted(PEER, (m) => m.id === doc.json!.messageId)).toMatchObject({
      media: { kind: 'document', sha256: sha256Hex(pdf), fileName: 'report.pdf', error: null },
      detail: { caption: 'the report' },
    });
    const voice = await cli('send', '--voice', join(dir, 'note.ogg'));
    expect(await w.emulator.waitForDecrypted(PEER, (m) => m.id === voice.json!.messageId)).toMatchObject({ media: { kind: 'audio', sha256: sha256Hex(ogg) } });
    const loc = await cli('send', '--location', '48.8584,2.2945', '--place', 'Tower');
    expect(await w.emulator.waitForDecrypted(PEER, (m) => m.id === loc.json!.messageId)).toMatchObject({ detail: { latitude: 48.8584, longitude: 2.2945, name: 'Tower' } });
    const text = await cli('send', '--text', 'plain');
    await w.waitEvent((e) => e.type === 'message.sent' && e.id === text.json!.id);
    const reply = await cli('reply', '--message', text.json!.messageId, '--text', 'quoting myself');
    const react = await cli('react', '--message', text.json!.messageId, '--emoji', '🎉');
    const edit = await cli('edit', '--message', text.json!.messageId, '--text', 'plain, edited');
    const del = await cli('delete', '--message', doc.json!.messageId);
    expect(await w.emulator.waitForDecrypted(PEER, (m) => m.id === reply.json!.messageId)).toMatchObject({ text: 'quoting myself', detail: { quotedId: text.json!.messageId } });
    expect(await w.emulator.waitForDecrypted(PEER, (m) => m.id === react.json!.messageId)).toMatchObject({ detail: { reaction: '🎉', targetId: text.json!.messageId } });
    expect(await w.emulator.waitForDecrypted(PEER, (m) => m.id === edit.json!.messageId)).toMatchObject({ detail: { edited: 'plain, edited' } });
    expect(await w.emulator.waitForDecrypted(PEER, (m) => m.id === del.json!.messageId)).toMatchObject({ detail: { revoked: true, targetId: doc.json!.messageId } });

    const before = (await w.client.request<{ messages: Row[] }>('GET', '/v1/messages')).body.messages.length;
    const bad = [
      await cli('send', '--image', join(dir, 'report.pdf')),
      await cli('send', '--image', join(dir, 'missing.jpg')),
      await cli('send', '--document', join(dir, 'report.pdf'), '--text', 'x'),
      await cli('send', '--location', 'north'),
      await cli('react', '--message', 'NOSUCHMESSAGE01', '--emoji', '👍'),
    ];
    for (const r of bad) expect(r.code, r.stdout + r.stderr).toBe(64);
    expect(bad[0]!.stdout).toContain('image files must be');
    expect(bad[1]!.stderr).toContain('cannot read the file');
    expect((await w.client.request<{ messages: Row[] }>('GET', '/v1/messages')).body.messages.length).toBe(before);
  });
});

describe('media to a group', () => {
  it('an image reaches every member once, verified; a rule denying media in groups and shadow mode refuse it, a text still passes the rule', async () => {
    const members = ['15550007101', '15550007102', '15550007103'];
    const w = await newWorld({
      config: (url) => ({
        policy: {
          rules: [
            { name: 'no-media-in-groups', action: 'deny', match: { account: 'strict', chatType: 'group', kind: 'media' } },
            { name: 'shadow', action: 'deny', match: { account: 'quiet' } },
          ],
        },
        accounts: [{ id: 'main', wsUrl: url }, { id: 'strict', wsUrl: url }, { id: 'quiet', wsUrl: url }],
      }),
    });
    await w.pair('main', MAIN);
    await w.pair('strict', '15550001133');
    await w.pair('quiet', '15550001122');
    const group = w.emulator.createGroup({ subject: 'Media', participants: [MAIN, '15550001133', '15550001122', ...members] });
    const image = mediaFile('jpeg', 15_000);
    const post = async (account: string, body: Record<string, unknown>) => (await w.client.request<Accepted>('POST', '/v1/messages', { account, to: group.jid, ...body })).body;
    const sent = await post('main', { text: 'from main', media: { base64: image.toString('base64') } });
    for (const phone of [...members, '15550001133', '15550001122']) {
      expect(await w.emulator.waitForDecrypted(phone, (m) => m.id === sent.messageId)).toMatchObject({ copies: 1, media: { kind: 'image', sha256: sha256Hex(image), error: null }, detail: { caption: 'from main' } });
    }
    expect(await post('strict', { media: { base64: image.toString('base64') } })).toMatchObject({ state: 'denied', reason: 'deny by no-media-in-groups' });
    const text = await post('strict', { text: 'text is fine' });
    for (const phone of members) await w.emulator.waitForDecrypted(phone, (m) => m.id === text.messageId);
    // Shadow mode: the quiet account sends nothing to the group, media, text or reaction.
    expect(await post('quiet', { media: { base64: image.toString('base64') } })).toMatchObject({ state: 'denied' });
    expect(await post('quiet', { text: 'a reply', replyTo: sent.messageId })).toMatchObject({ state: 'denied' });
    await w.waitEvent((e) => e.type === 'message.sent' && e.id === text.id);
    for (const phone of members) expect(w.emulator.peerMessages(phone).map((m) => m.id)).toEqual([sent.messageId, text.messageId]);
  });
});
