// Schemas of the consumer routes: reading a stream consumer (a stream, or a page at a time) and
// acknowledging it, and managing consumers.
import { z } from 'zod';
import type { ConsumerView as ConsumerViewType } from '../../inbox/consumer-service.js';
import { cursorField, cursorText, intParamOr, isoTime, nonEmptyString, type Expect, type Same, strictBody, strictQuery } from './common.js';
import { InboxMessage } from './inbox.js';

const CONSUMER_REQUIRED = 'required (the name of a stream consumer)';
const consumerName = z.string({ error: CONSUMER_REQUIRED }).min(1, { error: CONSUMER_REQUIRED }).meta({ description: 'the name of a stream consumer' });

export const StreamQuery = strictQuery({ consumer: consumerName });

export const NextQuery = strictQuery({
  consumer: consumerName,
  limit: intParamOr(100, { min: 1, max: 1000, message: (raw) => `expected 1-1000, got ${JSON.stringify(raw)}` }),
});

export const NextPage = z.object({
  consumer: z.string(),
  committed: cursorText.meta({ description: 'the committed cursor' }),
  messages: z.array(InboxMessage),
  next: cursorText.meta({ description: 'the last cursor returned, or the committed one when nothing was' }),
});

export const AckBody = strictBody({ consumer: nonEmptyString(), cursor: cursorField('as the stream gave it (digits)') }, { shape: '{"consumer","cursor"}' });
export const AckResult = z.object({ consumer: z.string(), cursor: cursorText.meta({ description: 'the committed cursor (it never moves back)' }) });

export const ConsumerView = z
  .object({
    name: z.string(),
    type: z.enum(['stream', 'webhook']),
    origin: z.enum(['config', 'api']),
    accounts: z.array(z.string()).nullable(),
    url: z.string().optional(),
    cursor: cursorText,
    lag: z.object({ unacknowledged: z.number().int(), oldestReceivedAt: isoTime.nullable(), oldestAgeMs: z.number().nullable() }),
    connected: z.boolean().optional(),
    ackedAt: isoTime.nullable(),
    attempts: z.number().int(),
    nextAttemptAt: isoTime.nullable(),
    lastError: z.string().nullable(),
    lastErrorAt: isoTime.nullable(),
    deadLetters: z.number().int(),
  })
  .meta({ id: 'Consumer', description: 'A named reader of the inbox and its lag (never its secret).' });
type ConsumerViewMatches = Expect<Same<z.output<typeof ConsumerView>, ConsumerViewType>>;

export const ConsumerList = z.object({ consumers: z.array(ConsumerView) });
export const ConsumerParams = z.strictObject({ name: z.string() });
export const ConsumerRemoved = z.object({ removed: z.string() });
export const DeadLetters = z.object({
  consumer: z.string(),
  deadLetters: z.array(z.object({ cursor: cursorText, reason: z.string(), at: isoTime })),
});
