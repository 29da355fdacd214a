// The typed client for programs: one object over the daemon's control socket, in the client role
// when given a token. It resolves the socket as the CLI does, bounds every call by a timeout, and
// throws errors that say who failed (errors.ts).
import type { IncomingMessage } from 'node:http';
import { ControlClient, DaemonUnreachableError as SocketUnreachable, readAll } from '../control/client.js';
import { resolveCliTarget, TOKEN_ENV } from '../cli/target.js';
import { abortableSleep } from '../accounts/abortable-sleep.js';
import { ConnectionLostError, DaemonRefusedError, DaemonUnreachableError, ConflictError, ForbiddenError, MessageEndedError, PolicyDeniedError, TimeoutError, WaSupervisorError, refusal } from './errors.js';
import type { DaemonEvent, InboxMessage, Me, Message, MessageState, SendRequest } from './types.js';

export interface ClientOptions {
  /** The socket: by default WA_SUPERVISOR_SOCKET, then the config file's `socket`, then the default path (as the CLI). */
  socket?: string;
  /** The config file read for the socket path (as the CLI's --config). */
  config?: string;
  /** A client's token (default: WA_SUPERVISOR_TOKEN). Without one, the operator socket treats the caller as an operator. */
  token?: string;
  /** Sent as X-WA-Client; the audit names an authenticated client by its configured name whatever this says. */
  name?: string;
  /** Time limit of each call, in ms (default 30 000). Streams are bounded until they open. */
  timeoutMs?: number;
  /**
   * How long a call that could not connect (no socket file, or nothing listening: a daemon
   * restarting) keeps trying before it throws DaemonUnreachableError, in ms (default 10 000;
   * within `timeoutMs`). Such a request never reached the daemon, so trying again is safe.
   */
  waitForDaemonMs?: number;
}

export type WaitTarget = 'sent' | 'delivered' | 'read';
const PROGRESS: Partial<Record<MessageState, number>> = { sent: 1, delivered: 2, read: 3 };
/** States a message does not leave on its own (held waits for an operator). */
const ENDS: readonly MessageState[] = ['held', 'denied', 'failed', 'expired', 'cancelled'];

export interface InboxQuery {
  account?: string | string[];
  /** Rows after this cursor (as a previous page's `next` gave it). */
  after?: string | number;
  limit?: number;
  /** One person's or group's chat (a number, JID or LID). */
  chat?: string;
}

export interface EventFilter {
  account?: string | string[];
  /** Exact types or prefixes ending in `.*`, such as `message.*`. */
  type?: string | string[];
  requestId?: string;
}

/** A client of the wa-supervisor daemon. */
export class Client {
  readonly socket: string;
  readonly #control: ControlClient;
  readonly #timeoutMs: number;
  readonly #waitForDaemonMs: number;

  constructor(opts: ClientOptions = {}) {
    const target = resolveCliTarget({ socket: opts.socket, config: opts.config });
    this.socket = target.socket.path;
    const token = (opts.token ?? process.env[TOKEN_ENV])?.trim();
    this.#control = new ControlClient({ socket: target.socket, clientName: opts.name ?? 'wa-supervisor-client', ...(token ? { token } : {}) });
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#waitForDaemonMs = opts.waitForDaemonMs ?? 10_000;
  }

  /** Who this client is to the daemon: its name, accounts and permissions (or the operator). */
  me(): Promise<Me> {
    return this.#json('GET', '/v1/me');
  }

  /**
   * Sends a message through the daemon's gate and answers the stored row (state `queued`, or
   * `held` when a rule holds it for an operator). A message the policy refuses throws
   * PolicyDeniedError: it is stored as `denied` and never sent.
   */
  async send(req: SendRequest): Promise<Message> {
    const accepted = await this.#json<Pick<Message, 'id' | 'messageId' | 'state'> & { reason?: string }>('POST', '/v1/messages', req);
    if (accepted.state === 'denied') throw new PolicyDeniedError(accepted);
    try {
      return await this.message(accepted.id);
    } catch {
      // The message is stored: a failed read of it (no read permission, the daemon going away)
      // must not look like a failed send, which a caller would repeat. It gets what the send answered.
      return accepted as Message;
    }
  }

  /** A message as stored now. */
  message(id: number, opts: { signal?: AbortSignal } = {}): Promise<Message> {
    return this.#json('GET', `/v1/messages/${encodeURIComponent(String(id))}`, undefined, opts.signal);
  }

  /** Cancels a message this client enqueued that has not gone out. */
  cancel(id: number): Promise<Message> {
    return this.#json('POST', `/v1/messages/${encodeURIComponent(String(id))}/cancel`);
  }

  /**
   * Resolves with the stored row once the message is `target` or further on (sent < delivered <
   * read). Throws MessageEndedError when it ends elsewhere (failed, denied, expired, cancelled,
   * or held for an operator), TimeoutError after `timeoutMs` (default 60 000). Follows the
   * message's events when the client may, and reads the row every `pollMs` (default 1000)
   * either way, so it also works without the events permission and through any daemon of a cluster.
   */
  async waitFor(id: number, target: WaitTarget, opts: { timeoutMs?: number; pollMs?: number; signal?: AbortSignal } = {}): Promise<Message> {
    if (!PROGRESS[target]) throw new TypeError(`waitFor: target must be sent, delivered or read, not ${JSON.stringify(target)}`);
    const timeoutMs = opts.timeoutMs ?? 60_000;
    opts.signal?.throwIfAborted();
    const stop = new AbortController();
    const onAbort = () => stop.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => stop.abort(new TimeoutError(timeoutMs, `waiting for message ${id} to be ${target}`)), timeoutMs);
    const reached = (state: MessageState) => (PROGRESS[state] ?? 0) >= PROGRESS[target]! || ENDS.includes(state);
    try {
      let row = await this.message(id, { signal: stop.signal });
      if (reached(row.state)) return settled(row, target);
      // Nudged by the row's events when the client may follow them; the row is read on each nudge and on a timer.
      // Subscribed before the row is read again, so no step in between is missed; without the
      // events permission the timer alone reads on.
      const events = await this.events({ account: row.account, type: 'message.*' }, { signal: stop.signal }).catch((err: unknown) => {
        if (stop.signal.aborted) throw stop.signal.reason;
        // No events permission, or the daemon's subscriber slots are all taken: the timer reads on.
        if (err instanceof ForbiddenError || (err instanceof DaemonRefusedError && err.status === 503)) return null;
        throw err;
      });
      let nudged = true;
      let nudge: () => void = () => (nudged = true);
      void this.#nudges(events, id, () => nudge());
      for (;;) {
        if (!nudged) await new Promise<void>((resolve, reject) => {
          const wake = () => {
            clearTimeout(t);
            stop.signal.removeEventListener('abort', onStop);
            resolve();
          };
          const onStop = () => (clearTimeout(t), reject(stop.signal.reason));
          const t = setTimeout(wake, opts.pollMs ?? 1000);
          nudge = wake;
          if (stop.signal.aborted) onStop();
          else stop.signal.addEventListener('abort', onStop, { once: true });
        });
        nudged = false;
        nudge = () => (nudged = true);
        row = await this.message(id, { signal: stop.signal });
        if (reached(row.state)) return settled(row, target);
      }
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      stop.abort();
    }
  }

  /** A page of the inbox (of this client's accounts unless `account` narrows it); `next` is where to go on from. */
  inbox(q: InboxQuery = {}): Promise<{ messages: InboxMessage[]; next: string }> {
    return this.#json('GET', `/v1/inbox${query({ account: q.account, after: q.after, limit: q.limit, chat: q.chat })}`);
  }

  /** A stream consumer's next messages from its committed cursor (a pull read); acknowledge them with `ack`. */
  next(consumer: string, opts: { limit?: number } = {}): Promise<{ consumer: string; committed: string; messages: InboxMessage[]; next: string }> {
    return this.#json('GET', `/v1/inbox/next${query({ consumer, limit: opts.limit })}`);
  }

  /** Commits a stream consumer's cursor: everything at or below it is handled. */
  ack(consumer: string, cursor: string | number): Promise<{ consumer: string; cursor: string }> {
    return this.#json('POST', '/v1/inbox/ack', { consumer, cursor: String(cursor) });
  }

  /**
   * A stream consumer's messages, in cursor order, as an async iterator. Each message is
   * acknowledged when the loop asks for the next one, so a message whose loop body threw (or
   * broke out) is not, and comes again. When the daemon goes away (a restart) the iterator
   * reconnects and goes on from the committed cursor, skipping what it already handled. Ends
   * when `signal` aborts; throws when the daemon refuses the consumer (unknown, not this
   * client's, or another reader connected for longer than `busyMs`, default 10 000).
   */
  async *consume(consumer: string, opts: { signal?: AbortSignal; busyMs?: number } = {}): AsyncGenerator<InboxMessage, void, undefined> {
    const signal = opts.signal ?? new AbortController().signal;
    let handled = 0; // highest cursor whose loop body finished
    let acked = 0;
    let delay = 100;
    let busySince: number | null = null;
    let openedAt = 0;
    /** Acknowledges; false when the daemon that handed the rows out is gone (its stream's other rows are stale). */
    const ack = async (cursor: number): Promise<boolean> => {
      try {
        await this.ack(consumer, cursor);
        acked = Math.max(acked, cursor);
        return true;
      } catch (err) {
        // The daemon restarted (the cursor was handed by its previous run) or went away: the
        // acknowledgement is made again once a new stream hands that cursor out.
        if (!(err instanceof DaemonUnreachableError || err instanceof ConnectionLostError || err instanceof TimeoutError || err instanceof DaemonRefusedError) || err instanceof ForbiddenError) throw err;
        return false;
      }
    };
    while (!signal.aborted) {
      let res: IncomingMessage;
      try {
        res = await this.#stream('GET', `/v1/inbox/stream${query({ consumer })}`, signal);
        busySince = null;
        openedAt = Date.now();
      } catch (err) {
        if (signal.aborted) return;
        const busy = err instanceof ConflictError;
        if (busy) busySince ??= Date.now();
        const transient = err instanceof DaemonUnreachableError || err instanceof ConnectionLostError || err instanceof TimeoutError || (err instanceof DaemonRefusedError && err.status === 503);
        const retry = transient || (busy && Date.now() - busySince! < (opts.busyMs ?? 10_000));
        if (!retry) throw err;
        await abortableSleep(delay, signal).catch(() => undefined);
        delay = Math.min(delay * 2, 2000);
        continue;
      }
      try {
        for await (const message of ndjson<InboxMessage>(res)) {
          const cursor = Number(message.cursor);
          if (cursor <= handled) {
            // Handed again after a restart: handled already. Acknowledge it now that this run handed it.
            if (cursor === handled && acked < handled) await ack(handled);
            continue;
          }
          yield message;
          handled = cursor;
          // Not acknowledged: rows this stream still holds were handed by a daemon run that is
          // gone; a new stream hands them again.
          if (!(await ack(cursor))) break;
        }
      } catch (err) {
        if (!(err instanceof StreamCut)) throw err;
      } finally {
        res.destroy();
      }
      // A stream that lasted starts the backoff over; one that ends at once (a store that fails)
      // is not reopened at full speed.
      delay = Date.now() - openedAt > 2000 ? 100 : Math.min(delay * 2, 2000);
      if (!signal.aborted) await abortableSleep(delay, signal).catch(() => undefined);
    }
  }

  /**
   * Subscribes to the daemon's events matching `filter` and resolves once the subscription is
   * open (nothing after that is missed), with an async iterator over them. A client hears only
   * its own accounts, never alerts. Live only: the iterator ends when the connection does (a
   * daemon restart) or `signal` aborts; break out of the loop or abort to close it. The inbox
   * and `GET /v1/messages/changes` are the durable records.
   */
  async events(filter: EventFilter = {}, opts: { signal?: AbortSignal } = {}): Promise<AsyncGenerator<DaemonEvent, void, undefined>> {
    const signal = opts.signal ?? new AbortController().signal;
    const res = await this.#stream('GET', `/v1/events${query({ account: filter.account, type: filter.type, requestId: filter.requestId })}`, signal);
    const events = (async function* () {
      try {
        for await (const e of ndjson<DaemonEvent>(res)) yield e;
      } catch (err) {
        if (!(err instanceof StreamCut)) throw err;
      } finally {
        res.destroy();
      }
    })();
    // A generator's `finally` runs only once it has started: closing one never iterated must close the stream too.
    const close = events.return.bind(events);
    events.return = (value) => (res.destroy(), close(value));
    return events;
  }

  /** Read receipts for a chat's messages up to a cursor (all unread ones by default), through the gate. */
  markRead(account: string, chat: string, upTo?: string | number): Promise<{ account: string; chat: string; state: string; marked: number; upTo?: string; reason?: string }> {
    return this.#json('POST', '/v1/chats/read', { account, chat, ...(upTo === undefined ? {} : { upTo: String(upTo) }) });
  }

  /** Calls `nudge` for each of `events` about message `id`, until the stream ends. */
  async #nudges(events: AsyncGenerator<DaemonEvent> | null, id: number, nudge: () => void): Promise<void> {
    try {
      for await (const e of events ?? []) if (e.id === id) nudge();
    } catch {
      // the stream ended: the timer reads on
    }
  }

  /** One JSON call within the time limit. */
  async #json<T>(method: string, path: string, body?: unknown, outer?: AbortSignal): Promise<T> {
    outer?.throwIfAborted();
    const what = `${method} ${path.split('?')[0]}`;
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => ((timedOut = true), controller.abort()), this.#timeoutMs);
    const onOuter = () => controller.abort();
    outer?.addEventListener('abort', onOuter, { once: true });
    try {
      const res = await this.#open(method, path, body, controller.signal, what);
      const text = await readAll(res);
      try {
        return JSON.parse(text) as T;
      } catch {
        throw new DaemonRefusedError(res.statusCode ?? 0, 'bad_response', `${what}: the daemon's answer is not JSON`);
      }
    } catch (err) {
      if (outer?.aborted) throw outer.reason;
      if (timedOut && !(err instanceof WaSupervisorError)) throw new TimeoutError(this.#timeoutMs, what);
      // Cut while the answer was read: the daemon went away after it had the request.
      const code = (err as NodeJS.ErrnoException).code;
      if (!(err instanceof WaSupervisorError) && (code === 'ECONNRESET' || code === 'EPIPE')) throw new ConnectionLostError(this.socket, code);
      throw err;
    } finally {
      clearTimeout(timer);
      outer?.removeEventListener('abort', onOuter);
    }
  }

  /** Opens a stream within the time limit; the stream itself runs until it ends or `signal` aborts. */
  async #stream(method: string, path: string, signal: AbortSignal): Promise<IncomingMessage> {
    signal.throwIfAborted();
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    let timedOut = false;
    const timer = setTimeout(() => ((timedOut = true), controller.abort()), this.#timeoutMs);
    try {
      const res = await this.#open(method, path, undefined, controller.signal, `${method} ${path.split('?')[0]}`);
      // Aborted while it opened: close it now (the listener has fired already).
      if (signal.aborted) {
        res.destroy();
        signal.throwIfAborted();
      }
      res.once('close', () => signal.removeEventListener('abort', onAbort));
      return res;
    } catch (err) {
      signal.removeEventListener('abort', onAbort);
      if (signal.aborted) throw signal.reason;
      if (timedOut) throw new TimeoutError(this.#timeoutMs, `${method} ${path.split('?')[0]}`);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The error to throw for a request that failed before it was answered. */
  #failure(err: unknown, signal: AbortSignal, what: string): unknown {
    if (err instanceof SocketUnreachable) return new DaemonUnreachableError(this.socket, err.errno);
    if (signal.aborted) return err;
    const code = (err as NodeJS.ErrnoException).code;
    // The daemon went away with the request in flight: whether it took effect is not known.
    if (code === 'ECONNRESET' || code === 'EPIPE') return new ConnectionLostError(this.socket, code);
    return new WaSupervisorError(`${what}: ${(err as Error).message}`);
  }

  /** A response with a success status; error statuses throw the matching DaemonRefusedError. */
  async #open(method: string, path: string, body: unknown, signal: AbortSignal, what: string): Promise<IncomingMessage> {
    let res: IncomingMessage;
    const deadline = Date.now() + this.#waitForDaemonMs;
    for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
      try {
        res = await this.#control.open(method, path, { body, signal });
        break;
      } catch (err) {
        const notReached = err instanceof SocketUnreachable && (err.errno === 'ENOENT' || err.errno === 'ECONNREFUSED');
        if (notReached && Date.now() + delay <= deadline && !signal.aborted) {
          await abortableSleep(delay, signal);
          continue;
        }
        throw this.#failure(err, signal, what);
      }
    }
    const status = res.statusCode ?? 0;
    if (status < 400) return res;
    const text = await readAll(res).catch(() => '');
    let error: { code?: string; message?: string } | undefined;
    try {
      error = (JSON.parse(text) as { error?: typeof error }).error;
    } catch {
      // not JSON
    }
    throw refusal(status, error?.code ?? 'error', error?.message ?? `${what}: the daemon answered ${status}`);
  }
}

/** The row once it reached the target; a row that ended elsewhere throws. */
function settled(row: Message, target: WaitTarget): Message {
  if ((PROGRESS[row.state] ?? 0) >= PROGRESS[target]!) return row;
  throw new MessageEndedError(row);
}

/** A query string of the defined parameters (lists comma-joined). */
function query(params: Record<string, string | number | string[] | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    q.set(k, Array.isArray(v) ? v.join(',') : String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** The connection ended mid-stream (the daemon went away). */
class StreamCut extends Error {}

/** NDJSON lines of a response as values, read as the caller asks for them (the socket is paused between). */
async function* ndjson<T>(res: IncomingMessage): AsyncGenerator<T> {
  let buf = '';
  res.setEncoding('utf8');
  try {
    for await (const chunk of res as AsyncIterable<string>) {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim() !== '') yield JSON.parse(line) as T;
      }
    }
  } catch (err) {
    if (err instanceof SyntaxError) throw err;
    throw new StreamCut((err as Error).message);
  }
}
