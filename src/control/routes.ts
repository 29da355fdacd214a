// The route table: every control-socket route in one place. Handlers depend on one-method
// interfaces, not on the daemon object, so each is testable with a tiny fake.
import { ConfigError } from '../config/errors.js';
import type { EventBus, EventFilter } from '../events/bus.js';
import { HttpError } from './http-error.js';
import type { ApiRequest, Route } from './server.js';
import type { AccountSummary, ConfigCheckResponse, DaemonInfo, StatusResponse } from './wire.js';

/** What the routes need from the daemon. */
export interface RouteDeps {
  daemonInfo: () => DaemonInfo;
  listAccounts: () => AccountSummary[];
  bus: Pick<EventBus, 'subscribe'>;
  /** Validates a config object with the daemon's schema; throws ConfigError when it is bad. */
  checkConfig: (raw: unknown) => void;
}

/** Builds the /v1 route table. */
export function buildRoutes(deps: RouteDeps): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/status',
      handler: (): { body: StatusResponse } => {
        const accounts = deps.listAccounts();
        const byState: StatusResponse['summary']['byState'] = {};
        for (const a of accounts) byState[a.state] = (byState[a.state] ?? 0) + 1;
        return { body: { daemon: deps.daemonInfo(), summary: { accounts: accounts.length, byState }, accounts } };
      },
    },
    {
      method: 'GET',
      path: '/v1/accounts',
      handler: () => ({ body: { accounts: deps.listAccounts() } }),
    },
    {
      method: 'GET',
      path: '/v1/events',
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

const EVENT_QUERY_KEYS = new Set(['account', 'type', 'requestId']);

/** Parses `?account=a,b&type=x.*&requestId=r` into a filter; unknown parameters are an error, not ignored. */
export function parseEventFilter(params: URLSearchParams): EventFilter {
  for (const key of params.keys()) {
    if (!EVENT_QUERY_KEYS.has(key)) {
      throw new HttpError(400, 'bad_request', `unknown query parameter "${key}" (use account, type, requestId)`);
    }
  }
  const list = (key: string) =>
    params
      .getAll(key)
      .flatMap((v) => v.split(','))
      .map((v) => v.trim())
      .filter((v) => v !== '');
  const filter: EventFilter = {};
  const accounts = list('account');
  const types = list('type');
  const requestId = params.get('requestId');
  if (accounts.length) filter.accounts = accounts;
  if (types.length) filter.types = types;
  if (requestId) filter.requestId = requestId;
  return filter;
}

function streamEvents(req: ApiRequest, bus: Pick<EventBus, 'subscribe'>): void {
  const filter = parseEventFilter(req.url.searchParams);
  const stream = req.openStream();
  const unsubscribe = bus.subscribe(filter, (event) => {
    stream.write(event);
  });
  stream.onClose(unsubscribe);
}
