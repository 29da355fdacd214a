// `wa-supervisor accounts list|add|remove`, and the per-account commands `reconnect` and `logout`.
import type { AccountSummary, AccountsResponse } from '../../control/wire.js';
import { COMMON_OPTIONS, UsageError, parseCommandArgs } from '../args.js';
import { EXIT } from '../exit-codes.js';
import { printJson, type CliIo } from '../io.js';
import { clientFor, resolveCliTarget } from '../target.js';
import { renderAccounts } from './status.js';

/** Help text for `accounts`. */
export const ACCOUNTS_HELP = `Usage: wa-supervisor accounts list [--json]
       wa-supervisor accounts add ID [--ws-url URL] [--allow-to NUMBER_OR_JID]... [--fresh] [--json]
       wa-supervisor accounts remove ID

list    every account with its state
add     adds an account without editing the config (kept in the state database);
        --ws-url connects it somewhere else than WhatsApp, e.g. the emulator.
        A new account waits in needs_pairing: pair it with "wa-supervisor pair ID".
        --allow-to (repeatable) gives it an allowTo, in force before it connects (rules and
        later changes: PUT /v1/accounts/ID/policy). --fresh archives creds left by a config
        account of the same id instead of refusing to take them over without its policy.
remove  stops and removes an account added with "accounts add" (its creds are archived)

Common options: --socket PATH, --config FILE`;

/** Dispatches the accounts subcommands. */
export async function accountsCommand(args: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.stdout.write(`${ACCOUNTS_HELP}\n`);
    return sub === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const name = `accounts ${sub}`;
  const { values, positionals } = parseCommandArgs(
    name,
    rest,
    { ...COMMON_OPTIONS, 'ws-url': { type: 'string' }, 'allow-to': { type: 'string', multiple: true }, fresh: { type: 'boolean' } },
    true,
  );
  if (values.help) {
    io.stdout.write(`${ACCOUNTS_HELP}\n`);
    return EXIT.OK;
  }
  const client = clientFor(resolveCliTarget(values), io.stderr);
  switch (sub) {
    case 'list': {
      noPositionals(name, positionals);
      const { body } = await client.request<AccountsResponse>('GET', '/v1/accounts');
      if (values.json) printJson(io, body);
      else io.stdout.write(`${body.accounts.length ? renderAccounts(body.accounts) : 'no accounts'}\n`);
      return EXIT.OK;
    }
    case 'add': {
      const id = onePositional(name, positionals, 'ID');
      const { body } = await client.request<AccountSummary>('POST', '/v1/accounts', {
        id,
        ...(values['ws-url'] !== undefined ? { wsUrl: values['ws-url'] } : {}),
        ...(values['allow-to'] !== undefined ? { allowTo: values['allow-to'] } : {}),
        ...(values.fresh ? { fresh: true } : {}),
      });
      if (values.json) printJson(io, body);
      else {
        io.stdout.write(`added account ${body.id} (${body.state})\n`);
        if (body.state === 'needs_pairing') io.stdout.write(`pair it with: wa-supervisor pair ${body.id}\n`);
      }
      return EXIT.OK;
    }
    case 'remove': {
      const id = onePositional(name, positionals, 'ID');
      await client.request('DELETE', `/v1/accounts/${encodeURIComponent(id)}`);
      if (values.json) printJson(io, { removed: id });
      else io.stdout.write(`removed account ${id}\n`);
      return EXIT.OK;
    }
    default:
      throw new UsageError('accounts', `unknown accounts command "${sub}" (use list, add or remove)`);
  }
}

/** Help text for `reconnect` and `logout`. */
export const ACCOUNT_OP_HELP = `Usage: wa-supervisor reconnect ID [--json]
       wa-supervisor logout ID [--json]

reconnect  ends the account's connection and connects again now; also brings an account
           back from conflict or forbidden once the cause is fixed
logout     logs the linked device out on WhatsApp, archives its creds for review, and leaves
           the account waiting for "wa-supervisor pair ID"`;

/** `reconnect ID` and `logout ID`. */
export function accountOpCommand(op: 'reconnect' | 'logout') {
  return async (args: string[], io: CliIo): Promise<number> => {
    const { values, positionals } = parseCommandArgs(op, args, COMMON_OPTIONS, true);
    if (values.help) {
      io.stdout.write(`${ACCOUNT_OP_HELP}\n`);
      return EXIT.OK;
    }
    const id = onePositional(op, positionals, 'ID');
    const { body } = await clientFor(resolveCliTarget(values), io.stderr).request<AccountSummary>(
      'POST',
      `/v1/accounts/${encodeURIComponent(id)}/${op}`,
    );
    if (values.json) printJson(io, body);
    else io.stdout.write(`${body.id}: ${body.state}\n`);
    return EXIT.OK;
  };
}

function onePositional(command: string, positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new UsageError(command, `expected one ${what}, got ${positionals.length ? positionals.join(' ') : 'none'}`);
  return positionals[0]!;
}

function noPositionals(command: string, positionals: string[]): void {
  if (positionals.length) throw new UsageError(command, `unexpected argument ${positionals[0]}`);
}
