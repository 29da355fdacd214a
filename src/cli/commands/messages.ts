// `wa-supervisor messages ...` and `wa-supervisor audit`: the outbox and the policy audit log.
import { COMMON_OPTIONS, UsageError, parseCommandArgs } from '../args.js';
import { EXIT } from '../exit-codes.js';
import { printJson, table, type CliIo } from '../io.js';
import { clientFor, resolveCliTarget } from '../target.js';

/** Help text for `messages`. */
export const MESSAGES_HELP = `Usage: wa-supervisor messages list [--account ID] [--state STATE] [--limit N] [--json]
       wa-supervisor messages show ID [--json]
       wa-supervisor messages cancel|retry|approve|reject ID [--json]
       wa-supervisor messages prune --older-than DURATION [--json]

States: queued, sending, unknown (may have reached the wire; settled by the server's ack or
re-sent with the same WhatsApp id), sent, delivered, read, held (awaiting approve/reject),
denied, failed, expired, cancelled.
cancel   withdraws a queued or held message
retry    queues a failed, expired or cancelled message again (same WhatsApp id)
approve  lets a held message go (the policy is checked again when it is sent)
reject   refuses a held message for good
prune    deletes finished messages (sent, delivered, read, denied, failed, expired,
         cancelled) last changed before DURATION ago, e.g. 7d, 12h, 30m`;

type Row = { id: number; account: string; to: string; state: string; text: string; createdAt: string; reason?: string; messageId: string };

/** Dispatches the messages subcommands. */
export async function messagesCommand(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.stdout.write(`${MESSAGES_HELP}\n`);
    return sub === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const { values, positionals } = parseCommandArgs(
    `messages ${sub}`,
    rest,
    { ...COMMON_OPTIONS, account: { type: 'string' }, state: { type: 'string' }, limit: { type: 'string' }, 'older-than': { type: 'string' } },
    true,
  );
  if (values.help) {
    io.stdout.write(`${MESSAGES_HELP}\n`);
    return EXIT.OK;
  }
  const client = clientFor(resolveCliTarget(values), io.stderr);
  const oneId = () => {
    if (positionals.length !== 1 || !/^\d+$/.test(positionals[0]!)) throw new UsageError(`messages ${sub}`, 'expected one message ID (a number)');
    return positionals[0]!;
  };
  switch (sub) {
    case 'list': {
      const q = new URLSearchParams();
      if (values.account) q.set('account', values.account);
      if (values.state) q.set('state', values.state);
      if (values.limit) q.set('limit', values.limit);
      const { body } = await client.request<{ messages: Row[] }>('GET', `/v1/messages${q.size ? `?${q}` : ''}`);
      if (values.json) printJson(io, body);
      else
        io.stdout.write(
          `${body.messages.length ? table(['ID', 'ACCOUNT', 'TO', 'STATE', 'CREATED', 'TEXT'], body.messages.map((m) => [String(m.id), m.account, m.to, m.state, m.createdAt, m.text.length > 40 ? `${m.text.slice(0, 37)}...` : m.text])) : 'no messages'}\n`,
        );
      return EXIT.OK;
    }
    case 'show': {
      const { body } = await client.request<Row>('GET', `/v1/messages/${oneId()}`);
      if (values.json) printJson(io, body);
      else io.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
      return EXIT.OK;
    }
    case 'cancel':
    case 'retry':
    case 'approve':
    case 'reject': {
      const { body } = await client.request<Row>('POST', `/v1/messages/${oneId()}/${sub}`);
      if (values.json) printJson(io, body);
      else io.stdout.write(`message ${body.id} ${body.state}\n`);
      return EXIT.OK;
    }
    case 'prune': {
      if (!values['older-than']) throw new UsageError('messages prune', '--older-than DURATION is required (e.g. 7d)');
      const { body } = await client.request<{ deleted: number }>('POST', '/v1/messages/prune', { olderThan: values['older-than'] });
      if (values.json) printJson(io, body);
      else io.stdout.write(`deleted ${body.deleted} finished message(s)\n`);
      return EXIT.OK;
    }
    default:
      throw new UsageError('messages', `unknown messages command "${sub}"`);
  }
}

/** Help text for `audit`. */
export const AUDIT_HELP = `Usage: wa-supervisor audit [--account ID] [--limit N] [--json]

Every send-policy decision (allow, deny, hold, approve, reject), newest first: when, which
account and recipient, the rule that matched, at which stage (enqueue, send, operator) and who
asked (client name and request id).`;

/** Prints the audit log. */
export async function auditCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs('audit', args, { ...COMMON_OPTIONS, account: { type: 'string' }, limit: { type: 'string' } });
  if (values.help) {
    io.stdout.write(`${AUDIT_HELP}\n`);
    return EXIT.OK;
  }
  const q = new URLSearchParams();
  if (values.account) q.set('account', values.account);
  if (values.limit) q.set('limit', values.limit);
  type Entry = { at: string; account: string; recipient: string; decision: string; rule: string; stage: string; client: string | null; requestId: string | null; reason: string };
  const { body } = await clientFor(resolveCliTarget(values), io.stderr).request<{ audit: Entry[] }>('GET', `/v1/audit${q.size ? `?${q}` : ''}`);
  if (values.json) printJson(io, body);
  else
    io.stdout.write(
      `${body.audit.length ? table(['AT', 'ACCOUNT', 'RECIPIENT', 'DECISION', 'RULE', 'STAGE', 'BY'], body.audit.map((e) => [e.at, e.account, e.recipient, e.decision, e.rule, e.stage, `${e.client ?? '-'} ${e.requestId ?? ''}`.trim()])) : 'no decisions yet'}\n`,
    );
  return EXIT.OK;
}
