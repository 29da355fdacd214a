// Attacks on messages beyond text by a client holding a token, end to end: a real daemon with a
// client socket, the emulator's phones as the truth of what reached a chat, the state directory
// as the truth of what the media store keeps.
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { existsSync, readdirSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ApiError, ControlClient } from '../../src/control/client.js';
import { mediaFile, sha256Hex } from '../helpers/media-files.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { useWorlds, type World } from '../helpers/world.js';

const newWorld = useWorlds(afterEach);
const MAIN = '15550001111';
const PEER = '15550008200';
const HELD_PEER = '15550008201';
const BOT_TOKEN = 'wst_bot-token-for-the-media-attack-test-0123456789';
const sha = (t: string) => createHash('sha256').update(t).digest('hex');
const sockDirs: Array<{ cleanup: () => void }> = [];
afterAll(() => sockDirs.forEach((d) => d.cleanup()));

type Accepted = { id: number; messageId: string; state: string; reason?: string };
type Row = { id: number; kind: string; state: string; text: string; content?: Record<string, unknown> };

async function world(extra: Record<string, unknown> = {}): Promise<{ w: World; bot: ControlClient; clientSocket: string }> {
  const sockDir = makeTmpDir('wam-');
  sockDirs.push(sockDir);
  const clientSocket = join(sockDir.dir, 'c', 'clients.sock');
  const w = await newWorld({
    config: (url) => ({
      clientSocket,
      clients: [{ name: 'bot', tokenSha256: sha(BOT_TOKEN), accounts: ['main'] }],
      accounts: [{ id: 'main', wsUrl: url }],
      ...extra,
    }),
  });
  await w.pair('main', MAIN);
  return { w, bot: new ControlClient({ socket: { path: clientSocket, source: 'flag' }, token: BOT_TOKEN }), clientSocket };
}

async function post(c: ControlClient, body: Record<string, unknown>): Promise<Accepted | ApiError> {
  try {
    return (await c.request<Accepted>('POST', '/v1/messages', { account: 'main', ...body })).body;
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
}

/** Polls a condition of the file system (what the daemon leaves on disk has no event). */
async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const mediaDir = (w: World) => join(w.dir, 'state', 'media');
const parts = (w: World) => (existsSync(join(mediaDir(w), 'tmp')) ? readdirSync(join(mediaDir(w), 'tmp')) : []);
const stored = (w: World) => readdirSync(mediaDir(w)).filter((f) => /^[0-9a-f]{64}$/.test(f));

/** A POST /v1/media whose body is written in two halves, the second when `second` resolves. */
function twoHalfUpload(socket: string, body: Buffer, second: Promise<void>, token?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        socketPath: socket,
        path: '/v1/media',
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'content-length': body.length, ...(token ? { authorization: `Bearer ${token}` } : {}) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    const half = Math.floor(body.length / 2);
    req.write(body.subarray(0, half));
    void second.then(() => req.end(body.subarray(half)));
  });
}

describe('a client pointing new kinds at messages the chat never got', () => {
  it('a reply or reaction to a held message is refused: its quote would show the held text to the peer', async () => {
    // Texts to HELD_PEER wait for four eyes; locations do not (kind `text` names text alone).
    const { w, bot } = await world({ policy: { default: 'allow', rules: [{ action: 'hold', name: 'four-eyes-text', match: { peer: HELD_PEER, kind: 'text' } }] } });
    const held = (await post(bot, { to: HELD_PEER, text: 'the held secret: wire 40k to IBAN X' })) as Accepted;
    expect(held.state).toBe('held');
    const reply = await post(bot, { to: HELD_PEER, location: { latitude: 1, longitude: 2 }, replyTo: held.messageId });
    const reaction = await post(bot, { to: HELD_PEER, reaction: { messageId: held.messageId, emoji: '👍' } });
    for (const r of [reply, reaction]) {
      // Accepted? then show what the peer got before failing.
      if (!(r instanceof ApiError)) await w.emulator.waitForDecrypted(HELD_PEER, (m) => m.id === r.messageId);
    }
    if (!(reply instanceof ApiError)) {
      const row = (await w.client.request<Row>('GET', `/v1/messages/${reply.id}`)).body;
      expect(row.content, 'the reply quotes the held text').not.toMatchObject({ replyTo: { text: expect.stringContaining('held secret') } });
    }
    expect(w.emulator.peerMessages(HELD_PEER).map((m) => m.detail)).toEqual([]);
    expect(reply).toBeInstanceOf(ApiError);
    expect(reaction).toBeInstanceOf(ApiError);
  });
});

describe("a client editing or deleting what another caller sent", () => {
  it('a client cannot delete or rewrite the operator\'s message (it cannot even cancel it)', async () => {
    const { w, bot } = await world();
    const mine = (await w.client.request<Accepted>('POST', '/v1/messages', { account: 'main', to: PEER, text: 'from the operator: the meeting is at 10' })).body;
    await w.emulator.waitForDecrypted(PEER, (m) => m.id === mine.messageId);
    await w.waitEvent((e) => e.type === 'message.sent' && e.id === mine.id);
    const edit = await post(bot, { to: PEER, edit: mine.messageId, text: 'from the operator: the meeting is cancelled' });
    const del = await post(bot, { to: PEER, delete: mine.messageId });
    for (const r of [edit, del]) if (!(r instanceof ApiError)) await w.emulator.waitForDecrypted(PEER, (m) => m.id === r.messageId);
    expect(w.emulator.peerMessages(PEER).map((m) => m.id)).toEqual([mine.messageId]);
    expect(edit).toMatchObject({ status: 403 });
    expect(del).toMatchObject({ status: 403 });
  });
});

describe('the media store under a client', () => {
  it('concurrent uploads cannot fill the store past media.storeMaxBytes', async () => {
    const KiB = 1024;
    const { w, clientSocket } = await world({ media: { maxBytes: 400 * KiB, storeMaxBytes: 1024 * KiB } });
    let go!: () => void;
    const second = new Promise<void>((r) => (go = r));
    // Four files of 400 KiB: two fit in 1 MiB, four do not.
    const files = [0, 1, 2, 3].map(() => mediaFile('pdf', 400 * KiB));
    const uploads = files.map((f) => twoHalfUpload(clientSocket, f, second, BOT_TOKEN));
    await until(() => parts(w).length === files.length, 'all uploads to be in progress');
    go();
    const answers = await Promise.all(uploads);
    const total = stored(w).length * 400 * KiB;
    expect({ accepted: answers.filter((a) => a.status === 201).length, total }).toEqual({ accepted: 2, total: 800 * KiB });
  });

  it('an upload cut off mid-body keeps nothing (no file in media/tmp) and the daemon goes on', async () => {
    const { w, clientSocket } = await world();
    const body = mediaFile('pdf', 200 * 1024);
    const req = request({
      socketPath: clientSocket,
      path: '/v1/media',
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'content-length': body.length, authorization: `Bearer ${BOT_TOKEN}` },
    });
    req.on('error', () => {});
    req.write(body.subarray(0, 50 * 1024));
    await until(() => parts(w).length === 1, 'the upload to be in progress');
    req.destroy();
    await until(() => parts(w).length === 0, 'the cut-off upload to be removed');
    expect(stored(w)).toEqual([]);
    // Empty and too-long bodies are clear refusals; the daemon still answers.
    const empty = await twoHalfUpload(clientSocket, Buffer.alloc(0), Promise.resolve(), BOT_TOKEN);
    expect(empty.status).toBe(400);
    expect(JSON.parse(empty.body)).toMatchObject({ error: { message: 'media: the file is empty' } });
    const ok = await twoHalfUpload(clientSocket, mediaFile('png', 5000), Promise.resolve(), BOT_TOKEN);
    expect(ok.status).toBe(201);
    expect(parts(w)).toEqual([]);
  });

  it('a client naming a host file by media.path is refused 403 with nothing stored, whatever the path', async () => {
    const { w, bot } = await world();
    for (const path of ['/etc/passwd', '/proc/self/environ', join(w.dir, 'state')]) {
      const r = await post(bot, { to: PEER, media: { path, kind: 'document' } });
      expect(r).toMatchObject({ status: 403 });
    }
    expect(stored(w)).toEqual([]);
    expect((await w.client.request<{ messages: Row[] }>('GET', '/v1/messages')).body.messages).toEqual([]);
  });

  it('a held media row keeps its file through a prune, even an old file, and goes out whole when approved', async () => {
    const { w, bot } = await world({ policy: { default: 'allow', rules: [{ action: 'hold', name: 'four-eyes', match: { peer: HELD_PEER } }] } });
    const jpeg = mediaFile('jpeg', 8000);
    const held = (await post(bot, { to: HELD_PEER, media: { base64: jpeg.toString('base64') } })) as Accepted;
    expect(held.state).toBe('held');
    const file = join(mediaDir(w), sha256Hex(jpeg));
    const old = new Date(Date.now() - 3 * 3_600_000);
    utimesSync(file, old, old);
    await w.client.request('POST', '/v1/messages/prune', { olderThan: 0 });
    expect(existsSync(file)).toBe(true);
    await w.client.request('POST', `/v1/messages/${held.id}/approve`);
    const got = await w.emulator.waitForDecrypted(HELD_PEER, (m) => m.id === held.messageId);
    expect(got).toMatchObject({ copies: 1, media: { kind: 'image', sha256: sha256Hex(jpeg), error: null } });
  });
});
