// Item 1 (transport): ws server on /ws/chat, Noise XX responder, 3-byte framing, ED preamble, PKI.
import { WA_CERT_DETAILS } from '@whiskeysockets/baileys';
import { connect } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { FrameReader, WA_PROLOGUE, encodeFrame } from '../../src/emulator/frames.js';
import { verifyCertChain } from '../../src/emulator/index.js';
import { EmulatorPki } from '../../src/emulator/pki.js';
import { makeClient, opened, pairAndOpen, useEmulator } from './support/client.js';

/** The root key Baileys ships with (the real WhatsApp root), for the negative check. */
const WHATSAPP_ROOT = Buffer.from('142375574d0a587166aae71ebe516437c4a28b73e3695c6ce1f7f9545da8ee6b', 'hex');

const env = useEmulator({ beforeAll, afterAll, afterEach });

describe('framing', () => {
  test('reassembles frames split across messages and splits several frames in one message', () => {
    const reader = new FrameReader();
    const one = Buffer.from('first frame');
    const two = Buffer.alloc(70_000, 7); // length needs all three length bytes
    const wire = Buffer.concat([WA_PROLOGUE, encodeFrame(one), encodeFrame(two)]);
    const seen: Buffer[] = [];
    for (let i = 0; i < wire.length; i += 1000) seen.push(...reader.push(wire.subarray(i, i + 1000)));
    expect(reader.parsedIntro?.routingInfo).toBeNull();
    expect(seen).toEqual([one, two]);
  });

  test('parses the ED routing preamble before the WA header', () => {
    const routing = Buffer.from('0801080512', 'hex');
    const preamble = Buffer.concat([Buffer.from('ED', 'latin1'), Buffer.from([0, 1, 0, 0, routing.length]), routing]);
    const reader = new FrameReader();
    const frames = reader.push(Buffer.concat([preamble, WA_PROLOGUE, encodeFrame(Buffer.from('x'))]));
    expect(reader.parsedIntro?.routingInfo).toEqual(routing);
    expect(reader.parsedIntro?.prologue).toEqual(WA_PROLOGUE);
    expect(frames).toEqual([Buffer.from('x')]);
  });

  test('rejects a stream that does not start with WA', () => {
    expect(() => new FrameReader().push(Buffer.from('GET / HTTP/1.1'))).toThrow(/bad intro/);
  });
});

describe('PKI', () => {
  test('the chain verifies strictly under the env.emulator root, with issuerSerial 0, and not under the WhatsApp root', () => {
    expect(verifyCertChain(env.emulator.certificateChain, env.emulator.rootPublicKey, env.emulator.staticPublicKey)).toBeNull();
    expect(verifyCertChain(env.emulator.certificateChain, WHATSAPP_ROOT, env.emulator.staticPublicKey)).toBe('intermediate not signed by root');
    expect(verifyCertChain(env.emulator.certificateChain, env.emulator.rootPublicKey, Buffer.alloc(32, 1))).toBe('leaf key is not the static key');
  });

  test('roots come from the seed: same seed same root, other seed other root', () => {
    const seed = Buffer.alloc(32, 9);
    expect(new EmulatorPki(seed).root.public).toEqual(new EmulatorPki(seed).root.public);
    expect(new EmulatorPki(seed).root.public).not.toEqual(env.emulator.rootPublicKey);
  });

  test('the vitest setup file made Baileys trust this root', () => {
    expect(Buffer.from(WA_CERT_DETAILS.PUBLIC_KEY)).toEqual(env.emulator.rootPublicKey);
  });
});

describe('handshake with real Baileys', () => {
  test('Noise XX with registration payload, then login payload, both recorded on the timeline', async () => {
    const mark = env.emulator.timeline.mark();
    const { account, sock } = await pairAndOpen(env.emulator, '15551000001');
    const handshakes = env.emulator.timeline
      .entries({ after: mark })
      .filter((e) => e.node?.tag === 'handshake')
      .map((e) => `${e.dir} ${e.node!.attrs.type} ${e.node!.attrs.registration ?? ''}${e.node!.attrs.username ?? ''}`.trim());
    expect(handshakes).toEqual([
      'in clientHello',
      'out serverHello',
      'in clientFinish true',
      'in clientHello',
      'out serverHello',
      'in clientFinish 15551000001',
    ]);
    expect(sock.user?.id).toBe(account.jid);
  });

  test('edge_routing makes Baileys reconnect with the ED preamble, which the env.emulator parses', async () => {
    const phone = '15551000002';
    const { account, sock } = await pairAndOpen(env.emulator, phone);
    const routing = Buffer.from('0801080512', 'hex');
    const stored = new Promise<void>((resolve) =>
      sock.ev.on('creds.update', (update) => {
        if (update.routingInfo) resolve();
      }),
    );
    expect(env.emulator.sendEdgeRouting(phone, routing)).toBe(1);
    await stored;
    sock.end(undefined);
    const again = makeClient(env.emulator.url, account.auth);
    await opened(again);
    expect(env.emulator.connections(phone).map((c) => c.routingInfo)).toContain(routing.toString('hex'));
    const hello = await env.emulator.timeline.waitFor({ phone, tag: 'handshake', attrs: { type: 'clientHello', routing: routing.toString('hex') } });
    expect(hello.dir).toBe('in');
  });

  test('upgrades only /ws/chat (other paths get 404)', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(env.emulator.url.replace('/ws/chat', '/elsewhere'));
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => reject(new Error('unexpectedly upgraded')));
      ws.on('error', reject);
    });
    expect(status).toBe(404);
  });

  test('a client that resets the connection after a refused upgrade does not crash the process', async () => {
    // Node's HTTP server leaves an upgraded socket without an error listener: a reset arriving
    // after the refusal used to surface as an uncaught ECONNRESET in whatever process hosts the
    // emulator (seen as an unhandled error in an integration test run).
    const { port, hostname } = new URL(env.emulator.url);
    const resets = Array.from({ length: 5 }, () => resetAfterRefusal(hostname, Number(port)));
    await Promise.all(resets);
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(env.emulator.url.replace('/ws/chat', '/elsewhere'));
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', reject);
    });
    expect(status).toBe(404);
  });
});

/** Sends an upgrade the emulator refuses, waits for the refusal, then resets the connection. */
function resetAfterRefusal(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host, () => {
      socket.write(`GET /elsewhere HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
    socket.once('data', () => {
      socket.resetAndDestroy();
      // the reset reaches the server's socket on its next read
      setImmediate(resolve);
    });
    socket.once('error', reject);
  });
}
