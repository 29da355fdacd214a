// A complete bot: it reads its inbox through a stream consumer, answers each text message
// through the daemon's send gate (policy and allowTo apply, as to every send), and acknowledges
// as it goes. Stopped or restarted, it goes on from the last message it acknowledged; the
// idempotency key makes a reply to a message handled twice the same reply, not a second one.
//
//   WA_SUPERVISOR_SOCKET=/run/wa-supervisor-clients/clients.sock WA_SUPERVISOR_TOKEN=wst_... \
//     node examples/echo-bot.ts echo
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { Client, ConnectionLostError, DaemonUnreachableError, PolicyDeniedError, TimeoutError, type InboxMessage, type Message, type SendRequest } from 'wa-supervisor/client';

export interface EchoBotOptions {
  /** The stream consumer to read (the operator adds it, with accounts that are this client's). */
  consumer: string;
  client?: Client;
  signal?: AbortSignal;
  /** Called with each reply the gate took, or the message it refused to answer. */
  onReply?: (to: InboxMessage, reply: Message | PolicyDeniedError) => void;
}

export async function echoBot({ consumer, client = new Client(), signal, onReply }: EchoBotOptions): Promise<void> {
  for await (const message of client.consume(consumer, signal ? { signal } : {})) {
    // Text in a direct chat; groups, status updates and channels are left alone.
    if (message.kind !== 'text' || message.chatType !== 'direct' || !message.text) continue;
    try {
      const reply = await sendThroughRestarts(client, {
        account: message.account,
        to: message.chat,
        text: `echo: ${message.text}`,
        idempotencyKey: `echo:${message.account}:${message.chat}:${message.id}`,
      }, signal);
      onReply?.(message, reply);
    } catch (err) {
      if (signal?.aborted) return; // stopped while the daemon was away
      // The policy refused to answer this person: that is the operator's decision, not a failure.
      if (!(err instanceof PolicyDeniedError)) throw err;
      onReply?.(message, err);
    }
  }
}

/** Sends, and again while the daemon restarts: with the same idempotency key a repeat is the same message. */
async function sendThroughRestarts(client: Client, message: SendRequest, signal?: AbortSignal): Promise<Message> {
  for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
    try {
      return await client.send(message);
    } catch (err) {
      const transient = err instanceof ConnectionLostError || err instanceof DaemonUnreachableError || err instanceof TimeoutError;
      if (!transient || signal?.aborted) throw err;
      await sleep(delay, undefined, signal ? { signal } : {});
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const consumer = process.argv[2] ?? 'echo';
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  process.once('SIGTERM', () => stop.abort());
  await echoBot({
    consumer,
    signal: stop.signal,
    onReply: (m, r) => console.log(r instanceof PolicyDeniedError ? `not answered ${m.chat}: ${r.message}` : `answered ${m.chat} (message ${r.id}, ${r.state})`),
  });
}
