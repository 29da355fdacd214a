// `wa-supervisor read`: mark a chat's stored messages read (read receipts, through the send gate).
import { COMMON_OPTIONS, UsageError, parseCommandArgs } from '../args.js';
import { EXIT } from '../exit-codes.js';
import { printJson, type CliIo } from '../io.js';
import { clientFor, resolveCliTarget } from '../target.js';

/** Help text for `read`. */
export const READ_HELP = `Usage: wa-supervisor read --account ID --chat NUMBER_OR_JID [--up-to CURSOR] [--json]

Sends read receipts (the blue ticks the sender sees) for the chat's stored messages that are not
marked read yet, up to CURSOR (default: all of them). A read receipt is something a person sees,
so it passes the send policy as kind "receipt": an account in shadow mode (a deny rule) refuses it
and nothing reaches the peer. Exit 0 when sent or when there was nothing to mark, 1 when refused.
--json prints {"account","chat","state","marked","upTo"?,"rule"?,"reason"?};
state is sent, nothing_to_read or denied.`;

/** Marks a chat read. */
export async function readCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs('read', args, { ...COMMON_OPTIONS, account: { type: 'string' }, chat: { type: 'string' }, 'up-to': { type: 'string' } });
  if (values.help) {
    io.stdout.write(`${READ_HELP}\n`);
    return EXIT.OK;
  }
  if (!values.account) throw new UsageError('read', '--account ID is required');
  if (!values.chat) throw new UsageError('read', '--chat NUMBER_OR_JID is required');
  if (values['up-to'] !== undefined && !/^\d+$/.test(values['up-to'])) throw new UsageError('read', `--up-to: expected a cursor (digits), got ${JSON.stringify(values['up-to'])}`);
  const body = { account: values.account, chat: values.chat, ...(values['up-to'] !== undefined ? { upTo: values['up-to'] } : {}) };
  type Answer = { account: string; chat: string; state: 'sent' | 'nothing_to_read' | 'denied'; marked: number; reason?: string };
  const { body: res } = await clientFor(resolveCliTarget(values), io.stderr).request<Answer>('POST', '/v1/chats/read', body);
  if (values.json) printJson(io, res);
  else if (res.state === 'denied') io.stdout.write(`refused: ${res.reason}\n`);
  else io.stdout.write(res.state === 'sent' ? `marked ${res.marked} message(s) read in ${res.chat}\n` : `nothing to mark read in ${res.chat}\n`);
  return res.state === 'denied' ? EXIT.FAILURE : EXIT.OK;
}
