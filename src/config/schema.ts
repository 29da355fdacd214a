// The config file's shape, in one place. Later features add their keys here; every object is
// strict, so a misspelt key is an error that names it instead of a setting silently ignored.
import { z } from 'zod';
import { CLIENT_PERMISSIONS } from '../control/roles.js';
import { validate as validCron } from 'node-cron';
import { normaliseRecipient } from '../outbox/recipient.js';
import { RULE_KINDS } from '../policy/policy.js';
import { parseListen } from './listen-address.js';
import { isWsUrl, WS_URL_EXPECTED } from './ws-url.js';

/** Log levels pino understands. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Account ids appear in paths, URLs and logs, so they are kept to a safe alphabet. */
export const ACCOUNT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

const accountId = z
  .string()
  .regex(ACCOUNT_ID_PATTERN, 'expected 1-64 characters of letters, digits, "_", "." or "-", starting with a letter or digit');

const wsUrl = z.string().refine(isWsUrl, WS_URL_EXPECTED);

const ms = (what: string) => z.number().int(`expected whole milliseconds for ${what}`).min(0, 'expected 0 or more');
const positiveMs = (what: string) => z.number().int(`expected whole milliseconds for ${what}`).min(1, 'expected 1 or more');

/** Keepalive fields; all optional so an account can override just one. */
const keepaliveShape = {
  /** How often the keepalive IQ is sent; 0 turns it off. */
  intervalMs: ms('keepalive.intervalMs').optional(),
  /** The server's idle window (WhatsApp closes a silent session after about 15 minutes). */
  idleWindowMs: positiveMs('keepalive.idleWindowMs').optional(),
  /** How long a keepalive may go unanswered before the socket is declared stale. */
  probeDeadlineMs: positiveMs('keepalive.probeDeadlineMs').optional(),
};
const reconnectShape = {
  initialMs: positiveMs('reconnect.initialMs').optional(),
  maxMs: positiveMs('reconnect.maxMs').optional(),
  factor: z.number().min(1, 'expected 1 or more').max(10, 'expected 10 or less').optional(),
};

/** A phone number or WhatsApp JID, checked the way the outbox normalises recipients. */
const recipient = z.string().superRefine((v, ctx) => {
  const r = normaliseRecipient(v);
  if ('error' in r) ctx.addIssue({ code: 'custom', message: r.error, params: { omitValue: true } });
});

const pacingShape = {
  /** Messages per minute per account (a token bucket refilled evenly). */
  perMinute: z.number().min(0.1, 'expected at least 0.1').max(6000).optional(),
  /** First messages to chats this account never wrote to before, per hour. */
  newChatsPerHour: z.number().int().min(1, 'expected 1 or more (to stop new chats, use a policy rule)').optional(),
  /** Random extra wait before each send, up to this many ms (0 = none). */
  jitterMs: z.number().int().min(0).optional(),
  /** Off (false) sends as fast as the socket takes them; for tests and benchmarks. */
  enabled: z.boolean().optional(),
};

const oneOrMany = <T extends z.ZodTypeAny>(t: T) => z.union([t, z.array(t).min(1, 'expected at least one entry')]);

/** One supervised WhatsApp account. */
export const AccountConfigSchema = z.strictObject({
  id: accountId,
  /** Where to connect instead of WhatsApp's own endpoint, e.g. the emulator. */
  wsUrl: wsUrl.optional(),
  /** Per-account overrides of the top-level `keepalive`. */
  keepalive: z.strictObject(keepaliveShape).optional(),
  /** Per-account overrides of the top-level `reconnect`. */
  reconnect: z.strictObject(reconnectShape).optional(),
  /** Once present, the only recipients this account may send to, from every entry point. */
  allowTo: z.array(recipient).optional(),
  /**
   * Once present, the only senders (numbers or JIDs; a group JID admits the whole group) whose
   * messages reach consumers; messages from anyone else are stored as `ignored`.
   */
  allowFrom: z.array(recipient).optional(),
  /** Per-account overrides of the top-level `pacing`. */
  pacing: z.strictObject(pacingShape).optional(),
});

/** A named reader of the inbox (docs/inbox.md, "Consumers"); the same shape as POST /v1/consumers. */
export const ConsumerSpecSchema = z.discriminatedUnion('type', [
  z.strictObject({
    name: accountId,
    /** Reads GET /v1/inbox/stream?consumer=NAME and acknowledges with POST /v1/inbox/ack. */
    type: z.literal('stream'),
    /** Only these accounts' messages; absent = every account. */
    accounts: z.array(accountId).min(1, 'expected at least one account (or leave accounts out for all)').optional(),
  }),
  z.strictObject({
    name: accountId,
    /** The daemon POSTs each message to url, signed with secret. */
    type: z.literal('webhook'),
    accounts: z.array(accountId).min(1, 'expected at least one account (or leave accounts out for all)').optional(),
    url: z.string().refine((v) => /^https?:\/\/[^\s]+$/.test(v), 'expected an http:// or https:// URL'),
    /** Signs each POST: header X-WA-Supervisor-Signature: sha256=<hex HMAC of the body>. */
    secret: z.string().min(16, 'expected a secret of at least 16 characters'),
  }),
]);

/** One send-policy rule: the first that matches decides. */
export const PolicyRuleSchema = z.strictObject({
  action: z.enum(['allow', 'deny', 'hold']),
  name: z.string().min(1).optional(),
  match: z.strictObject({
    account: oneOrMany(accountId).optional(),
    peer: oneOrMany(recipient).optional(),
    chatType: z.enum(['direct', 'group']).optional(),
    kind: oneOrMany(z.enum(RULE_KINDS)).optional(),
  }),
});

/**
 * The policy an operator gives an account added at runtime: its own `allowTo` and rules (which
 * match only that account and are evaluated before the config's rules).
 */
export const RuntimeAccountPolicySchema = z.strictObject({
  allowTo: z.array(recipient).optional(),
  rules: z.array(PolicyRuleSchema.omit({ match: true }).extend({ match: PolicyRuleSchema.shape.match.omit({ account: true }) })).optional(),
});
export type RuntimeAccountPolicy = z.output<typeof RuntimeAccountPolicySchema>;

/** One client (a bot, an agent): its token's hash, its accounts and what it may do there. */
export const ClientSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'expected 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit'),
  tokenSha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/, 'expected the hex SHA-256 of the token (64 lower-case hex digits; `wa-supervisor clients new-token` makes a token and its hash)'),
  accounts: z.array(accountId).min(1, 'expected at least one account'),
  may: z.array(z.enum(CLIENT_PERMISSIONS)).min(1, 'expected at least one of send, read, events (or leave may out for all three)').optional(),
});

/** A refinement keeping `field` unique in a list: a repeat is reported at its own index, naming the first. */
function uniqueBy<K extends string>(section: string, field: K, what: string) {
  return (items: Array<Record<K, string>>, ctx: z.RefinementCtx): void => {
    const seen = new Map<string, number>();
    items.forEach((item, i) => {
      const value = item[field];
      const first = seen.get(value);
      if (first === undefined) seen.set(value, i);
      else ctx.addIssue({ code: 'custom', path: [i, field], message: `duplicate ${what} "${value}" (already used by ${section}[${first}])`, params: { omitValue: true } });
    });
  };
}

/** The whole config file. */
export const ConfigFileSchema = z.strictObject({
  /** Lets editors find a JSON schema; ignored by the daemon. */
  $schema: z.string().optional(),
  stateDir: z.string().min(1, 'expected a directory path').optional(),
  socket: z.string().min(1, 'expected a socket path').optional(),
  log: z
    .strictObject({
      level: z.enum(LOG_LEVELS).default('info'),
    })
    .default({ level: 'info' }),
  keepalive: z.strictObject(keepaliveShape).optional(),
  reconnect: z
    .strictObject({
      ...reconnectShape,
      /** Connection attempts in flight at once, across all accounts. */
      maxConcurrent: z.number().int().min(1, 'expected 1 or more').optional(),
    })
    .optional(),
  /**
   * The WhatsApp Web version to announce, e.g. [2, 3000, 1023223821]; default: the one built into
   * Baileys. Never fetched from the internet at run time.
   */
  whatsappVersion: z.tuple([z.number().int().min(0), z.number().int().min(0), z.number().int().min(0)]).optional(),
  /** The connect watchdog: an attempt that has not opened within this long is ended. */
  connectTimeoutMs: positiveMs('connectTimeoutMs').optional(),
  /** Flap detection: `closes` closes within `windowMs` make an account degraded. */
  flap: z
    .strictObject({
      closes: z.number().int().min(2, 'expected 2 or more').optional(),
      windowMs: positiveMs('flap.windowMs').optional(),
    })
    .optional(),
  /** Operator numbers or JIDs: the only recipients alerts may ever go to. */
  operators: z.array(recipient).default([]),
  /** Send policy: ordered rules, first match wins, then the default. */
  policy: z
    .strictObject({
      default: z.enum(['allow', 'deny']).default('allow'),
      rules: z.array(PolicyRuleSchema).default([]),
    })
    .default({ default: 'allow', rules: [] }),
  pacing: z.strictObject(pacingShape).optional(),
  /** Operator alerts: where they go. The log and the event stream always get them. */
  alerts: z
    .strictObject({
      sinks: z
        .array(
          z.discriminatedUnion('type', [
            z.strictObject({
              type: z.literal('webhook'),
              url: z.string().refine((v) => /^https?:\/\//.test(v), 'expected an http:// or https:// URL'),
              /** Signs each POST: header X-WA-Supervisor-Signature: sha256=<hex HMAC of the body>. */
              secret: z.string().min(16, 'expected a secret of at least 16 characters'),
            }),
            z.strictObject({
              type: z.literal('command'),
              argv: z.array(z.string().min(1)).min(1, 'expected the program and its arguments'),
              timeoutMs: positiveMs('timeoutMs').optional(),
            }),
            z.strictObject({
              type: z.literal('whatsapp'),
              account: accountId,
              to: z.array(recipient).min(1, 'expected at least one operator'),
            }),
          ]),
        )
        .default([]),
      /** A cron expression for the digest (per-account uptime, closes, messages, alerts). */
      digest: z.string().refine((v) => validCron(v), 'expected a cron expression, e.g. "0 8 * * *"').optional(),
      /** Notifications per sink per hour, beyond which they are dropped (and logged). */
      capPerHour: z.number().int().min(1).optional(),
    })
    .optional(),
  /** Outbox behaviour. */
  outbox: z
    .strictObject({
      /** A row not sent within this long after enqueue expires. */
      ttlMs: positiveMs('outbox.ttlMs').optional(),
      /** Send errors (not waiting for a socket) a row may have before it fails. */
      maxAttempts: z.number().int().min(1).optional(),
      /** Backoff after a send error: a random wait below min(maxMs, initialMs × 2^(n−1)). */
      retry: z
        .strictObject({
          initialMs: positiveMs('outbox.retry.initialMs').optional(),
          maxMs: positiveMs('outbox.retry.maxMs').optional(),
        })
        .optional(),
      /** After a reconnect, how long an unknown row waits for an ack, receipt or echo before it is re-sent. */
      settleMs: z.number().int('expected whole milliseconds for outbox.settleMs').min(0, 'expected 0 or more').optional(),
    })
    .optional(),
  /** Inbound messages (docs/inbox.md). */
  inbox: z
    .strictObject({
      /** Stored messages older than this are pruned once every consumer that should see them has acknowledged them. */
      retentionDays: z.number().min(0.001, 'expected more than 0 days').max(3650).optional(),
      /** A webhook consumer gives up on a message this old (dead letter, consumer_stuck alert). */
      deadLetterAfterMs: positiveMs('inbox.deadLetterAfterMs').optional(),
      /** Backoff between webhook delivery attempts: a random wait below min(maxMs, initialMs × 2^(n−1)). */
      webhookRetry: z
        .strictObject({
          initialMs: positiveMs('inbox.webhookRetry.initialMs').optional(),
          maxMs: positiveMs('inbox.webhookRetry.maxMs').optional(),
        })
        .optional(),
      /** How long one webhook POST may take. */
      webhookTimeoutMs: positiveMs('inbox.webhookTimeoutMs').optional(),
    })
    .optional(),
  /** Prometheus metrics over TCP besides GET /v1/metrics on the socket (off unless listen is set). */
  metrics: z
    .strictObject({
      /** "9464" or ":9464" (127.0.0.1), or "HOST:PORT"; the one path served is /metrics. */
      listen: z.union([z.number().int().min(0).max(65535), z.string().refine((v) => parseListen(v) !== null, 'expected a port, ":PORT" or "HOST:PORT"')]).optional(),
    })
    .optional(),
  /** The daemon's own event loop (docs/alerts.md, `event_loop_stalled`). */
  eventLoop: z
    .strictObject({
      /** A loop delay this long within the last minute raises `event_loop_stalled`. */
      alertMs: z.number().int().min(50, 'expected at least 50 ms').optional(),
    })
    .optional(),
  /** Media files: what a send may carry and how much the media store keeps (docs/media.md). */
  media: z
    .strictObject({
      /** Largest file one message may carry, in bytes. */
      maxBytes: z.number().int().min(1024, 'expected at least 1024 bytes').max(2 * 1024 ** 3).optional(),
      /** Largest total of the outbound media store, in bytes; an upload past it is refused (507). */
      storeMaxBytes: z.number().int().min(1024 ** 2, 'expected at least 1 MiB').optional(),
      // Inbound media: the cache of downloaded files (GET /v1/inbox/:id/media).
      /** Most bytes the cache of downloaded inbound files keeps; beyond it the least recently served go. */
      inboundCacheMaxBytes: z.number().int().min(1024 ** 2, 'expected at least 1 MiB').optional(),
      /** A downloaded inbound file not served for this long is deleted from the cache. */
      inboundCacheMaxAgeMs: positiveMs('media.inboundCacheMaxAgeMs').optional(),
    })
    .optional(),
  /**
   * Where the shared state lives (docs/cluster.md): SQLite in the state directory (the default), or
   * a PostgreSQL database that several daemons share, each owning the accounts it holds a lease on.
   */
  store: z
    .discriminatedUnion('type', [
      z.strictObject({ type: z.literal('sqlite') }),
      z.strictObject({
        type: z.literal('postgres'),
        /** postgres://user:password@host:port/database (the password is redacted in `config show`). */
        url: z.string().regex(/^postgres(ql)?:\/\/./, 'expected a postgres:// URL'),
        /** Account lease time to live; renewed every quarter of it. Default 10000. */
        leaseTtlMs: z.number().int().min(2000, 'expected at least 2000 ms').max(300_000, 'expected at most 300000 ms').optional(),
        /** This daemon's id in the cluster (default: host name and pid). */
        daemonId: z.string().regex(/^[A-Za-z0-9._:-]{1,100}$/, 'expected 1-100 letters, digits, or . _ : -').optional(),
      }),
    ], { error: () => 'expected {"type": "sqlite"} or {"type": "postgres", "url": "postgres://…"}' })
    .default({ type: 'sqlite' }),
  /** Named inbox readers with a committed cursor. */
  consumers: z
    .array(ConsumerSpecSchema)
    .default([])
    .superRefine(uniqueBy('consumers', 'name', 'consumer name')),
  accounts: z
    .array(AccountConfigSchema)
    .default([])
    .superRefine(uniqueBy('accounts', 'id', 'account id')),
  /** The socket bots and agents connect to, with a token (docs/roles.md); required when clients are listed. */
  clientSocket: z.string().min(1, 'expected a socket path').optional(),
  /** Bots and agents: what each token may do, on which accounts. */
  clients: z.array(ClientSchema).default([]).superRefine(uniqueBy('clients', 'name', 'client name')).superRefine(uniqueBy('clients', 'tokenSha256', 'token')),
});

/** The config file as parsed, defaults filled in. */
export type ConfigFile = z.output<typeof ConfigFileSchema>;
/** One account entry as parsed. */
export type AccountConfig = z.output<typeof AccountConfigSchema>;
