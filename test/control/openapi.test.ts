// The OpenAPI document (GET /v1/openapi.json, docs/openapi.json) against the route table it is
// built from, the checked-in file, the examples in README.md and docs/, and real answers of the
// routes. Each checker is also fed something broken, to show it would say so.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../src/alerts/engine.js';
import { ConfigError } from '../../src/config/errors.js';
import { openApiDocument, openApiJson } from '../../src/control/openapi.js';
import { fullRouteTable } from '../../src/control/openapi-table.js';
import { tokenSha256 } from '../../src/control/roles.js';
import { buildRoutes, type AccountsApi, type RouteDeps } from '../../src/control/routes.js';
import { ControlServer, type Route } from '../../src/control/server.js';
import type { ClusterView } from '../../src/control/wire.js';
import { EventBus } from '../../src/events/bus.js';
import type { ConsumerService, ConsumerView } from '../../src/inbox/consumer-service.js';
import type { InboxRow } from '../../src/inbox/store.js';
import type { OutboxChange, OutboxChangesBackend } from '../../src/outbox/changes.js';
import type { MediaStore } from '../../src/outbox/media-store.js';
import type { SendGate } from '../../src/outbox/send-gate.js';
import type { AuditEntry, OutboxRow } from '../../src/outbox/store.js';
import { DAEMON_INFO, accountSummary } from '../helpers/control-fixtures.js';
import { httpUnix } from '../helpers/http-unix.js';
import { makeTmpDir } from '../helpers/tmp.js';
import { answerProblem, coverageProblems, exampleProblems, markdownExamples, parseShape, type OpenApiDoc } from './openapi-checks.js';

const ROOT = new URL('../../', import.meta.url);
const read = (file: string) => readFileSync(new URL(file, ROOT), 'utf8');

const notHere = () => {
  throw new Error('not used in this test');
};
const NOW = Date.parse('2026-11-21T10:00:00.000Z');
const ROW: OutboxRow = {
  id: 7,
  account: 'main',
  to: '15550001111@s.whatsapp.net',
  chatType: 'direct',
  kind: 'location',
  text: 'office',
  content: { type: 'location', latitude: 52.5, longitude: 13.4, name: 'office', replyTo: { id: 'ABCD1234', fromMe: false, text: null } },
  messageId: '3EB0C0FFEE000000000000AA',
  state: 'sent',
  reason: null,
  idempotencyKey: 'order-42',
  requestId: 'req-1',
  client: 'bot',
  clientRole: 'client',
  attempts: 0,
  wireSends: 1,
  nextAttemptAt: 0,
  leaseUntil: null,
  createdAt: NOW,
  updatedAt: NOW,
  expiresAt: null,
  sentAt: NOW,
  deliveredAt: null,
  readAt: null,
  approvedBy: null,
};
const INBOX_ROW: InboxRow = {
  cursor: 42,
  account: 'main',
  chat: '15550001111@s.whatsapp.net',
  id: '3EB0AA',
  from: '15550001111@s.whatsapp.net',
  chatType: 'direct',
  kind: 'image',
  text: 'a caption',
  detail: { mimetype: 'image/jpeg', fileLength: 70001 },
  status: 'ok',
  offline: true,
  timestamp: 1_700_000_000,
  receivedAt: NOW,
};
const ALERT: Alert = { id: 'al-1', code: 'needs_pairing', severity: 'critical', account: 'main', text: 'main needs pairing', raisedAt: '2026-11-21T10:00:00.000Z', details: { account: 'main', since: 5 } };
const AUDIT: AuditEntry = { at: NOW, account: 'main', recipient: '15550001111@s.whatsapp.net', kind: 'message', decision: 'allow', rule: 'default', reason: 'default allow', stage: 'enqueue', outboxId: 7, client: 'bot', role: 'client', requestId: 'req-1' };
const CHANGE: OutboxChange = { cursor: 3, id: 7, account: 'main', messageId: ROW.messageId, to: ROW.to, state: 'sent', reason: null, at: NOW };
const CONSUMER: ConsumerView = {
  name: 'bot',
  type: 'stream',
  origin: 'api',
  accounts: ['main'],
  cursor: '41',
  lag: { unacknowledged: 1, oldestReceivedAt: '2026-11-21T10:00:00.000Z', oldestAgeMs: 5 },
  connected: false,
  ackedAt: null,
  attempts: 0,
  nextAttemptAt: null,
  lastError: null,
  lastErrorAt: null,
  deadLetters: 0,
};
const CLUSTER: ClusterView = {
  daemon: 'd1',
  ttlMs: 10_000,
  storeOk: true,
  daemons: [{ id: 'd1', host: 'h1', pid: 1, socket: null, startedAt: '2026-11-21T10:00:00.000Z', seenAt: '2026-11-21T10:00:00.000Z', stopping: false, live: true, accounts: 1 }],
  leases: [{ account: 'main', owner: 'd1', epoch: 3, since: '2026-11-21T10:00:00.000Z', expiresAt: '2026-11-21T10:00:10.000Z', live: true, state: 'open' }],
};

/** The route table with every optional dependency present, answering with fixed rows. */
function routeTable(): Route[] {
  const accounts: AccountsApi = {
    list: () => [accountSummary({ origin: 'config', queue: { queued: 1, sending: 0, unknown: 0, held: 0 } })],
    status: (id) => accountSummary({ id }),
    add: notHere,
    setPolicy: notHere,
    remove: notHere,
    pair: notHere,
    cancelPairing: notHere,
    reconnect: notHere,
    logout: notHere,
  };
  const gate = {
    store: {
      list: async () => [ROW],
      get: async () => ROW,
      audit: async () => [AUDIT],
      countsByAccount: async () => new Map([['main', { queued: 1, sent: 2 }]]),
      findSent: async () => null,
    },
    enqueue: async () => ({ row: { ...ROW, state: 'queued' }, created: true }),
    commitStats: () => ({ commits: 1, rows: 1 }),
    sendReadReceipts: async () => ({ decision: { action: 'allow', rule: null, reason: 'default allow' }, sent: true }),
  } as unknown as SendGate;
  const deps: Required<RouteDeps> = {
    daemonInfo: () => DAEMON_INFO,
    accounts,
    gate,
    inbox: {
      store: { list: async () => [INBOX_ROW], countsByAccount: async () => new Map([['main', { ok: 1 }]]), lastCursor: async () => 42, unread: async () => [INBOX_ROW], markRead: async () => {} },
      follow: notHere,
      chatsOf: (_a: string | undefined, chat: string) => [chat],
    } as unknown as Required<RouteDeps>['inbox'],
    inboxMedia: { file: notHere },
    media: {} as MediaStore,
    stateDir: '/s',
    metrics: { scrape: async () => ({ text: 'wa_supervisor_accounts 1\n', contentType: 'text/plain; version=0.0.4' }) },
    outboxChanges: { list: async () => [CHANGE] } as unknown as OutboxChangesBackend,
    consumers: {
      list: async () => [CONSUMER],
      get: async () => CONSUMER,
      next: async () => ({ rows: [INBOX_ROW], committed: 41 }),
      store: {
        get: async () => ({ accounts: ['main'] }),
        list: async () => [{ name: 'bot-inbox', type: 'stream', accounts: ['main'] }],
        deadLetters: async () => [{ cursor: 40, reason: 'gone', at: NOW }],
      },
    } as unknown as ConsumerService,
    alerts: { active: () => [ALERT], recent: () => [{ type: 'alert', alert: ALERT }] },
    bus: new EventBus(),
    checkConfig: () => {
      throw new ConfigError('/c.json', [{ path: 'log.level', message: 'expected one of ...' }]);
    },
    cluster: async () => CLUSTER,
  };
  return buildRoutes(deps);
}

const table = routeTable();
const doc = openApiDocument(table) as unknown as OpenApiDoc;
const routesOf = (routes: readonly Route[]) => routes.map((r) => `${r.method} ${r.path}`).sort();

describe('the document and the route table', () => {
  it('has every route of the table with its method, and nothing the table lacks', () => {
    expect(coverageProblems(table, doc)).toEqual([]);
    expect(Object.values(doc.paths).flatMap((ops) => Object.keys(ops)).length).toBe(table.length);
  });

  it('is built from the same routes the published document is (every optional part present)', () => {
    expect(routesOf(fullRouteTable())).toEqual(routesOf(table));
    expect(routesOf(table)).toEqual(expect.arrayContaining(['GET /v1/me', 'GET /v1/inbox/next', 'GET /v1/openapi.json', 'GET /v1/messages/changes', 'GET /v1/inbox/:id/media']));
  });

  it('reports a route the document lacks, and an operation the table lacks', () => {
    const { ['/v1/me']: _me, ...paths } = doc.paths;
    expect(coverageProblems(table, { ...doc, paths })).toEqual(['GET /v1/me is in the route table but not in the document']);
    expect(coverageProblems(table.filter((r) => !(r.method === 'POST' && r.path === '/v1/inbox/ack')), doc)).toEqual(['POST /v1/inbox/ack is in the document but not in the route table']);
  });

  it('refuses a route without a schema instead of leaving it out', () => {
    const bare: Route = { method: 'GET', path: '/v1/bare', handler: () => ({ body: {} }) };
    expect(() => openApiDocument([...table, bare])).toThrow('route GET /v1/bare has no schema');
  });

  it('names the permission of each route, and gives each operation its own id', () => {
    const ops = Object.values(doc.paths).flatMap((o) => Object.values(o)) as unknown as Array<Record<string, unknown>>;
    expect(new Set(ops.map((o) => o.operationId)).size).toBe(ops.length);
    const permission = (path: string, method: string) => (doc.paths[path]![method] as unknown as Record<string, unknown>)['x-wa-permission'];
    expect([permission('/v1/openapi.json', 'get'), permission('/v1/me', 'get'), permission('/v1/messages', 'post'), permission('/v1/inbox/next', 'get'), permission('/v1/events', 'get'), permission('/v1/status', 'get')]).toEqual([
      'any',
      'any',
      'send',
      'read',
      'events',
      'operator',
    ]);
  });

  it('is the same bytes every time it is built', () => {
    expect(openApiJson(openApiDocument(routeTable()))).toBe(openApiJson(openApiDocument(routeTable())));
  });
});

describe('docs/openapi.json', () => {
  it('is the document the route table gives', () => {
    const file = read('docs/openapi.json');
    const built = openApiJson(doc as never);
    if (file === built) return;
    const line = file.split('\n').findIndex((l, i) => l !== built.split('\n')[i]) + 1;
    expect.fail(`docs/openapi.json differs from the document the route table gives (first at line ${line}): run \`npm run build && npm run openapi\` and commit it`);
  });
});

describe('the examples in README.md and docs/', () => {
  const files = ['README.md', ...readdirSync(new URL('docs/', ROOT)).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
  const examples = files.flatMap((f) => markdownExamples(read(f), f));

  it('are found: curl commands, routes named, the bodies and answers shown', () => {
    expect(examples.filter((e) => e.where.startsWith('README.md')).length).toBeGreaterThan(30);
    expect(examples.some((e) => e.body && 'json' in e.body)).toBe(true);
    expect(examples.some((e) => e.body && 'shape' in e.body)).toBe(true);
    expect(examples.some((e) => e.response && 'shape' in e.response)).toBe(true);
    expect(examples.some((e) => e.query.some(([, v]) => v !== null))).toBe(true);
  });

  it('name only routes, parameters, bodies and answers the document has', () => {
    expect(exampleProblems(examples, doc)).toEqual([]);
  });

  it('are reported when they do not agree with the document', () => {
    const broken = [
      "curl -s --unix-socket $S http://localhost/v1/nowhere",
      `curl -s --unix-socket $S -X POST http://localhost/v1/messages -d '{"account":"main","to":"+15550001111","colour":"red"}'`,
      `curl -s --unix-socket $S -X POST http://localhost/v1/inbox/ack -d '{"consumer":"bot"}'`,
      "curl -s --unix-socket $S 'http://localhost/v1/inbox?limit=0'",
      "curl -s --unix-socket $S 'http://localhost/v1/events?acount=main'",
      '| `POST /v1/inbox/ack` | body `{"consumer","cursr"}` → `{"consumer","cursor"}` |',
      '| `POST /v1/chats/read` | body `{"account"?,"chat"}` |',
      '| `POST /v1/messages/prune` | body `{"olderThan":"soon"}` → `{"deleted","removed"}` |',
      '| `GET /v1/consumers/NAME/dead-letters` | `{"consumer","deadLetters":[{"cursor","why"}]}` |',
      '| `POST /v1/media` | the bytes → `204 {"sha256"}` |',
      'See `PUT /v1/inbox?status=` for that.',
    ].join('\n');
    expect(exampleProblems(markdownExamples(broken, 'x.md'), doc)).toEqual([
      'x.md:1: GET /v1/nowhere: the document has no such route',
      expect.stringMatching(/^x\.md:2: POST \/v1\/messages: the body .* is refused by the document: data must NOT have additional properties$/),
      expect.stringMatching(/^x\.md:3: POST \/v1\/inbox\/ack: the body .* is refused by the document: data must have required property 'cursor'$/),
      expect.stringMatching(/^x\.md:4: GET \/v1\/inbox: query parameter limit=0: .*>= 1$/),
      'x.md:5: GET /v1/events: query parameter "acount" is not in the document',
      'x.md:6: POST /v1/inbox/ack: the body {"consumer","cursr"}: body.cursr is not in the document',
      'x.md:7: POST /v1/chats/read: the body {"account"?,"chat"}: body.account is marked optional, but the document requires it',
      expect.stringMatching(/^x\.md:8: POST \/v1\/messages\/prune: the body \{"olderThan":"soon"\} is refused by the document: /),
      'x.md:8: POST /v1/messages/prune: the answer {"deleted","removed"}: answer.removed is not in the document',
      'x.md:9: GET /v1/consumers/NAME/dead-letters: the answer {"consumer","deadLetters":[{"cursor","why"}]}: answer.deadLetters[].why is not in the document',
      'x.md:10: POST /v1/media: shows a JSON answer (204), which the document does not describe',
      'x.md:11: PUT /v1/inbox: the document has no such route',
    ]);
  });

  it('reads the shapes the route tables use, and refuses what it cannot read', () => {
    expect(parseShape('{"messages": [...], "next": "CURSOR", "a"?:{…}, "m":{"sha256"|"base64", "kind"?}}')).toEqual({
      object: [
        { name: 'messages', optional: false, value: { array: [] } },
        { name: 'next', optional: false, value: 'any' },
        { name: 'a', optional: true, value: { object: [], open: true } },
        {
          name: 'm',
          optional: false,
          value: {
            object: [
              { name: 'sha256', optional: true, value: 'any' },
              { name: 'base64', optional: true, value: 'any' },
              { name: 'kind', optional: true, value: 'any' },
            ],
            open: false,
          },
        },
      ],
      open: false,
    });
    expect(() => parseShape('{"a" "b"}')).toThrow(/cannot read the shape/);
  });
});

describe('answers of the routes', () => {
  const TOKEN = 'wst_openapi-test-0123456789';
  let sock: string;
  let server: ControlServer;
  let cleanup: () => void;
  beforeAll(async () => {
    const tmp = makeTmpDir('oa-');
    cleanup = tmp.cleanup;
    sock = join(tmp.dir, 's.sock');
    server = new ControlServer({ socketPath: sock, log: pino({ level: 'silent' }), routes: table, clients: () => [{ name: 'bot', tokenSha256: tokenSha256(TOKEN), accounts: ['main'] }] });
    await server.listen();
  });
  afterAll(async () => {
    await server.close(0);
    cleanup();
  });

  it('are what the document describes', async () => {
    const requests: Array<[string, string, unknown?, string?]> = [
      ['GET', '/v1/me'],
      ['GET', '/v1/me', undefined, TOKEN],
      ['GET', '/v1/status'],
      ['GET', '/v1/accounts?limit=1'],
      ['GET', '/v1/accounts/main'],
      ['GET', '/v1/alerts'],
      ['POST', '/v1/config/check', { log: { level: 'loud' } }],
      ['POST', '/v1/messages', { account: 'main', to: '+15550001111', text: 'hello' }],
      ['GET', '/v1/messages?account=main&limit=5'],
      ['GET', '/v1/messages/7'],
      ['GET', '/v1/messages/changes?after=2'],
      ['GET', '/v1/audit'],
      ['GET', '/v1/inbox?status=all'],
      ['POST', '/v1/chats/read', { account: 'main', chat: '+15550001111' }],
      ['GET', '/v1/inbox/next?consumer=bot', undefined, TOKEN],
      ['GET', '/v1/consumers'],
      ['GET', '/v1/consumers/bot/dead-letters'],
      ['GET', '/v1/openapi.json', undefined, TOKEN],
      // Errors: their bodies too.
      ['GET', '/v1/inbox?limit=0'],
      ['GET', '/v1/status', undefined, TOKEN],
      ['POST', '/v1/inbox/ack', { consumer: 'bot' }],
    ];
    const problems: string[] = [];
    const statuses: number[] = [];
    for (const [method, path, body, token] of requests) {
      const res = await httpUnix(sock, method, path, body === undefined ? undefined : JSON.stringify(body), token ? { authorization: `Bearer ${token}` } : {});
      statuses.push(res.status);
      const problem = answerProblem(doc, method, path, res.status, res.json());
      if (problem) problems.push(problem);
    }
    expect(problems).toEqual([]);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200, 202, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 400, 403, 400]);
  });

  it('include the document itself, as any client may read it', async () => {
    const res = await httpUnix(sock, 'GET', '/v1/openapi.json', undefined, { authorization: `Bearer ${TOKEN}` });
    expect(res.body).toBe(openApiJson(doc as never));
  });

  it('are reported when they do not match the document', () => {
    expect(answerProblem(doc, 'GET', '/v1/me', 200, { role: 'client', name: 'bot' })).toMatch(/^GET \/v1\/me answered 200 .*: data/);
    expect(answerProblem(doc, 'GET', '/v1/inbox/next', 200, { consumer: 'bot', committed: 41, messages: [], next: '41' })).toMatch(/committed must be string/);
    expect(answerProblem(doc, 'GET', '/v1/me', 400, { error: { code: 'no_such_code', message: 'x' } })).toMatch(/must be equal to one of the allowed values/);
  });
});
