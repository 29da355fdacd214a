// Consumers that resume, end to end: a stream consumer killed at random points and a webhook
// receiver that is down for a while (through a daemon kill -9) both end with every message,
// exactly once after their acknowledgements. Real daemon, real Baileys, the emulator's peers.
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli-process.js';
import { useWorlds, type World } from '../helpers/world.js';

const newWorld = useWorlds(afterEach);
const MAIN = '15550001111';
const PEERS = ['15550007001', '15550007002', '15550007003'];
const SECRET = 'webhook-secret-0123456789';

type Row = { cursor: string; id: string; chat: string; text: string | null };

/** Sends `count` messages from the peers to MAIN; returns their ids in order. */
async function peersWrite(w: World, count: number, label: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push((await w.emulator.sendInbound({ from: PEERS[i % PEERS.length]!, to: MAIN, text: `${label} ${i}` })).id);
  return ids;
}

/** Reads the consumer's stream until `stopAfter` rows came (or it ends), then disconnects. */
async function readStream(w: World, consumer: string, stopAfter: number): Promise<Row[]> {
  const rows: Row[] = [];
  const abort = new AbortController();
  await w.client
    .stream(
      `/v1/inbox/stream?consumer=${consumer}`,
      (raw) => {
        rows.push(raw as Row);
        if (rows.length >= stopAfter) abort.abort();
      },
      { signal: abort.signal },
    )
    .catch((err) => {
      if (!abort.signal.aborted) throw err;
    });
  return rows;
}

describe('stream consumer', () => {
  it('killed at random points and restarted, it reads every message, and nothing it acknowledged comes back', async () => {
    const w = await newWorld({ config: (url) => ({ accounts: [{ id: 'main', wsUrl: url }], consumers: [{ name: 'bot', type: 'stream' }] }) });
    await w.pair('main', MAIN);
    const ids = await peersWrite(w, 40, 'for the bot');
    // All stored first, so each life can be told how many rows are left: a reader that waits for
    // more rows than remain would wait for ever.
    await Promise.all(ids.map((id) => w.waitEvent((e) => e.type === 'message.inbound' && (e as { id?: string }).id === id)));
    const handled = new Set<string>();
    let acked = 0;
    for (let life = 0; handled.size < ids.length && life < 50; life++) {
      const left = (await w.client.request<{ lag: { unacknowledged: number } }>('GET', '/v1/consumers/bot')).body.lag.unacknowledged;
      const rows = await readStream(w, 'bot', Math.min(left, 1 + Math.floor(Math.random() * 12)));
      for (const row of rows) {
        expect(Number(row.cursor)).toBeGreaterThan(acked); // never again after an ack
        handled.add(row.id);
      }
      // It acknowledges some of what it read before it "dies" (a random prefix).
      const upTo = rows[Math.floor(Math.random() * rows.length)];
      if (upTo) {
        const res = await w.client.request<{ cursor: string }>('POST', '/v1/inbox/ack', { consumer: 'bot', cursor: upTo.cursor });
        acked = Number(res.body.cursor);
      }
    }
    expect(ids.filter((id) => !handled.has(id))).toEqual([]);
    const list = await runCli(['consumers', 'list', '--json', '--socket', w.socket], w.env);
    expect(list.code).toBe(0);
    const view = (JSON.parse(list.stdout) as { consumers: Array<{ name: string; cursor: string; lag: { unacknowledged: number } }> }).consumers[0]!;
    expect(view).toMatchObject({ name: 'bot', cursor: String(acked) });
    expect(view.lag.unacknowledged).toBeLessThan(ids.length);
  }, 90_000);
});

describe('webhook consumer', () => {
  let receiver: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
    receiver = undefined;
  });

  it('a receiver that is down (across a daemon kill -9) gets everything afterwards, in order per chat, signed, duplicates only under the same delivery id', async () => {
    let up = false;
    let refused = 0;
    const got: Array<{ deliveryId: string; row: Row }> = [];
    const badSignatures: string[] = [];
    // Resolves once pred holds, checked now and after every request the receiver gets.
    const checks = new Set<() => void>();
    const until = (pred: () => boolean) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (!pred()) return;
          checks.delete(check);
          resolve();
        };
        checks.add(check);
        check();
      });
    receiver = createServer((req: IncomingMessage, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      req.on('end', () => {
        if (!up) {
          refused += 1;
          res.writeHead(503).end();
          for (const check of [...checks]) check();
          return;
        }
        const expected = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
        if (req.headers['x-wa-supervisor-signature'] !== expected) badSignatures.push(body);
        const parsed = JSON.parse(body) as { deliveryId: string; message: Row };
        expect(req.headers['x-wa-supervisor-delivery']).toBe(parsed.deliveryId);
        got.push({ deliveryId: parsed.deliveryId, row: parsed.message });
        res.writeHead(200).end();
        for (const check of [...checks]) check();
      });
    });
    await new Promise<void>((r) => receiver!.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const w = await newWorld({
      config: (ws) => ({
        accounts: [{ id: 'main', wsUrl: ws }],
        consumers: [{ name: 'hook', type: 'webhook', url, secret: SECRET }],
        inbox: { webhookRetry: { initialMs: 100, maxMs: 400 } },
      }),
    });
    await w.pair('main', MAIN);
    const first = await peersWrite(w, 15, 'while the receiver is down');
    await until(() => refused >= 3);
    await w.restartDaemon({ kill: true });
    const second = await peersWrite(w, 15, 'still down');
    const refusedBefore = refused;
    await until(() => refused >= refusedBefore + 3); // the new run retries too, with its backoff
    up = true;
    const ids = [...first, ...second];
    await until(() => new Set(got.map((g) => g.row.id)).size >= ids.length);

    expect(badSignatures).toEqual([]);
    expect(ids.filter((id) => !got.some((g) => g.row.id === id))).toEqual([]);
    // A message seen twice came under the same delivery id (at-least-once redelivery), never a new one.
    const idsByDelivery = new Map<string, string>();
    for (const g of got) {
      const seen = idsByDelivery.get(g.deliveryId);
      if (seen) expect(seen).toBe(g.row.id);
      idsByDelivery.set(g.deliveryId, g.row.id);
    }
    expect(new Set(got.map((g) => g.deliveryId)).size).toBe(ids.length);
    // In order per chat (and overall): cursors only grow in the order received.
    const byChat = new Map<string, number[]>();
    for (const g of got) byChat.set(g.row.chat, [...(byChat.get(g.row.chat) ?? []), Number(g.row.cursor)]);
    for (const cursors of byChat.values()) expect(cursors).toEqual([...cursors].sort((a, b) => a - b));
    // The last ack commits right after its 200: read until it is there.
    type View = { lag: { unacknowledged: number }; lastError: string | null; deadLetters: number };
    let consumer = (await w.client.request<View>('GET', '/v1/consumers/hook')).body;
    for (let i = 0; i < 100 && consumer.lag.unacknowledged > 0; i++) consumer = (await w.client.request<View>('GET', '/v1/consumers/hook')).body;
    expect(consumer).toMatchObject({ lag: { unacknowledged: 0 }, deadLetters: 0, lastError: 'HTTP 503' });
  }, 90_000);
});
