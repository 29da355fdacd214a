/**
 * One client connection: Noise handshake, encrypted frames, stanza decode/encode in order,
 * server-initiated iqs, and the connection-level faults (stream errors, closes, app silence,
 * TCP black hole) plus the idle rule. What a stanza *means* is decided by the host.
 */
import type { Socket } from 'node:net';
import { type BinaryNode, decodeBinaryNode, encodeBinaryNode, proto } from '@whiskeysockets/baileys';
import type { WebSocket } from 'ws';
import type { KeyPair } from './curve.js';
import { DelayLine } from './delay-line.js';
import type { EventLog } from './event-log.js';
import { FrameReader, encodeFrame } from './frames.js';
import { IdleRule } from './idle-rule.js';
import { NoiseResponder, type TransportCipher } from './noise.js';
import { SERVER_JID } from './stanza.js';
import type { Timeline } from './timeline.js';

/** Where a connection is in its life. */
export type SessionState = 'handshake' | 'registering' | 'authenticating' | 'ready' | 'closed';

/** How a connection ended. */
export interface CloseInfo {
  at: number;
  /** Who ended it: the client (close frame or TCP end), or the server (with the reason). */
  by: 'client' | 'server';
  code: number;
  reason: string;
}

/** What a session needs from the emulator around it. */
export interface SessionHost {
  readonly timeline: Timeline;
  readonly events: EventLog;
  readonly staticKey: KeyPair;
  /** The certificate chain for our static key. */
  readonly certChain: Buffer;
  /** How long every frame we send takes to reach the client (ms), read per frame. */
  outboundLatencyMs(): number;
  /** Called once the handshake is done, with the client's login or registration payload. */
  onClientPayload(session: Session, payload: proto.ClientPayload): Promise<void>;
  /** Called for every stanza that is not an answer to a server-initiated iq. */
  onStanza(session: Session, node: BinaryNode): Promise<void>;
  /** Called once when the connection is gone. */
  onClosed(session: Session): void;
}

/** How long a stream error or failure waits for the client to close before we close. */
const CLOSE_GRACE_MS = 1_000;
const DEFAULT_IQ_TIMEOUT_MS = 10_000;

/** A client connection and its per-connection state. */
export class Session {
  readonly startedAt = Date.now();
  state: SessionState = 'handshake';
  /** The account (phone number), once logged in or paired. */
  phone: string | null = null;
  /** The companion device number, once logged in or paired. */
  device: number | null = null;
  /** The client's static Noise key (its `creds.noiseKey.public`). */
  clientStatic: Buffer | null = null;
  /** The client's `ED` routing info, if it sent one. */
  routingInfo: Buffer | null = null;
  /** True once the client sent `<passive><active/>`: the server may push stanzas. */
  active = false;
  /** How the connection ended, once it has. */
  closeInfo: CloseInfo | null = null;

  private readonly reader = new FrameReader();
  private readonly noise: NoiseResponder;
  private transport: TransportCipher | null = null;
  private inbound: Promise<void> = Promise.resolve();
  private deliveries: Promise<void> = Promise.resolve();
  private readonly pendingIqs = new Map<string, { resolve: (node: BinaryNode) => void; reject: (e: Error) => void }>();
  private nextIqId = 1;
  private serverCloseReason: string | null = null;
  private silentTimer: NodeJS.Timeout | null = null;
  private silent = false;
  private blackHoleQueue: Buffer[] | null = null;
  private blackHoleTimer: NodeJS.Timeout | null = null;
  private readonly idle: IdleRule;
  /** Frames on their way to the client (the emulated network latency). */
  private readonly outbound: DelayLine;
  /** Set once a close frame is on its way: nothing more is sent. */
  private closing = false;

  constructor(
    readonly id: number,
    private readonly ws: WebSocket,
    private readonly socket: Socket,
    private readonly host: SessionHost,
    idleMs: number,
    /** The `?phone=` hint from the connection URL, if any. */
    readonly phoneHint: string | null,
  ) {
    this.noise = new NoiseResponder(host.staticKey, host.certChain);
    this.outbound = new DelayLine(() => host.outboundLatencyMs());
    this.idle = new IdleRule(idleMs, (ms) => this.close(`idle: no application stanza for ${ms} ms`));
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => this.onData(toBuffer(data)));
    ws.on('close', (code: number, reason: Buffer) => this.onWsClose(code, reason.toString()));
    ws.on('error', (error: Error) => this.event(`socket error: ${error.message}`));
  }

  /** True while the WebSocket is open and not being closed. */
  get isOpen(): boolean {
    return this.state !== 'closed' && !this.closing && this.ws.readyState === this.ws.OPEN;
  }

  /** Ties the connection to an account (and its earlier timeline entries too). */
  bind(phone: string, device: number): void {
    this.phone = phone;
    this.device = device;
    this.host.timeline.assignPhone(this.id, phone);
  }

  /** Changes the idle window for this connection (0 disables it). */
  setIdleWindow(ms: number): void {
    this.idle.setWindow(ms);
  }

  /**
   * Encrypts and sends a stanza (dropped while app-silent, queued while black-holed). It reaches
   * the client after the emulator's latency; the timeline records when it was sent.
   */
  send(node: BinaryNode): void {
    if (this.state === 'closed' || this.closing || !this.transport || this.silent) return;
    if (!this.blackHoleQueue && this.ws.readyState !== this.ws.OPEN) return; // closing: nothing goes out
    this.host.timeline.record(this.id, this.phone, 'out', node);
    this.writeFrame(this.transport.encrypt(encodeBinaryNode(node)));
  }

  /** Sends a server-initiated iq and resolves with the client's answer. */
  sendIq(node: BinaryNode, timeoutMs = DEFAULT_IQ_TIMEOUT_MS): Promise<BinaryNode> {
    const id = node.attrs.id ?? `emu-${this.id}-${this.nextIqId++}`;
    const iq: BinaryNode = { ...node, attrs: { ...node.attrs, id, from: SERVER_JID } };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pendingIqs.delete(id);
        reject(new Error(`no answer to ${iq.tag} ${id} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pendingIqs.set(id, {
        resolve: (answer) => {
          clearTimeout(timer);
          resolve(answer);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.send(iq);
    });
  }

  /** Sends `<stream:error>` for `code` (440 = conflict/replaced), then closes. */
  streamError(code: number, reason = `stream error ${code}`): void {
    let node: BinaryNode;
    if (code === 440) {
      node = { tag: 'stream:error', attrs: {}, content: [{ tag: 'conflict', attrs: { type: 'replaced' } }] };
    } else if (code === 401) {
      node = { tag: 'stream:error', attrs: { code: '401' }, content: [{ tag: 'conflict', attrs: { type: 'device_removed' } }] };
    } else {
      node = { tag: 'stream:error', attrs: { code: String(code) } };
    }
    this.endWith(node, reason);
  }

  /** Sends `<failure reason=N/>` (a refused login), then closes. */
  failure(reason: number): void {
    this.endWith({ tag: 'failure', attrs: { reason: String(reason), location: 'emulator' } }, `failure ${reason}`);
  }

  /** Sends `<xmlstreamend/>`, then closes. */
  xmlStreamEnd(): void {
    this.endWith({ tag: 'xmlstreamend', attrs: {} }, 'xmlstreamend');
  }

  /**
   * Closes with a WebSocket close frame (code 1000), which follows the frames still in flight.
   * A black-holed connection is dropped instead: its close handshake could never complete, and
   * a server gives up on such a peer.
   */
  close(reason: string): void {
    if (this.state === 'closed') return;
    if (this.serverCloseReason === null) this.event(`closing: ${reason}`);
    this.serverCloseReason ??= reason;
    if (this.blackHoleQueue) {
      this.ws.terminate();
      return;
    }
    if (this.closing) return;
    this.closing = true;
    this.outbound.push(() => {
      if (this.blackHoleQueue) this.ws.terminate();
      else this.ws.close(1000);
    });
  }

  /** Destroys the TCP connection without a close frame. */
  terminate(reason: string): void {
    if (this.state === 'closed') return;
    if (this.serverCloseReason === null) this.event(`terminating: ${reason}`);
    this.serverCloseReason ??= reason;
    this.ws.terminate();
  }

  /** Stops answering (and pushing) anything at the application layer; WS pings still get pongs. */
  setAppSilent(ms?: number): void {
    this.silent = true;
    this.event(`app-silent ${ms === undefined ? 'until the connection dies' : `for ${ms} ms`}`);
    if (ms !== undefined) {
      this.silentTimer = setTimeout(() => {
        this.silent = false;
        this.event('app-silent ended');
      }, ms);
    }
  }

  /** Stops reading and writing on the TCP socket (nothing reaches either side). */
  setBlackHole(ms?: number): void {
    if (this.blackHoleQueue) return;
    this.blackHoleQueue = [];
    this.socket.pause();
    this.event(`black hole ${ms === undefined ? 'until the connection dies' : `for ${ms} ms`}`);
    if (ms !== undefined) this.blackHoleTimer = setTimeout(() => this.endBlackHole(), ms);
  }

  /** Ends a black hole: reads resume and held writes go out. */
  endBlackHole(): void {
    const queued = this.blackHoleQueue;
    if (!queued) return;
    this.blackHoleQueue = null;
    if (this.blackHoleTimer) clearTimeout(this.blackHoleTimer);
    this.event('black hole ended');
    this.socket.resume();
    for (const frame of queued) this.ws.send(frame);
  }

  /** Records an event about this connection. */
  event(text: string): void {
    this.host.events.add(this.phone, this.id, text);
  }

  private endWith(node: BinaryNode, reason: string): void {
    if (this.state === 'closed') return;
    this.send(node);
    this.serverCloseReason ??= reason;
    // Baileys closes on its own as soon as it reads these; close anyway if it does not.
    setTimeout(() => this.close(reason), CLOSE_GRACE_MS).unref();
  }

  private writeFrame(body: Buffer): void {
    const frame = encodeFrame(body);
    this.outbound.push(() => {
      if (this.blackHoleQueue) this.blackHoleQueue.push(frame);
      else if (this.ws.readyState === this.ws.OPEN) this.ws.send(frame);
    });
  }

  private onData(data: Buffer): void {
    let frames: Buffer[];
    try {
      frames = this.reader.push(data);
    } catch (error) {
      this.terminate(`bad framing: ${(error as Error).message}`);
      return;
    }
    for (const frame of frames) {
      if (this.transport) {
        let plaintext: Buffer;
        try {
          plaintext = this.transport.decrypt(frame);
        } catch {
          this.terminate('frame failed to decrypt');
          return;
        }
        this.enqueue(async () => this.dispatch(await decodeBinaryNode(plaintext)));
      } else {
        this.enqueue(async () => this.handshakeStep(frame));
      }
    }
  }

  /**
   * Runs the delivery of this connection's messages in their order, beside the inbound work: a
   * server acks a message and answers the next stanza (a ping) without waiting for the recipients'
   * phones to read it.
   */
  deliverInOrder(work: () => Promise<void>): void {
    this.deliveries = this.deliveries.then(work).catch((error: unknown) => {
      this.event(`error delivering a message: ${(error as Error).stack ?? String(error)}`);
    });
  }

  /** Runs inbound work strictly in arrival order. */
  private enqueue(work: () => Promise<void>): void {
    this.inbound = this.inbound.then(work).catch((error: unknown) => {
      this.event(`error handling inbound data: ${(error as Error).stack ?? String(error)}`);
    });
  }

  private async handshakeStep(frame: Buffer): Promise<void> {
    this.idle.touch();
    const message = proto.HandshakeMessage.decode(frame);
    const intro = this.reader.parsedIntro!;
    if (message.clientHello?.ephemeral) {
      this.routingInfo = intro.routingInfo;
      const attrs: Record<string, string> = { type: 'clientHello' };
      if (intro.routingInfo) attrs.routing = intro.routingInfo.toString('hex');
      this.host.timeline.record(this.id, this.phone, 'in', { tag: 'handshake', attrs });
      const serverHello = this.noise.hello(intro.prologue, message.clientHello.ephemeral);
      this.host.timeline.record(this.id, this.phone, 'out', { tag: 'handshake', attrs: { type: 'serverHello' } });
      this.writeFrame(Buffer.from(proto.HandshakeMessage.encode({ serverHello }).finish()));
      return;
    }
    if (message.clientFinish) {
      let finished;
      try {
        finished = this.noise.finish(message.clientFinish);
      } catch {
        this.terminate('handshake: ClientFinish failed to decrypt');
        return;
      }
      this.transport = this.noise.split();
      this.clientStatic = finished.clientStatic;
      const payload = proto.ClientPayload.decode(finished.payload);
      const attrs: Record<string, string> = { type: 'clientFinish' };
      if (payload.username) attrs.username = String(payload.username);
      if (payload.device !== null && payload.device !== undefined) attrs.device = String(payload.device);
      if (payload.devicePairingData) attrs.registration = 'true';
      attrs.passive = String(Boolean(payload.passive));
      this.host.timeline.record(this.id, this.phone, 'in', { tag: 'handshake', attrs });
      this.state = 'authenticating';
      await this.host.onClientPayload(this, payload);
      return;
    }
    this.terminate('handshake: unexpected message');
  }

  private async dispatch(node: BinaryNode): Promise<void> {
    this.host.timeline.record(this.id, this.phone, 'in', node);
    this.idle.touch();
    if (this.silent) return;
    const type = node.attrs.type;
    const pending = node.tag === 'iq' && (type === 'result' || type === 'error') ? this.pendingIqs.get(node.attrs.id ?? '') : undefined;
    if (pending) {
      this.pendingIqs.delete(node.attrs.id ?? '');
      pending.resolve(node);
      return;
    }
    await this.host.onStanza(this, node);
  }

  private onWsClose(code: number, reason: string): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.idle.stop();
    this.outbound.clear();
    if (this.silentTimer) clearTimeout(this.silentTimer);
    if (this.blackHoleTimer) clearTimeout(this.blackHoleTimer);
    this.blackHoleQueue = null;
    const by = this.serverCloseReason === null ? 'client' : 'server';
    this.closeInfo = { at: Date.now(), by, code, reason: this.serverCloseReason ?? reason };
    this.event(`closed by ${by} (ws code ${code}${this.closeInfo.reason ? `, ${this.closeInfo.reason}` : ''})`);
    for (const pending of this.pendingIqs.values()) pending.reject(new Error('connection closed'));
    this.pendingIqs.clear();
    this.host.onClosed(this);
  }
}

function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
