// Alert sinks beyond the log and the event stream: a webhook (signed, retried, bounded), a
// command (JSON on stdin, killed at its timeout), and an operator WhatsApp chat that goes through
// the send gate as kind "alert" (which the gate allows only to operators). None of them blocks the
// daemon or each other.
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import type { Log } from '../log.js';
import type { AlertNotification, AlertSink } from './engine.js';

/** Header carrying the webhook body's HMAC-SHA256: `sha256=<hex>`. */
export const SIGNATURE_HEADER = 'x-wa-supervisor-signature';
/** Delays between webhook attempts; after the last one the notification is dropped (and logged). */
export const WEBHOOK_RETRY_DELAYS_MS = [1000, 5000, 25_000];
/** Webhook notifications waiting at most; older ones are dropped first when a webhook is down. */
export const WEBHOOK_QUEUE_LIMIT = 100;
const WEBHOOK_TIMEOUT_MS = 5000;
/** A command sink's default time limit. */
export const COMMAND_TIMEOUT_MS = 10_000;

/** HMAC-SHA256 of a body, as the signature header carries it. */
export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** POSTs notifications as JSON, one at a time, with retries; a dead webhook only fills its own bounded queue. */
export class WebhookSink implements AlertSink {
  readonly name: string;
  readonly #queue: Array<{ body: string; attempt: number }> = [];
  #busy = false;
  #closed = false;
  #timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly url: string,
    private readonly secret: string,
    private readonly log: Log,
    private readonly delays: readonly number[] = WEBHOOK_RETRY_DELAYS_MS,
  ) {
    this.name = `webhook ${new URL(url).host}`;
  }

  deliver(n: AlertNotification): void {
    if (this.#queue.length >= WEBHOOK_QUEUE_LIMIT) {
      const dropped = this.#queue.shift();
      this.log.warn({ sink: this.name, dropped: dropped?.body.slice(0, 200) }, 'webhook queue full; dropped the oldest notification');
    }
    this.#queue.push({ body: JSON.stringify(n), attempt: 0 });
    this.#pump();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
  }

  #pump(): void {
    if (this.#busy || this.#closed) return;
    const item = this.#queue[0];
    if (!item) return;
    this.#busy = true;
    void this.#post(item.body).then((ok) => {
      this.#busy = false;
      if (ok) {
        this.#queue.shift();
        this.#pump();
        return;
      }
      item.attempt++;
      const delay = this.delays[item.attempt - 1];
      if (delay === undefined) {
        this.#queue.shift();
        this.log.error({ sink: this.name, attempts: item.attempt }, 'webhook unreachable; notification dropped after its retries');
        this.#pump();
        return;
      }
      this.#timer = setTimeout(() => this.#pump(), delay);
      this.#timer.unref();
    });
  }

  async #post(body: string): Promise<boolean> {
    try {
      const res = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signBody(this.secret, body) },
        body,
        signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
      });
      if (res.ok) return true;
      this.log.warn({ sink: this.name, status: res.status }, 'webhook answered with an error');
      return false;
    } catch (err) {
      this.log.warn({ sink: this.name, err: (err as Error).message }, 'webhook not reachable');
      return false;
    }
  }
}

/** Runs a program per notification with the JSON on stdin; kills it at the timeout. */
export class CommandSink implements AlertSink {
  readonly name: string;

  constructor(
    private readonly argv: readonly string[],
    private readonly log: Log,
    private readonly timeoutMs = COMMAND_TIMEOUT_MS,
  ) {
    this.name = `command ${argv[0]}`;
  }

  deliver(n: AlertNotification): void {
    const [prog, ...args] = this.argv;
    const child = spawn(prog!, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-2000)));
    const timer = setTimeout(() => {
      this.log.error({ sink: this.name, timeoutMs: this.timeoutMs }, 'alert command did not finish in time; killed');
      child.kill('SIGKILL');
    }, this.timeoutMs);
    timer.unref();
    child.on('error', (err) => {
      clearTimeout(timer);
      this.log.error({ sink: this.name, err: err.message }, 'alert command could not start');
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) this.log.warn({ sink: this.name, code, signal, stderr }, 'alert command failed');
      else this.log.debug({ sink: this.name }, 'alert command done');
    });
    child.stdin.on('error', () => {}); // a command that does not read stdin is fine
    child.stdin.end(`${JSON.stringify(n)}\n`);
  }
}

/** What the WhatsApp sink needs from the send gate. */
export interface AlertEnqueuer {
  enqueue(input: { account: string; to: string; text: string; kind: 'alert'; client: string }): Promise<{ row: { state: string; reason: string | null } }>;
}

/** Sends notifications as WhatsApp messages to the configured operator chats, through the send gate. */
export class WhatsAppSink implements AlertSink {
  readonly name: string;

  constructor(
    private readonly account: string,
    private readonly to: readonly string[],
    private readonly gate: AlertEnqueuer,
    private readonly log: Log,
  ) {
    this.name = `whatsapp ${account}`;
  }

  deliver(n: AlertNotification): void {
    const a = n.alert;
    const head = n.type === 'alert.recovered' ? 'RECOVERED' : n.type === 'digest' ? 'DIGEST' : a.severity.toUpperCase();
    const text = `[wa-supervisor] ${head}${a.account ? ` (${a.account})` : ''}: ${a.text}`;
    for (const to of this.to) {
      this.gate.enqueue({ account: this.account, to, text, kind: 'alert', client: 'alert-router' }).then(
        (r) => {
          if (r.row.state === 'denied') this.log.error({ sink: this.name, to, reason: r.row.reason }, 'operator alert refused by the send gate');
        },
        (err: unknown) => this.log.error({ sink: this.name, to, err }, 'operator alert could not be queued'),
      );
    }
  }
}
