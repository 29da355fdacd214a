// The route table: every control-socket route in one place. Handlers depend on one-method
// interfaces, not on the daemon object, so each is testable with a tiny fake.
import { ConfigError } from '../config/errors.js';
import type { EventBus, EventFilter } from '../events/bus.js';
import { HttpError } from './http-error.js';
import { CLIENT_PERMISSIONS, clientMaySee, consumerReadRefusal, scopedAccounts } from './roles.js';
import type { RuntimeAccountPolicy } from '../config/schema.js';
import { route } from './request-input.js';
import { AccountList, AccountParams, AccountRemoved, AccountsQuery, AccountSummary as AccountSchema, AddAccountBody, PairBody, PairLine, PolicyBody, PolicyResult } from './api-schema/accounts.js';
import { Alerts, ConfigCheck, ConfigCheckBody, Event, EventsQuery, Me, NoQuery, OpenApiDocument, StatusResponse as StatusSchema } from './api-schema/daemon.js';
import { openApiDocument, openApiJson } from './openapi.js';
import type { PairEvent, PairRequest } from '../accounts/runner.js';
import type { SendGate } from '../outbox/send-gate.js';
import type { OutboxState } from '../outbox/store.js';
import type { AlertEngine } from '../alerts/engine.js';
import { messageRoutes } from './message-routes.js';
import { chatReadRoute, inboxMediaRoute, inboxRoutes, outboxChangesRoute } from './inbox-routes.js';
import type { InboxMedia } from '../inbox/media.js';
import type { OutboxChangesBackend } from '../outbox/changes.js';
import type { MediaStore } from '../outbox/media-store.js';
import type { DaemonMetrics } from '../daemon/metrics.js';
import { consumerRoutes } from './consumer-routes.js';
import type { Inbox } from '../inbox/inbox.js';
import type { ConsumerService } from '../inbox/consumer-service.js';
import type { ApiRequest, NdjsonStream, Route } from './server.js';
import type { z } from 'zod';
import type { AccountSummary, ClusterView, ConfigCheckResponse, DaemonInfo, InboxSummary, StatusResponse } from './wire.js';
import { AccountEntries, type AccountCounts, type AccountJson } from './account-json.js';

/** What the account routes need: the supervisor, seen through the methods they call. */
export interface AccountsApi {
  list(): AccountSummary[];
  /** The same summaries as JSON, each kept between changes (account-json.ts); list() serialised when absent. */
  listJson?(): AccountJson[];
  status(id: string): AccountSummary;
  add(id: string, wsUrl: string | undefined, opts?: { policy?: RuntimeAccountPolicy; fresh?: boolean }): AccountSummary;
  setPolicy(id: string, policy: RuntimeAccountPolicy): RuntimeAccountPolicy;
  remove(id: string): Promise<void>;
  pair(id: string, req: PairRequest): Promise<void>;
  cancelPairing(id: string): Promise<void>;
  reconnect(id: string): Promise<AccountSummary>;
  logout(id: string): Promise<AccountSummary>;
}

/** What the routes need from the daemon. */
export interface RouteDeps {
  daemonInfo: () => DaemonInfo;
  accounts: AccountsApi;
  gate: SendGate;
  /** Inbound messages (optional in route tests). */
  inbox?: Pick<Inbox, 'store' | 'follow' | 'chatsOf'>;
  /** Files of inbound media messages (optional in route tests; needs `inbox`). */
  inboxMedia?: Pick<InboxMedia, 'file'>;
  /** Files outbound media messages carry (optional in route tests: media is then refused). */
  media?: MediaStore;
  /** The state directory, whose files are never sent as media. */
  stateDir?: string;
  /** Prometheus metrics (optional in route tests). */
  metrics?: Pick<DaemonMetrics, 'scrape'>;
  /** The journal of outbox state changes (optional in route tests). */
  outboxChanges?: OutboxChangesBackend;
  /** Inbox consumers (optional in route tests). */
  consumers?: ConsumerService;
  /** Operator alerts (optional in route tests). */
  alerts?: Pick<AlertEngine, 'active' | 'recent'> & Partial<Pick<AlertEngine, 'activeInCluster'>>;
  bus: Pick<EventBus, 'subscribe'>;
  /** Validates a config object with the daemon's schema; throws ConfigError when it is bad. */
  checkConfig: (raw: unknown) => void;
  /** In a cluster: the daemons and leases as the shared store has them. */
  cluster?: () => Promise<ClusterView>;
}

/** Builds the /v1 route table. */
export function buildRoutes(deps: RouteDeps): Route[] {
  // Each account's entry in the lists, kept as bytes between changes (account-json.ts).
  const entries = new AccountEntries();
  const routes: Route[] = [
    // Before messageRoutes, whose /v1/messages/:id would take "changes" for an id.
    ...(deps.outboxChanges ? [outboxChangesRoute(deps.outboxChanges)] : []),
    ...messageRoutes(deps.gate, deps.bus, { inbox: deps.inbox, media: deps.media, stateDir: deps.stateDir, ...(deps.cluster ? { followStoreMs: 500 } : {}) }),
    ...(deps.inbox ? [...inboxRoutes(deps.inbox), chatReadRoute(deps.inbox, deps.gate)] : []),
    ...(deps.inbox && deps.inboxMedia ? [inboxMediaRoute(deps.inbox, deps.inboxMedia)] : []),
    ...(deps.consumers ? consumerRoutes(deps.consumers) : []),
    route({
      // Who the caller is: a client learns its name, accounts and permissions (any client may ask).
      method: 'GET',
      path: '/v1/me',
      client: 'any',
      schema: { summary: 'Who the caller is: the operator, or a client with its accounts, permissions and the stream consumers it may read', query: NoQuery, response: Me },
      handler: async (req) => {
        const c = req.caller;
        if (c.role === 'operator') return { body: { role: 'operator' } };
        // The stream consumers it may read (the same rule as the consumer routes).
        const all = (await deps.consumers?.store.list()) ?? [];
        const consumers = c.may.has('read') ? all.filter((k) => k.type === 'stream' && consumerReadRefusal(c, k.name, k.accounts) === null).map((k) => k.name).sort() : [];
        return { body: { role: 'client', name: c.name, accounts: [...c.accounts].sort(), may: CLIENT_PERMISSIONS.filter((p) => c.may.has(p)), consumers } };
      },
    }),
    route({
      method: 'GET',
      path: '/v1/status',
      schema: {
        summary: 'The daemon, the outbox and inbox counts, and every account',
        description: 'In a cluster also `cluster` (the daemons and leases as the shared store has them) and each account\'s `owner`.',
        response: StatusSchema,
      },
      handler: async () => {
        const view = deps.cluster ? await deps.cluster() : undefined;
        const accounts = withOwners(accountsJson(deps.accounts), view);
        // One read of the kept outbox counts gives both each account's queue and the totals by state.
        const counts = await accountCounts(deps.gate, deps.inbox, 'every state');
        const byState: StatusResponse['summary']['byState'] = {};
        for (const a of accounts) byState[a.state] = (byState[a.state] ?? 0) + 1;
        const commits = deps.gate.commitStats?.() ?? { commits: 0, rows: 0 };
        const outbox = counts.queued
          ? { byState: sumByState(counts.queued), commits: commits.commits, rowsCommitted: commits.rows }
          : counts.outboxError
            ? { byState: {}, commits: commits.commits, rowsCommitted: commits.rows, error: counts.outboxError }
            : undefined;
        const inbox = counts.received ? inboxSummary(accounts, counts.received, counts.lastCursor!) : undefined;
        const head: Omit<StatusResponse, 'accounts'> = {
          daemon: deps.daemonInfo(),
          ...(outbox ? { outbox } : {}),
          ...(inbox ? { inbox } : {}),
          summary: { accounts: accounts.length, byState },
          ...(view ? { cluster: view } : {}),
        };
        return jsonPartsReply([Buffer.from(`${JSON.stringify(head).slice(0, -1)},"accounts":`), entries.array(accounts, counts), CLOSE_LINE]);
      },
    }),
    route({
      // Prometheus text exposition (operators only, like status).
      method: 'GET',
      path: '/v1/metrics',
      schema: {
        summary: 'Prometheus metrics (text exposition format)',
        query: NoQuery,
        raw: { response: 'text/plain; version=0.0.4' },
        errors: { 404: 'this daemon collects no metrics' },
      },
      handler: async () => {
        if (!deps.metrics) throw new HttpError(404, 'not_found', 'metrics are not collected by this daemon');
        const { text, contentType } = await deps.metrics.scrape();
        const body = Buffer.from(text);
        return { raw: body, headers: { 'content-type': contentType, 'content-length': body.length, 'cache-control': 'no-store' } };
      },
    }),
    route({
      method: 'GET',
      path: '/v1/alerts',
      schema: {
        summary: 'The active alerts and recent notifications',
        description: 'In a cluster `active` is every live daemon\'s raised alerts, `recent` this daemon\'s notifications.',
        response: Alerts,
      },
      handler: async () => ({ body: { active: (await deps.alerts?.activeInCluster?.()) ?? deps.alerts?.active() ?? [], recent: deps.alerts?.recent() ?? [] } }),
    }),
    route({
      method: 'GET',
      path: '/v1/accounts',
      schema: { summary: 'Every account (a page of them, in id order, with limit or after)', query: AccountsQuery, response: AccountList },
      handler: async (_req, { query }) => {
        const states = query.state ?? [];
        const limit = query.limit ?? null;
        const after = query.after ?? null;
        let list = withOwners(accountsJson(deps.accounts), deps.cluster ? await deps.cluster() : undefined);
        if (states.length) list = list.filter((a) => states.includes(a.state));
        // A page (limit or after): ordered by id, and `next` names the id to continue after.
        let next: string | undefined;
        if (limit !== null || after !== null) {
          list = list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
          if (after !== null) list = list.filter((a) => a.id > after);
          if (limit !== null && list.length > limit) {
            list = list.slice(0, limit);
            next = list[list.length - 1]!.id;
          }
        }
        const array = entries.array(list, await accountCounts(deps.gate, deps.inbox));
        return jsonPartsReply([ACCOUNTS_OPEN, array, next !== undefined ? Buffer.from(`,"next":${JSON.stringify(next)}}\n`) : CLOSE_LINE]);
      },
    }),
    route({
      method: 'POST',
      path: '/v1/accounts',
      schema: {
        summary: 'Add an account, kept in the state database; its policy is in force before it connects',
        body: AddAccountBody,
        status: 201,
        answer: 'Added',
        response: AccountSchema,
        errors: { 409: 'the id is taken, or creds a config account left behind are there (fresh: true archives them)' },
      },
      handler: (_req, { body }) => {
        const { id, wsUrl, allowTo, rules, fresh } = body;
        const policy = allowTo === undefined && rules === undefined ? undefined : { allowTo, rules };
        return { status: 201, body: deps.accounts.add(id, wsUrl ?? undefined, { ...(policy ? { policy } : {}), ...(fresh ? { fresh: true } : {}) }) };
      },
    }),
    route({
      method: 'PUT',
      path: '/v1/accounts/:id/policy',
      schema: {
        summary: 'Replace a runtime account\'s policy ({} clears it)',
        params: AccountParams,
        body: PolicyBody,
        response: PolicyResult,
        errors: { 409: 'a config account\'s policy is in the config' },
      },
      // No body must not read as "no allowTo": clearing the policy is an explicit {}.
      handler: (_req, { params, body }) => ({ body: { account: params.id, ...deps.accounts.setPolicy(params.id, body) } }),
    }),
    route({
      method: 'GET',
      path: '/v1/accounts/:id',
      schema: { summary: 'One account', params: AccountParams, response: AccountSchema },
      handler: async (_req, { params }) => {
        const status = deps.accounts.status(params.id);
        if (!deps.cluster) return { body: status };
        return { body: { ...status, owner: ownerOf((await deps.cluster()).leases.find((l) => l.account === status.id)) } };
      },
    }),
    route({
      method: 'DELETE',
      path: '/v1/accounts/:id',
      schema: { summary: 'Remove an account added at runtime', params: AccountParams, response: AccountRemoved, errors: { 409: 'the account is defined in the config file' } },
      handler: async (_req, { params }) => {
        await deps.accounts.remove(params.id);
        return { body: { removed: params.id } };
      },
    }),
    route({
      method: 'POST',
      path: '/v1/accounts/:id/reconnect',
      schema: { summary: 'Close the account\'s connection and connect again', params: AccountParams, response: AccountSchema },
      handler: async (_req, { params }) => ({ body: await deps.accounts.reconnect(params.id) }),
    }),
    route({
      method: 'POST',
      path: '/v1/accounts/:id/logout',
      schema: { summary: 'Log the account out (it must pair again)', params: AccountParams, response: AccountSchema },
      handler: async (_req, { params }) => ({ body: await deps.accounts.logout(params.id) }),
    }),
    route({
      method: 'POST',
      path: '/v1/accounts/:id/pair',
      schema: {
        summary: 'Pair the account: a QR code, or a pairing code for a phone number, then paired or error (NDJSON)',
        params: AccountParams,
        body: PairBody,
        bodyOptional: true,
        stream: PairLine,
      },
      handler: (req, { params, body }) => pairStream(req, params.id, body.phone, deps.accounts),
    }),
    route({
      method: 'GET',
      path: '/v1/events',
      subscriber: true,
      client: 'events',
      schema: {
        summary: 'Events as they happen, one per line (NDJSON), filtered by the query',
        description: 'A client hears only its accounts, never alerts or digests; message and group events need read as well.',
        query: EventsQuery,
        stream: Event,
      },
      handler: (req, { query }) => streamEvents(req, eventFilter(query), deps.bus),
    }),
    route({
      method: 'POST',
      path: '/v1/config/check',
      schema: { summary: 'Check a config object with the daemon\'s schema, without applying it', body: ConfigCheckBody, response: ConfigCheck },
      handler: (_req, { body }): { body: ConfigCheckResponse } => {
        try {
          deps.checkConfig(body);
          return { body: { ok: true, problems: [] } };
        } catch (err) {
          if (err instanceof ConfigError) return { body: { ok: false, problems: [...err.problems] } };
          throw err;
        }
      },
    }),
  ];
  // The document of this very table, built once when first asked for (the table does not change).
  let document: Buffer | undefined;
  routes.push(
    route({
      method: 'GET',
      path: '/v1/openapi.json',
      client: 'any',
      schema: { summary: 'This document: the control API in OpenAPI 3.1', query: NoQuery, response: OpenApiDocument },
      handler: () => {
        document ??= Buffer.from(openApiJson(openApiDocument(routes)));
        return { raw: document, headers: { 'content-type': 'application/json', 'content-length': document.length } };
      },
    }),
  );
  return routes;
}

/** The bus's filter from `?account=a,b&type=x.*&requestId=r` (unknown parameters were refused). */
function eventFilter(q: z.output<typeof EventsQuery>): EventFilter {
  const filter: EventFilter = {};
  if (q.account?.length) filter.accounts = q.account;
  if (q.type?.length) filter.types = q.type;
  if (q.requestId) filter.requestId = q.requestId;
  return filter;
}

/** Each account's summary with its `owner` from the cluster view (in a cluster). */
function withOwners(accounts: AccountJson[], view: ClusterView | undefined): AccountJson[] {
  if (!view) return accounts;
  const leases = new Map(view.leases.map((l) => [l.account, l]));
  return accounts.map((a) => ({ ...a, json: `${a.json.slice(0, -1)},"owner":${JSON.stringify(ownerOf(leases.get(a.id)))}}` }));
}

/** An account's `owner` from its lease in the cluster view (all null when it has none yet). */
function ownerOf(l: ClusterView['leases'][number] | undefined): NonNullable<AccountSummary['owner']> {
  return { daemon: l?.owner ?? null, since: l?.since ?? null, expiresAt: l?.expiresAt ?? null, epoch: l?.epoch ?? 0, state: l?.state ?? null };
}

/** Every account's summary as JSON (kept by the runners; a route test's fake is serialised). */
function accountsJson(accounts: AccountsApi): AccountJson[] {
  if (accounts.listJson) return accounts.listJson();
  return accounts.list().map(({ origin, ...a }) => ({ id: a.id, state: a.state, ...(origin === undefined ? {} : { origin }), json: JSON.stringify(a) }));
}

/**
 * Each account's outbox depth (rows waiting, in flight, unsettled: one query of the kept counts;
 * with 'every state', the finished states too) and inbox counts (from memory).
 */
async function accountCounts(
  gate: SendGate,
  inbox: RouteDeps['inbox'],
  states: 'waiting' | 'every state' = 'waiting',
): Promise<AccountCounts & { queued?: Map<string, Partial<Record<OutboxState, number>>>; outboxError?: string; lastCursor?: number }> {
  let queued: Map<string, Partial<Record<OutboxState, number>>> | undefined;
  let outboxError: string | undefined;
  try {
    queued = gate.store ? await gate.store.countsByAccount(states === 'waiting' ? ['queued', 'sending', 'unknown', 'held'] : undefined) : undefined;
  } catch (err) {
    // A shared store that does not answer (a cluster cut off from it): status still answers, without the counts.
    outboxError = `the outbox counts could not be read: ${(err as Error).message}`;
  }
  let received: AccountCounts['received'];
  let lastCursor: number | undefined;
  if (inbox) {
    try {
      received = inbox.store.countsView ? inbox.store.countsView() : await inbox.store.countsByAccount();
      lastCursor = await inbox.store.lastCursor();
    } catch {
      received = undefined; // the shared store did not answer: status goes on without the inbox
    }
  }
  return {
    ...(queued ? { queued } : {}),
    ...(outboxError ? { outboxError } : {}),
    ...(received && lastCursor !== undefined ? { received, lastCursor } : {}),
  };
}

/** Totals by state of per-account counts. */
function sumByState(byAccount: ReadonlyMap<string, Partial<Record<OutboxState, number>>>): Partial<Record<OutboxState, number>> {
  const sum: Partial<Record<OutboxState, number>> = {};
  for (const counts of byAccount.values()) for (const [state, n] of Object.entries(counts) as Array<[OutboxState, number]>) sum[state] = (sum[state] ?? 0) + n;
  return sum;
}

/** The inbox counts of the accounts the daemon has (rows of a removed account are not counted). */
function inboxSummary(accounts: readonly AccountJson[], received: NonNullable<AccountCounts['received']>, lastCursor: number): InboxSummary {
  const sum = { messages: 0, undecryptable: 0, ignored: 0 };
  for (const a of accounts) {
    const c = received.get(a.id);
    if (!c) continue;
    sum.messages += c.ok ?? 0;
    sum.undecryptable += c.undecryptable ?? 0;
    sum.ignored += c.ignored ?? 0;
  }
  return { ...sum, lastCursor: String(lastCursor) };
}

const ACCOUNTS_OPEN = Buffer.from('{"accounts":');
const CLOSE_LINE = Buffer.from('}\n');

/** A JSON answer from its parts (the last ends the line), sent one after another, not copied into one. */
function jsonPartsReply(parts: Buffer[]): { raw: Buffer[]; headers: Record<string, string | number> } {
  let length = 0;
  for (const p of parts) length += p.length;
  return { raw: parts, headers: { 'content-type': 'application/json', 'content-length': length } };
}

async function pairStream(req: ApiRequest, id: string, phone: string | undefined, accounts: AccountsApi): Promise<void> {
  accounts.status(id); // 404 before the stream starts
  let stream: NdjsonStream | null = null;
  let finished = false;
  const pending: PairEvent[] = [];
  const onEvent = (e: PairEvent) => {
    if (finished) return;
    if (!stream) {
      pending.push(e);
      return;
    }
    stream.write({ ...e, account: id, requestId: req.requestId });
    if (e.type === 'paired' || e.type === 'error') {
      finished = true;
      stream.end();
    }
  };
  await accounts.pair(id, { phone, requestId: req.requestId, onEvent });
  stream = req.openStream();
  stream.onClose(() => {
    if (!finished) {
      finished = true;
      void accounts.cancelPairing(id);
    }
  });
  for (const e of pending.splice(0)) onEvent(e);
}

function streamEvents(req: ApiRequest, filter: EventFilter, bus: Pick<EventBus, 'subscribe'>): void {
  // A client hears only its accounts (and never alerts or digests, which are the operators').
  const accounts = scopedAccounts(req.caller, filter.accounts ?? []);
  if (accounts) filter.accounts = accounts;
  const caller = req.caller;
  const stream = req.openStream();
  const unsubscribe = bus.subscribe(filter, (event) => {
    if (clientMaySee(caller, event)) stream.write(event);
  });
  stream.onClose(unsubscribe);
}
