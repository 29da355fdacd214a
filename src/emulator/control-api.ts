/**
 * The emulator's JSON control API over HTTP, bound to 127.0.0.1 only. Black-box tests outside
 * this repository depend on the routes marked "contract" in docs/emulator.md; the others are
 * extensions. Bad input gets `4xx {"error":{"code","message","field"}}`, never a crash.
 */
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Fields, queryFields } from './control-input.js';
import { MAX_LATENCY_MS } from './delay-line.js';
import type { Emulator } from './emulator.js';
import { EmulatorError } from './errors.js';
import { parseFault } from './fault-input.js';
import { MEDIA_KINDS } from './media-crypto.js';
import type { InboundMedia } from './peer-media.js';
import type { StanzaMatch, TimelineEntry } from './timeline.js';

/** Large enough for a media file of a few MB in base64 (`POST /inbound` with `media`). */
const MAX_BODY_BYTES = 16 << 20;
const MAX_WAIT_MS = 120_000;

interface Request {
  match: RegExpMatchArray;
  query: URLSearchParams;
  body: unknown;
  /** Aborted when the HTTP client goes away (ends long polls). */
  signal: AbortSignal;
}

interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  path: RegExp;
  handle: (request: Request) => unknown;
}

/** The HTTP server behind `Emulator.startControlApi`. */
export class ControlServer {
  private readonly http: Server;
  private readonly routes: Route[];
  private port = 0;

  constructor(private readonly emulator: Emulator) {
    this.routes = this.buildRoutes();
    this.http = createServer((req, res) => {
      this.serve(req, res).catch((error: unknown) => {
        if (!res.headersSent) send(res, 500, { error: { code: 'internal', message: String(error) } });
      });
    });
  }

  /** Binds 127.0.0.1:`port` (0 = ephemeral). */
  listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(port, '127.0.0.1', () => {
        this.http.off('error', reject);
        this.port = (this.http.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  /** Base URL, e.g. `http://127.0.0.1:40123`. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Stops the server and drops open requests (long polls included). */
  async close(): Promise<void> {
    this.http.closeAllConnections();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
  }

  private buildRoutes(): Route[] {
    const emu = this.emulator;
    return [
      { method: 'GET', path: /^\/health$/, handle: () => ({ ok: true, url: emu.url, rootPublicKey: emu.rootPublicKey.toString('hex') }) },
      {
        method: 'POST',
        path: /^\/pair$/,
        handle: async ({ body }) => {
          const fields = new Fields(body);
          const phone = fields.phone('phone');
          if (fields.has('qr') === fields.has('code')) {
            throw new EmulatorError(400, 'bad_request', 'qr: give exactly one of "qr" or "code"', 'qr');
          }
          const result = fields.has('qr')
            ? await emu.pair({ phone, qr: fields.string('qr', 4096) })
            : await emu.pair({ phone, code: fields.string('code', 64) });
          return result;
        },
      },
      {
        method: 'POST',
        path: /^\/faults$/,
        handle: ({ body, query }) => {
          const { phone, fault } = parseFault(new Fields(body));
          const outcome = emu.injectFault(phone, fault);
          // The contract answers `{}`; `?detail=1` adds how the fault was applied.
          return query.get('detail') === '1' ? outcome : {};
        },
      },
      { method: 'GET', path: /^\/faults$/, handle: ({ query }) => emu.armedFaults(queryFields(query).phone('phone')) },
      {
        method: 'DELETE',
        path: /^\/faults$/,
        handle: ({ query }) => {
          emu.clearFaults(query.has('phone') ? queryFields(query).phone('phone') : undefined);
          return {};
        },
      },
      {
        method: 'POST',
        path: /^\/inbound$/,
        handle: async ({ body }) => {
          const fields = new Fields(body);
          const id = fields.optionalString('id', 128);
          if (fields.has('media') && fields.has('text')) throw new EmulatorError(400, 'bad_request', 'text: give "media.caption" with a file, not "text"', 'text');
          const content = fields.has('media') ? { media: inboundMedia(fields.object('media')) } : { text: fields.string('text', 65_536) };
          if (fields.has('group')) {
            if (fields.has('undecryptable')) throw new EmulatorError(400, 'bad_request', 'undecryptable: only for a direct message (not with group)', 'undecryptable');
            const request = { from: fields.phone('from'), group: groupJid(fields.string('group', 64)), ...content };
            const to = fields.has('to') ? fields.phone('to') : undefined;
            return emu.sendGroupInbound({ ...request, ...(to !== undefined ? { to } : {}), ...(id !== undefined ? { id } : {}) });
          }
          const undecryptable = fields.has('undecryptable') ? fields.boolean('undecryptable') : false;
          const request = { from: fields.phone('from'), to: fields.phone('to'), ...content, ...(undecryptable ? { undecryptable } : {}) };
          const result = await emu.sendInbound(id === undefined ? request : { ...request, id });
          return result;
        },
      },
      {
        method: 'POST',
        path: /^\/groups$/,
        handle: ({ body }) => {
          const fields = new Fields(body);
          const request = { subject: fields.string('subject', 100), participants: fields.phones('participants') };
          const admins = fields.has('admins') ? fields.phones('admins') : undefined;
          const addressingMode = fields.has('addressingMode') ? fields.oneOf('addressingMode', ['lid', 'pn'] as const) : undefined;
          const id = fields.optionalString('id', 40);
          return emu.createGroup({ ...request, ...(admins ? { admins } : {}), ...(addressingMode ? { addressingMode } : {}), ...(id ? { id } : {}) });
        },
      },
      { method: 'GET', path: /^\/groups\/([^/]+)$/, handle: ({ match }) => emu.group(pathGroup(match[1])) },
      {
        method: 'POST',
        path: /^\/groups\/([^/]+)$/,
        handle: ({ match, body }) => {
          const fields = new Fields(body);
          const update = {
            ...(fields.has('add') ? { add: fields.phones('add') } : {}),
            ...(fields.has('remove') ? { remove: fields.phones('remove') } : {}),
            ...(fields.has('subject') ? { subject: fields.string('subject', 100) } : {}),
            ...(fields.has('by') ? { by: fields.phone('by') } : {}),
          };
          if (!('add' in update || 'remove' in update || 'subject' in update)) {
            throw new EmulatorError(400, 'bad_request', 'body: give "add", "remove" or "subject"', 'body');
          }
          return emu.updateGroup(pathGroup(match[1]), update);
        },
      },
      {
        method: 'POST',
        path: /^\/receipts$/,
        handle: ({ body }) => {
          const fields = new Fields(body);
          const type = fields.has('type') ? fields.oneOf('type', ['delivery', 'read', 'played'] as const) : 'delivery';
          emu.sendReceipt({ from: fields.phone('from'), to: fields.phone('to'), id: fields.string('id', 128), type });
          return {};
        },
      },
      { method: 'GET', path: /^\/media$/, handle: () => emu.media() },
      { method: 'GET', path: /^\/media\/ca$/, handle: () => ({ pem: emu.mediaCaPem, host: emu.mediaHost }) },
      {
        method: 'POST',
        path: /^\/media\/tamper$/,
        handle: ({ body }) => {
          const directPath = new Fields(body ?? {}).optionalString('directPath', 4096);
          const tampered = emu.tamperMedia(directPath);
          return tampered ?? { armed: true };
        },
      },
      {
        method: 'POST',
        path: /^\/media\/expire$/,
        handle: ({ body }) => emu.expireMedia(new Fields(body ?? {}).string('directPath', 4096)),
      },
      {
        method: 'POST',
        path: /^\/media\/hold$/,
        handle: ({ body }) => {
          const stage = new Fields(body ?? {}).optionalString('stage', 32) ?? 'after-store';
          if (stage !== 'before-store' && stage !== 'after-store') throw new EmulatorError(400, 'bad_request', 'stage: expected "before-store" or "after-store"', 'stage');
          emu.holdMediaUpload(stage);
          return { armed: true, stage };
        },
      },
      { method: 'GET', path: /^\/peers$/, handle: () => emu.peers() },
      { method: 'GET', path: /^\/peers\/([^/]+)\/messages$/, handle: ({ match }) => emu.peerMessages(pathPhone(match[1])) },
      { method: 'GET', path: /^\/peers\/([^/]+)\/sent$/, handle: ({ match }) => emu.sentMessages(pathPhone(match[1])) },
      {
        method: 'POST',
        path: /^\/peers\/([^/]+)\/fail-decrypt$/,
        handle: ({ match, body }) => {
          const fields = new Fields(body ?? {});
          const id = fields.optionalString('id', 128);
          const hold = fields.has('hold') ? fields.boolean('hold') : false;
          emu.failDecrypt(pathPhone(match[1]), { id, hold });
          return {};
        },
      },
      { method: 'POST', path: /^\/peers\/([^/]+)\/release-retries$/, handle: ({ match }) => ({ sent: emu.releaseRetries(pathPhone(match[1])) }) },
      { method: 'GET', path: /^\/peers\/([^/]+)\/retries$/, handle: ({ match }) => ({ sent: emu.retryReceiptsSent(pathPhone(match[1])) }) },
      { method: 'GET', path: /^\/accounts$/, handle: () => emu.accounts() },
      { method: 'GET', path: /^\/accounts\/([^/]+)\/own-messages$/, handle: ({ match }) => emu.ownPhoneMessages(pathPhone(match[1])) },
      { method: 'GET', path: /^\/accounts\/([^/]+)\/connections$/, handle: ({ match }) => emu.connections(pathPhone(match[1])) },
      {
        method: 'GET',
        path: /^\/timeline$/,
        handle: ({ query }) => {
          const fields = queryFields(query);
          const filter: { phone?: string; after?: number } = {};
          if (fields.has('phone')) filter.phone = fields.phone('phone');
          const after = fields.optionalInt('after', 0, Number.MAX_SAFE_INTEGER);
          if (after !== undefined) filter.after = after;
          return emu.timeline.entries(filter).map(publicEntry);
        },
      },
      {
        method: 'GET',
        path: /^\/timeline\/wait$/,
        handle: async ({ query, signal }) => {
          const fields = queryFields(query);
          const match: StanzaMatch = {};
          if (fields.has('phone')) match.phone = fields.phone('phone');
          if (fields.has('dir')) match.dir = fields.oneOf('dir', ['in', 'out'] as const);
          const tag = fields.optionalString('tag', 100);
          if (tag !== undefined) match.tag = tag;
          const child = fields.optionalString('child', 100);
          if (child !== undefined) match.child = child;
          const contains = fields.optionalString('contains', 1000);
          if (contains !== undefined) match.contains = contains;
          const after = fields.optionalInt('after', 0, Number.MAX_SAFE_INTEGER) ?? 0;
          const timeoutMs = fields.optionalInt('timeoutMs', 1, MAX_WAIT_MS) ?? 10_000;
          try {
            return publicEntry(await emu.timeline.waitFor(match, { after, timeoutMs, signal }));
          } catch (error) {
            throw new EmulatorError(408, 'timeout', (error as Error).message);
          }
        },
      },
      {
        method: 'GET',
        path: /^\/events$/,
        handle: ({ query }) => emu.events.entries(query.has('phone') ? queryFields(query).phone('phone') : undefined),
      },
      {
        method: 'POST',
        path: /^\/idle$/,
        handle: ({ body }) => {
          const fields = new Fields(body);
          const ms = fields.int('ms', 0, 24 * 3600 * 1000);
          emu.setIdleWindow(ms, fields.has('phone') ? fields.phone('phone') : undefined);
          return {};
        },
      },
      { method: 'GET', path: /^\/latency$/, handle: () => ({ ms: emu.latencyMs }) },
      {
        method: 'POST',
        path: /^\/latency$/,
        handle: ({ body }) => {
          emu.setLatency(new Fields(body).int('ms', 0, MAX_LATENCY_MS));
          return {};
        },
      },
      {
        method: 'POST',
        path: /^\/edge-routing$/,
        handle: ({ body }) => {
          const fields = new Fields(body);
          const hex = fields.string('routingInfo', 512);
          if (!/^([0-9a-f]{2})+$/i.test(hex)) throw new EmulatorError(400, 'bad_request', 'routingInfo: must be hex bytes', 'routingInfo');
          return { sessions: emu.sendEdgeRouting(fields.phone('phone'), Buffer.from(hex, 'hex')) };
        },
      },
    ];
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://control');
    const candidates = this.routes.filter((r) => r.path.test(url.pathname));
    const route = candidates.find((r) => r.method === req.method);
    if (!route) {
      const status = candidates.length > 0 ? 405 : 404;
      const message = status === 405 ? `${req.method} is not allowed on ${url.pathname}` : `no route ${url.pathname}`;
      send(res, status, { error: { code: status === 405 ? 'method_not_allowed' : 'not_found', message } });
      return;
    }
    const aborter = new AbortController();
    res.on('close', () => aborter.abort());
    try {
      const body = req.method === 'POST' ? await readJson(req) : undefined;
      const result = await route.handle({ match: url.pathname.match(route.path)!, query: url.searchParams, body, signal: aborter.signal });
      send(res, 200, result ?? {});
    } catch (error) {
      if (error instanceof EmulatorError) {
        send(res, error.status, { error: { code: error.code, message: error.message, ...(error.field ? { field: error.field } : {}) } });
      } else {
        send(res, 500, { error: { code: 'internal', message: (error as Error).message ?? String(error) } });
      }
    }
  }
}

/** A timeline entry without the in-process node. */
function publicEntry(entry: TimelineEntry): Omit<TimelineEntry, 'node'> {
  const { node: _node, ...rest } = entry;
  return rest;
}

/** `media: {kind, base64, mimetype, fileName?, caption?}` of `POST /inbound`. */
function inboundMedia(fields: Fields): InboundMedia {
  const fileName = fields.optionalString('fileName', 255);
  const caption = fields.optionalString('caption', 65_536);
  return {
    kind: fields.oneOf('kind', MEDIA_KINDS),
    data: fields.base64('base64', MAX_BODY_BYTES),
    mimetype: fields.string('mimetype', 255),
    ...(fileName !== undefined ? { fileName } : {}),
    ...(caption !== undefined ? { caption } : {}),
  };
}

/** A group JID, from `<id>@g.us` or the bare id. */
function groupJid(value: string): string {
  const id = value.replace(/@g\.us$/, '');
  if (!/^\d{5,40}$/.test(id)) throw new EmulatorError(400, 'bad_request', `group: "${value}" is not a group id or <id>@g.us`, 'group');
  return `${id}@g.us`;
}

function pathGroup(segment: string | undefined): string {
  return groupJid(decodeURIComponent(segment ?? ''));
}

function pathPhone(segment: string | undefined): string {
  return new Fields({ phone: decodeURIComponent(segment ?? '') }).phone('phone');
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new EmulatorError(413, 'too_large', `body: larger than ${MAX_BODY_BYTES} bytes`, 'body');
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new EmulatorError(400, 'bad_json', 'body: is not valid JSON', 'body');
  }
}

function send(res: ServerResponse, status: number, data: unknown): void {
  if (res.writableEnded) return;
  const text = JSON.stringify(data);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
