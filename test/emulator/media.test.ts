// Media: media_conn, the HTTPS media server and its test CA, peers' phones verifying
// and decrypting what Baileys uploads, Baileys downloading what peers send, tampering, the
// control routes, and the preload trusting the CA in another process.
import { createHash, randomBytes } from 'node:crypto';
import { type WAMessage, type WASocket, downloadMediaMessage } from '@whiskeysockets/baileys';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { ControlApiError, EmulatorControlClient, MEDIA_CA_ENV, createEmulator, defaultMediaCaPem, trustedMediaCas } from '../../src/emulator/index.js';
import { TS_EXEC_ARGV, emulatorSource, runNode } from './support/child-process.js';
import { pairAndOpen, upserted, useEmulator } from './support/client.js';

const env = useEmulator({ beforeAll, afterAll, afterEach });

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

describe('Baileys uploads, peers download', () => {
  test('an image: media_conn names the HTTPS host, the upload is stored, the peer and the own phone verify it', async () => {
    const me = '15558000001';
    const peer = '15558000002';
    const { sock } = await pairAndOpen(env.emulator, me);
    const image = randomBytes(40_000);
    const mark = env.emulator.timeline.mark();
    const sent = await sock.sendMessage(`${peer}@s.whatsapp.net`, { image, caption: 'look' });
    const id = sent!.key.id!;
    const atPeer = await env.emulator.waitForDecrypted(peer, (m) => m.id === id);
    expect(atPeer.kind).toBe('imageMessage');
    expect(atPeer.media).toMatchObject({ kind: 'image', mimetype: 'image/jpeg', caption: 'look', size: image.length, fileLength: image.length, error: null });
    expect(atPeer.media!.sha256).toBe(sha256(image));
    const own = await env.emulator.waitForDecrypted(me, (m) => m.id === id, { own: true });
    expect(own.media).toMatchObject({ sha256: sha256(image), error: null });

    // media_conn answered with our host and a token, as Baileys parses it
    const answer = env.emulator.timeline.entries({ phone: me, after: mark }).find((e) => e.dir === 'out' && e.stanza.includes('<media_conn'));
    expect(answer?.stanza).toContain(`<host hostname="${env.emulator.mediaHost}"`);
    expect(answer?.stanza).toMatch(/<media_conn auth="[^"]+" ttl="300"/);

    // the stored file is what Baileys encrypted, at the path the message carries
    const content = sent!.message!.imageMessage!;
    const stored = env.emulator.media().find((m) => m.directPath === content.directPath);
    expect(stored).toMatchObject({ type: 'image', storedBy: me, tampered: false, encSha256: Buffer.from(content.fileEncSha256!).toString('hex') });
    expect(content.url).toBe(stored!.url);
    expect(stored!.url.startsWith(`https://${env.emulator.mediaHost}/v/`)).toBe(true);
    expect(stored!.downloads).toBeGreaterThanOrEqual(2); // peer and own phone
  });

  test('a document keeps its mimetype and file name, and its plaintext hash matches byte for byte', async () => {
    const me = '15558000003';
    const peer = '15558000004';
    const { sock } = await pairAndOpen(env.emulator, me);
    const document = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(100_003)]); // not a multiple of the AES block
    const sent = await sock.sendMessage(`${peer}@s.whatsapp.net`, { document, mimetype: 'application/pdf', fileName: 'report.pdf' });
    const atPeer = await env.emulator.waitForDecrypted(peer, (m) => m.id === sent!.key.id);
    expect(atPeer.media).toMatchObject({ kind: 'document', mimetype: 'application/pdf', fileName: 'report.pdf', size: document.length, error: null });
    expect(atPeer.media!.sha256).toBe(sha256(document));
  });

  test('an image to a group is verified by every member', async () => {
    const me = '15558000005';
    const members = ['15558000006', '15558000007'];
    const { sock } = await pairAndOpen(env.emulator, me);
    const group = env.emulator.createGroup({ subject: 'Pictures', participants: [me, ...members] });
    const image = randomBytes(5_000);
    const sent = await sock.sendMessage(group.jid, { image });
    for (const member of members) {
      const got = await env.emulator.waitForDecrypted(member, (m) => m.id === sent!.key.id);
      expect(got).toMatchObject({ group: group.jid, media: { kind: 'image', sha256: sha256(image), error: null } });
    }
  });

  test('a file corrupted at rest fails the peer phone fileEncSha256 check; the message is still received', async () => {
    const me = '15558000008';
    const peer = '15558000009';
    const { sock } = await pairAndOpen(env.emulator, me);
    expect(env.emulator.tamperMedia()).toBeNull(); // the next stored file
    const sent = await sock.sendMessage(`${peer}@s.whatsapp.net`, { image: randomBytes(3_000) });
    const atPeer = await env.emulator.waitForDecrypted(peer, (m) => m.id === sent!.key.id);
    expect(atPeer.media).toMatchObject({ kind: 'image', error: 'fileEncSha256 mismatch', sha256: null, size: null });
    const stored = env.emulator.media().find((m) => m.directPath === atPeer.media!.directPath);
    expect(stored?.tampered).toBe(true);
    expect(stored?.encSha256).not.toBe(Buffer.from(sent!.message!.imageMessage!.fileEncSha256!).toString('hex'));
    expect(env.emulator.events.entries(me).some((e) => e.text.includes('stored corrupted'))).toBe(true);

    // the next upload is stored intact again
    const image = randomBytes(3_000);
    const again = await sock.sendMessage(`${peer}@s.whatsapp.net`, { image });
    const ok = await env.emulator.waitForDecrypted(peer, (m) => m.id === again!.key.id);
    expect(ok.media).toMatchObject({ sha256: sha256(image), error: null });
  });
});

describe('peers upload, Baileys downloads', () => {
  test('a peer sends an image; downloadMediaMessage gives back the same bytes', async () => {
    const me = '15558000010';
    const peer = '15558000011';
    const { sock } = await pairAndOpen(env.emulator, me);
    const image = randomBytes(70_001);
    const arrived = upserted(sock, (m) => m.message?.imageMessage != null);
    const { id } = await env.emulator.sendInbound({ from: peer, to: me, media: { kind: 'image', data: image, mimetype: 'image/png', caption: 'from the peer' } });
    const message = await arrived;
    expect(message.key.id).toBe(id);
    expect(message.message!.imageMessage).toMatchObject({ mimetype: 'image/png', caption: 'from the peer' });
    const downloaded = await downloadMediaMessage(message, 'buffer', {});
    expect(sha256(downloaded)).toBe(sha256(image));
    expect(Buffer.compare(downloaded, image)).toBe(0);
    expect(env.emulator.sentMessages(peer).find((m) => m.id === id)).toMatchObject({ text: 'from the peer', media: { kind: 'image', sha256: sha256(image), size: image.length } });
  });

  test('Baileys does not check what it downloads: a file corrupted at rest comes back altered, without an error', async () => {
    const me = '15558000019';
    const peer = '15558000020';
    const { sock } = await pairAndOpen(env.emulator, me);
    const image = randomBytes(4_096);
    const arrived = upserted(sock, (m) => m.message?.imageMessage != null);
    env.emulator.tamperMedia();
    await env.emulator.sendInbound({ from: peer, to: me, media: { kind: 'image', data: image, mimetype: 'image/png' } });
    const downloaded = await downloadMediaMessage(await arrived, 'buffer', {});
    expect(downloaded.length).toBe(image.length);
    expect(Buffer.compare(downloaded, image)).not.toBe(0); // rc14 checks neither fileEncSha256, the MAC nor fileSha256
  });

  test('a group member sends a video to the group; Baileys downloads it', async () => {
    const me = '15558000017';
    const member = '15558000018';
    const { sock } = await pairAndOpen(env.emulator, me);
    const group = env.emulator.createGroup({ subject: 'Clips', participants: [me, member] });
    const video = randomBytes(9_999);
    const arrived = upserted(sock, (m) => m.message?.videoMessage != null);
    const { id } = await env.emulator.sendGroupInbound({ from: member, group: group.jid, media: { kind: 'video', data: video, mimetype: 'video/mp4' } });
    const message = await arrived;
    expect(message.key).toMatchObject({ id, remoteJid: group.jid });
    expect(Buffer.compare(await downloadMediaMessage(message, 'buffer', {}), video)).toBe(0);
  });

  test('through the control API: a peer sends a document, GET /media lists it, bad input is refused naming the field', async () => {
    const me = '15558000012';
    const peer = '15558000013';
    const { sock } = await pairAndOpen(env.emulator, me);
    const client = new EmulatorControlClient(await env.emulator.startControlApi());
    const document = randomBytes(12_345);
    const arrived = upserted(sock, (m) => m.message?.documentMessage != null);
    const media = { kind: 'document' as const, base64: document.toString('base64'), mimetype: 'text/csv', fileName: 'rows.csv' };
    const { id } = await client.inbound({ from: peer, to: me, media });
    const message = await arrived;
    expect(message.key.id).toBe(id);
    expect(message.message!.documentMessage).toMatchObject({ mimetype: 'text/csv', fileName: 'rows.csv' });
    expect(Buffer.compare(await downloadMediaMessage(message, 'buffer', {}), document)).toBe(0);

    const listed = (await client.media()).find((m) => m.directPath === message.message!.documentMessage!.directPath);
    expect(listed).toMatchObject({ type: 'document', storedBy: peer, tampered: false, size: document.length + 16 - (document.length % 16) + 10 });
    expect(listed!.downloads).toBe(1);
    expect(await client.mediaCa()).toEqual({ pem: env.emulator.mediaCaPem, host: env.emulator.mediaHost });

    const refused = async (body: Record<string, unknown>): Promise<ControlApiError> => {
      const response = await fetch(`${client.baseUrl}/inbound`, { method: 'POST', body: JSON.stringify({ from: peer, to: me, ...body }) });
      const { error } = (await response.json()) as { error: { code: string; message: string; field: string } };
      return new ControlApiError(response.status, error.code, error.message, error.field);
    };
    expect(await refused({ text: 'x', media })).toMatchObject({ status: 400, field: 'text' });
    expect(await refused({ media: { ...media, kind: 'gif' } })).toMatchObject({ status: 400, field: 'media.kind' });
    expect(await refused({ media: { ...media, base64: 'not base64!' } })).toMatchObject({ status: 400, field: 'media.base64' });
    expect(await refused({ media: { ...media, kind: 'image' } })).toMatchObject({ status: 400, field: 'media.fileName' });
    expect(await refused({})).toMatchObject({ status: 400, field: 'text' });

    // tampering a stored file through the API changes what the server serves
    const tampered = await client.tamperMedia(listed!.directPath);
    expect(tampered).toMatchObject({ directPath: listed!.directPath, tampered: true });
    expect((tampered as { encSha256: string }).encSha256).not.toBe(listed!.encSha256);
    await expect(client.tamperMedia('/v/t62.7119-24/nothing.enc')).rejects.toMatchObject({ status: 404, field: 'directPath' });
  });
});

describe('the media server', () => {
  test('the setup file trusts the default seed CA; another seed gives another CA, which fetch refuses', async () => {
    expect(env.emulator.mediaCaPem).toBe(defaultMediaCaPem());
    expect(trustedMediaCas()).toContain(env.emulator.mediaCaPem);
    const other = await createEmulator({ rootSeed: randomBytes(32) });
    try {
      expect(other.mediaCaPem).not.toBe(env.emulator.mediaCaPem);
      const error = (await fetch(`https://${other.mediaHost}/v/t62.7118-24/x.enc`).catch((e: unknown) => e)) as { cause?: { code?: string } };
      expect(error.cause?.code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    } finally {
      await other.close();
    }
  });

  test('refuses an upload with a token it did not issue, a wrong hash, or an unknown path', async () => {
    const base = `https://${env.emulator.mediaHost}`;
    const body = randomBytes(100);
    const hash = createHash('sha256').update(body).digest('base64url');
    const post = (path: string) => fetch(`${base}${path}`, { method: 'POST', body });
    expect((await post(`/mms/image/${hash}?auth=forged&token=${hash}`)).status).toBe(401);
    expect((await fetch(`${base}/v/t62.7118-24/missing.enc`)).status).toBe(404);
    expect((await fetch(`${base}/mms/ppic/${hash}`, { method: 'POST', body })).status).toBe(404);
    // a real token (as Baileys parses media_conn), with a hash that does not match the body
    const { sock } = await pairAndOpen(env.emulator, '15558000014');
    const conn = await sock.refreshMediaConn(true);
    expect(conn.hosts).toEqual([{ hostname: env.emulator.mediaHost, maxContentLengthBytes: 64 * 1024 * 1024 }]);
    expect(sock.getMediaHost()).toBe(env.emulator.mediaHost);
    const token = conn.auth;
    const wrong = createHash('sha256').update('other').digest('base64url');
    expect((await post(`/mms/image/${wrong}?auth=${encodeURIComponent(token)}&token=${wrong}`)).status).toBe(400);
    const stored = await post(`/mms/image/${hash}?auth=${encodeURIComponent(token)}&token=${hash}`);
    expect(stored.status).toBe(200);
    const { url, direct_path } = (await stored.json()) as { url: string; direct_path: string };
    expect(url).toBe(`${base}${direct_path}&mms3=true`);
    const ranged = await fetch(url, { headers: { range: 'bytes=10-19' } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer())).toEqual(body.subarray(10, 20));
  });

  test('another process trusts the CA only through the preload (WA_EMULATOR_MEDIA_CA); TLS verification stays on', async () => {
    const peer = '15558000015';
    const me = '15558000016';
    await pairAndOpen(env.emulator, me);
    const file = randomBytes(2_000);
    await env.emulator.sendInbound({ from: peer, to: me, media: { kind: 'sticker', data: file, mimetype: 'image/webp' } });
    const stored = env.emulator.media().find((m) => m.storedBy === peer)!;
    // Both stacks Baileys uses: fetch (downloads) and https (uploads). Prints status or TLS error
    // code of each, and the hash of what fetch got; exits without waiting for keep-alive sockets.
    const url = JSON.stringify(stored.url);
    const script = `const https = await import('node:https');
      const { createHash } = await import('node:crypto');
      const viaFetch = await fetch(${url}).then(async (r) => r.status + ' ' + createHash('sha256').update(Buffer.from(await r.arrayBuffer())).digest('hex'), (e) => e.cause?.code ?? e.message);
      const viaHttps = await new Promise((ok) => https.get(${url}, (res) => { res.resume(); ok(res.statusCode); }).on('error', (e) => ok(e.code)));
      console.log(viaFetch + ' / ' + viaHttps); process.exit(0);`;
    const withPreload = await runNode(
      [...TS_EXEC_ARGV, '--import', emulatorSource('preload.ts'), '--input-type=module', '-e', script],
      { ...process.env, [MEDIA_CA_ENV]: env.emulator.mediaCaPem },
    );
    expect(withPreload.stdout.trim()).toBe(`200 ${stored.encSha256} / 200`);
    const { [MEDIA_CA_ENV]: _unset, ...withoutCa } = process.env;
    const without = await runNode(['--input-type=module', '-e', script], withoutCa);
    expect(without.stdout.trim()).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE / UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });
});
