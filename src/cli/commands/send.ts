// `wa-supervisor send` (and `reply`, `react`, `edit`, `delete`): enqueue a message through the
// daemon's send gate. A media file is read here, with the rights of whoever runs the command,
// streamed to the daemon's media store (POST /v1/media), and then named by its sha256.
import { ApiError, type ControlClient } from '../../control/client.js';
import { COMMON_OPTIONS, UsageError, parseCommandArgs } from '../args.js';
import { EXIT } from '../exit-codes.js';
import { printJson, type CliIo } from '../io.js';
import { clientFor, resolveCliTarget } from '../target.js';

const MEDIA_FLAGS = ['image', 'video', 'audio', 'voice', 'document', 'sticker'] as const;

const OUTPUT_HELP = `  --idempotency-key K  the same key again returns the same message, never a second one
  --wait               stream this message's progress until it is sent (or --until
                       delivered / read), or ends denied, held, failed or expired; with a
                       key used before, the progress of the message it names (at once
                       when that one is already there)
  --json               print {"id","messageId","state"} ("reason" when denied); exit 0 when
                       stored (denied included), non-zero with {"error":{...}} when refused input`;

/** Help text for `send`. */
export const SEND_HELP = `Usage: wa-supervisor send --account ID --to NUMBER_OR_JID --text TEXT
       wa-supervisor send --account ID --to NUMBER_OR_JID --image|--video|--audio|--voice|--document|--sticker FILE
                          [--caption TEXT] [--file-name NAME] [--mimetype TYPE]
       wa-supervisor send --account ID --to NUMBER_OR_JID --location LAT,LON [--place NAME]
       wa-supervisor send --account ID --to NUMBER_OR_JID --contact-name NAME --contact-phone NUMBER
                          [--reply-to MESSAGE_ID] [--idempotency-key K] [--wait] [--until sent|delivered|read] [--json]

Stores the message in the outbox (it survives reconnects and restarts) and returns once it is
on disk. The send policy and the account's allowTo list apply; a refused message is stored
as denied and the reason is printed. A file is read by this command and uploaded to the
daemon's media store first; its type is checked from its bytes (--voice: Ogg Opus audio sent
as a voice note; --document: any file, --file-name as the recipient sees it).

  --reply-to ID        quote a message of this chat (its WhatsApp id: "id" in the inbox,
                       "messageId" of one of ours)
${OUTPUT_HELP}`;

const TARGET_HELP = (cmd: string, what: string, extra: string) => `Usage: wa-supervisor ${cmd} --account ID --to NUMBER_OR_JID --message MESSAGE_ID ${extra}
                          [--idempotency-key K] [--wait] [--until sent|delivered|read] [--json]

${what} MESSAGE_ID is the WhatsApp id of a message of this chat ("id" in the inbox, "messageId"
of one of ours); it goes through the outbox, the policy and allowTo like any message.

${OUTPUT_HELP}`;

export const REPLY_HELP = TARGET_HELP('reply', 'Sends --text as a reply quoting a message.', '--text TEXT');
export const REACT_HELP = TARGET_HELP('react', 'Reacts to a message with --emoji ("" removes our reaction).', '--emoji EMOJI');
export const EDIT_HELP = TARGET_HELP('edit', 'Replaces the text of one of our text messages with --text.', '--text TEXT');
export const DELETE_HELP = TARGET_HELP('delete', 'Deletes one of our messages for everyone.', '');

const OUTPUT_OPTIONS = {
  ...COMMON_OPTIONS,
  account: { type: 'string' },
  to: { type: 'string' },
  'idempotency-key': { type: 'string' },
  wait: { type: 'boolean' },
  until: { type: 'string' },
} as const;

/** Sends one message. */
export async function sendCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs('send', args, {
    ...OUTPUT_OPTIONS,
    text: { type: 'string' },
    caption: { type: 'string' },
    'file-name': { type: 'string' },
    mimetype: { type: 'string' },
    ...Object.fromEntries(MEDIA_FLAGS.map((f) => [f, { type: 'string' }])),
    location: { type: 'string' },
    place: { type: 'string' },
    'contact-name': { type: 'string' },
    'contact-phone': { type: 'string' },
    'reply-to': { type: 'string' },
  } as const, true);
  if (values.help) {
    io.stdout.write(`${SEND_HELP}\n`);
    return EXIT.OK;
  }
  if (positionals.length) throw new UsageError('send', `unexpected argument ${positionals[0]} (the text goes after --text)`);
  const v = values as Record<string, string | boolean | undefined>;
  const media = MEDIA_FLAGS.filter((f) => v[f] !== undefined);
  const contact = v['contact-name'] !== undefined || v['contact-phone'] !== undefined;
  const kinds = [...media.map((f) => `--${f}`), ...(v.location !== undefined ? ['--location'] : []), ...(contact ? ['--contact-name/--contact-phone'] : [])];
  if (kinds.length > 1) throw new UsageError('send', `${kinds.join(' and ')}: one kind of message per send`);
  const str = (k: string) => v[k] as string | undefined;
  for (const [flag, needs] of [['caption', media.length], ['file-name', media.length], ['mimetype', media.length], ['place', v.location !== undefined]] as const) {
    if (v[flag] !== undefined && !needs) throw new UsageError('send', `--${flag} goes with ${flag === 'place' ? '--location' : 'a file (--image, --document, ...)'}`);
  }
  let prepare: (client: ControlClient) => Promise<Record<string, unknown>>;
  if (media.length) {
    if (v.text !== undefined) throw new UsageError('send', 'a file takes --caption, not --text');
    const flag = media[0]!;
    const file = str(flag)!;
    prepare = async (client) => {
      const up = (await client.uploadFile<{ sha256: string }>('/v1/media', file)).body;
      const kind = flag === 'voice' ? 'audio' : flag;
      return {
        media: {
          sha256: up.sha256,
          kind,
          ...(flag === 'voice' ? { voice: true } : {}),
          ...(str('caption') !== undefined ? { caption: str('caption') } : {}),
          ...(str('mimetype') !== undefined ? { mimetype: str('mimetype') } : {}),
          ...(str('file-name') !== undefined ? { fileName: str('file-name') } : flag === 'document' ? { fileName: baseName(file) } : {}),
        },
      };
    };
  } else if (v.location !== undefined) {
    if (v.text !== undefined) throw new UsageError('send', 'a location takes --place for its name, not --text');
    const m = /^\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*$/.exec(str('location')!);
    if (!m) throw new UsageError('send', `--location: expected LATITUDE,LONGITUDE in degrees (e.g. 52.52,13.405), got ${JSON.stringify(v.location)}`);
    const body = { location: { latitude: Number(m[1]), longitude: Number(m[2]), ...(str('place') !== undefined ? { name: str('place') } : {}) } };
    prepare = async () => body;
  } else if (contact) {
    if (v['contact-name'] === undefined || v['contact-phone'] === undefined) throw new UsageError('send', 'a contact card needs both --contact-name and --contact-phone');
    if (v.text !== undefined) throw new UsageError('send', 'a contact card carries no --text');
    const body = { contact: { name: str('contact-name'), phone: str('contact-phone') } };
    prepare = async () => body;
  } else {
    if (v.text === undefined) throw new UsageError('send', '--text is required (or a file, --location or a contact card)');
    const body = { text: str('text') };
    prepare = async () => body;
  }
  const replyTo = str('reply-to');
  return enqueue('send', v, io, async (client) => ({ ...(await prepare(client)), ...(replyTo !== undefined ? { replyTo } : {}) }));
}

/** `reply`, `react`, `edit`, `delete`: a message pointing at another one of the chat. */
export function targetCommand(cmd: 'reply' | 'react' | 'edit' | 'delete'): (args: string[], io: CliIo) => Promise<number> {
  const help = { reply: REPLY_HELP, react: REACT_HELP, edit: EDIT_HELP, delete: DELETE_HELP }[cmd];
  return async (args, io) => {
    const { values, positionals } = parseCommandArgs(cmd, args, {
      ...OUTPUT_OPTIONS,
      message: { type: 'string' },
      ...(cmd === 'react' ? { emoji: { type: 'string' } } : cmd === 'delete' ? {} : { text: { type: 'string' } }),
    } as const, true);
    if (values.help) {
      io.stdout.write(`${help}\n`);
      return EXIT.OK;
    }
    if (positionals.length) throw new UsageError(cmd, `unexpected argument ${positionals[0]}`);
    const v = values as Record<string, string | boolean | undefined>;
    if (v.message === undefined) throw new UsageError(cmd, '--message is required (the WhatsApp id of the message)');
    const id = v.message as string;
    let body: Record<string, unknown>;
    if (cmd === 'react') {
      if (v.emoji === undefined) throw new UsageError(cmd, '--emoji is required ("" removes the reaction)');
      body = { reaction: { messageId: id, emoji: v.emoji } };
    } else if (cmd === 'delete') body = { delete: id };
    else {
      if (v.text === undefined) throw new UsageError(cmd, '--text is required');
      body = cmd === 'reply' ? { text: v.text, replyTo: id } : { text: v.text, edit: id };
    }
    return enqueue(cmd, v, io, async () => body);
  };
}

/** Enqueues the body (built once the client exists) and prints the outcome as `send` does. */
async function enqueue(cmd: string, v: Record<string, string | boolean | undefined>, io: CliIo, build: (client: ControlClient) => Promise<Record<string, unknown>>): Promise<number> {
  for (const k of ['account', 'to'] as const) if (v[k] === undefined) throw new UsageError(cmd, `--${k} is required`);
  const until = (v.until as string | undefined) ?? (v.wait ? 'sent' : undefined);
  if (until !== undefined && !['sent', 'delivered', 'read'].includes(until)) throw new UsageError(cmd, '--until must be sent, delivered or read');
  const client = clientFor(resolveCliTarget(v as Parameters<typeof resolveCliTarget>[0]), io.stderr);
  try {
    const body = {
      account: v.account,
      to: v.to,
      ...(await build(client)),
      ...(v['idempotency-key'] !== undefined ? { idempotencyKey: v['idempotency-key'] } : {}),
    };
    if (!until) {
      const { body: res } = await client.request<{ id: number; messageId: string; state: string; reason?: string }>('POST', '/v1/messages', body);
      if (v.json) printJson(io, res);
      else io.stdout.write(`message ${res.id} ${res.state}${res.reason ? `: ${res.reason}` : ''} (WhatsApp id ${res.messageId})\n`);
      return EXIT.OK;
    }
    let last: { state?: string } = {};
    await client.stream(
      `/v1/messages?wait=${until}`,
      (raw) => {
        const e = raw as { type: string; id: number; state: string; reason?: string; messageId: string };
        last = e;
        if (v.json) printJson(io, e);
        else io.stdout.write(`message ${e.id} ${e.state}${e.reason ? `: ${e.reason}` : ''}\n`);
      },
      { method: 'POST', body },
    );
    const order = ['sent', 'delivered', 'read'];
    return order.indexOf(last.state ?? '') >= order.indexOf(until) ? EXIT.OK : EXIT.FAILURE;
  } catch (err) {
    const unreadable = (err as NodeJS.ErrnoException).code;
    if (unreadable === 'ENOENT' || unreadable === 'EACCES' || unreadable === 'EISDIR') {
      throw new UsageError(cmd, `cannot read the file: ${(err as Error).message}`);
    }
    if (v.json && err instanceof ApiError) {
      printJson(io, { error: { code: err.code, message: err.message } });
      return err.status === 404 || err.status === 400 || err.status === 413 ? EXIT.USAGE : EXIT.FAILURE;
    }
    throw err;
  }
}

function baseName(path: string): string {
  return path.split(/[\\/]/).pop() || 'file';
}
