// Alerts end to end against the emulator. The leak test is why this feature exists: an internal
// alert must never become a WhatsApp message to anyone but an operator chat the config names.
import { createServer } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { signBody } from '../../src/alerts/sinks.js';
import { type World, useWorlds } from '../helpers/world.js';

const MAIN = '15550001111';
const BOT = '15550001112';
const OPERATOR = '15550009999';
const PEER1 = '15550006001';
const PEER2 = '15550006002';
const SECRET = 'webhook-secret-0123456789';

const newWorld = useWorlds(afterEach);
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

type Hook = { type: string; alert: { code: string; account?: string; text: string } };

async function webhook(): Promise<{ url: string; got: Hook[]; wait: (pred: (h: Hook) => boolean) => Promise<void> }> {
  const got: Hook[] = [];
  const waiters: Array<{ pred: (h: Hook) => boolean; resolve: () => void }> = [];
  const s = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (req.headers['x-wa-supervisor-signature'] !== signBody(SECRET, body)) res.statusCode = 401;
      else {
        const h = JSON.parse(body) as Hook;
        got.push(h);
        for (const w of waiters.splice(0)) (w.pred(h) ? w.resolve() : waiters.push(w));
      }
      res.end();
    });
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise((r) => s.close(() => r())));
  const wait = (pred: (h: Hook) => boolean) => (got.some(pred) ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ pred, resolve })));
  return { url: `http://127.0.0.1:${(s.address() as { port: number }).port}/`, got, wait };
}

/** Faults on the bot account that raise and clear every account-state alert, with peers writing in. */
async function runIncidents(w: World): Promise<void> {
  await w.emulator.sendInbound({ from: PEER1, to: MAIN, text: 'hi main' });
  await w.emulator.sendInbound({ from: PEER2, to: BOT, text: 'hi bot' });
  w.emulator.injectFault(BOT, { kind: 'replace' });
  await w.waitState('bot', 'conflict');
  await w.client.request('POST', '/v1/accounts/bot/reconnect');
  await w.waitState('bot', 'open');
  w.emulator.injectFault(BOT, { kind: 'failure', code: 403, times: 1 });
  w.emulator.injectFault(BOT, { kind: 'close' });
  await w.waitState('bot', 'forbidden');
  await w.client.request('POST', '/v1/accounts/bot/reconnect');
  await w.waitState('bot', 'open');
  for (let i = 0; i < 3; i++) {
    w.emulator.injectFault(BOT, { kind: 'close' });
    await w.waitEvent((e) => e.type === 'account.close' && e.account === 'bot', { from: w.events.length });
    await w.waitState('bot', 'open');
  }
  w.emulator.injectFault(BOT, { kind: 'stream-error', code: 401 });
  await w.waitState('bot', 'needs_pairing');
  await w.emulator.sendInbound({ from: PEER1, to: MAIN, text: 'still there?' });
}

const baseConfig = (url: string) => ({
  flap: { closes: 3, windowMs: 600_000 },
  accounts: [
    { id: 'main', wsUrl: url },
    { id: 'bot', wsUrl: url },
  ],
});

describe('alerts never reach a peer', () => {
  it('with an operator chat on one account: alert text goes only to the operator; peers get nothing; the webhook gets each alert once and its recovery', async () => {
    const hook = await webhook();
    const world = await newWorld({
      config: (url) => ({
        ...baseConfig(url),
        operators: [`+${OPERATOR}`],
        alerts: { sinks: [{ type: 'whatsapp', account: 'main', to: [OPERATOR] }, { type: 'webhook', url: hook.url, secret: SECRET }] },
      }),
    });
    const w = world;
    await w.pair('main', MAIN);
    await w.pair('bot', BOT);
    await runIncidents(w);
    await hook.wait((h) => h.type === 'alert' && h.alert.code === 'needs_pairing');
    // The operator's phone decrypts the alerts sent from main (wait for the last one).
    await w.waitEvent((e) => e.type === 'message.delivered' && e.kind === 'alert' && String(e.to).startsWith(OPERATOR), { from: w.events.findIndex((e) => e.type === 'alert' && (e.alert as { code: string }).code === 'needs_pairing') });

    const atOperator = w.emulator.peerMessages(OPERATOR).map((m) => m.text ?? '');
    expect(atOperator.length).toBeGreaterThanOrEqual(5);
    expect(atOperator.every((t) => t.startsWith('[wa-supervisor] '))).toBe(true);
    expect(atOperator.some((t) => /CRITICAL \(bot\): account bot was replaced by another session \(440\)/.test(t))).toBe(true);
    expect(atOperator.some((t) => /RECOVERED \(bot\)/.test(t))).toBe(true);
    for (const peer of [PEER1, PEER2]) expect(w.emulator.peerMessages(peer)).toEqual([]);
    const rows = (await w.client.request<{ messages: Array<{ kind: string; to: string }> }>('GET', '/v1/messages?limit=1000')).body.messages;
    expect(rows.filter((r) => r.kind === 'alert').every((r) => r.to === `${OPERATOR}@s.whatsapp.net`)).toBe(true);
    // Nothing else any account sent carried alert text.
    for (const phone of [MAIN, BOT]) {
      const sent = w.emulator.sentMessages(phone);
      expect(sent.filter((m) => JSON.stringify(m).includes('[wa-supervisor]')).every((m) => JSON.stringify(m).includes(OPERATOR))).toBe(true);
    }

    // The webhook saw each raised alert once, then its recovery.
    const conflict = hook.got.filter((h) => h.alert.code === 'conflict' && h.alert.account === 'bot');
    expect(conflict.map((h) => h.type)).toEqual(['alert', 'alert.recovered']);
    const forbidden = hook.got.filter((h) => h.alert.code === 'forbidden');
    expect(forbidden.map((h) => h.type)).toEqual(['alert', 'alert.recovered']);
    expect(hook.got.filter((h) => h.alert.code === 'degraded' && h.type === 'alert')).toHaveLength(1);
    const listed = (await w.client.request<{ active: Array<{ code: string; account: string }> }>('GET', '/v1/alerts')).body.active;
    expect(listed.map((a) => `${a.code}:${a.account}`)).toContain('needs_pairing:bot');
  });

  it('with no operator chat configured, no alert ever becomes a WhatsApp message', async () => {
    const world = await newWorld({ config: (url) => ({ ...baseConfig(url), operators: [`+${OPERATOR}`] }) });
    const w = world;
    await w.pair('main', MAIN);
    await w.pair('bot', BOT);
    await runIncidents(w);
    await w.waitEvent((e) => e.type === 'alert' && (e.alert as { code: string }).code === 'needs_pairing');
    const rows = (await w.client.request<{ messages: unknown[] }>('GET', '/v1/messages?limit=1000')).body.messages;
    expect(rows).toEqual([]);
    for (const peer of [PEER1, PEER2, OPERATOR]) expect(w.emulator.peerMessages(peer)).toEqual([]);
    expect(w.events.filter((e) => e.type === 'alert').length).toBeGreaterThanOrEqual(4); // they went to the log and the stream
  });
});
