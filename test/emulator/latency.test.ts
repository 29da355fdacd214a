// The emulator's network latency: every frame it sends reaches the client that much later, in
// order, by default, and the latency can be set by option, CLI flag and control route.
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import WebSocket from 'ws';
import { DelayLine } from '../../src/emulator/delay-line.js';
import { FrameReader, WA_PROLOGUE, encodeFrame } from '../../src/emulator/frames.js';
import { DEFAULT_LATENCY_MS, type Emulator, EmulatorControlClient, createEmulator, startEmulatorChild } from '../../src/emulator/index.js';
import { generateKeyPair } from '../../src/emulator/curve.js';
import { proto } from '@whiskeysockets/baileys';
import { TS_EXEC_ARGV, emulatorSource, runNode } from './support/child-process.js';

describe('DelayLine', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  test('releases each item after the latency, in the order pushed', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const line = new DelayLine(() => 25);
    const out: string[] = [];
    line.push(() => out.push('a'));
    vi.advanceTimersByTime(10);
    line.push(() => out.push('b'));
    vi.advanceTimersByTime(14);
    expect(out).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(out).toEqual(['a']);
    vi.advanceTimersByTime(10);
    expect(out).toEqual(['a', 'b']);
    expect(line.pending).toBe(0);
  });

  test('lowering the latency while frames are in flight never overtakes them', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    let latency = 100;
    const line = new DelayLine(() => latency);
    const out: string[] = [];
    line.push(() => out.push('slow'));
    latency = 0;
    line.push(() => out.push('fast')); // queued behind 'slow', not sent at once
    expect(out).toEqual([]);
    vi.advanceTimersByTime(100);
    expect(out).toEqual(['slow', 'fast']);
    line.push(() => out.push('now')); // line empty and latency 0: synchronous, as with no delay line
    expect(out).toEqual(['slow', 'fast', 'now']);
  });

  test('clear() drops what is in flight (the connection is gone)', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
    const line = new DelayLine(() => 5);
    const out: string[] = [];
    line.push(() => out.push('lost'));
    line.clear();
    vi.advanceTimersByTime(50);
    expect(out).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });
});

/** Opens a raw connection, sends intro + ClientHello, resolves with ms until the ServerHello arrived. */
async function serverHelloDelay(url: string): Promise<number> {
  const ws = new WebSocket(url);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const reader = new FrameReader();
  reader.push(WA_PROLOGUE); // our own parser only needs the intro out of the way for the answer
  const hello = proto.HandshakeMessage.encode({ clientHello: { ephemeral: generateKeyPair().public } }).finish();
  const answered = new Promise<number>((resolve) => {
    ws.on('message', (data: Buffer) => {
      if (reader.push(data).length > 0) resolve(performance.now());
    });
  });
  const sentAt = performance.now();
  ws.send(Buffer.concat([WA_PROLOGUE, encodeFrame(hello)]));
  const at = await answered;
  ws.terminate();
  return at - sentAt;
}

describe('emulator latency', () => {
  let emulator: Emulator;
  let client: EmulatorControlClient;
  beforeAll(async () => {
    emulator = await createEmulator();
    client = new EmulatorControlClient(await emulator.startControlApi());
  });
  afterAll(async () => {
    await emulator.close();
  });

  test('is on by default, realistic rather than instant', async () => {
    expect(DEFAULT_LATENCY_MS).toBeGreaterThanOrEqual(20);
    expect(emulator.latencyMs).toBe(DEFAULT_LATENCY_MS);
    expect(await client.latency()).toBe(DEFAULT_LATENCY_MS);
    // the ServerHello, the emulator's first frame, waits out the latency
    expect(await serverHelloDelay(emulator.url)).toBeGreaterThanOrEqual(DEFAULT_LATENCY_MS - 1);
  });

  test('POST /latency changes it for the next frames (also of live connections); GET /latency reads it', async () => {
    const set = await fetch(`${client.baseUrl}/latency`, { method: 'POST', body: JSON.stringify({ ms: 150 }) });
    expect(set.status).toBe(200);
    expect(await set.json()).toEqual({});
    expect(await (await fetch(`${client.baseUrl}/latency`)).json()).toEqual({ ms: 150 });
    expect(await serverHelloDelay(emulator.url)).toBeGreaterThanOrEqual(149);
    await client.setLatency(0);
    expect(await client.latency()).toBe(0);
    expect(await serverHelloDelay(emulator.url)).toBeLessThan(100);
    expect(emulator.events.entries().some((e) => e.text === 'latency set to 150 ms')).toBe(true);
    await client.setLatency(DEFAULT_LATENCY_MS);
  });

  test('bad values are a 400 naming the field', async () => {
    for (const body of [{}, { ms: -1 }, { ms: 1.5 }, { ms: '20' }, { ms: 60_001 }]) {
      const answer = await fetch(`${client.baseUrl}/latency`, { method: 'POST', body: JSON.stringify(body) });
      expect(answer.status, JSON.stringify(body)).toBe(400);
      expect(((await answer.json()) as { error: { field: string } }).error.field).toBe('ms');
    }
    expect(await client.latency()).toBe(DEFAULT_LATENCY_MS);
    await expect(createEmulator({ latencyMs: -5 })).rejects.toMatchObject({ status: 400, field: 'latencyMs' });
  });

  test('createEmulator({ latencyMs: 0 }) sends at once', async () => {
    const instant = await createEmulator({ latencyMs: 0 });
    try {
      expect(instant.latencyMs).toBe(0);
      expect(await serverHelloDelay(instant.url)).toBeLessThan(DEFAULT_LATENCY_MS);
    } finally {
      await instant.close();
    }
  });
});

test('the CLI takes --latency-ms and refuses a bad value', async () => {
  const cli = [...TS_EXEC_ARGV, emulatorSource('main.ts')];
  const help = await runNode([...cli, '--help']);
  expect(help.stdout).toContain(`--latency-ms N`);
  expect(help.stdout).toContain(`default ${DEFAULT_LATENCY_MS}`);
  const bad = await runNode([...cli, '--latency-ms', 'fast']);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain('--latency-ms: expected an integer');
  const child = await startEmulatorChild({ execArgv: TS_EXEC_ARGV, args: ['--log-level', 'silent'], latencyMs: 40 });
  try {
    expect(await child.client.latency()).toBe(40);
  } finally {
    expect(await child.stop()).toBe(0);
  }
});
