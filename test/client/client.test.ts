// The typed client against a fake daemon on a unix socket: the edges of its time limits and
// signals, which a real daemon does not produce on demand (a read that never answers). The real
// daemon is in test/integration/echo-bot.test.ts.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Client, ConnectionLostError, TimeoutError } from 'wa-supervisor/client';
import { makeTmpDir } from '../helpers/tmp.js';

let tmp: { dir: string; cleanup: () => void };
let server: Server;
let socket: string;
let requests: string[];
let handle: (req: IncomingMessage, res: ServerResponse) => void;

beforeEach(async () => {
  tmp = makeTmpDir('wa-client-');
  socket = join(tmp.dir, 'd.sock');
  requests = [];
  server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    handle(req, res);
  });
  await new Promise<void>((r) => server.listen(socket, r));
});
afterEach(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  tmp.cleanup();
});

const json = (res: ServerResponse, status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

describe('waitFor', () => {
  it('ends at its own deadline when a read of the message never answers', async () => {
    handle = () => undefined; // never answers
    const client = new Client({ socket, token: 't', timeoutMs: 60_000 });
    const err = await client.waitFor(1, 'sent', { timeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).message).toMatch(/waiting for message 1 to be sent/);
  });

  it('with a signal already aborted, asks the daemon nothing', async () => {
    handle = (_req, res) => json(res, 200, {});
    const client = new Client({ socket, token: 't' });
    const stop = new AbortController();
    stop.abort(new Error('stopped'));
    await expect(client.waitFor(1, 'sent', { signal: stop.signal })).rejects.toThrow('stopped');
    await expect(client.events({}, { signal: stop.signal })).rejects.toThrow('stopped');
    expect(requests).toEqual([]);
  });

  it('follows the row by reading it when the daemon has no subscriber slot left (503)', async () => {
    let reads = 0;
    handle = (req, res) => {
      if (req.url?.startsWith('/v1/events')) return json(res, 503, { error: { code: 'too_many_subscribers', message: 'full' } });
      reads += 1;
      json(res, 200, { id: 1, account: 'a', state: reads < 3 ? 'queued' : 'delivered' });
    };
    const client = new Client({ socket, token: 't' });
    expect(await client.waitFor(1, 'sent', { pollMs: 10 })).toMatchObject({ id: 1, state: 'delivered' });
  });
});

describe('send', () => {
  it('a connection broken mid-request is ConnectionLostError (the outcome is unknown), not "unreachable"', async () => {
    handle = (req) => req.socket.destroy();
    const client = new Client({ socket, token: 't' });
    await expect(client.send({ account: 'a', to: '1', text: 'x' })).rejects.toBeInstanceOf(ConnectionLostError);
  });

  it('answers what the send answered when the read of the stored row fails: the message is queued, not failed', async () => {
    handle = (req, res) => (req.method === 'POST' ? json(res, 202, { id: 9, messageId: 'M', state: 'queued' }) : json(res, 500, { error: { code: 'internal', message: 'boom' } }));
    const client = new Client({ socket, token: 't' });
    expect(await client.send({ account: 'a', to: '1', text: 'x' })).toMatchObject({ id: 9, state: 'queued' });
  });
});

describe('streams', () => {
  it('an event iterator closed before it was read closes its connection (a subscriber slot of the daemon)', async () => {
    let closed!: () => void;
    const gone = new Promise<void>((r) => (closed = r));
    handle = (req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write('');
      req.socket.once('close', () => closed());
    };
    const client = new Client({ socket, token: 't' });
    const events = await client.events({ account: 'a' });
    await events.return(undefined);
    await gone;
  });

  it('a connection cut while the answer is read is ConnectionLostError', async () => {
    handle = (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 1000 });
      res.write('{"messages":[', () => req.socket.destroy());
    };
    const client = new Client({ socket, token: 't' });
    await expect(client.inbox()).rejects.toBeInstanceOf(ConnectionLostError);
  });
});
