// GET /v1/inbox/:id/media over a real unix socket, with a fake connector behind the service:
// the raw body and its headers, HEAD, and the JSON errors (404, 409, 502, 504).
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { inboxMediaRoute } from '../../src/control/inbox-routes.js';
import { ControlServer } from '../../src/control/server.js';
import { Inbox } from '../../src/inbox/inbox.js';
import { InboundMediaCache } from '../../src/inbox/media-cache.js';
import { InboxMedia } from '../../src/inbox/media.js';
import { InboxStore } from '../../src/inbox/store.js';
import { EventBus } from '../../src/events/bus.js';
import { closeStateDb, openStateDb, type StateDb } from '../../src/store/db.js';
import type { InboundMediaRef } from '../../src/wa/types.js';
import { FakeConnector } from '../fakes/wa-connector.js';
import { httpUnix } from '../helpers/http-unix.js';
import { tmpDirs } from '../helpers/tmp.js';
import { PEER, inboundMessage, silentLog } from '../inbox/support.js';

const newDir = tmpDirs(afterEach, 'wa-mroute-');
const open: Array<{ server: ControlServer; db: StateDb }> = [];
afterEach(async () => {
  for (const o of open.splice(0)) {
    await o.server.close();
    closeStateDb(o.db);
  }
});

function ref(file: Buffer, directPath: string, over: Partial<InboundMediaRef> = {}): InboundMediaRef {
  return {
    mediaType: 'document',
    mediaKey: randomBytes(32).toString('base64'),
    directPath,
    url: null,
    fileEncSha256: null,
    fileSha256: createHash('sha256').update(file).digest('base64'),
    fileLength: file.length,
    mimetype: 'text/csv',
    ...over,
  };
}

async function serve(timeoutMs = 5000) {
  const dir = newDir();
  const db = openStateDb(dir);
  const store = new InboxStore(db);
  const inbox = new Inbox({ store, bus: new EventBus(), log: silentLog });
  const connector = new FakeConnector();
  const media = new InboxMedia({ store, cache: new InboundMediaCache({ dir: join(dir, 'media-in') }), download: (r, o) => connector.downloadMedia(r, o), log: silentLog, timeoutMs });
  const socketPath = join(dir, 'c.sock');
  const server = new ControlServer({ socketPath, routes: [inboxMediaRoute(inbox, media)], log: silentLog });
  await server.listen();
  open.push({ server, db });
  return { store, connector, socketPath };
}

describe('GET /v1/inbox/:id/media', () => {
  it('answers the bytes with the type, length and file name; HEAD the headers alone', async () => {
    const { store, connector, socketPath } = await serve();
    const file = Buffer.from('a,b\n1,2\n');
    connector.mediaFiles.set('/v/doc', file);
    store.store('main', inboundMessage({ id: 'DOC1', kind: 'document', text: null, detail: { fileName: 'rows "1".csv' }, media: ref(file, '/v/doc') }), 'ok');
    const head = await httpUnix(socketPath, 'HEAD', '/v1/inbox/DOC1/media');
    expect(head).toMatchObject({ status: 200, body: '', headers: { 'content-type': 'text/csv', 'content-length': String(file.length), 'content-disposition': `attachment; filename="rows _1_.csv"; filename*=UTF-8''rows%20%221%22.csv` } });
    const got = await httpUnix(socketPath, 'GET', '/v1/inbox/DOC1/media?account=main');
    expect(got.status).toBe(200);
    expect(got.body).toBe(file.toString());
    expect(got.headers['x-content-type-options']).toBe('nosniff');
  });

  it('a mimetype that is not one is served as application/octet-stream', async () => {
    const { store, connector, socketPath } = await serve();
    const file = randomBytes(10);
    connector.mediaFiles.set('/v/img', file);
    store.store('main', inboundMessage({ id: 'IMG1', kind: 'image', text: null, media: ref(file, '/v/img', { mediaType: 'image', mimetype: 'text/html\u00e9; x=<script>' }) }), 'ok');
    expect((await httpUnix(socketPath, 'GET', '/v1/inbox/IMG1/media')).headers['content-type']).toBe('application/octet-stream');
  });

  it('JSON errors: 404 unknown or without a reference, 409 one id in two chats, 502 a failed download, 504 a server that never answers', async () => {
    const { store, connector, socketPath } = await serve(50);
    const error = async (path: string) => {
      const r = await httpUnix(socketPath, 'GET', path);
      return { status: r.status, type: r.headers['content-type'], ...(r.json() as { error: { code: string; message: string } }).error };
    };
    expect(await error('/v1/inbox/NOPE/media')).toMatchObject({ status: 404, type: 'application/json', code: 'not_found' });
    store.store('main', inboundMessage({ id: 'OLD', kind: 'image', text: null }), 'ok');
    expect(await error('/v1/inbox/OLD/media')).toMatchObject({ status: 404, code: 'not_found', message: expect.stringContaining('cannot be downloaded') });

    const file = randomBytes(100);
    store.store('main', inboundMessage({ id: 'TWICE', kind: 'image', text: null, media: ref(file, '/v/missing') }), 'ok');
    store.store('main', inboundMessage({ id: 'TWICE', chat: '120363000000000001@g.us', chatType: 'group', kind: 'image', text: null, media: ref(file, '/v/missing') }), 'ok');
    expect(await error('/v1/inbox/TWICE/media')).toMatchObject({ status: 409, code: 'conflict', message: expect.stringContaining('name one with account= and chat=') });
    expect(await error(`/v1/inbox/TWICE/media?chat=${encodeURIComponent(PEER)}`)).toMatchObject({ status: 502, code: 'download_failed' });

    connector.downloadMedia = () => new Promise(() => {});
    expect(await error('/v1/inbox/TWICE/media?chat=120363000000000001@g.us')).toMatchObject({ status: 504, code: 'download_timeout' });
  });
});
