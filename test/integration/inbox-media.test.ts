// Inbound media, end to end: the emulator's peers send files (encrypted and stored on its HTTPS
// media server, as a phone's upload would be), the daemon's real Baileys receives the messages,
// and GET /v1/inbox/ID/media downloads, decrypts and checks a file on first use. The emulator's
// media server counts every download, which is how a cached answer is told from a fresh one.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { ApiError, ControlClient } from '../../src/control/client.js';
import { runCli } from '../helpers/cli-process.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { startWorld, type World } from '../helpers/world.js';

const A_PHONE = '15550001111';
const B_PHONE = '15550001112';
const PEER = '15550006000';
const READER_A = 'wst_reader-of-account-a-0123456789abcdef';
const READER_B = 'wst_reader-of-account-b-0123456789abcdef';
const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

let world: World;
let sockDir: { dir: string; cleanup: () => void };
let readerA: ControlClient;
let readerB: ControlClient;

beforeAll(async () => {
  sockDir = makeTmpDir('wam-');
  const clientSocket = join(sockDir.dir, 'c', 'clients.sock');
  world = await startWorld({
    config: (url) => ({
      clientSocket,
      clients: [
        { name: 'reader-a', tokenSha256: sha(READER_A), accounts: ['a'], may: ['read'] },
        { name: 'reader-b', tokenSha256: sha(READER_B), accounts: ['b'], may: ['read'] },
      ],
      accounts: [
        { id: 'a', wsUrl: url },
        { id: 'b', wsUrl: url },
      ],
    }),
  });
  await world.pair('a', A_PHONE);
  await world.pair('b', B_PHONE);
  const socket = { path: clientSocket, source: 'flag' as const };
  readerA = new ControlClient({ socket, token: READER_A });
  readerB = new ControlClient({ socket, token: READER_B });
}, 60_000);
afterAll(async () => {
  await world?.close();
  sockDir?.cleanup();
});

type Media = { kind: 'image' | 'video' | 'audio' | 'document' | 'sticker'; data: Buffer; mimetype: string; fileName?: string; caption?: string };

/** A peer sends account a file; resolves once the daemon stored it, with the emulator's stored file. */
async function receive(media: Media, to = A_PHONE): Promise<{ id: string; directPath: string }> {
  const from = world.events.length;
  const before = new Set(world.emulator.media().map((m) => m.directPath));
  const { id } = await world.emulator.sendInbound({ from: PEER, to, media });
  await world.waitEvent((e) => e.type === 'message.inbound' && e.id === id, { from });
  const stored = world.emulator.media().find((m) => !before.has(m.directPath) && m.storedBy === PEER);
  return { id, directPath: stored!.directPath };
}

/** GET of a file: status, headers and bytes (an error status as its JSON error). */
async function fetchMedia(client: ControlClient, id: string, query = '') {
  const sink = new PassThrough();
  const parts: Buffer[] = [];
  sink.on('data', (c: Buffer) => parts.push(c));
  try {
    const r = await client.download(`/v1/inbox/${encodeURIComponent(id)}/media${query}`, sink);
    return { status: r.status, headers: r.headers, bytes: Buffer.concat(parts), sha256: r.sha256 };
  } catch (err) {
    if (err instanceof ApiError) return { status: err.status, code: err.code, message: err.message, bytes: Buffer.concat(parts) };
    throw err;
  }
}

const downloadsOf = (directPath: string) => world.emulator.media().find((m) => m.directPath === directPath)!.downloads;
const cacheDir = () => join(world.dir, 'state', 'media-in');

describe('GET /v1/inbox/:id/media', () => {
  it('an image and a document: the bytes the peer sent, checked, with their type and name; the second GET comes from the cache', async () => {
    const image = randomBytes(70_001);
    const document = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(100_003)]);
    const img = await receive({ kind: 'image', data: image, mimetype: 'image/png', caption: 'look at this' });
    const doc = await receive({ kind: 'document', data: document, mimetype: 'application/pdf', fileName: 'Quarterly report €.pdf' });

    // What readers see: metadata and the plaintext hash, never the key or where the file is.
    const rows = (await world.client.request<{ messages: Array<Record<string, unknown>> }>('GET', '/v1/inbox?account=a')).body.messages;
    const imgRow = rows.find((r) => r.id === img.id)!;
    expect(imgRow).toMatchObject({ kind: 'image', text: 'look at this', detail: { mimetype: 'image/png', fileLength: image.length, sha256: sha(image) } });
    expect(rows.find((r) => r.id === doc.id)).toMatchObject({ kind: 'document', detail: { fileName: 'Quarterly report €.pdf', sha256: sha(document) } });
    const everythingShown = JSON.stringify([rows, world.events]);
    for (const secret of [img.directPath.split('?')[0]!, doc.directPath.split('?')[0]!, 'mediaKey', 'directPath', 'fileEncSha256']) expect(everythingShown).not.toContain(secret);

    const first = await fetchMedia(world.client, img.id);
    expect(first.status).toBe(200);
    expect(sha(first.bytes)).toBe(sha(image));
    expect(first.headers).toMatchObject({ 'content-type': 'image/png', 'content-length': String(image.length), 'x-wa-media-sha256': sha(image), 'x-wa-media-cache': 'miss' });
    expect(first.headers!['content-disposition']).toBeUndefined();
    expect(downloadsOf(img.directPath)).toBe(1);

    const again = await fetchMedia(world.client, img.id, '?account=a');
    expect(sha(again.bytes)).toBe(sha(image));
    expect(again.headers!['x-wa-media-cache']).toBe('hit');
    expect(downloadsOf(img.directPath)).toBe(1); // no second download from the media server

    const pdf = await fetchMedia(world.client, doc.id, `?account=a&chat=%2B${PEER}`);
    expect(pdf.status).toBe(200);
    expect(Buffer.compare(pdf.bytes, document)).toBe(0);
    expect(pdf.headers).toMatchObject({ 'content-type': 'application/pdf', 'content-length': String(document.length) });
    expect(pdf.headers!['content-disposition']).toBe(`attachment; filename="Quarterly report _.pdf"; filename*=UTF-8''Quarterly%20report%20%E2%82%AC.pdf`);
    expect(downloadsOf(doc.directPath)).toBe(1);
    expect(readdirSync(cacheDir()).sort()).toEqual([sha(image), sha(document)].sort());
    expect(readFileSync(join(cacheDir(), sha(document)))).toEqual(document);
  });

  it('a file corrupted on the media server is refused with 502 and nothing is cached; Baileys alone would have handed it over', async () => {
    const image = randomBytes(20_000);
    world.emulator.tamperMedia(); // the next stored file
    const { id, directPath } = await receive({ kind: 'image', data: image, mimetype: 'image/jpeg' });
    expect(world.emulator.media().find((m) => m.directPath === directPath)?.tampered).toBe(true);
    const refused = await fetchMedia(world.client, id);
    expect(refused).toMatchObject({ status: 502, code: 'media_corrupt', message: expect.stringContaining(`not ${sha(image)} as the message states`) });
    expect(refused.bytes.length).toBe(0);
    expect(readdirSync(cacheDir()).filter((n) => n.includes(sha(image)))).toEqual([]);
    expect(readdirSync(cacheDir()).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    // checked again on the next request, not remembered as good
    expect(await fetchMedia(world.client, id)).toMatchObject({ status: 502, code: 'media_corrupt' });
    expect(downloadsOf(directPath)).toBe(2);
  });

  it('a file expired on the media server is asked of the sender\'s phone again (through the policy, audited), fetched from where it now is, and checked', async () => {
    const image = randomBytes(40_009);
    const img = await receive({ kind: 'image', data: image, mimetype: 'image/png' });
    world.emulator.expireMedia(img.directPath);
    const reuploads = world.emulator.mediaReuploads;
    const got = await fetchMedia(world.client, img.id);
    expect(got.status, JSON.stringify(got)).toBe(200);
    expect(sha(got.bytes)).toBe(sha(image));
    expect(world.emulator.mediaReuploads).toBe(reuploads + 1);
    // The old path was never served; the new one once.
    expect(downloadsOf(img.directPath)).toBe(0);
    const now = world.emulator.sentMessages(PEER).find((m) => m.id === img.id)!.media!.directPath;
    expect(now).not.toBe(img.directPath);
    expect(downloadsOf(now)).toBe(1);
    const audit = (await world.client.request<{ audit: Array<{ kind: string; decision: string; reason: string }> }>('GET', '/v1/audit?account=a')).body.audit;
    expect(audit[0]).toMatchObject({ kind: 'receipt', decision: 'allow', reason: expect.stringContaining(`media re-upload request for ${img.id}`) });
  });

  it('a client reads the files of its accounts; another account\'s message is a 404, as an unknown id', async () => {
    const sticker = randomBytes(3_000);
    const { id, directPath } = await receive({ kind: 'sticker', data: sticker, mimetype: 'image/webp' });
    const mine = await fetchMedia(readerA, id);
    expect(mine.status).toBe(200);
    expect(sha(mine.bytes)).toBe(sha(sticker));
    const other = await fetchMedia(readerB, id);
    const unknown = await fetchMedia(readerB, 'NO-SUCH-ID');
    expect(other).toMatchObject({ status: 404, code: 'not_found' });
    expect(unknown).toMatchObject({ status: 404, code: 'not_found' });
    expect(await fetchMedia(readerB, id, '?account=a')).toMatchObject({ status: 404, code: 'not_found' });
    expect(downloadsOf(directPath)).toBe(1);
  });

  it('a text has no file (404 saying so); bad parameters are 400', async () => {
    const from = world.events.length;
    const { id } = await world.emulator.sendInbound({ from: PEER, to: A_PHONE, text: 'just words' });
    await world.waitEvent((e) => e.type === 'message.inbound' && e.id === id, { from });
    expect(await fetchMedia(world.client, id)).toMatchObject({ status: 404, code: 'not_found', message: expect.stringContaining('not media') });
    expect(await fetchMedia(world.client, id, '?limit=1')).toMatchObject({ status: 400, code: 'bad_request' });
  });
});

describe('wa-supervisor inbox media', () => {
  it('--out FILE writes the checked file and prints path, size and sha256; --json; --out - to stdout; an unknown id writes nothing', async () => {
    const audio = randomBytes(33_333);
    const { id } = await receive({ kind: 'audio', data: audio, mimetype: 'audio/ogg; codecs=opus' });
    const out = join(world.dir, 'voice.ogg');
    const human = await runCli(['inbox', 'media', id, '--account', 'a', '--out', out, '--socket', world.socket], world.env);
    expect(human.stderr).toBe('');
    expect(human.code).toBe(0);
    expect(human.stdout.trim()).toBe(`wrote ${out} (${audio.length} bytes, sha256 ${sha(audio)}, audio/ogg; codecs=opus)`);
    expect(Buffer.compare(readFileSync(out), audio)).toBe(0);

    const json = await runCli(['inbox', 'media', id, '--out', out, '--json', '--socket', world.socket], world.env);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual({ path: out, bytes: audio.length, sha256: sha(audio), mimetype: 'audio/ogg; codecs=opus' });

    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const got: Buffer[] = [];
    stdout.on('data', (c: Buffer) => got.push(c));
    const said: Buffer[] = [];
    stderr.on('data', (c: Buffer) => said.push(c));
    expect(await main(['inbox', 'media', id, '--out', '-', '--json', '--socket', world.socket], { stdout, stderr })).toBe(0);
    expect(Buffer.compare(Buffer.concat(got), audio)).toBe(0); // nothing else on stdout
    expect(JSON.parse(Buffer.concat(said).toString())).toMatchObject({ path: '-', sha256: sha(audio) });

    const missing = join(world.dir, 'missing.bin');
    const refused = await runCli(['inbox', 'media', 'NO-SUCH-ID', '--out', missing, '--socket', world.socket], world.env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('404 not_found');
    expect(existsSync(missing)).toBe(false);
    expect(readdirSync(world.dir).filter((n) => n.includes('.part-'))).toEqual([]);
    const usage = await runCli(['inbox', 'media', id, '--socket', world.socket], world.env);
    expect(usage.code).toBe(64);
  });
});
