/**
 * The HTTP server the clients connect to: upgrades `/ws/chat` to WebSocket unless an
 * upgrade fault says to refuse it with an HTTP status (which Baileys never reports; see docs).
 */
import { listenOn } from './listen.js';
import { type IncomingMessage, STATUS_CODES, type Server, createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';

/** The path WhatsApp Web clients connect to. */
export const CHAT_PATH = '/ws/chat';

/** What the server asks of its owner. */
export interface UpgradeHandler {
  /** An HTTP status to refuse this upgrade with, or undefined to accept it. */
  refusal(phoneHint: string | null): number | undefined;
  /** A new WebSocket connection. */
  accept(ws: WebSocket, socket: Socket, phoneHint: string | null): void;
  /** A refused or malformed upgrade, for the event log. */
  rejected(status: number, why: string): void;
}

/** An HTTP server that only serves WebSocket upgrades on CHAT_PATH. */
export class ChatServer {
  private readonly http: Server;
  private readonly wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

  constructor(private readonly handler: UpgradeHandler) {
    this.http = createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket upgrade required\n');
    });
    this.http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
  }

  /** Starts listening; resolves with the bound port. */
  listen(port: number, host: string): Promise<number> {
    return listenOn(this.http, port, host);
  }

  /** Stops accepting and drops every connection. */
  async close(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.wss.close();
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Node hands an upgraded socket over without an error listener; a client that resets it
    // (after a refusal, or mid-handshake) must not become an uncaught exception here.
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://emulator');
    if (url.pathname !== CHAT_PATH) {
      this.refuse(socket, 404, `upgrade for unknown path ${url.pathname}`);
      return;
    }
    const phoneHint = url.searchParams.get('phone');
    const refusal = this.handler.refusal(phoneHint);
    if (refusal !== undefined) {
      this.refuse(socket, refusal, `upgrade refused by fault with ${refusal}`);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.handler.accept(ws, req.socket, phoneHint));
  }

  private refuse(socket: Duplex, status: number, why: string): void {
    this.handler.rejected(status, why);
    const text = STATUS_CODES[status] ?? 'Refused';
    socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  }
}
