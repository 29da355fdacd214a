// The send gate's settings from the config: the policy with every peer normalised (so the
// allowlist compares like with like), pacing per account, TTL and retry budget.
import { DEFAULT_WEBHOOK_SETTINGS, type WebhookSettings } from '../inbox/webhook.js';
import type { GateSettings } from '../outbox/send-gate.js';
import { DEFAULT_MEDIA_LIMITS, type MediaLimits } from '../outbox/media-store.js';
import { normaliseRecipient } from '../outbox/recipient.js';
import { DEFAULT_PACING, type PacingPolicy } from '../outbox/token-bucket.js';
import type { Policy } from '../policy/policy.js';
import type { EffectiveConfig } from './load.js';
import type { RuntimeAccountPolicy } from './schema.js';

/** Default outbox TTL: a message not sent within a day is expired rather than sent late. */
export const DEFAULT_TTL_MS = 24 * 3_600_000;
/** Default send errors before a row fails. */
export const DEFAULT_MAX_ATTEMPTS = 5;
/** Default send-error backoff: below 2 s after the first error, doubling up to 60 s. */
export const DEFAULT_RETRY = { initialMs: 2000, maxMs: 60_000 } as const;
/** Default settle window after a reconnect: offline receipts arrive within about a second of login. */
export const DEFAULT_SETTLE_MS = 10_000;

function jid(raw: string): string {
  const r = normaliseRecipient(raw);
  if ('error' in r) throw new Error(r.error); // the config check has already rejected these
  return r.jid;
}

/** An account added at runtime and the policy an operator gave it. */
export interface RuntimeAccountPolicyOf {
  id: string;
  policy: RuntimeAccountPolicy;
}

type ConfigRule = EffectiveConfig['policy']['rules'][number];

function ruleOf(r: ConfigRule): Policy['rules'][number] {
  return {
    action: r.action,
    ...(r.name ? { name: r.name } : {}),
    match: {
      ...(r.match.account !== undefined ? { account: r.match.account } : {}),
      ...(r.match.peer !== undefined ? { peer: (Array.isArray(r.match.peer) ? r.match.peer : [r.match.peer]).map(jid) } : {}),
      ...(r.match.chatType !== undefined ? { chatType: r.match.chatType } : {}),
      ...(r.match.kind !== undefined ? { kind: r.match.kind } : {}),
    },
  };
}

/**
 * The policy as the gate evaluates it: the config's, plus what operators gave accounts added at
 * runtime. Those rules match only their account and come first; their `allowTo` is the account's
 * (an account in the config takes the config's).
 */
export function policyFromConfig(cfg: EffectiveConfig, runtime: readonly RuntimeAccountPolicyOf[] = []): Policy {
  const inConfig = new Set(cfg.accounts.map((a) => a.id));
  const own = runtime.filter((r) => !inConfig.has(r.id));
  return {
    default: cfg.policy.default,
    rules: [...own.flatMap((r) => (r.policy.rules ?? []).map((rule) => ruleOf({ ...rule, match: { ...rule.match, account: r.id } }))), ...cfg.policy.rules.map(ruleOf)],
    allowTo: Object.fromEntries([
      ...own.filter((r) => r.policy.allowTo).map((r) => [r.id, r.policy.allowTo!.map(jid)] as const),
      ...cfg.accounts.filter((a) => a.allowTo).map((a) => [a.id, a.allowTo!.map(jid)] as const),
    ]),
    operators: cfg.operators.map(jid),
  };
}

/** Each account's `allowFrom`, normalised like `allowTo` (accounts without one admit everyone). */
export function allowFromFromConfig(cfg: EffectiveConfig): Record<string, string[]> {
  return Object.fromEntries(cfg.accounts.filter((a) => a.allowFrom).map((a) => [a.id, a.allowFrom!.map(jid)]));
}

/** Webhook consumer delivery settings (`inbox.*`). */
export function webhookSettingsFromConfig(cfg: EffectiveConfig): WebhookSettings {
  const i = cfg.inbox;
  return {
    retryInitialMs: i?.webhookRetry?.initialMs ?? DEFAULT_WEBHOOK_SETTINGS.retryInitialMs,
    retryMaxMs: i?.webhookRetry?.maxMs ?? DEFAULT_WEBHOOK_SETTINGS.retryMaxMs,
    timeoutMs: i?.webhookTimeoutMs ?? DEFAULT_WEBHOOK_SETTINGS.timeoutMs,
    deadLetterAfterMs: i?.deadLetterAfterMs ?? DEFAULT_WEBHOOK_SETTINGS.deadLetterAfterMs,
  };
}

/** Everything the gate reads from the config. */
export function gateSettingsFromConfig(cfg: EffectiveConfig, runtime: readonly RuntimeAccountPolicyOf[] = []): GateSettings {
  const pacing = (account: string): PacingPolicy => {
    const own = cfg.accounts.find((a) => a.id === account)?.pacing;
    return { ...DEFAULT_PACING, ...strip(cfg.pacing), ...strip(own) };
  };
  return {
    policy: policyFromConfig(cfg, runtime),
    pacing,
    ttlMs: cfg.outbox?.ttlMs ?? DEFAULT_TTL_MS,
    maxAttempts: cfg.outbox?.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    retry: {
      initialMs: cfg.outbox?.retry?.initialMs ?? DEFAULT_RETRY.initialMs,
      maxMs: cfg.outbox?.retry?.maxMs ?? DEFAULT_RETRY.maxMs,
    },
    settleMs: cfg.outbox?.settleMs ?? DEFAULT_SETTLE_MS,
  };
}

function strip<T extends object>(o: T | undefined): Partial<T> {
  return o ? (Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>) : {};
}

/** The media store's limits from `media` (defaults for what is not set). */
export function mediaLimitsFromConfig(cfg: EffectiveConfig): MediaLimits {
  return {
    maxBytes: cfg.media?.maxBytes ?? DEFAULT_MEDIA_LIMITS.maxBytes,
    storeMaxBytes: cfg.media?.storeMaxBytes ?? DEFAULT_MEDIA_LIMITS.storeMaxBytes,
  };
}
