// What the inbox keeps of a media message: the metadata readers see in `detail`, and apart from
// it the reference a download needs (key, path, hashes), which must never reach `detail`.
import { createHash, randomBytes } from 'node:crypto';
import { proto, type WAMessage } from '@whiskeysockets/baileys';
import { describe, expect, it } from 'vitest';
import { describeContent, toInbound } from '../../src/wa/message-mapping.js';

const mediaKey = randomBytes(32);
const plaintext = randomBytes(1000);
const fileSha256 = createHash('sha256').update(plaintext).digest();
const fileEncSha256 = randomBytes(32);

function imageFields() {
  return {
    url: 'https://mmg.whatsapp.net/v/t62.7118-24/1_2_3_n.enc?ccb=11-4&oh=01_secret&oe=68000000&_nc_sid=5e03e0&mms3=true',
    directPath: '/v/t62.7118-24/1_2_3_n.enc?ccb=11-4&oh=01_secret&oe=68000000&_nc_sid=5e03e0',
    mediaKey,
    fileSha256,
    fileEncSha256,
    fileLength: 1000,
    mimetype: 'image/png',
    caption: 'look',
  };
}

describe('media messages: detail for readers, the download reference apart', () => {
  it('an image decoded from the wire (bytes as Buffers, length as a Long) gives its reference', () => {
    const wire = proto.Message.decode(proto.Message.encode({ imageMessage: imageFields() }).finish());
    const content = describeContent(wire)!;
    expect(content).toEqual({
      kind: 'image',
      text: 'look',
      detail: { mimetype: 'image/png', fileLength: 1000, sha256: fileSha256.toString('hex') },
      media: {
        mediaType: 'image',
        mediaKey: mediaKey.toString('base64'),
        directPath: imageFields().directPath,
        url: imageFields().url,
        fileEncSha256: fileEncSha256.toString('base64'),
        fileSha256: fileSha256.toString('base64'),
        fileLength: 1000,
        mimetype: 'image/png',
      },
    });
  });

  it('nothing secret in detail: neither key, URL, path nor encrypted hash', () => {
    const content = describeContent({ imageMessage: imageFields() })!;
    const detail = JSON.stringify(content.detail);
    for (const secret of [mediaKey.toString('base64'), mediaKey.toString('hex'), 'oh=01_secret', '1_2_3_n.enc', fileEncSha256.toString('base64')]) {
      expect(detail).not.toContain(secret);
    }
    expect(Object.keys(content.detail!).sort()).toEqual(['fileLength', 'mimetype', 'sha256']);
  });

  it.each([
    ['videoMessage', 'video'],
    ['audioMessage', 'audio'],
    ['stickerMessage', 'sticker'],
  ] as const)('%s gives a %s reference', (field, mediaType) => {
    const { caption: _c, ...fields } = imageFields();
    expect(describeContent({ [field]: fields })?.media).toMatchObject({ mediaType, mediaKey: mediaKey.toString('base64') });
  });

  it('a document keeps its file name in detail; wrapped (caption, view once) it is found too', () => {
    const document = { ...imageFields(), mimetype: 'application/pdf', fileName: 'report.pdf', caption: undefined };
    const wrapped = describeContent({ documentWithCaptionMessage: { message: { documentMessage: { ...document, caption: 'the file' } } } })!;
    expect(wrapped).toMatchObject({ kind: 'document', text: 'the file', detail: { fileName: 'report.pdf', mimetype: 'application/pdf' }, media: { mediaType: 'document', mimetype: 'application/pdf' } });
    expect(describeContent({ viewOnceMessageV2: { message: { imageMessage: imageFields() } } })?.media?.mediaType).toBe('image');
  });

  it('a media message without a key or without any location keeps its metadata and no reference', () => {
    const { mediaKey: _k, ...noKey } = imageFields();
    expect(describeContent({ imageMessage: noKey })).toMatchObject({ kind: 'image', detail: { mimetype: 'image/png' } });
    expect(describeContent({ imageMessage: noKey })).not.toHaveProperty('media');
    const { url: _u, directPath: _d, ...nowhere } = imageFields();
    expect(describeContent({ imageMessage: nowhere })).not.toHaveProperty('media');
  });

  it('toInbound carries the reference on the message, apart from detail; a text has none', () => {
    const m = { key: { id: 'IMG1', remoteJid: '15550002222@s.whatsapp.net' }, message: { imageMessage: imageFields() }, messageTimestamp: 5 } as WAMessage;
    const inbound = toInbound(m)!;
    expect(inbound.media).toMatchObject({ mediaType: 'image', fileSha256: fileSha256.toString('base64') });
    expect(inbound.detail).not.toHaveProperty('mediaKey');
    const text = { key: { id: 'T1', remoteJid: '15550002222@s.whatsapp.net' }, message: { conversation: 'hi' }, messageTimestamp: 5 } as WAMessage;
    expect(toInbound(text)).not.toHaveProperty('media');
  });
});
