// `wa-supervisor pair ID`: links a WhatsApp account, showing the QR in the terminal (or a pairing
// code with --code PHONE). The stream it reads is scoped to this request: nothing about other
// accounts can appear in it.
import qrcode from 'qrcode-terminal';
import { COMMON_OPTIONS, UsageError, parseCommandArgs } from '../args.js';
import { EXIT } from '../exit-codes.js';
import { printJson, type CliIo } from '../io.js';
import { clientFor, resolveCliTarget } from '../target.js';

/** Help text for `pair`. */
export const PAIR_HELP = `Usage: wa-supervisor pair ID [--code PHONE] [--json]

Links the account to a WhatsApp phone. Without --code a QR code is shown: on the phone open
WhatsApp > Settings > Linked devices > Link a device and scan it (it is replaced every
~20 s until scanned). With --code PHONE (the account's number, international format) an
8-character code is shown instead: enter it under Linked devices > Link with phone number.

  --json   print one JSON object per line: {"type":"qr","qr":"..."} for each QR
           (or {"type":"code","code":"..."}), then {"type":"paired","jid":"..."} and exit 0;
           on failure {"type":"error","message":"..."} and exit 1`;

type PairLine = { type: 'qr'; qr: string } | { type: 'code'; code: string } | { type: 'paired'; jid: string } | { type: 'error'; message: string };

/** Runs a pairing and reports its progress. */
export async function pairCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommandArgs('pair', args, { ...COMMON_OPTIONS, code: { type: 'string' } }, true);
  if (values.help) {
    io.stdout.write(`${PAIR_HELP}\n`);
    return EXIT.OK;
  }
  if (positionals.length !== 1) throw new UsageError('pair', `expected one account ID, got ${positionals.length ? positionals.join(' ') : 'none'}`);
  const id = positionals[0]!;
  const client = clientFor(resolveCliTarget(values), io.stderr);
  let outcome: PairLine | null = null;
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once('SIGINT', onSigint);
  try {
    await client.stream(
      `/v1/accounts/${encodeURIComponent(id)}/pair`,
      (raw) => {
        const e = raw as PairLine;
        if (values.json) printJson(io, pick(e));
        else renderHuman(io, id, e);
        if (e.type === 'paired' || e.type === 'error') outcome = e;
      },
      { method: 'POST', body: values.code !== undefined ? { phone: values.code } : {}, signal: abort.signal },
    );
  } catch (err) {
    if (!values.json) throw err;
    printJson(io, { type: 'error', message: (err as Error).message });
    return EXIT.FAILURE;
  } finally {
    process.off('SIGINT', onSigint);
  }
  const final = outcome as PairLine | null;
  if (final?.type === 'paired') return EXIT.OK;
  if (!final) {
    const message = abort.signal.aborted ? 'pairing cancelled' : 'the daemon ended the pairing stream without a result';
    if (values.json) printJson(io, { type: 'error', message });
    else io.stderr.write(`wa-supervisor: ${message}\n`);
  }
  return EXIT.FAILURE;
}

function pick(e: PairLine): PairLine {
  switch (e.type) {
    case 'qr':
      return { type: 'qr', qr: e.qr };
    case 'code':
      return { type: 'code', code: e.code };
    case 'paired':
      return { type: 'paired', jid: e.jid };
    case 'error':
      return { type: 'error', message: e.message };
  }
}

function renderHuman(io: CliIo, id: string, e: PairLine): void {
  switch (e.type) {
    case 'qr':
      qrcode.generate(e.qr, { small: true }, (art) => io.stdout.write(`\n${art}\n`));
      io.stdout.write(`Scan with WhatsApp on the phone for "${id}": Settings > Linked devices > Link a device\n`);
      return;
    case 'code':
      io.stdout.write(`Pairing code for "${id}": ${e.code.slice(0, 4)}-${e.code.slice(4)}\n`);
      io.stdout.write('On the phone: WhatsApp > Settings > Linked devices > Link a device > Link with phone number\n');
      return;
    case 'paired':
      io.stdout.write(`Paired: ${id} is ${e.jid}\n`);
      return;
    case 'error':
      io.stderr.write(`wa-supervisor: pairing failed: ${e.message}\n`);
  }
}
