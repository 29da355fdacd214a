import { createHmac } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventBus } from '../../src/events/bus.js';
import { ANY_READER, ConsumerError, type ConsumerLocks } from '../../src/inbox/consumer-service.js';
import { ConsumerStore } from '../../src/inbox/consumers.js';
import { Inbox } from '../../src/inbox/inbox.js';
import { InboxStore, type InboxRow } from '../../src/inbox/store.js';
import { DEFAULT_WEBHOOK_SETTINGS, type Poster, type StuckContext } from '../../src/inbox/webhook.js';
import { closeStateDb, openStateDb, type StateDb } from '../../src/store/db.js';
import type { InboundMessage } from '../../src/wa/types.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { PEER, SECRET, consumerService, inboundMessage, type ServiceOptions, silentLog, sink, until } from './support.js';

const OTHER = '15550003333@s.whatsapp.net';

let tmp: { dir: string; cleanup: () => void };
let db: StateDb;
let inbox: Inbox<InboxStore>;
let service: ReturnType<typeof consumerService> | undefined;

beforeEach(() => {
  tmp = makeTmpDir('wa-consumers-');
  db = openStateDb(tmp.dir);
  inbox = new Inbox({ store: new InboxStore(db), bus: new EventBus(), log: silentLog });
});
afterEach(async () => {
  await service?.stop();
  service = undefined;
  closeStateDb(db);
  tmp.cleanup();
});

function receive(over: Partial<InboundMessage> = {}, account = 'main'): InboxRow {
  return inbox.receive(account, inboundMessage(over)).row;
}

function makeService(opts: ServiceOptions & { db?: StateDb } = {}): ReturnType<typeof consumerService> {
  service = consumerService(opts.db ?? db, inbox, opts);
  return service;
}

describe('stream consumers', () => {
  it('a reader that dies and comes back gets everything after its committed cursor: none missed, none after an ack twice', async () => {
    const svc = makeService();
    await svc.applyConfig([{ name: 'bot', type: 'stream' }], DEFAULT_WEBHOOK_SETTINGS);
    const seen = new Map<string, number>(); // id -> times delivered after the last ack covering it
    let committed = 0;
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(receive().id);
    // Five lives; each reads a random number of rows, acks some of them, and dies.
    for (let life = 0; life < 5; life++) {
      const s = sink();
      await svc.openStream('bot', () => s, ANY_READER);
      await new Promise((r) => setImmediate(r));
      for (let i = 0; i < 7; i++) ids.push(receive().id); // live ones arrive while it reads
      for (const row of s.rows) {
        expect(row.cursor).toBeGreaterThan(committed);
        seen.set(row.id, (seen.get(row.id) ?? 0) + 1);
      }
      const ackUpTo = s.rows[Math.floor(s.rows.length / 2)];
      if (ackUpTo) committed = await svc.ack('bot', ackUpTo.cursor, ANY_READER);
      s.close();
    }
    const s = sink();
    await svc.openStream('bot', () => s, ANY_READER);
    await new Promise((r) => setImmediate(r));
    const rest = s.rows.map((r) => r.id);
    const delivered = new Set([...seen.keys(), ...rest]);
    expect([...ids].filter((id) => !delivered.has(id))).toEqual([]);
    // rows at or below the committed cursor were never handed out again
    expect(s.rows.every((r) => r.cursor > committed)).toBe(true);
    expect((await svc.get('bot')).lag.unacknowledged).toBe(inbox.store.list({ limit: 1000, statuses: ['ok'], after: committed }).length);
    s.close();
  });

  it('one reader at a time; acks never move back and cannot name a cursor never given; the cursor survives a restart', async () => {
    const svc = makeService();
    await svc.applyConfig([{ name: 'bot', type: 'stream', accounts: ['main'] }], DEFAULT_WEBHOOK_SETTINGS);
    const a = receive();
    const b = receive();
    receive({}, 'second'); // not this consumer's account
    const first = sink();
    await svc.openStream('bot', () => first, ANY_READER);
    await expect(svc.openStream('bot', () => sink(), ANY_READER)).rejects.toThrow(ConsumerError);
    expect((await svc.get('bot')).connected).toBe(true);
    expect(await svc.ack('bot', b.cursor, ANY_READER)).toBe(b.cursor);
    expect(await svc.ack('bot', a.cursor, ANY_READER)).toBe(b.cursor);
    await expect(svc.ack('bot', b.cursor + 100, ANY_READER)).rejects.toThrow(/never given/);
    first.close();
    expect((await svc.get('bot')).connected).toBe(false);
    expect((await svc.get('bot')).lag.unacknowledged).toBe(0);
    closeStateDb(db);
    db = openStateDb(tmp.dir);
    const again = new ConsumerStore(db);
    expect(again.get('bot')?.cursor).toBe(b.cursor);
  });

  it('config consumers follow the config; API consumers are kept; a config consumer cannot be removed through the API', async () => {
    const svc = makeService();
    expect(await svc.applyConfig([{ name: 'a', type: 'stream' }, { name: 'b', type: 'stream' }], DEFAULT_WEBHOOK_SETTINGS)).toEqual({ added: ['a', 'b'], removed: [] });
    await svc.add({ name: 'api', type: 'stream' });
    await expect(svc.add({ name: 'api', type: 'stream' })).rejects.toThrow(/exists/);
    const reader = sink();
    await svc.openStream('a', () => reader, ANY_READER);
    await svc.ack('a', receive().cursor, ANY_READER);
    reader.close();
    expect(await svc.applyConfig([{ name: 'a', type: 'stream', accounts: ['main'] }], DEFAULT_WEBHOOK_SETTINGS)).toEqual({ added: [], removed: ['b'] });
    expect((await svc.list()).map((c) => [c.name, c.origin, c.accounts])).toEqual([
      ['a', 'config', ['main']],
      ['api', 'api', null],
    ]);
    expect((await svc.get('a')).cursor).not.toBe('0');
    await expect(svc.remove('a')).rejects.toThrow(/config file/);
    await svc.remove('api');
    expect((await svc.list()).map((c) => c.name)).toEqual(['a']);
  });

  it('in a cluster, a config consumer this daemon does not list (no daemon does any more) is removed through the API; one it lists is not', async () => {
    // One daemon's locks, always granted: the removal rule, not the locking, is under test here.
    const locks: ConsumerLocks = { tryTake: async () => true, release: async () => undefined, onLost: () => undefined, close: async () => undefined };
    const svc = consumerService(db, inbox, { locks });
    service = svc;
    await svc.applyConfig([{ name: 'a', type: 'stream' }], DEFAULT_WEBHOOK_SETTINGS);
    await svc.add({ name: 'gone', type: 'stream' });
    db.prepare("UPDATE inbox_consumers SET origin = 'config' WHERE name = 'gone'").run(); // listed by another daemon's older config
    await expect(svc.remove('a')).rejects.toThrow(/every daemon's config/);
    await svc.remove('gone');
    expect((await svc.list()).map((c) => c.name)).toEqual(['a']);
  });
});

describe('webhook consumers', () => {
  it('a loop that ended by itself (its consumer gone at a step) gives its lock back, and the consumer, back again, is delivered', async () => {
    const held = new Map<string, number>(); // locks stack per session, as PostgreSQL's do
    const locks: ConsumerLocks = {
      tryTake: async (n) => (held.set(n, (held.get(n) ?? 0) + 1), true),
      release: async (n) => void held.set(n, (held.get(n) ?? 0) - 1),
      onLost: () => undefined,
      close: async () => undefined,
    };
    const posted: string[] = [];
    const svc = consumerService(db, inbox, {
      locks,
      post: async (_url, body) => {
        const text = JSON.parse(body).message.text;
        posted.push(text);
        // Removed through another daemon while this POST was out: the loop finds it gone at its next step and ends.
        if (text === 'first' && posted.length === 1) db.prepare("DELETE FROM inbox_consumers WHERE name = 'hook'").run();
        return 200;
      },
    });
    service = svc;
    const spec = { name: 'hook', type: 'webhook' as const, url: 'http://127.0.0.1:1/x', secret: SECRET };
    await svc.add(spec);
    expect(held.get('hook')).toBe(1);
    receive({ text: 'first' });
    await until(() => posted.includes('first'));
    await new Promise((r) => setImmediate(r)); // its next step (the store answers at once here) ends the loop
    // ...and added again.
    db.prepare("INSERT INTO inbox_consumers (name, type, url, secret, origin, cursor, created_at) VALUES ('hook', 'webhook', ?, ?, 'api', 0, 0)").run(spec.url, spec.secret);
    await svc.applyConfig([], DEFAULT_WEBHOOK_SETTINGS); // any reconcile (here, a reload; in a cluster also the lock timer)
    receive({ text: 'back' });
    await until(() => posted.includes('back'));
    expect(held.get('hook')).toBe(1); // the ended loop's lock was given back before the new loop took it
  });

  it('POSTs each message once in cursor order with a valid signature and a stable delivery id; retries failures, keeping order', async () => {
    const calls: Array<{ body: string; headers: Record<string, string> }> = [];
    let failNext = 3;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const post: Poster = async (_url, body, headers) => {
      calls.push({ body, headers });
      if (failNext > 0) {
        failNext -= 1;
        return 503;
      }
      if (JSON.parse(body).message.text === 'last') done();
      return 200;
    };
    const svc = makeService({ post });
    await svc.applyConfig([{ name: 'hook', type: 'webhook', url: 'http://127.0.0.1:1/x', secret: SECRET }], { ...DEFAULT_WEBHOOK_SETTINGS, retryInitialMs: 5, retryMaxMs: 20 });
    for (let i = 0; i < 5; i++) receive({ chat: i % 2 ? PEER : OTHER, from: i % 2 ? PEER : OTHER });
    receive({ text: 'last' });
    await finished;
    await until(async () => (await svc.get('hook')).lag.unacknowledged === 0);
    for (const c of calls) {
      expect(c.headers['X-WA-Supervisor-Signature']).toBe(`sha256=${createHmac('sha256', SECRET).update(c.body).digest('hex')}`);
      expect(c.headers['X-WA-Supervisor-Delivery']).toBe(JSON.parse(c.body).deliveryId);
    }
    const delivered = calls.slice(3).map((c) => JSON.parse(c.body).message.cursor);
    const expected = inbox.store.list({ limit: 100, statuses: ['ok'] }).map((r) => String(r.cursor));
    expect(delivered).toEqual(expected);
    // the three failures were all the first message, with the same delivery id
    expect(new Set(calls.slice(0, 4).map((c) => c.headers['X-WA-Supervisor-Delivery'])).size).toBe(1);
    expect(await svc.get('hook')).toMatchObject({ lag: { unacknowledged: 0 }, attempts: 0, lastError: 'HTTP 503' });
  });

  it('a message still refused past deadLetterAfterMs goes to the dead-letter list with an alert, and delivery moves on', async () => {
    const stuck: StuckContext[] = [];
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const post: Poster = async (_url, body) => {
      const text = JSON.parse(body).message.text as string;
      if (text === 'poison') throw new Error('connect ECONNREFUSED');
      done();
      return 204;
    };
    const svc = makeService({ post, settings: { deadLetterAfterMs: 30 }, onStuck: (c) => stuck.push(c) });
    await svc.applyConfig([{ name: 'hook', type: 'webhook', url: 'http://127.0.0.1:1/x', secret: SECRET }], { ...DEFAULT_WEBHOOK_SETTINGS, retryInitialMs: 5, retryMaxMs: 10, deadLetterAfterMs: 30 });
    const poison = receive({ text: 'poison' });
    receive({ text: 'fine' });
    await finished;
    await until(async () => (await svc.get('hook')).lag.unacknowledged === 0);
    expect(stuck).toEqual([expect.objectContaining({ consumer: 'hook', cursor: poison.cursor, id: poison.id, error: 'connect ECONNREFUSED' })]);
    expect(svc.store.deadLetters('hook')).toEqual([expect.objectContaining({ cursor: poison.cursor, reason: 'connect ECONNREFUSED' })]);
    expect((await svc.get('hook')).deadLetters).toBe(1);
  });

  it('stop aborts a POST that hangs: shutdown does not wait for the receiver, and the message stays for the next run', async () => {
    let signal: AbortSignal | undefined;
    const post: Poster = (_url, _body, _headers, _timeoutMs, s) =>
      new Promise<number>((_resolve, reject) => {
        signal = s;
        s?.addEventListener('abort', () => reject(s.reason));
      });
    const svc = makeService({ post, settings: { timeoutMs: 3_600_000 } });
    await svc.applyConfig([{ name: 'hook', type: 'webhook', url: 'http://127.0.0.1:1/x', secret: SECRET }], { ...DEFAULT_WEBHOOK_SETTINGS, timeoutMs: 3_600_000 });
    receive();
    await until(() => signal !== undefined);
    await svc.stop(); // would wait for the hour-long timeout if the POST were not aborted
    expect(signal!.aborted).toBe(true);
    // the abort is not the receiver's failure: no attempt counted, no error, still unacknowledged
    expect(await svc.get('hook')).toMatchObject({ attempts: 0, lastError: null, lag: { unacknowledged: 1 } });
  });

  it('the backoff survives a restart: the next attempt time is kept on the consumer row', async () => {
    let calls = 0;
    const svc = makeService({ post: async () => (calls++, 500), settings: { retryInitialMs: 60_000, retryMaxMs: 60_000 } });
    await svc.applyConfig([{ name: 'hook', type: 'webhook', url: 'http://127.0.0.1:1/x', secret: SECRET }], { ...DEFAULT_WEBHOOK_SETTINGS, retryInitialMs: 60_000, retryMaxMs: 60_000 });
    receive();
    await until(() => svc.store.get('hook')!.attempts === 1);
    await svc.stop();
    const row = svc.store.get('hook')!;
    expect(row.attempts).toBe(1);
    expect(row.nextAttemptAt).toBeGreaterThan(Date.now());
    // a new daemon run waits for that time instead of posting at once
    const before = calls;
    const next = makeService({ post: async () => (calls++, 500) });
    await next.applyConfig([{ name: 'hook', type: 'webhook', url: 'http://127.0.0.1:1/x', secret: SECRET }], DEFAULT_WEBHOOK_SETTINGS);
    receive();
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(calls).toBe(before);
  });
});
