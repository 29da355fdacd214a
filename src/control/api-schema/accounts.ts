// Schemas of the account routes: the accounts as status and the lists show them, adding one, its
// policy, pairing, and the commands an operator gives one.
import { z } from 'zod';
import { ACCOUNT_ID_PATTERN, RuntimeAccountPolicySchema } from '../../config/schema.js';
import { isWsUrl, WS_URL_EXPECTED } from '../../config/ws-url.js';
import { normalisePhone } from '../../outbox/recipient.js';
import type { AccountSummary as AccountSummaryType, AccountState as AccountStateType } from '../wire.js';
import { intParam, isoTime, optionalString, requiredString, type Expect, type Same, strictBody, strictQuery } from './common.js';

export const ACCOUNT_STATES = ['stopped', 'connecting', 'pairing', 'open', 'reconnecting', 'needs_pairing', 'conflict', 'forbidden'] as const;
type AccountStatesMatch = Expect<Same<(typeof ACCOUNT_STATES)[number], AccountStateType>>;
export const AccountState = z.enum(ACCOUNT_STATES);

const CloseRecord = z.object({
  code: z.number().int().nullable(),
  name: z.string(),
  message: z.string(),
  at: isoTime,
  sinceLastFrameMs: z.number().nullable().optional(),
  loopDelayMaxMs: z.number().nullable().optional(),
});

/** An account's owner in a cluster (per its lease). */
export const AccountOwner = z.object({
  daemon: z.string().nullable(),
  since: isoTime.nullable(),
  expiresAt: isoTime.nullable(),
  epoch: z.number().int(),
  state: z.string().nullable(),
});

export const AccountSummary = z
  .object({
    id: z.string(),
    state: AccountState,
    since: isoTime,
    origin: z.enum(['config', 'runtime']).optional(),
    wsUrl: z.string().optional(),
    jid: z.string().nullable(),
    name: z.string().nullable(),
    connectedSince: isoTime.nullable(),
    lastClose: CloseRecord.nullable(),
    reconnect: z.object({ failures: z.number().int(), nextRetryAt: isoTime.nullable() }),
    keepalive: z
      .object({
        intervalMs: z.number(),
        lastSentAt: isoTime.nullable(),
        lastStanzaSentAt: isoTime.nullable(),
        lastReceivedAt: isoTime.nullable(),
        largestSilentGapMs: z.number(),
        probesSent: z.number().int(),
        probesMissed: z.number().int(),
        lastProbeRttMs: z.number().nullable(),
      })
      .nullable(),
    lastInboundAt: isoTime.nullable(),
    retryReceipts: z.object({ received: z.number().int(), lastAt: isoTime.nullable() }),
    authSince: isoTime.nullable(),
    degraded: z
      .object({
        closes: z.number().int(),
        windowMs: z.number(),
        regularIntervalMs: z.number().nullable(),
        codes: z.array(z.union([z.number(), z.string()])),
        since: isoTime,
      })
      .nullable(),
    closesByCode: z.record(z.string(), z.number().int()),
    queue: z.object({ queued: z.number().int(), sending: z.number().int(), unknown: z.number().int(), held: z.number().int() }).optional(),
    inbox: z.object({ messages: z.number().int(), undecryptable: z.number().int(), ignored: z.number().int() }).optional(),
    owner: AccountOwner.optional().meta({ description: 'in a cluster: the daemon that holds the account\'s lease' }),
  })
  .meta({ id: 'Account', description: 'An account and its connection\'s health.' });
type AccountSummaryMatches = Expect<Same<z.output<typeof AccountSummary>, AccountSummaryType>>;

export const AccountParams = z.strictObject({ id: z.string().meta({ description: 'the account\'s id' }) });

export const AccountsQuery = strictQuery({
  state: z.array(z.string()).meta({ description: `only accounts in these states (${ACCOUNT_STATES.join(', ')}); repeated or comma-separated` }).optional(),
  limit: intParam({ min: 1, max: 10_000, message: (raw) => `expected 1-10000, got ${JSON.stringify(raw)}`, description: 'a page of at most this many, in id order' }).optional(),
  after: z.string().optional().meta({ description: 'the page after this id (`next` of the previous page)' }),
});

export const AccountList = z.object({
  accounts: z.array(AccountSummary),
  next: z.string().optional().meta({ description: 'with limit: the id to continue after while more remain' }),
});

const { allowTo, rules } = RuntimeAccountPolicySchema.shape;

export const AddAccountBody = strictBody({
  id: requiredString().regex(ACCOUNT_ID_PATTERN, 'expected 1-64 characters of letters, digits, "_", "." or "-", starting with a letter or digit'),
  wsUrl: optionalString()
    .refine((v) => v === undefined || v === null || isWsUrl(v), { error: (iss) => `${WS_URL_EXPECTED}, got ${JSON.stringify(iss.input)}` })
    .meta({ description: 'where to connect instead of WhatsApp (the emulator): a ws:// or wss:// URL' }),
  allowTo: allowTo.meta({ description: 'once present, the only recipients this account may send to' }),
  rules: rules.meta({ description: 'send-policy rules as in the config, without match.account' }),
  fresh: z
    .boolean({ error: (iss) => `expected true or false, got ${JSON.stringify(iss.input)}` })
    .optional()
    .meta({ description: 'archive creds a removed config account left behind, and pair anew' }),
});

/** PUT /v1/accounts/:id/policy: the whole runtime policy (no body must not read as "no allowTo"). */
export const PolicyBody = z.strictObject(RuntimeAccountPolicySchema.shape, {
  error: (iss) => (iss.code === 'invalid_type' ? 'request body must be a JSON object {"allowTo"?,"rules"?} ({} clears both)' : undefined),
});

export const PolicyResult = z.object({ account: z.string(), ...RuntimeAccountPolicySchema.shape });

export const AccountRemoved = z.object({ removed: z.string() });

export const PairBody = strictBody({
  phone: optionalString()
    .transform((v, ctx) => {
      if (v === undefined || v === null) return undefined;
      const phone = normalisePhone(v);
      if (!phone) {
        ctx.addIssue({ code: 'custom', message: `expected an international number with 7-15 digits, got ${JSON.stringify(v)}` });
        return z.NEVER;
      }
      return phone;
    })
    .meta({ description: 'pair with a code for this number (else with a QR code)' }),
});

const pairLine = { account: z.string(), requestId: z.string() };
export const PairLine = z.discriminatedUnion('type', [
  z.object({ type: z.literal('qr'), qr: z.string(), ...pairLine }),
  z.object({ type: z.literal('code'), code: z.string(), ...pairLine }),
  z.object({ type: z.literal('paired'), jid: z.string(), ...pairLine }),
  z.object({ type: z.literal('error'), message: z.string(), ...pairLine }),
]);
