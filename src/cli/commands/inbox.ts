// `wa-supervisor inbox`: stored inbound messages, by cursor; --follow streams new ones.
import { randomBytes } from 'node:crypto';
import { createWriteStream, openSync, renameSync, unlinkSync } from 'node:fs';
import { resolve } from 'node:path';
import { finished } from 'node:stream/promises';
import { COMMON_OPTIONS, UsageError, parseCommandArgs } from '../args.js';
import { EXIT } from '../exit-codes.js';
import { printJson, table, type CliIo } from '../io.js';
import { clientFor, resolveCliTarget } from '../target.js';

/** Help text for `inbox`. */
export const INBOX_HELP = `Usage: wa-supervisor inbox [--account ID] [--chat JID] [--after CURSOR] [--limit N]
                          [--status ok,undecryptable,ignored|all] [--follow] [--json]
       wa-supervisor inbox media ID [--account ID] [--chat JID] --out FILE|- [--json]
       wa-supervisor inbox prune --older-than DURATION [--json]

Inbound messages as the daemon stored them, oldest first, each with a cursor that only grows.
Every message is stored before WhatsApp is told it arrived, so nothing received while a bot was
down is lost: read on from the last cursor you handled with --after.

--after CURSOR  only messages after this cursor (from "cursor", or "next" with --json)
--limit N       at most N messages (1-1000, default 100); ignored with --follow
--status        ok (default, with undecryptable), undecryptable (arrived but could not be
                decrypted), ignored (sender not in the account's allowFrom), or all
--follow        print what is stored, then every new message as it arrives, until Ctrl-C
--json          one message object per line:
                {"cursor","id","account","chat","from","chatType","kind","text","timestamp","receivedAt","status"}
                (go on from the last line's cursor)
media ID        the file of a media message (ID is its "id"), downloaded and checked by the
                daemon on first use, then kept in its cache. --out FILE writes it (replacing
                FILE only once it is complete and its sha256 matches), --out - to stdout (the
                summary line then goes to stderr). --account/--chat pick the message when
                one id is in several chats. --json: {"path","bytes","sha256","mimetype"}
prune           deletes messages received before DURATION ago (7d, 12h, ...), acknowledged by
                consumers or not; retention (inbox.retentionDays) waits for them`;

type Message = { cursor: string; account: string; from: string; kind: string; text: string | null; receivedAt: string; status: string };

/** Prints the inbox (or follows it). */
export async function inboxCommand(args: string[], io: CliIo): Promise<number> {
  if (args[0] === 'prune') return pruneCommand(args.slice(1), io);
  if (args[0] === 'media') return mediaCommand(args.slice(1), io);
  const { values } = parseCommandArgs('inbox', args, {
    ...COMMON_OPTIONS,
    account: { type: 'string' },
    chat: { type: 'string' },
    after: { type: 'string' },
    limit: { type: 'string' },
    status: { type: 'string' },
    follow: { type: 'boolean' },
  });
  if (values.help) {
    io.stdout.write(`${INBOX_HELP}\n`);
    return EXIT.OK;
  }
  if (values.after !== undefined && !/^\d+$/.test(values.after)) throw new UsageError('inbox', `--after: expected a cursor (digits), got ${JSON.stringify(values.after)}`);
  if (values.follow && values.limit !== undefined) throw new UsageError('inbox', '--limit does not apply to --follow');
  const q = new URLSearchParams();
  for (const key of ['account', 'chat', 'after', 'limit', 'status'] as const) if (values[key] !== undefined) q.set(key, values[key]);
  const client = clientFor(resolveCliTarget(values), io.stderr);
  const query = q.size ? `?${q}` : '';
  const human = (m: Message) => [m.cursor, m.receivedAt, m.account, m.from, m.status === 'ok' ? m.kind : `${m.kind} (${m.status})`, oneLine(m.text)];
  const header = ['CURSOR', 'RECEIVED', 'ACCOUNT', 'FROM', 'KIND', 'TEXT'];

  if (values.follow) {
    const abort = new AbortController();
    const onSigint = () => abort.abort();
    process.once('SIGINT', onSigint);
    try {
      if (!values.json) io.stdout.write(`${header.join('  ')}\n`);
      await client.stream(
        `/v1/inbox/follow${query}`,
        (raw) => {
          const m = raw as Message;
          if (values.json) printJson(io, m);
          else io.stdout.write(`${human(m).join('  ')}\n`);
        },
        { signal: abort.signal },
      );
    } finally {
      process.off('SIGINT', onSigint);
    }
    return EXIT.OK;
  }

  const { body } = await client.request<{ messages: Message[]; next: string }>('GET', `/v1/inbox${query}`);
  if (values.json) {
    for (const m of body.messages) printJson(io, m);
  } else {
    io.stdout.write(`${body.messages.length ? table(header, body.messages.map(human)) : 'no messages'}\n`);
    io.stdout.write(`next: --after ${body.next}\n`);
  }
  return EXIT.OK;
}

function oneLine(text: string | null): string {
  if (text === null) return '';
  const flat = text.replace(/\s+/g, ' ');
  return flat.length > 60 ? `${flat.slice(0, 57)}...` : flat;
}

async function pruneCommand(args: string[], io: CliIo): Promise<number> {
  const { values } = parseCommandArgs('inbox prune', args, { ...COMMON_OPTIONS, 'older-than': { type: 'string' } });
  if (values.help) {
    io.stdout.write(`${INBOX_HELP}\n`);
    return EXIT.OK;
  }
  if (!values['older-than']) throw new UsageError('inbox prune', '--older-than DURATION is required (e.g. 30d)');
  const { body } = await clientFor(resolveCliTarget(values), io.stderr).request<{ deleted: number }>('POST', '/v1/inbox/prune', { olderThan: values['older-than'] });
  if (values.json) printJson(io, body);
  else io.stdout.write(`deleted ${body.deleted} inbound message(s)\n`);
  return EXIT.OK;
}

async function mediaCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs('inbox media', args, { ...COMMON_OPTIONS, account: { type: 'string' }, chat: { type: 'string' }, out: { type: 'string' } }, true);
  if (values.help) {
    io.stdout.write(`${INBOX_HELP}\n`);
    return EXIT.OK;
  }
  if (positionals.length !== 1 || positionals[0] === '') throw new UsageError('inbox media', 'give the message id (the "id" of an inbox row), once');
  if (!values.out) throw new UsageError('inbox media', '--out FILE is required (--out - writes to stdout)');
  const id = positionals[0]!;
  const q = new URLSearchParams();
  if (values.account !== undefined) q.set('account', values.account);
  if (values.chat !== undefined) q.set('chat', values.chat);
  const path = `/v1/inbox/${encodeURIComponent(id)}/media${q.size ? `?${q}` : ''}`;
  const client = clientFor(resolveCliTarget(values), io.stderr);
  const toStdout = values.out === '-';
  const target = toStdout ? '-' : resolve(values.out);
  // A file is written next to its target and renamed over it only once complete and checked.
  const temp = toStdout ? null : `${target}.part-${randomBytes(4).toString('hex')}`;
  let out: NodeJS.WritableStream;
  try {
    out = temp ? createWriteStream('', { fd: openSync(temp, 'wx', 0o644) }) : io.stdout;
  } catch (err) {
    io.stderr.write(`wa-supervisor inbox media: cannot write next to ${target}: ${(err as Error).message}\n`);
    return EXIT.FAILURE;
  }
  let result: Awaited<ReturnType<typeof client.download>>;
  try {
    result = await client.download(path, out);
    const stated = result.headers['x-wa-media-sha256'];
    if (typeof stated === 'string' && stated !== result.sha256) throw new Error(`received bytes hash to ${result.sha256}, not ${stated} as the daemon stated`);
    if (temp) {
      (out as ReturnType<typeof createWriteStream>).end();
      await finished(out as ReturnType<typeof createWriteStream>);
      renameSync(temp, target);
    }
  } catch (err) {
    if (temp) {
      (out as ReturnType<typeof createWriteStream>).destroy();
      try {
        unlinkSync(temp);
      } catch {
        // never created
      }
    }
    if (err instanceof Error && !(err.name === 'ApiError' || err.name === 'DaemonUnreachableError')) {
      io.stderr.write(`wa-supervisor inbox media: ${err.message}\n`);
      return EXIT.FAILURE;
    }
    throw err;
  }
  const mimetype = typeof result.headers['content-type'] === 'string' ? result.headers['content-type'] : null;
  const summary = { path: target, bytes: result.bytes, sha256: result.sha256, mimetype };
  const where = toStdout ? { stdout: io.stderr, stderr: io.stderr } : io;
  if (values.json) printJson(where, summary);
  else where.stdout.write(`${toStdout ? 'wrote stdout' : `wrote ${target}`} (${result.bytes} bytes, sha256 ${result.sha256}${mimetype ? `, ${mimetype}` : ''})\n`);
  return EXIT.OK;
}
