// `wa-supervisor send`: enqueue a message through the daemon's send gate.
import { ApiError } from '../../control/client.js';
import { COMMON_OPTIONS, UsageError, parseCommandArgs } from '../args.js';
import { EXIT } from '../exit-codes.js';
import { printJson, type CliIo } from '../io.js';
import { clientFor, resolveCliTarget } from '../target.js';

/** Help text for `send`. */
export const SEND_HELP = `Usage: wa-supervisor send --account ID --to NUMBER_OR_JID --text TEXT
                         [--idempotency-key K] [--wait] [--until sent|delivered|read] [--json]

Stores the message in the outbox (it survives reconnects and restarts) and returns once it is
on disk. The send policy and the account's allowTo list apply; a refused message is stored
as denied and the reason is printed.

  --idempotency-key K  the same key again returns the same message, never a second one
  --wait               stream this message's progress until it is sent (or --until
                       delivered / read), or ends denied, held, failed or expired; with a
                       key used before, the progress of the message it names (at once
                       when that one is already there)
  --json               print {"id","messageId","state"} ("reason" when denied); exit 0 when
                       stored (denied included), non-zero with {"error":{...}} when refused input`;

/** Sends one message. */
export async function sendCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs('send', args, {
    ...COMMON_OPTIONS,
    account: { type: 'string' },
    to: { type: 'string' },
    text: { type: 'string' },
    'idempotency-key': { type: 'string' },
    wait: { type: 'boolean' },
    until: { type: 'string' },
  }, true);
  if (values.help) {
    io.stdout.write(`${SEND_HELP}\n`);
    return EXIT.OK;
  }
  if (positionals.length) throw new UsageError('send', `unexpected argument ${positionals[0]} (the text goes after --text)`);
  for (const k of ['account', 'to', 'text'] as const) if (values[k] === undefined) throw new UsageError('send', `--${k} is required`);
  const until = values.until ?? (values.wait ? 'sent' : undefined);
  if (until !== undefined && !['sent', 'delivered', 'read'].includes(until)) throw new UsageError('send', '--until must be sent, delivered or read');
  const body = {
    account: values.account,
    to: values.to,
    text: values.text,
    ...(values['idempotency-key'] !== undefined ? { idempotencyKey: values['idempotency-key'] } : {}),
  };
  const client = clientFor(resolveCliTarget(values), io.stderr);
  try {
    if (!until) {
      const { body: res } = await client.request<{ id: number; messageId: string; state: string; reason?: string }>('POST', '/v1/messages', body);
      if (values.json) printJson(io, res);
      else io.stdout.write(`message ${res.id} ${res.state}${res.reason ? `: ${res.reason}` : ''} (WhatsApp id ${res.messageId})\n`);
      return EXIT.OK;
    }
    let last: { state?: string } = {};
    await client.stream(
      `/v1/messages?wait=${until}`,
      (raw) => {
        const e = raw as { type: string; id: number; state: string; reason?: string; messageId: string };
        last = e;
        if (values.json) printJson(io, e);
        else io.stdout.write(`message ${e.id} ${e.state}${e.reason ? `: ${e.reason}` : ''}\n`);
      },
      { method: 'POST', body },
    );
    const order = ['sent', 'delivered', 'read'];
    return order.indexOf(last.state ?? '') >= order.indexOf(until) ? EXIT.OK : EXIT.FAILURE;
  } catch (err) {
    if (values.json && err instanceof ApiError) {
      printJson(io, { error: { code: err.code, message: err.message } });
      return err.status === 404 || err.status === 400 ? EXIT.USAGE : EXIT.FAILURE;
    }
    throw err;
  }
}
