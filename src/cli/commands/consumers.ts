// `wa-supervisor consumers ...`: named inbox readers, their lag and their dead letters.
import { COMMON_OPTIONS, UsageError, parseCommandArgs } from '../args.js';
import { EXIT } from '../exit-codes.js';
import { formatDuration, printJson, table, type CliIo } from '../io.js';
import { clientFor, resolveCliTarget } from '../target.js';
import type { ConsumerView } from '../../inbox/consumer-service.js';

/** Help text for `consumers`. */
export const CONSUMERS_HELP = `Usage: wa-supervisor consumers list [--json]
       wa-supervisor consumers add NAME --type stream|webhook [--account ID]... [--url URL --secret S] [--json]
       wa-supervisor consumers remove NAME
       wa-supervisor consumers dead-letters NAME [--json]

A consumer is a named reader of the inbox with a cursor the daemon keeps: a stream consumer reads
GET /v1/inbox/stream?consumer=NAME and acknowledges with POST /v1/inbox/ack; the daemon POSTs
each message to a webhook consumer. list shows each one's lag: messages not yet acknowledged,
the age of the oldest, and the last delivery error. Consumers from the config file are changed
there; add and remove manage the others.`;

/** Dispatches the consumers subcommands. */
export async function consumersCommand(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.stdout.write(`${CONSUMERS_HELP}\n`);
    return sub === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const { values, positionals } = parseCommandArgs(
    `consumers ${sub}`,
    rest,
    { ...COMMON_OPTIONS, type: { type: 'string' }, account: { type: 'string', multiple: true }, url: { type: 'string' }, secret: { type: 'string' } },
    true,
  );
  if (values.help) {
    io.stdout.write(`${CONSUMERS_HELP}\n`);
    return EXIT.OK;
  }
  const client = clientFor(resolveCliTarget(values), io.stderr);
  const oneName = () => {
    if (positionals.length !== 1) throw new UsageError(`consumers ${sub}`, 'expected one consumer NAME');
    return positionals[0]!;
  };
  switch (sub) {
    case 'list': {
      const { body } = await client.request<{ consumers: ConsumerView[] }>('GET', '/v1/consumers');
      if (values.json) printJson(io, body);
      else io.stdout.write(`${body.consumers.length ? renderConsumers(body.consumers) : 'no consumers'}\n`);
      return EXIT.OK;
    }
    case 'add': {
      const name = oneName();
      if (values.type !== 'stream' && values.type !== 'webhook') throw new UsageError('consumers add', '--type stream|webhook is required');
      const accounts = values.account as string[] | undefined;
      const spec = {
        name,
        type: values.type,
        ...(accounts?.length ? { accounts } : {}),
        ...(values.url !== undefined ? { url: values.url } : {}),
        ...(values.secret !== undefined ? { secret: values.secret } : {}),
      };
      const { body } = await client.request<ConsumerView>('POST', '/v1/consumers', spec);
      if (values.json) printJson(io, body);
      else io.stdout.write(`consumer ${body.name} added (${body.type}, from cursor ${body.cursor})\n`);
      return EXIT.OK;
    }
    case 'remove': {
      const name = oneName();
      await client.request('DELETE', `/v1/consumers/${encodeURIComponent(name)}`);
      io.stdout.write(`consumer ${name} removed\n`);
      return EXIT.OK;
    }
    case 'dead-letters': {
      const name = oneName();
      const { body } = await client.request<{ consumer: string; deadLetters: Array<{ cursor: string; reason: string; at: string }> }>('GET', `/v1/consumers/${encodeURIComponent(name)}/dead-letters`);
      if (values.json) printJson(io, body);
      else io.stdout.write(`${body.deadLetters.length ? table(['CURSOR', 'AT', 'REASON'], body.deadLetters.map((d) => [d.cursor, d.at, d.reason])) : 'no dead letters'}\n`);
      return EXIT.OK;
    }
    default:
      throw new UsageError('consumers', `unknown consumers command "${sub}"`);
  }
}

function renderConsumers(consumers: ConsumerView[]): string {
  const rows = consumers.map((c) => [
    c.name,
    c.type === 'stream' ? `stream${c.connected ? ' (connected)' : ''}` : 'webhook',
    c.accounts?.join(',') ?? 'all',
    c.cursor,
    String(c.lag.unacknowledged),
    c.lag.oldestAgeMs === null ? '-' : formatDuration(c.lag.oldestAgeMs),
    c.deadLetters ? String(c.deadLetters) : '-',
    c.lastError ? `${c.lastError}${c.nextAttemptAt ? ` (retry ${c.nextAttemptAt})` : ''}` : '-',
  ]);
  return table(['NAME', 'TYPE', 'ACCOUNTS', 'CURSOR', 'UNACKED', 'OLDEST', 'DEAD', 'LAST ERROR'], rows);
}
