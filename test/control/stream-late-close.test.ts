// A stream whose reader left while its handler was still awaiting (a store round trip before the
// stream opens): the stream opens already closed and its close callbacks run, so what it holds (a
// consumer's reader slot and lock) is given back instead of kept for a reader that is gone.
import { request } from 'node:http';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlServer, type Route } from '../../src/control/server.js';
import { makeTmpDir } from '../helpers/tmp.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('a stream opened after its reader left', () => {
  it('is closed at once and runs its close callbacks', async () => {
    const { dir, cleanup } = makeTmpDir();
    cleanups.push(cleanup);
    let arrived!: () => void;
    const handlerRunning = new Promise<void>((r) => (arrived = r));
    let proceed!: () => void;
    const mayOpen = new Promise<void>((r) => (proceed = r));
    const seen: { closedAtOpen?: boolean; onCloseRan?: boolean } = {};
    const route: Route = {
      method: 'GET',
      path: '/v1/slow-stream',
      subscriber: true,
      handler: async (req) => {
        arrived();
        await mayOpen; // a store round trip, during which the reader goes away
        const stream = req.openStream();
        seen.closedAtOpen = stream.closed;
        stream.onClose(() => (seen.onCloseRan = true));
      },
    };
    const socketPath = join(dir, 's.sock');
    const server = new ControlServer({ socketPath, log: pino({ level: 'silent' }), routes: [route] });
    await server.listen();
    cleanups.push(() => server.close(100));
    const req = request({ socketPath, method: 'GET', path: '/v1/slow-stream' });
    req.on('error', () => undefined);
    req.end();
    await handlerRunning;
    expect(server.subscriberCount).toBe(1);
    const gone = new Promise<void>((r) => req.on('close', () => r()));
    req.destroy();
    await gone;
    // The server has seen the reader go: its subscriber slot is given back.
    for (let i = 0; i < 1000 && server.subscriberCount > 0; i++) await new Promise((r) => setImmediate(r));
    expect(server.subscriberCount).toBe(0);
    proceed();
    for (let i = 0; i < 10 && seen.onCloseRan === undefined; i++) await new Promise((r) => setImmediate(r));
    expect(seen).toEqual({ closedAtOpen: true, onCloseRan: true });
  });
});
