import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, ControlClient, DaemonUnreachableError } from '../../src/control/client.js';
import { VERSION_HEADER } from '../../src/version.js';
import { makeStaleSocket, silentDaemon } from '../helpers/http-unix.js';
import { makeTmpDir } from '../helpers/tmp.js';

const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function fakeDaemon(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const { dir, cleanup } = makeTmpDir();
  cleanups.push(cleanup);
  const path = join(dir, 'd.sock');
  const server: Server = createServer(handler);
  await new Promise<void>((r) => server.listen(path, r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return path;
}

describe('ControlClient', () => {
  it('warns once when the daemon runs another version', async () => {
    const path = await fakeDaemon((_req, res) => {
      res.writeHead(200, { [VERSION_HEADER]: '99.0.0', 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
    const seen: string[] = [];
    const client = new ControlClient({ socket: { path, source: 'flag' }, onVersionMismatch: (v) => seen.push(v) });
    expect((await client.request('GET', '/v1/status')).body).toEqual({ ok: true });
    await client.request('GET', '/v1/status');
    expect(seen).toEqual(['99.0.0']);
  });

  it('a request aborted by its signal closes its connection', async () => {
    const { dir, cleanup } = makeTmpDir();
    const path = join(dir, 'd.sock');
    const daemon = await silentDaemon(path);
    cleanups.push(cleanup, daemon.close);
    const client = new ControlClient({ socket: { path, source: 'flag' } });
    const abort = new AbortController();
    const asked = client.request('GET', '/v1/status', undefined, {}, abort.signal);
    await daemon.received;
    abort.abort();
    await expect(asked).rejects.toThrow(/abort/i);
    await daemon.hungUp;
  });

  it('turns an error reply into ApiError with the code and message', async () => {
    const path = await fakeDaemon((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":{"code":"not_found","message":"no route /v1/x"}}');
    });
    const client = new ControlClient({ socket: { path, source: 'flag' } });
    await expect(client.request('GET', '/v1/x')).rejects.toEqual(new ApiError(404, 'not_found', 'no route /v1/x'));
  });

  it('explains a missing socket and a socket nobody answers on', async () => {
    const { dir, cleanup } = makeTmpDir();
    cleanups.push(cleanup);
    const missing = new ControlClient({ socket: { path: join(dir, 'none.sock'), source: 'default' } });
    const err = await missing.request('GET', '/v1/status').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DaemonUnreachableError);
    expect((err as Error).message).toContain(`at ${join(dir, 'none.sock')} (no socket file there)`);
    expect((err as Error).message).toContain('socket path: default; override with --socket or WA_SUPERVISOR_SOCKET');

    // A socket file left by a killed process: refused, retried briefly, then explained.
    const stale = join(dir, 'stale.sock');
    await makeStaleSocket(stale);
    const refused = new ControlClient({ socket: { path: stale, source: 'flag' }, retryRefusedMs: 200 });
    const err2 = await refused.request('GET', '/v1/status').catch((e: unknown) => e);
    expect((err2 as DaemonUnreachableError).errno).toBe('ECONNREFUSED');
    expect((err2 as Error).message).toContain('a socket file is there but nothing answers');
  });
});
