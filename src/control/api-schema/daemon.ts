// Schemas of the daemon's own routes: who the caller is, status, alerts, events, the config
// check and the API's document.
import { z } from 'zod';
import type { Alert as AlertType, AlertNotification } from '../../alerts/engine.js';
import type { BusEvent } from '../../events/bus.js';
import { CLIENT_PERMISSIONS } from '../roles.js';
import type { ClusterView as ClusterViewType, ConfigCheckResponse, DaemonInfo as DaemonInfoType, StatusResponse as StatusResponseType } from '../wire.js';
import { AccountState, AccountSummary } from './accounts.js';
import { isoTime, listParam, type Expect, type Same, strictQuery } from './common.js';

/** A route that takes no query parameter (and refuses any). */
export const NoQuery = strictQuery({});

export const Me = z.discriminatedUnion('role', [
  z.object({ role: z.literal('operator') }),
  z.object({
    role: z.literal('client'),
    name: z.string(),
    accounts: z.array(z.string()),
    may: z.array(z.enum(CLIENT_PERMISSIONS)),
    consumers: z.array(z.string()).meta({ description: 'the stream consumers this client may read (every account they cover is its own)' }),
  }),
]);

const loopWindow = z.object({ p99Ms: z.number(), maxMs: z.number() });
const DaemonInfo = z.object({
  version: z.string(),
  pid: z.number().int(),
  node: z.string(),
  startedAt: isoTime,
  uptimeMs: z.number(),
  configPath: z.string(),
  stateDir: z.string(),
  socket: z.string(),
  previousRunCrashed: z.boolean(),
  eventLoop: z.object({ lastTenSeconds: loopWindow, lastMinute: loopWindow, sinceStart: loopWindow }).optional(),
  connectAttempts: z.object({ cap: z.number(), ceiling: z.number(), inFlight: z.number(), waiting: z.number(), loopDelayTargetMs: z.number() }).optional(),
});
type DaemonInfoMatches = Expect<Same<z.output<typeof DaemonInfo>, DaemonInfoType>>;

const ClusterView = z.object({
  daemon: z.string(),
  ttlMs: z.number(),
  storeOk: z.boolean(),
  error: z.string().optional(),
  daemons: z.array(
    z.object({
      id: z.string(),
      host: z.string(),
      pid: z.number().int(),
      socket: z.string().nullable(),
      startedAt: isoTime,
      seenAt: isoTime,
      stopping: z.boolean(),
      live: z.boolean(),
      accounts: z.number().int(),
    }),
  ),
  leases: z.array(
    z.object({
      account: z.string(),
      owner: z.string().nullable(),
      epoch: z.number().int(),
      since: isoTime.nullable(),
      expiresAt: isoTime.nullable(),
      live: z.boolean(),
      state: z.string().nullable(),
    }),
  ),
});
type ClusterViewMatches = Expect<Same<z.output<typeof ClusterView>, ClusterViewType>>;

export const StatusResponse = z.object({
  daemon: DaemonInfo,
  outbox: z
    .object({ byState: z.record(z.string(), z.number().int()), commits: z.number().int(), rowsCommitted: z.number().int(), error: z.string().optional() })
    .optional(),
  inbox: z.object({ messages: z.number().int(), undecryptable: z.number().int(), ignored: z.number().int(), lastCursor: z.string() }).optional(),
  summary: z.object({ accounts: z.number().int(), byState: z.partialRecord(AccountState, z.number().int()) }),
  cluster: ClusterView.optional().meta({ description: 'only in a cluster' }),
  accounts: z.array(AccountSummary),
});
type StatusResponseMatches = Expect<Same<z.output<typeof StatusResponse>, StatusResponseType>>;

const Alert = z
  .object({
    id: z.string(),
    code: z.string(),
    severity: z.enum(['critical', 'warning', 'info']),
    account: z.string().optional(),
    text: z.string(),
    raisedAt: isoTime,
    recoveredAt: isoTime.optional(),
    details: z.looseObject({ account: z.string().optional() }),
  })
  .meta({ id: 'Alert', description: 'An operator alert (docs/alerts.md).' });
type AlertMatches = Expect<Same<z.output<typeof Alert>, AlertType>>;

const Notification = z.object({ type: z.enum(['alert', 'alert.recovered', 'digest']), alert: Alert });
type NotificationMatches = Expect<Same<z.output<typeof Notification>, AlertNotification>>;

export const Alerts = z.object({ active: z.array(Alert), recent: z.array(Notification).meta({ description: 'recent notifications, newest first' }) });

export const EventsQuery = strictQuery({
  account: listParam(z.string(), 'only events about these accounts'),
  type: listParam(z.string(), 'exact types, or a prefix ending in ".*"'),
  requestId: z.string().optional().meta({ description: 'only events caused by that request' }),
});

export const Event = z
  .looseObject({
    type: z.string(),
    at: isoTime,
    seq: z.number().int().meta({ description: 'grows by one per event within a daemon run' }),
    account: z.string().optional(),
    requestId: z.string().optional(),
    causedBy: z.string().optional(),
  })
  .meta({ id: 'Event', description: 'An event; its other fields depend on its type (README, "Control socket").' });
type EventMatches = Expect<Same<z.output<typeof Event>, BusEvent>>;

export const ConfigCheckBody = z
  .unknown()
  .refine((v) => v !== undefined, 'request body must be the config object to check')
  .meta({ description: 'a config object, as the config file holds it' });

export const ConfigCheck = z.object({ ok: z.boolean(), problems: z.array(z.object({ path: z.string(), message: z.string() })) });
type ConfigCheckMatches = Expect<Same<z.output<typeof ConfigCheck>, ConfigCheckResponse>>;

export const OpenApiDocument = z.looseObject({ openapi: z.string(), info: z.looseObject({ title: z.string(), version: z.string() }), paths: z.record(z.string(), z.unknown()) });
