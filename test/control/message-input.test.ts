// Query and body values of the outbox routes that were once taken as given: a negative
// `olderThan` deleted every finished row (and forgot its idempotency key), a fractional one was
// used as is, and `before=abc` was silently ignored. Real requests over the unix socket, and the
// CLI as a user runs it, against a gate whose store records what it was asked.
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildRoutes, type AccountsApi } from '../../src/control/routes.js';
import { ControlServer } from '../../src/control/server.js';
import type { DaemonInfo } from '../../src/control/wire.js';
import { EventBus } from '../../src/events/bus.js';
import type { SendGate } from '../../src/outbox/send-gate.js';
import { isolatedEnv, runCli } from '../helpers/cli-process.js';
import { httpUnix } from '../helpers/http-unix.js';
import { makeTmpDir } from '../helpers/tmp.js';

let dir: string;
let cleanup: () => void;
let sock: string;
let server: ControlServer;
let prunes: number[];
let lists: Array<Record<string, unknown>>;

beforeEach(async () => {
  ({ dir, cleanup } = makeTmpDir());
  sock = join(dir, 'ctl.sock');
  prunes = [];
  lists = [];
  const gate = {
    store: {
      prune: (before: number) => {
        prunes.push(before);
        return 0;
      },
      list: (filter: Record<string, unknown>) => {
        lists.push(filter);
        return [];
      },
    },
  } as unknown as SendGate;
  server = new ControlServer({
    socketPath: sock,
    log: pino({ level: 'silent' }),
    routes: buildRoutes({ daemonInfo: () => ({}) as DaemonInfo, accounts: {} as AccountsApi, gate, bus: new EventBus(), checkConfig: () => {} }),
  });
  await server.listen();
});
afterEach(async () => {
  await server.close(100);
  cleanup();
});

const json = { 'content-type': 'application/json' };

describe('POST /v1/messages/prune: olderThan', () => {
  it.each([
    { olderThan: -1, shown: '-1' },
    { olderThan: -86_400_000, shown: '-86400000' },
    { olderThan: 1.5, shown: '1.5' },
    { olderThan: 1e300, shown: '1e+300' },
    { olderThan: '-5', shown: '"-5"' },
    { olderThan: '1.5h', shown: '"1.5h"' },
    { olderThan: '7 days', shown: '"7 days"' },
    { olderThan: true, shown: 'true' },
    { olderThan: undefined, shown: 'nothing' },
  ])('refuses $shown with 400 naming the field, and deletes nothing', async ({ olderThan, shown }) => {
    const r = await httpUnix(sock, 'POST', '/v1/messages/prune', JSON.stringify({ olderThan }), json);
    expect(r.status).toBe(400);
    expect(r.json()).toEqual({
      error: {
        code: 'bad_request',
        message: `olderThan: expected a duration such as "7d", "12h" or a whole number of milliseconds (0 or more), got ${shown}`,
      },
    });
    expect(prunes).toEqual([]);
  });

  it.each([
    { olderThan: 0, ms: 0 },
    { olderThan: 60_000, ms: 60_000 },
    { olderThan: '7d', ms: 7 * 86_400_000 },
    { olderThan: '90s', ms: 90_000 },
  ])('accepts $olderThan as $ms ms, cutting off in the past', async ({ olderThan, ms }) => {
    const before = Date.now();
    const r = await httpUnix(sock, 'POST', '/v1/messages/prune', JSON.stringify({ olderThan }), json);
    expect(r.json()).toEqual({ deleted: 0, olderThanMs: ms });
    expect(prunes).toHaveLength(1);
    expect(prunes[0]!).toBeLessThanOrEqual(Date.now() - ms);
    expect(prunes[0]!).toBeGreaterThanOrEqual(before - ms);
  });
});

describe('GET /v1/messages: before', () => {
  it.each(['abc', '', '0', '-3', '1.5', '1e3', ' 7', '0x10', '12345678901234567890'])('refuses before=%j with 400 naming the field', async (before) => {
    const r = await httpUnix(sock, 'GET', `/v1/messages?before=${encodeURIComponent(before)}`);
    expect(r.status).toBe(400);
    expect(r.json()).toEqual({
      error: { code: 'bad_request', message: `before: expected a message id (a positive integer), got ${JSON.stringify(before)}` },
    });
    expect(lists).toEqual([]);
  });

  it('passes a valid before on as the id to list below', async () => {
    expect((await httpUnix(sock, 'GET', '/v1/messages?before=42')).json()).toEqual({ messages: [] });
    expect(lists).toEqual([{ limit: 100, beforeId: 42 }]);
  });
});

describe('wa-supervisor messages prune', () => {
  it('exits non-zero with the message for a negative --older-than, deleting nothing', async () => {
    const r = await runCli(['messages', 'prune', '--older-than=-5', '--socket', sock], isolatedEnv(dir));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('olderThan: expected a duration such as "7d", "12h" or a whole number of milliseconds (0 or more), got "-5"');
    expect(prunes).toEqual([]);
  });
});
