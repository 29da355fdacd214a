// The route table: every control-socket route in one place. Handlers depend on one-method
// interfaces, not on the daemon object, so each is testable with a tiny fake.
import { ConfigError } from '../config/errors.js';
import type { EventBus, EventFilter } from '../events/bus.js';
import { HttpError } from './http-error.js';
import { CLIENT_PERMISSIONS, clientMaySee, scopedAccounts } from './roles.js';
import { RuntimeAccountPolicySchema, type RuntimeAccountPolicy } from '../config/schema.js';
import { listParam, objectBody, rejectUnknownFields, rejectUnknownParams, stringField } from './request-input.js';
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
import { normalisePhone } from '../outbox/recipient.js';
import type { ApiRequest, NdjsonStream, Route } from './server.js';
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
  return [
    // Before messageRoutes, whose /v1/messages/:id would take "changes" for an id.
    ...(deps.outboxChanges ? [outboxChangesRoute(deps.outboxChanges)] : []),
    ...messageRoutes(deps.gate, deps.bus, { inbox: deps.inbox, media: deps.media, stateDir: deps.stateDir, ...(deps.cluster ? { followStoreMs: 500 } : {}) }),
    ...(deps.inbox ? [...inboxRoutes(deps.inbox), chatReadRoute(deps.inbox, deps.gate)] : []),
    ...(deps.inbox && deps.inboxMedia ? [inboxMediaRoute(deps.inbox, deps.inboxMedia)] : []),
    ...(deps.consumers ? consumerRoutes(deps.consumers) : []),
    {
      // Who the caller is: a client learns its name, accounts and permissions (any client may ask).
      method: 'GET',
      path: '/v1/me',
      client: 'any',
      handler: (req) => {
        rejectUnknownParams(req.url.searchParams, []);
        const c = req.caller;
        return { body: c.role === 'operator' ? { role: 'operator' } : { role: 'client', name: c.name, accounts: [...c.accounts].sort(), may: CLIENT_PERMISSIONS.filter((p) => c.may.has(p)) } };
      },
    },
    {
      method: 'GET',
      path: '/v1/status',
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
    },
    {
      // Prometheus text exposition (operators only, like status).
      method: 'GET',
      path: '/v1/metrics',
      handler: async (req) => {
        rejectUnknownParams(req.url.searchParams, []);
        if (!deps.metrics) throw new HttpError(404, 'not_found', 'metrics are not collected by this daemon');
        const { text, contentType } = await deps.metrics.scrape();
        const body = Buffer.from(text);
        return { raw: body, headers: { 'content-type': contentType, 'content-length': body.length, 'cache-control': 'no-store' } };
      },
    },
    {
      method: 'GET',
      path: '/v1/alerts',
      handler: async () => ({ body: { active: (await deps.alerts?.activeInCluster?.()) ?? deps.alerts?.active() ?? [], recent: deps.alerts?.recent() ?? [] } }),
    },
    {
      method: 'GET',
      path: '/v1/accounts',
      handler: async (req) => {
        const q = req.url.searchParams;
        rejectUnknownParams(q, ['state', 'limit', 'after']);
        const states = listParam(q, 'state');
        const limitRaw = q.get('limit');
        const limit = limitRaw === null ? null : Number(limitRaw);
        if (limit !== null && (!Number.isInteger(limit) || limit < 1 || limit > 10_000)) throw new HttpError(400, 'bad_request', `limit: expected 1-10000, got ${JSON.stringify(limitRaw)}`);
        const after = q.get('after');
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
    },
    {
      method: 'POST',
      path: '/v1/accounts',
      handler: async (req) => {
        const body = objectBody(await req.json());
        rejectUnknownFields(body, ['id', 'wsUrl', 'allowTo', 'rules', 'fresh']);
        const id = stringField(body, 'id', true)!;
        const wsUrl = stringField(body, 'wsUrl', false);
        if (body.fresh !== undefined && typeof body.fresh !== 'boolean') throw new HttpError(400, 'bad_request', `fresh: expected true or false, got ${JSON.stringify(body.fresh)}`);
        const { allowTo, rules } = body;
        const policy = allowTo === undefined && rules === undefined ? undefined : runtimePolicy({ allowTo, rules });
        return { status: 201, body: deps.accounts.add(id, wsUrl, { ...(policy ? { policy } : {}), ...(body.fresh ? { fresh: true } : {}) }) };
      },
    },
    {
      method: 'PUT',
      path: '/v1/accounts/:id/policy',
      handler: async (req) => {
        // No body must not read as "no allowTo": clearing the policy is an explicit {}.
        const body = objectBody(await req.json(), '{"allowTo"?,"rules"?} ({} clears both)');
        return { body: { account: req.params.id, ...deps.accounts.setPolicy(req.params.id!, runtimePolicy(body)) } };
      },
    },
    {
      method: 'GET',
      path: '/v1/accounts/:id',
      handler: async (req) => {
        const status = deps.accounts.status(req.params.id!);
        if (!deps.cluster) return { body: status };
        return { body: { ...status, owner: ownerOf((await deps.cluster()).leases.find((l) => l.account === status.id)) } };
      },
    },
    {
      method: 'DELETE',
      path: '/v1/accounts/:id',
      handler: async (req) => {
        await deps.accounts.remove(req.params.id!);
        return { body: { removed: req.params.id } };
      },
    },
    {
      method: 'POST',
      path: '/v1/accounts/:id/reconnect',
      handler: async (req) => ({ body: await deps.accounts.reconnect(req.params.id!) }),
    },
    {
      method: 'POST',
      path: '/v1/accounts/:id/logout',
      handler: async (req) => ({ body: await deps.accounts.logout(req.params.id!) }),
    },
    {
      method: 'POST',
      path: '/v1/accounts/:id/pair',
      handler: (req) => pairStream(req, deps.accounts),
    },
    {
      method: 'GET',
      path: '/v1/events',
      subscriber: true,
      client: 'events',
      handler: (req) => streamEvents(req, deps.bus),
    },
    {
      method: 'POST',
      path: '/v1/config/check',
      handler: async (req): Promise<{ body: ConfigCheckResponse }> => {
        const raw = await req.json();
        if (raw === undefined) throw new HttpError(400, 'bad_request', 'request body must be the config object to check');
        try {
          deps.checkConfig(raw);
          return { body: { ok: true, problems: [] } };
        } catch (err) {
          if (err instanceof ConfigError) return { body: { ok: false, problems: [...err.problems] } };
          throw err;
        }
      },
    },
  ];
}

const EVENT_QUERY_KEYS = ['account', 'type', 'requestId'];

/** Parses `?account=a,b&type=x.*&requestId=r` into a filter; unknown parameters are an error, not ignored. */
export function parseEventFilter(params: URLSearchParams): EventFilter {
  rejectUnknownParams(params, EVENT_QUERY_KEYS);
  const filter: EventFilter = {};
  const accounts = listParam(params, 'account');
  const types = listParam(params, 'type');
  const requestId = params.get('requestId');
  if (accounts.length) filter.accounts = accounts;
  if (types.length) filter.types = types;
  if (requestId) filter.requestId = requestId;
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

async function pairStream(req: ApiRequest, accounts: AccountsApi): Promise<void> {
  const id = req.params.id!;
  const raw = await req.json();
  const body = raw === undefined ? {} : objectBody(raw);
  rejectUnknownFields(body, ['phone']);
  const phoneRaw = stringField(body, 'phone', false);
  let phone: string | undefined;
  if (phoneRaw !== undefined) {
    phone = normalisePhone(phoneRaw) ?? undefined;
    if (!phone) throw new HttpError(400, 'bad_request', `phone: expected an international number with 7-15 digits, got ${JSON.stringify(phoneRaw)}`);
  }
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

/** An account's `allowTo` and `rules` from a request body, checked like the config's. */
function runtimePolicy(raw: unknown): RuntimeAccountPolicy {
  const parsed = RuntimeAccountPolicySchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new HttpError(400, 'bad_request', `${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`);
  }
  return parsed.data;
}

function streamEvents(req: ApiRequest, bus: Pick<EventBus, 'subscribe'>): void {
  const filter = parseEventFilter(req.url.searchParams);
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
