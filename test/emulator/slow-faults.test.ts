// Item 6 (faults), the slow ones: silence, black hole, withheld <success>, and the idle rule.
// Baileys' keepalive gives up only after keepAliveIntervalMs + 5 s (the 5 s is hard-coded), so
// these take 5–10 s each; they run concurrently against one emulator.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { type Emulator, createEmulator } from '../../src/emulator/index.js';
import { closeAllClients, closed, makeClient, nextUpdate, pairAccount, pairAndOpen } from './support/client.js';

let emulator: Emulator;
const table: string[] = [];

beforeAll(async () => {
  emulator = await createEmulator();
});
afterAll(async () => {
  closeAllClients();
  await emulator.close();
  console.log(`slow faults -> Baileys close (time to report)\n${table.join('\n')}`);
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe.concurrent('keepalive-detected faults (keepAliveIntervalMs = 1 s)', () => {
  test('app-silent: 408 "Connection was lost" once pings go unanswered for 6–7 s', async () => {
    const phone = '15556000001';
    const { sock } = await pairAndOpen(emulator, phone, { keepAliveIntervalMs: 1_000 });
    const reported = closed(sock, 15_000);
    const injectedAt = Date.now();
    emulator.injectFault(phone, { kind: 'app-silent' });
    const close = await reported;
    const ms = close.at - injectedAt;
    table.push(`app-silent -> ${close.code} ${close.name} "${close.message}" (${ms} ms)`);
    expect(close).toMatchObject({ code: 408, message: 'Connection was lost' });
    expect(ms).toBeGreaterThanOrEqual(4_900);
    expect(ms).toBeLessThan(8_500);
  });

  test('black hole: Baileys gives up at 6–7 s but reports the close only when TCP answers again', async () => {
    const phone = '15556000002';
    const { sock } = await pairAndOpen(emulator, phone, { keepAliveIntervalMs: 1_000 });
    const ws = sock.ws as unknown as { close: () => Promise<void> };
    let gaveUpAt = 0;
    const originalClose = ws.close.bind(ws);
    ws.close = () => {
      gaveUpAt = Date.now();
      return originalClose();
    };
    const reported = closed(sock, 20_000);
    const injectedAt = Date.now();
    emulator.injectFault(phone, { kind: 'black-hole', ms: 9_000 });
    const close = await reported;
    table.push(
      `black-hole (healed after 9 s) -> ${close.code} ${close.name} "${close.message}" (keepalive gave up at ${gaveUpAt - injectedAt} ms, close reported at ${close.at - injectedAt} ms; without healing the ws close wait adds 30 s)`,
    );
    expect(close).toMatchObject({ code: 408, message: 'Connection was lost' });
    expect(gaveUpAt - injectedAt).toBeGreaterThanOrEqual(4_900);
    expect(gaveUpAt - injectedAt).toBeLessThan(8_500);
    expect(close.at - injectedAt).toBeGreaterThanOrEqual(9_000); // held until the black hole ended
  });

  test('<success> withheld while pings are answered: Baileys never leaves "connecting"', async () => {
    const phone = '15556000003';
    const paired = await pairAccount(emulator, phone);
    emulator.injectFault(phone, { kind: 'withhold-success' });
    const mark = emulator.timeline.mark();
    const sock = makeClient(emulator.url, paired.auth, { keepAliveIntervalMs: 1_000 });
    const states: string[] = [];
    sock.ev.on('connection.update', (u) => states.push(u.connection ?? '-'));
    await sleep(8_000); // past keepalive + 5 s: a lost connection would have been reported by now
    const pings = emulator.timeline.entries({ phone, after: mark }).filter((e) => e.dir === 'out' && e.node?.tag === 'iq' && e.node.attrs.type === 'result');
    table.push(`withhold-success (pings answered) -> no close in 8 s; ${pings.length} pings answered`);
    expect(states).not.toContain('close');
    expect(states).not.toContain('open');
    expect(pings.length).toBeGreaterThanOrEqual(5);
  });

  test('<success> withheld and pings dropped: 408 after keepalive + 5 s', async () => {
    const phone = '15556000004';
    const paired = await pairAccount(emulator, phone);
    emulator.injectFault(phone, { kind: 'withhold-success' });
    emulator.injectFault(phone, { kind: 'iq-drop', xmlns: 'w:p' });
    const sock = makeClient(emulator.url, paired.auth, { keepAliveIntervalMs: 1_000 });
    const started = Date.now();
    const close = await closed(sock, 15_000);
    table.push(`withhold-success + iq-drop w:p -> ${close.code} ${close.name} "${close.message}" (${close.at - started} ms after connect)`);
    expect(close).toMatchObject({ code: 408, message: 'Connection was lost' });
  });
});

describe.concurrent('idle rule', () => {
  test('no application stanza for T ms: the emulator closes, Baileys reports 428', async () => {
    const phone = '15556000005';
    const paired = await pairAccount(emulator, phone);
    emulator.setIdleWindow(1_500, phone);
    const sock = makeClient(emulator.url, paired.auth, { keepAliveIntervalMs: 30_000 });
    await nextUpdate(sock, (u) => u.connection === 'open');
    const close = await closed(sock, 10_000);
    const lastIn = emulator.timeline.entries({ phone }).filter((e) => e.dir === 'in').at(-1)!;
    const silentFor = close.at - lastIn.at;
    table.push(`idle rule T=1500 ms, keepalive 30 s -> ${close.code} ${close.name} "${close.message}" (${silentFor} ms after the last client stanza)`);
    expect(close).toMatchObject({ code: 428, message: 'Connection Terminated' });
    expect(silentFor).toBeGreaterThanOrEqual(1_400);
    expect(silentFor).toBeLessThan(2_500);
    expect(emulator.events.entries(phone).some((e) => e.text.includes('idle: no application stanza for 1500 ms'))).toBe(true);
  });

  test('w:p pings every 500 ms keep the session inside a 1500 ms idle window', async () => {
    const phone = '15556000006';
    const paired = await pairAccount(emulator, phone);
    emulator.setIdleWindow(1_500, phone);
    const sock = makeClient(emulator.url, paired.auth, { keepAliveIntervalMs: 500 });
    const states: string[] = [];
    sock.ev.on('connection.update', (u) => states.push(u.connection ?? '-'));
    await nextUpdate(sock, (u) => u.connection === 'open');
    await sleep(4_000); // > 2 idle windows
    expect(states).not.toContain('close');
    expect(sock.ws.isOpen).toBe(true);
  });

  test('WebSocket ping/pong frames do not count as activity', async () => {
    const phone = '15556000007';
    emulator.setIdleWindow(1_000, phone);
    const ws = new WebSocket(`${emulator.url}?phone=${phone}`);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    let pongs = 0;
    ws.on('pong', () => pongs++);
    const pinger = setInterval(() => ws.ping(), 200);
    const opened = Date.now();
    const code = await new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)));
    clearInterval(pinger);
    expect(code).toBe(1000);
    expect(pongs).toBeGreaterThanOrEqual(3);
    expect(Date.now() - opened).toBeGreaterThanOrEqual(950);
  });
});
